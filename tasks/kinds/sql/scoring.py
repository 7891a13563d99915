"""The sql kind's scoring: one output against one item, and the figures it adds to the metrics object M.

An output is *semantically* right when it is one read-only query over the schema and its result equals the
reference's on **every** database instance (``score.score``: execution accuracy as Spider's test-suite evaluation
defines it: bags of rows, order only when the reference has a top-level ``ORDER BY``). Outputs run in the same
sandboxes and under the same limits as validation (``validation.query_timeout_s``, ``max_rows``), so a runaway
output costs at most its time limit per instance.

Per item (stored in ``evaluation_items.kind_json``): ``parsed`` (DuckDB parses it: not empty, no prose around
it, no syntax error), ``read_only`` (parsed as one statement that only reads the schema's tables: no write, no
file, no setting; a second statement is not judged, so it counts as not read-only), ``reason`` (why it is
wrong: a check or sandbox reason, ``wrong_result`` or ``reference_failed``; None when right), ``per_instance``
(right on each instance, in ``task.instance_seeds`` order, as far as it ran). In M: ``parse_rate`` (of all
outputs) and ``read_only_rate`` (of the outputs that parse), each with a Wilson CI; per topic, ``parse_rate``.
"""

from __future__ import annotations

from functools import lru_cache

from tasks.kinds.sql.checks import normalise
from tasks.kinds.sql.database import database, database_key, open_database
from tasks.kinds.sql.sandbox import READ_ONLY_REASONS, check_sql
from tasks.kinds.sql.score import Outcome, Reference, reference
from tasks.kinds.sql.score import score as execution_score

PARSE_FAILURES = frozenset(("empty", "not_sql", "parse_error"))


@lru_cache(maxsize=8192)
def _reference(db_key: tuple, sql: str, timeout_s: float, max_rows: int) -> Reference:
    """A reference query's results on the domain's instances (a golden item is scored for every model)."""
    return reference(sql, open_database(*db_key).boxes, timeout_s, max_rows)


def score(items: list[dict], texts: list[str], cfg) -> list[dict]:
    """One dict per item: semantic_ok, timed_out, parsed, read_only, reason, per_instance."""
    db, v = database(cfg), cfg.validation
    db_key = database_key(cfg)
    rows = []
    for it, text in zip(items, texts, strict=True):
        text = normalise(text)
        reasons = check_sql(text, db.tables)
        parsed = not PARSE_FAILURES.intersection(reasons)
        read_only = parsed and not (READ_ONLY_REASONS | {"multiple_statements"}).intersection(reasons)
        ref = _reference(db_key, normalise(it["completion"]), v.query_timeout_s, v.max_rows)
        if reasons:
            outcome = Outcome(False, reasons[0])
        else:
            outcome = execution_score(text, ref, db.boxes, v.query_timeout_s, v.max_rows)
        rows.append({"semantic_ok": outcome.correct, "timed_out": outcome.reason == "timeout", "parsed": parsed,
                     "read_only": read_only, "reason": outcome.reason, "per_instance": list(outcome.per_instance)})
    return rows


def metrics(rows: list[dict]) -> dict:
    """The kind's figures in M, rounded and with intervals as the evaluation's own figures are."""
    from tasks.evaluate import rate, wilson

    n = len(rows)
    parsed = sum(bool(r.get("parsed")) for r in rows)
    read_only = sum(bool(r.get("read_only")) for r in rows)
    return {"parse_rate": rate(parsed, n), "parse_rate_ci": wilson(parsed, n),
            "read_only_rate": rate(read_only, parsed), "read_only_rate_ci": wilson(read_only, parsed)}


def topic_metrics(rows: list[dict]) -> dict:
    """The kind's figure in one ``by_topic`` slice."""
    from tasks.evaluate import rate

    return {"parse_rate": rate(sum(bool(r.get("parsed")) for r in rows), len(rows))}
