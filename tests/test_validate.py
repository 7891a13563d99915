"""Validation gives every row a verdict with reason codes; the matcher never lets one pattern stall a batch."""

from __future__ import annotations

import json

from tasks.kinds.regex.matcher import check_batch
from tasks.validate import split_of, validate_rows


def row(regex="\\d{3}-[a-z]{2}", desc="three digits, a dash, then two lowercase letters",
        pos=("123-ab", "999-zz", "000-qq"), neg=("12-ab", "123-AB", "123ab")):
    return json.dumps({"description": desc, "regex": regex, "positives": list(pos), "negatives": list(neg)})


def reasons(raws, cfg):
    return [v.reasons for v in validate_rows(raws, cfg)]


def strict_cfg(**overrides):
    """regex-python with at least three positives and negatives per example."""
    from schemas.config import load_domain

    return load_domain("regex-python", "tiny", {"validation.min_positives": 3, "validation.min_negatives": 3,
                                                **overrides})


def test_a_correct_example_is_accepted_with_prompt_and_bare_completion(domain_cfg):
    (v,) = validate_rows([row()], domain_cfg)
    assert v.accepted and v.reasons == []
    assert v.completion == "\\d{3}-[a-z]{2}"
    desc = "three digits, a dash, then two lowercase letters"
    assert v.prompt == domain_cfg.task.prompt_template.format(description=desc)


def test_each_kind_of_bad_row_gets_its_reason_code():
    raws = [
        "this is not json",
        json.dumps({"regex": "a"}),                        # no description
        row(regex="```\n\\d{3}\n```"),                      # fenced
        row(regex="\\d{3}-[a-z]{2} "),                      # trailing blank
        row(regex="(\\d{3}"),                               # does not compile
        row(pos=("123-ab",)),                               # too few positives
        row(pos=("123-ab", "999-zz", "1234-ab")),           # a positive that does not match
        row(neg=("12-ab", "123-AB", "555-xy")),             # a negative that matches
        row(regex="x" * 500, pos=("x" * 500,) * 3),         # too long
    ]
    assert reasons(raws, strict_cfg()) == [
        ["malformed_output"], ["malformed_output"], ["not_terse"], ["edge_whitespace"], ["compile_error"],
        ["too_few_positives"], ["positive_mismatch"], ["negative_match"], ["regex_too_long"],
    ]


def test_quoted_regex_is_terse_when_the_strings_are_quoted_too(domain_cfg):
    ok = row(regex="'[a-z]+'", desc="a lowercase word in single quotes", pos=("'ab'", "'x'", "'abc'"),
             neg=("ab", "'AB'", "'a"))
    wrapped = row(regex="'[a-z]+'", desc="a lowercase word", pos=("ab", "x", "abc"), neg=("AB", "1", "a1"))
    assert reasons([ok, wrapped], domain_cfg) == [[], ["not_terse"]]


def test_duplicate_prompts_keep_the_first_and_quarantine_the_rest(domain_cfg):
    verdicts = validate_rows([row(), row(), row(regex="\\d{3}-[a-z]{2,2}")], domain_cfg)
    assert [v.accepted for v in verdicts] == [True, False, False]
    assert verdicts[1].reasons == verdicts[2].reasons == ["duplicate_prompt"]


def test_catastrophic_pattern_times_out_without_stalling_the_batch():
    evil = ("(a+)+$", ["aaaa"], ["a" * 40 + "b"])
    fine = ("\\d+", ["12"], ["x"])
    results = check_batch([fine, evil, fine], timeout_s=0.5)
    assert [r.timed_out for r in results] == [False, True, False]
    assert results[0].all_ok(1, 1) and results[2].all_ok(1, 1)


def test_compile_error_reports_the_compiler_message():
    ok, bad = check_batch([("\\d{3}", [], []), ("(ab", [], [])])
    assert ok.compiled and ok.error is None
    assert not bad.compiled and "missing )" in bad.error


