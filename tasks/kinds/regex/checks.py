"""The regex kind's validation checks (tasks/validate.py runs them between its generic steps).

In order, each failure a reason code (``CHECK_REASONS``):

1. terse-output rule — ``not_terse`` (prose, fences, quotes or slashes around the regex) / ``edge_whitespace``;
   with ``validation.terse: strip_and_flag`` these are stripped instead and the example is flagged ``normalised``
2. compiles in the dialect — ``compile_error`` (``re`` or ``re2``)
3. house style — ``regex_too_long``, ``style_anchoring``, ``style_lookaround``, ``style_backreference``,
   ``style_atomic``, ``style_capturing_group``, ``style_class_spelling``
4. ReDoS guard — ``redos_static`` / ``redos_stress`` (matcher.py)
5. strings, full-match semantics — ``positive_mismatch`` / ``negative_match`` / ``match_timeout``
6. minimum counts — ``too_few_positives`` / ``too_few_negatives``

Then, called by the generic dedup and decontamination: ``equivalence_classes`` (canonical spelling, then DFA
equivalence inside buckets of equal behaviour on a shared probe set, so DFAs are only built for colliding
pairs) and ``decontaminate`` (``eval_overlap_regex``: a regex equivalent to an evaluation item's).

Every match of a teacher's or a user's regex (steps 2–5, and the pairwise checks of dedup and decontamination)
runs in the matcher's worker processes, in the dialect's engine, and a worker is killed when an item overruns,
so no regex stalls the batch; a regex that stalls on a bucket mate's strings gets ``match_timeout``. The
orchestrating process never matches an untrusted regex itself.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.kinds.regex import matcher

if TYPE_CHECKING:
    from schemas.config import DomainConfig
    from tasks.validate import Verdict

CHECK_REASONS = (
    "not_terse", "edge_whitespace", "compile_error", "regex_too_long", "style_anchoring", "style_lookaround",
    "style_backreference", "style_atomic", "style_capturing_group", "style_class_spelling", "redos_static",
    "redos_stress", "match_timeout", "positive_mismatch", "negative_match", "too_few_positives",
    "too_few_negatives",
)
OVERLAP_REASONS = ("eval_overlap_regex",)
WRAPPED = re.compile(r"""^(```|`|"|'|/).*\1$|^```""", re.S)
_PREAMBLE = re.compile(r"^(?:regex|pattern|answer|here is[^:]*|here's[^:]*|the regex[^:]*)\s*:\s*", re.I)
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\n(.*?)\n?```$", re.S)


# ------------------------------------------------------------------------------------------ terse rule
def terse_check(regex: str, positives: list[str], mode: str) -> tuple[str, list[str], list[str]]:
    """(regex to use, reasons, flags). ``strip_and_flag`` repairs what ``reject`` refuses, and says so."""
    bare = regex.strip()
    quoted_on_purpose = bool(positives) and all(p.startswith(bare[:1]) for p in positives)
    wrapped = bool(WRAPPED.match(bare)) and not quoted_on_purpose
    prose = "\n" in bare or bool(_PREAMBLE.match(bare))
    if not (wrapped or prose):
        if regex == bare:
            return regex, [], []
        return (bare, [], ["normalised"]) if mode == "strip_and_flag" else (regex, ["edge_whitespace"], [])
    if mode != "strip_and_flag":
        return regex, ["not_terse"], []
    s = bare
    if m := _FENCE.match(s):
        s = m.group(1).strip()
    s = _PREAMBLE.sub("", s).strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "`\"'/" and not quoted_on_purpose:
        s = s[1:-1]
    if not s or "\n" in s:
        return regex, ["not_terse"], []
    return s, [], ["normalised"]


# ------------------------------------------------------------------------------------------ the checks
def probe_set(outputs: list, seed: int, k: int = 64) -> list[str]:
    """A deterministic sample of the batch's own example strings: the shared probes of behaviour signatures."""
    pool = sorted({s for o in outputs for s in (*o.positives[:2], *o.negatives[:1]) if len(s) <= 80})
    return random.Random(seed).sample(pool, min(k, len(pool)))


def check(verdicts: list[Verdict], cfg: DomainConfig, *, examples_given: list[bool],
          eval_items: list[dict]) -> list[matcher.FullCheck]:
    """Steps 1–6 on every verdict with an output, in place; returns the eval items' checks (same worker pass,
    same probes) for ``decontaminate``."""
    v_cfg, dialect = cfg.validation, cfg.task.dialect
    for v in verdicts:
        if v.output is not None:
            regex, reasons, flags = terse_check(v.output.regex, v.output.positives, v_cfg.terse)
            v.reasons += reasons
            v.flags += flags
            v.completion = regex.strip()

    to_check = [i for i, v in enumerate(verdicts) if v.output is not None and "not_terse" not in v.reasons]
    probes = probe_set([verdicts[i].output for i in to_check], cfg.seed)
    items = [(verdicts[i].completion, verdicts[i].output.positives, verdicts[i].output.negatives) for i in to_check]
    items += [(it["completion"], it["positives"], it["negatives"]) for it in eval_items]  # same pass, same probes
    checks = matcher.check_examples(items, dialect, v_cfg.style(), v_cfg.match_timeout_s, v_cfg.redos_timeout_s,
                                    probes)
    checks, eval_checks = checks[: len(to_check)], checks[len(to_check):]
    for i, res in zip(to_check, checks, strict=True):
        v, out = verdicts[i], verdicts[i].output
        v.reasons += res.reasons
        v.data, v.seconds = res, res.seconds
        if len(v.completion) > v_cfg.max_regex_length:
            v.reasons.append("regex_too_long")
        if not res.reasons and examples_given[i]:
            if res.positives_ok < len(out.positives):
                v.reasons.append("positive_mismatch")
            if res.negatives_ok < len(out.negatives):
                v.reasons.append("negative_match")
    for v, given in zip(verdicts, examples_given, strict=True):
        if v.output is None:
            continue
        if not given:
            v.flags.append("examples_skipped")
        else:
            if len(v.output.positives) < v_cfg.min_positives:
                v.reasons.append("too_few_positives")
            if len(v.output.negatives) < v_cfg.min_negatives:
                v.reasons.append("too_few_negatives")
    return eval_checks


