"""The regex kind's matcher: dialect compile, time-limited matching, the ReDoS guard and equivalence.

Validation (is a teacher example right?) and evaluation (is the student's regex right?) ask the same
questions, so both call the functions here:

- ``check_batch(items, timeout_s, dialect)``: does each regex, in the dialect, full-match every positive and
  no negative? A catastrophic item costs at most ``timeout_s`` and never stalls the batch.
- ``redos_guard(regexes, dialect, timeout_s)``: ``None`` (safe) or ``"redos_static"`` / ``"redos_stress"``.
  Static detection is aware of full-match semantics (see ``analysis``); patterns it passes are then
  run against generated attack strings. For ``re2`` every pattern is safe: RE2 matches in linear time by
  construction, so a nested quantifier there costs nothing and is not reported.
- ``equivalence(a, b, dialect, timeout_s)``: ``("equivalent" | "different" | "undecided", strings)`` —
  canonical spelling, then DFA equivalence with ``interegular`` (edge anchors removed first; ASCII view of
  ``\\w``/``\\d``), then behaviour on shared probe strings; distinguishing strings come with "different".
- ``behaviour_signature(regexes, probes, dialect)``: which probes each regex full-matches, a cheap bucket key
  for semantic dedup (equivalent regexes always share it).

All of them run in worker processes (``worker``) that are killed when one request overruns; two
workers share a large batch so both cores are used.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

DIALECTS = ("python", "re2")
_ROOT = str(Path(__file__).resolve().parents[3])  # the repository root
_START_S = 30.0  # how long a fresh worker may take to say it is ready (a loaded machine is slow to start one)
_WORKER_CMD = [sys.executable, "-c",
               f"import sys; sys.path.insert(0, {_ROOT!r}); from tasks.kinds.regex.worker import main; main()"]


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


@dataclass(frozen=True)
class Answer:
    """One worker reply, or where the worker stalled: ``phase`` is "check" inside the ReDoS stress test."""

    reply: object = None
    timed_out: bool = False
    phase: str = "check"
    seconds: float = 0.0  # time the worker spent on this request (measured in the worker)


# ---------------------------------------------------------------------------------------- worker pool
def _feed(proc: subprocess.Popen, lines: list[str]) -> None:
    try:
        for line in lines:
            proc.stdin.write(line)
        proc.stdin.close()
    except (BrokenPipeError, OSError, ValueError):
        pass  # the worker was killed on a slow item; the next worker gets the rest


class _Lines:
    """Lines from a worker's stdout with a deadline (own buffer: a text reader would hide buffered lines
    from ``select``)."""

    def __init__(self, proc: subprocess.Popen):
        self.fd = proc.stdout.fileno()
        self.buf = b""
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ)

    def read(self, deadline: float) -> bytes | None:
        while b"\n" not in self.buf:
            if not self.sel.select(max(0.0, deadline - time.monotonic())):
                return None  # too slow
            time.sleep(0.001)  # let a few more replies arrive: one wake-up per batch, not per reply
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None  # the worker died
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line


def _run_chunk(requests: list[str], setup: list[str], timeout_s: float) -> list[Answer]:
    answers: list[Answer] = []
    while len(answers) < len(requests):
        rest = requests[len(answers):]
        proc = subprocess.Popen(_WORKER_CMD, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, cwd=_ROOT)
        feeder = threading.Thread(target=_feed, args=(proc, setup + rest), daemon=True)
        feeder.start()
        lines = _Lines(proc)
        try:
            pending_setup, phase = len(setup), "match"
            started = time.monotonic()
            deadline = started + _START_S  # until the worker says it is ready
            while len(answers) < len(requests):
                line = lines.read(deadline)
                if line is None:  # stalled (or died) on this item
                    answers.append(Answer(timed_out=True, phase=phase, seconds=time.monotonic() - started))
                    break
                msg = json.loads(line)
                if msg in ("S", "M"):  # the worker entered / left the ReDoS stress test
                    phase = "check" if msg == "S" else "match"
                    continue
                if msg == "R":  # the interpreter is up: from here on every request has timeout_s
                    started, deadline = time.monotonic(), time.monotonic() + timeout_s
                    continue
                t = time.monotonic()
                if pending_setup:
                    pending_setup -= 1
                else:
                    answers.append(Answer(msg[1], seconds=msg[0]))
                phase, started, deadline = "match", t, t + timeout_s
        finally:
            proc.kill()
            proc.wait()
            lines.sel.close()
            proc.stdout.close()
            feeder.join(timeout=5)
    return answers


def run_requests(requests: list[list], timeout_s: float, setup: list[list] | None = None,
                 workers: int | None = None) -> list[Answer]:
    """Send requests to worker processes (two for big batches), in order; a stalled one is killed and skipped."""
    if not requests:
        return []
    lines = [json.dumps(r) + "\n" for r in requests]
    setup_lines = [json.dumps(s) + "\n" for s in setup or []]
    n = workers or (min(2, os.cpu_count() or 1) if len(lines) >= 400 else 1)
    if n == 1:
        return _run_chunk(lines, setup_lines, timeout_s)
    size = -(-len(lines) // n)
    chunks = [lines[i:i + size] for i in range(0, len(lines), size)]
    out: list[list[Answer]] = [[] for _ in chunks]

    def work(k: int) -> None:
        out[k] = _run_chunk(chunks[k], setup_lines, timeout_s)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(chunks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [a for part in out for a in part]


def _check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; allowed: {', '.join(DIALECTS)}")


# ---------------------------------------------------------------------------------------- public API
def check_batch(items: list[Item], timeout_s: float = 2.0, dialect: str = "python") -> list[MatchResult]:
    """Check many (regex, positives, negatives) items with full-match semantics in the dialect.

    An item slower than ``timeout_s`` is marked ``timed_out``; its worker is killed and a fresh one continues
    after it. Workers are separate interpreters, not forks, so this is safe from threads (Prefect tasks).
    """
    _check_dialect(dialect)
    answers = run_requests([["match", r, dialect, list(p), list(n)] for r, p, n in items], timeout_s)
    results = []
    for a in answers:
        if a.timed_out:
            results.append(MatchResult(True, timed_out=True, error=f"match exceeded {timeout_s}s"))
        elif isinstance(a.reply, dict):
            results.append(MatchResult(False, error=a.reply.get("error")))
        else:
            compiled, pos, neg, error = a.reply
            results.append(MatchResult(compiled, pos, neg, error=error))
    return results


def redos_guard(regexes: list[str], dialect: str = "python", timeout_s: float = 1.0) -> list[str | None]:
    """``None`` when a regex is safe to run, else ``"redos_static"`` or ``"redos_stress"``.

    The stress test flags a pattern when one generated attack string takes more than a quarter of
    ``timeout_s`` (re-measured once); a worker that stalls outright is killed at ``timeout_s``.
    """
    _check_dialect(dialect)
    if dialect == "re2":
        return [None] * len(regexes)
    answers = run_requests([["redos", r, dialect, timeout_s / 4] for r in regexes], timeout_s)
    return ["redos_stress" if a.timed_out else (a.reply if isinstance(a.reply, str | None) else None)
            for a in answers]


def equivalence_batch(pairs: list[tuple[str, str]], dialect: str = "python",
                      timeout_s: float = 0.5) -> list[tuple[str, list[str]]]:
    """``equivalence`` for many pairs in one pool of workers (what scoring and dedup call)."""
    _check_dialect(dialect)
    workers = min(2, os.cpu_count() or 1) if len(pairs) >= 8 else 1  # a DFA that blows up costs its time limit
    answers = run_requests([["equiv", a, b, dialect] for a, b in pairs], timeout_s, workers=workers)
    return [("undecided", []) if a.timed_out or not isinstance(a.reply, list) else (a.reply[0], a.reply[1])
            for a in answers]


def equivalence(a: str, b: str, dialect: str = "python", timeout_s: float = 0.5) -> tuple[str, list[str]]:
    """("equivalent" | "different" | "undecided", distinguishing strings when different), time-limited."""
    return equivalence_batch([(a, b)], dialect, timeout_s)[0]


def behaviour_signature(regexes: list[str], probes: list[str], dialect: str = "python",
                        timeout_s: float = 1.0) -> list[str | None]:
    """Hex bitmask of the probes each regex full-matches (``None``: did not compile or timed out)."""
    _check_dialect(dialect)
    answers = run_requests([["sig", r, dialect] for r in regexes], timeout_s, setup=[["setup", list(probes)]])
    return [None if a.timed_out or not isinstance(a.reply, str) else a.reply for a in answers]


@dataclass(frozen=True)
class FullCheck:
    """Everything validation asks of one regex in one worker round trip."""

    reasons: list[str]
    positives_ok: int = 0
    negatives_ok: int = 0
    error: str | None = None
    signature: str | None = None
    canonical: str | None = None
    width: tuple | None = None  # (min length, max length, first chars, last chars, alphabet): bucket key
    seconds: float = 0.0


def check_examples(items: list[Item], dialect: str, style: dict, timeout_s: float, redos_timeout_s: float,
                   probes: list[str] | None = None) -> list[FullCheck]:
    """Compile → house style → ReDoS guard → positives/negatives (+ signature) for each item, in order.

    A stall during the ReDoS stress test is ``redos_stress``; a stall while matching is ``match_timeout``.
    """
    _check_dialect(dialect)
    setup = [["setup", list(probes)]] if probes is not None else []
    setup.append(["fullcfg", dialect, style, redos_timeout_s / 4, probes is not None])  # sent once per worker
    answers = run_requests([["f", r, list(p), list(n)] for r, p, n in items], max(timeout_s, redos_timeout_s),
                           setup=setup)
    out = []
    for a in answers:
        if a.timed_out:
            out.append(FullCheck(["match_timeout" if a.phase == "match" else "redos_stress"], seconds=a.seconds))
        elif not isinstance(a.reply, dict) or "r" not in a.reply:
            out.append(FullCheck(["compile_error"], error=str(a.reply)))
        else:
            r = a.reply
            out.append(FullCheck(r["r"], r["p"], r["n"], r["e"], r["s"], r["c"], tuple(r["w"]) if r["w"] else None,
                                 a.seconds))
    return out
