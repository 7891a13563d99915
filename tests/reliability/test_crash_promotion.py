"""Crash between the registry commit and the pointer move (the scenario of tests/test_registry.py, issue 7),
seen through `loraforge doctor`: it names the torn state, and after the next command it passes with exactly one
promoted adapter."""

from __future__ import annotations

import os
import subprocess
import sys

from reliability.helpers import REPO, cli, cli_env, last_json
from tasks import registry, store
from tasks.doctor import check_home

DOMAIN = "regex-python"
PROMOTE = """
import sys
from schemas.run import Home
from tasks import registry, store
h = Home.from_env(sys.argv[1])
a = store.get_adapter(h.db, sys.argv[2])
registry.apply_decision(h.db, h.adapters, run_id=a["run_id"], domain=a["domain"], adapter=a,
                        decision={"promote": True, "checks": [], "failed": [], "reasons": [], "forced": False})
"""


def _adapter(home, name: str) -> None:
    path = home.adapters / DOMAIN / name
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    store.record_dataset(home.db, {"dataset_id": f"ds-{name}", "domain": DOMAIN, "run_id": f"run-{name}",
                                   "path": "s3://bucket/not-checked", "n_train": 1, "n_val": 0, "n_test": 0,
                                   "manifest_json": "{}"})
    store.record_adapter(home.db, {"adapter_id": name, "domain": DOMAIN, "run_id": f"run-{name}",
                                   "dataset_id": f"ds-{name}", "base_model": "m", "path": str(path),
                                   "status": "candidate"})


def _promote(home, name: str, crash: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **({registry.CRASH_ENV: "registry:after-commit"} if crash else {})}
    return subprocess.run([sys.executable, "-c", PROMOTE, str(home.root), name], env=env, capture_output=True,
                          text=True, timeout=120, cwd=REPO)


def test_doctor_names_a_promotion_torn_by_a_crash_and_passes_after_the_next_command(home, tmp_path):
    _adapter(home, "a")
    _adapter(home, "b")
    assert _promote(home, "a", crash=False).returncode == 0
    assert check_home(home)["ok"]

    crashed = _promote(home, "b", crash=True)
    assert crashed.returncode == 70, crashed.stderr  # died right after the DuckDB commit, before the pointer
    torn = check_home(home)
    failed = {c["name"]: c["detail"] for c in torn["checks"] if not c["ok"]}
    assert set(failed) == {"pointer_matches_registry"} and "registry promotes b" in failed["pointer_matches_registry"]

    env = cli_env(tmp_path, LORAFORGE_HOME=str(home.root))
    assert cli("adapters", "ls", "--json", env=env).returncode == 0  # the next command reconciles from DuckDB
    doctor = cli("doctor", "--json", env=env)
    assert doctor.returncode == 0 and last_json(doctor.stdout)["ok"], doctor.stdout
    promoted = [a["adapter_id"] for a in store.list_adapters(home.db, DOMAIN) if a["status"] == "promoted"]
    assert promoted == ["b"]
