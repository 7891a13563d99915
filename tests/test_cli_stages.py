"""The data scientist's commands: stage by stage on a stored run, reruns, runs show, datasets ls."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from schemas.config import load_domain
from tasks import store


def cli(*args: str, home, timeout: int = 120, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LORAFORGE_HOME": str(home.root), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def last_json(p: subprocess.CompletedProcess) -> dict:
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def _stored_run(home, run_id: str = "r-stored") -> str:
    cfg = load_domain("regex-python", "tiny")
    store.create_run(home.db, run_id, cfg.name, "tiny", cfg.teacher.provider, cfg.model_dump(mode="json"))
    return run_id


def test_rerun_of_an_unknown_run_is_a_clear_error(home):
    p = cli("rerun", "nope", "--from", "train", home=home)
    assert p.returncode == 2 and "unknown run 'nope'" in p.stderr and "Traceback" not in p.stderr
    for args in (("train", "--run", "nope"), ("validate", "--run", "nope"), ("generate", "--run", "nope")):
        p = cli(*args, home=home)
        assert p.returncode == 2 and "unknown run 'nope'" in p.stderr, args
    assert not home.db.exists()  # asking about a run creates nothing


def test_rerun_rejects_bad_stages_and_bad_overrides_before_starting(home):
    run_id = _stored_run(home)
    p = cli("rerun", run_id, "--from", "bake", home=home)
    assert p.returncode == 2 and "generate" in p.stderr and "promote" in p.stderr
    p = cli("rerun", run_id, "--from", "train", "--set", "training.sft.learning_rat=1e-3", home=home)
    assert p.returncode == 2 and "training.sft.learning_rat: unknown key" in p.stderr
    p = cli("rerun", run_id, "--from", "train", "--set", "no-equals", home=home)
    assert p.returncode == 2 and "dotted.key=value" in p.stderr
    assert store.table_count(home.db, "runs") == 1  # nothing was started


def test_stage_commands_say_what_they_need(home, tmp_path):
    p = cli("generate", home=home)
    assert p.returncode == 2 and "--domain" in p.stderr and "--run" in p.stderr
    p = cli("validate", "--run", "x", "--file", str(tmp_path / "rows.jsonl"), home=home)
    assert p.returncode == 2 and "either --run" in p.stderr
    p = cli("validate", home=home)
    assert p.returncode == 2 and "--file" in p.stderr


def test_runs_show_a_run_that_has_not_finished(home):
    run_id = _stored_run(home)
    shown = last_json(cli("runs", "show", run_id, "--json", home=home))
    assert shown["run_id"] == run_id and shown["status"] == "running" and shown["stages"] == []
    assert shown["parent_run_id"] is None and shown["decision"] is None
    assert last_json(cli("datasets", "ls", "--json", home=home)) == {"datasets": []}
    runs = last_json(cli("runs", "ls", "--json", home=home))["runs"]
    assert [(r["run_id"], r["parent_run_id"]) for r in runs] == [(run_id, None)]


def test_help_texts_explain_the_commands_to_a_newcomer(home):
    top = cli("--help", home=home).stdout
    for name in ("generate", "validate", "train", "rerun", "runs", "datasets", "adapters"):
        assert name in top
    rerun_help = cli("rerun", "--help", home=home).stdout
    assert "reuse" in rerun_help and "--from" in rerun_help and "--set" in rerun_help and "parent" in rerun_help
    assert "--run" in cli("train", "--help", home=home).stdout


def test_generate_dry_run_spends_nothing(home):
    est = last_json(cli("generate", "--domain", "regex-python", "--profile", "tiny", "--dry-run", "--json", home=home))
    assert est["requests"] == 300 and not home.db.exists()


@pytest.mark.slow
def test_stage_by_stage_then_rerun_from_train_from_the_command_line(home, tmp_path, prefect_harness):
    env = {"PREFECT_HOME": str(tmp_path / "prefect")}
    gen = last_json(cli("generate", "--domain", "regex-python", "--profile", "tiny", "--json", home=home,
                        timeout=600, env_extra=env))
    run_id = gen["run_id"]
    assert gen["status"] == "partial" and [s["stage"] for s in gen["stages"]] == ["generate"]
    assert gen["stages"][0]["result"]["sent"] == 300
    val = last_json(cli("validate", "--run", run_id, "--json", home=home, timeout=600, env_extra=env))
    c = val["counts"]
    assert c["requested"] == 300 == c["accepted"] + c["quarantined"] + c["failed"]
    tr = last_json(cli("train", "--run", run_id, "--json", home=home, timeout=900, env_extra=env))
    assert tr["status"] == "partial" and tr["dataset_id"] and tr["adapter"]["status"] == "candidate"
    assert [s["stage"] for s in tr["stages"]] == ["generate", "validate", "snapshot", "student", "train"]

    n_calls = store.table_count(home.db, "teacher_calls")
    # the parent's teacher now points at a dead port: any teacher call would fail (and be stored as a row)
    child = last_json(cli("rerun", run_id, "--from", "train", "--set", "training.sft.max_steps=2",
                          "--set", "teacher.provider=openai", "--set", "teacher.model=gone",
                          "--set", "teacher.base_url=http://127.0.0.1:9/v1", "--json",
                          home=home, timeout=900, env_extra=env))
    assert child["status"] == "completed" and child["parent_run_id"] == run_id
    assert store.table_count(home.db, "teacher_calls") == n_calls
    assert child["dataset_id"] == tr["dataset_id"] and child["adapter"]["id"] != tr["adapter"]["id"]
    assert {s["stage"]: s["status"] for s in child["stages"]}["snapshot"] == "reused"

    shown = last_json(cli("runs", "show", child["run_id"], "--json", home=home))
    assert shown["parent_run_id"] == run_id and shown["decision"]["decision"] in ("promoted", "rejected")
    assert {s["stage"] for s in shown["stages"]} >= {"generate", "validate", "snapshot", "train", "evaluate",
                                                     "promote"}
    assert all(s["seconds"] >= 0 for s in shown["stages"])
    datasets = last_json(cli("datasets", "ls", "--json", home=home))["datasets"]
    assert [(d["dataset_id"], d["run_id"], d["n_runs"], d["n_adapters"]) for d in datasets] == [
        (tr["dataset_id"], run_id, 2, 2)]
    assert sum(datasets[0][k] for k in ("n_train", "n_val", "n_test")) == c["accepted"]
    human = cli("runs", "show", child["run_id"], home=home, env_extra={"COLUMNS": "250"})  # no table wrapping
    assert human.returncode == 0 and f"reused from {run_id}" in human.stderr
