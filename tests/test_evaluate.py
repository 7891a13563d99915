"""Scoring: semantic accuracy means every positive matches and no negative does; figures come with rows."""

from __future__ import annotations

from tasks.evaluate import score, wilson

ITEMS = [
    {"example_id": "e1", "completion": "\\d{3}", "positives": ["123", "456"], "negatives": ["12", "abc"],
     "topic": "text"},
    {"example_id": "e2", "completion": "[a-z]+", "positives": ["ab"], "negatives": ["AB"], "topic": "dates"},
    {"example_id": "e3", "completion": "x", "positives": ["x"], "negatives": ["y"], "topic": "dates"},
]


def test_score_separates_exact_semantic_and_compile():
    outputs = ["\\d{3}", "[a-z][a-z]*", "(x"]  # exact, equivalent-but-different, does not compile
    m, rows = score(ITEMS, outputs, [3, 6, 2], [5.0, 5.0, 5.0], timeout_s=2)
    assert [r["semantic_ok"] for r in rows] == [True, True, False]
    assert [r["exact"] for r in rows] == [True, False, False]
    assert [r["compiled"] for r in rows] == [True, True, False]
    assert m["n"] == 3 and m["semantic_accuracy"] == round(2 / 3, 4) and m["exact_match"] == round(1 / 3, 4)
    assert m["compile_rate"] == round(2 / 3, 4) and m["mean_output_tokens"] == round(11 / 3, 2)
    assert m["by_topic"] == {"dates": {"n": 2, "semantic_accuracy": 0.5}, "text": {"n": 1, "semantic_accuracy": 1.0}}
    lo, hi = m["semantic_accuracy_ci"]
    assert lo < m["semantic_accuracy"] < hi


def test_empty_output_is_neither_compiled_nor_correct():
    m, rows = score(ITEMS[:1], [""], [0], [1.0], timeout_s=2)
    assert rows[0]["compiled"] is False and rows[0]["semantic_ok"] is False


def test_catastrophic_output_costs_only_its_time_limit():
    item = {"example_id": "e", "completion": "a+", "positives": ["aaaa"], "negatives": ["a" * 40 + "b"],
            "topic": "text"}
    m, rows = score([item], ["(a+)+$"], [4], [1.0], timeout_s=0.5)
    assert m["redos_vulnerable_rate"] == 1.0 and rows[0]["semantic_ok"] is False


def test_wilson_interval_bounds():
    assert wilson(0, 0) == [0.0, 0.0]
    lo, hi = wilson(50, 100)
    assert 0.39 < lo < 0.5 < hi < 0.61
