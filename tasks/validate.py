"""Validation: turn raw teacher responses into accepted examples or quarantined rows with reason codes.

Checks, in order (each failure is a reason code; nothing is dropped without one):
``malformed_output`` (not JSON / wrong shape) → ``not_terse`` (prose, fences or quotes around the regex) /
``edge_whitespace`` (leading or trailing blanks) →
``regex_too_long`` / ``description_length`` → ``compile_error`` (dialect) → ``too_few_positives`` /
``too_few_negatives`` → ``positive_mismatch`` / ``negative_match`` / ``match_timeout`` (time-limited
matcher) → ``duplicate_prompt`` (exact dedup on the normalised prompt, first occurrence wins).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from schemas.config import DomainConfig
from schemas.example import TeacherOutput, content_hash
from tasks.kinds import regex as kind

WRAPPED = re.compile(r"""^(```|`|"|'|/).*\1$|^```""", re.S)


@dataclass
class Verdict:
    """One row's validation outcome."""

    accepted: bool
    reasons: list[str] = field(default_factory=list)
    output: TeacherOutput | None = None
    prompt: str = ""
    completion: str = ""


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


def _static_checks(out: TeacherOutput, cfg: DomainConfig) -> list[str]:
    v = cfg.validation
    reasons = []
    regex = out.regex
    bare = regex.strip()
    wrapped = WRAPPED.match(bare) and not all(p.startswith(bare[0]) for p in out.positives or [""])
    if "\n" in bare or wrapped or bare.lower().startswith(("regex:", "here is", "here's", "the regex", "answer:")):
        reasons.append("not_terse")  # prose, code fences, quotes or slashes around the regex
    elif regex != bare:
        reasons.append("edge_whitespace")  # leading/trailing blanks are invisible and fragile as a target
    if len(regex) > v.max_regex_length:
        reasons.append("regex_too_long")
    if not (3 <= len(out.description) <= v.max_description_chars) or "\n" in out.description.strip():
        reasons.append("description_length")
    if len(out.positives) < v.min_positives:
        reasons.append("too_few_positives")
    if len(out.negatives) < v.min_negatives:
        reasons.append("too_few_negatives")
    return reasons


def validate_rows(raws: list[str | None], cfg: DomainConfig) -> list[Verdict]:
    """Validate a batch of raw teacher outputs (or user rows as JSON) for a domain, in order."""
    verdicts: list[Verdict] = []
    to_match: list[int] = []
    for raw in raws:
        try:
            out = parse_output(raw)
        except (ValueError, ValidationError):
            verdicts.append(Verdict(False, ["malformed_output"]))
            continue
        v = Verdict(True, _static_checks(out, cfg), out,
                    kind.render_prompt(cfg.task.prompt_template, out.description), kind.normalise_completion(out.regex))
        if "not_terse" not in v.reasons:  # compiled (once) by the matcher worker
            to_match.append(len(verdicts))
        verdicts.append(v)

    items = [(verdicts[i].completion, verdicts[i].output.positives, verdicts[i].output.negatives) for i in to_match]
    for i, res in zip(to_match, kind.check_batch(items, cfg.validation.match_timeout_s), strict=True):
        out = verdicts[i].output
        if not res.compiled:
            verdicts[i].reasons.append("compile_error")
        if verdicts[i].reasons:  # strings are only judged for an otherwise sound example
            continue
        if res.timed_out:
            verdicts[i].reasons.append("match_timeout")
            continue
        if res.positives_ok < len(out.positives):
            verdicts[i].reasons.append("positive_mismatch")
        if res.negatives_ok < len(out.negatives):
            verdicts[i].reasons.append("negative_match")

    seen: set[str] = set()
    for v in verdicts:
        if v.reasons:
            v.accepted = False
            continue
        key = prompt_key(v.prompt)
        if key in seen:
            v.accepted, v.reasons = False, ["duplicate_prompt"]
        seen.add(key)
    return verdicts


def validate_user_file(path: str | Path, cfg: DomainConfig) -> dict:
    """Verdicts for a user's JSONL (``prompt``/``description``, ``completion``, ``positives``, ``negatives``).

    Bad rows (invalid JSON, wrong types, non-UTF-8 bytes) are per-row rejections; only an unreadable file
    raises ``OSError``.
    """
    lines = Path(path).read_bytes().splitlines()
    pre: dict[int, list[str]] = {}  # line number -> reasons found before validation proper
    raws: dict[int, str] = {}
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
        raws[n] = json.dumps({"description": row.get("description") or row.get("prompt") or "",
                              "regex": completion, "positives": row.get("positives") or [],
                              "negatives": row.get("negatives") or []})
    verdicts = dict(zip(raws, validate_rows(list(raws.values()), cfg), strict=True))
    rows = [{"line": n, "accepted": n in verdicts and verdicts[n].accepted,
             "reasons": pre[n] if n in pre else verdicts[n].reasons}
            for n in sorted({*pre, *verdicts})]
    return {"accepted": sum(r["accepted"] for r in rows), "rejected": sum(not r["accepted"] for r in rows),
            "rows": rows}
