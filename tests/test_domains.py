"""The three shipped regex domains: they load, differ where they should, and run end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from schemas.config import PROFILES, load_domain
from tasks.kinds.regex.grammar import TOPICS
from tasks.validate import validate_rows

DOMAINS = ["regex-python", "regex-re2", "regex-logs"]


def raw(regex, pos, neg, desc="a reasonable description"):
    return json.dumps({"description": desc, "regex": regex, "positives": pos, "negatives": neg})


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("profile", PROFILES)
def test_each_domain_loads_in_every_profile_with_teacher_topics(domain, profile):
    cfg = load_domain(domain, profile)
    assert set(cfg.task.topics) <= set(TOPICS)  # the grammar teacher can serve every topic
    assert cfg.task.prompt_template.endswith("\n")


def test_domains_differ_in_dialect_style_topics_and_template():
    py, re2, logs = (load_domain(d) for d in DOMAINS)
    assert (py.task.dialect, re2.task.dialect, logs.task.dialect) == ("python", "re2", "python")
    assert len({py.task.prompt_template, re2.task.prompt_template, logs.task.prompt_template}) == 3
    assert len({tuple(sorted(c.task.topics.items())) for c in (py, re2, logs)}) == 3
    assert py.validation.forbid == [] and py.validation.anchoring == "any" and py.validation.max_regex_length == 200
    assert {"lookaround", "backreference"} <= set(re2.validation.forbid)
    assert py.validation.terse == "reject" and logs.validation.terse == "strip_and_flag"


@pytest.mark.parametrize("regex, pos, neg", [
    (r"(?=\w*\d)\w{4}", ["ab12", "1abc"], ["abcd", "ab1"]),  # lookahead
    (r"(\w)\1", ["aa", "zz"], ["ab", "a"]),                   # backreference
])
def test_a_python_only_regex_is_accepted_by_regex_python_and_rejected_by_regex_re2(regex, pos, neg):
    (py,) = validate_rows([raw(regex, pos, neg)], load_domain("regex-python"))
    (re2,) = validate_rows([raw(regex, pos, neg)], load_domain("regex-re2"))
    assert py.accepted and py.reasons == []
    assert not re2.accepted and re2.reasons[0] == "compile_error"


def test_an_example_equivalent_to_a_golden_item_never_reaches_the_training_split(tmp_path):
    from tasks import dataset
    from tasks.validate import load_eval_items, validation_tables

    cfg = load_domain("regex-python", "tiny", {"dataset.test_fraction": 0.01})
    gold = load_eval_items(cfg)[0]  # a ZIP code: \d{5}(?:-\d{4})?
    respelled = r"[0-9]{5}(-[0-9]{4})?"
    candidates = [raw(gold["completion"], gold["positives"], gold["negatives"], desc=gold["prompt"]),
                  raw(respelled, ["12345"], ["1234"], desc="five digit postcode, maybe a dash and four more"),
                  raw(r"[a-z]{2}\d", ["ab1"], ["a1"], desc="two small letters then a digit")]
    calls = {f"h{i}": {"status": "ok", "raw_response": r} for i, r in enumerate(candidates)}
    planned = [{"request_hash": h, "idx": i, "topic": "identifiers"} for i, h in enumerate(calls)]
    tables = validation_tables(cfg, "run-decontam", planned, calls, eval_items=load_eval_items(cfg))
    outcomes = {r["request_hash"]: r for r in tables["run_requests"].to_pylist()}
    assert outcomes["h0"]["reasons"][0] in ("eval_overlap_prompt", "eval_overlap_regex")
    assert outcomes["h1"]["reasons"] == ["eval_overlap_regex"]
    assert outcomes["h2"]["outcome"] == "accepted"
    manifest = dataset.write_snapshot(tables["examples"], cfg.name, tmp_path)
    train = {r["completion"] for r in dataset.read_split(manifest["path"], "train").to_pylist()}
    assert respelled not in train and gold["completion"] not in train


@pytest.mark.slow
@pytest.mark.parametrize("domain", ["regex-re2", "regex-logs"])
def test_tiny_run_end_to_end_and_every_request_is_accounted_for_in_duckdb(domain, tmp_path, prefect_harness):
    from tasks import store

    home = tmp_path / "home"
    env = {**os.environ, "LORAFORGE_HOME": str(home), "PREFECT_HOME": str(tmp_path / "prefect")}
    p = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--domain", domain, "--profile", "tiny", "--json"],
                       capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    run = json.loads(p.stdout.strip().splitlines()[-1])
    assert run["status"] == "completed" and run["domain"] == domain
    c, db = run["counts"], home / "loraforge.duckdb"
    by_outcome = {o: store.table_count(db, "run_requests", "WHERE run_id = ? AND outcome = ?", [run["run_id"], o])
                  for o in ("accepted", "quarantined", "failed")}
    assert c["requested"] == sum(by_outcome.values()) == c["accepted"] + c["quarantined"] + c["failed"]
    assert (by_outcome["accepted"], by_outcome["quarantined"], by_outcome["failed"]) == (
        c["accepted"], c["quarantined"], c["failed"])
    assert store.table_count(db, "quarantine", "WHERE run_id = ?", [run["run_id"]]) == c["quarantined"]
    q = run["quality"]
    assert q["requested"] == c["requested"] and q["accepted"] == c["accepted"]
    assert set(q["topics"]) <= set(load_domain(domain).task.topics)
    assert sum(q["regex_chars"].values()) == c["accepted"]
