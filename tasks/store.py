"""DuckDB store: the ONLY module that speaks SQL to loraforge's own database.

Rules (see ARCHITECTURE.md): a connection per operation, closed at once; writes are short transactions;
ingest is bulk (Arrow tables registered as relations), never row by row; primary keys plus
``ON CONFLICT DO NOTHING`` make every rerun idempotent.

Schema: ``MIGRATIONS`` is the ordered list of schema changes (SQL, or a function of the connection where the
change depends on what a file holds); ``schema_version`` records which ones a file has.
The first open of a file (read or write) creates it or applies what it lacks, once; after that no open runs
DDL. Reads use read-only connections, so several readers (the `ls` commands, ``doctor``) share
the file and never change a byte of it. DuckDB locks the file per process (one writer, or many readers), so
opening retries with backoff and then fails with a message that says who to wait for.

The module has one section per table (a few functions span two, e.g. validation writes requests, examples
and quarantine in one transaction); the integrity queries of ``loraforge doctor`` come last.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

# ------------------------------------------------------------------------------------------------- schema
# Append a migration to change the schema; never edit one that has shipped (files out there have applied it).
MIGRATIONS: list[str | Callable[[duckdb.DuckDBPyConnection], None]] = [
    # 1. Every table. IF NOT EXISTS and the ALTERs at the end let this first version also adopt a file made
    #    before schema versions, at any point of its history (the ALTERs add the columns such files may lack).
    """
    CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, domain VARCHAR, profile VARCHAR, teacher VARCHAR, status VARCHAR,
        parent_run_id VARCHAR, config_json VARCHAR, dataset_id VARCHAR, adapter_id VARCHAR,
        summary_json VARCHAR, error VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP);
    -- one row per (run, stage): how it ended (completed | failed | reused from a parent run) and a compact result
    CREATE TABLE IF NOT EXISTS run_stages (
        run_id VARCHAR, stage VARCHAR, status VARCHAR, source_run_id VARCHAR, seconds DOUBLE, result_json VARCHAR,
        error VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, PRIMARY KEY (run_id, stage));
    -- a run's planned teacher requests and where each ended (pending | accepted | quarantined | failed)
    CREATE TABLE IF NOT EXISTS run_requests (
        run_id VARCHAR, request_hash VARCHAR, idx INTEGER, topic VARCHAR, outcome VARCHAR, example_id VARCHAR,
        reasons VARCHAR[], PRIMARY KEY (run_id, request_hash));
    -- request hash -> raw response, tokens, cost, attempts (shared by every run: a stored answer is never bought twice)
    CREATE TABLE IF NOT EXISTS teacher_calls (
        request_hash VARCHAR PRIMARY KEY, teacher VARCHAR, model VARCHAR, request_json VARCHAR, status VARCHAR,
        raw_response VARCHAR, attempts INTEGER, prompt_tokens INTEGER, completion_tokens INTEGER,
        cost_usd DOUBLE, error VARCHAR, created_at TIMESTAMP);
    -- planned requests the budget cap kept from being sent (moved here out of run_requests)
    CREATE TABLE IF NOT EXISTS teacher_unsent (
        run_id VARCHAR, request_hash VARCHAR, idx INTEGER, topic VARCHAR, reason VARCHAR, created_at TIMESTAMP,
        PRIMARY KEY (run_id, request_hash));
    -- Batch API jobs, persisted the moment they exist
    CREATE TABLE IF NOT EXISTS teacher_batches (
        batch_id VARCHAR PRIMARY KEY, batch_key VARCHAR, run_id VARCHAR, model VARCHAR, status VARCHAR,
        input_file_id VARCHAR, output_file_id VARCHAR, error_file_id VARCHAR, n_requests INTEGER,
        resubmission INTEGER, created_at TIMESTAMP, updated_at TIMESTAMP);
    -- accepted examples with lineage; flags: what the validator did to one (e.g. "normalised")
    CREATE TABLE IF NOT EXISTS examples (
        example_id VARCHAR PRIMARY KEY, domain VARCHAR, prompt VARCHAR, completion VARCHAR, description VARCHAR,
        positives VARCHAR[], negatives VARCHAR[], topic VARCHAR, run_id VARCHAR, teacher VARCHAR,
        request_hash VARCHAR, seed BIGINT, validator_version VARCHAR, split VARCHAR, created_at TIMESTAMP,
        flags VARCHAR[]);
    CREATE TABLE IF NOT EXISTS quarantine (
        quarantine_id VARCHAR PRIMARY KEY, domain VARCHAR, run_id VARCHAR, request_hash VARCHAR,
        reasons VARCHAR[], raw_output VARCHAR, description VARCHAR, completion VARCHAR,
        validator_version VARCHAR, created_at TIMESTAMP);
    CREATE TABLE IF NOT EXISTS datasets (
        dataset_id VARCHAR PRIMARY KEY, domain VARCHAR, run_id VARCHAR, path VARCHAR, n_train INTEGER,
        n_val INTEGER, n_test INTEGER, manifest_json VARCHAR, created_at TIMESTAMP);
    -- status: candidate | promoted | rejected | retired; uri: where the adapter was published (fsspec URL)
    CREATE TABLE IF NOT EXISTS adapters (
        adapter_id VARCHAR PRIMARY KEY, domain VARCHAR, run_id VARCHAR, dataset_id VARCHAR, base_model VARCHAR,
        path VARCHAR, status VARCHAR, train_json VARCHAR, metrics_json VARCHAR, created_at TIMESTAMP,
        updated_at TIMESTAMP, uri VARCHAR);
    -- cache_key: a model's results on the very same items and settings are reused
    CREATE TABLE IF NOT EXISTS evaluations (
        eval_id VARCHAR PRIMARY KEY, run_id VARCHAR, domain VARCHAR, model_ref VARCHAR, role VARCHAR,
        dataset_id VARCHAR, eval_set VARCHAR, metrics_json VARCHAR, created_at TIMESTAMP, cache_key VARCHAR);
    -- per item: the item itself, the verdicts, the ReDoS finding and whether it was excluded (training overlap)
    CREATE TABLE IF NOT EXISTS evaluation_items (
        eval_id VARCHAR, example_id VARCHAR, topic VARCHAR, output VARCHAR, compiled BOOLEAN,
        semantic_ok BOOLEAN, exact BOOLEAN, output_tokens INTEGER, prompt VARCHAR, reference VARCHAR,
        excluded BOOLEAN, timed_out BOOLEAN, equivalence VARCHAR, n_distinguishing INTEGER, redos VARCHAR,
        latency_ms DOUBLE, PRIMARY KEY (eval_id, example_id));
    -- gate decisions and registry changes; forced/reason: `loraforge promote --force --reason TEXT`
    CREATE TABLE IF NOT EXISTS promotions (
        promotion_id VARCHAR PRIMARY KEY, run_id VARCHAR, domain VARCHAR, adapter_id VARCHAR,
        previous_adapter_id VARCHAR, decision VARCHAR, decision_json VARCHAR, created_at TIMESTAMP,
        forced BOOLEAN, reason VARCHAR);
    ALTER TABLE examples ADD COLUMN IF NOT EXISTS flags VARCHAR[];
    ALTER TABLE adapters ADD COLUMN IF NOT EXISTS uri VARCHAR;
    ALTER TABLE evaluations ADD COLUMN IF NOT EXISTS cache_key VARCHAR;
    ALTER TABLE evaluation_items ADD COLUMN IF NOT EXISTS prompt VARCHAR;
    ALTER TABLE evaluation_items ADD COLUMN IF NOT EXISTS reference VARCHAR;
    ALTER TABLE evaluation_items ADD COLUMN IF NOT EXISTS excluded BOOLEAN;
    ALTER TABLE evaluation_items ADD COLUMN IF NOT EXISTS timed_out BOOLEAN;
    ALTER TABLE evaluation_items ADD COLUMN IF NOT EXISTS equivalence VARCHAR;
    ALTER TABLE evaluation_items ADD COLUMN IF NOT EXISTS n_distinguishing INTEGER;
    ALTER TABLE evaluation_items ADD COLUMN IF NOT EXISTS redos VARCHAR;
    ALTER TABLE evaluation_items ADD COLUMN IF NOT EXISTS latency_ms DOUBLE;
    ALTER TABLE promotions ADD COLUMN IF NOT EXISTS forced BOOLEAN;
    ALTER TABLE promotions ADD COLUMN IF NOT EXISTS reason VARCHAR;
    """,
    # 2. The task-kind seam (issue 17): a kind's own values travel as JSON (``kind_json``) beside the generic
    #    columns, so a new kind needs no schema change; the first kind's columns move there, rows kept.
    lambda con: _move_kind_values(con, {
        "examples": ("example_id", "domain", "prompt", "completion", "description", "topic", "run_id", "teacher",
                     "request_hash", "seed", "validator_version", "split", "created_at", "flags"),
        "evaluation_items": ("eval_id", "example_id", "topic", "output", "semantic_ok", "exact", "output_tokens",
                             "prompt", "reference", "excluded", "timed_out", "latency_ms")}),
    # 3. The failure loop (issue 18): an example's and an evaluation item's slice labels beyond the topic
    #    (difficulty, phrasing style, concept: JSON), the failure a focused example answers, an item's reference
    #    fields (so a failing item can be kept out of training), and each focused run's failure report.
    """
    ALTER TABLE examples ADD COLUMN IF NOT EXISTS labels_json VARCHAR;
    ALTER TABLE examples ADD COLUMN IF NOT EXISTS answers_failure VARCHAR;
    ALTER TABLE evaluation_items ADD COLUMN IF NOT EXISTS labels_json VARCHAR;
    ALTER TABLE evaluation_items ADD COLUMN IF NOT EXISTS item_json VARCHAR;
    CREATE TABLE IF NOT EXISTS focus_plans (
        run_id VARCHAR PRIMARY KEY, domain VARCHAR, adapter_id VARCHAR, dataset_id VARCHAR, report_json VARCHAR,
        created_at TIMESTAMP);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

