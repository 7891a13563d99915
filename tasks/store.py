"""DuckDB store: the ONLY module that speaks SQL.

Rules (see ARCHITECTURE.md): a connection per operation, closed at once; writes are short transactions;
ingest is bulk (Arrow tables registered as relations), never row by row; primary keys plus
``ON CONFLICT DO NOTHING`` make every rerun idempotent. DuckDB locks the file per process, so opening
retries with backoff and then fails with a message that says who to wait for.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, domain VARCHAR, profile VARCHAR, teacher VARCHAR, status VARCHAR,
    parent_run_id VARCHAR, config_json VARCHAR, dataset_id VARCHAR, adapter_id VARCHAR,
    summary_json VARCHAR, error VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS teacher_calls (
    request_hash VARCHAR PRIMARY KEY, teacher VARCHAR, model VARCHAR, request_json VARCHAR, status VARCHAR,
    raw_response VARCHAR, attempts INTEGER, prompt_tokens INTEGER, completion_tokens INTEGER,
    cost_usd DOUBLE, error VARCHAR, created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS run_requests (
    run_id VARCHAR, request_hash VARCHAR, idx INTEGER, topic VARCHAR, outcome VARCHAR, example_id VARCHAR,
    reasons VARCHAR[], PRIMARY KEY (run_id, request_hash));
CREATE TABLE IF NOT EXISTS examples (
    example_id VARCHAR PRIMARY KEY, domain VARCHAR, prompt VARCHAR, completion VARCHAR, description VARCHAR,
    positives VARCHAR[], negatives VARCHAR[], topic VARCHAR, run_id VARCHAR, teacher VARCHAR,
    request_hash VARCHAR, seed BIGINT, validator_version VARCHAR, split VARCHAR, created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS quarantine (
    quarantine_id VARCHAR PRIMARY KEY, domain VARCHAR, run_id VARCHAR, request_hash VARCHAR,
    reasons VARCHAR[], raw_output VARCHAR, description VARCHAR, completion VARCHAR,
    validator_version VARCHAR, created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS datasets (
    dataset_id VARCHAR PRIMARY KEY, domain VARCHAR, run_id VARCHAR, path VARCHAR, n_train INTEGER,
    n_val INTEGER, n_test INTEGER, manifest_json VARCHAR, created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS adapters (
    adapter_id VARCHAR PRIMARY KEY, domain VARCHAR, run_id VARCHAR, dataset_id VARCHAR, base_model VARCHAR,
    path VARCHAR, status VARCHAR, train_json VARCHAR, metrics_json VARCHAR, created_at TIMESTAMP,
    updated_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS evaluations (
    eval_id VARCHAR PRIMARY KEY, run_id VARCHAR, domain VARCHAR, model_ref VARCHAR, role VARCHAR,
    dataset_id VARCHAR, eval_set VARCHAR, metrics_json VARCHAR, created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS evaluation_items (
    eval_id VARCHAR, example_id VARCHAR, topic VARCHAR, output VARCHAR, compiled BOOLEAN,
    semantic_ok BOOLEAN, exact BOOLEAN, output_tokens INTEGER, PRIMARY KEY (eval_id, example_id));
CREATE TABLE IF NOT EXISTS promotions (
    promotion_id VARCHAR PRIMARY KEY, run_id VARCHAR, domain VARCHAR, adapter_id VARCHAR,
    previous_adapter_id VARCHAR, decision VARCHAR, decision_json VARCHAR, created_at TIMESTAMP);
"""

LOCK_RETRY_SECONDS = float(os.environ.get("LORAFORGE_DB_LOCK_TIMEOUT", "60"))


