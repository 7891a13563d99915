"""Hostile teacher output: every reason code, catastrophic patterns included, each rejected with the right reason.

The cases run as one batch per domain (as the pipeline runs them), so a catastrophic pattern that stalled its
worker would also show up as wrong verdicts for its neighbours. No timing is asserted here; the figures are
in bench/validate_throughput.py.
"""

from __future__ import annotations

import json

import pytest

from schemas.config import load_domain
from tasks.kinds import get_kind
from tasks.validate import reason_codes, validate_rows, validate_user_file

DESC = "a hostile but well-described case"


def raw(regex, pos=("abc",), neg=("ABC",), desc=DESC):
    return json.dumps({"description": desc, "regex": regex, "positives": list(pos), "negatives": list(neg)})


CATASTROPHIC = [  # (regex, a positive it matches) — nested or overlapping quantifiers under full match
    (r"(a+)+", "aaa"), (r"(a|aa)*c", "aac"), (r"(.*a){12}", "a" * 12), (r"(a|a)*b", "ab"),
    (r"(\w+\s?)*", "ab cd"), (r"(x+x+)+y", "xxy"), (r"([a-z]+)*[0-9]", "ab1"), (r"(a*)*b", "aab"),
    (r"(?:[a-z0-9]+[._-]?)+@x\.com", "ab.c@x.com"), (r"(?:-?\d+)+x", "-12x"), (r"(a{1,10}){1,10}b", "aab"),
    (r"(\d+|\d+\.\d+)*z", "12z"), (r"(?:a?a?)+b", "aab"), (r".*.*.*=.*", "a=b"),
]

PYTHON_CASES = [  # (raw response, expected reason) for regex-python (min 1 positive / 1 negative)
    ("definitely not json", "malformed_output"),
    ("[1, 2, 3]", "malformed_output"),
    (json.dumps({"regex": "abc"}), "malformed_output"),
    (json.dumps({"description": "", "regex": "abc"}), "malformed_output"),
    (json.dumps({"description": DESC, "regex": ""}), "malformed_output"),
    (None, "malformed_output"),
    (raw("```\n[a-z]+\n```"), "not_terse"),
    (raw("`[a-z]+`"), "not_terse"),
    (raw("/[a-z]+/"), "not_terse"),
    (raw("Here is the regex: [a-z]+"), "not_terse"),
    (raw("[a-z]+\nThis matches lowercase words."), "not_terse"),
    (raw("[a-z]+ "), "edge_whitespace"),
    (raw("\t[a-z]+"), "edge_whitespace"),
    (raw("[a-z"), "compile_error"),
    (raw("(abc"), "compile_error"),
    (raw("a{2,1}"), "compile_error"),
    (raw("*abc"), "compile_error"),
    (raw("(?P<x>a)(?P<x>b)"), "compile_error"),
    (raw("a" * 201, pos=("a" * 201,)), "regex_too_long"),
    (raw("[a-z]+", pos=("abc", "ab1")), "positive_mismatch"),
    (raw("[a-z]+", pos=("abc def",)), "positive_mismatch"),  # full match: a substring match is not enough
    (raw("[a-z]+", neg=("ABC", "xyz")), "negative_match"),
    (raw("[a-z]+", pos=()), "too_few_positives"),
    (raw("[a-z]+", neg=()), "too_few_negatives"),
    (raw("[a-z]+", desc="ab"), "description_length"),
    (raw("[a-z]+", desc="x" * 301), "description_length"),
    (raw("[a-z]+", desc="two\nlines of description"), "description_length"),
] + [(raw(rx, pos=(p,), neg=("!",)), "redos_static") for rx, p in CATASTROPHIC]

RE2_CASES = [  # regex-re2: RE2 dialect and its house style
    (raw(r"(?=\d)\w+", pos=("1a", "2b"), neg=("a1", "!!")), "compile_error"),  # lookahead: not RE2
    (raw(r"(\w)\1", pos=("aa", "bb"), neg=("ab", "a")), "compile_error"),      # backreference: not RE2
    (raw(r"^\d+$", pos=("12", "3"), neg=("a", "")), "style_anchoring"),
    (raw(r"[0-9]+", pos=("12", "3"), neg=("a", "")), "style_class_spelling"),
    (raw(r"[a-zA-Z0-9_]+", pos=("a_1", "Z"), neg=("-", "")), "style_class_spelling"),
    (raw(r"\d+", pos=("12",), neg=("a", "b")), "too_few_positives"),
]

LOGS_CASES = [  # regex-logs: Python dialect, so lookaround/backreferences compile and the house style rejects them
    (raw(r"(?<=id=)\d+", pos=("12", "3"), neg=("a", "")), "style_lookaround"),
    (raw(r"(\d)\1", pos=("11", "22"), neg=("12", "1")), "style_backreference"),
    (raw(r"\d+$", pos=("12", "3"), neg=("a", "")), "style_anchoring"),
    (raw("```\n\\d+\n```\nexplained", pos=("12", "3"), neg=("a", "")), "not_terse"),  # strip_and_flag can't fix prose
]


def _check(cases, cfg):
    verdicts = validate_rows([r for r, _ in cases], cfg)
    got = [(v.reasons[:1] or ["accepted"])[0] for v in verdicts]
    assert got == [want for _, want in cases]
    assert all(not v.accepted for v in verdicts)