# the contract tables and their primary keys (row counts, duplicate-key and leak checks go over these)
_PRIMARY_KEYS = {
    "runs": ["run_id"], "teacher_calls": ["request_hash"], "run_requests": ["run_id", "request_hash"],
    "examples": ["example_id"], "quarantine": ["quarantine_id"], "datasets": ["dataset_id"],
    "adapters": ["adapter_id"], "evaluations": ["eval_id"], "evaluation_items": ["eval_id", "example_id"],
    "promotions": ["promotion_id"],
}

LOCK_RETRY_SECONDS = float(os.environ.get("LORAFORGE_DB_LOCK_TIMEOUT", "60"))
_MIGRATING = threading.Lock()  # two threads of one process share its DuckDB instance: one migrates at a time


class StoreBusyError(RuntimeError):
    """Another process holds the DuckDB file for longer than we are willing to wait."""


class StoreVersionError(RuntimeError):
    """The file was written by a newer loraforge (a schema version this code does not know)."""


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect``, retrying with backoff while the file is busy."""
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.ConnectionException as e:  # this process already has the file open in the other mode
            if "different configuration" not in str(e):
                raise
            if read_only:  # another thread of ours is writing: read through its read-write instance (no wait)
                read_only = False
                continue
            busy = "open read-only elsewhere in this process"
        except duckdb.IOException as e:
            if "lock" not in str(e).lower():  # not busy but unreadable (e.g. not a DuckDB file): say so
                raise
            busy = "locked by another loraforge process"
        if time.monotonic() > deadline:
            raise StoreBusyError(f"{path} is {busy}; waited {LOCK_RETRY_SECONDS:.0f}s "
                                 "(set LORAFORGE_DB_LOCK_TIMEOUT to wait longer)") from None
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 1.0)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = 'main'"
        " AND table_name = ? ORDER BY column_index", [table]).fetchall()]


def _move_kind_values(con: duckdb.DuckDBPyConnection, generic: dict[str, tuple[str, ...]]) -> None:
    """A migration step: every column of a table that is not one of its ``generic`` columns holds a task kind's
    own values; they move into ``kind_json`` (one JSON object per row; rows that have none keep NULL) and the
    columns are dropped. Safe to apply again: a table already in this shape has nothing to move."""
    for table, keep in generic.items():
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS kind_json VARCHAR")
        own = [c for c in _columns(con, table) if c not in (*keep, "kind_json")]
        if not own:
            continue
        pairs = ", ".join(f"'{c}', \"{c}\"" for c in own)
        some = " OR ".join(f'"{c}" IS NOT NULL' for c in own)
        con.execute(f"UPDATE {table} SET kind_json = json_object({pairs})::VARCHAR"
                    f" WHERE kind_json IS NULL AND ({some})")
        for c in own:
            con.execute(f'ALTER TABLE {table} DROP COLUMN "{c}"')


def _apply(con: duckdb.DuckDBPyConnection, step: str | Callable[[duckdb.DuckDBPyConnection], None]) -> None:
    if callable(step):
        step(con)
    else:
        con.execute(step)


def latest_schema() -> str:
    """The DDL of the latest schema (every migration applied to an empty database); tests build deliberately
    damaged files from it."""
    con = duckdb.connect()
    try:
        for step in MIGRATIONS:
            _apply(con, step)
        return ";\n".join(r[0].rstrip(";") for r in con.execute(
            "SELECT sql FROM duckdb_tables() ORDER BY table_name").fetchall()) + ";\n"
    finally:
        con.close()


def _version(con: duckdb.DuckDBPyConnection) -> int:
    # look the table up first: a query on a missing table would make DuckDB scan a Python object of that name
    # (fetchall: a half-read result would block the connection's next register())
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
                       " AND schema_name = 'main' AND table_name = 'schema_version'").fetchall()[0][0]:
        return 0  # a fresh file, or one made before schema versions
    return int(con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0])


def _migrate(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Apply the migrations the file lacks, in one transaction (on a read-write connection)."""
    with _MIGRATING:
        con.execute("BEGIN")
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
        have = _version(con)
        if have > SCHEMA_VERSION:
            con.execute("ROLLBACK")
            raise StoreVersionError(f"{path} has schema version {have}, newer than this loraforge knows "
                                    f"({SCHEMA_VERSION}); use the loraforge that wrote it or a newer one")
        for version in range(have + 1, SCHEMA_VERSION + 1):
            _apply(con, MIGRATIONS[version - 1])
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, now()])
        con.execute("COMMIT")


