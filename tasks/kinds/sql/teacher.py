"""The sql kind's side of the teachers: what a teacher returns, what an LLM teacher is asked, how the offline
grammar and the mock teacher server answer, and the tiny student's tokenizer text.

- ``SqlOutput``: ``description`` (the question as a person types it) + ``sql`` (one read-only DuckDB query); its
  JSON schema is the ``response_format`` an OpenAI-compatible teacher gets.
- ``messages(spec, params)``: the system and user message for one seeded request spec: the schema's DDL, the
  values the data holds (so questions name cities and statuses that exist), the topic with what it means, the
  difficulty, seed and phrasing style, and the house conventions of the reference queries (``grammar``).
- ``grammar_answer``: the offline teacher (``grammar.generate_item``) for a request. It speaks the shop schema's
  tables; its values come from the domain's data spec; its template is the answer's ``concept`` label.
- ``mock_answer``: the mock server's answer to a user message written by ``messages`` (its ``topic:``,
  ``difficulty:``, ``seed:``, ``style:`` lines), with the kind's content faults ``write_statement`` (a DELETE) and
  ``prose_around_sql`` (the query inside a sentence).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import Field

from schemas.example import RequestSpec, TeacherOutput


class SqlOutput(TeacherOutput):
    """What a teacher must return for the sql kind (the JSON schema asked of OpenAI teachers too)."""

    sql: str = Field(min_length=1)


def request_params(cfg) -> dict[str, Any]:
    """The kind's part of a teacher request (hashed with it): where the schema is, and a hash of its content."""
    from tasks.kinds.sql.database import fingerprint, load_data

    return {"ddl": cfg.task.ddl, "data": cfg.task.data, "schema_hash": fingerprint(load_data(cfg.task.ddl,
                                                                                               cfg.task.data))}


# ------------------------------------------------------------------------------------------ LLM teacher prompt
SYSTEM_PROMPT = ("You write training data for a model that turns questions about a database, asked in plain "
                 "language, into one DuckDB SQL query. Answer with a single JSON object and nothing else.")
TOPIC_HINTS = {
    "filters": "rows of one table filtered by one or more conditions (equality, ranges, IN, NOT, OR, LIKE)",
    "joins": "rows that need two or more tables joined (orders with their customers, items with products, "
             "customers who never ordered)",
    "aggregates": "one number: a count, sum, average, minimum or maximum, maybe filtered",
    "group_having": "a figure per group (GROUP BY), maybe only groups passing a condition (HAVING)",
    "top_n": "the N largest or smallest by some measure (ORDER BY ... LIMIT N)",
    "dates": "conditions or groups on dates and timestamps (a month, a year, a range of days, a weekday, delays)",
    "nulls": "missing values: IS NULL / IS NOT NULL, COALESCE",
    "distinct": "distinct values, or the number of distinct values",
    "ordering": "rows in a stated order (ORDER BY one or more columns)",
}
STYLE_HINTS = {  # the phrasing styles of phrasing.py, as an LLM teacher is asked for them
    "terse": "a terse label, as typed into a search box (e.g. 'customers in Paris')",
    "question": "a question (e.g. 'Which customers live in Paris?')",
    "imperative": "an imperative request (e.g. 'List the customers in Paris.')",
    "need": "a statement of need (e.g. 'I need the number of cancelled orders')",
    "explain": "a sentence of context (who needs it and why), then the ask",
}
_STYLE_CHOICES = tuple(STYLE_HINTS)
CONVENTIONS = (
    "one line; SQL keywords in upper case; aliases c, p, o, oi when tables are joined",
    "a table named alone ('customers') means every column (*); name columns when the question names them",
    "every ORDER BY ends on a unique key (the id), so the row order is fully determined",
    "money spent is quantity * unit_price; a month is a half-open range on the timestamp",
    "only the schema's tables; no DDL or DML, no files, no settings: one read-only SELECT (or WITH ... SELECT)",
)


def data_values(spec: dict, limit: int = 12) -> list[str]:
    """``table.column: v1, v2, ...`` for the columns the data spec draws from fixed value lists."""
    out = []
    for table, tspec in spec["tables"].items():
        for col, gen in tspec["columns"].items():
            values = gen.get("values")
            if isinstance(values, dict):
                values = [v for vs in values.values() for v in vs]
            if gen.get("gen") in ("choice", "choice_by") and values:
                shown = ", ".join(map(str, values[:limit])) + (", ..." if len(values) > limit else "")
                out.append(f"{table}.{col}: {shown}")
    return out


