"""Execution accuracy as Spider's test-suite evaluation defines it, plus the keys the sql kind dedups by.

A predicted query is right when, on **every** database instance (two or more, generated from different seeds),
its result equals the reference's result:

- results are compared as bags of rows: duplicates count (``SELECT city`` is not ``SELECT DISTINCT city``);
  column order is the result's own; column names are ignored;
- row order is compared only when the reference has ``ORDER BY`` at its top level (read from DuckDB's parse
  tree: an ``ORDER BY`` inside a subquery or an aggregate does not make the result ordered);
- values are normalised first so that equal answers of different types agree: integers, floats and decimals
  as numbers rounded to 6 decimal places (``AVG`` and ``SUM/COUNT`` agree), dates and timestamps as ISO text
  (a timestamp at midnight equals the date), intervals as seconds, NaN as one token, nested values
  recursively;
- a query that is right on one instance by accident (a hard-coded number, a ``LIMIT`` that happens to cut at
  the right row) is wrong overall.

``result_signature`` hashes a query's normalised results on all instances (same order rule): two queries with
the same signature behave the same on every instance, a cheap key for semantic dedup. ``sql_key`` (from
``parse``) is the textual dedup key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from tasks.kinds.sql import parse
from tasks.kinds.sql.sandbox import RunResult, Sandbox

sql_key = parse.sql_key
_DIGITS = 6


def normalise_value(v):
    """A hashable, comparable form of one result value (see the module docstring)."""
    if v is None or isinstance(v, (bool, str, bytes)):
        return v
    if isinstance(v, (int, float, Decimal)):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        if isinstance(v, int) and abs(v) < 2**53:
            return v
        r = round(f, _DIGITS) + 0.0  # + 0.0: -0.0 becomes 0.0
        return int(r) if r.is_integer() and abs(r) < 2**53 else r
    if isinstance(v, dt.datetime):
        if v.tzinfo is None and v.time() == dt.time(0):
            return v.date().isoformat()
        return v.isoformat()
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return normalise_value(v.total_seconds())
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return tuple((str(k), normalise_value(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return tuple(normalise_value(x) for x in v)
    return repr(v)


def normalise_rows(rows: Sequence[tuple]) -> list[tuple]:
    return [tuple(normalise_value(v) for v in row) for row in rows]


def same_result(pred: RunResult, ref: RunResult, ordered: bool) -> bool:
    """Equal results: same width, same rows as a bag (as a list when ``ordered``)."""
    if not (pred.ok and ref.ok) or len(pred.columns) != len(ref.columns):
        return False
    a, b = normalise_rows(pred.rows), normalise_rows(ref.rows)
    return a == b if ordered else Counter(a) == Counter(b)


@dataclass(frozen=True)
class Outcome:
    """One prediction scored against one reference on every instance."""

    correct: bool
    reason: str | None  # None when correct; a sandbox reason, or "wrong_result" / "reference_failed"
    per_instance: tuple[bool, ...] = ()


@dataclass(frozen=True)
class Reference:
    """A reference query's results on each sandbox, computed once and reused for many predictions."""

    sql: str
    ordered: bool
    results: tuple[RunResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def reference(sql: str, sandboxes: Sequence[Sandbox], timeout_s: float = 2.0, max_rows: int = 10_000) -> Reference:
    """Run the reference on every sandbox; ``ordered`` says whether its row order is part of the answer."""
    results = tuple(box.run(sql, timeout_s, max_rows) for box in sandboxes)
    try:
        ordered = parse.ordered(sql)
    except ValueError:
        ordered = False
    return Reference(sql=sql, ordered=ordered, results=results)


def score(pred_sql: str, ref: Reference, sandboxes: Sequence[Sandbox], timeout_s: float = 2.0,
          max_rows: int = 10_000) -> Outcome:
    """Execution accuracy of one prediction: right only if its result equals the reference's on every instance.

    Stops at the first instance where it is wrong (the remaining ones cannot make it right).
    """
    if len(sandboxes) != len(ref.results):
        raise ValueError(f"reference was run on {len(ref.results)} sandboxes, scoring on {len(sandboxes)}")
    if not ref.ok:
        return Outcome(False, "reference_failed")
    per: list[bool] = []
    for box, want in zip(sandboxes, ref.results, strict=True):
        got = box.run(pred_sql, timeout_s, max_rows)
        if not got.ok:
            return Outcome(False, got.reason, tuple(per) + (False,))
        per.append(same_result(got, want, ref.ordered))
        if not per[-1]:
            return Outcome(False, "wrong_result", tuple(per))
    return Outcome(True, None, tuple(per))


def execution_match(pred_sql: str, ref_sql: str, sandboxes: Sequence[Sandbox], timeout_s: float = 2.0,
                    max_rows: int = 10_000) -> Outcome:
    """One-off convenience: run the reference, then score the prediction against it."""
    return score(pred_sql, reference(ref_sql, sandboxes, timeout_s, max_rows), sandboxes, timeout_s, max_rows)


def result_signature(results: Sequence[RunResult], ordered: bool) -> str | None:
    """Hash of the normalised results on every instance (None when any run failed): equal for queries that
    return the same thing everywhere. Bags are hashed in a canonical order, so row order counts only when
    ``ordered``."""
    if not all(r.ok for r in results):
        return None
    h = hashlib.sha256(b"ordered" if ordered else b"bag")
    for r in results:
        rows = [repr(row) for row in normalise_rows(r.rows)]
        h.update(f"|{len(r.columns)}|{len(rows)}|".encode())
        h.update("\n".join(rows if ordered else sorted(rows)).encode())
    return h.hexdigest()[:32]


def query_signature(sql: str, sandboxes: Sequence[Sandbox], timeout_s: float = 2.0,
                    max_rows: int = 10_000) -> str | None:
    """``result_signature`` of one query, run on every sandbox."""
    ref = reference(sql, sandboxes, timeout_s, max_rows)
    return result_signature(ref.results, ref.ordered)
