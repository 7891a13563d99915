"""`loraforge doctor` passes on a consistent home and names each kind of damage it is built to find."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from reliability.helpers import cli, cli_env, last_json
from schemas.run import Home
from tasks import store
from tasks.doctor import check_home
from tasks.registry import move_pointer, pointer_path

DOMAIN = "regex-python"


def _calls(hashes: list[str]) -> pa.Table:
    return pa.Table.from_pylist([
        {"request_hash": h, "teacher": "grammar", "model": "m", "request_json": "{}", "status": "ok",
         "raw_response": "{}", "attempts": 1, "prompt_tokens": 1, "completion_tokens": 1, "cost_usd": 0.0,
         "error": None, "created_at": store.now()} for h in hashes])


def _requests(run_id: str, outcomes: dict[str, tuple[str, str | None]]) -> pa.Table:
    return pa.Table.from_pylist([
        {"run_id": run_id, "request_hash": h, "idx": i, "topic": "text", "outcome": o, "example_id": e,
         "reasons": ["compile_error"] if o == "quarantined" else []}
        for i, (h, (o, e)) in enumerate(outcomes.items())])


def _examples(rows: dict[str, str], run_id: str = "r1") -> pa.Table:
    return pa.Table.from_pylist([
        {"example_id": e, "domain": DOMAIN, "prompt": f"regex: {e}\n", "completion": "\\d+", "description": e,
         "kind_json": '{"positives": ["1"], "negatives": ["a"]}', "topic": "text", "run_id": run_id,
         "teacher": "grammar", "request_hash": h, "seed": 0, "validator_version": "v", "split": "train",
         "created_at": store.now()}
        for e, h in rows.items()])


def _adapter(home: Home, adapter_id: str, dataset_id: str = "ds-1", status: str = "candidate") -> str:
    path = home.adapters / DOMAIN / adapter_id
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text("{}")
    store.record_adapter(home.db, {"adapter_id": adapter_id, "domain": DOMAIN, "run_id": "r1",
                                   "dataset_id": dataset_id, "base_model": "b", "path": str(path), "status": status,
                                   "train_json": "{}"})
    return str(path)


def _promote(home: Home, adapter_id: str, path: str) -> None:
    store.record_gate_decision(home.db, {"promotion_id": f"p-{adapter_id}", "run_id": "r1", "domain": DOMAIN,
                                         "adapter_id": adapter_id, "previous_adapter_id": None,
                                         "decision": "promoted", "decision_json": "{}"}, promote=True)
    move_pointer(home.adapters, DOMAIN, path)


@pytest.fixture
def healthy(home) -> Home:
    """A small but complete home: a finished run, its calls, examples, quarantine, dataset, evaluated and
    promoted adapter, and the pointer — built through the store's own functions."""
    store.create_run(home.db, "r1", DOMAIN, "tiny", "grammar", {})
    store.upsert_teacher_calls(home.db, _calls(["h1", "h2", "h3"]))
    quarantine = pa.Table.from_pylist([
        {"quarantine_id": "q3", "domain": DOMAIN, "run_id": "r1", "request_hash": "h3", "reasons": ["compile_error"],
         "raw_output": "{}", "description": None, "completion": None, "validator_version": "v",
         "created_at": store.now()}])
    store.record_validation(home.db, _requests("r1", {"h1": ("accepted", "e1"), "h2": ("accepted", "e2"),
                                                      "h3": ("quarantined", None)}),
                            _examples({"e1": "h1", "e2": "h2"}), quarantine)
    ds = home.datasets / "ds-1"
    ds.mkdir(parents=True)
    (ds / "manifest.json").write_text("{}")
    store.record_dataset(home.db, {"dataset_id": "ds-1", "domain": DOMAIN, "run_id": "r1", "path": str(ds),
                                   "n_train": 2, "n_val": 0, "n_test": 0, "manifest_json": "{}"})
    path = _adapter(home, "ad-1")
    store.save_evaluation(home.db, {"eval_id": "ev-1", "run_id": "r1", "domain": DOMAIN, "model_ref": "ad-1",
                                      "role": "candidate", "dataset_id": "ds-1", "eval_set": "test",
                                      "metrics_json": "{}"},
                            pa.Table.from_pylist([{"eval_id": "ev-1", "example_id": "e1", "topic": "text",
                                                   "output": "\\d+", "semantic_ok": True, "exact": True,
                                                   "output_tokens": 2, "kind_json": '{"compiled": true}'}]))
    store.save_evaluation(home.db, {"eval_id": "ev-golden", "run_id": "r1", "domain": DOMAIN, "model_ref": "ad-1",
                                      "role": "candidate", "dataset_id": "ds-1", "eval_set": "golden",
                                      "metrics_json": json.dumps({"n": 0, "n_excluded": 0})}, pa.table({}))
    _promote(home, "ad-1", path)
    store.finish_run(home.db, "r1", "completed", {"counts": {"requested": 3, "accepted": 2, "quarantined": 1,
                                                             "failed": 0}, "dataset_id": "ds-1",
                                                  "adapter": {"id": "ad-1", "status": "promoted"}})
    return home


