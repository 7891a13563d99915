"""A domain's databases: its schema and data spec read once, and one sandbox per instance seed, per process.

Validation, scoring and the server's test panel all run queries on the same locked-down in-memory instances
(``sandbox.Sandbox``), built from ``task.ddl`` + ``task.data`` + ``task.instance_seeds`` on first use and kept
for the life of the process (building the shop's two instances takes ~0.4 s; a sandbox serialises its own
calls, so threads may share it). ``fingerprint`` hashes the DDL and the spec: it goes into every teacher request
and evaluation cache key, so editing the schema or its data invalidates what was computed on the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from schemas.example import content_hash
from tasks.kinds.sql.config import resolve_path
from tasks.kinds.sql.data import DataSpec, build_instances, load_spec
from tasks.kinds.sql.sandbox import Sandbox

if TYPE_CHECKING:
    from tasks.kinds.sql.config import SqlDomainConfig


@dataclass(frozen=True)
class Database:
    """The schema and data of a domain, and a sandbox per instance (in ``instance_seeds`` order)."""

    data: DataSpec
    tables: tuple[str, ...]
    boxes: tuple[Sandbox, ...]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.data)


def fingerprint(data: DataSpec) -> str:
    return content_hash("sql-data", data.ddl, data.spec, n=16)


@cache
def load_data(ddl: str, data: str) -> DataSpec:
    """The data spec at ``data`` (paths as a domain file writes them); its DDL must be the file ``ddl``."""
    ddl_path, data_path = resolve_path(ddl), resolve_path(data)
    for key, path in (("task.ddl", ddl_path), ("task.data", data_path)):
        if not path.is_file():
            raise FileNotFoundError(f"{key}: {path} does not exist (paths are relative to the project root, "
                                    "e.g. configs/sql/shop.sql)")
    spec = load_spec(data_path)
    if ddl_path.read_text() != spec.ddl:
        raise ValueError(f"task.ddl {ddl} is not the schema the data spec {data} names ({spec.spec['schema']!r}); "
                         "name the same file in both")
    return spec


@cache
def open_database(ddl: str, data: str, seeds: tuple[int, ...], memory_limit: str) -> Database:
    """The databases for a schema, data spec, seeds and memory limit (``database_key``), built once per process."""
    spec = load_data(ddl, data)
    boxes = tuple(Sandbox(inst, memory_limit=memory_limit) for inst in build_instances(spec, seeds))
    return Database(data=spec, tables=boxes[0].tables, boxes=boxes)


def database_key(cfg: SqlDomainConfig) -> tuple[str, str, tuple[int, ...], str]:
    return cfg.task.ddl, cfg.task.data, tuple(cfg.task.instance_seeds), cfg.validation.memory_limit


def database(cfg: SqlDomainConfig) -> Database:
    """The domain's databases, built once per process for its schema, data spec, seeds and memory limit."""
    return open_database(*database_key(cfg))