def test_hostile_python_outputs_are_each_rejected_with_the_right_reason():
    _check(PYTHON_CASES, load_domain("regex-python", "tiny"))


def test_at_least_eight_catastrophic_patterns_are_stopped_by_the_redos_guard():
    assert len(CATASTROPHIC) >= 8
    _check([(raw(rx, pos=(p,), neg=("!",)), "redos_static") for rx, p in CATASTROPHIC],
           load_domain("regex-python", "tiny"))


def test_hostile_re2_outputs_are_rejected_by_the_re2_dialect_and_style():
    _check(RE2_CASES, load_domain("regex-re2", "tiny"))


def test_hostile_log_outputs_are_rejected_by_the_logs_house_style():
    _check(LOGS_CASES, load_domain("regex-logs", "tiny"))


def test_optional_constructs_can_be_forbidden_by_the_house_style():
    cfg = load_domain("regex-python", "tiny", {"validation.forbid": ["atomic", "capturing_group"]})
    _check([(raw(r"(?>a+)b", pos=("ab",), neg=("b",)), "style_atomic"),
            (raw(r"(ab)+", pos=("ab",), neg=("a",)), "style_capturing_group")], cfg)


def test_the_stress_test_stops_what_static_analysis_is_switched_off_for(monkeypatch):
    monkeypatch.setenv("LORAFORGE_REDOS_GUARD", "stress")
    cases = [(raw(rx, pos=(p,), neg=("!",)), "redos_stress") for rx, p in CATASTROPHIC[:4]]
    _check(cases, load_domain("regex-python", "tiny"))


def test_a_catastrophic_match_without_any_guard_times_out_and_the_batch_goes_on(monkeypatch):
    monkeypatch.setenv("LORAFORGE_REDOS_GUARD", "off")
    cfg = load_domain("regex-python", "tiny", {"validation.match_timeout_s": 0.5})
    rows = [raw(r"[a-z]+", desc="lowercase letters"), raw(r"(a|aa)*c", pos=("ac",), neg=("a" * 40,)),
            raw(r"\d+", ("1",), ("a",), desc="some digits")]
    verdicts = validate_rows(rows, cfg)
    assert [v.reasons for v in verdicts] == [[], ["match_timeout"], []]


def test_duplicates_equivalents_and_eval_overlap_have_their_own_codes():
    cfg = load_domain("regex-python", "tiny", {"validation.max_per_equivalence_class": 1})
    golden = [{"prompt": "a US ZIP code with an optional four-digit extension", "completion": r"\d{5}(?:-\d{4})?",
               "positives": ["12345", "12345-6789"], "negatives": ["1234", "12345-"]}]
    rows = [raw(r"[a-z]{3}", desc="three lowercase letters"),
            raw(r"[a-z]{3}", desc="three lowercase letters"),           # same prompt
            raw(r"[a-z][a-z][a-z]", desc="exactly three small letters"),  # equivalent regex, class capped at 1
            raw(r"[0-9]{5}(-[0-9]{4})?", pos=("12345",), neg=("1",), desc="postal code of the United States"),
            raw(r"\d+", pos=("1",), neg=("a",), desc="A US zip code with an optional four digit extension")]
    verdicts = validate_rows(rows, cfg, eval_items=golden)
    assert [v.reasons for v in verdicts] == [[], ["duplicate_prompt"], ["equivalence_cap"],
                                              ["eval_overlap_regex"], ["eval_overlap_prompt"]]


def test_user_file_rows_have_their_own_codes(tmp_path):
    f = tmp_path / "rows.jsonl"
    f.write_bytes(b"\xff\xfe\n" + json.dumps({"prompt": DESC, "completion": "  "}).encode() + b"\n"
                  + json.dumps({"prompt": DESC, "completion": r"\d+"}).encode() + b"\n")
    rows = validate_user_file(f, load_domain("regex-python", "full"))["rows"]
    assert [(r["reasons"], r.get("notes")) for r in rows] == [
        (["not_utf8"], None), (["empty_completion"], None), ([], ["examples_skipped"])]


def test_every_reason_code_is_exercised_by_this_corpus():
    covered = {want for cases in (PYTHON_CASES, RE2_CASES, LOGS_CASES) for _, want in cases}
    covered |= {"style_atomic", "style_capturing_group", "redos_stress", "match_timeout", "duplicate_prompt",
                "equivalence_cap", "eval_overlap_regex", "eval_overlap_prompt", "not_utf8", "empty_completion"}
    assert covered == set(reason_codes(get_kind("regex")))
    assert len(PYTHON_CASES) + len(RE2_CASES) + len(LOGS_CASES) >= 40


@pytest.mark.parametrize("domain", ["regex-python", "regex-re2", "regex-logs"])
def test_strip_and_flag_domains_normalise_instead_of_rejecting(domain):
    cfg = load_domain(domain, "tiny", {"validation.terse": "strip_and_flag"})
    (v,) = validate_rows([raw("```\n\\d+\n```", pos=("12", "3"), neg=("a", "b"))], cfg)
    assert v.accepted and v.completion == r"\d+" and v.flags == ["normalised"]
