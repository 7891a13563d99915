"""Batch API mode: JSONL upload, batch create, poll, download; failed lines resubmitted once; crashed runs resume."""

from __future__ import annotations

import pytest

from schemas.config import TeacherConfig, load_domain
from schemas.example import RequestSpec
from tasks import store
from tasks.generate import calls_table
from tasks.kinds import get_kind
from tasks.teacher.batch import BatchRunner
from tasks.teacher.limits import Budget
from tasks.teacher.mock_server import MockTeacherServer
from tasks.teacher.openai_teacher import OpenAITeacher, parse_teacher_output

BATCH = {"teacher.mode": "batch", "teacher.batch_poll_interval_s": 0.05}


def _teacher(base_url: str) -> OpenAITeacher:
    cfg = TeacherConfig(provider="openai", model="mock-teacher", base_url=base_url, mode="batch",
                        batch_poll_interval_s=0.05, prices={"mock-teacher": {"input_per_1k": 1, "output_per_1k": 2}})
    return OpenAITeacher(cfg, api_key="sk-test-batch")


OUTPUT = get_kind("regex").output_model
PARAMS = {"dialect": "python", "n_positives": 5, "n_negatives": 5}  # the regex kind's request params


def _requests(teacher: OpenAITeacher, n: int):
    return [teacher.build_request("regex-python", RequestSpec(index=i, seed=900 + i, topic="dates", difficulty=2),
                                  PARAMS) for i in range(n)]


def test_a_batch_run_with_10_percent_failed_lines_finishes_and_resubmits_exactly_those_once(home, prefect_harness):
    from flows.generate import generate_examples
    from flows.validate import validate_examples

    with MockTeacherServer(batch_line_failure_rate=0.1, seed=11) as srv:
        cfg = load_domain("regex-python", "tiny", {
            "teacher.provider": "openai", "teacher.model": "mock-teacher", "teacher.base_url": srv.base_url,
            "dataset.n_requests": 200, "teacher.batch_size": 200, **BATCH,
            "teacher.prices": {"mock-teacher": {"input_per_1k": 1, "output_per_1k": 2}}})
        store.create_run(home.db, "batch-1", cfg.name, "tiny", "openai", cfg.model_dump(mode="json"))
        gen = generate_examples("batch-1", home=str(home.root))
        counts = validate_examples("batch-1", home=str(home.root))["counts"]
        lines, chat = dict(srv.batch_lines), srv.requests_received
    assert chat == 0 and srv.batches_created == 2  # the original batch and one resubmission, no chat calls
    resubmitted = {h for h, n in lines.items() if n == 2}
    assert len(lines) == 200 and max(lines.values()) == 2 and 5 <= len(resubmitted) <= 40
    calls = store.load_teacher_calls(home.db, list(lines))
    assert {h for h, c in calls.items() if c["attempts"] == 2} == resubmitted
    assert all(c["attempts"] == 1 and c["status"] == "ok" for h, c in calls.items() if h not in resubmitted)
    failed = [c for c in calls.values() if c["status"] == "failed"]  # failed twice: recorded with the line's error
    assert all(c["error"].startswith("BatchLineFailed: HTTP 500") for c in failed)
    assert gen["ok"] + gen["failed"] == 200 and gen["failed"] == len(failed)
    assert counts["requested"] == 200 == counts["accepted"] + counts["quarantined"] + counts["failed"]
    assert counts["failed"] == len(failed) and counts["accepted"] > 150
    batches = store.teacher_batches(home.db, "batch-1")
    assert [b["resubmission"] for b in batches] == [0, 1] and {b["status"] for b in batches} == {"consumed"}
    assert [b["n_requests"] for b in batches] == [200, len(resubmitted)]
    ok = next(c for c in calls.values() if c["status"] == "ok")
    assert ok["cost_usd"] > 0 and parse_teacher_output(ok["raw_response"], OUTPUT).regex  # discounted cost, real answer


def test_a_run_that_crashed_after_creating_a_batch_resumes_polling_it_instead_of_paying_twice(home):
    db = str(home.db)
    store.init_db(db)
    with MockTeacherServer() as srv:
        teacher = _teacher(srv.base_url)
        reqs = _requests(teacher, 30)

        def crash(reqs_, calls_):
            raise RuntimeError("process killed before the answers were stored")

        with pytest.raises(RuntimeError, match="process killed"):
            BatchRunner(teacher, db, "crashed-run", on_calls=crash).run(reqs)
        (row,) = store.teacher_batches(db)
        assert row["status"] == "completed" and row["n_requests"] == 30 and srv.batches_created == 1

        stored = []

        def keep(reqs_, calls_):
            store.upsert_teacher_calls(db, calls_table(reqs_, calls_))
            stored.extend(calls_)

        calls = BatchRunner(_teacher(srv.base_url), db, "resumed-run", on_calls=keep).run(reqs)
        assert srv.batches_created == 1 and sum(srv.batch_lines.values()) == 30  # the same batch, polled again
    assert [c.status for c in calls] == ["ok"] * 30 and len(stored) == 30
    assert store.teacher_batches(db)[0]["status"] == "consumed"
    assert len(store.load_teacher_calls(db, [r.request_hash for r in reqs])) == 30


def test_batch_mode_respects_the_spending_cap_before_uploading(home):
    db = str(home.db)
    store.init_db(db)
    with MockTeacherServer() as srv:
        teacher = _teacher(srv.base_url)
        reqs = _requests(teacher, 20)
        worst = teacher._worst_case(reqs[0])[1] * teacher.cfg.batch_price_factor
        budget = Budget(max_cost_usd=worst * 8.5)
        calls = BatchRunner(teacher, db, "capped", on_calls=lambda r, c: None).run(reqs, budget)
        lines = sum(srv.batch_lines.values())
    assert [c.status for c in calls].count("not_sent") == 12 and lines == 8
    assert 0 < budget.spent_usd <= budget.max_cost_usd
