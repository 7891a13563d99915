"""The store ingests in bulk, is idempotent, and keeps the registry consistent."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from tasks import store


def _calls(hashes, status="ok"):
    return pa.Table.from_pylist([
        {"request_hash": h, "teacher": "grammar", "model": "m", "request_json": "{}", "status": status,
         "raw_response": "{}" if status == "ok" else None, "attempts": 1, "prompt_tokens": 1,
         "completion_tokens": 2, "cost_usd": 0.0, "error": None if status == "ok" else "boom",
         "created_at": store.now()}
        for h in hashes
    ])


def test_teacher_calls_are_idempotent_and_ok_replaces_failed(home):
    store.init_db(home.db)
    store.upsert_teacher_calls(home.db, _calls(["a", "b"], status="failed"))
    store.upsert_teacher_calls(home.db, _calls(["a"]))
    store.upsert_teacher_calls(home.db, _calls(["a"]))            # rerun: no duplicate
    store.upsert_teacher_calls(home.db, _calls(["a"], "failed"))   # a late failure never overwrites ok
    assert store.table_count(home.db, "teacher_calls") == 2
    assert store.cached_call_hashes(home.db, ["a", "b", "c"]) == {"a"}
    calls = store.load_teacher_calls(home.db, ["a", "b"])
    assert calls["a"]["status"] == "ok" and calls["b"]["status"] == "failed" and calls["b"]["error"] == "boom"


def test_run_counts_add_up_from_rows(home):
    store.create_run(home.db, "r1", "regex-python", "tiny", "grammar", {})
    outcomes = ["accepted", "accepted", "quarantined", "failed"]
    rr = pa.Table.from_pylist([
        {"run_id": "r1", "request_hash": f"h{i}", "idx": i, "topic": "text", "outcome": o, "example_id": None,
         "reasons": ["compile_error"] if o == "quarantined" else []}
        for i, o in enumerate(outcomes)
    ])
    empty = pa.table({})
    store.record_validation(home.db, rr, empty, empty)
    store.record_validation(home.db, rr, empty, empty)  # rerun of validation replaces, never duplicates
    c = store.run_counts(home.db, "r1")
    assert c["counts"] == {"requested": 4, "accepted": 2, "quarantined": 1, "failed": 1}
    assert c["quarantine_reasons"] == {"compile_error": 1}


def test_promotion_keeps_exactly_one_promoted_adapter_per_domain(home):
    store.init_db(home.db)
    for a in ("a1", "a2"):
        store.record_adapter(home.db, {"adapter_id": a, "domain": "d", "run_id": "r", "dataset_id": "ds",
                                       "base_model": "b", "path": "/x", "status": "candidate", "train_json": "{}"})
    for a in ("a1", "a2"):
        store.record_gate_decision(home.db, {"promotion_id": a, "run_id": "r", "domain": "d", "adapter_id": a,
                                             "previous_adapter_id": None, "decision": "promoted",
                                             "decision_json": json.dumps({})}, promote=True)
    statuses = {r["adapter_id"]: r["status"] for r in store.list_adapters(home.db)}
    assert statuses == {"a1": "retired", "a2": "promoted"}
    assert store.promoted_adapter(home.db, "d")["adapter_id"] == "a2"


def test_a_locked_database_fails_with_a_clear_message(home, monkeypatch):
    import multiprocessing as mp

    store.init_db(home.db)
    ready, done = mp.Event(), mp.Event()

    def hold(path):
        import duckdb

        con = duckdb.connect(path)
        ready.set()
        done.wait(20)
        con.close()

    p = mp.get_context("fork").Process(target=hold, args=(str(home.db),))
    p.start()
    try:
        assert ready.wait(20)
        monkeypatch.setattr(store, "LOCK_RETRY_SECONDS", 0.3)
        with pytest.raises(store.StoreBusyError, match="locked by another loraforge process"):
            store.list_runs(home.db)
    finally:
        done.set()
        p.join(10)