def _upgrade(path: Path) -> None:
    """Create the file, or bring it to ``SCHEMA_VERSION``, on a short write connection of its own."""
    con = _open(path, read_only=False)
    try:
        _migrate(con, path)
    finally:
        con.close()


@contextmanager
def connect(db_path: str | Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open DuckDB for one operation, retrying with backoff while another process holds the file lock.

    The schema is created or migrated once per file, by the first open of any kind: a read on a home without
    a database creates it (and sees empty tables, as the ls commands always have); a file made by older code
    is migrated. Every later open only checks the version (one query) and runs no DDL."""
    path = Path(db_path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _upgrade(path)
    con = _open(path, read_only)
    try:
        if _version(con) != SCHEMA_VERSION:  # a file made by older code (or newer code: _upgrade says so)
            con.close()
            _upgrade(path)
            con = _open(path, read_only)
    except BaseException:
        con.close()
        raise
    try:
        yield con
    finally:
        con.close()


def init_db(db: str | Path) -> None:
    """Create the database, or migrate it, to the latest schema version."""
    with connect(db):
        pass


def schema_version(db: str | Path) -> int:
    """The schema version of an existing file (0: made before schema versions); never creates or migrates."""
    con = _open(Path(db), read_only=True)
    try:
        return _version(con)
    finally:
        con.close()


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


def table_count(db: str | Path, table: str, where: str = "", params: list | None = None) -> int:
    """Row count of a contract table (tests and reports use it to trace figures to rows)."""
    if table not in _PRIMARY_KEYS:
        raise ValueError(f"unknown table {table!r}; known: {', '.join(_PRIMARY_KEYS)}")
    with connect(db, read_only=True) as con:
        return int(con.execute(f"SELECT count(*) FROM {table} {where}", params or []).fetchone()[0])


# ----------------------------------------------------------------------------------------------------- runs
def create_run(db: str | Path, run_id: str, domain: str, profile: str, teacher: str, config: dict,
               parent_run_id: str | None = None) -> None:
    with connect(db) as con:
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


def set_run_status(db: str | Path, run_id: str, status: str) -> None:
    with connect(db) as con:
        con.execute("UPDATE runs SET status = ? WHERE run_id = ?", [status, run_id])


def set_run_outputs(db: str | Path, run_id: str, *, dataset_id: str | None = None,
                    adapter_id: str | None = None) -> None:
    """Link a run to its dataset / adapter as soon as it has one (a rerun finds them here)."""
    with connect(db) as con:
        if dataset_id:
            con.execute("UPDATE runs SET dataset_id = ? WHERE run_id = ?", [dataset_id, run_id])
        if adapter_id:
            con.execute("UPDATE runs SET adapter_id = ? WHERE run_id = ?", [adapter_id, run_id])


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


def list_runs_with_parents(db: str | Path, domain: str | None = None) -> list[dict]:
    """Every run, oldest first, with the run it was rerun from."""
    with connect(db, read_only=True) as con:
        sql = ("SELECT run_id, domain, profile, teacher, status, parent_run_id, dataset_id, adapter_id, started_at,"
               " finished_at FROM runs" + (" WHERE domain = ?" if domain else "") + " ORDER BY started_at, run_id")
        return _rows(con, sql, [domain] if domain else [])


# ----------------------------------------------------------------------------------------------- run_stages
# `loraforge runs show` reads them; reruns read the parent's stored outputs through them.
def record_stage(db: str | Path, run_id: str, stage: str, status: str, *, seconds: float = 0.0,
                 result: dict | None = None, error: str | None = None, source_run_id: str | None = None,
                 started_at: datetime | None = None) -> None:
    """Upsert how one stage of a run ended (a continued run overwrites its earlier attempt of the stage)."""
    with connect(db) as con:
        con.execute(
            "INSERT INTO run_stages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, stage) DO UPDATE SET"
            " status = excluded.status, source_run_id = excluded.source_run_id, seconds = excluded.seconds,"
            " result_json = excluded.result_json, error = excluded.error, started_at = excluded.started_at,"
            " finished_at = excluded.finished_at",
            [run_id, stage, status, source_run_id, seconds, json.dumps(result) if result is not None else None,
             error, started_at or now(), now()])


def run_stages(db: str | Path, run_id: str) -> list[dict]:
    """The run's recorded stages in the order they ran (empty for runs from before stages were recorded)."""
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT * FROM run_stages WHERE run_id = ? ORDER BY started_at, finished_at", [run_id])
    for r in rows:
        r["result"] = json.loads(r.pop("result_json")) if r["result_json"] else None
    return rows


# --------------------------------------------------------------------------------------------- run_requests
def record_planned_requests(db: str | Path, run_requests: pa.Table) -> None:
    """The run's requests, outcome ``pending`` until validation states where each one ended."""
    with connect(db) as con:
        _ingest(con, "run_requests", run_requests)


def copy_run_requests(db: str | Path, parent_run_id: str, run_id: str, *, with_outcomes: bool) -> int:
    """Give a rerun its parent's planned requests (``pending``), or their validated outcomes as well."""
    outcome = "outcome, example_id, reasons" if with_outcomes else "'pending', NULL, []::VARCHAR[]"
    with connect(db) as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM run_requests WHERE run_id = ?", [run_id])
        con.execute(f"INSERT INTO run_requests (run_id, request_hash, idx, topic, outcome, example_id, reasons)"
                    f" SELECT ?, request_hash, idx, topic, {outcome} FROM run_requests WHERE run_id = ?",
                    [run_id, parent_run_id])
        n = con.execute("SELECT count(*) FROM run_requests WHERE run_id = ?", [run_id]).fetchone()[0]
        con.execute("COMMIT")
    return int(n)


def planned_requests(db: str | Path, run_id: str) -> list[dict]:
    with connect(db, read_only=True) as con:
        return _rows(con, "SELECT request_hash, idx, topic FROM run_requests WHERE run_id = ? ORDER BY idx", [run_id])


def run_request_outcomes(db: str | Path, run_id: str) -> list[dict]:
    """Every request of a run with its outcome, topic and reasons (the quality report's rows)."""
    with connect(db, read_only=True) as con:
        return _rows(con, "SELECT request_hash, idx, topic, outcome, reasons FROM run_requests WHERE run_id = ?"
                          " ORDER BY idx", [run_id])


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


# -------------------------------------------------------------------------------------------- teacher_calls
def upsert_teacher_calls(db: str | Path, calls: pa.Table) -> None:
    """Store raw responses; a later ``ok`` replaces an earlier ``failed``, never the other way round. Attempts and
    dollars add up over every try of a request (``cost_usd`` is what the request cost in all)."""
    with connect(db) as con:
        _ingest(con, "teacher_calls", calls,
                conflict="(request_hash) DO UPDATE SET status = excluded.status, raw_response = excluded.raw_response,"
                " attempts = teacher_calls.attempts + excluded.attempts, prompt_tokens = excluded.prompt_tokens,"
                " completion_tokens = excluded.completion_tokens,"
                " cost_usd = teacher_calls.cost_usd + excluded.cost_usd, error = excluded.error"
                " WHERE teacher_calls.status <> 'ok'")


def teacher_spend(db: str | Path, hashes: list[str]) -> tuple[float, int]:
    """(dollars, requests sent) already booked on these request hashes, every attempt included: where a resumed
    or rerun generation's budget starts."""
    with connect(db, read_only=True) as con:
        con.register("_wanted", pa.table({"h": pa.array(hashes, pa.string())}))
        usd, n = con.execute("SELECT coalesce(sum(cost_usd), 0), count(*) FROM teacher_calls"
                             " JOIN _wanted ON request_hash = h").fetchone()
    return float(usd), int(n)


def cached_call_hashes(db: str | Path, hashes: list[str]) -> set[str]:
    """Request hashes that already have an ``ok`` response (they are never sent again)."""
    with connect(db, read_only=True) as con:
        con.register("_wanted", pa.table({"h": pa.array(hashes, pa.string())}))
        found = con.execute(
            "SELECT request_hash FROM teacher_calls JOIN _wanted ON request_hash = h WHERE status = 'ok'"
        ).fetchall()
    return {r[0] for r in found}


def load_teacher_calls(db: str | Path, hashes: list[str]) -> dict[str, dict]:
    with connect(db, read_only=True) as con:
        con.register("_wanted", pa.table({"h": pa.array(hashes, pa.string())}))
        rows = _rows(con, "SELECT request_hash, status, raw_response, attempts, error, prompt_tokens,"
                          " completion_tokens, cost_usd, request_json"
                          " FROM teacher_calls JOIN _wanted ON request_hash = h")
    return {r["request_hash"]: r for r in rows}


def teacher_call_stats(db: str | Path, model: str) -> dict[str, float]:
    """Mean tokens and cost of the stored ``ok`` calls to a model (the dry-run estimate learns from them)."""
    with connect(db, read_only=True) as con:
        n, pt, ct, cost = con.execute(
            "SELECT count(*), avg(prompt_tokens), avg(completion_tokens), avg(cost_usd) FROM teacher_calls"
            " WHERE model = ? AND status = 'ok'", [model]).fetchone()
    return {"n": int(n), "mean_prompt_tokens": float(pt or 0), "mean_completion_tokens": float(ct or 0),
            "mean_cost_usd": float(cost or 0)}


def teacher_calls_summary(db: str | Path, hashes: list[str]) -> dict[str, float]:
    """Calls, attempts, tokens and dollars behind a set of request hashes, by status."""
    with connect(db, read_only=True) as con:
        con.register("_wanted", pa.table({"h": pa.array(hashes, pa.string())}))
        rows = _rows(con, "SELECT status, count(*) AS n, sum(attempts) AS attempts,"
                          " sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,"
                          " sum(cost_usd) AS cost_usd"
                          " FROM teacher_calls JOIN _wanted ON request_hash = h GROUP BY status")
    return {r["status"]: {k: (float(v) if k == "cost_usd" else int(v or 0)) for k, v in r.items() if k != "status"}
            for r in rows}


# ------------------------------------------------------------------------------------------- teacher_unsent
def mark_unsent(db: str | Path, run_id: str, hashes: list[str], reason: str) -> int:
    """Move planned requests that were never sent (the budget cap stopped them) from ``run_requests`` to
    ``teacher_unsent`` with the reason, in one transaction: a run's ``requested`` counts only what was asked.
    The run's earlier unsent set (from an interrupted attempt) is replaced, so an empty list clears it."""
    with connect(db) as con:
        con.register("_wanted", pa.table({"h": pa.array(hashes, pa.string())}))
        con.execute("BEGIN")
        con.execute("DELETE FROM teacher_unsent WHERE run_id = ?", [run_id])  # a resumed run states its own set
        con.execute("INSERT INTO teacher_unsent (run_id, request_hash, idx, topic, reason, created_at)"
                    " SELECT run_id, request_hash, idx, topic, ?, ? FROM run_requests JOIN _wanted ON request_hash = h"
                    " WHERE run_id = ? ON CONFLICT DO NOTHING", [reason, now(), run_id])
        n = con.execute("SELECT count(*) FROM teacher_unsent WHERE run_id = ?", [run_id]).fetchone()[0]
        con.execute("DELETE FROM run_requests WHERE run_id = ? AND request_hash IN (SELECT h FROM _wanted)", [run_id])
        con.execute("COMMIT")
    return int(n)


def unsent_requests(db: str | Path, run_id: str) -> list[dict]:
    """The run's planned requests that the budget cap kept from being sent, in plan order."""
    with connect(db, read_only=True) as con:
        return _rows(con, "SELECT request_hash, idx, topic, reason FROM teacher_unsent WHERE run_id = ? ORDER BY idx",
                     [run_id])


# ------------------------------------------------------------------------------------------ teacher_batches
def record_teacher_batch(db: str | Path, row: dict) -> None:
    """Persist a Batch API job the moment it exists, so a crashed run resumes polling it instead of paying twice."""
    with connect(db) as con:
        _ingest(con, "teacher_batches", pa.Table.from_pylist([{**row, "created_at": now(), "updated_at": now()}]))


def update_teacher_batch(db: str | Path, batch_id: str, **fields: Any) -> None:
    allowed = {"status", "output_file_id", "error_file_id"}
    if not fields or set(fields) - allowed:
        raise ValueError(f"update_teacher_batch: fields must be among {sorted(allowed)}")
    sets = ", ".join(f"{k} = ?" for k in fields)
    with connect(db) as con:
        con.execute(f"UPDATE teacher_batches SET {sets}, updated_at = ? WHERE batch_id = ?",
                    [*fields.values(), now(), batch_id])


def open_teacher_batch(db: str | Path, batch_key: str) -> dict | None:
    """The newest Batch API job for exactly this set of requests that has not been consumed yet, if any."""
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT * FROM teacher_batches WHERE batch_key = ?"
                          " AND status NOT IN ('consumed', 'abandoned') ORDER BY created_at DESC LIMIT 1", [batch_key])
    return rows[0] if rows else None


