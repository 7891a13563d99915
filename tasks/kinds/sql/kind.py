"""``SqlKind``: the sql kind behind the generic seam (tasks/kinds/__init__.py says what each method is for).

It wires the package's modules to the interface and holds no logic of its own beyond small adapters: the checks
are in ``checks``, scoring in ``scoring``, the databases in ``database`` (over ``data``, ``sandbox``, ``parse``,
``score``), the teachers' side in ``teacher`` and ``grammar``, the config keys and gate checks in ``config``, the
server's side in ``serve``.
"""

from __future__ import annotations

from typing import Any

from tasks.kinds import Kind
from tasks.kinds.sql import checks, scoring, teacher

VALIDATOR_VERSION = "sql-v1"
# request words that say "a query, please" rather than what to fetch (prompt decontamination ignores them)
STOP_WORDS = frozenset(["sql", "query", "show", "list", "give", "get", "find", "fetch", "display", "return",
                        "please", "pls", "can", "you", "i", "need", "want", "see", "all", "database"])


class SqlKind(Kind):
    name = "sql"
    validator_version = VALIDATOR_VERSION
    check_reasons = checks.CHECK_REASONS
    overlap_reasons = checks.OVERLAP_REASONS
    stop_words = STOP_WORDS
    item_field_names = ()
    metric_keys = ("parse_rate", "read_only_rate")
    headline_metric = ("parse", "parse_rate")
    mock_faults = teacher.MOCK_FAULTS

    @property
    def config_model(self):
        from tasks.kinds.sql.config import SqlDomainConfig

        return SqlDomainConfig

    def normalise_completion(self, text: str) -> str:
        return checks.normalise(text)

    # -- teachers ----------------------------------------------------------------------------------------------
    @property
    def output_model(self):
        return teacher.SqlOutput

    def request_params(self, cfg) -> dict:
        return teacher.request_params(cfg)

    def teacher_messages(self, spec, params):
        return teacher.messages(spec, params)

    def grammar_answer(self, spec, params):
        return teacher.grammar_answer(spec, params)

    def mock_answer(self, user, fault=None):
        return teacher.mock_answer(user, fault)

    def tokenizer_corpus(self, n: int) -> list[str]:
        return teacher.tokenizer_corpus(n)

    # -- validation --------------------------------------------------------------------------------------------
    def completion_of(self, output) -> str:
        return output.sql

    def output_from_row(self, row: dict) -> tuple[Any, bool]:
        """A row needs nothing besides its SQL: the checks run it on the domain's own databases."""
        return self.output_model(description=row.get("description") or row.get("prompt") or "-",
                                 sql=row["completion"]), True

    def check(self, verdicts, cfg, *, examples_given, eval_items):
        return checks.check(verdicts, cfg, eval_items=eval_items)

    def equivalence_classes(self, verdicts, cfg):
        return checks.equivalence_classes(verdicts)

    def decontaminate(self, verdicts, eval_items, state, cfg) -> None:
        checks.decontaminate(verdicts, state)

    # -- evaluation --------------------------------------------------------------------------------------------
    def completion_key(self, text: str) -> str:
        """The normalised SQL (DuckDB's serialisation: spacing, keyword case, a trailing ``;`` do not count)."""
        return checks.sql_key(self.normalise_completion(text))

    def score(self, items: list[dict], texts: list[str], cfg) -> list[dict]:
        return scoring.score(items, texts, cfg)

    def metrics(self, rows: list[dict]) -> dict:
        return scoring.metrics(rows)

    def topic_metrics(self, rows: list[dict]) -> dict:
        return scoring.topic_metrics(rows)

    def eval_settings(self, cfg) -> list:
        from tasks.kinds.sql.database import fingerprint, load_data

        v = cfg.validation
        return [fingerprint(load_data(cfg.task.ddl, cfg.task.data)), list(cfg.task.instance_seeds),
                v.query_timeout_s, v.max_rows, v.memory_limit]

    # -- serving -----------------------------------------------------------------------------------------------
    def serving(self, cfg):
        from tasks.kinds.sql.serve import SqlServeKind

        return SqlServeKind(self, cfg)


KIND = SqlKind()