def test_split_is_deterministic_and_roughly_follows_the_fractions(domain_cfg):
    ids = [f"id{i}" for i in range(4000)]
    splits = [split_of(i, domain_cfg) for i in ids]
    assert splits == [split_of(i, domain_cfg) for i in ids]
    frac_test = splits.count("test") / len(ids)
    assert abs(frac_test - domain_cfg.dataset.test_fraction) < 0.03


def test_user_jsonl_gets_a_verdict_per_line_and_bad_rows_are_rejections(tmp_path, domain_cfg):
    from tasks.validate import validate_user_file

    good = {"prompt": "three digits", "completion": "\\d{3}", "positives": ["123", "456", "789"],
            "negatives": ["12", "abc", "1234"], "topic": "ignored", "source_id": 7}
    f = tmp_path / "rows.jsonl"
    f.write_bytes(b"\n".join([
        json.dumps(good).encode(),
        json.dumps({**good, "completion": ""}).encode(),
        b"\xff\xfe not utf-8",
        b"{broken json",
        json.dumps({**good, "positives": []}).encode(),
        b"",
        json.dumps({**good, "completion": "(\\d"}).encode(),
    ]))
    result = validate_user_file(f, domain_cfg)
    assert result["accepted"] == 1 and result["rejected"] == 5
    assert [(r["line"], r["reasons"]) for r in result["rows"]] == [
        (1, []), (2, ["empty_completion"]), (3, ["not_utf8"]), (4, ["malformed_output"]),
        (5, ["too_few_positives"]), (7, ["compile_error"]),
    ]


def test_every_request_is_accounted_for_in_duckdb_rows(home, domain_cfg):
    from tasks import store
    from tasks.validate import validation_tables

    calls = {"ok1": {"status": "ok", "raw_response": row()},
             "ok2": {"status": "ok", "raw_response": row(regex="[a-z]+", desc="lowercase letters", pos=("ab",),
                                                           neg=("1",))},
             "bad": {"status": "ok", "raw_response": "not json"},
             "evil": {"status": "ok", "raw_response": row(regex="(a+)+", desc="nested stars", pos=("aa",), neg=("b",))},
             "lost": {"status": "failed", "raw_response": None}}
    planned = [{"request_hash": h, "idx": i, "topic": "text"} for i, h in enumerate([*calls, "never-answered"])]
    tables = validation_tables(domain_cfg, "run-acct", planned, calls)
    store.init_db(home.db)
    store.record_validation(home.db, tables["run_requests"], tables["examples"], tables["quarantine"])
    counts = store.run_counts(home.db, "run-acct")["counts"]
    assert counts == {"requested": 6, "accepted": 2, "quarantined": 2, "failed": 2}
    assert store.table_count(home.db, "examples", "WHERE run_id = ?", ["run-acct"]) == counts["accepted"]
    assert store.table_count(home.db, "quarantine", "WHERE run_id = ?", ["run-acct"]) == counts["quarantined"]
    assert store.run_counts(home.db, "run-acct")["quarantine_reasons"] == {"malformed_output": 1, "redos_static": 1}


def test_quality_report_counts_reasons_topics_and_lengths():
    from tasks.kinds import get_kind
    from tasks.validate import quality_markdown, quality_report

    reqs = [{"outcome": "accepted", "topic": "dates", "reasons": []},
            {"outcome": "quarantined", "topic": "dates", "reasons": ["compile_error", "description_length"]},
            {"outcome": "failed", "topic": "text", "reasons": ["teacher_failed"]}]
    q = quality_report(reqs, [{"prompt": "regex: a date\n", "completion": r"\d{4}", "flags": ["normalised"]}],
                       get_kind("regex"))
    assert (q["requested"], q["accepted"], q["acceptance_rate"], q["normalised"]) == (3, 1, 0.3333, 1)
    assert q["reasons"] == {"compile_error": 1, "description_length": 1, "teacher_failed": 1}
    assert q["topics"]["dates"] == {"requested": 2, "accepted": 1, "quarantined": 1, "failed": 0}
    assert q["regex_chars"]["0-9"] == 1 and q["prompt_chars"]["0-39"] == 1
    assert "| compile_error | 1 |" in quality_markdown(q, "r1")
