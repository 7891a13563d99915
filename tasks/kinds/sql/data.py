"""Database instances for the sql kind: a domain's DDL plus its data-generation spec, filled from a seed.

Execution accuracy (``score``) runs a query on two or more instances built from different seeds, so each
instance must be fully determined by ``(ddl, spec, seed)`` and two seeds must give different data: row counts
are drawn from ranges, every value from the seed. The spec (``configs/sql/<schema>.yaml``) describes each
column with a small generator vocabulary:

- ``serial`` (1, 2, ...), ``int`` / ``decimal`` (``range``, optional ``skew`` towards the low end and
  ``zero_rate``), ``bool`` (``rate``), ``choice`` (``values``, optional ``weights``), ``date`` / ``timestamp``
  (``range``);
- derived ones: ``choice_by`` (a value list per value of an earlier ``key`` column), ``combo_by`` (a word from
  ``first`` plus a word chosen by ``key``), ``email`` (from two name columns), ``after`` (an earlier timestamp
  plus ``days``);
- relations: ``ref`` (a key of an earlier table, ``skew`` > 0 makes some parents popular and leaves others
  unused), ``lookup`` (a column of the referenced row, times one of ``factors``), and for child tables
  generated ``per_parent``: ``parent`` (the parent's key) and ``line`` (1, 2, ... within the parent).

``null_rate`` and ``null_when`` apply to any column, after the row is complete, so derived columns see the
value. Small pools of names and cities make duplicates common, so bag semantics and ``DISTINCT`` matter.
The DDL is read by DuckDB itself (column order, table names), never by pattern matching.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import yaml

_CENT = Decimal("0.01")
DEFAULT_SEEDS = (101, 202)  # instances a query is judged on unless the domain names its own


@dataclass(frozen=True, eq=False)
class Instance:
    """One generated database: ``tables`` maps table -> column -> values, columns in the DDL's order."""

    seed: int
    ddl: str
    tables: dict[str, dict[str, list]]

    def table_names(self) -> tuple[str, ...]:
        return tuple(self.tables)

    def row_counts(self) -> dict[str, int]:
        return {t: len(next(iter(cols.values()))) if cols else 0 for t, cols in self.tables.items()}

    def load_into(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create the schema on ``con`` and bulk-insert the rows (Arrow, never row by row)."""
        con.execute(self.ddl)
        for table, cols in self.tables.items():
            con.register("_loraforge_src", pa.Table.from_pydict(cols))
            try:
                con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _loraforge_src')
            finally:
                con.unregister("_loraforge_src")


@dataclass(frozen=True)
class DataSpec:
    """A schema (DDL text) and its generation spec, as read from ``configs/sql``."""

    name: str
    ddl: str
    spec: dict


def load_spec(path: str | Path) -> DataSpec:
    """Read ``configs/sql/<name>.yaml`` and the DDL file it names (relative to the YAML)."""
    path = Path(path)
    spec = yaml.safe_load(path.read_text())
    if not isinstance(spec, dict) or "schema" not in spec or "tables" not in spec:
        raise ValueError(f"{path}: a data spec needs 'schema' (the DDL file) and 'tables'")
    ddl = (path.parent / spec["schema"]).read_text()
    missing = set(schema_columns(ddl)) ^ set(spec["tables"])
    if missing:
        raise ValueError(f"{path}: tables in the DDL and the spec differ: {sorted(missing)}")
    return DataSpec(name=path.stem, ddl=ddl, spec=spec)


def schema_columns(ddl: str) -> dict[str, list[str]]:
    """Table -> column names in declaration order, as DuckDB reads the DDL (tables in creation order)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(ddl)
        rows = con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE table_oid IN "
                           "(SELECT table_oid FROM duckdb_tables() WHERE NOT internal) "
                           "ORDER BY table_oid, column_index").fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def build_instance(ddl: str, spec: dict, seed: int) -> Instance:
    """Fill the schema from ``spec`` with ``seed``: the same inputs always give the same rows."""
    layout = schema_columns(ddl)
    made: dict[str, dict[str, list]] = {}
    for table, tspec in spec["tables"].items():
        if table not in layout:
            raise ValueError(f"spec table {table!r} is not in the DDL (tables: {sorted(layout)})")
        rng = random.Random(f"{seed}:{table}")
        rows = _table_rows(table, tspec, made, rng)
        cols = layout[table]
        unknown = set(tspec["columns"]) - set(cols)
        if unknown or set(cols) - set(tspec["columns"]):
            raise ValueError(f"spec for {table!r} must describe exactly its columns {cols}, differs on "
                             f"{sorted(unknown ^ (set(cols) - set(tspec['columns'])))}")
        made[table] = {c: [r[c] for r in rows] for c in cols}
    return Instance(seed=seed, ddl=ddl, tables={t: made[t] for t in layout})


def build_instances(data: DataSpec, seeds: tuple[int, ...] | list[int] = DEFAULT_SEEDS) -> list[Instance]:
    return [build_instance(data.ddl, data.spec, s) for s in seeds]


