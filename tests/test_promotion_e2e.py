"""End to end with the tiny student: a bad candidate is rejected with its failing checks named, a candidate that
clears the gate takes an empty slot, an identical second one is rejected for no significant improvement, and
`loraforge evaluate --eval-file` scores a user's 200-row file with every metric and its interval."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tasks import store
from tasks.registry import read_pointer
from tasks.teacher.grammar import TOPICS, generate_example

pytestmark = pytest.mark.slow
DOMAIN = "regex-python"
# The tiny profile's 8-step student is no good regex writer; this gate is one it can clear, so the test shows
# the registry mechanics (empty slot, champion comparison) with real training, generation and scoring.
LENIENT = {"gate.min_compile_rate": 0.0, "gate.min_semantic_accuracy": 0.0, "gate.max_mean_output_tokens": None,
           "gate.max_golden_regression": 0.05}


def test_bad_rejected_good_promoted_equal_rejected_and_cli_evaluate(home, prefect_harness, tmp_path):
    from flows.pipeline import distill_to_adapter

    bad = distill_to_adapter(domain=DOMAIN, profile="tiny", overrides={"training.sft.max_steps": 1},
                             home=str(home.root))
    assert bad["adapter"]["status"] == "rejected"
    assert {"min_compile_rate", "min_semantic_accuracy"} <= set(bad["gate"]["failed"])
    assert read_pointer(home.adapters, DOMAIN) is None

    good = distill_to_adapter(domain=DOMAIN, profile="tiny", overrides=LENIENT, home=str(home.root))
    assert good["adapter"]["status"] == "promoted" and good["gate"]["previous_adapter_id"] is None
    champion = store.get_adapter(home.db, good["adapter"]["id"])
    assert read_pointer(home.adapters, DOMAIN) == champion["path"]

    same = distill_to_adapter(domain=DOMAIN, profile="tiny", overrides=LENIENT, home=str(home.root))
    assert same["adapter"]["status"] == "rejected"
    assert "significant_improvement_over_champion" in same["gate"]["failed"]
    assert any(r.startswith("no significant improvement") for r in same["gate"]["reasons"])
    assert same["eval"]["champion"]["n"] == same["eval"]["candidate"]["n"] > 0  # the same items for both
    assert same["eval"]["base"]["cached"] is True  # the base model was not generated again
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
