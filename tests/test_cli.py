"""The CLI's read commands work on a fresh home, speak JSON on the last line, and fail with messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def cli(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "LORAFORGE_HOME": str(home.root)}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_ls_commands_on_a_fresh_home_print_empty_json(home):
    assert json.loads(cli("runs", "ls", "--json", home=home).stdout.splitlines()[-1]) == {"runs": []}
    assert json.loads(cli("adapters", "ls", "--json", home=home).stdout.splitlines()[-1]) == {"adapters": []}


def test_unknown_run_is_a_clear_error(home):
    p = cli("runs", "show", "nope", home=home)
    assert p.returncode == 2 and "unknown run 'nope'" in p.stderr and "Traceback" not in p.stderr


def test_dry_run_spends_nothing_and_prints_the_plan(home):
    p = cli("run", "--domain", "regex-python", "--profile", "quick", "--dry-run", "--json", home=home)
    plan = json.loads(p.stdout.splitlines()[-1])
    assert p.returncode == 0 and plan["requests"] == 1000 and plan["teacher"] == "grammar"
    assert not home.db.exists()


def test_validate_command_gives_a_verdict_per_line(home, tmp_path):
    f = tmp_path / "rows.jsonl"
    f.write_text(json.dumps({"prompt": "two digits", "completion": "\\d{2}", "positives": ["12", "34", "56"],
                             "negatives": ["1", "123", "ab"]}) + "\n" + json.dumps({"prompt": "x", "completion": ""}))
    p = cli("validate", "--domain", "regex-python", "--file", str(f), "--json", home=home)
    out = json.loads(p.stdout.splitlines()[-1])
    assert p.returncode == 0
    assert out == {"accepted": 1, "rejected": 1, "rows": [{"line": 1, "accepted": True, "reasons": []},
                                                           {"line": 2, "accepted": False,
                                                            "reasons": ["empty_completion"]}]}
    missing = cli("validate", "--domain", "regex-python", "--file", str(tmp_path / "nope.jsonl"), home=home)
    assert missing.returncode == 2 and "nope.jsonl" in missing.stderr