def _failed(report: dict) -> dict[str, str]:
    return {c["name"]: c["detail"] for c in report["checks"] if not c["ok"]}


def test_doctor_passes_on_a_consistent_home_and_prints_one_json_object(healthy, tmp_path):
    report = check_home(healthy)
    assert report["ok"] and not _failed(report)
    assert {c["name"] for c in report["checks"]} >= {"database", "run_counts", "duplicate_keys", "lineage",
                                                     "one_promoted_per_domain", "pointer_matches_registry"}
    p = cli("doctor", "--json", env=cli_env(tmp_path, LORAFORGE_HOME=str(healthy.root)))
    assert p.returncode == 0, p.stderr
    out = last_json(p.stdout)
    assert out["ok"] is True and all(set(c) == {"name", "ok", "detail"} for c in out["checks"])


def test_doctor_on_a_fresh_home_is_ok_and_creates_nothing(home):
    assert check_home(home)["ok"]
    assert not home.root.exists()


def test_doctor_finds_a_finished_run_with_requests_left_pending(healthy):
    store.record_planned_requests(healthy.db, _requests("r1", {"h9": ("pending", None)}))
    failed = _failed(check_home(healthy))
    assert "run r1 (completed): 1 request(s) still 'pending'" in failed["run_counts"]


def test_doctor_finds_a_summary_that_disagrees_with_the_rows(healthy):
    store.finish_run(healthy.db, "r1", "completed", {"counts": {"requested": 3, "accepted": 3, "quarantined": 0,
                                                                "failed": 0}, "dataset_id": "ds-1",
                                                     "adapter": {"id": "ad-1", "status": "promoted"}})
    assert "summary counts" in _failed(check_home(healthy))["run_counts"]


def test_doctor_finds_orphaned_lineage(healthy):
    store.record_validation(healthy.db, _requests("r2", {"h7": ("accepted", "e-gone")}),
                            _examples({"e-orphan": "h-never-called"}, "r2"), pa.table({}))
    _adapter(healthy, "ad-orphan", dataset_id="ds-gone")
    store.save_evaluation(healthy.db, {"eval_id": "ev-empty", "run_id": "r1", "domain": DOMAIN,
                                         "model_ref": "ad-1", "role": "base", "dataset_id": "ds-1",
                                         "eval_set": "test", "metrics_json": "{}"}, pa.table({}))
    detail = _failed(check_home(healthy))["lineage"]
    for expected in ("example e-orphan (request h-never-called)", "run r2 request h7 → missing example e-gone",
                     "adapter ad-orphan → missing dataset ds-gone", "evaluation ev-empty (base) has no items"):
        assert expected in detail


def test_doctor_finds_two_promoted_adapters_in_one_domain(healthy):
    _adapter(healthy, "ad-2", status="promoted")
    assert "regex-python: 2 promoted (ad-1, ad-2)" in _failed(check_home(healthy))["one_promoted_per_domain"]


def test_doctor_finds_a_pointer_that_disagrees_with_the_registry(healthy):
    other = _adapter(healthy, "ad-2")
    move_pointer(healthy.adapters, DOMAIN, other)  # the crash-in-promotion shape: pointer moved, registry not
    assert "registry promotes ad-1" in _failed(check_home(healthy))["pointer_matches_registry"]
    pointer_path(healthy.adapters, DOMAIN).unlink()
    assert "is missing" in _failed(check_home(healthy))["pointer_matches_registry"]


def test_doctor_finds_duplicate_keys_in_a_file_that_lost_its_constraints(home):
    home.root.mkdir(parents=True)
    with duckdb.connect(str(home.db)) as con:  # fault injection: a file whose examples lost their primary key
        con.execute(store.latest_schema().replace("example_id VARCHAR PRIMARY KEY", "example_id VARCHAR"))
        con.register("_e", _examples({"e1": "h1"}))
        con.execute("INSERT INTO examples BY NAME SELECT * FROM _e")
        con.execute("INSERT INTO examples BY NAME SELECT * FROM _e")
    assert _failed(check_home(home))["duplicate_keys"] == "duplicated keys per table: {'examples': 1}"


def test_doctor_reports_an_unreadable_database_file_clearly(home, tmp_path):
    home.root.mkdir(parents=True)
    Path(home.db).write_bytes(b"this is not a duckdb file" * 1000)
    report = check_home(home)
    assert not report["ok"] and "cannot be read" in _failed(report)["database"]
    p = cli("doctor", env=cli_env(tmp_path, LORAFORGE_HOME=str(home.root)))
    assert p.returncode == 1 and "problem: database" in p.stderr and "Traceback" not in p.stderr
    assert json.loads(json.dumps(report))  # serialisable as the --json object