def teacher_batches(db: str | Path, run_id: str | None = None) -> list[dict]:
    with connect(db, read_only=True) as con:
        sql = "SELECT * FROM teacher_batches" + (" WHERE run_id = ?" if run_id else "") + " ORDER BY created_at"
        return _rows(con, sql, [run_id] if run_id else [])


# --------------------------------------------------------------------------------- examples and quarantine
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


def run_examples(db: str | Path, run_id: str) -> pa.Table:
    """The examples a run accepted, in request order."""
    with connect(db, read_only=True) as con:
        return con.sql(  # a relation gives Arrow without the extra copy a DB-API result makes
            "SELECT e.* FROM run_requests r JOIN examples e USING (example_id)"
            " WHERE r.run_id = ? AND r.outcome = 'accepted' ORDER BY r.idx", params=[run_id]).to_arrow_table()


def examples_by_id(db: str | Path, example_ids: list[str]) -> pa.Table:
    with connect(db, read_only=True) as con:
        con.register("_wanted", pa.table({"i": pa.array(example_ids, pa.string())}))
        return con.sql("SELECT e.* FROM examples e JOIN _wanted ON example_id = i").to_arrow_table()


def example_labels(db: str | Path, example_ids: list[str]) -> dict[str, dict]:
    """example_id → its slice labels (``topic`` and whatever ``labels_json`` holds: difficulty, style, concept)."""
    with connect(db, read_only=True) as con:
        con.register("_wanted", pa.table({"i": pa.array(example_ids, pa.string())}))
        rows = con.execute("SELECT example_id, topic, labels_json FROM examples JOIN _wanted ON example_id = i"
                           ).fetchall()
    return {eid: {"topic": topic, **json.loads(labels or "{}")} for eid, topic, labels in rows}


