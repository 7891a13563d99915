"""The sql kind: a request in plain language -> one read-only DuckDB query over a domain's schema, judged by execution.

``KIND`` (tasks/kinds/sql/kind.py) is what the registry hands out. A domain names a schema (DDL) and a
data-generation spec in ``configs/sql/`` (``task.ddl`` / ``task.data``: ``shop.sql`` / ``shop.yaml`` for
``sql-shop``); the golden set is ``configs/golden/sql-shop.jsonl`` (``prompt``, ``completion`` = SQL, ``topic``).
The package's modules, by concern:

- ``data``: the spec read (``load_spec``) and database instances built from it, one per seed (``build_instance``,
  ``build_instances``, ``DEFAULT_SEEDS``);
- ``parse``: DuckDB's own parse tree (statement types, ``json_serialize_sql``), top-level ``ORDER BY``
  (``ordered``) and the normalised SQL dedup key (``sql_key``);
- ``sandbox``: ``check_sql`` (reason codes: one statement, only SQL, parses, read-only, allowed functions and
  tables) and ``Sandbox`` / ``run_sql`` (a locked-down in-memory copy per instance: no external access, no
  extension loading, memory/thread/time/row limits, read-only transaction always rolled back);
- ``score``: execution accuracy as Spider's test-suite evaluation defines it (bags, order only under a top-level
  ``ORDER BY``, every instance must agree) and the result signature for semantic dedup;
- ``grammar`` (with ``lexicon``, ``phrasing`` and ``templates_*``): the offline teacher, questions in several
  styles across nine topics with reference queries;
- the seam's side: ``config`` (its keys in the domain file and its gate checks), ``database`` (a domain's
  sandboxes, built once per process), ``checks`` (validation, dedup, decontamination), ``scoring``
  (evaluation), ``teacher`` (output schema, LLM prompt, mock answers, tokenizer text), ``serve`` (the server's
  answer and test panel), ``kind`` (``SqlKind``).

This ``__init__`` imports nothing until a name is asked for (``from tasks.kinds.sql import check_sql`` still
works): resolving the kind should not cost more than the kind needs.
"""

from importlib import import_module

_NAMES = {
    "data": ("DEFAULT_SEEDS", "DataSpec", "Instance", "build_instance", "build_instances", "load_spec"),
    "grammar": ("STYLES", "TOPICS", "SqlItem", "generate_item", "generate_items"),
    "parse": ("ordered", "sql_key"),
    "sandbox": ("READ_ONLY_REASONS", "REASONS", "RunResult", "Sandbox", "check_sql", "run_sql"),
    "score": ("Outcome", "Reference", "execution_match", "query_signature", "reference", "result_signature",
              "same_result"),  # not ``score``: the name of the submodule too
    "kind": ("KIND", "VALIDATOR_VERSION"),
}
_WHERE = {name: module for module, names in _NAMES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"tasks.kinds.sql.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
