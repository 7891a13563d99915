"""Request planning is deterministic and diverse; the grammar teacher answers every request."""

from __future__ import annotations

import json
from collections import Counter

from schemas.config import load_domain
from tasks.generate import make_teacher, plan_requests, plan_specs


def test_same_config_plans_the_same_requests_and_hashes():
    cfg = load_domain("regex-python", "quick")
    a = [r.request_hash for r in plan_requests(cfg, make_teacher(cfg))]
    b = [r.request_hash for r in plan_requests(cfg, make_teacher(cfg))]
    assert a == b and len(set(a)) == len(a) == cfg.dataset.n_requests


def test_topic_mix_follows_the_domain_weights():
    cfg = load_domain("regex-python", "full")
    topics = Counter(s.topic for s in plan_specs(cfg))
    for topic, weight in cfg.task.topics.items():
        assert abs(topics[topic] / cfg.dataset.n_requests - weight / sum(cfg.task.topics.values())) < 0.02


def test_a_different_seed_plans_different_requests():
    a = load_domain("regex-python", "tiny")
    b = load_domain("regex-python", "tiny", {"seed": a.seed + 1})
    assert {r.request_hash for r in plan_requests(a, make_teacher(a))}.isdisjoint(
        r.request_hash for r in plan_requests(b, make_teacher(b)))


def test_grammar_teacher_answers_with_the_json_an_llm_is_asked_for():
    cfg = load_domain("regex-python", "tiny")
    teacher = make_teacher(cfg)
    reqs = plan_requests(cfg, teacher)[:20]
    calls = teacher.complete_batch(reqs)
    assert [c.request_hash for c in calls] == [r.request_hash for r in reqs]
    for c in calls:
        assert c.status == "ok"
        out = json.loads(c.raw_response)
        # the JSON an LLM is asked for, plus the grammar's own record of what it asked (concept family, style)
        assert set(out) == {"description", "regex", "positives", "negatives", "concept", "style"}
        assert out["style"] == next(r for r in reqs if r.request_hash == c.request_hash).spec.style
        assert 2 <= len(out["positives"]) <= cfg.teacher.n_positives  # fewer only for a tiny language ("yes or no")
