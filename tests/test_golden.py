"""The hand-written golden sets: enough items, every one right in its domain's dialect and house style."""

from __future__ import annotations

import json

import pytest

from schemas.config import configs_dir, load_domain
from schemas.example import TeacherOutput
from tasks.kinds.regex import check_batch
from tasks.teacher.grammar import TOPICS
from tasks.validate import content_tokens, validate_outputs

DOMAINS = ["regex-python", "regex-re2", "regex-logs"]


def golden(domain: str) -> list[dict]:
    path = configs_dir() / "golden" / f"{domain}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("domain", DOMAINS)
def test_golden_set_has_at_least_100_items_with_the_contract_fields(domain):
    items = golden(domain)
    assert len(items) >= 100
    for it in items:
        assert set(it) == {"prompt", "completion", "positives", "negatives", "topic"}
        assert it["prompt"] and it["completion"] and it["positives"] and it["negatives"]
        assert it["topic"] in TOPICS
    assert len({it["prompt"] for it in items}) == len(items)


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_golden_regex_compiles_in_the_dialect_and_separates_its_strings(domain):
    cfg, items = load_domain(domain, "full"), golden(domain)
    results = check_batch([(it["completion"], it["positives"], it["negatives"]) for it in items],
                          dialect=cfg.task.dialect)
    wrong = [it["completion"] for it, r in zip(items, results, strict=True)
             if not r.all_ok(len(it["positives"]), len(it["negatives"]))]
    assert wrong == []


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_golden_item_passes_its_domains_validation(domain):
    cfg, items = load_domain(domain, "full"), golden(domain)
    outputs = [TeacherOutput(description=it["prompt"], regex=it["completion"], positives=it["positives"],
                             negatives=it["negatives"]) for it in items]
    rejected = [(it["completion"], v.reasons) for it, v in zip(items, validate_outputs(outputs, cfg), strict=True)
                if not v.accepted]
    assert rejected == []


@pytest.mark.parametrize("domain", DOMAINS)
def test_golden_topics_follow_the_domains_topic_mix(domain):
    cfg = load_domain(domain, "full")
    assert {it["topic"] for it in golden(domain)} <= set(cfg.task.topics)


def test_golden_prompts_are_not_phrased_like_the_grammar_teacher():
    from tasks.teacher.grammar import generate_example

    grammar = {content_tokens(generate_example(seed, topic, d)["description"])
               for seed in range(60) for topic in TOPICS for d in (1, 2, 3)}
    clashes = [it["prompt"] for domain in DOMAINS for it in golden(domain) if content_tokens(it["prompt"]) in grammar]
    assert clashes == []
