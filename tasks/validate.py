"""Validation: turn raw teacher responses into accepted examples or quarantined rows with reason codes.

Checks, in order; every failure is a reason code (``reason_codes(kind)``), nothing is dropped without one:

1. shape — ``malformed_output`` (not JSON / not the kind's output model; a user file adds ``not_utf8``,
   ``empty_completion``)
2. the kind's checks (``kind.check``, its ``check_reasons``, tasks/kinds/<kind>/): e.g. the answer alone, that
   it parses, its house style, that it is safe to run, that it accepts and rejects its example strings
3. description sanity — ``description_length``
4. exact dedup on the normalised prompt — ``duplicate_prompt`` (first occurrence wins)
5. semantic dedup — ``equivalence_cap``: at most ``max_per_equivalence_class`` examples per class of equivalent
   outputs (the classes are the kind's: ``kind.equivalence_classes``)
6. decontamination (building training data only, never ``loraforge validate --file``) — ``eval_overlap_prompt``
   (a near-duplicate prompt of an item of the domain's evaluation sets, ``configs/golden/<domain>.jsonl`` +
   ``validation.eval_sets``) and the kind's ``overlap_reasons`` (an output equivalent to such an item's)

Which kind: ``get_kind(cfg.task.kind)``; this module names none. Accepted examples keep the kind's own values
(``kind.example_fields``) in the ``kind_json`` column, their slice labels (``LABEL_KEYS``) in ``labels_json`` and,
for a focused run, the failure each answers in ``answers_failure``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.config import DomainConfig, configs_dir
from schemas.example import content_hash
from tasks.kinds import Kind, get_kind

SHAPE_REASONS = ("malformed_output", "not_utf8", "empty_completion")
# an example's slice labels besides its topic (the failure report slices by them): from the request spec, or from
# what the teacher's answer says it did (a grammar's chosen concept and style ride along in its raw answer)
LABEL_KEYS = ("difficulty", "style", "concept")
GENERIC_REASONS = ("description_length", "duplicate_prompt", "equivalence_cap", "eval_overlap_prompt")
STOP_WORDS = frozenset(re.findall(r"\w+", "a an the of and or then followed by with to in is that for me give write "
                                           "which only nothing else"))


def reason_codes(kind: Kind) -> tuple[str, ...]:
    """Every reason code a row of this kind can get, in the order the checks run (verdicts list them so)."""
    return SHAPE_REASONS + kind.check_reasons + GENERIC_REASONS + kind.overlap_reasons


@dataclass
class Verdict:
    """One row's validation outcome."""

    accepted: bool
    reasons: list[str] = field(default_factory=list)
    output: Any = None  # the kind's teacher output model, None when the row did not parse
    prompt: str = ""
    completion: str = ""
    flags: list[str] = field(default_factory=list)  # "normalised", "examples_skipped"
    data: Any = None  # what the kind's checks keep about the row (e.g. canonical form, signature)
    seconds: float = 0.0  # worker time on this row's checks


def parse_output(raw: str | None, kind: Kind):
    """A raw teacher response as the kind's output model (tolerant: fences, preambles); raises ValueError."""
    if raw is None:
        raise ValueError("empty response")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        from tasks.teacher.openai_teacher import parse_teacher_output  # tolerant: fences, preambles

        return parse_teacher_output(raw, kind.output_model)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return kind.output_model.model_validate(data)


def prompt_key(prompt: str) -> str:
    """The normalised prompt that exact dedup and training-overlap exclusion compare."""
    return " ".join(prompt.lower().split())


def content_tokens(text: str, stop_words: frozenset[str] = STOP_WORDS) -> frozenset[str]:
    """Words that carry meaning (near-duplicate prompts share most of them, in any order)."""
    return frozenset(t for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in stop_words)


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


# ------------------------------------------------------------------------------------------ the checks
def validate_rows(raws: list[str | None], cfg: DomainConfig, eval_items: list[dict] | None = None) -> list[Verdict]:
    """Validate a batch of raw teacher outputs for a domain, in order (``eval_items``: decontaminate too)."""
    kind = get_kind(cfg.task.kind)
    outputs = []
    for raw in raws:
        try:
            outputs.append(parse_output(raw, kind))
        except (ValueError, ValidationError):
            outputs.append(None)
    return validate_outputs(outputs, cfg, eval_items=eval_items)


