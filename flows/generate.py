"""Generation stage: send the run's planned requests to the teacher, one Prefect task per batch.

Requests already answered (``ok`` in ``teacher_calls``) are never sent again, so a rerun or a resumed run
costs nothing for what is stored. Raw responses are stored before anything parses them.
"""

from __future__ import annotations

import pyarrow as pa
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows._common import progress_bar, run_config
from schemas.example import TeacherRequest
from schemas.run import Home
from tasks import store
from tasks.generate import calls_table, make_teacher, plan_requests


@task(name="call-teacher", cache_policy=NO_CACHE, tags=["teacher"], retries=2, retry_delay_seconds=[2, 10])
def call_teacher(teacher, requests: list[TeacherRequest], db: str) -> dict:
    """Send one batch of requests to the teacher and store the raw responses in DuckDB."""
    calls = teacher.complete_batch(requests)
    store.upsert_teacher_calls(db, calls_table(requests, calls))
    return {"ok": sum(c.status == "ok" for c in calls), "failed": sum(c.status == "failed" for c in calls)}


@flow(name="generate-examples", log_prints=True)
def generate_examples(run_id: str, home: str | None = None) -> dict:
    """Plan the run's teacher requests and fetch every one not already cached."""
    h = Home.from_env(home)
    cfg = run_config(h, run_id)
    teacher = make_teacher(cfg)
    requests = plan_requests(cfg, teacher)
    store.record_planned_requests(h.db, pa.Table.from_pylist([
        {"run_id": run_id, "request_hash": r.request_hash, "idx": r.spec.index, "topic": r.spec.topic,
         "outcome": "pending", "example_id": None, "reasons": []}
        for r in requests
    ]))
    cached = store.cached_call_hashes(h.db, [r.request_hash for r in requests])
    todo = [r for r in requests if r.request_hash not in cached]
    size = cfg.teacher.batch_size
    sent = {"ok": 0, "failed": 0}
    with progress_bar(f"generate ({teacher.name})", len(todo)) as advance:
        for start in range(0, len(todo), size):
            batch = todo[start:start + size]
            for k, v in call_teacher(teacher, batch, str(h.db)).items():
                sent[k] += v
            advance(len(batch))
    result = {"planned": len(requests), "cached": len(cached), "sent": len(todo), **sent}
    create_table_artifact(key="generation", table=[result], description=f"Teacher calls for run {run_id}")
    print(f"generation: {result}")
    return result