class StoreBusyError(RuntimeError):
    """Another process holds the DuckDB file for longer than we are willing to wait."""


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def connect(db_path: str | Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open DuckDB for one operation, retrying with backoff while another process holds the file lock."""
    path = Path(db_path)
    if not path.exists():  # a fresh home: create the file with every contract table, then open as asked
        path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(path)) as con:
            con.execute(SCHEMA)
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as e:
            if "lock" not in str(e).lower() or time.monotonic() > deadline:
                raise StoreBusyError(
                    f"{path} is locked by another loraforge process; waited {LOCK_RETRY_SECONDS:.0f}s "
                    "(set LORAFORGE_DB_LOCK_TIMEOUT to wait longer)"
                ) from None
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
    try:
        yield con
    finally:
        con.close()


def init_db(db: str | Path) -> None:
    with connect(db) as con:
        con.execute(SCHEMA)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _ingest(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table, conflict: str = "DO NOTHING") -> None:
    if data.num_rows == 0:
        return
    cols = ", ".join(data.column_names)
    con.register("_incoming", data)
    try:
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _incoming ON CONFLICT {conflict}")
    finally:
        con.unregister("_incoming")


# ----------------------------------------------------------------------------------------------- runs
def create_run(db: str | Path, run_id: str, domain: str, profile: str, teacher: str, config: dict,
               parent_run_id: str | None = None) -> None:
    with connect(db) as con:
        con.execute(SCHEMA)
        con.execute(
            "INSERT INTO runs (run_id, domain, profile, teacher, status, parent_run_id, config_json, started_at)"
            " VALUES (?, ?, ?, ?, 'running', ?, ?, ?) ON CONFLICT DO NOTHING",
            [run_id, domain, profile, teacher, parent_run_id, json.dumps(config), now()],
        )


def finish_run(db: str | Path, run_id: str, status: str, summary: dict | None = None,
               error: str | None = None) -> None:
    with connect(db) as con:
        con.execute(
            "UPDATE runs SET status = ?, summary_json = ?, error = ?, finished_at = ?, dataset_id = ?,"
            " adapter_id = ? WHERE run_id = ?",
            [status, json.dumps(summary) if summary else None, error, now(),
             (summary or {}).get("dataset_id"), ((summary or {}).get("adapter") or {}).get("id"), run_id],
        )


def get_run(db: str | Path, run_id: str) -> dict | None:
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT * FROM runs WHERE run_id = ?", [run_id])
    return rows[0] if rows else None


def list_runs(db: str | Path, domain: str | None = None) -> list[dict]:
    with connect(db, read_only=True) as con:
        sql = ("SELECT run_id, domain, profile, teacher, status, dataset_id, adapter_id, started_at, finished_at"
               " FROM runs")
        if domain:
            return _rows(con, sql + " WHERE domain = ? ORDER BY started_at", [domain])
        return _rows(con, sql + " ORDER BY started_at")


# -------------------------------------------------------------------------------------- teacher calls
def cached_call_hashes(db: str | Path, hashes: list[str]) -> set[str]:
    """Request hashes that already have an ``ok`` response (they are never sent again)."""
    with connect(db) as con:
        con.register("_wanted", pa.table({"h": pa.array(hashes, pa.string())}))
        found = con.execute(
            "SELECT request_hash FROM teacher_calls JOIN _wanted ON request_hash = h WHERE status = 'ok'"
        ).fetchall()
    return {r[0] for r in found}


def upsert_teacher_calls(db: str | Path, calls: pa.Table) -> None:
    """Store raw responses; a later ``ok`` replaces an earlier ``failed``, never the other way round."""
    with connect(db) as con:
        _ingest(con, "teacher_calls", calls,
                conflict="(request_hash) DO UPDATE SET status = excluded.status, raw_response = excluded.raw_response,"
                " attempts = teacher_calls.attempts + excluded.attempts, prompt_tokens = excluded.prompt_tokens,"
                " completion_tokens = excluded.completion_tokens, cost_usd = excluded.cost_usd,"
                " error = excluded.error WHERE teacher_calls.status <> 'ok'")


def load_teacher_calls(db: str | Path, hashes: list[str]) -> dict[str, dict]:
    with connect(db) as con:
        con.register("_wanted", pa.table({"h": pa.array(hashes, pa.string())}))
        rows = _rows(con, "SELECT request_hash, status, raw_response, attempts, error, prompt_tokens,"
                          " completion_tokens, cost_usd FROM teacher_calls JOIN _wanted ON request_hash = h")
    return {r["request_hash"]: r for r in rows}


# ---------------------------------------------------------------------------- examples and quarantine
def record_validation(db: str | Path, run_requests: pa.Table, examples: pa.Table, quarantine: pa.Table) -> None:
    """One transaction: every request's outcome, the accepted examples and the quarantined rows."""
    with connect(db) as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM run_requests WHERE run_id = ?", [run_requests["run_id"][0].as_py()]
                    if run_requests.num_rows else ["__none__"])
        _ingest(con, "run_requests", run_requests)
        _ingest(con, "examples", examples)
        _ingest(con, "quarantine", quarantine)
        con.execute("COMMIT")


def record_planned_requests(db: str | Path, run_requests: pa.Table) -> None:
    """The run's requests, outcome ``pending`` until validation states where each one ended."""
    with connect(db) as con:
        _ingest(con, "run_requests", run_requests)


def planned_requests(db: str | Path, run_id: str) -> list[dict]:
    with connect(db, read_only=True) as con:
        return _rows(con, "SELECT request_hash, idx, topic FROM run_requests WHERE run_id = ? ORDER BY idx", [run_id])


def run_counts(db: str | Path, run_id: str) -> dict[str, Any]:
    """Requested/accepted/quarantined/failed counts and quarantine reasons, straight from rows."""
    with connect(db, read_only=True) as con:
        by_outcome = dict(con.execute(
            "SELECT outcome, count(*) FROM run_requests WHERE run_id = ? GROUP BY outcome", [run_id]).fetchall())
        reasons = dict(con.execute(
            "SELECT reason, count(*) FROM (SELECT unnest(reasons) AS reason FROM run_requests"
            " WHERE run_id = ? AND outcome = 'quarantined') GROUP BY reason ORDER BY 2 DESC", [run_id]).fetchall())
    counts = {k: int(by_outcome.get(k, 0)) for k in ("accepted", "quarantined", "failed")}
    counts = {"requested": sum(counts.values()) + int(by_outcome.get("pending", 0)), **counts}
    return {"counts": counts, "quarantine_reasons": {k: int(v) for k, v in reasons.items()}}


