"""A 5k-request run against a teacher that misbehaves on 20 % of requests still completes and accounts for all."""

from __future__ import annotations

import json

import pytest

from tasks import store
from tasks.teacher.mock_server import MockTeacherServer

pytestmark = pytest.mark.slow

# 20 % in all: transport and status faults (retried) and content faults (stored, then judged by validation)
FAULTS = {"429": 0.03, "500": 0.03, "timeout": 0.015, "reset": 0.03, "truncated": 0.03,
          "malformed": 0.015, "preamble": 0.015, "fence": 0.015, "redos": 0.01, "wrong_positive": 0.01}


def test_with_20_percent_mixed_faults_a_5k_run_completes_and_no_fully_delivered_answer_is_asked_again(
        home, prefect_harness):
    from flows.generate import generate_examples
    from flows.validate import snapshot_dataset, validate_examples
    from schemas.config import load_domain

    assert sum(FAULTS.values()) == pytest.approx(0.20)
    run_id = "faults-5k"
    with MockTeacherServer(latency_s=0.002, faults=FAULTS, timeout_sleep_s=6.0, seed=7) as srv:
        cfg = load_domain("regex-python", "tiny", {
            "teacher.provider": "openai", "teacher.model": "mock-teacher", "teacher.base_url": srv.base_url,
            "teacher.concurrency": 64, "teacher.timeout_s": 5.0, "teacher.max_retries": 6,
            "teacher.batch_size": 2500, "dataset.n_requests": 5000})
        store.create_run(home.db, run_id, cfg.name, "tiny", "openai", cfg.model_dump(mode="json"))
        gen = generate_examples(run_id, home=str(home.root))  # the generation run: teacher → cache → examples
        stats = srv.stats()
    summary = validate_examples(run_id, home=str(home.root))
    manifest = snapshot_dataset(run_id, home=str(home.root))
    c = summary["counts"]
    assert gen["sent"] == 5000 and not gen["budget_exhausted"]
    assert sum(manifest["counts"].values()) == c["accepted"]

    # every request issued is accounted for: cached ok + failed after retries = issued
    planned = [p["request_hash"] for p in store.planned_requests(home.db, run_id)]
    calls = store.teacher_calls_summary(home.db, planned)
    ok, failed = calls.get("ok", {}).get("n", 0), calls.get("failed", {}).get("n", 0)
    assert stats["distinct_requests"] == 5000 == ok + failed == c["requested"]
    assert c["requested"] == c["accepted"] + c["quarantined"] + c["failed"] and c["failed"] == failed

    # no request whose 200 was delivered in full was sent again; resends were of faulted, undelivered attempts
    # (the client's timeout is 5 s so that a starved CPU on a shared machine does not time out a delivered answer)
    print("FAULT-STATS " + json.dumps({k: v for k, v in stats.items() if k != "delivered"}))
    assert stats["resent_after_delivery"] == 0 and stats["max_full_deliveries"] == 1
    assert stats["responses_ok"] == ok
    attempts = sum(v["attempts"] for v in calls.values())
    assert attempts == stats["requests_received"]
    resent = stats["requests_received"] - stats["distinct_requests"]
    transport = sum(stats["faults"][k] for k in ("429", "500", "timeout", "reset", "truncated"))
    assert 0 < resent <= transport

    # content faults reached validation as stored raw answers and were judged there
    reasons = summary["quarantine_reasons"]
    assert reasons.get("malformed_output", 0) >= stats["faults"]["malformed"] > 0
    assert c["accepted"] > 0.8 * 5000
    print("FAULTS " + json.dumps({"issued": stats["distinct_requests"], "ok": ok, "failed_after_retries": failed,
                                  "http_requests": stats["requests_received"], "resent_in_flight": resent,
                                  "resent_after_full_delivery": stats["resent_after_delivery"],
                                  "faults": stats["faults"], "counts": c, "quarantine_reasons": reasons,
                                  "generate_seconds": gen["seconds"]}))
    from tasks.doctor import check_home  # issue 9: `loraforge doctor` finds the store consistent afterwards

    assert check_home(home)["ok"]
