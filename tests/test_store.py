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


# ----------------------------------------------------------------------------- schema versions and readers
# The spine's schema (commit cb1f4b0), before tables and columns were added and before schema versions: a file
# made by that code must be migrated on first open, its rows kept.
SPINE_SCHEMA = """
CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, domain VARCHAR, profile VARCHAR, teacher VARCHAR, status VARCHAR,
    parent_run_id VARCHAR, config_json VARCHAR, dataset_id VARCHAR, adapter_id VARCHAR, summary_json VARCHAR,
    error VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP);
CREATE TABLE teacher_calls (request_hash VARCHAR PRIMARY KEY, teacher VARCHAR, model VARCHAR, request_json VARCHAR,
    status VARCHAR, raw_response VARCHAR, attempts INTEGER, prompt_tokens INTEGER, completion_tokens INTEGER,
    cost_usd DOUBLE, error VARCHAR, created_at TIMESTAMP);
CREATE TABLE run_requests (run_id VARCHAR, request_hash VARCHAR, idx INTEGER, topic VARCHAR, outcome VARCHAR,
    example_id VARCHAR, reasons VARCHAR[], PRIMARY KEY (run_id, request_hash));
CREATE TABLE examples (example_id VARCHAR PRIMARY KEY, domain VARCHAR, prompt VARCHAR, completion VARCHAR,
    description VARCHAR, positives VARCHAR[], negatives VARCHAR[], topic VARCHAR, run_id VARCHAR, teacher VARCHAR,
    request_hash VARCHAR, seed BIGINT, validator_version VARCHAR, split VARCHAR, created_at TIMESTAMP);
CREATE TABLE quarantine (quarantine_id VARCHAR PRIMARY KEY, domain VARCHAR, run_id VARCHAR, request_hash VARCHAR,
    reasons VARCHAR[], raw_output VARCHAR, description VARCHAR, completion VARCHAR, validator_version VARCHAR,
    created_at TIMESTAMP);
CREATE TABLE datasets (dataset_id VARCHAR PRIMARY KEY, domain VARCHAR, run_id VARCHAR, path VARCHAR,
    n_train INTEGER, n_val INTEGER, n_test INTEGER, manifest_json VARCHAR, created_at TIMESTAMP);
CREATE TABLE adapters (adapter_id VARCHAR PRIMARY KEY, domain VARCHAR, run_id VARCHAR, dataset_id VARCHAR,
    base_model VARCHAR, path VARCHAR, status VARCHAR, train_json VARCHAR, metrics_json VARCHAR, created_at TIMESTAMP,
    updated_at TIMESTAMP);
CREATE TABLE evaluations (eval_id VARCHAR PRIMARY KEY, run_id VARCHAR, domain VARCHAR, model_ref VARCHAR,
    role VARCHAR, dataset_id VARCHAR, eval_set VARCHAR, metrics_json VARCHAR, created_at TIMESTAMP);
CREATE TABLE evaluation_items (eval_id VARCHAR, example_id VARCHAR, topic VARCHAR, output VARCHAR, compiled BOOLEAN,
    semantic_ok BOOLEAN, exact BOOLEAN, output_tokens INTEGER, PRIMARY KEY (eval_id, example_id));
CREATE TABLE promotions (promotion_id VARCHAR PRIMARY KEY, run_id VARCHAR, domain VARCHAR, adapter_id VARCHAR,
    previous_adapter_id VARCHAR, decision VARCHAR, decision_json VARCHAR, created_at TIMESTAMP);
INSERT INTO runs (run_id, domain, profile, teacher, status, started_at) VALUES
    ('old-run', 'regex-python', 'tiny', 'grammar', 'completed', TIMESTAMP '2026-11-01 10:00:00');
INSERT INTO adapters (adapter_id, domain, run_id, dataset_id, base_model, path, status, created_at, updated_at)
    VALUES ('old-ad', 'regex-python', 'old-run', 'ds', 'b', '/x', 'promoted', TIMESTAMP '2026-11-01 10:00:00',
    TIMESTAMP '2026-11-01 10:00:00');
"""

HOLD_READ_ONLY = r"""
import sys
from tasks import store
with store.connect(sys.argv[1], read_only=True) as con:
    con.execute("SELECT count(*) FROM runs").fetchall()
    print("holding", flush=True)
    sys.stdin.readline()  # until the test says so
"""


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _schema_version(db) -> int:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT max(version) FROM schema_version").fetchone()[0]