# ------------------------------------------------------------------------------------------------- datasets
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


def datasets_overview(db: str | Path, domain: str | None = None) -> list[dict]:
    """Every dataset snapshot, oldest first, with how many runs and adapters use it."""
    with connect(db, read_only=True) as con:
        sql = ("SELECT d.dataset_id, d.domain, d.run_id, d.path, d.n_train, d.n_val, d.n_test, d.created_at,"
               " (SELECT count(*) FROM runs r WHERE r.dataset_id = d.dataset_id) AS n_runs,"
               " (SELECT count(*) FROM adapters a WHERE a.dataset_id = d.dataset_id) AS n_adapters,"
               " json_extract_string(d.manifest_json, '$.uri') AS uri"
               " FROM datasets d" + (" WHERE d.domain = ?" if domain else "") + " ORDER BY d.created_at, d.dataset_id")
        return _rows(con, sql, [domain] if domain else [])


# ------------------------------------------------------------------------------------------------- adapters
def record_adapter(db: str | Path, row: dict) -> None:
    with connect(db) as con:
        _ingest(con, "adapters", pa.Table.from_pylist([{**row, "created_at": now(), "updated_at": now()}]))


def set_adapter_metrics(db: str | Path, adapter_id: str, metrics: dict) -> None:
    with connect(db) as con:
        con.execute("UPDATE adapters SET metrics_json = ?, updated_at = ? WHERE adapter_id = ?",
                    [json.dumps(metrics), now(), adapter_id])


def set_adapter_uri(db: str | Path, adapter_id: str, uri: str) -> None:
    """An adapter published to an fsspec URL (tasks/storage.py) keeps that URL next to the local path."""
    with connect(db) as con:
        con.execute("UPDATE adapters SET uri = ?, updated_at = ? WHERE adapter_id = ?", [uri, now(), adapter_id])


