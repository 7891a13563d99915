"""The python dialect is Python ``re`` with ``re.ASCII``: ``\\d`` is ``[0-9]``, ``\\w`` is ``[a-zA-Z0-9_]``, ``\\s`` is
ASCII whitespace — the view the house style, the canonical form and the DFA equivalence already take. Validation,
dedup, equivalence and evaluation must agree on non-ASCII digits, letters and whitespace."""

from __future__ import annotations

import json

import pytest

from schemas.config import load_domain
from tasks.evaluate import score
from tasks.kinds.regex import matcher as kind
from tasks.kinds.regex.analysis import canonical
from tasks.validate import validate_rows

ARABIC_DIGITS = "\u0661\u0662\u0663"  # ١٢٣: str.isdigit() is True, but they are not [0-9]
CASES = [  # (regex, its ASCII twin, positives, non-ASCII negatives)
    (r"\d{3}", "[0-9]{3}", ["123", "907"], [ARABIC_DIGITS, "12\u0663"]),
    (r"\w+", "[a-zA-Z0-9_]+", ["abc", "a_1"], ["caf\u00e9", "stra\u00dfe"]),
    (r"a\sb", "a[ \\t\\n\\r\\f\\v]b", ["a b", "a\tb"], ["a\u00a0b", "a\u2003b"]),
]
RE2_SPACE = "a[ \\t\\n\\r\\f]b"  # RE2's \s has no \v (Python's ASCII \s has)
DOMAINS = {"python": "regex-python", "re2": "regex-re2"}


def _raw(regex: str, pos: list[str], neg: list[str], desc: str) -> str:
    return json.dumps({"description": desc, "regex": regex, "positives": pos, "negatives": neg})


@pytest.mark.parametrize("dialect", sorted(DOMAINS))
def test_shorthand_classes_are_ascii_in_validation_and_evaluation_alike(dialect):
    cfg = load_domain(DOMAINS[dialect], "tiny", {"validation.class_spelling": "any"})
    cases = [(*c[:1], RE2_SPACE, *c[2:]) if dialect == "re2" and c[0] == r"a\sb" else c for c in CASES]
    rows, items, outputs = [], [], []
    for k, (short, spelled, pos, neg) in enumerate(cases):
        rows += [_raw(short, pos, neg, f"case {k} written with a shorthand class"),
                 _raw(spelled, pos, neg, f"case {k} written with the class spelled out")]
        items.append({"example_id": f"e{k}", "prompt": f"p{k}", "completion": spelled, "positives": pos,
                      "negatives": neg})
        outputs.append(short)
    verdicts = validate_rows(rows, cfg)
    # validation: the shorthand and the spelled-out class give the same verdict on non-ASCII strings: accepted
    assert [(v.accepted, v.reasons) for v in verdicts] == [(True, [])] * len(rows)
    # the same regexes as a student's outputs against the spelled-out references: right, and equivalent
    scored = score(items, outputs, [3] * len(items), [1.0] * len(items), cfg=cfg)
    assert [r["semantic_ok"] for r in scored] == [True] * len(CASES)
    assert [r["equivalence"] for r in scored][:2] == ["equivalent"] * 2  # \d and \w: the DFAs agree
    assert scored[2]["equivalence"] != "different"
    # the matcher both use: a non-ASCII digit, letter or space is not matched by \d, \w, \s
    checks = kind.check_batch([(short, neg, []) for short, _, _, neg in CASES], 2.0, dialect)
    assert [c.positives_ok for c in checks] == [0] * len(CASES)


def test_dedup_treats_the_shorthand_and_the_spelled_out_class_as_one_regex():
    cfg = load_domain("regex-python", "tiny", {"validation.max_per_equivalence_class": 1})
    pos, neg = ["123", "907"], [ARABIC_DIGITS, "12a"]
    verdicts = validate_rows([_raw(r"\d{3}", pos, neg, "three digits in a row"),
                              _raw("[0-9]{3}", pos, neg, "exactly three decimal digits")], cfg)
    assert verdicts[0].accepted and verdicts[1].reasons == ["equivalence_cap"]
    assert canonical(r"\d{3}") == canonical("[0-9]{3}")
    assert kind.equivalence(r"\d{3}", "[0-9]{3}", "python")[0] == "equivalent"


def test_a_pattern_that_asks_for_unicode_classes_is_not_in_the_python_dialect():
    cfg = load_domain("regex-python", "tiny")
    [v] = validate_rows([_raw(r"(?u)\d{3}", ["123"], ["abc"], "three digits, unicode flag")], cfg)
    assert v.reasons == ["compile_error"]