def run_examples(db: str | Path, run_id: str) -> pa.Table:
    """The examples a run accepted, in request order."""
    with connect(db, read_only=True) as con:
        return con.execute(
            "SELECT e.* FROM run_requests r JOIN examples e USING (example_id)"
            " WHERE r.run_id = ? AND r.outcome = 'accepted' ORDER BY r.idx", [run_id]).to_arrow_table()


def examples_by_id(db: str | Path, example_ids: list[str]) -> pa.Table:
    with connect(db, read_only=True) as con:
        con.register("_wanted", pa.table({"i": pa.array(example_ids, pa.string())}))
        return con.execute("SELECT e.* FROM examples e JOIN _wanted ON example_id = i").to_arrow_table()


# ---------------------------------------------------------------------------------------- datasets
def record_dataset(db: str | Path, row: dict) -> None:
    with connect(db) as con:
        _ingest(con, "datasets", pa.Table.from_pylist([{**row, "created_at": now()}]))


def get_dataset(db: str | Path, dataset_id: str) -> dict | None:
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT * FROM datasets WHERE dataset_id = ?", [dataset_id])
    return rows[0] if rows else None


def list_datasets(db: str | Path) -> list[dict]:
    with connect(db, read_only=True) as con:
        return _rows(con, "SELECT dataset_id, domain, run_id, path, n_train, n_val, n_test, created_at"
                          " FROM datasets ORDER BY created_at")


# ---------------------------------------------------------------------------------------- adapters
def record_adapter(db: str | Path, row: dict) -> None:
    with connect(db) as con:
        _ingest(con, "adapters", pa.Table.from_pylist([{**row, "created_at": now(), "updated_at": now()}]))


def get_adapter(db: str | Path, adapter_id: str) -> dict | None:
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT * FROM adapters WHERE adapter_id = ?", [adapter_id])
    return rows[0] if rows else None


def promoted_adapter(db: str | Path, domain: str) -> dict | None:
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT * FROM adapters WHERE domain = ? AND status = 'promoted'", [domain])
    return rows[0] if rows else None


def list_adapters(db: str | Path, domain: str | None = None) -> list[dict]:
    with connect(db, read_only=True) as con:
        sql = "SELECT * FROM adapters" + (" WHERE domain = ?" if domain else "") + " ORDER BY created_at, adapter_id"
        return _rows(con, sql, [domain] if domain else [])


def set_adapter_metrics(db: str | Path, adapter_id: str, metrics: dict) -> None:
    with connect(db) as con:
        con.execute("UPDATE adapters SET metrics_json = ?, updated_at = ? WHERE adapter_id = ?",
                    [json.dumps(metrics), now(), adapter_id])


def record_gate_decision(db: str | Path, promotion: dict, *, promote: bool) -> None:
    """One transaction: the candidate becomes promoted (old champion retired) or rejected, plus a promotions row."""
    adapter_id, domain = promotion["adapter_id"], promotion["domain"]
    with connect(db) as con:
        con.execute("BEGIN")
        if promote:
            con.execute("UPDATE adapters SET status = 'retired', updated_at = ? WHERE domain = ?"
                        " AND status = 'promoted' AND adapter_id <> ?", [now(), domain, adapter_id])
        con.execute("UPDATE adapters SET status = ?, updated_at = ? WHERE adapter_id = ?",
                    ["promoted" if promote else "rejected", now(), adapter_id])
        _ingest(con, "promotions", pa.Table.from_pylist([{**promotion, "created_at": now()}]))
        con.execute("COMMIT")


# ------------------------------------------------------------------------------------- evaluations
def record_evaluation(db: str | Path, row: dict, items: pa.Table) -> None:
    with connect(db) as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM evaluation_items WHERE eval_id = ?", [row["eval_id"]])
        con.execute("DELETE FROM evaluations WHERE eval_id = ?", [row["eval_id"]])
        _ingest(con, "evaluations", pa.Table.from_pylist([{**row, "created_at": now()}]))
        _ingest(con, "evaluation_items", items)
        con.execute("COMMIT")


def evaluation_items(db: str | Path, eval_id: str) -> list[dict]:
    with connect(db, read_only=True) as con:
        return _rows(con, "SELECT * FROM evaluation_items WHERE eval_id = ? ORDER BY example_id", [eval_id])


def table_count(db: str | Path, table: str, where: str = "", params: list | None = None) -> int:
    """Row count of a contract table (tests and reports use it to trace figures to rows)."""
    if table not in {"runs", "teacher_calls", "run_requests", "examples", "quarantine", "datasets", "adapters",
                     "evaluations", "evaluation_items", "promotions"}:
        raise ValueError(f"unknown table {table!r}")
    with connect(db, read_only=True) as con:
        return int(con.execute(f"SELECT count(*) FROM {table} {where}", params or []).fetchone()[0])
