"""Rate limits, the budget cap and cost accounting of the OpenAI-compatible teacher (real client, loopback mock)."""

from __future__ import annotations

import asyncio

import pytest

from schemas.config import ConfigError, ModelPrice, TeacherConfig, load_domain
from schemas.example import RequestSpec
from tasks.generate import estimate_generation, plan_requests
from tasks.teacher.limits import Budget, RateLimits, cost_usd
from tasks.teacher.mock_server import MockTeacherServer
from tasks.teacher.openai_teacher import OpenAITeacher

PRICES = {"mock-teacher": {"input_per_1k": 0.5, "output_per_1k": 1.5}}


def _teacher(base_url: str, **kw) -> OpenAITeacher:
    cfg = TeacherConfig(provider="openai", model="mock-teacher", base_url=base_url, prices=PRICES, **kw)
    return OpenAITeacher(cfg, api_key="sk-test-limits", backoff_base_s=0.01)


PARAMS = {"dialect": "python", "n_positives": 5, "n_negatives": 5}  # the regex kind's request params


def _requests(teacher: OpenAITeacher, n: int, first_seed: int = 500):
    return [teacher.build_request("regex-python", RequestSpec(index=i, seed=first_seed + i, topic="text",
                                                              difficulty=1 + i % 3), PARAMS)
            for i in range(n)]


def test_cost_is_tokens_times_the_price_table_and_stored_on_each_call():
    price = ModelPrice(input_per_1k=0.5, output_per_1k=1.5)
    assert cost_usd(1000, 2000, price) == pytest.approx(3.5)
    assert cost_usd(1000, 2000, price, factor=0.5) == pytest.approx(1.75)
    with MockTeacherServer() as srv:
        teacher = _teacher(srv.base_url, concurrency=4)
        calls = teacher.complete_batch(_requests(teacher, 6))
    for c in calls:
        assert c.status == "ok" and c.prompt_tokens > 0 and c.completion_tokens > 0
        assert c.cost_usd == pytest.approx(cost_usd(c.prompt_tokens, c.completion_tokens, price))


def test_a_budget_never_reserves_past_its_caps_and_settles_to_the_real_cost():
    b = Budget(max_cost_usd=1.0)
    assert b.try_reserve(0.4) and b.try_reserve(0.4)
    assert not b.try_reserve(0.4) and b.exhausted == "max_cost_usd"
    assert not b.try_reserve(0.01)  # once exhausted, nothing more is sent even if it would fit
    b.settle(0.4, 0.1)
    b.settle(0.4, 0.2)
    assert b.spent_usd == pytest.approx(0.3) and b.issued == 2
    r = Budget(max_requests=3)
    assert [r.try_reserve(0.0) for _ in range(5)] == [True, True, True, False, False]
    assert r.exhausted == "max_requests"
    assert Budget().try_reserve(1e9)  # no caps: always allowed


def test_a_spending_cap_stops_sending_before_it_is_crossed_and_unsent_requests_say_why():
    with MockTeacherServer() as srv:
        teacher = _teacher(srv.base_url, concurrency=8)
        reqs = _requests(teacher, 40)
        worst = teacher._worst_case(reqs[0])[1]
        budget = Budget(max_cost_usd=worst * 10.5)
        calls = teacher.complete_batch(reqs, budget)
        received = srv.requests_received
    sent = [c for c in calls if c.status != "not_sent"]
    unsent = [c for c in calls if c.status == "not_sent"]
    assert 10 <= len(sent) < 40 and len(sent) + len(unsent) == 40
    assert received == len(sent)  # a not_sent request never reached the server
    assert sum(c.cost_usd for c in sent) <= budget.max_cost_usd
    assert budget.spent_usd == pytest.approx(sum(c.cost_usd for c in sent))
    assert all(c.error == "budget_exhausted: max_cost_usd" and c.attempts == 0 for c in unsent)


def test_max_requests_caps_the_number_of_requests_sent_not_the_attempts():
    with MockTeacherServer(faults={"500": 0.3}, seed=2) as srv:
        teacher = _teacher(srv.base_url, concurrency=4, max_retries=8)
        calls = teacher.complete_batch(_requests(teacher, 20), Budget(max_requests=12))
        received = srv.requests_received
    sent = [c for c in calls if c.status != "not_sent"]
    assert len(sent) == 12 and all(c.status == "ok" for c in sent)
    assert received == sum(c.attempts for c in sent) > 12  # retries of a sent request are not new requests


