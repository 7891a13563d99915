"""The offline default teacher: answers each seeded request from the synthetic grammar in ``grammar.py``.

Same interface as ``OpenAITeacher`` (``build_request`` / ``complete_batch``), free and deterministic, so the
default run and most tests need no network. Its raw response is the same JSON an LLM teacher is asked for.
"""

from __future__ import annotations

import json

from schemas.config import TeacherConfig
from schemas.example import RequestSpec, TeacherCall, TeacherRequest
from tasks.teacher.grammar import generate_example
from tasks.teacher.limits import Budget


class GrammarTeacher:
    name = "grammar"

    def __init__(self, cfg: TeacherConfig):
        self.cfg = cfg

    def build_request(self, domain: str, spec: RequestSpec, dialect: str, n_positives: int,
                      n_negatives: int) -> TeacherRequest:
        params = {"dialect": dialect, "n_positives": n_positives, "n_negatives": n_negatives}
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
                out = generate_example(req.spec.seed, req.spec.topic, req.spec.difficulty,
                                       req.params["n_positives"], req.params["n_negatives"], style=req.spec.style,
                                       dialect=req.params.get("dialect", "python"))
                # concept family and style ride along in the stored raw response (the parser ignores extra keys)
                raw = json.dumps({k: out[k] for k in ("description", "regex", "positives", "negatives", "concept",
                                                      "style")})
                calls.append(TeacherCall(request_hash=req.request_hash, status="ok", raw_response=raw,
                                         completion_tokens=len(raw) // 4))
            except Exception as e:  # a grammar bug must not lose the request: it is recorded as failed
                calls.append(TeacherCall(request_hash=req.request_hash, status="failed",
                                         error=f"{type(e).__name__}: {e}"[:500]))
        if on_calls is not None:
            on_calls(requests, calls)
        return calls
