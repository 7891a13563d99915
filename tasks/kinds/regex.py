"""The regex kind: prompt rendering, dialect compile, time-limited matching and scoring.

Validation (is a teacher example right?) and evaluation (is the student's regex right?) ask the same
question — does this regex, in this dialect, full-match every positive and no negative — so both call
``check_batch`` here. Matching runs in a worker process that is killed when one item exceeds its time
limit, so a catastrophic pattern costs at most that limit and never stalls the batch.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import threading
from dataclasses import dataclass

KIND = "regex"
VALIDATOR_VERSION = "regex-v1"


def render_prompt(template: str, description: str) -> str:
    """The fixed terse prompt the student sees; the completion is only the regex."""
    return template.format(description=" ".join(description.split()))


def normalise_completion(text: str) -> str:
    return text.strip()


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


# The matcher runs in a plain child interpreter (stdlib only): JSON lines in, one JSON line out per item.
_WORKER = r"""
import json, re, sys
for line in sys.stdin:
    regex, positives, negatives = json.loads(line)
    try:
        pat = re.compile(regex)
    except Exception as e:
        out = [False, 0, 0, str(e) or type(e).__name__]
    else:
        out = [True, sum(pat.fullmatch(s) is not None for s in positives),
               sum(pat.fullmatch(s) is None for s in negatives), None]
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"""


def _feed(proc: subprocess.Popen, items: list[Item]) -> None:
    try:
        for item in items:
            proc.stdin.write(json.dumps(item) + "\n")
        proc.stdin.close()
    except (BrokenPipeError, OSError, ValueError):
        pass  # the worker was killed on a slow item; the next worker gets the rest


def check_batch(items: list[Item], timeout_s: float = 2.0) -> list[MatchResult]:
    """Check many (regex, positives, negatives) items; an item slower than ``timeout_s`` is marked timed out.

    One worker process handles the whole batch; if it stalls on an item it is killed, the item is marked
    ``timed_out``, and a fresh worker continues after it. A worker is a separate interpreter, not a fork, so
    it is safe to call from threads (Prefect tasks) and from scripts without a ``__main__`` guard.
    """
    results: list[MatchResult] = []
    while len(results) < len(items):
        rest = items[len(results):]
        proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, bufsize=1)
        feeder = threading.Thread(target=_feed, args=(proc, rest), daemon=True)
        feeder.start()
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        wait = timeout_s + 10.0  # the first answer also pays for the interpreter's start
        done = 0
        while done < len(rest) and sel.select(wait):
            line = proc.stdout.readline()
            if not line:
                break
            compiled, pos, neg, error = json.loads(line)
            results.append(MatchResult(compiled, pos, neg, error=error))
            done += 1
            wait = timeout_s
        if done < len(rest):  # stalled (or died) on this item
            results.append(MatchResult(True, timed_out=True, error=f"match exceeded {timeout_s}s"))
        proc.kill()
        proc.wait()
        sel.close()
        proc.stdout.close()
        feeder.join(timeout=5)
    return results
