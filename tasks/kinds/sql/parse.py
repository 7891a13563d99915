"""DuckDB's own parse tree of a query, and what the sql kind reads from it.

Every judgement about a query's shape — is it one SELECT, which tables and functions does it touch, does it end
in ``ORDER BY``, which other queries is it the same as — is taken from DuckDB's parser, never from the text:
``duckdb.extract_statements`` gives the statements and their types, ``json_serialize_sql`` the full tree of a
SELECT as JSON (query nodes, table references, expressions with their function names).

- ``statements(text)``: the statement types, in order (raises ``duckdb.ParserException`` on a syntax error).
- ``tree(sql)``: the JSON tree of one SELECT statement.
- ``references(tree)``: what the tree touches (query-node types, base tables, CTE names, table functions,
  functions).
- ``ordered(sql)``: does the top-level query end in ``ORDER BY`` (row order is then part of its result)?
- ``sql_key(sql)``: a normalised form for dedup: DuckDB's serialisation with positions dropped and
  identifiers lower-cased, printed back as SQL by ``json_deserialize_sql``; spacing, keyword case, ``COUNT(*)``
  vs ``count(*)`` or a trailing ``;`` do not change it, a different literal does.

The parser runs on one private, locked-down connection (no external access, no extension loading) guarded by a
lock, so the module is safe to call from several threads.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import duckdb

_LOCK = threading.Lock()
_CON: duckdb.DuckDBPyConnection | None = None
# JSON keys holding identifiers (lower-cased for the dedup key; DuckDB resolves unquoted names case-insensitively)
_IDENT_KEYS = frozenset(("table_name", "schema_name", "catalog_name", "function_name", "schema", "catalog", "alias",
                         "relation_name"))
_IDENT_LIST_KEYS = frozenset(("column_names", "aliases", "column_name_alias", "path"))


def _connection() -> duckdb.DuckDBPyConnection:
    """A connection that only parses: nothing on it can read a file or load an extension."""
    global _CON
    if _CON is None:
        con = duckdb.connect(":memory:", config={"threads": 1, "autoinstall_known_extensions": False,
                                                 "autoload_known_extensions": False,
                                                 "python_enable_replacements": False})
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        _CON = con
    return _CON


def statements(text: str) -> list[str]:
    """Statement types in ``text`` (``SELECT``, ``CREATE``, ``COPY``...); raises on a syntax error."""
    return [s.type.name for s in duckdb.extract_statements(text)]


def tree(sql: str) -> dict:
    """The JSON parse tree of one SELECT statement; ``ValueError`` when DuckDB cannot serialise it."""
    with _LOCK:
        raw = _connection().execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0]
    out = json.loads(raw)
    if out.get("error") or len(out.get("statements", ())) != 1:
        raise ValueError(out.get("error_message") or "not exactly one SELECT statement")
    return out["statements"][0]


@dataclass
class References:
    """What a parse tree touches."""

    node_types: set[str] = field(default_factory=set)  # SELECT_NODE, SET_OPERATION_NODE, DELETE_QUERY_NODE...
    ref_types: set[str] = field(default_factory=set)  # BASE_TABLE, JOIN, SUBQUERY, TABLE_FUNCTION, SHOW_REF...
    base_tables: list[tuple[str, str, str]] = field(default_factory=list)  # (catalog, schema, name)
    cte_names: set[str] = field(default_factory=set)
    table_functions: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)  # scalar, aggregate and window functions (operators too)


def references(stmt: dict) -> References:
    """Walk the whole tree once; every dict is classified by its ``type`` / ``class`` fields."""
    refs = References()
    stack: list = [stmt]
    while stack:
        obj = stack.pop()
        if isinstance(obj, list):
            stack.extend(obj)
            continue
        if not isinstance(obj, dict):
            continue
        kind = obj.get("type")
        if isinstance(kind, str):
            if kind.endswith("_NODE"):
                refs.node_types.add(kind)
            if "table_name" in obj or kind in ("TABLE_FUNCTION", "JOIN", "SUBQUERY", "EXPRESSION_LIST", "EMPTY",
                                               "PIVOT", "SHOW_REF", "COLUMN_DATA", "DELIM_GET", "CTE"):
                refs.ref_types.add(kind)
            if kind == "BASE_TABLE":
                refs.base_tables.append((obj.get("catalog_name", ""), obj.get("schema_name", ""),
                                         obj.get("table_name", "")))
            elif kind == "TABLE_FUNCTION":
                fn = obj.get("function") or {}
                refs.table_functions.add(str(fn.get("function_name", "")).lower())
                stack.append(fn.get("arguments", ()))  # the arguments, not the table function as a scalar one
                stack.extend(v for k, v in obj.items() if k != "function")
                continue
        if obj.get("class") in ("FUNCTION", "WINDOW") and "function_name" in obj:
            refs.functions.add(str(obj["function_name"]).lower())
        cte_map = obj.get("cte_map")
        if isinstance(cte_map, dict):
            refs.cte_names.update(str(e.get("key", "")).lower() for e in cte_map.get("map", ()))
        stack.extend(obj.values())
    return refs


def ordered(sql: str) -> bool:
    """Whether the top-level query has ``ORDER BY`` (an ``ORDER BY`` inside a subquery or function is not)."""
    node = tree(sql)["node"]
    return any(m.get("type") == "ORDER_MODIFIER" and m.get("orders") for m in node.get("modifiers", ()))


def sql_key(sql: str) -> str:
    """Normalised SQL for dedup: DuckDB's tree without positions, identifiers lower-cased, printed back as SQL."""
    stmt = tree(sql)
    doc = json.dumps({"error": False, "statements": [_normalise(stmt)]})
    with _LOCK:
        return _connection().execute("SELECT json_deserialize_sql(?::JSON)", [doc]).fetchone()[0]


def _normalise(obj):
    if isinstance(obj, list):
        return [_normalise(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for k, v in obj.items():
        if k in ("query_location", "query_location_length"):
            continue
        if k in _IDENT_KEYS and isinstance(v, str):
            v = v.lower()
        elif k in _IDENT_LIST_KEYS and isinstance(v, list) and all(isinstance(x, str) for x in v):
            v = [x.lower() for x in v]
        elif k == "map" and isinstance(v, list):  # CTE names are identifiers too
            v = [{**e, "key": e["key"].lower()} if isinstance(e, dict) and isinstance(e.get("key"), str) else e
                 for e in v]
        out[k] = _normalise(v)
    return out
