"""Request planning and teacher calls for the generation stage (batch in, Arrow table out).

Every request is built from a seeded spec (topic × difficulty × seed) so N requests are N different
asks, and hashed canonically; that hash is the cache key, so a rerun sends only what is not stored yet.
"""

from __future__ import annotations

import json
import random

import pyarrow as pa

from schemas.config import DomainConfig
from schemas.example import RequestSpec, TeacherCall, TeacherRequest, content_hash
from tasks.store import now
from tasks.teacher.grammar_teacher import GrammarTeacher


def make_teacher(cfg: DomainConfig, api_key: str | None = None):
    """The domain's teacher; both kinds expose ``build_request`` and ``complete_batch``."""
    if cfg.teacher.provider == "grammar":
        return GrammarTeacher(cfg.teacher)
    from tasks.teacher.openai_teacher import OpenAITeacher

    return OpenAITeacher(cfg.teacher, api_key=api_key)


def plan_specs(cfg: DomainConfig) -> list[RequestSpec]:
    """Deterministic specs for the domain's ``dataset.n_requests`` requests (same config → same specs)."""
    rng = random.Random(content_hash("plan", cfg.name, cfg.seed))
    topics, t_weights = zip(*sorted(cfg.task.topics.items()), strict=True)
    diffs, d_weights = zip(*sorted(cfg.task.difficulties.items()), strict=True)
    n = cfg.dataset.n_requests
    chosen_topics = rng.choices(topics, weights=t_weights, k=n)
    chosen_diffs = rng.choices(diffs, weights=d_weights, k=n)
    return [
        RequestSpec(index=i, seed=int(content_hash("seed", cfg.seed, i), 16) % 2**31,
                    topic=chosen_topics[i], difficulty=chosen_diffs[i])
        for i in range(n)
    ]


def plan_requests(cfg: DomainConfig, teacher) -> list[TeacherRequest]:
    return [
        teacher.build_request(cfg.name, spec, cfg.task.dialect, cfg.teacher.n_positives, cfg.teacher.n_negatives)
        for spec in plan_specs(cfg)
    ]


def calls_table(requests: list[TeacherRequest], calls: list[TeacherCall]) -> pa.Table:
    """Rows for ``teacher_calls``: the canonical request next to its raw response."""
    ts = now()
    return pa.Table.from_pylist([
        {
            "request_hash": c.request_hash, "teacher": r.teacher, "model": r.model,
            "request_json": json.dumps(r.model_dump(exclude={"domain"}), sort_keys=True), "status": c.status,
            "raw_response": c.raw_response, "attempts": c.attempts, "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens, "cost_usd": c.cost_usd, "error": c.error, "created_at": ts,
        }
        for r, c in zip(requests, calls, strict=True)
    ])
