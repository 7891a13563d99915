"""End to end with the tiny student under the tiny profile's own gate (no threshold lowered): a one-step adapter
and the regular 8-step one are both rejected, each with its failing checks named — the golden checks included,
measured over the empty slot against the base model; a forced promotion installs a champion; a third candidate
meets it on the very same items with the base model's results reused; and `loraforge evaluate --eval-file` scores
a user's 200-row file with every metric and its interval.

The gate's other side — the shipped thresholds promote a candidate measured above them — needs a candidate that is
really good; the tiny student cannot become one in a test's budget, so that side is shown on real scored rows in
tests/test_gate.py (shipped full-profile gate) and tests/test_promotion_flow.py (the tiny profile's gate)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from schemas.config import load_domain
from tasks import store
from tasks.kinds.regex.grammar import TOPICS, generate_example
from tasks.registry import read_pointer

pytestmark = pytest.mark.slow
DOMAIN = "regex-python"
GOLDEN_CHECKS = {"min_golden_semantic_accuracy", "golden_improvement_over_base"}


def _golden_checks_measured(run: dict) -> dict:
    """The golden checks ran (not skipped) on the candidate's and the base model's measured golden figures."""
    checks = {c["name"]: c for c in run["gate"]["checks"]}
    cand, base = run["eval"]["candidate"]["golden"], run["eval"]["base"]["golden"]
    assert cand["n"] > 0 and checks["min_golden_semantic_accuracy"]["value"] == cand["semantic_accuracy"]
    assert checks["golden_improvement_over_base"]["base_semantic_accuracy"] == base["semantic_accuracy"]
    assert not any(checks[n].get("skipped") for n in GOLDEN_CHECKS)
    return checks


def test_tiny_adapters_are_rejected_by_the_real_gate_and_a_forced_champion_is_met_on_the_same_items(
        home, prefect_harness, tmp_path):
    from flows.pipeline import distill_to_adapter
    from flows.promote import promote_adapter

    gate = load_domain(DOMAIN, "tiny").gate
    assert gate.min_semantic_accuracy == 0.5 and gate.min_golden_semantic_accuracy == 0.25
    assert gate.min_golden_improvement_over_base == 0.0 and gate.min_compile_rate == 0.9

    bad = distill_to_adapter(domain=DOMAIN, profile="tiny", overrides={"training.sft.max_steps": 1},
                             home=str(home.root))
    assert bad["adapter"]["status"] == "rejected"
    assert {"min_semantic_accuracy", *GOLDEN_CHECKS} <= set(bad["gate"]["failed"]), bad["gate"]["reasons"]
    _golden_checks_measured(bad)
    assert read_pointer(home.adapters, DOMAIN) is None

    weak = distill_to_adapter(domain=DOMAIN, profile="tiny", home=str(home.root))
    checks = _golden_checks_measured(weak)
    # 8 steps on 300 grammar examples: measured below the tiny profile's golden floor, so refused with it named
    assert weak["eval"]["candidate"]["golden"]["semantic_accuracy"] < gate.min_golden_semantic_accuracy
    assert weak["adapter"]["status"] == "rejected" and "min_golden_semantic_accuracy" in weak["gate"]["failed"]
    assert not checks["min_golden_semantic_accuracy"]["passed"]
    assert any(r.startswith("golden set: semantic accuracy") for r in weak["gate"]["reasons"])

    forced = promote_adapter(DOMAIN, weak["adapter"]["id"], force=True, reason="e2e: a champion to compare with",
                             home=str(home.root))
    assert forced["status"] == "promoted" and forced["forced"] is True
    champion = store.get_adapter(home.db, weak["adapter"]["id"])
    assert read_pointer(home.adapters, DOMAIN) == champion["path"]

    same = distill_to_adapter(domain=DOMAIN, profile="tiny", home=str(home.root))
    assert same["adapter"]["status"] == "rejected" and GOLDEN_CHECKS & set(same["gate"]["failed"])
    assert same["gate"]["previous_adapter_id"] == champion["adapter_id"]
    assert same["eval"]["champion"]["n"] == same["eval"]["candidate"]["n"] > 0  # the same items for both
    assert same["eval"]["champion"]["golden"]["n"] == same["eval"]["candidate"]["golden"]["n"] > 0
    assert same["eval"]["base"]["cached"] is True  # the base model was not generated again
    assert {c["name"] for c in same["gate"]["checks"] if c.get("skipped")} == set()  # a champion: nothing skipped
    assert read_pointer(home.adapters, DOMAIN) == champion["path"]
    assert [a["adapter_id"] for a in store.list_adapters(home.db, DOMAIN) if a["status"] == "promoted"] == \
        [champion["adapter_id"]]

    # a user's 200-row file: every metric with its interval, items traced to rows
    f = tmp_path / "eval.jsonl"
    rows = []
    for i in range(200):
        ex = generate_example(70_000_000 + i, TOPICS[i % len(TOPICS)], 1 + i % 3)
        rows.append(json.dumps({"prompt": ex["description"], "completion": ex["regex"], "positives": ex["positives"],
                                "negatives": ex["negatives"], "topic": ex["topic"], "source_id": i}))
    f.write_text("\n".join(rows) + "\n")
    env = {**os.environ, "LORAFORGE_HOME": str(home.root)}
    p = subprocess.run([sys.executable, "-m", "flows.cli", "evaluate", "--domain", DOMAIN, "--adapter", "promoted",
                        "--eval-file", str(f), "--json"], capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    m = json.loads(p.stdout.strip().splitlines()[-1])
    assert set(m) >= {"n", "n_excluded", "compile_rate", "semantic_accuracy", "semantic_accuracy_ci", "exact_match",
                      "mean_output_tokens", "latency_ms_p50", "latency_ms_p95", "redos_vulnerable_rate", "by_topic",
                      "compile_rate_ci", "exact_match_ci", "redos_vulnerable_rate_ci", "dfa_equivalence_rate",
                      "dfa_equivalence_rate_ci", "dfa_undecided", "p95_output_tokens", "tokens_per_s"}
    assert m["n"] + m["n_excluded"] + m["n_invalid"] == 200 and m["model_ref"] == champion["adapter_id"]
    lo, hi = m["semantic_accuracy_ci"]
    assert 0.0 <= lo <= m["semantic_accuracy"] <= hi <= 1.0
    assert store.table_count(home.db, "evaluation_items", "WHERE eval_id = ?", [m["eval_id"]]) == m["n"] + \
        m["n_excluded"]

    ls = subprocess.run([sys.executable, "-m", "flows.cli", "adapters", "ls", "--json", "--domain", DOMAIN],
                        capture_output=True, text=True, env=env, timeout=300)
    adapters = json.loads(ls.stdout.splitlines()[-1])["adapters"]
    assert [a["status"] for a in adapters] == ["rejected", "promoted", "rejected"]
    assert all(set(a) == {"id", "domain", "status", "dataset_id", "created_at", "metrics"} for a in adapters)
