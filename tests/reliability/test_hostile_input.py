"""Hostile and bad input: each is a clear error or a quarantine reason, never a bare traceback, and nothing is
written outside $LORAFORGE_HOME."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from reliability.helpers import REPO, cli, cli_env, configs_copy, last_json, tree_state

ESCAPE = f"lf-escape-{uuid.uuid4().hex[:8]}"  # a name no traversal may create anywhere


@pytest.fixture
def sandbox(tmp_path):
    """A temp cwd, home, Prefect home and configs copy; yields (env, cwd, configs, tmp_path)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    configs = configs_copy(tmp_path / "configs")
    env = cli_env(tmp_path, LORAFORGE_CONFIGS=str(configs))
    return env, cwd, configs, tmp_path


def _assert_clear_failure(p, *needles: str, code: int = 2) -> None:
    assert p.returncode == code, (p.returncode, p.stderr[-2000:])
    assert "Traceback" not in p.stderr + p.stdout
    squeezed = "".join(p.stderr.split())  # rich wraps long lines (even inside a path) at the terminal width
    for n in needles:
        assert "".join(n.split()) in squeezed, p.stderr


BAD_CONFIGS = {
    "malformed_yaml": ("teacher: [provider: openai\n  model: x\nname: {{\n", ["not valid YAML"]),
    "unknown_key": ("name: {d}\nteacher:\n  providr: openai\n", ["teacher.providr: unknown key"]),
    "unknown_nested_key": ("name: {d}\ntraining:\n  sft:\n    learning_rat: 0.1\n",
                           ["training.sft.learning_rat: unknown key"]),
    "wrong_type": ("name: {d}\ndataset:\n  n_requests: many\n", ["dataset.n_requests", "'many'"]),
    "wrong_type_negative": ("name: {d}\nteacher:\n  concurrency: -3\n", ["teacher.concurrency", "greater than 0"]),
    "not_a_mapping": ("- just\n- a list\n", ["expected a mapping at the top level"]),
    "name_mismatch": ("name: regex-other\n", ["name is 'regex-other'"]),
    "name_traversal": ("name: ../../x\n", ["name:", "must be a slug"]),
    "bad_profile_override": ("name: {d}\nprofiles:\n  tiny:\n    dataset.n_requests: zero\n",
                             ["(profile tiny)", "dataset.n_requests"]),
    "binary_garbage": ("\x00\x01\x02 \udcff", ["not UTF-8 text"]),
    "control_chars": ("name: {d}\x00\x07\n", ["not valid YAML"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_domain_config_is_a_clear_error_naming_the_problem(sandbox, case):
    env, cwd, configs, tmp = sandbox
    text, needles = BAD_CONFIGS[case]
    path = configs / "domains" / "bad-domain.yaml"
    path.write_bytes(text.format(d="bad-domain").encode("utf-8", "surrogateescape"))
    before = tree_state(tmp)
    p = cli("run", "--domain", "bad-domain", "--profile", "tiny", env=env, cwd=cwd)
    _assert_clear_failure(p, *needles)
    assert tree_state(tmp) == before  # a config error writes nothing at all, not even the home


@pytest.mark.parametrize("domain", ["regex-pythn", f"../{ESCAPE}", f"/tmp/{ESCAPE}", f"regex python {ESCAPE}",
                                    "..", f"regex-python/../../{ESCAPE}", "REGEX-PYTHON", "",
                                    f"{ESCAPE}\x00x"])
def test_unknown_or_traversing_domain_names_are_refused_before_touching_the_disk(sandbox, domain):
    env, cwd, _configs, tmp = sandbox
    before = tree_state(tmp)
    for args in (["run", "--domain", domain, "--profile", "tiny"],
                 ["validate", "--domain", domain, "--file", str(tmp / "none.jsonl")]):
        if "\x00" in domain:  # the OS refuses NUL in argv; the config layer refuses it too
            from schemas.config import ConfigError, load_domain

            with pytest.raises(ConfigError, match="invalid domain name"):
                load_domain(domain)
            continue
        p = cli(*args, env=env, cwd=cwd)
        if domain == "" and args[0] == "validate":  # an empty --domain reads as "not given" there
            _assert_clear_failure(p, "give --domain D --file rows.jsonl")
            continue
        _assert_clear_failure(p, "unknown domain" if domain == "regex-pythn" else "invalid domain name")
    assert tree_state(tmp) == before
    for place in (tmp, tmp.parent, REPO, REPO.parent, Path("/tmp")):  # where a traversal would have landed
        assert not list(place.glob(f"*{ESCAPE}*"))
    assert not list(tmp.rglob(f"*{ESCAPE}*"))


def test_domain_config_that_is_a_symlink_out_of_the_configs_dir_still_validates_as_a_config(sandbox):
    env, cwd, configs, tmp = sandbox
    outside = tmp / "outside.yaml"
    outside.write_text("not: [valid")
    (configs / "domains" / "linked.yaml").symlink_to(outside)
    _assert_clear_failure(cli("run", "--domain", "linked", "--dry-run", env=env, cwd=cwd), "not valid YAML")


def test_user_jsonl_with_non_utf8_bytes_oversized_rows_and_garbage_gets_a_verdict_per_line(sandbox):
    env, cwd, _configs, tmp = sandbox
    good = {"prompt": "two digits", "completion": "\\d{2}", "positives": ["12", "34", "56"],
            "negatives": ["1", "123", "ab"]}
    rows = [
        json.dumps(good).encode(),
        b'{"prompt": "caf\xe9 \xff\xfe", "completion": "\\\\d+"}',              # latin-1 / invalid UTF-8
        json.dumps({**good, "completion": "a" * 10_000_000}).encode(),         # a 10 MB regex
        json.dumps({**good, "prompt": "x" * 10_000_000}).encode(),              # a 10 MB prompt
        b"{" * 5_000_000,                                                        # 5 MB of unclosed JSON
        b"\x00\x01\x02binary",
        json.dumps(["not", "an", "object"]).encode(),
        json.dumps({**good, "completion": "(a+)+$", "positives": ["aaa"], "negatives": ["a" * 40 + "!"]}).encode(),
    ]
    f = tmp / "hostile.jsonl"
    f.write_bytes(b"\n".join(rows) + b"\n")
    before = tree_state(tmp, skip=(str(tmp / "home"),))
    p = cli("validate", "--domain", "regex-python", "--file", str(f), "--json", env=env, cwd=cwd)
    assert p.returncode == 0, p.stderr[-2000:]
    out = last_json(p.stdout)
    verdicts = {r["line"]: r for r in out["rows"]}
    assert sorted(verdicts) == list(range(1, len(rows) + 1))  # every line has a verdict, none dropped
    assert verdicts[1]["accepted"] is True
    assert all(not verdicts[i]["accepted"] and verdicts[i]["reasons"] for i in range(2, len(rows) + 1))
    assert verdicts[2]["reasons"] == ["not_utf8"]
    assert "regex_too_long" in verdicts[3]["reasons"]
    assert "description_length" in verdicts[4]["reasons"]
    assert verdicts[5]["reasons"] == ["malformed_output"]
    assert out["accepted"] == 1 and out["rejected"] == len(rows) - 1
    assert tree_state(tmp, skip=(str(tmp / "home"),)) == before
    print("RELIABILITY " + json.dumps({"scenario": "hostile user JSONL", "bytes": f.stat().st_size,
                                       "verdicts": {i: v["reasons"] for i, v in verdicts.items()}}))


def test_an_unreadable_user_file_is_a_clear_error(sandbox):
    env, cwd, _configs, tmp = sandbox
    d = tmp / "a-directory.jsonl"
    d.mkdir()
    _assert_clear_failure(cli("validate", "--domain", "regex-python", "--file", str(d), env=env, cwd=cwd),
                          "a-directory.jsonl")
    _assert_clear_failure(cli("validate", "--domain", "regex-python", "--file", str(tmp / "missing.jsonl"),
                              env=env, cwd=cwd), "missing.jsonl")
