"""End to end: the pipeline under a Prefect test harness, asserting on what DuckDB holds afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks import store

pytestmark = pytest.mark.slow


def _check_run_rows(home, summary: dict) -> None:
    db, run_id = home.db, summary["run_id"]
    c = summary["counts"]
    assert summary["status"] == "completed"
    assert c["requested"] == c["accepted"] + c["quarantined"] + c["failed"]
    # every figure traces back to rows
    assert store.table_count(db, "run_requests", "WHERE run_id = ?", [run_id]) == c["requested"]
    assert store.table_count(db, "run_requests", "WHERE run_id = ? AND outcome = 'accepted'", [run_id]) == c["accepted"]
    assert sum(summary["quarantine_reasons"].values()) >= c["quarantined"]
    # lineage on every accepted example
    ex = store.run_examples(db, run_id).to_pylist()
    assert len(ex) == c["accepted"]
    assert all(e["request_hash"] and e["validator_version"] and e["teacher"] == "grammar" and e["split"] for e in ex)
    ds = store.get_dataset(db, summary["dataset_id"])
    assert ds["n_train"] + ds["n_val"] + ds["n_test"] == c["accepted"]
    adapter = store.get_adapter(db, summary["adapter"]["id"])
    assert adapter["status"] == summary["adapter"]["status"] in ("promoted", "rejected")
    for name in ("adapter_config.json", "adapter_model.safetensors", "metrics.json"):
        assert (Path(adapter["path"]) / name).exists()
    decision = store.table_count(db, "promotions", "WHERE adapter_id = ? AND decision = ?",
                                 [adapter["adapter_id"], adapter["status"]])
    assert decision == 1
    n_eval = store.table_count(db, "evaluation_items", "WHERE eval_id IN (SELECT eval_id FROM evaluations"
                                                       " WHERE run_id = ? AND role = 'candidate'"
                                                       " AND eval_set = 'test') AND NOT coalesce(excluded, false)",
                                 [run_id])
    assert n_eval == summary["eval"]["candidate"]["n"] > 0


def _check_gate_follows_the_measured_figures(run: dict, cfg) -> None:
    """The decision is the measured figures against the profile's thresholds: the golden checks are there over an
    empty slot, carry the candidate's and the base model's measured golden figures, and the run is promoted
    exactly when no check failed."""
    gate, cand, base = run["gate"], run["eval"]["candidate"], run["eval"]["base"]
    checks = {c["name"]: c for c in gate["checks"]}
    floor, beat = checks["min_golden_semantic_accuracy"], checks["golden_improvement_over_base"]
    assert not floor.get("skipped") and not beat.get("skipped")
    assert cand["golden"]["n"] > 0 and floor["value"] == cand["golden"]["semantic_accuracy"]
    assert floor["threshold"] == cfg.gate.min_golden_semantic_accuracy > 0
    assert floor["passed"] == (floor["value"] >= floor["threshold"])
    assert beat["base_semantic_accuracy"] == base["golden"]["semantic_accuracy"] and beat["n"] == cand["golden"]["n"]
    assert beat["delta"] == round(cand["golden"]["semantic_accuracy"] - base["golden"]["semantic_accuracy"], 4)
    assert beat["passed"] == (beat["value"] > beat["threshold"])
    assert gate["failed"] == [c["name"] for c in gate["checks"] if not c["passed"]]
    assert (run["adapter"]["status"] == "promoted") == (gate["failed"] == [])


def test_quick_profile_end_to_end_and_rerun_is_idempotent(home, prefect_harness):
    from flows.pipeline import distill_to_adapter
    from schemas.config import load_domain

    cfg = load_domain("regex-python", "quick")
    first = distill_to_adapter(domain="regex-python", profile="quick", home=str(home.root))
    _check_run_rows(home, first)
    base, cand = first["eval"]["base"], first["eval"]["candidate"]
    trained = json.loads(store.get_adapter(home.db, first["adapter"]["id"])["train_json"])
    assert trained["final_logged_loss"] < 0.5 * trained["first_logged_loss"]  # the quick LoRA really learns
    # ... to answer briefly: the random-init base rambles to the token limit, the candidate stops on its own
    assert cand["mean_output_tokens"] < 0.5 * base["mean_output_tokens"], (cand, base)
    _check_gate_follows_the_measured_figures(first, cfg)
    n_examples = store.table_count(home.db, "examples")
    n_calls = store.table_count(home.db, "teacher_calls")

    second = distill_to_adapter(domain="regex-python", profile="quick", home=str(home.root))
    _check_run_rows(home, second)
    assert second["dataset_id"] == first["dataset_id"]
    assert store.table_count(home.db, "examples") == n_examples      # no duplicate examples
    assert store.table_count(home.db, "teacher_calls") == n_calls    # zero new teacher calls
    assert second["counts"] == first["counts"]
    _check_gate_follows_the_measured_figures(second, cfg)
    promoted = [a for a in store.list_adapters(home.db, "regex-python") if a["status"] == "promoted"]
    assert [a["adapter_id"] for a in promoted] == [r["adapter"]["id"] for r in (first, second)
                                                   if r["adapter"]["status"] == "promoted"][-1:]
    # the second candidate met the first as its champion exactly when the first was promoted
    assert (second["eval"]["champion"] is not None) == (first["adapter"]["status"] == "promoted")


def test_cli_tiny_run_prints_the_run_contract_as_last_json_line(tmp_path, prefect_harness):
    env = {**os.environ, "LORAFORGE_HOME": str(tmp_path / "home"), "PREFECT_HOME": str(tmp_path / "prefect")}
    p = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--domain", "regex-python", "--profile", "tiny",
                        "--json"], capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    run = json.loads(p.stdout.strip().splitlines()[-1])
    assert set(run) >= {"run_id", "domain", "profile", "status", "counts", "quarantine_reasons", "dataset_id",
                        "adapter", "eval", "seconds"}
    assert run["status"] == "completed" and run["profile"] == "tiny"
    assert all(isinstance(v, int) for v in run["counts"].values())
    c = run["counts"]
    assert c["requested"] == 300 == c["accepted"] + c["quarantined"] + c["failed"]
    assert run["adapter"]["status"] in ("promoted", "rejected")
    assert set(run["eval"]) == {"base", "candidate", "champion"}
    assert {"total", "generate", "validate", "train", "evaluate"} <= set(run["seconds"])

    ls = subprocess.run([sys.executable, "-m", "flows.cli", "adapters", "ls", "--json"], capture_output=True,
                        text=True, env=env, timeout=120)
    adapters = json.loads(ls.stdout.strip().splitlines()[-1])["adapters"]
    assert [a["id"] for a in adapters] == [run["adapter"]["id"]]
    assert adapters[0]["metrics"]["n"] == run["eval"]["candidate"]["n"]
    runs = subprocess.run([sys.executable, "-m", "flows.cli", "runs", "ls", "--json"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert [r["run_id"] for r in json.loads(runs.stdout.strip().splitlines()[-1])["runs"]] == [run["run_id"]]


def test_openai_teacher_path_end_to_end_against_a_loopback_server(home, prefect_harness, monkeypatch):
    """The real openai client, a loopback OpenAI-compatible server with faults: every request is accounted for."""
    from flows.pipeline import distill_to_adapter
    from tasks.teacher.mock_server import MockTeacherServer

    key = "sk-test-SECRET-4242"
    monkeypatch.setenv("LORAFORGE_TEST_KEY", key)
    with MockTeacherServer(fault_rate=0.15, seed=3) as server:
        summary = distill_to_adapter(
            domain="regex-python", profile="tiny", home=str(home.root),
            overrides={"teacher.provider": "openai", "teacher.model": "mock-teacher",
                       "teacher.base_url": server.base_url, "teacher.api_key_env": "LORAFORGE_TEST_KEY",
                       "teacher.max_retries": 1, "dataset.n_requests": 120},
        )
        received = server.requests_received
    c = summary["counts"]
    assert summary["status"] == "completed"
    assert c["requested"] == 120 == c["accepted"] + c["quarantined"] + c["failed"]
    assert c["accepted"] > 60
    assert store.table_count(home.db, "teacher_calls") == 120
    assert received >= 120
    # a rerun of generation sends only what has no ok response yet
    n_ok = store.table_count(home.db, "teacher_calls", "WHERE status = 'ok'")
    assert n_ok == c["accepted"] + c["quarantined"]
    # the key is nowhere in the database file
    assert key.encode() not in home.db.read_bytes()