def messages(spec: RequestSpec, params: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages for a seeded spec: the schema, topic, difficulty, seed and phrasing style."""
    from tasks.kinds.sql.database import load_data

    data = load_data(params["ddl"], params["data"])
    style = STYLE_HINTS.get(spec.style or "") or STYLE_HINTS[_STYLE_CHOICES[
        int(hashlib.sha256(f"style:{spec.seed}".encode()).hexdigest(), 16) % len(_STYLE_CHOICES)]]
    user = "\n".join([
        "Write ONE training example for an assistant that writes DuckDB SQL over this schema:",
        "",
        data.ddl.strip(),
        "",
        "Values the data holds: " + "; ".join(data_values(data.spec)),
        "",
        f"topic: {spec.topic}",
        f"topic means: {TOPIC_HINTS.get(spec.topic, spec.topic)}",
        f"difficulty: {spec.difficulty} (1 = simple; higher = more conditions, a join or an extra clause)",
        f"seed: {spec.seed}",
        f"style: {style}",
        *(spec.focus.prompt_lines() if spec.focus else []),  # a focused request: the failing one as the example
        "",
        "Return a JSON object with exactly these keys:",
        (f'- "description": the question a person would really ask about the data, phrased as {style}; name '
         "things as people name them, not as columns."),
        '- "sql": only the query that answers it, no prose, no markdown fences, no trailing semicolon.',
        "House conventions of the query: " + "; ".join(CONVENTIONS) + ".",
        "Use the seed to vary your choice of question within the topic.",
    ])
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


# ------------------------------------------------------------------------------------------ offline teacher
def grammar_answer(spec: RequestSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The grammar's item for the spec, its values drawn from the domain's data spec. Its template rides along as
    the ``concept`` label the failure report slices by, with its style (the parser ignores extra keys); a focused
    request (``spec.focus``) draws the failed item's template again, with new values and phrasing."""
    from tasks.kinds.sql.config import resolve_path
    from tasks.kinds.sql.grammar import generate_item
    from tasks.kinds.sql.lexicon import shop_lexicon

    try:
        lex = shop_lexicon(str(resolve_path(params["data"])))
    except KeyError as e:
        raise ValueError(f"the offline sql grammar writes questions about the shop schema's tables (customers, "
                         f"products, orders, order_items); {params['data']} lacks {e}: use an OpenAI-compatible "
                         "teacher (teacher.provider: openai) for another schema") from None
    item = generate_item(spec.seed, spec.topic, spec.difficulty, spec.style, lex,
                         template=spec.focus.concept if spec.focus else None)
    return {"description": item.question, "sql": item.sql, "concept": item.template, "style": item.style}


def tokenizer_corpus(n: int) -> list[str]:
    """Questions and reference queries of ``n`` seeded grammar items (every topic and style)."""
    from tasks.kinds.sql.grammar import generate_items

    return [t for it in generate_items(n, seed=10_000_000) for t in (it.question, it.sql)]


# ------------------------------------------------------------------------------------------ mock teacher
_SEED = re.compile(r"^seed:\s*(-?\d+)", re.MULTILINE)
_TOPIC = re.compile(r"^topic:\s*([\w.-]+)", re.MULTILINE)
_DIFFICULTY = re.compile(r"^difficulty:\s*(\d+)", re.MULTILINE)
MOCK_FAULTS = ("write_statement", "prose_around_sql")


def mock_answer(user: str, fault: str | None = None) -> dict[str, Any]:
    """The grammar's item for the seed, topic and difficulty in the user message, shaped by a content fault."""
    from tasks.kinds.sql.grammar import TOPICS, generate_item

    seed_m, topic_m, diff_m = _SEED.search(user), _TOPIC.search(user), _DIFFICULTY.search(user)
    seed = int(seed_m.group(1)) if seed_m else int(hashlib.sha256(user.encode()).hexdigest()[:8], 16)
    topic = topic_m.group(1) if topic_m and topic_m.group(1) in TOPICS else "filters"
    difficulty = int(diff_m.group(1)) if diff_m and diff_m.group(1) in ("1", "2", "3") else 2
    item = generate_item(seed, topic, difficulty)
    answer = {"description": item.question, "sql": item.sql}
    if fault == "write_statement":
        answer["sql"] = "DELETE FROM orders WHERE status = 'cancelled'"
    elif fault == "prose_around_sql":
        answer["sql"] = f"Here is the query: {item.sql}"
    return answer