def retire_adapters(db: str | Path, adapter_ids: list[str]) -> None:
    """Repair: mark adapters retired (reconciliation when more than one is promoted)."""
    with connect(db) as con:
        con.execute("BEGIN")
        for adapter_id in adapter_ids:
            con.execute("UPDATE adapters SET status = 'retired', updated_at = ? WHERE adapter_id = ?",
                        [now(), adapter_id])
        con.execute("COMMIT")


def get_adapter(db: str | Path, adapter_id: str) -> dict | None:
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT * FROM adapters WHERE adapter_id = ?", [adapter_id])
    return rows[0] if rows else None


def list_adapters(db: str | Path, domain: str | None = None) -> list[dict]:
    with connect(db, read_only=True) as con:
        sql = "SELECT * FROM adapters" + (" WHERE domain = ?" if domain else "") + " ORDER BY created_at, adapter_id"
        return _rows(con, sql, [domain] if domain else [])


def adapter_domains(db: str | Path) -> list[str]:
    with connect(db, read_only=True) as con:
        return [r[0] for r in con.execute("SELECT DISTINCT domain FROM adapters ORDER BY 1").fetchall()]


def promoted_adapter(db: str | Path, domain: str) -> dict | None:
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT * FROM adapters WHERE domain = ? AND status = 'promoted'", [domain])
    return rows[0] if rows else None


def promoted_adapters(db: str | Path, domain: str) -> list[dict]:
    """Every adapter of the domain marked promoted (normally at most one), latest promotion first."""
    with connect(db, read_only=True) as con:
        return _rows(con, "SELECT a.*, (SELECT max(p.created_at) FROM promotions p WHERE p.adapter_id = a.adapter_id"
                          " AND p.decision IN ('promoted', 'rolled_back')) AS promoted_at FROM adapters a"
                          " WHERE a.domain = ? AND a.status = 'promoted' ORDER BY promoted_at DESC NULLS LAST,"
                          " a.updated_at DESC", [domain])


# ------------------------------------------------------------------------------ evaluations and their items
def save_evaluation(db: str | Path, row: dict, items: pa.Table) -> None:
    """One transaction: an evaluation and its per-item rows (a rerun with the same eval_id replaces both)."""
    with connect(db) as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM evaluation_items WHERE eval_id = ?", [row["eval_id"]])
        con.execute("DELETE FROM evaluations WHERE eval_id = ?", [row["eval_id"]])
        _ingest(con, "evaluations", pa.Table.from_pylist([{**row, "created_at": now()}]))
        _ingest(con, "evaluation_items", items)
        con.execute("COMMIT")


def cached_evaluation(db: str | Path, cache_key: str) -> tuple[dict, list[dict]] | None:
    """The latest evaluation with this cache key and its item rows, or None."""
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT * FROM evaluations WHERE cache_key = ? ORDER BY created_at DESC LIMIT 1",
                     [cache_key])
        if not rows:
            return None
        items = _rows(con, "SELECT * FROM evaluation_items WHERE eval_id = ? ORDER BY example_id",
                      [rows[0]["eval_id"]])
    return rows[0], items


def get_evaluation(db: str | Path, eval_id: str) -> dict | None:
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT * FROM evaluations WHERE eval_id = ?", [eval_id])
    return rows[0] if rows else None


def list_evaluations(db: str | Path, run_id: str | None = None, model_ref: str | None = None) -> list[dict]:
    """Evaluations, oldest first, optionally of one run and/or one model."""
    where, params = [], []
    if run_id:
        where.append("run_id = ?")
        params.append(run_id)
    if model_ref:
        where.append("model_ref = ?")
        params.append(model_ref)
    with connect(db, read_only=True) as con:
        return _rows(con, "SELECT * FROM evaluations" + (" WHERE " + " AND ".join(where) if where else "")
                     + " ORDER BY created_at, eval_id", params)


def run_evaluations(db: str | Path, run_id: str) -> dict[str, dict | None]:
    """The metrics a run recorded per role (base / candidate / champion), newest per role."""
    out: dict[str, dict | None] = {"base": None, "candidate": None, "champion": None}
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT role, metrics_json FROM evaluations WHERE run_id = ? ORDER BY created_at", [run_id])
    for r in rows:
        out[r["role"]] = json.loads(r["metrics_json"]) if r["metrics_json"] else None
    return out


def evaluation_items(db: str | Path, eval_id: str) -> list[dict]:
    with connect(db, read_only=True) as con:
        return _rows(con, "SELECT * FROM evaluation_items WHERE eval_id = ? ORDER BY example_id", [eval_id])


def scored_items(db: str | Path, eval_id: str) -> dict[str, dict]:
    """example_id -> item row, for the items that were scored (not excluded) in one evaluation."""
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT * FROM evaluation_items WHERE eval_id = ? AND coalesce(excluded, false) = false",
                     [eval_id])
    return {r["example_id"]: r for r in rows}


def model_items(db: str | Path, model_ref: str, exclude_sets: tuple[str, ...] = ("golden",)) -> list[dict]:
    """Every scored (not excluded) item row of a model's evaluations, oldest evaluation first, with its
    evaluation's set, run and time; sets in ``exclude_sets`` left out (the failure report never reads golden)."""
    with connect(db, read_only=True) as con:
        con.register("_skip", pa.table({"s": pa.array(list(exclude_sets), pa.string())}))
        return _rows(con, "SELECT i.*, v.eval_set, v.run_id AS eval_run_id, v.created_at AS evaluated_at"
                          " FROM evaluation_items i JOIN evaluations v USING (eval_id)"
                          " WHERE v.model_ref = ? AND coalesce(i.excluded, false) = false"
                          " AND v.eval_set NOT IN (SELECT s FROM _skip)"
                          " ORDER BY v.created_at, v.eval_id, i.example_id", [model_ref])


