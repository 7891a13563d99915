"""The offline default teacher: answers each seeded request from the kind's grammar (``kind.grammar_answer``).

Same interface as ``OpenAITeacher`` (``build_request`` / ``complete_batch``), free and deterministic, so the
default run and most tests need no network. Its raw response is the same JSON an LLM teacher is asked for.
"""

from __future__ import annotations

import json
from typing import Any

from schemas.config import TeacherConfig
from schemas.example import RequestSpec, TeacherCall, TeacherRequest
from tasks.kinds import Kind, get_kind
from tasks.teacher.limits import Budget


class GrammarTeacher:
    name = "grammar"

    def __init__(self, cfg: TeacherConfig, kind: Kind | None = None):
        self.cfg = cfg
        self.kind = kind or get_kind()  # whose grammar answers

    def build_request(self, domain: str, spec: RequestSpec, params: dict[str, Any]) -> TeacherRequest:
        """``params``: the kind's part of the request (``kind.request_params``), what its grammar needs."""
        return TeacherRequest(domain=domain, teacher=self.name, model=self.cfg.model, spec=spec, params=params)

    def complete_batch(self, requests: list[TeacherRequest], budget: Budget | None = None,
                       on_calls=None) -> list[TeacherCall]:
        """Answer every request from the grammar (instant, so ``on_calls`` gets them all at the end)."""
        calls = []
        for req in requests:
            if budget is not None and not budget.try_reserve(0.0):  # free, but max_requests still applies
                calls.append(TeacherCall(request_hash=req.request_hash, status="not_sent", attempts=0,
                                         error=f"budget_exhausted: {budget.exhausted}"))
                continue
            try:
                raw = json.dumps(self.kind.grammar_answer(req.spec, req.params))
                calls.append(TeacherCall(request_hash=req.request_hash, status="ok", raw_response=raw,
                                         completion_tokens=len(raw) // 4))
            except Exception as e:  # a grammar bug must not lose the request: it is recorded as failed
                calls.append(TeacherCall(request_hash=req.request_hash, status="failed",
                                         error=f"{type(e).__name__}: {e}"[:500]))
        if on_calls is not None:
            on_calls(requests, calls)
        return calls