# ------------------------------------------------------------------------------------------ equivalence
@dataclass
class _Node:
    regex: str
    positives: list[str]
    negatives: list[str]
    canonical: str
    bucket: tuple


def agreeing_pairs(nodes: list[_Node], pairs: list[tuple[int, int]], dialect: str, timeout_s: float,
                   stalled: set[int] | None = None) -> list[tuple[int, int]]:
    """The pairs whose regexes pass each other's examples (a cheap necessary condition for equivalence).

    The matching runs in the kind's killable workers, in the dialect's engine, ``timeout_s`` per regex and
    string list: a regex that stalls on its bucket mate's strings is added to ``stalled`` and agrees with
    nothing."""
    checks = sorted({(i, j) for a, b in pairs for i, j in ((a, b), (b, a))})
    results = dict(zip(checks, matcher.check_batch([(nodes[i].regex, nodes[j].positives, nodes[j].negatives)
                                                    for i, j in checks], timeout_s, dialect), strict=True))
    passes = {}
    for (i, j), res in results.items():
        if res.timed_out and stalled is not None:
            stalled.add(i)
        passes[i, j] = res.all_ok(len(nodes[j].positives), len(nodes[j].negatives))
    return [(a, b) for a, b in pairs if passes[a, b] and passes[b, a]]


def classes_of(nodes: list[_Node], dialect: str, *, undecided_joins: bool = False, anchors: int = 0,
               timeout_s: float = 2.0, stalled: set[int] | None = None) -> list[int]:
    """Class id per node: same canonical spelling, or DFA-equivalent within a bucket of equal behaviour.

    With ``anchors = k`` only pairs involving one of the first k nodes are compared (decontamination asks
    "equivalent to an evaluation item?", not "equivalent to each other?"). Nodes whose regex stalled on a
    bucket mate's strings (``timeout_s``) are added to ``stalled``."""
    parent = list(range(len(nodes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_canon: dict[str, int] = {}
    reps_by_bucket: dict[tuple, list[int]] = defaultdict(list)
    for i, n in enumerate(nodes):
        if n.canonical in by_canon:
            parent[i] = by_canon[n.canonical]
            continue
        by_canon[n.canonical] = i
        reps_by_bucket[n.bucket].append(i)
    candidates = [(i, j) for reps in reps_by_bucket.values() if len(reps) > 1
                  for k, i in enumerate(reps) for j in reps[k + 1:] if not anchors or i < anchors]
    pairs = agreeing_pairs(nodes, candidates, dialect, timeout_s, stalled)
    results = matcher.equivalence_batch([(nodes[i].regex, nodes[j].regex) for i, j in pairs], dialect, timeout_s=0.25)
    for (i, j), (verdict, _) in zip(pairs, results, strict=True):
        if verdict == "equivalent" or (undecided_joins and verdict == "undecided"):
            parent[find(j)] = find(i)
    return [find(i) for i in range(len(nodes))]


def _node(regex: str, positives: list[str], negatives: list[str], res: matcher.FullCheck | None) -> _Node:
    canonical, signature, width = (res.canonical, res.signature, res.width) if res is not None else (None, None, None)
    return _Node(regex, positives, negatives, canonical or f"raw:{regex}", (signature, tuple(width) if width else None))


def _verdict_node(v: Verdict) -> _Node:
    return _node(v.completion, v.output.positives, v.output.negatives, v.data)


def equivalence_classes(verdicts: list[Verdict], cfg: DomainConfig) -> list[int | None]:
    """Class per verdict for the dedup cap; a regex that stalls on a bucket mate's strings gets ``match_timeout``
    and no class."""
    stalled: set[int] = set()
    classes = classes_of([_verdict_node(v) for v in verdicts], cfg.task.dialect,
                         timeout_s=cfg.validation.match_timeout_s, stalled=stalled)
    out: list[int | None] = []
    for k, (v, c) in enumerate(zip(verdicts, classes, strict=True)):
        if k in stalled:
            v.reasons.append("match_timeout")
            out.append(None)
        else:
            out.append(c)
    return out


def decontaminate(verdicts: list[Verdict], eval_items: list[dict], eval_checks: list[matcher.FullCheck],
                  cfg: DomainConfig) -> None:
    """``eval_overlap_regex`` for a regex equivalent to an evaluation item's (undecided pairs count as equivalent:
    when in doubt, keep it out of training). The eval items went through the same worker pass (canonical,
    signature): same buckets, same classes."""
    if not verdicts:
        return
    golden = [_node(it["completion"], it["positives"], it["negatives"], c)
              for it, c in zip(eval_items, eval_checks, strict=True)]
    stalled: set[int] = set()
    classes = classes_of(golden + [_verdict_node(v) for v in verdicts], cfg.task.dialect, undecided_joins=True,
                         anchors=len(golden), timeout_s=cfg.validation.match_timeout_s, stalled=stalled)
    tainted = set(classes[: len(golden)])
    for k, (v, c) in enumerate(zip(verdicts, classes[len(golden):], strict=True), start=len(golden)):
        if k in stalled:
            v.reasons.append("match_timeout")
        elif c in tainted:
            v.reasons.append("eval_overlap_regex")
