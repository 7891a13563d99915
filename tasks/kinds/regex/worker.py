"""The matcher process: one JSON request per line in, one JSON reply per line out (run by ``matcher.run_requests``).

A pattern can make Python's ``re`` (and ``interegular``) run for hours, and a C-level match cannot be
interrupted from inside the process, so every call that touches a user's or a teacher's regex runs here and
the parent kills this process when one request overruns. Before a request's string matching starts, the
worker that is about to run a ReDoS stress test prints ``"S"`` first and ``"M"`` after it, so the parent can tell a
stalled stress test from a stalled match (a stall with no marker is a match). Every reply is
``[seconds spent, reply]``, timed here so the figure does not depend on when the parent wakes up.

Requests (``[op, ...]``):
- ``["setup", probes]`` → ``[]``: the shared probe strings for behaviour signatures.
- ``["match", regex, dialect, positives, negatives]`` → ``[compiled, pos_ok, neg_ok, error]``.
- ``["redos", regex, dialect, budget_s]`` → ``null`` | ``"redos_static"`` | ``"redos_stress"``.
- ``["full", regex, dialect, style, positives, negatives, budget_s, want_sig]`` → ``{r, p, n, e, s, c, w}``:
  reasons (compile / style / ReDoS), counts, error, signature, canonical spelling, width; or, after one
  ``["fullcfg", dialect, style, budget_s, want_sig]``, the short form ``["f", regex, positives, negatives]``.
- ``["sig", regex, dialect]`` → signature (hex) or ``null``.
- ``["equiv", a, b, dialect]`` → ``[verdict, distinguishing strings]``.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import sys
import time
import warnings
from types import SimpleNamespace

from tasks.kinds.regex import analysis as ra

_PROBES: list[str] = []
_FULL: list = []  # dialect, style, stress budget, want_sig for "f" requests
_CACHE: dict[tuple[str, str], object] = {}


def compile_in(regex: str, dialect: str):
    key = (regex, dialect)
    pat = _CACHE.get(key)
    if pat is None:
        if dialect == "re2":
            import re2

            pat = re2.compile(regex)
        else:
            pat = re.compile(regex, ra.PY_FLAGS)  # the python dialect is ASCII: \d = [0-9] (analysis.py)
        if len(_CACHE) > 20_000:
            _CACHE.clear()
        _CACHE[key] = pat
    return pat


def _counts(pat, positives, negatives) -> tuple[int, int]:
    fm = pat.fullmatch
    return sum(fm(s) is not None for s in positives), sum(fm(s) is None for s in negatives)


def _signature(regex: str, dialect: str) -> str | None:
    """Bits of which shared probes the pattern full-matches (Python ``re`` when it reads the pattern: faster)."""
    if not _PROBES:
        return None
    try:
        fm = compile_in(regex, "python").fullmatch
    except Exception:
        try:
            fm = compile_in(regex, dialect).fullmatch
        except Exception:
            return None
    bits = 0
    for i, s in enumerate(_PROBES):
        if fm(s) is not None:
            bits |= 1 << i
    return format(bits, "x")


def _timed(fm, s: str) -> float:
    t0 = time.perf_counter()
    fm(s)
    return time.perf_counter() - t0


def stress(pat, seq, budget_s: float) -> bool:
    """True when an attack string takes longer than ``budget_s`` (re-measured once, the machine is noisy),
    or when a family's time grows so fast that its next, longer string would (exponential or cubic+)."""
    fm = pat.fullmatch
    families = ra.attack_strings(seq)
    if not families:
        return False
    sys.stdout.write('"S"\n')
    sys.stdout.flush()
    try:
        return _stress(fm, families, budget_s)
    finally:
        sys.stdout.write('"M"\n')
        sys.stdout.flush()


def _stress(fm, families, budget_s: float) -> bool:
    for family in families:
        prev = None
        for s in family:
            t = _timed(fm, s)
            if t > budget_s and _timed(fm, s) > budget_s:
                return True
            if prev is not None and t > budget_s / 4 and t > 4 * prev and _timed(fm, s) > 4 * prev:
                return True
            prev = t
    return False


def redos(regex: str, dialect: str, budget_s: float, seq=None, pat=None) -> str | None:
    """Static analysis, then the stress test. ``LORAFORGE_REDOS_GUARD`` = ``stress`` skips the static part and
    ``off`` skips both (diagnostics only: tests and benches that measure one layer alone)."""
    mode = os.environ.get("LORAFORGE_REDOS_GUARD", "full")
    if dialect == "re2" or mode == "off":
        return None  # RE2 matches in linear time by construction: nothing to guard
    try:
        seq = ra.parse(regex) if seq is None else seq
        pat = compile_in(regex, dialect) if pat is None else pat
    except Exception:
        return None  # not compilable: that is the compile check's reason, not a ReDoS finding
    if mode != "stress" and ra.redos_static(regex, seq):
        return "redos_static"
    return "redos_stress" if stress(pat, seq, budget_s) else None