def validate_outputs(outputs: list, cfg: DomainConfig, *, examples_given: list[bool] | None = None,
                     eval_items: list[dict] | None = None) -> list[Verdict]:
    """The checks on parsed outputs; ``examples_given[i] = False`` skips row i's full checks (user files)."""
    kind, v_cfg = get_kind(cfg.task.kind), cfg.validation
    verdicts = [Verdict(False, ["malformed_output"]) if out is None else
                Verdict(True, [], out, kind.render_prompt(cfg.task.prompt_template, out.description),
                        kind.completion_of(out)) for out in outputs]
    state = kind.check(verdicts, cfg, examples_given=examples_given or [True] * len(verdicts),
                       eval_items=eval_items or [])
    for v in verdicts:
        if v.output is not None:
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
    cap_equivalents(verdicts, v_cfg.max_per_equivalence_class, kind, cfg)
    if eval_items:
        decontaminate(verdicts, eval_items, kind, state, cfg)
    order = {r: i for i, r in enumerate(reason_codes(kind))}
    for v in verdicts:
        v.reasons = sorted(dict.fromkeys(v.reasons), key=lambda r: order.get(r, len(order)))
        v.accepted = not v.reasons
    return verdicts


def cap_equivalents(verdicts: list[Verdict], cap: int, kind: Kind, cfg: DomainConfig) -> None:
    """Keep the first ``cap`` examples of each of the kind's equivalence classes; the rest get
    ``equivalence_cap`` (the kind may reject a row while comparing, with its own reason)."""
    live = [v for v in verdicts if not v.reasons]
    kept: Counter = Counter()
    for v, c in zip(live, kind.equivalence_classes(live, cfg), strict=True):
        if c is None:
            continue
        kept[c] += 1
        if kept[c] > cap:
            v.reasons.append("equivalence_cap")


# ------------------------------------------------------------------------------------------ decontamination
def load_eval_items(cfg: DomainConfig) -> list[dict]:
    """Every evaluation set of the domain: the shipped golden set plus ``validation.eval_sets``."""
    kind = get_kind(cfg.task.kind)
    paths = [configs_dir() / "golden" / f"{cfg.name}.jsonl", *map(Path, cfg.validation.eval_sets)]
    items = []
    for path in paths:
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    items.append({"prompt": row.get("prompt") or row.get("description") or "",
                                  "completion": row["completion"], **(kind.item_fields(row) or {})})
    return items


def decontaminate(verdicts: list[Verdict], eval_items: list[dict], kind: Kind, state: Any,
                  cfg: DomainConfig) -> None:
    """Remove from training what an evaluation set would test: near-duplicate prompts, equivalent outputs."""
    live = [v for v in verdicts if not v.reasons]
    if not live:
        return
    # prompts: identical content words, or Jaccard >= 0.8 (prefix filtering on the rarest words)
    stop = STOP_WORDS | kind.stop_words
    golden_tokens = [content_tokens(it["prompt"], stop) for it in eval_items]
    df = Counter(t for toks in golden_tokens for t in toks)
    postings: dict[str, list[int]] = defaultdict(list)
    for gi, toks in enumerate(golden_tokens):
        for t in toks:
            postings[t].append(gi)
    exact = set(golden_tokens)
    for v in live:
        toks = content_tokens(v.output.description, stop)
        if toks in exact:
            v.reasons.append("eval_overlap_prompt")
            continue
        prefix = sorted(toks, key=lambda t: (df[t], t))[: len(toks) - int(0.8 * len(toks)) + 1]
        for gi in {g for t in prefix for g in postings.get(t, ())}:
            g = golden_tokens[gi]
            if len(toks & g) >= 0.8 * len(toks | g):
                v.reasons.append("eval_overlap_prompt")
                break
    kind.decontaminate([v for v in live if not v.reasons], eval_items, state, cfg)


