"""The regex kind's side of the teachers: what a teacher returns, what an LLM teacher is asked, how the offline
grammar and the mock teacher server answer, and the tiny student's tokenizer text.

- ``RegexOutput``: ``description`` + ``regex`` + ``positives`` / ``negatives`` (its JSON schema is the
  ``response_format`` an OpenAI-compatible teacher gets).
- ``messages(spec, params)``: the system and user message for one seeded request spec; the user message names
  topic, difficulty, seed, phrasing style, dialect and the topic's concept families, so an LLM teacher asks for
  the same variety of named things (ZIP codes, MAC addresses, semantic versions...) as the grammar; a focused
  request adds the failing request as the example not to copy (``FocusHint.prompt_lines``).
- ``grammar_answer``: the offline teacher (``grammar.generate_example``) for a request; a focused request
  (``spec.focus``) draws the failed item's concept again, with new values and phrasing.
- ``mock_answer``: the mock server's answer to a user message written by ``messages`` (its ``topic:``,
  ``difficulty:``, ``seed:`` lines), with the kind's content faults ``redos`` (a catastrophic-backtracking
  regex) and ``wrong_positive`` (a listed positive the regex does not match).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import Field, field_validator

from schemas.example import RequestSpec, TeacherOutput


class RegexOutput(TeacherOutput):
    """What a teacher must return for the regex kind (the JSON schema asked of OpenAI teachers too)."""

    regex: str = Field(min_length=1)
    positives: list[str] = Field(default_factory=list)
    negatives: list[str] = Field(default_factory=list)

    @field_validator("positives", "negatives")
    @classmethod
    def _strings(cls, v: list) -> list:
        return [s for s in v if isinstance(s, str)]


# ------------------------------------------------------------------------------------------ LLM teacher prompt
SYSTEM_PROMPT = ("You write training data for a model that turns natural-language requests into regular "
                 "expressions. Answer with a single JSON object and nothing else.")
STYLES = ("a terse command, as typed into a search box", "a polite question",
          "a precise specification with explicit constraints", "casual chat, as a developer would type it",
          "a requirement taken from a ticket or code review",
          "a description by example, mentioning what should and should not match")
STYLE_HINTS = {  # the phrasing styles of phrasing.py, as an LLM teacher is asked for them
    "terse": "a terse label, as typed into a search box (e.g. 'zip code, optional +4')",
    "imperative": "an imperative request (e.g. 'Write a regex that matches ...')",
    "question": "a question (e.g. 'How do I match a MAC address?')",
    "need": "a statement of need (e.g. 'I need a pattern for ...')",
    "explain": "a sentence or two of context (where the data comes from), then the ask",
    "example": "a request built around one or two example strings (e.g. 'like 2024-01-31')",
}


def request_params(dialect: str, n_positives: int, n_negatives: int) -> dict[str, Any]:
    """The kind's part of a teacher request (hashed with it)."""
    return {"dialect": dialect, "n_positives": n_positives, "n_negatives": n_negatives}


def topic_concepts(topic: str) -> str:
    """The grammar teacher's concept families of a topic, as words ("ipv4, mac, url, ...")."""
    from tasks.kinds.regex.grammar import CONCEPT_FAMILIES

    families = CONCEPT_FAMILIES.get(topic)
    return ", ".join(f.replace("_", " ") for f in families) + ", or a combination" if families else "any"


