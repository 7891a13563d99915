"""Batch API mode (``teacher.mode: batch``): JSONL upload, ``batches.create``, poll, download, resubmit failures.

One call of ``BatchRunner.run`` handles one chunk of requests: it writes them as a JSONL file (one line per
request, ``custom_id`` = request hash), uploads it through the files API, creates a batch, and records the
batch id in DuckDB (``teacher_batches``) *before* it polls. A run that crashes while the batch is running
finds the open batch for the same set of requests on its next start and resumes polling it instead of paying
twice. When the batch ends, the output file (answers) and the error file (failed lines) are downloaded; the
answers are stored through ``on_calls`` and only then is the batch marked ``consumed``. Lines that failed or
expired are resubmitted once, alone, in a new batch; what fails again is recorded as failed with its error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import openai

from schemas.example import TeacherCall, TeacherRequest, content_hash
from tasks import store
from tasks.teacher.limits import Budget, cost_usd
from tasks.teacher.openai_teacher import OpenAITeacher, local_token_count

log = logging.getLogger(__name__)
TERMINAL = {"completed", "failed", "expired", "cancelled"}


class BatchRunner:
    """Sends chunks of requests through the provider's Batch API; ``on_calls`` stores answers before anything else."""

    def __init__(self, teacher: OpenAITeacher, db: str, run_id: str,
                 on_calls: Callable[[list[TeacherRequest], list[TeacherCall]], None]) -> None:
        self.teacher, self.cfg, self.db, self.run_id, self.on_calls = teacher, teacher.cfg, db, run_id, on_calls

    def run(self, requests: list[TeacherRequest], budget: Budget | None = None) -> list[TeacherCall]:
        """One ``TeacherCall`` per request, in order (``not_sent`` where the budget did not allow it)."""
        return asyncio.run(self._run(requests, budget if budget is not None else Budget()))

    async def _run(self, requests: list[TeacherRequest], budget: Budget) -> list[TeacherCall]:
        factor = self.cfg.batch_price_factor
        reserved: dict[str, float] = {}
        calls: dict[str, TeacherCall] = {}
        to_send: list[TeacherRequest] = []
        for r in requests:
            worst = self.teacher._worst_case(r)[1] * factor
            if budget.try_reserve(worst):
                reserved[r.request_hash] = worst
                to_send.append(r)
            else:
                calls[r.request_hash] = TeacherCall(request_hash=r.request_hash, status="not_sent", attempts=0,
                                                    error=f"budget_exhausted: {budget.exhausted}")
        async with self.teacher.client() as base:
            client = base.with_options(max_retries=4)  # files/batches admin calls: the client's own retries
            pending = to_send
            for resubmission in (0, 1):
                if not pending:
                    break
                results = await self._one_batch(client, pending, resubmission)
                for r in pending:
                    call = results[r.request_hash].model_copy(update={"attempts": resubmission + 1})
                    calls[r.request_hash] = call
                    if call.status == "ok" or resubmission == 1:
                        budget.settle(reserved[r.request_hash], call.cost_usd)
                pending = [r for r in pending if results[r.request_hash].status != "ok"]
                if pending and resubmission == 0:
                    log.info("batch mode: resubmitting %d failed or expired lines once", len(pending))
        return [calls[r.request_hash] for r in requests]

    async def _one_batch(self, client: openai.AsyncOpenAI, reqs: list[TeacherRequest],
                         resubmission: int) -> dict[str, TeacherCall]:
        key = content_hash("batch", self.cfg.model, sorted(r.request_hash for r in reqs), resubmission, n=24)
        row = store.open_teacher_batch(self.db, key)
        if row is not None:
            batch_id = row["batch_id"]
            log.info("batch mode: resuming batch %s (%d requests) instead of creating a new one", batch_id, len(reqs))
        else:
            lines = "".join(json.dumps({"custom_id": r.request_hash, "method": "POST", "url": "/v1/chat/completions",
                                        "body": {"model": r.model, "messages": r.messages, **r.params}}) + "\n"
                            for r in reqs)
            upload = await client.files.create(file=("loraforge-requests.jsonl", lines.encode(), "application/jsonl"),
                                               purpose="batch")
            batch = await client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                                completion_window=self.cfg.batch_completion_window,  # type: ignore[arg-type]
                                                metadata={"loraforge_run": self.run_id, "batch_key": key})
            batch_id = batch.id
            store.record_teacher_batch(self.db, {
                "batch_id": batch_id, "batch_key": key, "run_id": self.run_id, "model": self.cfg.model,
                "status": batch.status, "input_file_id": upload.id, "output_file_id": None, "error_file_id": None,
                "n_requests": len(reqs), "resubmission": resubmission})
            log.info("batch mode: created batch %s with %d requests", batch_id, len(reqs))
        batch = await self._poll(client, batch_id)
        answers, errors = {}, {}
        if batch.output_file_id:
            answers = self._lines(await client.files.content(batch.output_file_id))
        if batch.error_file_id:
            errors = self._lines(await client.files.content(batch.error_file_id))
        results = {r.request_hash: self._call(r, answers.get(r.request_hash), errors.get(r.request_hash), batch.status)
                   for r in reqs}
        self.on_calls(reqs, [results[r.request_hash] for r in reqs])  # stored before the batch counts as consumed
        store.update_teacher_batch(self.db, batch_id, status="consumed", output_file_id=batch.output_file_id,
                                   error_file_id=batch.error_file_id)
        return results

    async def _poll(self, client: openai.AsyncOpenAI, batch_id: str):
        deadline = time.monotonic() + self.cfg.batch_max_wait_s
        last = None
        while True:
            batch = await client.batches.retrieve(batch_id)
            if batch.status != last:
                store.update_teacher_batch(self.db, batch_id, status=batch.status)
                last = batch.status
            if batch.status in TERMINAL:
                return batch
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} still {batch.status} after {self.cfg.batch_max_wait_s:.0f}s; "
                                   "rerun the generation to resume polling it")
            await asyncio.sleep(self.cfg.batch_poll_interval_s)

    @staticmethod
    def _lines(content) -> dict[str, dict]:
        out = {}
        for line in content.text.splitlines():
            if line.strip():
                row = json.loads(line)
                out[row.get("custom_id")] = row
        return out

    def _call(self, req: TeacherRequest, answer: dict | None, error: dict | None, batch_status: str) -> TeacherCall:
        h = req.request_hash
        response = (answer or {}).get("response") or {}
        if answer is not None and response.get("status_code") == 200:
            body = response.get("body") or {}
            usage = body.get("usage") or {}
            pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            choices = body.get("choices") or [{}]
            content = (choices[0].get("message") or {}).get("content")
            if not usage:  # no usage in the line: charged by a local (conservative) token count
                pt, ct = local_token_count(req, content if isinstance(content, str) else "", self.cfg.max_tokens)
            cost = cost_usd(pt, ct, self.cfg.price(), self.cfg.batch_price_factor)
            if isinstance(content, str):
                return TeacherCall(request_hash=h, status="ok", raw_response=content, prompt_tokens=pt,
                                   completion_tokens=ct, cost_usd=cost)
            return TeacherCall(request_hash=h, status="failed", prompt_tokens=pt, completion_tokens=ct,
                               cost_usd=cost, error=f"EmptyContent: finish_reason={choices[0].get('finish_reason')}")
        row = error or answer
        if row is not None:
            resp = row.get("response") or {}
            err = row.get("error") or ((resp.get("body") or {}).get("error")) or {}
            msg = self.teacher._scrub(str(err.get("message") or err), 160)
            return TeacherCall(request_hash=h, status="failed",
                               error=f"BatchLineFailed: HTTP {resp.get('status_code')}: {msg}")
        return TeacherCall(request_hash=h, status="failed", error=f"BatchLineMissing: batch ended {batch_status}")