def full(regex, dialect, style, positives, negatives, budget_s, want_sig) -> dict:
    out = {"r": [], "p": 0, "n": 0, "e": None, "s": None, "c": None, "w": None}
    try:
        seq = ra.parse(regex)
    except Exception:  # RE2-only syntax (\z, [[:alpha:]], \pL) may still compile there; tree checks are skipped
        seq = None
    try:
        if dialect == "python" and seq is not None and (regex, dialect) not in _CACHE:
            _CACHE[(regex, dialect)] = re._compiler.compile(seq, seq.state.flags)  # parse once, compile the tree
        pat = compile_in(regex, dialect)
    except Exception as e:
        out["r"], out["e"] = ["compile_error"], (str(e) or type(e).__name__)[:300]
        return out
    if seq is not None:
        out["r"] = ra.style_reasons(seq, SimpleNamespace(**style))
        out["c"] = ra.canonical(regex, seq)
        out["w"] = [*ra.width(seq), format(ra.first(seq), "x"), format(ra.last(seq), "x"),
                    format(ra.alphabet(seq), "x")]  # language invariants: the dedup bucket key
    else:
        out["c"] = f"raw:{regex}"
    if out["r"]:
        return out
    if seq is not None:
        reason = redos(regex, dialect, budget_s, seq, pat)
        if reason:
            out["r"] = [reason]
            return out
    out["p"], out["n"] = _counts(pat, positives, negatives)
    if want_sig:
        out["s"] = _signature(regex, dialect)
    return out


def _chars(s) -> str:
    return "".join(c if isinstance(c, str) else "\x00" for c in s)


@functools.lru_cache(maxsize=8192)
def _canonical(regex: str) -> str:
    return ra.canonical(regex)


def equiv(a: str, b: str, dialect: str) -> list:
    """Canonical spelling, then behaviour on probes (witness strings of both + the shared probes), then DFA
    equivalence with interegular where both are regular; "undecided" when nothing decides."""
    a0, b0 = ra.strip_edge_anchors(a), ra.strip_edge_anchors(b)
    try:
        pa_, pb_ = compile_in(a, dialect), compile_in(b, dialect)
    except Exception as e:
        return ["undecided", [f"compile: {e}"[:100]]]
    try:
        if _canonical(a0) == _canonical(b0):
            return ["equivalent", []]
    except Exception:
        pass
    probes = sorted(set(ra.witness_strings(a0)) | set(ra.witness_strings(b0)) | set(_PROBES))
    diff = [s for s in probes if (pa_.fullmatch(s) is None) != (pb_.fullmatch(s) is None)]
    if diff:  # cheap behavioural difference first: no DFA needed
        return ["different", diff[:5]]
    try:
        from interegular import REFlags, parse_pattern
        from interegular.fsm import Alphabet

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pa, pb = parse_pattern(a0), parse_pattern(b0)
            if pa.prefix_postfix != (0, 0) or pb.prefix_postfix != (0, 0):
                raise ValueError("lookaround")
            alpha = Alphabet.union(pa.get_alphabet(REFlags(0)), pb.get_alphabet(REFlags(0)))[0]
            fa, fb = pa.to_fsm(alpha, (0, 0)), pb.to_fsm(alpha, (0, 0))
            if fa.equivalent(fb):
                return ["equivalent", []]
            diff = [_chars(s) for s in itertools.islice(fa.symmetric_difference(fb).strings(), 50)]
            diff = [s for s in diff if (pa_.fullmatch(s) is None) != (pb_.fullmatch(s) is None)][:5]
            if diff:
                return ["different", diff]
    except Exception:
        pass
    return ["undecided", []]


def handle(req: list):
    op = req[0]
    if op == "setup":
        _PROBES[:] = req[1]
        return []
    if op == "match":
        regex, dialect, positives, negatives = req[1:]
        try:
            pat = compile_in(regex, dialect)
        except Exception as e:
            return [False, 0, 0, (str(e) or type(e).__name__)[:300]]
        return [True, *_counts(pat, positives, negatives), None]
    if op == "redos":
        return redos(req[1], req[2], req[3])
    if op == "full":
        return full(*req[1:])
    if op == "fullcfg":  # the constant arguments of the "f" requests that follow
        _FULL[:] = req[1:]
        return []
    if op == "f":
        dialect, style, budget_s, want_sig = _FULL
        return full(req[1], dialect, style, req[2], req[3], budget_s, want_sig)
    if op == "sig":
        return _signature(req[1], req[2])
    if op == "equiv":
        return equiv(req[1], req[2], req[3])
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    warnings.simplefilter("ignore")
    sys.stdout.write('"R"\n')  # ready: the parent's per-request clock starts now, not at interpreter start
    sys.stdout.flush()
    for line in sys.stdin:
        t0 = time.perf_counter()
        try:
            reply = handle(json.loads(line))
        except Exception as e:  # a bug answers this request; the worker lives on
            reply = {"error": f"{type(e).__name__}: {e}"[:300]}
        sys.stdout.write(json.dumps([round(time.perf_counter() - t0, 6), reply]) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
