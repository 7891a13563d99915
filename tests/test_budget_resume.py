"""The spending cap holds for a run as a whole: across a kill and resumes, for attempts whose outcome is unknown,
and for answers that carry no ``usage`` (real client, loopback mock teacher)."""

from __future__ import annotations

import pytest
from reliability.helpers import cli, cli_env, configs_copy, kill_cli_after, last_json, write_domain

from schemas.config import TeacherConfig, load_domain
from schemas.example import RequestSpec
from schemas.run import Home
from tasks import store
from tasks.generate import estimate_generation, plan_requests
from tasks.teacher.limits import Budget
from tasks.teacher.mock_server import MockTeacherServer
from tasks.teacher.openai_teacher import OpenAITeacher

PRICES = {"mock-teacher": {"input_per_1k": 0.15, "output_per_1k": 0.6}}
DOMAIN = "budget-resume"


def _teacher(base_url: str, **kw) -> OpenAITeacher:
    cfg = TeacherConfig(provider="openai", model="mock-teacher", base_url=base_url, prices=PRICES, **kw)
    return OpenAITeacher(cfg, api_key="sk-test-budget", backoff_base_s=0.01)


PARAMS = {"dialect": "python", "n_positives": 5, "n_negatives": 5}  # the regex kind's request params


def _request(teacher: OpenAITeacher, seed: int = 900):
    return teacher.build_request("regex-python", RequestSpec(index=0, seed=seed, topic="text", difficulty=2),
                                 PARAMS)


def test_an_answer_without_usage_is_charged_by_a_local_token_count(monkeypatch):
    def no_usage(body, messages, content):
        answer = MockTeacherServer.__dict__["_completion"].__func__(body, messages, content)
        answer.pop("usage")
        return answer

    with MockTeacherServer() as srv:
        monkeypatch.setattr(srv, "_completion", no_usage)
        teacher = _teacher(srv.base_url)
        budget = Budget(max_cost_usd=10.0)
        [call] = teacher.complete_batch([_request(teacher)], budget)
    assert call.status == "ok" and call.raw_response
    assert call.prompt_tokens > 0 and call.completion_tokens > 0
    assert call.cost_usd > 0 and budget.spent_usd == pytest.approx(call.cost_usd)


def test_a_timed_out_attempt_is_charged_its_reserved_worst_case():
    with MockTeacherServer(faults={"timeout": 1.0}, timeout_sleep_s=3.0) as srv:
        teacher = _teacher(srv.base_url, timeout_s=0.5, max_retries=1)
        req = _request(teacher)
        worst = teacher._worst_case(req)[1]
        budget = Budget(max_cost_usd=worst * 10)
        [call] = teacher.complete_batch([req], budget)
    assert call.status == "failed" and call.attempts == 2
    # the server may have answered (and billed) both attempts: each counts its worst case
    assert call.cost_usd == pytest.approx(2 * worst)
    assert budget.spent_usd == pytest.approx(2 * worst)


def test_a_retry_after_an_unknown_outcome_needs_room_in_the_budget():
    with MockTeacherServer(faults={"timeout": 1.0}, timeout_sleep_s=3.0) as srv:
        teacher = _teacher(srv.base_url, timeout_s=0.5, max_retries=3)
        req = _request(teacher)
        worst = teacher._worst_case(req)[1]
        budget = Budget(max_cost_usd=worst * 1.5)  # room for one attempt's worst case, not two
        [call] = teacher.complete_batch([req], budget)
        received = srv.requests_received
    assert received == 1 and call.status == "failed" and "budget_exhausted" in call.error
    assert call.cost_usd == pytest.approx(worst) and budget.spent_usd <= budget.max_cost_usd


@pytest.mark.slow
def test_a_cap_holds_for_the_run_across_a_kill_and_two_resumes(tmp_path, monkeypatch, prefect_harness):
    with MockTeacherServer(latency_s=0.1) as srv:
        configs = configs_copy(tmp_path / "configs")
        keys = {"teacher.provider": "openai", "teacher.model": "mock-teacher", "teacher.base_url": srv.base_url,
                "teacher.api_key_env": "LF_BUDGET_UNSET_KEY", "teacher.prices": PRICES,
                "teacher.concurrency": 4, "teacher.store_every": 5, "teacher.batch_size": 50}
        write_domain(configs, DOMAIN, set_keys=keys)
        env = cli_env(tmp_path, LORAFORGE_CONFIGS=str(configs))
        monkeypatch.setenv("LORAFORGE_CONFIGS", str(configs))
        cfg = load_domain(DOMAIN, "tiny")
        n = cfg.dataset.n_requests
        estimate = estimate_generation(cfg)["cost_usd"]
        cap = round(0.3 * estimate, 6)
        write_domain(configs, DOMAIN, set_keys={**keys, "teacher.max_cost_usd": cap})
        home = Home.from_env(env["LORAFORGE_HOME"])
        hashes = [r.request_hash for r in plan_requests(load_domain(DOMAIN, "tiny"))]

        # 1. a new run, killed (-9) once about half the cap was asked for
        half = int(0.2 * n)  # a little past cap / 2 = 0.15 × the estimate: answers are stored a few at a time
        kill_cli_after(["generate", "--domain", DOMAIN, "--profile", "tiny", "--json"], env, srv, half,
                       tmp_path / "killed.log")
        run_id = next(r["run_id"] for r in store.list_runs(home.db))
        spent_at_kill = sum(v["cost_usd"] for v in store.teacher_calls_summary(home.db, hashes).values())
        assert 0 < spent_at_kill < cap

        # 2. resume the same run, then start a new run from it: each would have had a fresh cap before
        first = cli("generate", "--run", run_id, "--json", env=env)
        assert first.returncode == 0, first.stderr[-3000:]
        second = cli("rerun", run_id, "--from", "generate", "--json", env=env)
        assert second.returncode == 0, second.stderr[-3000:]
        assert last_json(second.stdout)["status"] == "budget_exhausted"

    calls = store.teacher_calls_summary(home.db, hashes)
    spent = sum(v["cost_usd"] for v in calls.values())
    print(f"BUDGET cap={cap} spent_at_kill={spent_at_kill:.6f} spent={spent:.6f} calls={calls}")
    assert spent <= cap
    assert sum(v["n"] for v in calls.values()) < n  # the cap, not the plan, ended generation
