"""The regex kind: prompt rendering, dialect compile, time-limited matching and scoring.

Validation (is a teacher example right?) and evaluation (is the student's regex right?) ask the same
question — does this regex, in this dialect, full-match every positive and no negative — so both call
``check_batch`` here. Matching runs in a worker process that is killed when one item exceeds its time
limit, so a catastrophic pattern costs at most that limit and never stalls the batch.
"""

from __future__ import annotations

import multiprocessing as mp
import re
from dataclasses import dataclass

KIND = "regex"
VALIDATOR_VERSION = "regex-v1"


def render_prompt(template: str, description: str) -> str:
    """The fixed terse prompt the student sees; the completion is only the regex."""
    return template.format(description=" ".join(description.split()))


def normalise_completion(text: str) -> str:
    return text.strip()


def compile_error(regex: str, dialect: str = "python") -> str | None:
    """None when the regex compiles in the dialect, else the compiler's message."""
    if dialect != "python":
        raise ValueError(f"unsupported dialect {dialect!r}; allowed: python")
    try:
        re.compile(regex)
    except (re.error, RecursionError, OverflowError, ValueError) as e:
        return str(e) or type(e).__name__
    return None


@dataclass(frozen=True)
class MatchResult:
    """Outcome of checking one regex against its positive and negative strings."""

    compiled: bool
    positives_ok: int = 0  # positives fully matched
    negatives_ok: int = 0  # negatives correctly not matched
    timed_out: bool = False
    error: str | None = None

    def all_ok(self, n_pos: int, n_neg: int) -> bool:
        return self.compiled and not self.timed_out and self.positives_ok == n_pos and self.negatives_ok == n_neg


Item = tuple[str, list[str], list[str]]


def _check_one(item: Item) -> MatchResult:
    regex, positives, negatives = item
    try:
        pat = re.compile(regex)
    except (re.error, RecursionError, OverflowError, ValueError) as e:
        return MatchResult(False, error=str(e) or type(e).__name__)
    pos = sum(1 for s in positives if pat.fullmatch(s) is not None)
    neg = sum(1 for s in negatives if pat.fullmatch(s) is None)
    return MatchResult(True, pos, neg)


def _worker(conn, items: list[Item]) -> None:
    for i, item in enumerate(items):
        conn.send((i, _check_one(item)))
    conn.close()


def check_batch(items: list[Item], timeout_s: float = 2.0) -> list[MatchResult]:
    """Check many (regex, positives, negatives) items; an item slower than ``timeout_s`` is marked timed out.

    One worker process handles the whole batch; if it stalls on an item, it is killed and a fresh worker
    continues after that item.
    """
    results: list[MatchResult | None] = [None] * len(items)
    ctx = mp.get_context("forkserver")
    start = 0
    while start < len(items):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(child, items[start:]), daemon=True)
        proc.start()
        child.close()
        nxt = start
        first_wait = timeout_s + 10.0  # the first result also pays for the worker's start
        while nxt < len(items):
            if not parent.poll(first_wait if nxt == start else timeout_s):
                break
            try:
                i, res = parent.recv()
            except EOFError:
                break
            results[start + i] = res
            nxt = start + i + 1
        if nxt < len(items):  # stalled or died on item nxt
            proc.kill()
            results[nxt] = MatchResult(True, timed_out=True, error=f"match exceeded {timeout_s}s")
            nxt += 1
        proc.join(timeout=5)
        parent.close()
        start = nxt
    return [r for r in results if r is not None]
