"""Request planning and teacher calls for the generation stage (batch in, Arrow table out).

Every request is built from a seeded spec (topic × difficulty × seed) so N requests are N different
asks, and hashed canonically; that hash is the cache key, so a rerun sends only what is not stored yet.
``estimate_generation`` prices a plan before anything is spent (``loraforge run --dry-run``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa

from schemas.config import DomainConfig
from schemas.example import RequestSpec, TeacherCall, TeacherRequest, content_hash
from tasks.kinds import get_kind
from tasks.store import now
from tasks.teacher.grammar_teacher import GrammarTeacher


def make_teacher(cfg: DomainConfig, api_key: str | None = None):
    """The domain's teacher for its kind; both teachers expose ``build_request`` and ``complete_batch(requests,
    budget)``."""
    kind = get_kind(cfg.task.kind)
    if cfg.teacher.provider == "grammar":
        return GrammarTeacher(cfg.teacher, kind)
    from tasks.teacher.openai_teacher import OpenAITeacher

    return OpenAITeacher(cfg.teacher, kind=kind, api_key=api_key)


def uniform_specs(cfg: DomainConfig, n: int, salt: str | None = None) -> list[RequestSpec]:
    """``n`` deterministic specs drawn from the domain's topic, difficulty and style weights (same config and salt
    → same specs; ``salt`` gives a run of the same domain other requests, e.g. a focused run's uniform share)."""
    if not cfg.task.topics:
        raise ValueError(f"domain {cfg.name!r}: task.topics is empty; name the topics to draw requests from")
    key = (cfg.seed,) if salt is None else (cfg.seed, salt)  # unsalted: the plans stored before salts existed
    rng = random.Random(content_hash("plan", cfg.name, *key))
    topics, t_weights = zip(*sorted(cfg.task.topics.items()), strict=True)
    diffs, d_weights = zip(*sorted(cfg.task.difficulties.items()), strict=True)
    chosen_topics = rng.choices(topics, weights=t_weights, k=n)
    chosen_diffs = rng.choices(diffs, weights=d_weights, k=n)
    chosen_styles: list[str | None] = [None] * n  # no styles named: the teacher draws one per request
    if cfg.task.styles:  # own stream: topics stay as they were
        styles, s_weights = zip(*sorted(cfg.task.styles.items()), strict=True)
        chosen_styles = random.Random(content_hash("styles", cfg.name, *key)).choices(styles, weights=s_weights, k=n)
    return [
        RequestSpec(index=i, seed=int(content_hash("seed", *key, i), 16) % 2**31,
                    topic=chosen_topics[i], difficulty=chosen_diffs[i], style=chosen_styles[i])
        for i in range(n)
    ]


def plan_specs(cfg: DomainConfig, focus_report: dict | None = None) -> list[RequestSpec]:
    """Deterministic specs for the domain's ``dataset.n_requests`` requests (same config → same specs).

    With the champion's failure report (a focused run, tasks/focus.py) ``dataset.focus_share`` of them are focused
    on its failing items and the uniform rest gets seeds of its own."""
    if focus_report is None:
        return uniform_specs(cfg, cfg.dataset.n_requests)
    from tasks import focus

    n_uniform, n_focused = focus.split_budget(cfg)
    focused = focus.focused_specs(cfg, focus_report, n_focused, start=n_uniform)
    n_uniform += n_focused - len(focused)  # no failing item to anchor on: the share stays uniform
    return uniform_specs(cfg, n_uniform, focus.uniform_salt(focus_report)) + focused


def plan_requests(cfg: DomainConfig, teacher=None, focus_report: dict | None = None) -> list[TeacherRequest]:
    """The run's canonical requests; ``teacher=None`` builds them without a client (no API key needed)."""
    kind = get_kind(cfg.task.kind)
    params = kind.request_params(cfg)
    specs = plan_specs(cfg, focus_report)
    if teacher is None and cfg.teacher.provider == "openai":
        from tasks.teacher.openai_teacher import build_request

        return [build_request(cfg.teacher, cfg.name, spec, params, kind) for spec in specs]
    teacher = teacher or GrammarTeacher(cfg.teacher, kind)
    return [teacher.build_request(cfg.name, spec, params) for spec in specs]


def calls_table(requests: list[TeacherRequest], calls: list[TeacherCall]) -> pa.Table:
    """Rows for ``teacher_calls``: the canonical request next to its raw response (``not_sent`` calls: no row)."""
    ts = now()
    return pa.Table.from_pylist([
        {
            "request_hash": c.request_hash, "teacher": r.teacher, "model": r.model,
            "request_json": json.dumps(r.model_dump(exclude={"domain"}), sort_keys=True), "status": c.status,
            "raw_response": c.raw_response, "attempts": c.attempts, "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens, "cost_usd": c.cost_usd, "error": c.error, "created_at": ts,
        }
        for r, c in zip(requests, calls, strict=True) if c.status != "not_sent"
    ])


def estimate_generation(cfg: DomainConfig, db: str | Path | None = None) -> dict:
    """Requests, prompt/completion tokens and dollars a generation would cost, before anything is sent.

    Requests already answered in ``db`` (when given and present) cost nothing and are left out. Prompt tokens
    are counted from the planned messages (+ response schema) at ~4 characters per token; completion tokens
    are the mean of stored answers from the same model when there are any, else ``teacher.est_completion_tokens``;
    ``cost_usd_upper_bound`` assumes every answer uses ``max_tokens``. Spends nothing and creates no file.
    """
    from tasks.teacher.limits import cost_usd, estimate_prompt_tokens

    t = cfg.teacher
    requests = plan_requests(cfg)
    cached: set[str] = set()
    learned = None
    if db is not None and Path(db).exists():
        from tasks import store

        cached = store.cached_call_hashes(db, [r.request_hash for r in requests])
        stats = store.teacher_call_stats(db, t.model)
        learned = stats if stats["n"] >= 20 else None
    todo = [r for r in requests if r.request_hash not in cached]
    if t.max_requests is not None:
        todo = todo[:t.max_requests]
    free = t.provider == "grammar"
    if free:
        prompt_tokens = completion_tokens = 0
        per_completion = 0.0
    else:
        from tasks.teacher.openai_teacher import prompt_chars

        prompt_tokens = sum(estimate_prompt_tokens(prompt_chars(r)) for r in todo)
        per_completion = learned["mean_completion_tokens"] if learned else float(t.est_completion_tokens)
        completion_tokens = round(per_completion * len(todo))
    factor = t.batch_price_factor if t.mode == "batch" else 1.0
    price = t.price()
    cost = 0.0 if free else cost_usd(prompt_tokens, completion_tokens, price, factor)
    upper = 0.0 if free else cost_usd(prompt_tokens, t.max_tokens * len(todo), price, factor)
    return {
        "teacher": t.provider, "model": t.model, "mode": t.mode, "planned": len(requests), "cached": len(cached),
        "requests": len(todo), "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "completion_tokens_source": "stored calls" if learned else "teacher.est_completion_tokens",
        "cost_usd": round(cost, 6), "cost_usd_upper_bound": round(upper, 6),
        "price_per_1k": {"input": price.input_per_1k * factor, "output": price.output_per_1k * factor},
        "max_cost_usd": t.max_cost_usd, "max_requests": t.max_requests,
        "min_minutes_at_rpm": round(len(todo) / t.rpm, 2) if t.rpm else None,
    }