def _loraforge(*args: str, env: dict) -> dict:
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env,
                       timeout=900)
    assert p.returncode == 0, (args, p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def run_home(tmp_path_factory):
    """A home holding one real tiny run (teacher calls, examples, dataset, adapter, evaluations, promotion)."""
    import os

    tmp = tmp_path_factory.mktemp("store-readers")
    env = {**os.environ, "LORAFORGE_HOME": str(tmp / "home"), "PREFECT_HOME": str(tmp / "prefect")}
    run = _loraforge("run", "--domain", "regex-python", "--profile", "tiny", "--json", env=env)
    assert run["status"] == "completed"
    return tmp / "home" / "loraforge.duckdb", env, run


def test_read_commands_leave_the_database_file_byte_for_byte_unchanged(run_home):
    db, env, run = run_home
    before = _sha256(db)
    reads = {("runs", "ls"): lambda o: [r["run_id"] for r in o["runs"]] == [run["run_id"]],
             ("runs", "show", run["run_id"]): lambda o: o["run_id"] == run["run_id"],
             ("adapters", "ls"): lambda o: [a["id"] for a in o["adapters"]] == [run["adapter"]["id"]],
             ("datasets", "ls"): lambda o: [d["dataset_id"] for d in o["datasets"]] == [run["dataset_id"]],
             ("doctor",): lambda o: o["ok"] is True}
    for args, shows_the_run in reads.items():
        out = _loraforge(*args, "--json", env=env)
        assert shows_the_run(out), (args, out)
        assert _sha256(db) == before, f"`loraforge {' '.join(args)} --json` changed {db}"
        assert not db.with_name(db.name + ".wal").exists(), f"`loraforge {' '.join(args)}` left a WAL"


def test_every_read_works_while_another_process_holds_a_read_only_connection(run_home, monkeypatch):
    """Readers share the file: no read function asks for the write lock a reader in another process blocks."""
    import os
    import subprocess
    import sys

    db, env, run = run_home
    holder = subprocess.Popen([sys.executable, "-c", HOLD_READ_ONLY, str(db)], env={**env, "PYTHONPATH": os.getcwd()},
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding", holder.stderr.read()
        monkeypatch.setattr(store, "LOCK_RETRY_SECONDS", 0.3)
        run_id, domain, adapter_id = run["run_id"], run["domain"], run["adapter"]["id"]
        hashes = [r["request_hash"] for r in store.planned_requests(db, run_id)]
        evals = store.list_evaluations(db, run_id)
        assert len(hashes) == run["counts"]["requested"] and evals
        assert store.get_run(db, run_id)["status"] == "completed"
        assert [r["run_id"] for r in store.list_runs(db)] == [run_id]
        assert [r["run_id"] for r in store.list_runs_with_parents(db, domain)] == [run_id]
        assert store.run_counts(db, run_id)["counts"] == run["counts"]
        assert store.run_examples(db, run_id).num_rows == run["counts"]["accepted"]
        assert len(store.run_request_outcomes(db, run_id)) == len(hashes)
        assert len(store.cached_call_hashes(db, hashes)) == len(hashes)
        assert len(store.load_teacher_calls(db, hashes)) == len(hashes)
        assert store.teacher_calls_summary(db, hashes)["ok"]["n"] == len(hashes)
        assert store.teacher_call_stats(db, "no-such-model")["n"] == 0
        assert store.unsent_requests(db, run_id) == []
        assert store.teacher_batches(db, run_id) == [] and store.open_teacher_batch(db, "nope") is None
        assert store.get_dataset(db, run["dataset_id"])["dataset_id"] == run["dataset_id"]
        assert [d["dataset_id"] for d in store.datasets_overview(db)] == [run["dataset_id"]]
        assert store.get_adapter(db, adapter_id)["adapter_id"] == adapter_id
        assert [a["adapter_id"] for a in store.list_adapters(db, domain)] == [adapter_id]
        assert store.adapter_domains(db) == [domain]
        assert [p["decision"] for p in store.promotion_history(db, domain)] == [store.run_decision(db, run_id)
                                                                                  ["decision"]]
        assert store.get_evaluation(db, evals[0]["eval_id"])["eval_id"] == evals[0]["eval_id"]
        assert store.cached_evaluation(db, evals[0]["cache_key"])[0]["eval_id"] is not None
        assert len(store.evaluation_items(db, evals[0]["eval_id"])) >= len(store.scored_items(db, evals[0]["eval_id"]))
        assert store.run_evaluations(db, run_id)["candidate"] is not None
        assert [s["stage"] for s in store.run_stages(db, run_id)][:1] == ["generate"]
        assert store.table_count(db, "runs") == 1 and not any(store.integrity_report(db).values())
        assert store.doctor_table_counts(db)["runs"] == 1 and set(store.doctor_queries(db)) >= {"promoted_per_domain"}
        with store.connect(db, read_only=True) as a, store.connect(db, read_only=True) as b:  # two readers here too
            n_a, n_b = (c.execute("SELECT count(*) FROM runs").fetchall() for c in (a, b))
            assert n_a == n_b == [(1,)]
        with pytest.raises(store.StoreBusyError):  # and the holder really shares the file only with readers
            store.set_run_status(db, run_id, "completed")
    finally:
        holder.communicate("done\n", timeout=60)


def test_a_database_from_before_schema_versions_is_migrated_and_keeps_its_rows(home):
    import duckdb

    home.root.mkdir(parents=True)
    with duckdb.connect(str(home.db)) as con:
        con.execute(SPINE_SCHEMA)
    assert [r["run_id"] for r in store.list_runs(home.db)] == ["old-run"]  # a read on the old file works
    assert _schema_version(home.db) == len(store.MIGRATIONS)
    store.record_stage(home.db, "old-run", "generate", "completed", seconds=1.0)  # tables added since the spine
    store.set_adapter_uri(home.db, "old-ad", "s3://bucket/old-ad")                  # columns added since the spine
    store.save_evaluation(home.db, {"eval_id": "e1", "run_id": "old-run", "domain": "regex-python",
                                    "model_ref": "old-ad", "role": "candidate", "dataset_id": "ds", "eval_set": "test",
                                    "metrics_json": "{}", "cache_key": "k"},
                          pa.Table.from_pylist([{"eval_id": "e1", "example_id": "x", "excluded": False}]))
    assert store.cached_evaluation(home.db, "k")[1][0]["excluded"] is False
    assert store.get_adapter(home.db, "old-ad")["uri"] == "s3://bucket/old-ad"
    assert store.promoted_adapter(home.db, "regex-python")["adapter_id"] == "old-ad"
    assert [s["stage"] for s in store.run_stages(home.db, "old-run")] == ["generate"]
    before = _sha256(home.db)
    store.list_runs(home.db)  # migrated once: the next read writes nothing
    assert _sha256(home.db) == before


def test_a_fresh_database_is_created_at_the_latest_schema_version(home):
    assert store.list_runs(home.db) == []  # a read on a home without a database, as the ls commands do
    assert _schema_version(home.db) == len(store.MIGRATIONS)
    store.init_db(home.db)
    assert _schema_version(home.db) == len(store.MIGRATIONS)


def test_a_read_inside_this_process_s_write_connection_reads_through_it(home):
    """DuckDB refuses a read-only open of a file this process has open read-write; the read still works."""
    store.create_run(home.db, "r1", "regex-python", "tiny", "grammar", {})
    with store.connect(home.db) as con:
        con.execute("UPDATE runs SET status = 'completed' WHERE run_id = 'r1'")
        assert store.get_run(home.db, "r1")["status"] == "completed"


def test_a_database_from_a_newer_loraforge_is_refused_with_the_versions_named_and_doctor_says_so(home):
    import duckdb

    from tasks.doctor import check_home

    store.init_db(home.db)
    newer = len(store.MIGRATIONS) + 1
    with duckdb.connect(str(home.db)) as con:
        con.execute("INSERT INTO schema_version SELECT ?, * EXCLUDE (version) FROM schema_version LIMIT 1", [newer])
    with pytest.raises(store.StoreVersionError, match=f"schema version {newer}"):
        store.list_runs(home.db)
    report = check_home(home)
    assert not report["ok"] and [c["name"] for c in report["checks"]] == ["database"]
    assert f"schema version {newer}" in report["checks"][0]["detail"]
