"""Is a text one read-only DuckDB query over the schema, and what does it return on a locked-down copy?

Two layers, each enough on its own against the hostile corpus in ``tests/test_sql_kind.py``:

``check_sql(text, tables)`` reads DuckDB's own parse tree (``parse``), never the text, and returns reason codes
(empty when the query is fine):

- ``empty``: nothing but blanks or comments; ``not_sql``: prose or markdown fences around the query (the text
  does not start like SQL, or a query parses only once trailing prose is cut off);
  ``multiple_statements``; ``parse_error``: DuckDB's parser refuses it;
- ``not_read_only``: a statement other than SELECT (DDL, DML, ``ATTACH``, ``COPY``, ``EXPORT``,
  ``INSTALL``/``LOAD``, ``SET``/``PRAGMA``, ``CALL``, transactions...) or a data-changing query node inside a
  SELECT (``WITH x AS (DELETE ... RETURNING *)``);
- ``forbidden_function``: a table function other than ``range``/``generate_series``/``unnest`` (so no
  ``read_csv``, ``read_text``, ``glob``, ``query``, ``duckdb_settings()``...), or a scalar function that is
  not a built-in one (an extension would be auto-loaded) or that reads the environment, settings, sequences
  or the log (``getenv``, ``current_setting``, ``getvariable``, ``nextval``...);
- ``forbidden_table``: a table outside the schema's own: a qualified one (``information_schema.tables``,
  ``system.main.x``), a file path (``FROM '/etc/passwd'``), a system table function named without
  parentheses (``FROM pragma_database_list``), ``SHOW``/``DESCRIBE``/``SUMMARIZE``;
  ``unknown_table``: a plain name that is neither a schema table nor a CTE.

``Sandbox(instance)`` holds one in-memory copy of an instance, opened with extension auto-install and
auto-load off, Python replacement scans off, no temp directory (nothing spills to disk), a memory and a thread
limit, then ``enable_external_access = false`` and ``lock_configuration = true``. ``Sandbox.run`` executes
exactly one statement inside ``BEGIN TRANSACTION READ ONLY`` (so a write fails even if the check missed it)
that is always rolled back, interrupts it at its time limit (a timer thread calls ``con.interrupt()``) and
fetches at most ``max_rows + 1`` rows. Outcomes: ``RunResult.ok`` or a reason: ``execution_error``,
``timeout``, ``too_many_rows`` (or a ``check_sql`` code when the text is checked first). A sandbox is built once
per instance and reused for many queries; it serialises its own calls.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field

import duckdb

from tasks.kinds.sql import parse
from tasks.kinds.sql.data import Instance

REASONS = ("empty", "not_sql", "multiple_statements", "parse_error", "not_read_only", "forbidden_function",
           "forbidden_table", "unknown_table", "execution_error", "timeout", "too_many_rows")
READ_ONLY_REASONS = frozenset(("not_read_only", "forbidden_function", "forbidden_table"))
TABLE_FUNCTIONS = frozenset(("range", "generate_series", "unnest"))
_QUERY_NODES = frozenset(("SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"))
_TABLE_REFS = frozenset(("BASE_TABLE", "JOIN", "SUBQUERY", "TABLE_FUNCTION", "EXPRESSION_LIST", "EMPTY", "PIVOT"))
# Built-in functions that read the environment, settings, session, sequences or the log, sleep, or touch files.
_DENY = frozenset((
    "getenv", "current_setting", "getvariable", "current_query", "current_query_id", "current_connection_id",
    "current_transaction_id", "current_database", "current_catalog", "current_schema", "current_schemas",
    "current_user", "current_role", "session_user", "user", "in_search_path", "version", "nextval", "currval",
    "setseed", "txid_current", "sleep_ms", "write_log", "get_block_size", "parse_duckdb_log_message",
    "json_serialize_sql", "json_deserialize_sql", "json_serialize_plan", "json_execute_serialized_sql",
    "query", "query_table", "glob", "sniff_csv", "which_secret", "checkpoint", "force_checkpoint",
))
_DENY_PREFIXES = ("read_", "duckdb_", "pragma_", "parquet_", "sniff_", "pg_", "has_", "__internal", "iceberg_",
                  "delta_", "sqlite_", "postgres_", "mysql_", "http", "s3", "azure", "json_execute")
_DENY_EXCEPT = frozenset(("pg_typeof",))  # harmless names caught by a prefix
_SQL_START = frozenset((
    "select", "with", "from", "values", "table", "explain", "insert", "update", "delete", "create", "drop",
    "alter", "copy", "attach", "detach", "install", "load", "force", "set", "reset", "pragma", "call", "export",
    "import", "begin", "start", "commit", "rollback", "abort", "end", "vacuum", "checkpoint", "describe", "desc",
    "show", "summarize", "pivot", "unpivot", "pivot_wider", "pivot_longer", "use", "prepare", "execute",
    "deallocate", "merge", "truncate", "analyze", "comment", "upsert", "replace",
))
_ALLOWED: frozenset[str] | None = None
_ALLOWED_LOCK = threading.Lock()


def allowed_functions() -> frozenset[str]:
    """Scalar, aggregate, window and macro functions DuckDB ships without loading anything, minus the denylist."""
    global _ALLOWED
    with _ALLOWED_LOCK:
        if _ALLOWED is None:
            con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                     "autoload_known_extensions": False})
            try:
                names = {r[0].lower() for r in con.execute(
                    "SELECT DISTINCT function_name FROM duckdb_functions() "
                    "WHERE function_type IN ('scalar', 'aggregate', 'window', 'macro')").fetchall()}
            finally:
                con.close()
            names |= TABLE_FUNCTIONS  # SELECT unnest([...]), range(...) as a list
            _ALLOWED = frozenset(n for n in names if n in _DENY_EXCEPT or not (
                n in _DENY or n.startswith(_DENY_PREFIXES)))
        return _ALLOWED


# -------------------------------------------------------------------------------------------------- the check
def check_sql(text: str, tables: Collection[str] | None = None) -> list[str]:
    """Reason codes for ``text`` as a student's answer (empty list: one read-only SELECT over ``tables``).

    ``tables``: the schema's table names; when None, any plain (unqualified, identifier-like) name is allowed,
    and only qualified names, paths and ``SHOW``-style references are refused.
    """
    if not text or not text.strip():
        return ["empty"]
    if text.strip().startswith("```") or text.strip().endswith("```"):
        return ["not_sql"]  # a markdown fence around the query (a fence inside prose fails to parse: below)
    try:
        kinds = parse.statements(text)
    except duckdb.Error:
        return ["not_sql" if _prose_around(text) else "parse_error"]
    if not kinds:
        return ["empty"]
    reasons = []
    if len(kinds) > 1:
        reasons.append("multiple_statements")
    if any(k != "SELECT" for k in kinds):
        reasons.append("not_read_only")
    if reasons:
        return reasons
    try:
        stmt = parse.tree(text)
    except ValueError:
        return ["parse_error"]
    return _check_tree(parse.references(stmt), tables)


def _check_tree(refs: parse.References, tables: Collection[str] | None) -> list[str]:
    reasons = []
    if refs.node_types - _QUERY_NODES:
        reasons.append("not_read_only")
    allowed = allowed_functions()
    if refs.table_functions - TABLE_FUNCTIONS or refs.functions - allowed:
        reasons.append("forbidden_function")
    known = {t.lower() for t in tables} if tables is not None else None
    table_reasons = set()
    if refs.ref_types - _TABLE_REFS:
        table_reasons.add("forbidden_table")  # SHOW_REF and anything this check does not know
    for catalog, schema, name in refs.base_tables:
        lname = name.lower()
        if (catalog or schema) and not (catalog.lower() in ("", "memory") and schema.lower() in ("", "main")):
            table_reasons.add("forbidden_table")
        elif not lname.isidentifier():
            table_reasons.add("forbidden_table")  # a path or URL: a replacement scan would read it
        elif lname in _DENY or lname.startswith(_DENY_PREFIXES):
            table_reasons.add("forbidden_table")  # a table function called without parentheses
        elif lname in refs.cte_names and not (catalog or schema):
            continue
        elif known is not None and lname not in known:
            table_reasons.add("unknown_table")
    return reasons + sorted(table_reasons)


def _prose_around(text: str) -> bool:
    """True when a parse failure comes from prose: the text does not start like SQL, or a leading run of its
    lines (or the part before the first ``;``) parses as one statement and what follows is not SQL."""
    stripped = text.strip()
    word = "".join(itertools.takewhile(lambda c: c.isalpha() or c == "_", stripped)).lower()
    if not stripped.startswith(("(", "--", "/*")) and word not in _SQL_START:
        return True
    lines = stripped.splitlines()
    cuts = ["\n".join(lines[:i]) for i in range(len(lines) - 1, 0, -1)]
    if ";" in stripped:
        cuts.append(stripped.split(";", 1)[0])
    for head in cuts:
        try:
            if len(parse.statements(head)) == 1:
                return True
        except duckdb.Error:
            continue
    return False


# ------------------------------------------------------------------------------------------------ the sandbox
@dataclass
class RunResult:
    """What one query returned on one instance, or why it did not."""

    ok: bool
    reason: str | None = None  # None when ok; else a code from REASONS
    columns: tuple[str, ...] = ()
    rows: list[tuple] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


class Sandbox:
    """One instance loaded into a locked-down in-memory DuckDB; ``run`` many queries on it, one at a time."""

    def __init__(self, instance: Instance, memory_limit: str = "256MB", threads: int = 1):
        self.seed = instance.seed
        self.tables = instance.table_names()
        self._lock = threading.Lock()
        self._con = duckdb.connect(":memory:", config={
            "threads": threads, "memory_limit": memory_limit, "temp_directory": "",
            "autoinstall_known_extensions": False, "autoload_known_extensions": False,
            "allow_community_extensions": False, "python_enable_replacements": False})
        try:
            instance.load_into(self._con)
            self._con.execute("SET enable_external_access = false")
            self._con.execute("SET lock_configuration = true")
        except BaseException:
            self._con.close()
            raise

    def run(self, sql: str, timeout_s: float = 2.0, max_rows: int = 10_000, check: bool = True) -> RunResult:
        """Execute ``sql`` (checked first unless ``check`` is False) in a rolled-back read-only transaction."""
        t0 = time.perf_counter()
        if check:
            reasons = check_sql(sql, self.tables)
            if reasons:
                return RunResult(ok=False, reason=reasons[0], error=",".join(reasons))
        try:  # exactly one statement, whatever the caller checked: a second one could COMMIT and then write
            stmts = duckdb.extract_statements(sql)
        except duckdb.Error as e:
            return RunResult(ok=False, reason="parse_error", error=str(e).splitlines()[0])
        if len(stmts) != 1:
            return RunResult(ok=False, reason="multiple_statements" if stmts else "empty")
        with self._lock:
            result = self._execute(sql, timeout_s, max_rows)
        result.seconds = time.perf_counter() - t0
        return result

    def _execute(self, sql: str, timeout_s: float, max_rows: int) -> RunResult:
        con, guard, state = self._con, threading.Lock(), {"running": True, "fired": False}

        def interrupt() -> None:
            with guard:
                if state["running"]:
                    state["fired"] = True
                    con.interrupt()

        timer = threading.Timer(timeout_s, interrupt)
        timer.daemon = True
        try:
            con.execute("BEGIN TRANSACTION READ ONLY")
            timer.start()
            res = con.execute(sql)
            if res.description is None:
                out = RunResult(ok=False, reason="execution_error", error="the statement returned no result set")
            else:
                rows = res.fetchmany(max_rows + 1)
                columns = tuple(d[0] for d in res.description)
                out = (RunResult(ok=False, reason="too_many_rows", columns=columns, rows=rows[:max_rows],
                                 error=f"more than {max_rows} rows") if len(rows) > max_rows
                       else RunResult(ok=True, columns=columns, rows=rows))
        except duckdb.Error as e:
            out = RunResult(ok=False, reason="execution_error", error=str(e).splitlines()[0][:300])
        finally:
            with guard:
                state["running"] = False
            timer.cancel()
            self._rollback()
        if state["fired"]:
            return RunResult(ok=False, reason="timeout", error=f"interrupted after {timeout_s} s")
        return out

    def _rollback(self) -> None:
        for _ in range(3):  # an interrupt that lands between statements can fail the first attempt
            try:
                self._con.execute("ROLLBACK")
                return
            except duckdb.TransactionException:
                return  # no transaction open (the statement ended it): nothing to undo
            except duckdb.Error:
                continue

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_sql(target: Sandbox | Instance, sql: str, timeout_s: float = 2.0, max_rows: int = 10_000,
            check: bool = True) -> RunResult:
    """Run ``sql`` on a sandbox (reused) or an instance (a sandbox is built for this call and closed)."""
    if isinstance(target, Sandbox):
        return target.run(sql, timeout_s, max_rows, check)
    with Sandbox(target) as box:
        return box.run(sql, timeout_s, max_rows, check)
