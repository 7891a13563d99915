"""The sql kind's keys in a domain file, and the gate checks that go with its gate keys.

A domain file keeps one section per concern; the sql kind adds its own keys to the generic sections by
subclassing them (as the regex kind does), so a typo still fails naming the key:

- ``task``: ``ddl`` (the schema, a DuckDB DDL file) and ``data`` (its data-generation spec, which names the same
  DDL), both paths relative to the project root (the folder holding ``configs/``); ``instance_seeds``, the
  database instances every query is judged on (two or more, so a query right by accident on one is caught);
- ``validation``: the sandbox's limits (``query_timeout_s`` per query and instance, ``max_rows``,
  ``memory_limit``), the longest answer kept (``max_sql_chars``) and whether a query that returns nothing on
  every instance is kept (``reject_empty_result``: such a query cannot tell a right answer from a wrong one);
- ``gate``: floors on the share of outputs that parse (``min_parse_rate``) and on the share of parsed outputs
  that are read-only (``min_read_only_rate``).

``SqlDomainConfig`` is ``KIND.config_model``: what ``load_domain`` validates a ``task.kind: sql`` file with.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from schemas.config import DomainConfig, GateConfig, TaskConfig, ValidationConfig, configs_dir
from tasks.kinds.sql.data import DEFAULT_SEEDS
from tasks.kinds.sql.phrasing import STYLES


def resolve_path(path: str) -> Path:
    """A domain file's path: absolute as given, else relative to the folder that holds ``configs/`` (the project
    root, or the parent of ``$LORAFORGE_CONFIGS``), so a run works from any working directory."""
    p = Path(path)
    return p if p.is_absolute() else configs_dir().parent / p


class SqlTask(TaskConfig):
    """The schema and data the queries run on; the prompt says "sql" by default."""

    style_names: ClassVar[tuple[str, ...]] = STYLES  # the phrasing styles the grammar teacher honours

    prompt_template: str = "sql: {description}\n"  # ends on a newline: a token-boundary prefix
    ddl: str = "configs/sql/shop.sql"  # the schema (CREATE TABLE statements) the student writes queries for
    data: str = "configs/sql/shop.yaml"  # the data-generation spec (tasks/kinds/sql/data.py); it names the DDL
    instance_seeds: tuple[int, ...] = DEFAULT_SEEDS  # one database instance per seed; a query is judged on all
    topics: dict[str, float] = Field(default_factory=lambda: {"filters": 1.0})
    # every phrasing style of the grammar, equally (a stored run config must name some: {} does not validate)
    styles: dict[str, float] = Field(default_factory=lambda: dict.fromkeys(STYLES, 1.0))

    @field_validator("instance_seeds")
    @classmethod
    def _two_or_more(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(v)) < 2 or len(set(v)) != len(v):
            raise ValueError("needs two or more distinct seeds (a query right by accident on one instance is "
                             "caught on another), e.g. [101, 202]")
        return v


class SqlValidation(ValidationConfig):
    """The sandbox's limits and what a kept query must return (checks and reason codes: checks.py)."""

    query_timeout_s: float = Field(2.0, gt=0)  # per query and instance: the query is interrupted past it
    max_rows: int = Field(10_000, gt=0)  # a query returning more is rejected (too_many_rows)
    memory_limit: str = "256MB"  # DuckDB's memory_limit of each sandbox
    max_sql_chars: int = Field(400, gt=0)  # longer answers: sql_too_long
    reject_empty_result: bool = True  # no rows (or one row of NULLs) on every instance: empty_result


class SqlGate(GateConfig):
    """Floors on the share of outputs that parse and on the share of parsed outputs that are read-only."""

    min_parse_rate: float = Field(0.9, ge=0, le=1)
    min_read_only_rate: float = Field(0.99, ge=0, le=1)

    def candidate_checks(self, candidate: dict) -> list[dict]:
        from tasks.registry import gate_check

        return [gate_check("min_parse_rate", candidate["parse_rate"], self.min_parse_rate,
                           candidate["parse_rate"] >= self.min_parse_rate),
                gate_check("min_read_only_rate", candidate["read_only_rate"], self.min_read_only_rate,
                           candidate["read_only_rate"] >= self.min_read_only_rate)]


class SqlDomainConfig(DomainConfig):
    """A domain of the sql kind: the generic sections with the kind's keys added."""

    task: SqlTask = SqlTask()
    validation: SqlValidation = SqlValidation()
    gate: SqlGate = SqlGate()
