"""The sql kind's validation checks (tasks/validate.py runs them between its generic steps).

In order, each failure a reason code (``CHECK_REASONS``):

1. one read-only query, judged from DuckDB's own parse tree (``sandbox.check_sql``): ``empty``, ``not_sql``
   (prose or markdown fences around the query), ``multiple_statements``, ``parse_error``, ``not_read_only``
   (DDL, DML, ``ATTACH``, ``COPY``, ``EXPORT``, ``INSTALL``/``LOAD``, ``SET``/``PRAGMA`` …),
   ``forbidden_function`` (file, network, environment or settings functions), ``forbidden_table`` (system
   tables, file paths, qualified names), ``unknown_table`` (not a table of the schema nor a CTE);
2. house limit — ``sql_too_long`` (``validation.max_sql_chars``);
3. runs on every database instance in its sandbox (``task.instance_seeds``; stops at the first failure):
   ``execution_error``, ``timeout`` (``validation.query_timeout_s``), ``too_many_rows`` (``validation.max_rows``);
4. says something — ``empty_result``: no rows (or one row of NULLs) on every instance, with
   ``validation.reject_empty_result`` (such a query cannot tell a right answer from a wrong one).

A query that passes keeps its ``Facts``: the normalised SQL (``parse.sql_key``, DuckDB's own serialisation) and
its result signature on all instances (``score.result_signature``: bags, order only under a top-level
``ORDER BY``). Then, called by the generic dedup and decontamination: ``equivalence_classes`` (same normalised
SQL or same results on every instance: one class) and ``decontaminate`` (``eval_overlap_sql``: the normalised
SQL or the result signature of an evaluation item's reference).

Every query runs in the sandboxes of ``database``: a locked-down in-memory copy per instance, in a read-only
transaction that is always rolled back, interrupted at its time limit. Nothing outside them is touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.kinds.sql import parse
from tasks.kinds.sql.database import Database, database
from tasks.kinds.sql.sandbox import RunResult, check_sql
from tasks.kinds.sql.score import result_signature

if TYPE_CHECKING:
    from tasks.kinds.sql.config import SqlDomainConfig, SqlValidation
    from tasks.validate import Verdict

CHECK_REASONS = ("empty", "not_sql", "multiple_statements", "parse_error", "not_read_only", "forbidden_function",
                 "forbidden_table", "unknown_table", "sql_too_long", "execution_error", "timeout", "too_many_rows",
                 "empty_result")
OVERLAP_REASONS = ("eval_overlap_sql",)


@dataclass(frozen=True)
class Facts:
    """What a query that ran everywhere is, for dedup and decontamination."""

    key: str  # normalised SQL (the text itself when DuckDB cannot print the tree back)
    signature: str | None  # its results on every instance; None when a run failed
    rows: tuple[int, ...] = ()  # rows returned per instance


def normalise(text: str) -> str:
    """The answer as stored and scored: outer blanks and trailing semicolons dropped."""
    return text.strip().rstrip(";").rstrip()


def sql_key(sql: str) -> str:
    try:
        return parse.sql_key(sql)
    except Exception:  # noqa: BLE001 - not one serialisable SELECT: compare the text
        return sql


def is_empty(result: RunResult) -> bool:
    """No rows, or one row of NULLs (an aggregate over nothing)."""
    return not result.rows or (len(result.rows) == 1 and all(v is None for v in result.rows[0]))


def run_everywhere(sql: str, db: Database, timeout_s: float, max_rows: int) -> tuple[list[RunResult], str | None]:
    """Run an already checked query on every instance, stopping at the first failure: (results, its reason)."""
    results = []
    for box in db.boxes:
        res = box.run(sql, timeout_s, max_rows, check=False)
        results.append(res)
        if not res.ok:
            return results, res.reason
    return results, None


def examine(sql: str, db: Database, v_cfg: SqlValidation) -> tuple[list[str], Facts | None]:
    """Steps 1–4 for one normalised answer: (reason codes, its facts when it ran everywhere)."""
    reasons = check_sql(sql, db.tables)
    if len(sql) > v_cfg.max_sql_chars:
        reasons.append("sql_too_long")
    if reasons:
        return reasons, None
    results, failed = run_everywhere(sql, db, v_cfg.query_timeout_s, v_cfg.max_rows)
    if failed:
        return [failed], None
    if v_cfg.reject_empty_result and all(is_empty(r) for r in results):
        reasons.append("empty_result")
    return reasons, Facts(sql_key(sql), result_signature(results, _ordered(sql)), tuple(len(r.rows) for r in results))


def reference_facts(sql: str, db: Database, v_cfg: SqlValidation) -> Facts:
    """An evaluation item's reference: its normalised SQL and, when it runs everywhere, its result signature."""
    sql = normalise(sql)
    if check_sql(sql, db.tables):
        return Facts(sql_key(sql), None)
    results, failed = run_everywhere(sql, db, v_cfg.query_timeout_s, v_cfg.max_rows)
    return Facts(sql_key(sql), None if failed else result_signature(results, _ordered(sql)),
                 tuple(len(r.rows) for r in results))


def _ordered(sql: str) -> bool:
    try:
        return parse.ordered(sql)
    except ValueError:
        return False


# ------------------------------------------------------------------------------------------ the kind's hooks
def check(verdicts: list[Verdict], cfg: SqlDomainConfig, *, eval_items: list[dict]) -> list[Facts]:
    """Steps 1–4 on every verdict with an output, in place; returns the eval items' facts for ``decontaminate``."""
    db, v_cfg = database(cfg), cfg.validation
    seen: dict[str, tuple[list[str], Facts | None]] = {}  # paraphrases share their query: examine it once
    for v in verdicts:
        if v.output is None:
            continue
        t0 = time.perf_counter()
        v.completion = normalise(v.output.sql)
        if v.completion not in seen:
            seen[v.completion] = examine(v.completion, db, v_cfg)
        reasons, v.data = seen[v.completion]
        v.reasons += reasons
        v.seconds = time.perf_counter() - t0
    return [reference_facts(it["completion"], db, v_cfg) for it in eval_items]


def equivalence_classes(verdicts: list[Verdict]) -> list[int | None]:
    """Class per verdict for the dedup cap: the same normalised SQL, or the same results on every instance."""
    first: dict[tuple[str, str], int] = {}
    out: list[int | None] = []
    for i, v in enumerate(verdicts):
        facts: Facts | None = v.data
        labels = [("key", facts.key if facts else v.completion)]
        if facts and facts.signature:
            labels.append(("signature", facts.signature))
        c = next((first[label] for label in labels if label in first), i)
        for label in labels:
            first.setdefault(label, c)
        out.append(c)
    return out


def decontaminate(verdicts: list[Verdict], eval_facts: list[Facts]) -> None:
    """``eval_overlap_sql`` for a query with an evaluation item's normalised SQL or result signature (same results
    on every instance: the database cannot tell them apart, so the item would test what was trained)."""
    keys = {f.key for f in eval_facts}
    signatures = {f.signature for f in eval_facts if f.signature}
    for v in verdicts:
        facts: Facts | None = v.data
        if facts is not None and (facts.key in keys or facts.signature in signatures):
            v.reasons.append("eval_overlap_sql")