# ------------------------------------------------------------------------------------------ user files
def validate_user_file(path: str | Path, cfg: DomainConfig) -> dict:
    """Verdicts for a user's JSONL (``prompt``/``description``, ``completion`` and the kind's own fields, e.g.
    ``positives``/``negatives``).

    Bad rows (invalid JSON, wrong types, non-UTF-8 bytes) are per-row rejections; rows without what the kind's
    full checks need skip those checks and say so (``notes: ["examples_skipped"]``); unknown fields are ignored;
    no decontamination. Only an unreadable file raises ``OSError``.
    """
    kind = get_kind(cfg.task.kind)
    lines = Path(path).read_bytes().splitlines()
    pre: dict[int, list[str]] = {}  # line number -> reasons found before validation proper
    rows: dict[int, Any] = {}
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
            rows[n], given[n] = kind.output_from_row(row)
        except ValidationError:
            pre[n] = ["malformed_output"]
            continue
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
def request_lineage(request_json: str | None, raw_response: str | None) -> tuple[dict, str | None]:
    """(slice labels, failure answered) of one teacher call: ``LABEL_KEYS`` from the answer where it states them
    (the concept and style it used), else from the request spec; the failure id of a focused request."""
    try:
        spec = (json.loads(request_json) if request_json else {}).get("spec") or {}
    except (json.JSONDecodeError, AttributeError):
        spec = {}
    try:
        answer = json.loads(raw_response) if raw_response else {}
    except json.JSONDecodeError:
        answer = {}
    answer = answer if isinstance(answer, dict) else {}
    focus = spec.get("focus") or {}
    labels = {}
    for key in LABEL_KEYS:
        for value in (answer.get(key), spec.get(key), focus.get(key)):
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                labels[key] = value
                break
    return labels, focus.get("failure_id")


def validation_tables(cfg: DomainConfig, run_id: str, planned: list[dict], calls: dict[str, dict], *,
                      eval_items: list[dict] | None = None, now=None) -> dict:
    """Validate a run's cached responses: Arrow tables for ``run_requests``, ``examples`` and ``quarantine``.

    Every planned request gets exactly one outcome row: accepted, quarantined (reasons) or failed.
    """
    import pyarrow as pa

    from tasks.store import now as store_now

    kind = get_kind(cfg.task.kind)
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
            labels, answers = request_lineage(calls[h].get("request_json"), calls[h]["raw_response"])
            outcomes.append({**row, "outcome": "accepted", "example_id": eid, "reasons": []})
            examples.append({
                "example_id": eid, "domain": cfg.name, "prompt": v.prompt, "completion": v.completion,
                "description": v.output.description, "kind_json": json.dumps(kind.example_fields(v.output)),
                "topic": p["topic"], "run_id": run_id,
                "teacher": cfg.teacher.provider, "request_hash": h, "seed": cfg.seed,
                "validator_version": kind.validator_version, "split": split_of(eid, cfg), "created_at": ts,
                "flags": v.flags, "labels_json": json.dumps(labels), "answers_failure": answers,
            })
        else:
            outcomes.append({**row, "outcome": "quarantined", "reasons": v.reasons})
            quarantine.append({
                "quarantine_id": content_hash("quarantine", cfg.name, h, kind.validator_version, n=20),
                "domain": cfg.name, "run_id": run_id, "request_hash": h, "reasons": v.reasons,
                "raw_output": calls[h]["raw_response"], "description": v.output.description if v.output else None,
                "completion": v.completion or None, "validator_version": kind.validator_version, "created_at": ts,
            })
    schema_examples = pa.schema([("example_id", pa.string()), ("domain", pa.string()), ("prompt", pa.string()),
                                 ("completion", pa.string()), ("description", pa.string()),
                                 ("kind_json", pa.string()),
                                 ("topic", pa.string()), ("run_id", pa.string()), ("teacher", pa.string()),
                                 ("request_hash", pa.string()), ("seed", pa.int64()),
                                 ("validator_version", pa.string()), ("split", pa.string()),
                                 ("created_at", pa.timestamp("us")), ("flags", pa.list_(pa.string())),
                                 ("labels_json", pa.string()), ("answers_failure", pa.string())])
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


def quality_report(run_requests: list[dict], examples: list[dict], kind: Kind) -> dict:
    """The run's data-quality figures: acceptance rate, reasons, per-topic outcomes, length histograms (of the
    prompts, and of the answers as ``<kind>_chars``)."""
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
        f"{kind.name}_chars": _histogram([len(e["completion"]) for e in examples], (0, 10, 20, 40, 60, 80, 120, 160)),
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
    for name in [k for k in q if k.endswith("_chars")]:
        lines += ["", f"| {name} | examples |", "|---|---|"] + [f"| {k} | {v} |" for k, v in q[name].items()]
    return "\n".join(lines) + "\n"