def messages(spec: RequestSpec, params: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages for a seeded spec: the prompt names topic, difficulty, seed and phrasing style.

    The style is the spec's (planned from ``task.styles``, the same names the grammar teacher honours) or, for a
    spec without one, drawn from the seed."""
    dialect, n_positives, n_negatives = params["dialect"], params["n_positives"], params["n_negatives"]
    if spec.style in STYLE_HINTS:
        style = STYLE_HINTS[spec.style]
    else:
        style = STYLES[int(hashlib.sha256(f"style:{spec.seed}".encode()).hexdigest(), 16) % len(STYLES)]
    user = "\n".join([
        "Write ONE training example for a regex-writing assistant.",
        f"topic: {spec.topic}",
        f"difficulty: {spec.difficulty} (1 = simple; higher = more constraints, optional parts or composition)",
        f"seed: {spec.seed}",
        f"style: {style}",
        f"dialect: {dialect}",
        f"concepts to choose from: {topic_concepts(spec.topic)}",
        "",
        "Return a JSON object with exactly these keys:",
        (f'- "description": the request a person would really type, phrased as {style}; name the thing to match '
         "as people name it (with its variant, constraints or an example), not how to build the regex."),
        (f'- "regex": only the regex, in the {dialect} dialect, meant for full-match semantics '
         "(the whole string must match), without ^ or $ anchors, without delimiters or flags."),
        f'- "positives": {n_positives} distinct strings that the regex fully matches.',
        f'- "negatives": {n_negatives} distinct, near-miss strings that the regex does not fully match.',
        "Use the seed to vary your choice of subject within the topic.",
        *(spec.focus.prompt_lines() if spec.focus else []),  # a focused request: the failing one as the example
    ])
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


# ------------------------------------------------------------------------------------------ offline teacher
def grammar_answer(spec: RequestSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The grammar's answer; its concept family and style ride along (the parser ignores extra keys)."""
    from tasks.kinds.regex.grammar import generate_example

    out = generate_example(spec.seed, spec.topic, spec.difficulty, params["n_positives"], params["n_negatives"],
                           style=spec.style, dialect=params.get("dialect", "python"),
                           concept=spec.focus.concept if spec.focus else None)
    return {k: out[k] for k in ("description", "regex", "positives", "negatives", "concept", "style")}


def tokenizer_corpus(n: int) -> list[str]:
    """Descriptions, regexes and two positives of ``n`` seeded grammar examples."""
    from tasks.kinds.regex.grammar import TOPICS, generate_example

    texts = []
    for i in range(n):
        ex = generate_example(10_000_000 + i, TOPICS[i % len(TOPICS)], 1 + i % 3)
        texts += [ex["description"], ex["regex"], *ex["positives"][:2]]
    return texts


# ------------------------------------------------------------------------------------------ mock teacher
_SEED = re.compile(r"^seed:\s*(-?\d+)", re.MULTILINE)
_TOPIC = re.compile(r"^topic:\s*([\w.-]+)", re.MULTILINE)
_DIFFICULTY = re.compile(r"^difficulty:\s*(\d+)", re.MULTILINE)
_N_POS = re.compile(r'"positives":\s*(\d+)')
_N_NEG = re.compile(r'"negatives":\s*(\d+)')
MOCK_FAULTS = ("redos", "wrong_positive")


def mock_answer(user: str, fault: str | None = None) -> dict[str, Any]:
    """The grammar's example for the seed, topic and difficulty in the user message (counts too, when it names
    them), shaped by a content fault."""
    from tasks.kinds.regex.grammar import TOPICS, generate_example

    seed_m, topic_m, diff_m = _SEED.search(user), _TOPIC.search(user), _DIFFICULTY.search(user)
    seed = int(seed_m.group(1)) if seed_m else int(hashlib.sha256(user.encode()).hexdigest()[:8], 16)
    topic = topic_m.group(1) if topic_m and topic_m.group(1) in TOPICS else "text"
    difficulty = int(diff_m.group(1)) if diff_m else 2
    counts = {}
    for key, pattern in (("n_positives", _N_POS), ("n_negatives", _N_NEG)):
        if m := pattern.search(user):
            counts[key] = max(1, min(int(m.group(1)), 50))
    try:
        example = generate_example(seed, topic, difficulty, **counts)
    except Exception:  # noqa: BLE001 - an out-of-range difficulty from a hand-written prompt: fall back, still answer
        example = generate_example(seed, "text", 2, **counts)
    example = {k: example[k] for k in ("description", "regex", "positives", "negatives")}
    if fault == "redos":
        example = {**example, "regex": "(?:[a-z]+)+[0-9]", "positives": ["ab1", "x2", "abc3"],
                   "negatives": ["a" * 22 + "!", "b" * 22 + "?", "c" * 22]}
    elif fault == "wrong_positive":
        example = {**example, "positives": ["@@ this does not match @@", *example["positives"][1:]]}
    return example