# --------------------------------------------------------------------------------------------- focus_plans
def record_focus_plan(db: str | Path, row: dict) -> None:
    """A focused run's failure report, frozen at its start (its stages and reruns read this one, not a newer one)."""
    with connect(db) as con:
        _ingest(con, "focus_plans", pa.Table.from_pylist([{**row, "created_at": now()}]),
                conflict="(run_id) DO UPDATE SET adapter_id = excluded.adapter_id, dataset_id = excluded.dataset_id,"
                " report_json = excluded.report_json, created_at = excluded.created_at")


def focus_plan(db: str | Path, run_id: str) -> dict | None:
    """The focus plan of a run, or of the nearest run it was rerun from; None for a run without one."""
    with connect(db, read_only=True) as con:
        seen: set[str] = set()
        while run_id and run_id not in seen:
            seen.add(run_id)
            rows = _rows(con, "SELECT * FROM focus_plans WHERE run_id = ?", [run_id])
            if rows:
                return {**rows[0], "report": json.loads(rows[0]["report_json"])}
            parent = con.execute("SELECT parent_run_id FROM runs WHERE run_id = ?", [run_id]).fetchone()
            run_id = parent[0] if parent else None
    return None


# ----------------------------------------------------------------------------------------------- promotions
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


def record_registry_change(db: str | Path, promotion: dict, *, status: str, retire_others: bool) -> None:
    """One transaction: the adapter gets ``status``; with ``retire_others`` the domain's other promoted adapters
    become ``retired`` (so at most one is promoted); a ``promotions`` row records why."""
    adapter_id, domain = promotion["adapter_id"], promotion["domain"]
    with connect(db) as con:
        con.execute("BEGIN")
        if retire_others:
            con.execute("UPDATE adapters SET status = 'retired', updated_at = ? WHERE domain = ?"
                        " AND status = 'promoted' AND adapter_id <> ?", [now(), domain, adapter_id])
        con.execute("UPDATE adapters SET status = ?, updated_at = ? WHERE adapter_id = ?", [status, now(), adapter_id])
        _ingest(con, "promotions", pa.Table.from_pylist([{**promotion, "created_at": now()}]))
        con.execute("COMMIT")


def promotion_history(db: str | Path, domain: str) -> list[dict]:
    """The domain's promotions rows (promoted, rejected, rolled_back), oldest first."""
    with connect(db, read_only=True) as con:
        return _rows(con, "SELECT * FROM promotions WHERE domain = ? ORDER BY created_at, promotion_id", [domain])


def run_decision(db: str | Path, run_id: str) -> dict | None:
    """The gate decision recorded by a run, if it reached the gate."""
    with connect(db, read_only=True) as con:
        rows = _rows(con, "SELECT adapter_id, decision, decision_json, created_at FROM promotions WHERE run_id = ?"
                          " ORDER BY created_at DESC LIMIT 1", [run_id])
    if not rows:
        return None
    r = rows[0]
    return {"adapter_id": r["adapter_id"], "decision": r["decision"],
            **({"reasons": json.loads(r["decision_json"]).get("reasons", [])} if r["decision_json"] else {})}


# ------------------------------------------------------------------------------------ integrity (doctor)
# Queries for ``loraforge doctor`` (tasks/doctor.py) and tests. Each returns counts or the offending rows
# (zero / empty = healthy); all of them only read, on read-only connections.
def integrity_report(db: str | Path) -> dict[str, int]:
    """Counts of everything that would mean a damaged store; all zero on a healthy one.

    Duplicate keys, per-run counts that do not add up, and broken lineage (an example whose request has no
    teacher call, an adapter whose dataset is unknown, a run pointing at a missing dataset or adapter)."""
    checks = {
        "duplicate_runs": "SELECT count(*) - count(DISTINCT run_id) FROM runs",
        "duplicate_teacher_calls": "SELECT count(*) - count(DISTINCT request_hash) FROM teacher_calls",
        "duplicate_examples": "SELECT count(*) - count(DISTINCT example_id) FROM examples",
        "duplicate_run_requests": "SELECT count(*) - count(DISTINCT (run_id, request_hash)) FROM run_requests",
        "duplicate_datasets": "SELECT count(*) - count(DISTINCT dataset_id) FROM datasets",
        "duplicate_adapters": "SELECT count(*) - count(DISTINCT adapter_id) FROM adapters",
        "examples_without_teacher_call": "SELECT count(*) FROM examples e WHERE NOT EXISTS"
                                         " (SELECT 1 FROM teacher_calls t WHERE t.request_hash = e.request_hash)",
        "accepted_requests_without_example": "SELECT count(*) FROM run_requests r WHERE r.outcome = 'accepted' AND"
                                             " NOT EXISTS (SELECT 1 FROM examples e WHERE e.example_id = r.example_id)",
        "adapters_without_dataset": "SELECT count(*) FROM adapters a WHERE NOT EXISTS"
                                    " (SELECT 1 FROM datasets d WHERE d.dataset_id = a.dataset_id)",
        "runs_with_unknown_dataset": "SELECT count(*) FROM runs r WHERE r.dataset_id IS NOT NULL AND NOT EXISTS"
                                     " (SELECT 1 FROM datasets d WHERE d.dataset_id = r.dataset_id)",
        "runs_with_unknown_adapter": "SELECT count(*) FROM runs r WHERE r.adapter_id IS NOT NULL AND NOT EXISTS"
                                     " (SELECT 1 FROM adapters a WHERE a.adapter_id = r.adapter_id)",
        "completed_runs_with_pending_requests": "SELECT count(*) FROM run_requests q JOIN runs r USING (run_id)"
                                                " WHERE r.status = 'completed' AND q.outcome = 'pending'",
        "promoted_adapters_over_one_per_domain": "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n"
                                                 " FROM adapters WHERE status = 'promoted' GROUP BY domain)",
    }
    with connect(db, read_only=True) as con:
        return {name: int(con.execute(sql).fetchone()[0]) for name, sql in checks.items()}


