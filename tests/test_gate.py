"""The gate: thresholds, a seeded paired bootstrap against the champion, and a decision that names every check."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.config import GateConfig
from tasks.registry import decide, paired_bootstrap


def M(acc: float = 0.8, n: int = 400, **kw) -> dict:
    m = {"n": n, "compile_rate": 0.98, "semantic_accuracy": acc, "mean_output_tokens": 8.0,
         "redos_vulnerable_rate": 0.0, "serving_parity": {"n": 32, "agree": 32, "rate": 1.0},
         "by_topic": {"dates": {"n": n // 2, "semantic_accuracy": acc}, "network": {"n": n // 2,
                                                                                  "semantic_accuracy": acc}},
         "golden": {"n": 100, "semantic_accuracy": 0.7}}
    return m | kw


def scores(k: int, n: int) -> list[int]:
    return [1] * k + [0] * (n - k)


GATE = GateConfig(min_compile_rate=0.9, min_semantic_accuracy=0.5, max_mean_output_tokens=60)


def check(d: dict, name: str) -> dict:
    return next(c for c in d["checks"] if c["name"] == name)


def test_bad_candidate_is_rejected_with_the_failing_checks_named():
    bad = M(0.02, compile_rate=0.41, mean_output_tokens=64.0)  # what a zero-step adapter on the random student does
    d = decide(bad, None, GATE)
    assert not d["promote"]
    assert d["failed"] == ["min_compile_rate", "min_semantic_accuracy", "max_mean_output_tokens"]
    assert check(d, "min_semantic_accuracy") | {} == {"name": "min_semantic_accuracy", "value": 0.02,
                                                      "threshold": 0.5, "passed": False,
                                                      "reason": "min_semantic_accuracy: 0.02 vs threshold 0.5"}
    assert len(d["reasons"]) == 3


def test_good_candidate_over_an_empty_slot_is_promoted_and_champion_checks_are_skipped():
    d = decide(M(0.8), None, GATE)
    assert d["promote"] and d["failed"] == [] and d["bootstrap"] is None
    skipped = {c["name"] for c in d["checks"] if c.get("skipped")}
    assert skipped == {"significant_improvement_over_champion", "max_topic_regression",
                       "redos_no_worse_than_champion", "golden_no_regression"}
    assert all({"name", "value", "threshold", "passed"} <= set(c) for c in d["checks"])


def test_second_good_candidate_not_significantly_better_is_rejected():
    n = 400
    # both right on 304, only the candidate on 20, only the champion on 16, both wrong on 60: 0.81 vs 0.80
    cand = [1] * 304 + [1] * 20 + [0] * 16 + [0] * 60
    champ = [1] * 304 + [0] * 20 + [1] * 16 + [0] * 60
    assert len(cand) == len(champ) == n
    d = decide(M(0.81), M(0.80), GATE, pairs=(cand, champ))
    assert not d["promote"] and d["failed"] == ["significant_improvement_over_champion"]
    assert d["reasons"][0].startswith("no significant improvement")
    lo, hi = d["bootstrap"]["ci"]
    assert lo <= d["bootstrap"]["delta"] == 0.01 <= hi and lo <= 0.0
    assert d["bootstrap"]["resamples"] == 1000


def test_significantly_better_candidate_replaces_the_champion():
    n = 400
    champ = scores(240, n)                 # 0.60
    cand = [1] * 320 + [0] * 80            # 0.80, never worse on an item the champion got right
    d = decide(M(0.80), M(0.60), GATE, pairs=(cand, champ))
    assert d["promote"], d["reasons"]
    assert check(d, "significant_improvement_over_champion")["value"] > 0


def test_margin_must_be_cleared_by_the_lower_bound_not_the_point_estimate():
    n = 400
    cand, champ = [1] * 320 + [0] * 80, scores(300, n)  # +0.05
    gate = GATE.model_copy(update={"min_improvement_over_champion": 0.04})
    d = decide(M(0.80), M(0.75), gate, pairs=(cand, champ))
    assert not d["promote"] and d["failed"] == ["significant_improvement_over_champion"]


def test_a_topic_slice_that_regresses_blocks_promotion_and_is_named():
    cand = M(0.85, by_topic={"dates": {"n": 200, "semantic_accuracy": 0.98},
                             "network": {"n": 200, "semantic_accuracy": 0.72}})
    champ = M(0.60, by_topic={"dates": {"n": 200, "semantic_accuracy": 0.40},
                              "network": {"n": 200, "semantic_accuracy": 0.80}})
    pairs = ([1] * 340 + [0] * 60, [1] * 240 + [0] * 160)
    d = decide(cand, champ, GATE, pairs=pairs)
    c = check(d, "max_topic_regression")
    assert d["failed"] == ["max_topic_regression"] and c["topic"] == "network" and c["value"] == -0.08
    assert "network" in d["reasons"][0]


def test_small_topic_slices_are_not_gated():
    cand = M(0.85, by_topic={"rare": {"n": 5, "semantic_accuracy": 0.0}})
    champ = M(0.60, by_topic={"rare": {"n": 5, "semantic_accuracy": 1.0}})
    d = decide(cand, champ, GATE, pairs=([1] * 340 + [0] * 60, [1] * 240 + [0] * 160))
    assert check(d, "max_topic_regression")["passed"]


def test_golden_set_regression_and_more_redos_block_promotion():
    cand = M(0.85, redos_vulnerable_rate=0.02, golden={"n": 100, "semantic_accuracy": 0.66})
    champ = M(0.60, redos_vulnerable_rate=0.01, golden={"n": 100, "semantic_accuracy": 0.70})
    d = decide(cand, champ, GATE, pairs=([1] * 340 + [0] * 60, [1] * 240 + [0] * 160))
    assert d["failed"] == ["redos_no_worse_than_champion", "golden_no_regression"]


def test_serving_parity_below_threshold_blocks_promotion():
    d = decide(M(0.8, serving_parity={"n": 32, "agree": 30, "rate": 0.9375}), None, GATE)
    assert d["failed"] == ["min_serving_parity"] and "30/32" in d["reasons"][0]


def test_champion_comparison_without_paired_items_is_an_error():
    with pytest.raises(ValueError, match="pairs"):
        decide(M(0.8), M(0.7), GATE)


def test_paired_bootstrap_is_seeded_and_needs_the_same_items():
    a, b = scores(70, 100), [0, 1] * 50
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)
    assert paired_bootstrap(a, a)["ci"] == [0.0, 0.0]
    with pytest.raises(ValueError):
        paired_bootstrap(a, b[:10])


def test_gate_policy_refuses_fewer_than_1000_resamples():
    with pytest.raises(ValidationError):
        GateConfig(bootstrap_resamples=100)
