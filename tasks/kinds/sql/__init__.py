"""The sql kind: a request in plain language -> one read-only DuckDB query over a domain's schema, judged by execution.

A domain names a schema (DDL) and a data-generation spec in ``configs/sql/`` (``shop.sql`` / ``shop.yaml`` for
``sql-shop``); the golden set is ``configs/golden/sql-shop.jsonl`` (``prompt``, ``completion`` = SQL, ``topic``).

- ``data``: the spec read (``load_spec``) and database instances built from it, one per seed (``build_instance``,
  ``build_instances``, ``DEFAULT_SEEDS``);
- ``parse``: DuckDB's own parse tree (statement types, ``json_serialize_sql``), top-level ``ORDER BY``
  (``ordered``) and the normalised SQL dedup key (``sql_key``);
- ``sandbox``: ``check_sql`` (reason codes: one statement, only SQL, parses, read-only, allowed functions and
  tables) and ``Sandbox`` / ``run_sql`` (a locked-down in-memory copy per instance: no external access, no
  extension loading, memory/thread/time/row limits, read-only transaction always rolled back);
- ``score``: execution accuracy as Spider's test-suite evaluation defines it (bags, order only under a top-level
  ``ORDER BY``, every instance must agree) and the result signature for semantic dedup;
- ``grammar`` (with ``lexicon`` and ``phrasing``): the offline teacher, questions in several styles across nine
  topics with reference queries.

The functions here are plain (no Prefect, no loraforge store): the kind seam calls them.
"""

from tasks.kinds.sql.data import DEFAULT_SEEDS, DataSpec, Instance, build_instance, build_instances, load_spec
from tasks.kinds.sql.grammar import STYLES, TOPICS, SqlItem, generate_item, generate_items
from tasks.kinds.sql.parse import ordered, sql_key
from tasks.kinds.sql.sandbox import READ_ONLY_REASONS, REASONS, RunResult, Sandbox, check_sql, run_sql
from tasks.kinds.sql.score import (
    Outcome,
    Reference,
    execution_match,
    query_signature,
    reference,
    result_signature,
    same_result,
    score,
)

KIND = "sql"
VALIDATOR_VERSION = "sql-v1"

__all__ = ["DEFAULT_SEEDS", "KIND", "READ_ONLY_REASONS", "REASONS", "STYLES", "TOPICS", "VALIDATOR_VERSION", "DataSpec",
           "Instance", "Outcome", "Reference", "RunResult", "Sandbox", "SqlItem", "build_instance", "build_instances",
           "check_sql", "execution_match", "generate_item", "generate_items", "load_spec", "ordered", "query_signature",
           "reference", "result_signature", "run_sql", "same_result", "score", "sql_key"]