# ------------------------------------------------------------------------------------------------- generation
def _table_rows(table: str, tspec: dict, made: dict[str, dict[str, list]], rng: random.Random) -> list[dict]:
    """Rows of one table as dicts; NULLs applied after each row is complete."""
    columns: dict[str, dict] = tspec["columns"]
    refs = {c: _RefPicker(made, g, rng) for c, g in columns.items() if g["gen"] == "ref"}
    lookups = {c: _index(made, g) for c, g in columns.items() if g["gen"] == "lookup"}
    if "per_parent" in tspec:  # child rows: (parent row index, line number)
        pp = tspec["per_parent"]
        n_parents = len(next(iter(made[pp["table"]].values())))
        slots = [(p, line) for p in range(n_parents)
                 for line in range(1, rng.choices(pp["counts"], pp.get("weights"))[0] + 1)]
    else:
        lo_hi = tspec["rows"]
        n = rng.randint(*lo_hi) if isinstance(lo_hi, list) else int(lo_hi)
        slots = [(None, i + 1) for i in range(n)]
    rows = []
    for i, (parent, line) in enumerate(slots):
        row: dict = {}
        for col, gen in columns.items():
            row[col] = _value(gen, row, rng, i, parent, line, made, refs.get(col), lookups.get(col), tspec)
        for col, gen in columns.items():
            when = gen.get("null_when", {})
            if any(row[k] in vals for k, vals in when.items()) or rng.random() < gen.get("null_rate", 0.0):
                row[col] = None
        rows.append(row)
    return rows


def _value(gen: dict, row: dict, rng: random.Random, i: int, parent, line: int, made, ref, lookup, tspec):
    kind = gen["gen"]
    if kind == "serial":
        return gen.get("start", 1) + i
    if kind == "choice":
        return rng.choices(gen["values"], gen.get("weights"))[0]
    if kind == "choice_by":
        return rng.choice(gen["values"][row[gen["key"]]])
    if kind == "combo_by":
        return f"{rng.choice(gen['first'])} {rng.choice(gen['values'][row[gen['key']]])}"
    if kind == "bool":
        return rng.random() < gen["rate"]
    if kind in ("int", "decimal"):
        if rng.random() < gen.get("zero_rate", 0.0):
            return 0 if kind == "int" else Decimal("0.00")
        lo, hi = gen["range"]
        if kind == "int":
            return rng.randint(lo, hi)
        return Decimal(str(lo + (hi - lo) * rng.random() ** gen.get("skew", 1.0))).quantize(_CENT)
    if kind == "date":
        lo, hi = (dt.date.fromisoformat(str(d)) for d in gen["range"])
        return lo + dt.timedelta(days=rng.randint(0, (hi - lo).days))
    if kind == "timestamp":
        lo, hi = (dt.datetime.fromisoformat(str(d)) for d in gen["range"])
        return lo + dt.timedelta(seconds=rng.randint(0, int((hi - lo).total_seconds())))
    if kind == "after":
        lo, hi = gen["days"]
        return row[gen["of"]] + dt.timedelta(seconds=round(rng.uniform(lo, hi) * 86400))
    if kind == "email":
        digits = str(rng.randint(1, 99)) if rng.random() < gen.get("digits_rate", 0.0) else ""
        return f"{row[gen['first']].lower()}.{row[gen['last']].lower()}{digits}@{rng.choice(gen['domains'])}"
    if kind == "ref":
        return ref.pick()
    if kind == "lookup":
        factor = rng.choices(gen["factors"], gen.get("weights"))[0] if "factors" in gen else 1
        return (Decimal(str(factor)) * lookup[row[gen["ref"]]]).quantize(_CENT)
    if kind == "parent":
        return made[tspec["per_parent"]["table"]][gen["column"]][parent]
    if kind == "line":
        return line
    raise ValueError(f"unknown generator {kind!r} (known: serial int decimal bool choice choice_by combo_by date "
                     "timestamp after email ref lookup parent line)")


class _RefPicker:
    """Draws keys of an earlier table; with ``skew`` s > 0 the k-th (in a seeded shuffle) has weight 1/k^s."""

    def __init__(self, made: dict, gen: dict, rng: random.Random):
        self.keys = list(made[gen["table"]][gen["column"]])
        rng.shuffle(self.keys)
        s = gen.get("skew", 0.0)
        self.cum = list(itertools.accumulate(1.0 / (k + 1) ** s for k in range(len(self.keys))))
        self.rng = rng

    def pick(self):
        return self.keys[bisect.bisect_left(self.cum, self.rng.random() * self.cum[-1])]


def _index(made: dict, gen: dict) -> dict:
    """Key -> looked-up value for a ``lookup`` column (the key column is named like the local ``ref``)."""
    src = made[gen["table"]]
    return dict(zip(src[gen.get("key", gen["ref"])], src[gen["column"]], strict=True))
