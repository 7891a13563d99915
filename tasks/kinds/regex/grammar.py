"""Offline, deterministic teacher: regex requests phrased the way people ask, with ground truth by construction.

A request is (topic, difficulty, style, seed). Most requests name a **concept** of the topic (a US ZIP code with
an optional +4, a lowercase MAC address with dashes, an ISO 8601 datetime with a Z, a snake_case name starting
with ``test_``...: ``concepts*.py``), drawn with its variant, constraints and negations; a minority are
**compositions** (a concept, a separator and another concept; a concept behind a label or inside brackets)
and a few use the old **fragment** grammar (``fragments.py``: "two digits, then a dash, ..."), so structure still
generalises. ``phrasing.py`` renders the request in the asked style (terse label, imperative, question, need
statement, explanation with context, example-driven) plus a little noise. The difficulty raises the odds of
optional details, constraints and composition.

Positives come from the concept's sampler (fewer than asked, but at least two, only when the language is that
small: "yes or no"); negatives are near misses (the concept's own near-miss generators, then one-character or
one-chunk edits of positives); all are checked with ``re.fullmatch``. The reference regex is in the house style
every shipped domain accepts (``\\d``/``\\w`` shorthands, ``[a-z]``-style classes, ``(?:...)`` groups, no
anchors, lookaround or backreferences, at most ``MAX_REGEX_LEN`` chars) and compiles in Python ``re`` and in
RE2. A draw that cannot give enough distinct examples within bounded tries is replaced by the next one derived
from the inputs. Only private ``random.Random`` instances are used.
"""

from __future__ import annotations

import random
import re
import string

from tasks.kinds.regex.analysis import redos_static
from tasks.kinds.regex.concepts import QQ, Concept, esc
from tasks.kinds.regex.concepts_text import FAMILIES
from tasks.kinds.regex.fragments import fragment
from tasks.kinds.regex.phrasing import DEFAULT_STYLE_WEIGHTS, STYLES, describe, finish, noun_phrase

TOPICS: tuple[str, ...] = ("identifiers", "log_fields", "network", "dates", "text")
MAX_REGEX_LEN, MAX_DESC_LEN, MAX_STRING_LEN, MIN_DESC_LEN = 150, 230, 80, 12
_MAX_SPECS = 60  # draws before giving up: never loop forever
_COMPOSE = {1: 0.06, 2: 0.14, 3: 0.26}  # share of compositions per difficulty
_FRAGMENTS = 0.06  # share of old-style fragment requests
R = random.Random

# concept families per topic, plus the two structural ones
CONCEPT_FAMILIES: dict[str, tuple[str, ...]] = {t: tuple(FAMILIES[t]) for t in TOPICS}
STRUCTURAL_FAMILIES = ("composite", "fragments")
_SEPS = ((" ", ("a space", "a single space")), (":", ("a colon",)), ("-", ("a dash", "a hyphen")),
         (" - ", ('" - "', "a spaced dash")), (",", ("a comma",)), ("|", ("a pipe", "a | character")),
         ("=", ("an equals sign",)), ("/", ("a slash",)), ("_", ("an underscore",)), ("; ", ('"; "',)))
_LABELS = ("ip=", "host: ", "user=", "id: ", "from ", "date=", "at ", "ts=", "version ", "ref:", "code=", "src=",
           "dst=", "client ", "email: ", "Order #", "build ", "tag=", "ID ", "on ")
_WRAPS = (("[", "]", "in square brackets"), ("(", ")", "in parentheses"), ('"', '"', "in double quotes"),
          ("<", ">", "in angle brackets"), ("'", "'", "in single quotes"), ("{", "}", "in curly braces"))
_NOISE_CHARS = string.ascii_letters + string.digits + "-_.:/#@=!?, "


