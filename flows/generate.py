"""Generation stage: send the run's planned requests to the teacher, one Prefect task per batch.

Requests already answered (``ok`` in ``teacher_calls``) are never sent again, so a rerun or a resumed run
costs nothing for what is stored. Raw responses are stored before anything parses them.

Budget: ``teacher.max_cost_usd`` / ``teacher.max_requests`` cap what the run spends over all its attempts: the
budget starts from what ``teacher_calls`` already holds for the run's planned requests (every attempt, unknown
outcomes at their worst case), so a resumed generation (``loraforge generate --run ID``) or a rerun of the same
plan never gets the cap a second time. Each attempt reserves its worst-case cost before it is sent; once the
next one would cross a cap nothing more is sent, the batches stop, and the planned requests that were never
sent move from ``run_requests`` to ``teacher_unsent`` (reason ``budget_exhausted``). So a run's ``requested``
counts only requests that were asked (or answered from the cache), and ``requested = accepted + quarantined +
failed`` holds; the unsent ones are in their own table and in this stage's result (``not_sent``), and the
pipeline ends ``budget_exhausted``. Limit: a process killed mid-batch loses the answers it had not stored yet
(at most ``teacher.concurrency`` in flight + ``teacher.store_every`` unstored); the server may have billed them,
and ``teacher_calls`` does not know it.
"""

from __future__ import annotations

import time

import pyarrow as pa
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows._common import dask_requested, progress_bar, run_config
from schemas.example import TeacherCall, TeacherRequest
from schemas.run import Home
from tasks import store
from tasks.generate import calls_table, make_teacher, plan_requests
from tasks.teacher.limits import Budget


def _tally(calls: list[TeacherCall]) -> dict:
    return {"ok": sum(c.status == "ok" for c in calls), "failed": sum(c.status == "failed" for c in calls),
            "not_sent": [c.request_hash for c in calls if c.status == "not_sent"],
            "attempts": sum(c.attempts for c in calls), "cost_usd": sum(c.cost_usd for c in calls),
            "prompt_tokens": sum(c.prompt_tokens for c in calls),
            "completion_tokens": sum(c.completion_tokens for c in calls)}


@task(name="call-teacher", cache_policy=NO_CACHE, tags=["teacher"], retries=2, retry_delay_seconds=[2, 10])
def call_teacher(teacher, requests: list[TeacherRequest], db: str, budget: Budget | None = None,
                 advance=None) -> dict:
    """Send one batch of requests to the teacher and store the raw responses in DuckDB (``advance(n)`` moves a
    progress bar as they are stored)."""
    stored = store.cached_call_hashes(db, [r.request_hash for r in requests])  # a task retry resends nothing stored
    if advance is not None:
        advance(len(stored))
    requests = [r for r in requests if r.request_hash not in stored]

    def on_calls(reqs: list[TeacherRequest], done: list[TeacherCall]) -> None:
        store.upsert_teacher_calls(db, calls_table(reqs, done))
        if advance is not None:
            advance(sum(c.status != "not_sent" for c in done))

    calls = teacher.complete_batch(requests, budget, on_calls=on_calls)  # stored before anything parses them
    return _tally(calls)


@task(name="call-teacher-batch-api", cache_policy=NO_CACHE, tags=["teacher"], retries=2,
      retry_delay_seconds=[5, 30])
def call_teacher_batch_api(teacher, requests: list[TeacherRequest], db: str, run_id: str,
                           budget: Budget | None = None) -> dict:
    """Send one chunk through the Batch API (resuming a persisted batch id); answers are stored before use."""
    from tasks.teacher.batch import BatchRunner

    stored = store.cached_call_hashes(db, [r.request_hash for r in requests])
    requests = [r for r in requests if r.request_hash not in stored]
    runner = BatchRunner(teacher, db, run_id,
                         on_calls=lambda reqs, calls: store.upsert_teacher_calls(db, calls_table(reqs, calls)))
    return _tally(runner.run(requests, budget))


@task(name="answer-batch", cache_policy=NO_CACHE, tags=["teacher"], retries=2, retry_delay_seconds=[2, 10])
def answer_batch(teacher, requests: list[dict]) -> list[dict]:
    """Ask the teacher one batch on a task-runner worker (e.g. Dask); returns the raw answers, stores nothing.

    Requests and answers travel as plain dicts (they cross process boundaries)."""
    calls = teacher.complete_batch([TeacherRequest.model_validate(r) for r in requests])
    return [c.model_dump() for c in calls]