_DOCTOR_SQL = {
    # finished runs: every request ended accepted / quarantined / failed (none left pending or unknown)
    "unfinished_requests": (
        "SELECT r.run_id, r.status AS run_status, q.outcome, count(*) AS n FROM runs r"
        " JOIN run_requests q USING (run_id) WHERE r.status IN ('completed', 'budget_exhausted')"
        " AND q.outcome NOT IN ('accepted', 'quarantined', 'failed') GROUP BY ALL ORDER BY 1"),
    "run_outcome_counts": (
        "SELECT r.run_id, r.status, r.summary_json, count(q.request_hash) AS requested,"
        " count(*) FILTER (q.outcome = 'accepted') AS accepted,"
        " count(*) FILTER (q.outcome = 'quarantined') AS quarantined,"
        " count(*) FILTER (q.outcome = 'failed') AS failed FROM runs r LEFT JOIN run_requests q USING (run_id)"
        " WHERE r.status IN ('completed', 'budget_exhausted') GROUP BY ALL ORDER BY 1"),
    "examples_without_teacher_call": (
        "SELECT e.example_id, e.request_hash FROM examples e LEFT JOIN teacher_calls t USING (request_hash)"
        " WHERE e.request_hash IS NOT NULL AND (t.request_hash IS NULL OR t.status <> 'ok') ORDER BY 1"),
    "quarantine_without_teacher_call": (
        "SELECT q.quarantine_id, q.request_hash FROM quarantine q LEFT JOIN teacher_calls t USING (request_hash)"
        " WHERE q.request_hash IS NOT NULL AND t.request_hash IS NULL ORDER BY 1"),
    "accepted_requests_without_example": (
        "SELECT q.run_id, q.request_hash, q.example_id FROM run_requests q LEFT JOIN examples e USING (example_id)"
        " WHERE q.outcome = 'accepted' AND e.example_id IS NULL ORDER BY 1, 2"),
    "adapters_without_dataset": (
        "SELECT a.adapter_id, a.dataset_id FROM adapters a LEFT JOIN datasets d USING (dataset_id)"
        " WHERE d.dataset_id IS NULL ORDER BY 1"),
    "evaluations_without_items": (  # an evaluation of an empty set (metrics n = 0) rightly has none
        "SELECT v.eval_id, v.role, v.model_ref FROM evaluations v"
        " WHERE NOT EXISTS (SELECT 1 FROM evaluation_items i WHERE i.eval_id = v.eval_id)"
        " AND coalesce(TRY_CAST(json_extract(v.metrics_json, '$.n') AS INTEGER), 1)"
        " + coalesce(TRY_CAST(json_extract(v.metrics_json, '$.n_excluded') AS INTEGER), 0) > 0 ORDER BY 1"),
    "evaluation_items_without_evaluation": (
        "SELECT i.eval_id, count(*) AS n FROM evaluation_items i"
        " WHERE NOT EXISTS (SELECT 1 FROM evaluations v WHERE v.eval_id = i.eval_id) GROUP BY 1 ORDER BY 1"),
    "runs_with_unknown_dataset": (
        "SELECT r.run_id, r.dataset_id FROM runs r LEFT JOIN datasets d USING (dataset_id)"
        " WHERE r.dataset_id IS NOT NULL AND d.dataset_id IS NULL ORDER BY 1"),
    "runs_with_unknown_adapter": (
        "SELECT r.run_id, r.adapter_id FROM runs r LEFT JOIN adapters a USING (adapter_id)"
        " WHERE r.adapter_id IS NOT NULL AND a.adapter_id IS NULL ORDER BY 1"),
    "promotions_without_adapter": (
        "SELECT p.promotion_id, p.adapter_id FROM promotions p LEFT JOIN adapters a USING (adapter_id)"
        " WHERE a.adapter_id IS NULL ORDER BY 1"),
    "promoted_per_domain": (
        "SELECT domain, list(adapter_id ORDER BY adapter_id) AS adapter_ids FROM adapters"
        " WHERE status = 'promoted' GROUP BY domain ORDER BY domain"),
    "unknown_adapter_status": (
        "SELECT adapter_id, status FROM adapters"
        " WHERE status IS NULL OR status NOT IN ('candidate', 'promoted', 'rejected', 'retired') ORDER BY 1"),
}


def doctor_table_counts(db: str | Path) -> dict[str, int]:
    """Row count of every contract table (a full scan: a damaged file fails here)."""
    with connect(db, read_only=True) as con:
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in _PRIMARY_KEYS}


def doctor_duplicate_keys(db: str | Path) -> dict[str, int]:
    """Per table, how many primary-key values occur more than once (0 everywhere on a healthy file)."""
    out = {}
    with connect(db, read_only=True) as con:
        for table, cols in _PRIMARY_KEYS.items():
            keys = ", ".join(cols)
            out[table] = int(con.execute(
                f"SELECT count(*) FROM (SELECT {keys} FROM {table} GROUP BY ALL HAVING count(*) > 1)").fetchone()[0])
    return out


def doctor_query(db: str | Path, name: str) -> list[dict]:
    """The rows of one named integrity query (see ``_DOCTOR_SQL``)."""
    with connect(db, read_only=True) as con:
        return _rows(con, _DOCTOR_SQL[name])


def doctor_queries(db: str | Path) -> dict[str, list[dict]]:
    """Every named integrity query on one read-only connection."""
    with connect(db, read_only=True) as con:
        return {name: _rows(con, sql) for name, sql in _DOCTOR_SQL.items()}


def doctor_teacher_requests(db: str | Path, status: str = "ok") -> dict[str, str]:
    """Request hash → canonical request JSON of every teacher call with ``status`` (what was paid for)."""
    with connect(db, read_only=True) as con:
        return dict(con.execute("SELECT request_hash, request_json FROM teacher_calls WHERE status = ?",
                                [status]).fetchall())


def doctor_run_outcomes(db: str | Path, run_id: str) -> list[dict]:
    """Where each of a run's requests ended: request hash, outcome, reasons, example id."""
    with connect(db, read_only=True) as con:
        return _rows(con, "SELECT request_hash, outcome, reasons, example_id FROM run_requests WHERE run_id = ?"
                          " ORDER BY idx", [run_id])


def doctor_find_text(db: str | Path, needle: str) -> dict[str, int]:
    """Per contract table, how many rows contain ``needle`` in any column (a leak check that sees through
    DuckDB's string compression, which a byte-wise search of the file cannot)."""
    with connect(db, read_only=True) as con:
        return {t: int(con.execute(f"SELECT count(*) FROM {t} WHERE contains(CAST({t} AS VARCHAR), ?)",
                                   [needle]).fetchone()[0]) for t in _PRIMARY_KEYS}
