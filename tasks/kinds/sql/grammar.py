"""Offline, deterministic SQL teacher for the shop schema: questions people ask, with a reference query each.

A request is (seed, topic, difficulty, style). The topic picks one of its templates (``templates_rows``:
filters, joins, dates, NULLs, ordering; ``templates_summaries``: aggregates, group/having, top-N, distinct); the
template draws values from the ``Lexicon`` (cities, categories, statuses, price points, dates, ids that exist on
every instance) and filter predicates (``lexicon.Pred``), and returns what is asked (a ``phrasing.Ask``) with
its reference SQL;
``phrasing.render`` words it in the requested style. The difficulty raises the number of filters and the odds
of a join or an extra clause. The same inputs always give the same item; only private ``random.Random``
instances are used.

Topics: ``filters``, ``joins``, ``aggregates``, ``group_having``, ``top_n``, ``dates``, ``nulls``,
``distinct``, ``ordering``. House conventions of the reference queries (what a student learns):

- one line, keywords upper case, aliases ``c``/``p``/``o``/``oi`` when tables are joined;
- "customers" / "products" / "orders" alone means every column (``*``); named columns when the question names
  them; an aggregate is returned alone or after its group key;
- every ``ORDER BY`` ends on a unique key (the id) so the row order is fully determined, and a top-N question
  always has one; money is summed as ``quantity * unit_price``;
- a month is a half-open range on the timestamp, a year ``year(...)``, a day range ``CAST(... AS DATE)
  BETWEEN``.

Every generated query passes ``sandbox.check_sql`` and runs on the generated instances
(``tests/test_sql_kind.py`` checks a sample).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tasks.kinds.sql import templates_rows as rows
from tasks.kinds.sql import templates_summaries as sums
from tasks.kinds.sql.lexicon import Lexicon, Template, shop_lexicon
from tasks.kinds.sql.phrasing import STYLES, render

TOPICS: tuple[str, ...] = ("filters", "joins", "aggregates", "group_having", "top_n", "dates", "nulls", "distinct",
                           "ordering")
DIFFICULTIES = (1, 2, 3)
_DIFFICULTY_WEIGHTS = (0.3, 0.4, 0.3)


@dataclass(frozen=True)
class SqlItem:
    question: str
    sql: str
    topic: str
    difficulty: int
    style: str
    template: str


TEMPLATES: dict[str, tuple[Template, ...]] = {  # a template listed twice is drawn twice as often
    "filters": (rows.f_customers, rows.f_products, rows.f_orders, rows.f_in_list, rows.f_negation, rows.f_or),
    "joins": (rows.j_orders_of_customers, rows.j_orders_with_customer, rows.j_items_of_order,
              rows.j_customers_bought_category, rows.j_never_ordered, rows.j_orders_containing),
    "aggregates": (sums.a_count, sums.a_price_stat, sums.a_revenue, sums.a_units, sums.a_shipping, sums.a_order_value,
                   sums.a_per_order),
    "group_having": (sums.g_count_by, sums.g_count_by, sums.g_sum_by, sums.g_having, sums.g_having),
    "top_n": (sums.t_products, sums.t_products, sums.t_customers_by_orders, sums.t_products_by_sales,
              sums.t_recent_orders, sums.t_cities),
    "dates": (rows.d_month, rows.d_month, rows.d_between, rows.d_per_month, rows.d_signup, rows.d_shipping_delay,
              rows.d_weekday),
    "nulls": (rows.n_missing, rows.n_missing, rows.n_present, rows.n_coalesce),
    "distinct": (sums.x_count_distinct, sums.x_list_distinct),
    "ordering": (rows.o_products, rows.o_customers, rows.o_orders, rows.o_groups),
}


def generate_item(seed: int, topic: str | None = None, difficulty: int | None = None, style: str | None = None,
                  lex: Lexicon | None = None, template: str | None = None) -> SqlItem:
    """One (question, reference SQL) item; missing topic/difficulty/style are drawn from the seed. ``template``
    (a template's name, e.g. a failed item's) is used when the topic has it, with values drawn from the seed."""
    lex = lex or shop_lexicon()
    pick = random.Random(f"sql-request:{seed}")
    topic = topic or pick.choice(TOPICS)
    difficulty = difficulty or pick.choices(DIFFICULTIES, _DIFFICULTY_WEIGHTS)[0]
    style = style or pick.choice(STYLES)
    if topic not in TEMPLATES:
        raise ValueError(f"unknown topic {topic!r} (known: {', '.join(TOPICS)})")
    rng = random.Random(f"sql-item:{seed}:{topic}:{difficulty}:{style}")
    chosen = rng.choice(TEMPLATES[topic])
    chosen = next((t for t in TEMPLATES[topic] if t.__name__ == template), chosen)
    ask, sql = chosen(rng, lex, difficulty)
    return SqlItem(question=render(ask, style, rng), sql=sql, topic=topic, difficulty=difficulty, style=style,
                   template=chosen.__name__)


def generate_items(n: int, seed: int = 0, lex: Lexicon | None = None) -> list[SqlItem]:
    """``n`` items with topic, difficulty and style drawn per item: topics and styles round-robin, so every one
    gets its share even in a small batch."""
    return [generate_item(seed * 1_000_003 + i, TOPICS[i % len(TOPICS)], None, STYLES[(i // len(TOPICS)) % len(STYLES)],
                          lex) for i in range(n)]


__all__ = ["DIFFICULTIES", "STYLES", "TEMPLATES", "TOPICS", "SqlItem", "generate_item", "generate_items"]