def test_with_an_rpm_limit_below_the_servers_the_server_never_has_to_answer_429():
    # the server allows 25 requests per 2 s sliding window (750 RPM); the client is limited to 600 RPM
    with MockTeacherServer(rate_limit_rpm=750, rate_limit_window_s=2.0) as srv:
        teacher = _teacher(srv.base_url, concurrency=32, rpm=600)
        calls = teacher.complete_batch(_requests(teacher, 60))
        limited = srv.rate_limited
    assert all(c.status == "ok" and c.attempts == 1 for c in calls)
    assert limited == 0


def test_without_an_rpm_limit_the_servers_429s_are_retried_after_retry_after():
    with MockTeacherServer(rate_limit_rpm=600, rate_limit_window_s=1.0) as srv:
        teacher = _teacher(srv.base_url, concurrency=32, max_retries=10)
        calls = teacher.complete_batch(_requests(teacher, 30))
        limited = srv.rate_limited
    assert limited > 0  # the burst went over the server's limit ...
    assert all(c.status == "ok" for c in calls) and any(c.attempts > 1 for c in calls)  # ... and still completed


def test_the_tpm_limiter_admits_a_request_larger_than_one_seconds_worth_of_tokens():
    async def go():
        limits = RateLimits(rpm=None, tpm=600)  # 10 tokens/s, bucket of 60
        await limits.acquire(5000)  # clamped to the bucket: waits at most one bucket, never raises
        return True

    assert asyncio.run(go())


def test_structured_output_modes_shape_the_request_and_change_the_cache_key():
    spec = RequestSpec(index=0, seed=3, topic="text", difficulty=2)
    reqs = {}
    for mode in ("json_schema", "json_object", "none"):
        cfg = TeacherConfig(provider="openai", model="m", base_url="http://127.0.0.1:9/v1", structured_output=mode)
        reqs[mode] = OpenAITeacher(cfg, api_key="k").build_request("d", spec, PARAMS)
    assert reqs["json_schema"].params["response_format"]["type"] == "json_schema"
    assert reqs["json_object"].params["response_format"] == {"type": "json_object"}
    assert "response_format" not in reqs["none"].params
    assert len({r.request_hash for r in reqs.values()}) == 3
    with MockTeacherServer() as srv:
        cfg = TeacherConfig(provider="openai", model="m", base_url=srv.base_url, structured_output="none")
        calls = OpenAITeacher(cfg, api_key="k").complete_batch([reqs["none"]])
    assert calls[0].status == "ok" and '"regex"' in calls[0].raw_response


def test_without_fallback_a_server_rejecting_response_format_fails_the_request_with_its_reason():
    with MockTeacherServer(reject_response_format=True) as srv:
        teacher = _teacher(srv.base_url, structured_output_fallback=False, max_retries=3)
        calls = teacher.complete_batch(_requests(teacher, 2))
    assert all(c.status == "failed" and c.attempts == 1 and "HTTP 400" in c.error for c in calls)


def test_a_spending_cap_without_a_price_for_the_model_is_a_config_error():
    with pytest.raises(ConfigError, match="teacher.prices has no entry for model 'gpt-x'"):
        load_domain("regex-python", "tiny", {"teacher.provider": "openai", "teacher.model": "gpt-x",
                                              "teacher.max_cost_usd": 5})


def test_the_estimate_counts_requests_tokens_and_dollars_without_a_key_or_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = load_domain("regex-python", "tiny", {
        "teacher.provider": "openai", "teacher.model": "mock-teacher", "teacher.base_url": "https://api.example.com/v1",
        "teacher.prices": PRICES, "teacher.est_completion_tokens": 150})
    db = tmp_path / "absent.duckdb"
    est = estimate_generation(cfg, db)
    n = cfg.dataset.n_requests
    assert est["requests"] == est["planned"] == n and est["cached"] == 0 and not db.exists()
    assert est["completion_tokens"] == 150 * n and est["prompt_tokens"] > 100 * n
    assert est["cost_usd"] == pytest.approx(cost_usd(est["prompt_tokens"], est["completion_tokens"],
                                                     cfg.teacher.price()), rel=1e-4)
    assert est["cost_usd_upper_bound"] > est["cost_usd"]
    batch = estimate_generation(cfg.model_copy(update={"teacher": cfg.teacher.model_copy(update={"mode": "batch"})}))
    assert batch["cost_usd"] == pytest.approx(est["cost_usd"] * cfg.teacher.batch_price_factor, rel=1e-4)
    assert len(plan_requests(cfg)) == n
