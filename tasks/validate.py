"""Validation: turn raw teacher responses into accepted examples or quarantined rows with reason codes.

Checks, in order; every failure is a reason code (``REASONS``), nothing is dropped without one:

1. shape — ``malformed_output`` (not JSON / wrong shape; a user file adds ``not_utf8``, ``empty_completion``)
2. terse-output rule — ``not_terse`` (prose, fences, quotes or slashes around the regex) / ``edge_whitespace``;
   with ``validation.terse: strip_and_flag`` these are stripped instead and the example is flagged
   ``normalised``
3. compiles in the dialect — ``compile_error`` (``re`` or ``re2``)
4. house style — ``regex_too_long``, ``style_anchoring``, ``style_lookaround``, ``style_backreference``,
   ``style_atomic``, ``style_capturing_group``, ``style_class_spelling``
5. ReDoS guard — ``redos_static`` / ``redos_stress`` (tasks/kinds/regex.py)
6. strings, full-match semantics — ``positive_mismatch`` / ``negative_match`` / ``match_timeout``
7. minimum counts — ``too_few_positives`` / ``too_few_negatives``
8. description sanity — ``description_length``
9. exact dedup on the normalised prompt — ``duplicate_prompt`` (first occurrence wins)
10. semantic dedup — ``equivalence_cap``: at most ``max_per_equivalence_class`` examples per class of
    equivalent regexes (canonical spelling, then DFA equivalence inside buckets of equal behaviour on a shared
    probe set, so DFAs are only built for colliding pairs)
11. decontamination (building training data only, never ``loraforge validate --file``) —
    ``eval_overlap_prompt`` / ``eval_overlap_regex``: near-duplicate prompt of, or regex equivalent to, an item
    of the domain's evaluation sets (``configs/golden/<domain>.jsonl`` + ``validation.eval_sets``)

Every match of a teacher's or a user's regex (steps 3–6, and the pairwise checks of steps 10–11) runs in the
kind's worker processes, in the dialect's engine, and a worker is killed when an item overruns, so no regex
stalls the batch; a regex that stalls on a bucket mate's strings gets ``match_timeout``. The orchestrating
process never matches an untrusted regex itself.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from schemas.config import DomainConfig, configs_dir
from schemas.example import TeacherOutput, content_hash
from tasks.kinds import regex as kind

REASONS = (
    "malformed_output", "not_utf8", "empty_completion", "not_terse", "edge_whitespace", "compile_error",
    "regex_too_long", "style_anchoring", "style_lookaround", "style_backreference", "style_atomic",
    "style_capturing_group", "style_class_spelling", "redos_static", "redos_stress", "match_timeout",
    "positive_mismatch", "negative_match", "too_few_positives", "too_few_negatives", "description_length",
    "duplicate_prompt", "equivalence_cap", "eval_overlap_prompt", "eval_overlap_regex",
)
_ORDER = {r: i for i, r in enumerate(REASONS)}
WRAPPED = re.compile(r"""^(```|`|"|'|/).*\1$|^```""", re.S)
_PREAMBLE = re.compile(r"^(?:regex|pattern|answer|here is[^:]*|here's[^:]*|the regex[^:]*)\s*:\s*", re.I)
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\n(.*?)\n?```$", re.S)
_STOP = frozenset(re.findall(r"\w+", "a an the of and or then followed by with to in is that string strings match "
                                      "matches matching regex pattern for me give write which only nothing else"))


@dataclass
class Verdict:
    """One row's validation outcome."""

    accepted: bool
    reasons: list[str] = field(default_factory=list)
    output: TeacherOutput | None = None
    prompt: str = ""
    completion: str = ""
    flags: list[str] = field(default_factory=list)  # "normalised", "examples_skipped"
    canonical: str | None = None
    signature: str | None = None
    width: tuple[int, int] | None = None
    seconds: float = 0.0  # worker time on this row's regex checks


def parse_output(raw: str | None) -> TeacherOutput:
    if raw is None:
        raise ValueError("empty response")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        from tasks.teacher.openai_teacher import parse_teacher_output  # tolerant: fences, preambles

        return parse_teacher_output(raw)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return TeacherOutput.model_validate(data)


def prompt_key(prompt: str) -> str:
    """The normalised prompt that exact dedup and training-overlap exclusion compare."""
    return " ".join(prompt.lower().split())


def content_tokens(text: str) -> frozenset[str]:
    """Words that carry meaning (near-duplicate prompts share most of them, in any order)."""
    return frozenset(t for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in _STOP)


def split_of(example_id: str, cfg: DomainConfig) -> str:
    """Deterministic split by content hash: the same example always lands in the same split."""
    u = int(hashlib.sha256(example_id.encode()).hexdigest()[:8], 16) / 16**8
    if u < cfg.dataset.test_fraction:
        return "test"
    if u < cfg.dataset.test_fraction + cfg.dataset.val_fraction:
        return "val"
    return "train"


def example_id_of(domain: str, prompt: str, completion: str) -> str:
    return content_hash("example", domain, prompt, completion, n=20)


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
def validate_rows(raws: list[str | None], cfg: DomainConfig, eval_items: list[dict] | None = None) -> list[Verdict]:
    """Validate a batch of raw teacher outputs for a domain, in order (``eval_items``: decontaminate too)."""
    outputs = []
    for raw in raws:
        try:
            outputs.append(parse_output(raw))
        except (ValueError, ValidationError):
            outputs.append(None)
    return validate_outputs(outputs, cfg, eval_items=eval_items)


def validate_outputs(outputs: list[TeacherOutput | None], cfg: DomainConfig, *,
                     examples_given: list[bool] | None = None, eval_items: list[dict] | None = None) -> list[Verdict]:
    """The checks on parsed outputs; ``examples_given[i] = False`` skips row i's string checks (user files)."""
    v_cfg, dialect = cfg.validation, cfg.task.dialect
    verdicts: list[Verdict] = []
    for out in outputs:
        if out is None:
            verdicts.append(Verdict(False, ["malformed_output"]))
            continue
        regex, reasons, flags = terse_check(out.regex, out.positives, v_cfg.terse)
        verdicts.append(Verdict(True, reasons, out, kind.render_prompt(cfg.task.prompt_template, out.description),
                                kind.normalise_completion(regex), flags))
    given = examples_given or [True] * len(verdicts)

    to_check = [i for i, v in enumerate(verdicts) if v.output is not None and "not_terse" not in v.reasons]
    probes = probe_set([verdicts[i].output for i in to_check], cfg.seed)
    items = [(verdicts[i].completion, verdicts[i].output.positives, verdicts[i].output.negatives) for i in to_check]
    items += [(it["completion"], it["positives"], it["negatives"]) for it in eval_items or []]  # same pass, same probes
    checks = kind.check_examples(items, dialect, v_cfg.style(), v_cfg.match_timeout_s, v_cfg.redos_timeout_s, probes)
    checks, eval_checks = checks[: len(to_check)], checks[len(to_check):]
    for i, res in zip(to_check, checks, strict=True):
        v, out = verdicts[i], verdicts[i].output
        v.reasons += res.reasons
        v.canonical, v.signature, v.width, v.seconds = res.canonical, res.signature, res.width, res.seconds
        if len(v.completion) > v_cfg.max_regex_length:
            v.reasons.append("regex_too_long")
        if not res.reasons and given[i]:
            if res.positives_ok < len(out.positives):
                v.reasons.append("positive_mismatch")
            if res.negatives_ok < len(out.negatives):
                v.reasons.append("negative_match")
    for v, g in zip(verdicts, given, strict=True):
        if v.output is None:
            continue
        if not g:
            v.flags.append("examples_skipped")
        else:
            if len(v.output.positives) < v_cfg.min_positives:
                v.reasons.append("too_few_positives")
            if len(v.output.negatives) < v_cfg.min_negatives:
                v.reasons.append("too_few_negatives")
        desc = v.output.description.strip()
        if not (v_cfg.min_description_chars <= len(desc) <= v_cfg.max_description_chars) or "\n" in desc:
            v.reasons.append("description_length")

    seen: set[str] = set()
    for v in verdicts:
        if not v.reasons:
            key = prompt_key(v.prompt)
            if key in seen:
                v.reasons.append("duplicate_prompt")
            seen.add(key)
    cap_equivalents(verdicts, v_cfg.max_per_equivalence_class, dialect, probes, v_cfg.match_timeout_s)
    if eval_items:
        decontaminate(verdicts, eval_items, eval_checks, dialect, v_cfg.match_timeout_s)
    for v in verdicts:
        v.reasons = sorted(dict.fromkeys(v.reasons), key=lambda r: _ORDER.get(r, len(REASONS)))
        v.accepted = not v.reasons
    return verdicts


def probe_set(outputs: list[TeacherOutput], seed: int, k: int = 64) -> list[str]:
    """A deterministic sample of the batch's own example strings: the shared probes of behaviour signatures."""
    pool = sorted({s for o in outputs for s in (*o.positives[:2], *o.negatives[:1]) if len(s) <= 80})
    return random.Random(seed).sample(pool, min(k, len(pool)))


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
    results = dict(zip(checks, kind.check_batch([(nodes[i].regex, nodes[j].positives, nodes[j].negatives)
                                                 for i, j in checks], timeout_s, dialect), strict=True))
    passes = {}
    for (i, j), res in results.items():
        if res.timed_out and stalled is not None:
            stalled.add(i)
        passes[i, j] = res.all_ok(len(nodes[j].positives), len(nodes[j].negatives))
    return [(a, b) for a, b in pairs if passes[a, b] and passes[b, a]]


def equivalence_classes(nodes: list[_Node], dialect: str, *, undecided_joins: bool = False,
                        anchors: int = 0, timeout_s: float = 2.0, stalled: set[int] | None = None) -> list[int]:
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
    results = kind.equivalence_batch([(nodes[i].regex, nodes[j].regex) for i, j in pairs], dialect, timeout_s=0.25)
    for (i, j), (verdict, _) in zip(pairs, results, strict=True):
        if verdict == "equivalent" or (undecided_joins and verdict == "undecided"):
            parent[find(j)] = find(i)
    return [find(i) for i in range(len(nodes))]


def _node(v: Verdict) -> _Node:
    return _Node(v.completion, v.output.positives, v.output.negatives, v.canonical or f"raw:{v.completion}",
                 (v.signature, tuple(v.width) if v.width else None))


def cap_equivalents(verdicts: list[Verdict], cap: int, dialect: str, probes: list[str],
                    timeout_s: float = 2.0) -> None:
    """Keep the first ``cap`` examples of each equivalence class; the rest get ``equivalence_cap`` (and a regex
    that stalls on a bucket mate's strings gets ``match_timeout``)."""
    live = [v for v in verdicts if not v.reasons]
    stalled: set[int] = set()
    classes = equivalence_classes([_node(v) for v in live], dialect, timeout_s=timeout_s, stalled=stalled)
    kept: Counter = Counter()
    for k, (v, c) in enumerate(zip(live, classes, strict=True)):
        if k in stalled:
            v.reasons.append("match_timeout")
            continue
        kept[c] += 1
        if kept[c] > cap:
            v.reasons.append("equivalence_cap")


# ------------------------------------------------------------------------------------------ decontamination
def load_eval_items(cfg: DomainConfig) -> list[dict]:
    """Every evaluation set of the domain: the shipped golden set plus ``validation.eval_sets``."""
    paths = [configs_dir() / "golden" / f"{cfg.name}.jsonl", *map(Path, cfg.validation.eval_sets)]
    items = []
    for path in paths:
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    items.append({"prompt": row.get("prompt") or row.get("description") or "",
                                  "completion": row["completion"], "positives": row.get("positives") or [],
                                  "negatives": row.get("negatives") or []})
    return items


def decontaminate(verdicts: list[Verdict], eval_items: list[dict], checks: list[kind.FullCheck], dialect: str,
                  timeout_s: float = 2.0) -> None:
    """Remove from training what an evaluation set would test: near-duplicate prompts, equivalent regexes."""
    live = [v for v in verdicts if not v.reasons]
    if not live:
        return
    # prompts: identical content words, or Jaccard >= 0.8 (prefix filtering on the rarest words)
    golden_tokens = [content_tokens(it["prompt"]) for it in eval_items]
    df = Counter(t for toks in golden_tokens for t in toks)
    postings: dict[str, list[int]] = defaultdict(list)
    for gi, toks in enumerate(golden_tokens):
        for t in toks:
            postings[t].append(gi)
    exact = set(golden_tokens)
    for v in live:
        toks = content_tokens(v.output.description)
        if toks in exact:
            v.reasons.append("eval_overlap_prompt")
            continue
        prefix = sorted(toks, key=lambda t: (df[t], t))[: len(toks) - int(0.8 * len(toks)) + 1]
        for gi in {g for t in prefix for g in postings.get(t, ())}:
            g = golden_tokens[gi]
            if len(toks & g) >= 0.8 * len(toks | g):
                v.reasons.append("eval_overlap_prompt")
                break
    # regexes: the eval items went through the same worker pass (canonical, signature): same buckets, same classes
    live = [v for v in live if not v.reasons]
    golden = [_Node(it["completion"], it["positives"], it["negatives"], c.canonical or f"raw:{it['completion']}",
                    (c.signature, tuple(c.width) if c.width else None))
              for it, c in zip(eval_items, checks, strict=True)]
    stalled: set[int] = set()
    classes = equivalence_classes(golden + [_node(v) for v in live], dialect, undecided_joins=True,
                                  anchors=len(golden), timeout_s=timeout_s, stalled=stalled)
    tainted = set(classes[: len(golden)])
    for k, (v, c) in enumerate(zip(live, classes[len(golden):], strict=True), start=len(golden)):
        if k in stalled:
            v.reasons.append("match_timeout")
        elif c in tainted:
            v.reasons.append("eval_overlap_regex")


# ------------------------------------------------------------------------------------------ user files
def validate_user_file(path: str | Path, cfg: DomainConfig) -> dict:
    """Verdicts for a user's JSONL (``prompt``/``description``, ``completion``, ``positives``, ``negatives``).

    Bad rows (invalid JSON, wrong types, non-UTF-8 bytes) are per-row rejections; rows without
    ``positives``/``negatives`` skip the string checks and say so (``notes: ["examples_skipped"]``); unknown
    fields are ignored; no decontamination. Only an unreadable file raises ``OSError``.
    """
    lines = Path(path).read_bytes().splitlines()
    pre: dict[int, list[str]] = {}  # line number -> reasons found before validation proper
    rows: dict[int, TeacherOutput] = {}
    given: dict[int, bool] = {}
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            pre[n] = ["not_utf8"]
            continue
        except json.JSONDecodeError:
            pre[n] = ["malformed_output"]
            continue
        completion = row.get("completion") if isinstance(row, dict) else None
        if not isinstance(completion, str) or not completion.strip():
            pre[n] = ["empty_completion"] if isinstance(row, dict) else ["malformed_output"]
            continue
        try:
            rows[n] = TeacherOutput(description=row.get("description") or row.get("prompt") or "-",
                                    regex=completion, positives=row.get("positives") or [],
                                    negatives=row.get("negatives") or [])
        except ValidationError:
            pre[n] = ["malformed_output"]
            continue
        given[n] = row.get("positives") is not None or row.get("negatives") is not None
    verdicts = dict(zip(rows, validate_outputs(list(rows.values()), cfg, examples_given=list(given.values())),
                        strict=True))
    out = []
    for n in sorted({*pre, *verdicts}):
        v = verdicts.get(n)
        r = {"line": n, "accepted": v is not None and v.accepted, "reasons": pre[n] if v is None else v.reasons}
        if v is not None and v.flags:
            r["notes"] = v.flags
        out.append(r)
    return {"accepted": sum(r["accepted"] for r in out), "rejected": sum(not r["accepted"] for r in out),
            "rows": out}


# ------------------------------------------------------------------------------------------ run tables
def validation_tables(cfg: DomainConfig, run_id: str, planned: list[dict], calls: dict[str, dict], *,
                      eval_items: list[dict] | None = None, now=None) -> dict:
    """Validate a run's cached responses: Arrow tables for ``run_requests``, ``examples`` and ``quarantine``.

    Every planned request gets exactly one outcome row: accepted, quarantined (reasons) or failed.
    """
    import pyarrow as pa

    from tasks.store import now as store_now

    ok = [p for p in planned if calls.get(p["request_hash"], {}).get("status") == "ok"]
    verdicts = dict(zip([p["request_hash"] for p in ok],
                        validate_rows([calls[p["request_hash"]]["raw_response"] for p in ok], cfg,
                                      eval_items=eval_items), strict=True))
    outcomes, examples, quarantine = [], [], []
    ts = now or store_now()
    for p in planned:
        h = p["request_hash"]
        row = {"run_id": run_id, "request_hash": h, "idx": p["idx"], "topic": p["topic"], "example_id": None}
        v = verdicts.get(h)
        if v is None:
            outcomes.append({**row, "outcome": "failed", "reasons": ["teacher_failed"]})
        elif v.accepted:
            eid = example_id_of(cfg.name, v.prompt, v.completion)
            outcomes.append({**row, "outcome": "accepted", "example_id": eid, "reasons": []})
            examples.append({
                "example_id": eid, "domain": cfg.name, "prompt": v.prompt, "completion": v.completion,
                "description": v.output.description, "positives": v.output.positives,
                "negatives": v.output.negatives, "topic": p["topic"], "run_id": run_id,
                "teacher": cfg.teacher.provider, "request_hash": h, "seed": cfg.seed,
                "validator_version": kind.VALIDATOR_VERSION, "split": split_of(eid, cfg), "created_at": ts,
                "flags": v.flags,
            })
        else:
            outcomes.append({**row, "outcome": "quarantined", "reasons": v.reasons})
            quarantine.append({
                "quarantine_id": content_hash("quarantine", cfg.name, h, kind.VALIDATOR_VERSION, n=20),
                "domain": cfg.name, "run_id": run_id, "request_hash": h, "reasons": v.reasons,
                "raw_output": calls[h]["raw_response"], "description": v.output.description if v.output else None,
                "completion": v.completion or None, "validator_version": kind.VALIDATOR_VERSION, "created_at": ts,
            })
    schema_examples = pa.schema([("example_id", pa.string()), ("domain", pa.string()), ("prompt", pa.string()),
                                 ("completion", pa.string()), ("description", pa.string()),
                                 ("positives", pa.list_(pa.string())), ("negatives", pa.list_(pa.string())),
                                 ("topic", pa.string()), ("run_id", pa.string()), ("teacher", pa.string()),
                                 ("request_hash", pa.string()), ("seed", pa.int64()),
                                 ("validator_version", pa.string()), ("split", pa.string()),
                                 ("created_at", pa.timestamp("us")), ("flags", pa.list_(pa.string()))])
    return {"run_requests": pa.Table.from_pylist(outcomes),
            "examples": pa.Table.from_pylist(examples, schema=schema_examples),
            "quarantine": pa.Table.from_pylist(quarantine),
            "max_example_s": max((v.seconds for v in verdicts.values()), default=0.0),
            "example_seconds": {h: v.seconds for h, v in verdicts.items()}}


def _histogram(values: list[int], edges: tuple[int, ...]) -> dict[str, int]:
    bins = {f"{lo}-{hi - 1}": 0 for lo, hi in zip(edges, edges[1:], strict=False)} | {f">={edges[-1]}": 0}
    for x in values:
        for lo, hi in zip(edges, edges[1:], strict=False):
            if lo <= x < hi:
                bins[f"{lo}-{hi - 1}"] += 1
                break
        else:
            bins[f">={edges[-1]}"] += 1
    return bins


def quality_report(run_requests: list[dict], examples: list[dict]) -> dict:
    """The run's data-quality figures: acceptance rate, reasons, per-topic outcomes, length histograms."""
    outcome = Counter(r["outcome"] for r in run_requests)
    reasons = Counter(code for r in run_requests if r["outcome"] != "accepted" for code in r["reasons"] or [])
    topics: dict[str, Counter] = defaultdict(Counter)
    for r in run_requests:
        topics[r["topic"] or "unknown"][r["outcome"]] += 1
    n = sum(outcome.values())
    return {
        "requested": n, "accepted": outcome["accepted"], "quarantined": outcome["quarantined"],
        "failed": outcome["failed"], "acceptance_rate": round(outcome["accepted"] / n, 4) if n else 0.0,
        "normalised": sum("normalised" in (e.get("flags") or []) for e in examples),
        "reasons": dict(reasons.most_common()),
        "topics": {t: {"requested": sum(c.values()), "accepted": c["accepted"], "quarantined": c["quarantined"],
                       "failed": c["failed"]} for t, c in sorted(topics.items())},
        "prompt_chars": _histogram([len(e["prompt"]) for e in examples], (0, 40, 80, 120, 160, 200, 300)),
        "regex_chars": _histogram([len(e["completion"]) for e in examples], (0, 10, 20, 40, 60, 80, 120, 160)),
    }


def quality_markdown(q: dict, run_id: str) -> str:
    lines = [f"# Data quality, run {run_id}", "",
             f"**{q['accepted']} of {q['requested']} accepted** ({q['acceptance_rate']:.1%}); "
             f"quarantined {q['quarantined']}, failed {q['failed']}, normalised {q['normalised']}.", "",
             "| reason | rows |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in q["reasons"].items()] or ["| (none) | 0 |"]
    lines += ["", "| topic | requested | accepted | quarantined | failed |", "|---|---|---|---|---|"]
    lines += [f"| {t} | {c['requested']} | {c['accepted']} | {c['quarantined']} | {c['failed']} |"
              for t, c in q["topics"].items()]
    for name in ("prompt_chars", "regex_chars"):
        lines += ["", f"| {name} | examples |", "|---|---|"] + [f"| {k} | {v} |" for k, v in q[name].items()]
    return "\n".join(lines) + "\n"
