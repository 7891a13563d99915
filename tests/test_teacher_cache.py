"""The raw-response cache behind the generation flow: stored before parsing, never paid for twice, re-derivable."""

from __future__ import annotations

import json
import logging

import pytest

from schemas.config import load_domain
from tasks import store
from tasks.generate import plan_requests
from tasks.teacher.mock_server import MockTeacherServer, request_key

KEY = "sk-test-CACHE-0042"


def _start(home, run_id: str, base_url: str, **overrides):
    cfg = load_domain("regex-python", "tiny", {
        "teacher.provider": "openai", "teacher.model": "mock-teacher", "teacher.base_url": base_url,
        "teacher.api_key_env": "LORAFORGE_CACHE_TEST_KEY", "teacher.batch_size": 40, "teacher.concurrency": 8,
        "dataset.n_requests": 100, **overrides})
    store.create_run(home.db, run_id, cfg.name, "tiny", cfg.teacher.provider, cfg.model_dump(mode="json"))
    return cfg


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("LORAFORGE_CACHE_TEST_KEY", KEY)


def test_a_rerun_makes_zero_calls_and_a_validator_change_rederives_from_the_cache(home, prefect_harness, key_env):
    from flows.generate import generate_examples
    from flows.validate import validate_examples

    with MockTeacherServer(faults={"wrong_positive": 0.1, "fence": 0.1}, seed=5) as srv:
        cfg = _start(home, "cache-1", srv.base_url)
        first = generate_examples("cache-1", home=str(home.root))
        counts1 = validate_examples("cache-1", home=str(home.root))["counts"]
        served = srv.requests_received
        assert first["sent"] == 100 and first["ok"] == 100 and served == 100

        _start(home, "cache-2", srv.base_url)  # the same plan again: all answered from the cache
        second = generate_examples("cache-2", home=str(home.root))
        assert second["cached"] == 100 and second["sent"] == 0 and srv.requests_received == served

        # a stricter validator (more positives required) re-derives the examples from the stored raw answers
        _start(home, "cache-3", srv.base_url, **{"validation.min_positives": 6})
        third = generate_examples("cache-3", home=str(home.root))
        counts3 = validate_examples("cache-3", home=str(home.root))["counts"]
        assert third["sent"] == 0 and srv.requests_received == served
    assert counts1["accepted"] > 50 and counts3["accepted"] == 0  # most pass (some are golden equivalents)
    assert counts3["requested"] == counts3["quarantined"] == 100
    assert max(srv.delivered.values()) == 1

    # the raw response is what the server sent, stored with the canonical request it answers
    reqs = {r.request_hash: r for r in plan_requests(cfg)}
    rows = store.load_teacher_calls(home.db, list(reqs))
    assert len(rows) == 100 and all(r["status"] == "ok" and r["attempts"] == 1 for r in rows.values())
    assert sum("```json" in r["raw_response"] for r in rows.values()) == srv.faults["fence"] > 0
    assert all(r["cost_usd"] == 0.0 and r["prompt_tokens"] > 0 for r in rows.values())  # no price: costs nothing
    assert {request_key(r.messages) for r in reqs.values()} == set(srv.delivered)


def test_failed_requests_are_stored_with_their_last_error_and_attempts_then_resent_on_the_next_run(
        home, prefect_harness, key_env, caplog):
    from flows.generate import generate_examples
    from flows.validate import validate_examples

    caplog.set_level(logging.DEBUG)
    with MockTeacherServer(faults={"500": 1.0}) as srv:
        _start(home, "fail-1", srv.base_url, **{"teacher.max_retries": 2, "dataset.n_requests": 10})
        res = generate_examples("fail-1", home=str(home.root))
        counts = validate_examples("fail-1", home=str(home.root))["counts"]
    assert res["failed"] == 10 and srv.requests_received == 30
    assert counts == {"requested": 10, "accepted": 0, "quarantined": 0, "failed": 10}
    hashes = [p["request_hash"] for p in store.planned_requests(home.db, "fail-1")]
    for row in store.load_teacher_calls(home.db, hashes).values():
        assert row["status"] == "failed" and row["attempts"] == 3
        assert row["error"].startswith("InternalServerError: HTTP 500")

    with MockTeacherServer() as healthy:  # the next run asks again for what failed, and only that
        _start(home, "fail-2", healthy.base_url, **{"teacher.max_retries": 2, "dataset.n_requests": 10})
        res2 = generate_examples("fail-2", home=str(home.root))
    assert res2["cached"] == 0 and res2["ok"] == 10 and healthy.requests_received == 10
    rows = store.load_teacher_calls(home.db, hashes).values()
    assert all(r["status"] == "ok" and r["attempts"] == 4 and r["error"] is None for r in rows)
    assert KEY not in caplog.text and KEY.encode() not in home.db.read_bytes()


def test_the_generation_artifact_and_stored_requests_hold_no_api_key(home, prefect_harness, key_env):
    from prefect.client.orchestration import get_client

    from flows.generate import generate_examples

    with MockTeacherServer(require_api_key=KEY) as srv:
        _start(home, "secret-1", srv.base_url, **{"dataset.n_requests": 20})
        res = generate_examples("secret-1", home=str(home.root))
    assert res["ok"] == 20  # the key was sent (the server checks it) ...
    assert KEY.encode() not in home.db.read_bytes()  # ... and stored nowhere

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts()

    import asyncio

    texts = [json.dumps(a.data, default=str) + str(a.description) for a in asyncio.run(artifacts())]
    assert texts and all(KEY not in t for t in texts)