def _grouped(rx: str) -> str:
    """``rx`` safe to concatenate: wrapped when it has a top-level alternation."""
    depth, i = 0, 0
    while i < len(rx):
        c = rx[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = rx.index("]", i + 2 if rx[i + 1] in "]^" else i + 1)
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return f"(?:{rx})"
        i += 1
    return rx


def _concept(rng: R, topic: str, level: int) -> Concept:
    return rng.choice(tuple(FAMILIES[topic].values()))(rng, level)


def _composite(rng: R, topic: str, level: int) -> Concept:
    """A concept, a separator and another concept; or a concept behind a label; or one inside brackets."""
    a = _concept(rng, topic, max(1, level - 1))
    kind = rng.random()
    if kind < 0.5:
        b = _concept(rng, topic if rng.random() < 0.7 else rng.choice(TOPICS), max(1, level - 1))
        sep, names = rng.choice(_SEPS)
        np_a, np_b, name = noun_phrase(rng, a)[0], noun_phrase(rng, b)[0], rng.choice(names)
        phrase = rng.choice((f"{np_a}, then {name}, then {np_b}", f"{np_a} followed by {name} and {np_b}",
                             f"{np_a} and {np_b} separated by {name}", f"{np_a}, {name}, {np_b}"))
        return Concept("composite", (phrase,), _grouped(a.regex) + esc(sep) + _grouped(b.regex),
                       lambda r: a.sample(r) + sep + b.sample(r), article=False)
    np_a = noun_phrase(rng, a)[0]
    if kind < 0.75:
        label = rng.choice(_LABELS)
        phrase = rng.choice((f"{QQ(rng, label)} followed by {np_a}", f"{np_a} preceded by the label {QQ(rng, label)}",
                             f"{np_a} after {QQ(rng, label)}", f"the text {QQ(rng, label)} and then {np_a}"))
        return Concept("composite", (phrase,), esc(label) + _grouped(a.regex), lambda r: label + a.sample(r),
                       article=False)
    o, c, ph = rng.choice(_WRAPS)
    phrase = rng.choice((f"{np_a} {ph}", f"{np_a}, wrapped {ph}", f"{np_a} enclosed {ph}", f"{np_a}, {ph}"))
    return Concept("composite", (phrase,), esc(o) + _grouped(a.regex) + esc(c), lambda r: o + a.sample(r) + c,
                   article=False)


def _mutate(rng: R, s: str) -> str:
    """A near miss: one edit of a positive (delete / insert / replace a char, flip case, cut, repeat a chunk)."""
    op, i = rng.randrange(8), rng.randrange(len(s) + 1)
    if op == 0 and i < len(s):
        return s[:i] + s[i + 1:]
    if op in (1, 2):
        return s[:i] + rng.choice(_NOISE_CHARS) + s[i + (op == 2):]
    if op == 3 and any(c.isalpha() for c in s):
        k = rng.choice([k for k, c in enumerate(s) if c.isalpha()])
        return s[:k] + s[k].swapcase() + s[k + 1:]
    if op == 4 and len(s) > 1:
        return s[:rng.randrange(1, len(s))]
    if op == 5 and len(s) > 1:
        j = rng.randrange(len(s))
        k = rng.randint(j + 1, min(len(s), j + 4))
        return s[:k] + s[j:k] + s[k:]
    if op == 6 and (digits := [k for k, c in enumerate(s) if c.isdigit()]):
        k = rng.choice(digits)
        return s[:k] + rng.choice("abcxyzXO") + s[k + 1:]
    return rng.choice(("", s)) + rng.choice(_NOISE_CHARS) + (s if rng.random() < 0.5 else "")


def _usable(s: str) -> bool:
    return 0 < len(s) <= MAX_STRING_LEN and s.isascii() and s.isprintable() and s == s.strip()


def _re2_ok(regex: str) -> bool:
    try:
        import re2
    except ImportError:  # the re2 extra is not installed: the python checks still hold
        return True
    try:
        re2.compile(regex)
    except Exception:  # noqa: BLE001 - any refusal means "not this draw"
        return False
    return True


def _attempt(rng: R, topic: str, difficulty: int, style: str, n_pos: int, n_neg: int, dialect: str,
             concept_family: str | None = None) -> dict | None:
    roll = rng.random()
    if concept_family in FAMILIES[topic]:  # a focused request: the concept the champion failed, new values
        concept = FAMILIES[topic][concept_family](rng, difficulty)
    elif concept_family == "composite":
        concept = _composite(rng, topic, difficulty)
    elif concept_family == "fragments" or roll < _FRAGMENTS:
        concept = fragment(rng, topic, difficulty)
    elif roll < _FRAGMENTS + _COMPOSE[difficulty]:
        concept = _composite(rng, topic, difficulty)
    else:
        concept = _concept(rng, topic, difficulty)
    regex = concept.regex
    if len(regex) > MAX_REGEX_LEN or regex != regex.strip() or (dialect == "re2" and not _re2_ok(regex)):
        return None
    if concept.family in STRUCTURAL_FAMILIES and redos_static(regex):  # a composition may stack ambiguous repeats
        return None
    fullmatch = re.compile(regex).fullmatch
    shown: list[str] = []  # the example style's strings: drawn before the positives, so counts never change the text
    for _ in range(12):
        s = concept.sample(rng)
        if len(shown) < 2 and _usable(s) and len(s) <= 40 and fullmatch(s) and s not in shown:
            shown.append(s)
    if style == "example" and not shown:
        return None
    description, noise = finish(rng, describe(rng, style, concept, topic, shown), style,
                                case_noise=concept.family != "fragments")
    if not (MIN_DESC_LEN <= len(description) <= MAX_DESC_LEN) or "\n" in description:
        return None
    positives: list[str] = []
    want = max(n_pos, 1 if n_neg else 0)
    for _ in range(10 * want + 10):
        if len(positives) >= want:
            break
        s = concept.sample(rng)
        if s not in positives and _usable(s) and fullmatch(s):
            positives.append(s)
    if len(positives) < min(want, 2):  # a tiny language ("yes or no") gives what it has, at least two
        return None
    negatives: list[str] = []
    for k in range(25 * n_neg + 20):
        if len(negatives) >= n_neg:
            break
        if concept.near and k % 3 == 0 and len(negatives) < (n_neg + 1) // 2:
            s = rng.choice(concept.near)(rng)
        else:
            s = _mutate(rng, rng.choice(positives))
        if s not in negatives and _usable(s) and not fullmatch(s):
            negatives.append(s)
    if len(negatives) < n_neg:
        return None
    return {"description": description, "regex": regex, "positives": positives[:n_pos], "negatives": negatives,
            "topic": topic, "style": style, "concept": concept.family, "noise": noise}


def pick_style(rng: R, weights: dict[str, float] | None = None) -> str:
    names, w = zip(*sorted((weights or DEFAULT_STYLE_WEIGHTS).items()), strict=True)
    return rng.choices(names, weights=w)[0]


def generate_example(seed: int, topic: str, difficulty: int, n_positives: int = 5, n_negatives: int = 5, *,
                     style: str | None = None, dialect: str = "python", concept: str | None = None) -> dict:
    """Returns {"description", "regex", "positives", "negatives", "topic", "style", "concept", "noise"}.

    Deterministic for its inputs; the description and regex depend only on (seed, topic, difficulty, style,
    dialect, concept) unless the requested counts force a retry with the next derived draw. ``style=None`` draws
    one of ``STYLES`` from the seed. ``concept`` (a concept family of the topic, ``composite`` or ``fragments``)
    draws that family only, with new values and phrasing (a focused request); an unknown one is ignored. Raises
    ValueError for an unknown topic or style (naming the allowed ones), a difficulty outside {1, 2, 3}, a negative
    count or an unknown dialect; RuntimeError if no draw works within a bounded number of attempts.
    """
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; allowed topics: {', '.join(TOPICS)}")
    if difficulty not in (1, 2, 3):
        raise ValueError(f"difficulty must be 1, 2 or 3, got {difficulty!r}")
    if n_positives < 0 or n_negatives < 0:
        raise ValueError("n_positives and n_negatives must be >= 0")
    if style is not None and style not in STYLES:
        raise ValueError(f"unknown style {style!r}; allowed styles: {', '.join(STYLES)}")
    if dialect not in ("python", "re2"):
        raise ValueError(f"unknown dialect {dialect!r}; allowed: python, re2")
    for attempt in range(_MAX_SPECS):
        rng = R(f"{seed}/{topic}/{difficulty}/{style}/{attempt}")
        example = _attempt(rng, topic, difficulty, style or pick_style(rng), n_positives, n_negatives, dialect,
                           concept)
        if example is not None:
            return example
    raise RuntimeError(f"no valid example for seed={seed}, topic={topic}, difficulty={difficulty}, style={style} "
                       f"within {_MAX_SPECS} draws (n_positives={n_positives}, n_negatives={n_negatives})")
