"""The sql kind's own parts: data instances, the read-only check and sandbox, execution accuracy, golden set, grammar.

Every test runs on the shipped shop schema (configs/sql/shop.sql + shop.yaml) and real DuckDB sandboxes.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
from pathlib import Path

import pytest

from tasks.kinds.sql import (
    DEFAULT_SEEDS,
    STYLES,
    TOPICS,
    Sandbox,
    build_instance,
    build_instances,
    check_sql,
    execution_match,
    generate_item,
    generate_items,
    load_spec,
    ordered,
    query_signature,
    run_sql,
    sql_key,
)

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "configs" / "golden" / "sql-shop.jsonl"
TABLES = ("customers", "products", "orders", "order_items")


@pytest.fixture(scope="module")
def data():
    return load_spec(ROOT / "configs" / "sql" / "shop.yaml")


@pytest.fixture(scope="module")
def boxes(data):
    made = [Sandbox(i) for i in build_instances(data, DEFAULT_SEEDS)]
    yield made
    for b in made:
        b.close()


def _empty(result) -> bool:
    """No rows, or one row of NULLs (an aggregate over nothing)."""
    return not result.rows or (len(result.rows) == 1 and all(v is None for v in result.rows[0]))


# ------------------------------------------------------------------------------------------------------ data
def test_instances_are_deterministic_per_seed_and_differ_between_seeds(data):
    a, b, c = (build_instance(data.ddl, data.spec, s) for s in (7, 7, 8))
    assert a.tables == b.tables
    assert a.tables != c.tables
    assert a.row_counts() != c.row_counts()  # sizes differ too: a hard-coded count cannot be right on both
    assert set(a.tables) == set(TABLES)


def test_instances_have_nulls_duplicates_and_consistent_keys(boxes):
    box = boxes[0]
    counts = box.run("SELECT count(*) - count(email), count(*) - count(city), count(city) - count(DISTINCT city) "
                     "FROM customers").rows[0]
    assert all(n > 0 for n in counts), counts  # missing emails, missing cities, repeated cities
    assert box.run("SELECT count(*) FROM products WHERE category IS NULL").rows[0][0] > 0
    assert box.run("SELECT count(*) FROM orders WHERE shipped_at IS NULL").rows[0][0] > 0
    assert box.run("SELECT count(*) FROM orders WHERE shipped_at IS NULL AND status NOT IN ('pending', 'cancelled')"
                   ).rows[0][0] == 0
    orphans = box.run("SELECT count(*) FROM order_items oi LEFT JOIN products p USING (product_id) "
                      "WHERE p.product_id IS NULL").rows[0][0]
    assert orphans == 0
    never = box.run("SELECT count(*) FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o "
                    "WHERE o.customer_id = c.customer_id)").rows[0][0]
    assert never > 0  # customers without orders: LEFT JOIN vs JOIN matters


# ------------------------------------------------------------------------------------------- hostile corpus
def _hostile(tmp: Path) -> list[tuple[str, str]]:
    """(text, the reason code check_sql must give first). Paths point into ``tmp`` so any write would show."""
    return [
        ("", "empty"),
        ("   \n  -- only a comment\n", "empty"),
        ("DROP TABLE customers", "not_read_only"),
        ("DELETE FROM orders", "not_read_only"),
        ("INSERT INTO products VALUES (999, 'x', NULL, 1, 1, false)", "not_read_only"),
        ("UPDATE products SET price = 0", "not_read_only"),
        ("CREATE TABLE stolen AS SELECT * FROM customers", "not_read_only"),
        ("CREATE TEMP TABLE t AS SELECT 1", "not_read_only"),
        ("ALTER TABLE customers ADD COLUMN x INT", "not_read_only"),
        (f"COPY customers TO '{tmp}/out.csv'", "not_read_only"),
        (f"COPY (SELECT * FROM customers) TO '{tmp}/out.parquet' (FORMAT parquet)", "not_read_only"),
        (f"EXPORT DATABASE '{tmp}/dump'", "not_read_only"),
        (f"ATTACH '{tmp}/other.db' AS other", "not_read_only"),
        ("DETACH memory", "not_read_only"),
        ("INSTALL httpfs", "not_read_only"),
        ("LOAD httpfs", "not_read_only"),
        ("SET threads = 16", "not_read_only"),
        ("SET enable_external_access = true", "not_read_only"),
        ("PRAGMA database_list", "not_read_only"),
        ("CALL pragma_version()", "not_read_only"),
        ("BEGIN TRANSACTION", "not_read_only"),
        ("CHECKPOINT", "not_read_only"),
        ("WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone", "not_read_only"),
        ("SELECT 1; DROP TABLE customers", "multiple_statements"),
        ("SELECT * FROM customers; SELECT * FROM orders", "multiple_statements"),
        ("SELECT * FROM read_text('/etc/passwd')", "forbidden_function"),
        (f"SELECT * FROM read_csv('{tmp}/secret.csv')", "forbidden_function"),
        ("SELECT * FROM read_csv_auto('/etc/passwd', sep = ':')", "forbidden_function"),
        ("SELECT * FROM read_parquet('s3://bucket/x.parquet')", "forbidden_function"),
        ("SELECT * FROM glob('/etc/*')", "forbidden_function"),
        ("SELECT getenv('HOME')", "forbidden_function"),
        ("SELECT current_setting('home_directory')", "forbidden_function"),
        ("SELECT * FROM duckdb_settings()", "forbidden_function"),
        ("SELECT * FROM query('DROP TABLE customers')", "forbidden_function"),
        ("SELECT nextval('seq')", "forbidden_function"),
        ("FROM '/etc/passwd'", "forbidden_table"),
        (f"SELECT * FROM '{tmp}/secret.csv'", "forbidden_table"),
        ("SELECT * FROM information_schema.tables", "forbidden_table"),
        ("SELECT * FROM pragma_database_list", "forbidden_table"),
        ("SHOW TABLES", "forbidden_table"),
        ("DESCRIBE customers", "forbidden_table"),
        ("SELECT * FROM customer", "unknown_table"),
        ("Here is the query: SELECT * FROM customers", "not_sql"),
        ("SELECT * FROM customers\nThis lists every customer.", "not_sql"),
        ("SELECT count(*) FROM orders; -- counts orders\nHope this helps!", "not_sql"),
        ("```sql\nSELECT * FROM customers\n```", "not_sql"),
        ("SELECT * FROM customers WHERE", "parse_error"),
        ("SELECT (1 + FROM orders", "parse_error"),
    ]


_RUNTIME = [  # (text, reason, time limit): they pass the check (read-only) and are stopped by the sandbox's limits
    ("SELECT count(*) FROM order_items a, order_items b, order_items c, order_items d", "timeout", 0.5),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r", "timeout", 0.5),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r", "too_many_rows", 10),
    ("SELECT * FROM orders a CROSS JOIN orders b", "too_many_rows", 10),
    ("SELECT list(range) FROM range(200000000)", "execution_error", 30),  # past the memory limit (~0.2 s)
]

_BENIGN = [
    "SELECT * FROM customers WHERE city = 'Paris'",
    "select c.first_name, count(*) from customers c join orders o on o.customer_id = c.customer_id group by all",
    "FROM products SELECT name, price WHERE price > 100 ORDER BY price DESC",
    "WITH t AS (SELECT order_id, sum(quantity * unit_price) AS v FROM order_items GROUP BY order_id) "
    "SELECT max(v) FROM t",
    "SELECT status, count(*) FILTER (WHERE shipped_at IS NULL) FROM orders GROUP BY status;",
    "SELECT * FROM range(3)",
    "SELECT unnest(['a', 'b'])",
    "SELECT coalesce(city, 'unknown'), strftime(signup_date, '%Y') FROM customers",
    "SELECT name FROM products WHERE product_id IN (SELECT product_id FROM order_items WHERE quantity > 3)",
    "-- top products\nSELECT * FROM products ORDER BY price DESC LIMIT 3",
    "SELECT row_number() OVER (PARTITION BY country ORDER BY signup_date) FROM customers",
    "(SELECT city FROM customers) EXCEPT (SELECT 'Paris')",
]


def _snapshot_dir(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(path.rglob("*"))}


def _snapshot_tables(box: Sandbox) -> dict[str, list]:
    return {t: box.run(f"SELECT * FROM {t} ORDER BY ALL", max_rows=100_000).rows for t in TABLES}


def test_hostile_corpus_is_rejected_with_its_reason_and_nothing_outside_the_sandbox_changes(boxes, tmp_path):
    secret = "top-secret-marker-4711"
    (tmp_path / "secret.csv").write_text(f"a,b\n{secret},1\n")
    corpus = _hostile(tmp_path)
    assert len(corpus) + len(_RUNTIME) >= 30
    box = boxes[0]
    before_dir, before_tables, before_cwd = _snapshot_dir(tmp_path), _snapshot_tables(box), sorted(os.listdir())

    for text, want in corpus:
        reasons = check_sql(text, TABLES)
        assert reasons and reasons[0] == want, (text, reasons)
        assert box.run(text).reason == want  # run() checks first by default
    for text, want, limit_s in _RUNTIME:
        assert check_sql(text, TABLES) == [], text
        assert box.run(text, timeout_s=limit_s, max_rows=1000).reason == want, text

    # the second layer on its own: every hostile text run unchecked inside the sandbox
    for text, _ in corpus:
        got = box.run(text, timeout_s=0.5, max_rows=1000, check=False)
        assert secret not in repr(got.rows) and "root:" not in repr(got.rows), text
        if "read_" in text or "secret.csv" in text or "glob" in text or "/etc/passwd" in text:
            assert not got.ok, text
    assert _snapshot_dir(tmp_path) == before_dir  # no file written, none changed
    assert sorted(os.listdir()) == before_cwd  # nothing spilled next to the process either
    assert _snapshot_tables(box) == before_tables
    tables_now = box.run("SELECT table_name FROM duckdb_tables() ORDER BY 1", check=False).rows
    assert [t[0] for t in tables_now] == sorted(TABLES)
    settings = box.run("SELECT current_setting('enable_external_access'), current_setting('threads'), "
                       "current_setting('lock_configuration')", check=False).rows[0]
    assert settings == (False, 1, True)


def test_well_formed_read_only_queries_are_accepted_and_run(boxes):
    for text in _BENIGN:
        assert check_sql(text, TABLES) == [], text
        for box in boxes:
            got = box.run(text)
            assert got.ok, (text, got.error)


def test_a_sandbox_stays_usable_after_a_timeout_and_run_sql_builds_one_from_an_instance(data, boxes):
    box = boxes[1]
    assert box.run(_RUNTIME[0][0], timeout_s=0.3).reason == "timeout"  # 10^12 rows: far past any limit
    assert box.run("SELECT count(*) FROM customers").ok
    inst = build_instance(data.ddl, data.spec, 5)
    got = run_sql(inst, "SELECT count(*) FROM customers")
    assert got.ok and got.rows[0][0] == inst.row_counts()["customers"]


# ---------------------------------------------------------------------------------------------------- scoring
def test_results_are_bags_duplicates_count_and_order_is_free_without_order_by(boxes):
    ref = "SELECT city FROM customers WHERE country = 'France'"
    assert not execution_match("SELECT DISTINCT city FROM customers WHERE country = 'France'", ref, boxes).correct
    assert execution_match("SELECT city FROM customers WHERE country = 'France' ORDER BY city DESC", ref,
                           boxes).correct
    assert not execution_match("SELECT city, country FROM customers WHERE country = 'France'", ref, boxes).correct
    # set semantics the other way round: a DISTINCT reference is not met by the bag
    dref = "SELECT DISTINCT country FROM customers"
    assert not execution_match("SELECT country FROM customers", dref, boxes).correct
    assert execution_match("SELECT country FROM customers GROUP BY country", dref, boxes).correct


def test_row_order_counts_only_when_the_reference_orders_at_top_level(boxes):
    ref = "SELECT name, price FROM products ORDER BY price DESC, product_id"
    assert execution_match("select name, price from products order by price desc, product_id", ref, boxes).correct
    out = execution_match("SELECT name, price FROM products ORDER BY price ASC, product_id", ref, boxes)
    assert not out.correct and out.reason == "wrong_result"
    assert ordered(ref) and ordered("SELECT 1 UNION SELECT 2 ORDER BY 1")
    assert not ordered("SELECT * FROM (SELECT * FROM products ORDER BY price) t")
    assert not ordered("SELECT string_agg(name ORDER BY name) FROM products")


def test_a_query_right_by_accident_on_one_instance_is_wrong(boxes):
    ref = "SELECT count(*) FROM customers"
    n_first = boxes[0].run(ref).rows[0][0]
    out = execution_match(f"SELECT {n_first}", ref, boxes)
    assert out.per_instance == (True, False) and not out.correct and out.reason == "wrong_result"


def test_values_are_compared_after_sensible_normalisation(boxes):
    assert execution_match("SELECT sum(price) / count(price) FROM products", "SELECT avg(price) FROM products",
                           boxes).correct
    assert execution_match("SELECT CAST(count(*) AS DOUBLE) FROM orders", "SELECT count(*) FROM orders",
                           boxes).correct
    assert execution_match("SELECT CAST(signup_date AS TIMESTAMP) FROM customers",
                           "SELECT signup_date FROM customers", boxes).correct
    assert not execution_match("SELECT round(avg(price), 1) FROM products", "SELECT avg(price) FROM products",
                               boxes).correct
    out = execution_match("SELECT no_such_column FROM products", "SELECT 1", boxes)
    assert not out.correct and out.reason == "execution_error"
    out = execution_match("DROP TABLE products", "SELECT 1", boxes)
    assert not out.correct and out.reason == "not_read_only"


def test_result_signature_and_sql_key_group_the_same_query(boxes):
    a = query_signature("SELECT count(*) FROM customers WHERE city = 'Paris'", boxes)
    b = query_signature("select count(customer_id) from customers where 'Paris' = city", boxes)
    c = query_signature("SELECT count(*) FROM customers WHERE city = 'Lyon'", boxes)
    assert a is not None and a == b and a != c
    assert query_signature("SELECT nope FROM customers", boxes) is None
    assert sql_key("select  a, COUNT(*) from T where b > 1 group by a;") == \
        sql_key("SELECT A, count(*)\nFROM t WHERE b > 1 GROUP BY a")
    assert sql_key("SELECT * FROM t WHERE c = 'Paris'") != sql_key("SELECT * FROM t WHERE c = 'paris'")


# ------------------------------------------------------------------------------------------------------ golden
def test_every_golden_reference_passes_runs_and_mostly_returns_rows(boxes):
    rows = [json.loads(line) for line in GOLDEN.read_text().splitlines() if line.strip()]
    assert len(rows) >= 200
    assert len({r["prompt"] for r in rows}) == len(rows)
    assert {r["topic"] for r in rows} == set(TOPICS)
    empty_somewhere = 0
    for r in rows:
        assert set(r) >= {"prompt", "completion", "topic"}
        assert check_sql(r["completion"], TABLES) == [], r
        results = [box.run(r["completion"], check=False) for box in boxes]
        assert all(x.ok for x in results), (r, [x.error for x in results])
        empties = [_empty(x) for x in results]
        assert not all(empties), r  # not empty on every instance
        empty_somewhere += any(empties)
    assert empty_somewhere <= 0.05 * len(rows)


# ----------------------------------------------------------------------------------------------------- grammar
def test_grammar_sample_all_pass_the_check_and_run_on_every_instance(boxes):
    items = generate_items(500, seed=17)
    empty = 0
    for it in items:
        assert check_sql(it.sql, TABLES) == [], it
        results = [box.run(it.sql, check=False) for box in boxes]
        assert all(x.ok for x in results), (it, [x.error for x in results])
        empty += all(_empty(x) for x in results)
    assert empty <= 0.1 * len(items)


def test_grammar_is_deterministic_and_covers_styles_topics_and_difficulties():
    assert generate_item(42) == generate_item(42)
    assert generate_item(42) != generate_item(43)
    items = [generate_item(s) for s in range(2000)]  # topic, style and difficulty drawn from each seed
    for field, names in (("style", STYLES), ("topic", TOPICS), ("difficulty", (1, 2, 3))):
        counts = collections.Counter(getattr(i, field) for i in items)
        assert set(counts) == set(names), field
        assert min(counts.values()) >= 0.05 * len(items), (field, counts)
    assert len({(i.question, i.sql) for i in items}) >= 0.95 * len(items)
    many = generate_items(10_000, seed=1)
    assert len({i.question for i in many}) >= 9_000 and len({i.sql for i in many}) >= 2_500


def test_golden_prompts_are_not_grammar_output():
    golden = {json.loads(line)["prompt"].lower() for line in GOLDEN.read_text().splitlines() if line.strip()}
    assert not golden & {i.question.lower() for i in generate_items(5_000, seed=3)}