def answer_on_dask(teacher, todo: list[TeacherRequest], size: int, db: str, budget: Budget) -> dict:
    """All batches at once on the flow's task runner (a Dask cluster); each answer is stored as it arrives.

    Workers only talk to the teacher; this process is the one DuckDB writer. A spending cap needs one shared
    budget, which separate worker processes cannot share, so caps require the default runner."""
    if budget.limited:
        raise ValueError("teacher.max_cost_usd / teacher.max_requests need the default task runner "
                         "(teacher.task_runner: thread): Dask workers cannot share one budget")
    futures = [(todo[i:i + size], answer_batch.submit(teacher, [r.model_dump() for r in todo[i:i + size]]))
               for i in range(0, len(todo), size)]
    totals = {"ok": 0, "failed": 0, "attempts": 0, "cost_usd": 0.0, "prompt_tokens": 0, "completion_tokens": 0}
    with progress_bar(f"generate ({teacher.name}, dask)", len(todo)) as advance:
        for batch, fut in futures:
            calls = [TeacherCall.model_validate(c) for c in fut.result()]
            store.upsert_teacher_calls(db, calls_table(batch, calls))
            tally = _tally(calls)
            tally.pop("not_sent")
            for k in totals:
                totals[k] += tally[k]
            advance(len(batch))
    return totals


@flow(name="generate-examples", log_prints=True)
def generate_examples(run_id: str, home: str | None = None) -> dict:
    """Plan the run's teacher requests and fetch every one not already cached, within the budget (a focused run
    plans part of them from the champion's failure report recorded at its start)."""
    t0 = time.perf_counter()
    h = Home.from_env(home)
    cfg = run_config(h, run_id)
    teacher = make_teacher(cfg)
    plan = store.focus_plan(h.db, run_id) if cfg.dataset.focus == "failures" else None
    if cfg.dataset.focus == "failures" and plan is None:
        raise ValueError(f"run {run_id!r} is a focused run (dataset.focus: failures) without a failure report; start"
                         " it with `loraforge run --focus failures`, which records the champion's report first")
    requests = plan_requests(cfg, teacher, focus_report=plan["report"] if plan else None)
    store.record_planned_requests(h.db, pa.Table.from_pylist([
        {"run_id": run_id, "request_hash": r.request_hash, "idx": r.spec.index, "topic": r.spec.topic,
         "outcome": "pending", "example_id": None, "reasons": []}
        for r in requests
    ]))
    cached = store.cached_call_hashes(h.db, [r.request_hash for r in requests])
    todo = [r for r in requests if r.request_hash not in cached]
    spent_before, sent_before = store.teacher_spend(h.db, [r.request_hash for r in requests])
    budget = Budget.from_config(cfg.teacher, spent_usd=spent_before, issued=sent_before)  # the cap is per run
    batch_api = cfg.teacher.provider == "openai" and cfg.teacher.mode == "batch"
    size = cfg.teacher.batch_size
    sent = {"ok": 0, "failed": 0, "attempts": 0, "cost_usd": 0.0, "prompt_tokens": 0, "completion_tokens": 0}
    unsent: list[str] = []
    done = 0
    if dask_requested(cfg):  # scale-out: every batch on the flow's Dask cluster; answers stored here (one writer)
        for k, v in answer_on_dask(teacher, todo, size, str(h.db), budget).items():
            sent[k] += v
        done = len(todo)
    with progress_bar(f"generate ({teacher.name}{', batch API' if batch_api else ''})", len(todo)) as advance:
        for start in range(done, len(todo), size):
            if budget.exhausted:
                break
            batch = todo[start:start + size]
            if batch_api:
                res = call_teacher_batch_api(teacher, quote(batch), str(h.db), run_id, quote(budget))
                advance(len(batch))
            else:  # the bar moves as answers are stored
                res = call_teacher(teacher, quote(batch), str(h.db), quote(budget), quote(advance))
            unsent += res.pop("not_sent")
            for k, v in res.items():
                sent[k] += v
            done = start + len(batch)
    unsent += [r.request_hash for r in todo[done:]]
    store.mark_unsent(h.db, run_id, unsent, "budget_exhausted")  # an empty list clears a resumed run's old set
    result = {"planned": len(requests), "cached": len(cached), "sent": len(todo) - len(unsent), **sent,
              "not_sent": len(unsent), "cost_usd": round(sent["cost_usd"], 6),
              "run_cost_usd": round(spent_before + sent["cost_usd"], 6),
              "budget_exhausted": budget.exhausted is not None, "budget_cap": budget.exhausted,
              "max_cost_usd": cfg.teacher.max_cost_usd, "max_requests": cfg.teacher.max_requests,
              "seconds": round(time.perf_counter() - t0, 2)}
    create_table_artifact(key="generation", table=[result], description=f"Teacher calls for run {run_id}")
    print(f"generation: {result}")
    return result


class BudgetExhausted(Exception):  # noqa: N818 - it names the run status it leads to
    """Generation stopped at ``teacher.max_cost_usd`` / ``max_requests``; the pipeline ends ``budget_exhausted``."""
