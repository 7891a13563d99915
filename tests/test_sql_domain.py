"""The sql kind behind the seam: the sql-shop domain loads, validates a user's rows and teacher answers with reason
codes, dedups and decontaminates by normalised SQL and result signature, scores by execution accuracy, serves a
test panel, and runs end to end (tiny profile) with the gate able to reject.

The kind's own parts (sandbox, parse tree, Spider-style comparison, grammar, golden set) are tested in
tests/test_sql_kind.py; here they are reached only through the generic code (tasks/validate.py, tasks/evaluate.py,
the CLI, the pipeline)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from schemas.config import PROFILES, ConfigError, load_domain, parse_domain, validate_config
from schemas.example import RequestSpec
from tasks import store
from tasks.kinds import GROUP, get_kind
from tasks.validate import load_eval_items, reason_codes, validate_outputs, validate_rows, validate_user_file

REPO = Path(__file__).resolve().parents[1]
DOMAIN = "sql-shop"
DOMAIN_FILE = REPO / "configs" / "domains" / f"{DOMAIN}.yaml"
KIND = get_kind("sql")


def cli(*args: str, home, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "LORAFORGE_HOME": str(home.root)}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def last_json(p: subprocess.CompletedProcess) -> dict:
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cfg():
    return load_domain(DOMAIN, "tiny")


def outputs(*pairs: tuple[str, str]) -> list:
    return [KIND.output_model(description=d, sql=s) for d, s in pairs]


# ------------------------------------------------------------------------------------------------ the domain
@pytest.mark.parametrize("profile", PROFILES)
def test_the_domain_loads_in_every_profile_as_the_sql_kind_and_round_trips(profile):
    from tasks.kinds.sql.grammar import STYLES, TOPICS

    cfg = load_domain(DOMAIN, profile)
    assert isinstance(cfg, KIND.config_model) and cfg.task.kind == "sql"
    assert set(cfg.task.topics) == set(TOPICS) and set(cfg.task.styles) <= set(STYLES)
    assert len(cfg.task.instance_seeds) >= 2 and cfg.training.base_model == "tiny-llama-sql"
    assert 0 < cfg.gate.min_parse_rate <= 1 and 0 < cfg.gate.min_read_only_rate <= 1
    assert validate_config(json.loads(cfg.model_dump_json())) == cfg  # a stored run's config comes back as it was


def test_the_entry_point_group_declares_the_sql_kind():
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    assert eps.get("sql") == "tasks.kinds.sql:KIND", "run `.venv/bin/pip install -e . --no-deps` after editing"
    assert KIND.name == "sql" and KIND.metric_keys == ("parse_rate", "read_only_rate")


def test_the_kind_s_keys_are_checked_and_a_typo_or_one_seed_fails_naming_the_key():
    data = yaml.safe_load(DOMAIN_FILE.read_text())
    data["validation"]["max_sql_char"] = 10
    with pytest.raises(ConfigError, match=r"validation\.max_sql_char: unknown key"):
        parse_domain(data)
    data = yaml.safe_load(DOMAIN_FILE.read_text())
    data["task"]["instance_seeds"] = [7]
    with pytest.raises(ConfigError, match=r"task\.instance_seeds: .*two or more distinct seeds"):
        parse_domain(data)


# ------------------------------------------------------------------------------------------------ validation
def test_validate_file_gives_a_verdict_per_row_with_its_reasons(home, tmp_path):
    rows = [
        {"prompt": "customers in Lyon", "completion": "SELECT * FROM customers WHERE city = 'Lyon'"},
        {"prompt": "drop the customers", "completion": "DROP TABLE customers"},
        {"prompt": "the password file", "completion": "SELECT * FROM read_text('/etc/passwd')"},
        {"prompt": "two things", "completion": "SELECT 1; DELETE FROM orders"},
        {"prompt": "all customers", "completion": "Here is the query: SELECT * FROM customers"},
        {"prompt": "nobody", "completion": "SELECT * FROM customers WHERE city = 'Atlantis'"},
        {"prompt": "users", "completion": "SELECT * FROM users"},
        {"prompt": "empty", "completion": ""},
    ]
    f = tmp_path / "rows.jsonl"
    f.write_text("\n".join(map(json.dumps, rows)) + "\nnot json\n")
    out = last_json(cli("validate", "--domain", DOMAIN, "--file", str(f), "--json", home=home))
    assert out["accepted"] == 1 and out["rejected"] == 8
    assert [(r["line"], r["accepted"], r["reasons"]) for r in out["rows"]] == [
        (1, True, []), (2, False, ["not_read_only"]), (3, False, ["forbidden_function"]),
        (4, False, ["multiple_statements", "not_read_only"]), (5, False, ["not_sql"]), (6, False, ["empty_result"]),
        (7, False, ["unknown_table"]), (8, False, ["empty_completion"]), (9, False, ["malformed_output"])]


def test_a_hostile_corpus_is_rejected_through_the_seam_and_touches_nothing_outside_the_sandbox(tmp_path):
    from tasks.kinds.sql.database import database

    cfg = load_domain(DOMAIN, "tiny", overrides={"validation.query_timeout_s": 0.5})
    (tmp_path / "secret.csv").write_text("a,b\ntop-secret,1\n")
    hostile = [
        ("DROP TABLE customers", "not_read_only"), ("DELETE FROM orders", "not_read_only"),
        (f"COPY customers TO '{tmp_path}/out.csv'", "not_read_only"),
        (f"COPY (SELECT * FROM orders) TO '{tmp_path}/o.parquet' (FORMAT parquet)", "not_read_only"),
        (f"EXPORT DATABASE '{tmp_path}/dump'", "not_read_only"), (f"ATTACH '{tmp_path}/x.db' AS x", "not_read_only"),
        ("INSTALL httpfs", "not_read_only"), ("LOAD httpfs", "not_read_only"), ("SET threads = 8", "not_read_only"),
        ("PRAGMA database_list", "not_read_only"),
        ("WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone", "not_read_only"),
        ("SELECT 1; DROP TABLE customers", "multiple_statements"),
        ("SELECT * FROM read_text('/etc/passwd')", "forbidden_function"),
        (f"SELECT * FROM read_csv('{tmp_path}/secret.csv')", "forbidden_function"),
        ("SELECT getenv('HOME')", "forbidden_function"), ("SELECT current_setting('home_directory')",
                                                           "forbidden_function"),
        ("SELECT * FROM glob('/etc/*')", "forbidden_function"), ("FROM '/etc/passwd'", "forbidden_table"),
        (f"SELECT * FROM '{tmp_path}/secret.csv'", "forbidden_table"),
        ("SELECT * FROM information_schema.tables", "forbidden_table"), ("SHOW TABLES", "forbidden_table"),
        ("SELECT * FROM customer", "unknown_table"), ("Sure! SELECT * FROM customers", "not_sql"),
        ("SELECT * FROM customers\nThis lists every customer.", "not_sql"),
        ("```sql\nSELECT * FROM customers\n```", "not_sql"), ("SELECT * FROM customers WHERE", "parse_error"),
        ("SELECT count(*) FROM order_items a, order_items b, order_items c, order_items d", "timeout"),
        ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r", "timeout"),
        ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r", "too_many_rows"),
        ("SELECT * FROM orders a CROSS JOIN orders b", "too_many_rows"),
    ]
    benign = ["SELECT * FROM customers WHERE city = 'Paris'", "select count(*) from orders where status = 'shipped';",
              "FROM products SELECT name, price WHERE price > 100 ORDER BY price DESC, product_id",
              "SELECT coalesce(city, 'unknown') AS city, count(*) FROM customers GROUP BY ALL"]
    assert len(hostile) >= 30
    box = database(cfg).boxes[0]
    before_files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    before = {t: box.run(f"SELECT * FROM {t} ORDER BY ALL", max_rows=100_000).rows for t in box.tables}

    f = tmp_path / "hostile.jsonl"
    f.write_text("\n".join(json.dumps({"prompt": f"request {i}", "completion": sql})
                           for i, sql in enumerate([s for s, _ in hostile] + benign)) + "\n")
    out = validate_user_file(f, cfg)
    got = [(r["accepted"], r["reasons"][:1]) for r in out["rows"]]
    assert got == [(False, [want]) for _, want in hostile] + [(True, [])] * len(benign)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()
            if p.name != "hostile.jsonl"} == before_files
    assert {t: box.run(f"SELECT * FROM {t} ORDER BY ALL", max_rows=100_000).rows for t in box.tables} == before


def test_teacher_answers_are_deduplicated_by_normalised_sql_and_result_signature(cfg):
    same = "SELECT * FROM customers WHERE country = 'Spain'"
    rows = outputs(("Spanish customers", same),
                   ("customers in Spain", "select *  from CUSTOMERS where country='Spain';"),
                   ("who lives in Spain", same), ("Spain's customers please", same),
                   # the same rows on every instance, written differently: one class too
                   ("every customer from Spain", "SELECT * FROM customers WHERE country IN ('Spain')"),
                   ("products in the books category", "SELECT * FROM products WHERE category = 'books'"))
    strict = cfg.model_copy(update={"validation": cfg.validation.model_copy(update={"max_per_equivalence_class": 2})})
    verdicts = validate_outputs(rows, strict)
    assert [v.reasons for v in verdicts] == [[], [], ["equivalence_cap"], ["equivalence_cap"], ["equivalence_cap"], []]
    assert verdicts[1].completion == "select *  from CUSTOMERS where country='Spain'"  # stored as written, minus ;


def test_teacher_answers_equivalent_to_a_golden_item_are_kept_out_of_training(cfg):
    golden = load_eval_items(cfg)
    ref = golden[0]["completion"]  # "SELECT * FROM customers WHERE city = 'Lyon'"
    assert ref == "SELECT * FROM customers WHERE city = 'Lyon'"
    rows = outputs(("lyon folks, all columns", "select * from Customers where city='Lyon';"),
                   ("people located in Lyon", "SELECT * FROM customers WHERE city IN ('Lyon')"),
                   ("customers in Madrid", "SELECT * FROM customers WHERE city = 'Madrid'"))
    raws = [json.dumps(o.model_dump()) for o in rows]
    verdicts = validate_rows(raws, cfg, eval_items=golden)
    assert [v.reasons for v in verdicts] == [["eval_overlap_sql"], ["eval_overlap_sql"], []]
    assert set(KIND.overlap_reasons) <= set(reason_codes(KIND))


def test_the_grammar_teacher_and_the_mock_teacher_answer_with_checked_queries(cfg):
    params = KIND.request_params(cfg)
    specs = [RequestSpec(index=i, seed=1000 + i, topic=t, difficulty=1 + i % 3, style=None)
             for i, t in enumerate(cfg.task.topics)]
    answers = [KIND.grammar_answer(s, params) for s in specs]
    user = KIND.teacher_messages(specs[1], params)[1]["content"]
    assert "CREATE TABLE customers" in user and "topic: joins" in user and f"seed: {specs[1].seed}" in user
    assert [v.reasons for v in validate_rows([json.dumps(a) for a in answers], cfg)] == [[]] * len(answers)
    mock = [KIND.mock_answer(user, fault) for fault in (None, *KIND.mock_faults)]
    assert [v.reasons for v in validate_rows([json.dumps(a) for a in mock], cfg)] == [[], ["not_read_only"],
                                                                                       ["not_sql"]]
    assert all(a["concept"] and a["style"] for a in answers)  # the failure report's slice labels ride along
    from schemas.example import FocusHint

    focused = specs[1].model_copy(update={"focus": FocusHint(failure_id="f1", request="customers who never ordered",
                                                             concept="j_never_ordered")})
    assert KIND.grammar_answer(focused, params)["concept"] == "j_never_ordered"
    assert "customers who never ordered" in KIND.teacher_messages(focused, params)[1]["content"]
    corpus = KIND.tokenizer_corpus(20)
    assert len(corpus) == 40 and any(t.startswith("SELECT") for t in corpus)


# ------------------------------------------------------------------------------------------------ scoring
def test_scoring_is_execution_accuracy_with_parse_and_read_only_rates(cfg):
    from tasks.evaluate import score, summarise

    item = {"example_id": "x", "prompt": "sql: orders per status\n", "topic": "group_having",
            "completion": "SELECT status, count(*) FROM orders GROUP BY status"}
    texts = ["select count(*), status from orders group by status",  # columns swapped: a different result
             "SELECT status, count(order_id) AS n FROM orders GROUP BY ALL;",  # same bag, other words
             "SELECT status, count(*) FROM orders GROUP BY status ORDER BY status",  # order free: no ORDER BY in ref
             "SELECT status, 42 FROM orders GROUP BY status",  # runs, wrong
             "DELETE FROM orders",  # parses, not read-only
             "the orders per status"]  # not SQL
    rows = score([item] * len(texts), texts, [5] * len(texts), [1.0] * len(texts), cfg=cfg)
    assert [r["semantic_ok"] for r in rows] == [False, True, True, False, False, False]
    assert [r["reason"] for r in rows] == ["wrong_result", None, None, "wrong_result", "not_read_only", "not_sql"]
    assert [r["parsed"] for r in rows] == [True] * 5 + [False]
    assert [r["read_only"] for r in rows] == [True] * 4 + [False, False]
    m = summarise(rows, kind=KIND)
    assert m["semantic_accuracy"] == round(2 / 6, 4) and m["parse_rate"] == round(5 / 6, 4)
    assert m["read_only_rate"] == 0.8 and len(m["read_only_rate_ci"]) == 2
    assert m["by_topic"]["group_having"]["parse_rate"] == m["parse_rate"]


def test_a_query_right_on_one_instance_only_is_wrong(cfg):
    from tasks.kinds.sql.database import database

    db = database(cfg)
    n0, n1 = (box.run("SELECT count(*) FROM customers").rows[0][0] for box in db.boxes)
    assert n0 != n1  # the seeds draw different row counts
    item = {"example_id": "x", "prompt": "p", "topic": "aggregates", "completion": "SELECT count(*) FROM customers"}
    [row] = KIND.score([item], [f"SELECT {n0}"], cfg)
    assert row["semantic_ok"] is False and row["per_instance"] == [True, False]


# ------------------------------------------------------------------------------------------------ serving
def test_the_test_panel_runs_the_answer_on_one_instance_and_shows_a_few_rows(cfg):
    serving = KIND.serving(cfg)
    assert serving.render("customers in Paris") == "sql: customers in Paris\n"
    assert serving.answer("  SELECT 1;\n") == "SELECT 1"
    panel = serving.test_panel("SELECT customer_id, city FROM customers ORDER BY customer_id", [])
    assert panel["ok"] and panel["columns"] == ["customer_id", "city"] and panel["n_rows"] > 10
    assert panel["results"][0] == {"string": "customer_id | city", "verdict": "columns", "good": True}
    assert len(panel["results"]) == 11 and panel["results"][1]["string"].startswith("1 | ")
    bad = serving.test_panel("DROP TABLE customers", ["ignored"])
    assert not bad["ok"] and bad["reasons"] == ["not_read_only"] and bad["results"] == []
    assert serving.test_panel("SELECT count(*) FROM customers", [])["n_rows"] == 1  # the table is still there


# ------------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_tiny_run_end_to_end_accounts_for_every_request_and_the_gate_rejects_naming_the_checks(home, prefect_harness):
    from flows.pipeline import distill_to_adapter

    run = distill_to_adapter(domain=DOMAIN, profile="tiny", home=str(home.root))
    c = run["counts"]
    assert run["status"] == "completed" and c["requested"] == 300 == c["accepted"] + c["quarantined"] + c["failed"]
    assert c["accepted"] > 200  # most grammar answers pass every check
    assert store.table_count(home.db, "run_requests", "WHERE run_id = ?", [run["run_id"]]) == c["requested"]
    assert set(run["quarantine_reasons"]) <= set(reason_codes(KIND))
    examples = store.run_examples(home.db, run["run_id"]).to_pylist()
    assert len(examples) == c["accepted"] and {e["validator_version"] for e in examples} == {KIND.validator_version}

    for role in ("base", "candidate"):
        m = run["eval"][role]
        assert m["n"] > 0 and m["golden"]["n"] == 16
        for mm in (m, m["golden"]):
            assert {"semantic_accuracy", "semantic_accuracy_ci", "parse_rate", "read_only_rate"} <= set(mm)
    golden_rows = store.table_count(home.db, "evaluation_items", "WHERE eval_id IN (SELECT eval_id FROM evaluations "
                                    "WHERE run_id = ? AND eval_set = 'golden') AND kind_json LIKE '%parsed%'",
                                    [run["run_id"]])
    assert golden_rows == run["eval"]["base"]["golden"]["n"] + run["eval"]["candidate"]["golden"]["n"]

    gate = run["gate"]
    checks = {ch["name"]: ch for ch in gate["checks"]}
    assert run["adapter"]["status"] == "rejected" and gate["failed"]
    assert gate["failed"] == [ch["name"] for ch in gate["checks"] if not ch["passed"]]
    for name in ("min_parse_rate", "min_read_only_rate"):
        ch = checks[name]
        assert ch["passed"] == (ch["value"] >= ch["threshold"])
    assert checks["min_parse_rate"]["value"] == run["eval"]["candidate"]["parse_rate"]


@pytest.mark.slow
def test_evaluate_a_model_on_a_file_prints_the_generic_keys_and_the_kind_s(home, prefect_harness, tmp_path):
    golden = [json.loads(line) for line in (REPO / "configs" / "golden" / "sql-shop.jsonl").read_text().splitlines()]
    f = tmp_path / "eval.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in golden[:12]) + '\n{"prompt": "no answer"}\n')
    m = last_json(cli("evaluate", "--domain", DOMAIN, "--adapter", "base", "--eval-file", str(f), "--json",
                      home=home, timeout=900))
    assert set(m) >= {"n", "n_excluded", "semantic_accuracy", "semantic_accuracy_ci", "exact_match",
                      "mean_output_tokens", "latency_ms_p50", "latency_ms_p95", "by_topic", "parse_rate",
                      "parse_rate_ci", "read_only_rate", "read_only_rate_ci"}
    assert "compile_rate" not in m and m["n"] == 12 and m["n_excluded"] == 0 and m["n_invalid"] == 1
    lo, hi = m["semantic_accuracy_ci"]
    assert 0.0 <= lo <= m["semantic_accuracy"] <= hi <= 1.0
