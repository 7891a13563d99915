"""The regex kind's shared checks: dialect matching, the ReDoS guard, equivalence and behaviour signatures."""

from __future__ import annotations

import pytest

from tasks.kinds.regex import analysis as ra
from tasks.kinds.regex import worker as regex_worker
from tasks.kinds.regex.matcher import behaviour_signature, check_batch, equivalence, equivalence_batch, redos_guard

CATASTROPHIC = [r"(a+)+", r"(a|aa)*c", r"(.*a){12}", r"(a|a)*b", r"(\w+\s?)*$", r"(x+x+)+y", r"([a-z]+)*[0-9]",
                r"(a*)*b", r"(?:[a-z0-9]+[._-]?)+@example\.com", r"(?:-?\d+)+x", r"(a{1,10}){1,10}b"]
SAFE = [r"\d{3}-[a-z]{2}", r"(?:/[a-z]+)+", r"\d{1,3}(?:\.\d{1,3}){3}", r"(?:\d+-)+\d+", r"[A-Z][a-z]+",
        r"[a-z]+(?:\.[a-z]+)*@[a-z]+\.(?:com|org)", r"(?:GET|POST) /\S*", r"\d+\d+", r"(?:ab|ac)*"]


def test_full_match_semantics_in_both_dialects():
    items = [(r"\d{3}", ["123"], ["1234", "x123"]), (r"a|ab", ["a", "ab"], ["abc"])]
    for dialect in ("python", "re2"):
        assert [r.all_ok(len(p), len(n)) for r, (_, p, n) in zip(check_batch(items, dialect=dialect), items,
                                                                 strict=True)] == [True, True]


def test_lookahead_and_backreference_compile_in_python_but_not_in_re2():
    items = [(r"(?=\d)\w+", ["1a"], []), (r"(\w)\1", ["aa"], ["ab"])]
    assert all(r.compiled for r in check_batch(items, dialect="python"))
    assert not any(r.compiled for r in check_batch(items, dialect="re2"))


def test_unknown_dialect_is_refused_by_name():
    with pytest.raises(ValueError, match="pcre"):
        check_batch([("a", [], [])], dialect="pcre")


def test_catastrophic_match_costs_its_time_limit_and_the_batch_goes_on():
    fine = (r"\d+", ["12"], ["x"])
    results = check_batch([fine, (r"(a+)+$", ["aaaa"], ["a" * 40 + "b"]), fine], timeout_s=0.5)
    assert [r.timed_out for r in results] == [False, True, False]
    assert results[0].all_ok(1, 1) and results[2].all_ok(1, 1)


def test_redos_guard_flags_every_catastrophic_pattern_statically():
    assert redos_guard(CATASTROPHIC) == ["redos_static"] * len(CATASTROPHIC)


def test_redos_guard_passes_linear_patterns():
    assert redos_guard(SAFE) == [None] * len(SAFE)


def test_re2_patterns_are_never_redos_findings_because_re2_is_linear_time():
    assert redos_guard(CATASTROPHIC[:3], dialect="re2") == [None, None, None]


def test_stress_test_catches_what_static_analysis_is_told_to_miss(monkeypatch):
    monkeypatch.setattr(ra, "redos_static", lambda regex, seq=None: False)
    assert regex_worker.redos(r"(a|aa)*c", "python", 0.05) == "redos_stress"
    assert regex_worker.redos(r"\d{3}-[a-z]+", "python", 0.05) is None


def test_attack_strings_reach_the_repeat_behind_a_literal_prefix():
    attacks = ra.attack_strings(ra.parse(r"ID-(\w+\s?)*"))
    assert any(s.startswith("ID-aaaaaaaaaaaa") for family in attacks for s in family)


def test_equivalence_decides_regular_pairs_and_names_distinguishing_strings():
    assert equivalence(r"\d{3}-[a-z]+", r"[0-9]{3}-[a-z][a-z]*")[0] == "equivalent"
    assert equivalence(r"^\d{3}$", r"\d\d\d")[0] == "equivalent"  # edge anchors are no-ops under full match
    verdict, strings = equivalence(r"\d{3}-[a-z]+", r"\d{3}-[a-z]*")
    assert verdict == "different" and "000-" in strings


def test_equivalence_falls_back_to_probes_for_non_regular_patterns():
    assert equivalence(r"(a)\1", r"ab") == ("different", ["aa", "ab"])
    assert equivalence(r"(a)\1", r"aa")[0] == "undecided"


def test_equivalence_batch_keeps_order():
    assert [v for v, _ in equivalence_batch([("a+", "aa*"), ("a", "b")])] == ["equivalent", "different"]


def test_behaviour_signature_is_shared_by_equivalent_regexes():
    probes = ["12", "ab", "a1", "", "123"]
    a, b, c, bad = behaviour_signature([r"\d+", r"[0-9][0-9]*", r"[a-z]+", "(x"], probes)
    assert a == b != c and bad is None


def test_canonical_spelling_folds_paraphrases():
    assert ra.canonical(r"\d\d\d") == ra.canonical(r"[0-9]{3}") == ra.canonical(r"(?:\d){3}")
    assert ra.canonical(r"(?:b|a)+") == ra.canonical(r"[ab][ab]*")
    assert ra.canonical(r"\d{3}") != ra.canonical(r"\d{4}")
