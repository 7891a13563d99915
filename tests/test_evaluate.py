"""Scoring: semantic accuracy means every positive matches, no negative does, and no distinguishing string
tells the output from the reference; every figure comes with rows and excluded items are counted, not refused."""

from __future__ import annotations

import json

import pytest

from schemas.config import load_domain
from tasks.evaluate import (
    read_items_file,
    sample_items,
    score,
    split_overlap,
    student_prompt,
    summarise,
    training_keys,
    wilson,
)
from tasks.kinds import get_kind
from tasks.kinds.regex import matcher

KIND = get_kind("regex")

ITEMS = [
    {"example_id": "e1", "prompt": "regex: three digits\n", "completion": "\\d{3}", "positives": ["123", "456"],
     "negatives": ["12", "abc"], "topic": "text"},
    {"example_id": "e2", "prompt": "regex: lowercase word\n", "completion": "[a-z]+", "positives": ["ab"],
     "negatives": ["AB"], "topic": "dates"},
    {"example_id": "e3", "prompt": "regex: x\n", "completion": "x", "positives": ["x"], "negatives": ["y"],
     "topic": "dates"},
]
CONTRACT = {"n", "n_excluded", "compile_rate", "semantic_accuracy", "semantic_accuracy_ci", "exact_match",
            "mean_output_tokens", "latency_ms_p50", "latency_ms_p95", "redos_vulnerable_rate", "by_topic"}


def _score(items, outputs, timeout_s=2.0):
    cfg = load_domain("regex-python", "tiny", {"validation.match_timeout_s": timeout_s})  # python dialect
    return score(items, outputs, [len(o) for o in outputs], [5.0] * len(outputs), cfg=cfg)


def test_score_separates_exact_semantic_and_compile():
    outputs = ["\\d{3}", "[a-z][a-z]*", "(x"]  # exact, equivalent-but-different spelling, does not compile
    rows = _score(ITEMS, outputs)
    m = summarise(rows, kind=KIND)
    assert [r["semantic_ok"] for r in rows] == [True, True, False]
    assert [r["exact"] for r in rows] == [True, False, False]
    assert [r["compiled"] for r in rows] == [True, True, False]
    assert m["n"] == 3 and m["semantic_accuracy"] == round(2 / 3, 4) and m["exact_match"] == round(1 / 3, 4)
    assert m["compile_rate"] == round(2 / 3, 4) and m["mean_output_tokens"] == round((5 + 11 + 2) / 3, 2)
    assert set(m["by_topic"]) == {"dates", "text"}
    assert m["by_topic"]["dates"]["n"] == 2 and m["by_topic"]["dates"]["semantic_accuracy"] == 0.5
    lo, hi = m["semantic_accuracy_ci"]
    assert lo < m["semantic_accuracy"] < hi
    assert set(m) >= CONTRACT


@pytest.mark.skipif(not hasattr(matcher, "equivalence_batch"), reason="the kind has no DFA equivalence yet")
def test_output_passing_the_listed_strings_but_differing_from_the_reference_is_wrong():
    item = {"example_id": "e", "prompt": "regex: two or three digits\n", "completion": "\\d{2,3}",
            "positives": ["12", "123"], "negatives": ["1", "abc"], "topic": "text"}
    rows = _score([item, item], ["\\d{2,4}", "\\d\\d\\d?"])  # 1234 tells the first apart; the second is equivalent
    assert rows[0]["semantic_ok"] is False and rows[0]["equivalence"] == "different"
    assert rows[0]["n_distinguishing"] >= 1
    assert rows[1]["semantic_ok"] is True and rows[1]["equivalence"] == "equivalent"
    m = summarise(rows, kind=KIND)
    assert m["dfa_equivalence_rate"] == 0.5 and m["dfa_undecided"] == 0


def test_empty_output_is_neither_compiled_nor_correct():
    rows = _score(ITEMS[:1], [""])
    assert rows[0]["compiled"] is False and rows[0]["semantic_ok"] is False


def test_catastrophic_output_costs_only_its_time_limit_and_counts_as_redos_vulnerable():
    item = {"example_id": "e", "prompt": "regex: a's\n", "completion": "a+", "positives": ["aaaa"],
            "negatives": ["a" * 40 + "b"], "topic": "text"}
    rows = _score([item], ["(a+)+$"], timeout_s=0.5)
    assert summarise(rows, kind=KIND)["redos_vulnerable_rate"] == 1.0 and rows[0]["semantic_ok"] is False


def test_excluded_items_count_in_n_excluded_not_in_the_score():
    rows = _score(ITEMS[:1], ["\\d{3}"]) + [{"example_id": "x", "topic": "text", "excluded": True}]
    m = summarise(rows, kind=KIND)
    assert m["n"] == 1 and m["n_excluded"] == 1 and m["semantic_accuracy"] == 1.0


def test_items_overlapping_training_data_by_prompt_or_equivalent_regex_are_excluded():
    train = [{"prompt": "REGEX:   three   digits\n", "completion": "[a-c]"},   # same prompt, other spelling
             {"prompt": "regex: a lowercase word\n", "completion": "[a-z]+"}]  # same regex, other prompt
    kept, excluded = split_overlap(ITEMS, training_keys(train, KIND), KIND)
    assert [it["example_id"] for it in excluded] == ["e1", "e2"] and [it["example_id"] for it in kept] == ["e3"]


def test_test_sample_is_deterministic_and_independent_of_row_order():
    rows = [{"example_id": f"id{i}"} for i in range(50)]
    a = sample_items(rows, 10, seed=0)
    assert a == sample_items(list(reversed(rows)), 10, seed=0)
    assert len(a) == 10 and a != sample_items(rows, 10, seed=1)


def test_items_file_renders_descriptions_and_reports_unusable_lines(tmp_path):
    f = tmp_path / "eval.jsonl"
    f.write_text("\n".join([
        json.dumps({"prompt": "three digits", "completion": "\\d{3}", "positives": ["123"], "negatives": ["1"],
                    "topic": "numbers", "source_id": "ignored"}),
        json.dumps({"prompt": "regex: x\n", "completion": "x"}),
        "not json",
        json.dumps({"prompt": "no completion"}),
    ]) + "\n")
    items, invalid = read_items_file(f, "regex: {description}\n", "line", KIND)
    assert [it["prompt"] for it in items] == ["regex: three digits\n", "regex: x\n"]
    assert [it["example_id"] for it in items] == ["line-00001", "line-00002"]
    assert items[0]["topic"] == "numbers" and items[1]["topic"] == "unknown"
    assert invalid == [3, 4]
    assert student_prompt("regex: {description}\n", "regex: y\n", KIND) == "regex: y\n"


def test_wilson_interval_bounds():
    assert wilson(0, 0) == [0.0, 0.0]
    lo, hi = wilson(50, 100)
    assert 0.39 < lo < 0.5 < hi < 0.61
