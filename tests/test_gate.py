"""The gate: thresholds, a seeded paired bootstrap against the champion, and a decision that names every check."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.config import GateConfig
from tasks.kinds.regex.config import RegexGate
from tasks.registry import decide as registry_decide
from tasks.registry import paired_bootstrap


def M(acc: float = 0.8, n: int = 400, **kw) -> dict:
    m = {"n": n, "compile_rate": 0.98, "semantic_accuracy": acc, "mean_output_tokens": 8.0,
         "redos_vulnerable_rate": 0.0, "serving_parity": {"n": 32, "agree": 32, "rate": 1.0},
         "by_topic": {"dates": {"n": n // 2, "semantic_accuracy": acc}, "network": {"n": n // 2,
                                                                                  "semantic_accuracy": acc}},
         "golden": {"n": 100, "semantic_accuracy": 0.7}}
    return m | kw


def scores(k: int, n: int) -> list[int]:
    return [1] * k + [0] * (n - k)


GATE = RegexGate(min_compile_rate=0.9, min_semantic_accuracy=0.5, max_mean_output_tokens=60,
                 min_golden_semantic_accuracy=0.5, min_golden_improvement_over_base=0.1)
GOLDEN_WIN = (scores(70, 100), scores(5, 100))  # golden set: candidate 0.70, base model 0.05 on the same items


def decide(candidate: dict, champion: dict | None, gate: GateConfig, **kw) -> dict:
    """The gate with a candidate that beats the base on the golden set, unless the test says otherwise."""
    return registry_decide(candidate, champion, gate, **({"golden_pairs": GOLDEN_WIN} | kw))


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


# --------------------------------------------------------------------- the golden set judges every candidate
def test_a_grammar_echo_is_rejected_over_an_empty_slot_with_the_golden_checks_named():
    # 0.93 on its teacher's held-out split, 0 on hand-written requests, like the base model: what `make demo` made
    echo = M(0.93, golden={"n": 111, "semantic_accuracy": 0.0})
    d = decide(echo, None, GATE, golden_pairs=(scores(0, 111), scores(0, 111)),
               base_golden={"n": 111, "semantic_accuracy": 0.0})
    assert not d["promote"]
    assert d["failed"] == ["min_golden_semantic_accuracy", "golden_improvement_over_base"]
    floor, beat = check(d, "min_golden_semantic_accuracy"), check(d, "golden_improvement_over_base")
    assert (floor["value"], floor["threshold"], floor["passed"]) == (0.0, 0.5, False)
    assert (beat["value"], beat["threshold"], beat["passed"], beat["delta"]) == (0.0, 0.1, False, 0.0)
    assert beat["base_semantic_accuracy"] == 0.0 and beat["n"] == 111
    assert "golden set: semantic accuracy 0.0000 on 111" in d["reasons"][0]
    assert d["reasons"][1].startswith("does not beat the base model on the golden set")
    assert d["golden_bootstrap"]["n"] == 111


def test_golden_accuracy_above_the_floor_but_not_clear_of_the_base_by_the_margin_is_rejected():
    # 0.60 vs a base at 0.52 on the same 100 items: better on average, but the CI's lower bound is under +0.1
    cand = scores(52, 100)[:52] + [1] * 8 + [0] * 40
    d = decide(M(0.8, golden={"n": 100, "semantic_accuracy": 0.6}), None, GATE, golden_pairs=(cand, scores(52, 100)))
    assert d["failed"] == ["golden_improvement_over_base"]
    c = check(d, "golden_improvement_over_base")
    assert c["delta"] == 0.08 and c["value"] < 0.1 and check(d, "min_golden_semantic_accuracy")["passed"]


def test_golden_checks_fail_when_no_golden_item_was_scored_and_need_the_base_pairs_otherwise():
    d = decide(M(0.9, golden={"n": 0, "semantic_accuracy": 0.0}), None, GATE, golden_pairs=None)
    assert d["failed"] == ["min_golden_semantic_accuracy", "golden_improvement_over_base"]
    assert all("no golden items were scored" in r for r in d["reasons"])
    assert decide(M(0.9, golden=None), None, GATE, golden_pairs=None)["failed"] == d["failed"]
    with pytest.raises(ValueError, match="golden_pairs"):
        registry_decide(M(0.9), None, GATE)
    off = GATE.model_copy(update={"min_golden_semantic_accuracy": None, "min_golden_improvement_over_base": None})
    assert registry_decide(M(0.9, golden=None), None, off)["promote"]  # null turns them off, as documented


def test_shipped_golden_thresholds_hold_in_every_domain_and_profile():
    from schemas.config import load_domain

    for domain in ("regex-python", "regex-re2", "regex-logs"):
        full = load_domain(domain, "full").gate
        assert (full.min_golden_semantic_accuracy, full.min_golden_improvement_over_base) == (0.5, 0.1), domain
        for profile in ("tiny", "quick"):
            g = load_domain(domain, profile).gate
            assert g.min_golden_semantic_accuracy and g.min_golden_semantic_accuracy > 0, (domain, profile)
            assert g.min_golden_improvement_over_base is not None and g.min_golden_improvement_over_base >= 0


def _scored(items: list[dict], outputs: list[str], cfg) -> tuple[dict, list[int]]:
    """Real evaluation rows (the kind's time-limited matcher, DFA equivalence) → (M, per-item 0/1)."""
    from tasks.evaluate import score, summarise
    from tasks.kinds import get_kind

    rows = score(items, outputs, [len(o) // 3 + 1 for o in outputs], [1.0] * len(items), cfg=cfg)
    return (summarise(rows, kind=get_kind(cfg.task.kind), parity={"n": 4, "agree": 4, "rate": 1.0}),
            [int(r["semantic_ok"]) for r in rows])


def test_shipped_thresholds_reject_a_candidate_measured_below_them_and_promote_one_measured_above():
    """Gate inputs built from real evaluation rows: outputs scored on the shipped golden set with the real
    matcher, under the full profile's shipped gate (no threshold lowered)."""
    from schemas.config import load_domain
    from tasks.evaluate import golden_items

    cfg = load_domain("regex-python", "full")
    golden = golden_items(cfg)
    n = len(golden)
    assert n >= 100
    # a wrong answer is another item's reference (a real regex that compiles, for a different request)
    wrong = [golden[(i + n // 2) % n]["completion"] for i in range(n)]
    right = [it["completion"] for it in golden]
    held_out = [it | {"example_id": f"test-{i:05d}"} for i, it in enumerate(golden)]  # stands in for the split
    test_m, _ = _scored(held_out, right, cfg)
    base_m, base_ok = _scored(golden, wrong, cfg)
    weak_m, weak_ok = _scored(golden, [right[i] if i % 10 < 4 else wrong[i] for i in range(n)], cfg)
    good_m, good_ok = _scored(golden, [right[i] if i % 10 < 7 else wrong[i] for i in range(n)], cfg)
    assert base_m["semantic_accuracy"] < 0.1 and test_m["semantic_accuracy"] > 0.9
    assert weak_m["semantic_accuracy"] < cfg.gate.min_golden_semantic_accuracy < good_m["semantic_accuracy"]

    weak = registry_decide(test_m | {"golden": weak_m}, None, cfg.gate, golden_pairs=(weak_ok, base_ok),
                           base_golden=base_m)
    assert not weak["promote"] and weak["failed"] == ["min_golden_semantic_accuracy"], weak["reasons"]
    assert check(weak, "golden_improvement_over_base")["passed"]  # better than the base, but not good enough
    good = registry_decide(test_m | {"golden": good_m}, None, cfg.gate, golden_pairs=(good_ok, base_ok),
                           base_golden=base_m)
    assert good["promote"], good["reasons"]
    assert check(good, "min_golden_semantic_accuracy")["value"] == good_m["semantic_accuracy"] >= 0.5
    assert check(good, "golden_improvement_over_base")["value"] > 0.1
