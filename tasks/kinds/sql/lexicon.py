"""The words and values the shop grammar talks about, and its filter predicates.

Values come from the data spec (``configs/sql/shop.yaml``): the cities, countries, categories, statuses and names
a question mentions are the ones the generator puts in the database, so most questions have a non-empty answer
on every instance; ids stay below the smallest row count a seed can draw, so ``order 17`` exists everywhere.

The end of the module holds what both template modules share: join clauses, the revenue expression, the
number of filters per difficulty, the aggregate words.

A ``Pred`` is one filter on one table, in three shapes: a post-modifier for a noun phrase ("in Paris",
"who signed up in 2023"), a verb phrase for a question ("live in Paris") and SQL with ``{a}`` where the table
alias goes (``{a}city = 'Paris'`` -> ``c.city = 'Paris'``).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tasks.kinds.sql.data import load_spec
from tasks.kinds.sql.phrasing import Ask, lit

SHOP_SPEC = Path(__file__).resolve().parents[3] / "configs" / "sql" / "shop.yaml"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
_PRICE_POINTS = (10, 15, 20, 25, 30, 40, 50, 60, 75, 80, 100, 120, 150, 200, 250)


@dataclass(frozen=True)
class Lexicon:
    countries: tuple[str, ...]
    cities: tuple[str, ...]
    categories: tuple[str, ...]
    statuses: tuple[str, ...]
    tiers: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    domains: tuple[str, ...]
    product_words: tuple[str, ...]  # nouns and adjectives in product names ("Mug", "Deluxe")
    n_customers: int  # the smallest row count any seed draws: ids up to it exist on every instance
    n_products: int
    n_orders: int
    order_years: tuple[int, ...]
    signup_years: tuple[int, ...]


@cache
def shop_lexicon(spec_path: str = str(SHOP_SPEC)) -> Lexicon:
    tables = load_spec(spec_path).spec["tables"]
    cust, prod, orders = (tables[t]["columns"] for t in ("customers", "products", "orders"))
    o_lo, o_hi = (int(str(d)[:4]) for d in orders["ordered_at"]["range"])
    s_lo, s_hi = (int(str(d)[:4]) for d in cust["signup_date"]["range"])
    return Lexicon(
        countries=tuple(cust["country"]["values"]),
        cities=tuple(c for cs in cust["city"]["values"].values() for c in cs),
        categories=tuple(prod["category"]["values"]),
        statuses=tuple(orders["status"]["values"]),
        tiers=tuple(cust["loyalty_tier"]["values"]),
        first_names=tuple(cust["first_name"]["values"]),
        last_names=tuple(cust["last_name"]["values"]),
        domains=tuple(cust["email"]["domains"]),
        product_words=tuple(dict.fromkeys(
            [w for ws in prod["name"]["values"].values() for w in ws] + list(prod["name"]["first"]))),
        n_customers=_min_rows(tables["customers"]), n_products=_min_rows(tables["products"]),
        n_orders=_min_rows(tables["orders"]), order_years=tuple(range(o_lo, o_hi + 1)),
        signup_years=tuple(range(s_lo, s_hi + 1)))


def _min_rows(tspec: dict) -> int:
    rows = tspec["rows"]
    return int(rows[0] if isinstance(rows, list) else rows)


@dataclass(frozen=True)
class Pred:
    kind: str
    text: str  # post-modifier: "in Paris", "who signed up in 2023"
    verb: str  # verb phrase after the plural noun: "live in Paris", "signed up in 2023"
    sql: str  # with {a} for the alias prefix

    def on(self, alias: str = "") -> str:
        return self.sql.replace("{a}", f"{alias}." if alias else "")


def where(preds: list[Pred], alias: str = "") -> str:
    return " AND ".join(p.on(alias) for p in preds)


def post(preds: list[Pred]) -> str:
    """Post-modifiers in a readable order: prepositional phrases first, then clauses joined by "and"."""
    plain = [p.text for p in preds if not p.text.startswith(("who ", "that ", "whose ", "which "))]
    rel = [p.text for p in preds if p.text.startswith(("who ", "that ", "whose ", "which "))]
    return " ".join(plain + ([" and ".join(rel)] if rel else []))


def verbs(preds: list[Pred]) -> str:
    return " and ".join(p.verb for p in preds)


# ------------------------------------------------------------------------------------------------ values
def money(rng: random.Random, n: int | float) -> str:
    s = f"{n:g}"
    return lit(rng.choice((f"${s}", f"${s}", f"{s} dollars", s, f"${n:.2f}")))


def price_point(rng: random.Random, lo: int = 10, hi: int = 250) -> int:
    return rng.choice([p for p in _PRICE_POINTS if lo <= p <= hi])


def fmt_date(rng: random.Random, d: dt.date) -> str:
    return lit(rng.choice((d.isoformat(), d.isoformat(), f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
                           f"{d.day} {MONTHS[d.month - 1]} {d.year}", f"{MONTHS[d.month - 1][:3]} {d.day} {d.year}")))


def fmt_month(rng: random.Random, year: int, month: int) -> str:
    name = MONTHS[month - 1]
    return lit(rng.choice((f"{name} {year}", f"{name} {year}", f"{name[:3]} {year}", f"{year}-{month:02d}",
                           f"{name.lower()} {year}")))


def rand_date(rng: random.Random, years: tuple[int, ...]) -> dt.date:
    start = dt.date(years[0], 1, 1)
    return start + dt.timedelta(days=rng.randint(0, (dt.date(years[-1], 12, 31) - start).days))


def month_bounds(year: int, month: int) -> tuple[str, str]:
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return dt.date(year, month, 1).isoformat(), nxt.isoformat()


# ----------------------------------------------------------------------------------------------- predicates
CUSTOMER_KINDS = ("city", "country", "tier", "signup_after", "signup_year", "first_name", "last_initial",
                  "email_domain")
PRODUCT_KINDS = ("category", "price_over", "price_under", "price_between", "out_of_stock", "low_stock",
                 "discontinued", "active", "name_word")
ORDER_KINDS = ("status", "free_shipping", "shipping_over", "year", "customer")
_CLASH = {frozenset(("city", "country")), frozenset(("signup_after", "signup_year")),
          frozenset(("price_over", "price_under")), frozenset(("price_over", "price_between")),
          frozenset(("price_under", "price_between")), frozenset(("out_of_stock", "low_stock")),
          frozenset(("discontinued", "active")), frozenset(("free_shipping", "shipping_over"))}


def pick_kinds(rng: random.Random, kinds: tuple[str, ...], n: int) -> list[str]:
    """``n`` predicate kinds that make sense together (no city with country, no two price bounds...)."""
    for _ in range(50):
        chosen = rng.sample(kinds, n)
        if not any(frozenset((a, b)) in _CLASH for a in chosen for b in chosen if a < b):
            return chosen
    return chosen[:1]


def customer_pred(rng: random.Random, lex: Lexicon, kind: str) -> Pred:
    if kind == "city":
        c = rng.choice(lex.cities)
        return Pred(kind, rng.choice((f"in {lit(c)}", f"from {lit(c)}", f"living in {lit(c)}",
                                      f"based in {lit(c)}")), f"live in {lit(c)}", f"{{a}}city = '{c}'")
    if kind == "country":
        c = rng.choice(lex.countries)
        return Pred(kind, rng.choice((f"in {lit(c)}", f"from {lit(c)}", f"located in {lit(c)}")),
                    rng.choice((f"are from {lit(c)}", f"live in {lit(c)}")), f"{{a}}country = '{c}'")
    if kind == "tier":
        t = rng.choice(lex.tiers)
        return Pred(kind, rng.choice((f"with {lit(t)} status", f"in the {lit(t)} tier",
                                      f"with a {lit(t)} loyalty tier", f"on the {lit(t)} tier")),
                    rng.choice((f"have {lit(t)} status", f"are {lit(t)} members")), f"{{a}}loyalty_tier = '{t}'")
    if kind == "signup_after":
        d = rand_date(rng, lex.signup_years[1:])
        ds = fmt_date(rng, d)
        return Pred(kind, rng.choice((f"who signed up after {ds}", f"who registered after {ds}",
                                      f"who joined after {ds}")), f"signed up after {ds}",
                    f"{{a}}signup_date > DATE '{d.isoformat()}'")
    if kind == "signup_year":
        y = rng.choice(lex.signup_years)
        return Pred(kind, rng.choice((f"who signed up in {lit(y)}", f"who joined in {lit(y)}",
                                      f"who registered in {lit(y)}")), f"signed up in {lit(y)}",
                    f"year({{a}}signup_date) = {y}")
    if kind == "first_name":
        n = rng.choice(lex.first_names)
        return Pred(kind, rng.choice((f"named {lit(n)}", f"whose first name is {lit(n)}", f"called {lit(n)}")),
                    f"are named {lit(n)}", f"{{a}}first_name = '{n}'")
    if kind == "last_initial":
        ch = rng.choice(lex.last_names)[0]
        return Pred(kind, rng.choice((f"whose last name starts with {lit(ch)}",
                                      f"whose surname begins with {lit(ch)}")),
                    f"have a last name starting with {lit(ch)}", f"{{a}}last_name LIKE '{ch}%'")
    if kind == "email_domain":
        d = rng.choice(lex.domains)
        return Pred(kind, rng.choice((f"with an {lit(d)} email address" if d[0] in "aeiou" else
                                      f"with a {lit(d)} email address", f"whose email is at {lit(d)}")),
                    f"use an email address at {lit(d)}", f"{{a}}email LIKE '%@{d}'")
    raise ValueError(kind)


def product_pred(rng: random.Random, lex: Lexicon, kind: str) -> Pred:
    if kind == "category":
        c = rng.choice(lex.categories)
        return Pred(kind, rng.choice((f"in the {lit(c)} category", f"in {lit(c)}", f"from the {lit(c)} category")),
                    f"are in the {lit(c)} category", f"{{a}}category = '{c}'")
    if kind == "price_over":
        n = price_point(rng, 20, 250)
        m = money(rng, n)
        return Pred(kind, rng.choice((f"costing more than {m}", f"priced above {m}", f"over {m}")),
                    rng.choice((f"cost more than {m}", f"are priced above {m}")), f"{{a}}price > {n}")
    if kind == "price_under":
        n = price_point(rng, 10, 150)
        m = money(rng, n)
        return Pred(kind, rng.choice((f"cheaper than {m}", f"under {m}", f"priced below {m}",
                                      f"costing less than {m}")), f"cost less than {m}", f"{{a}}price < {n}")
    if kind == "price_between":
        lo = price_point(rng, 10, 100)
        hi = price_point(rng, lo + 10, 250)
        a, b = money(rng, lo), money(rng, hi)
        return Pred(kind, rng.choice((f"priced between {a} and {b}", f"costing between {a} and {b}")),
                    f"cost between {a} and {b}", f"{{a}}price BETWEEN {lo} AND {hi}")
    if kind == "out_of_stock":
        return Pred(kind, rng.choice(("that are out of stock", "with no stock left", "that are sold out")),
                    rng.choice(("are out of stock", "have no stock left")), "{a}stock = 0")
    if kind == "low_stock":
        n = rng.choice((5, 10, 20, 25, 50))
        return Pred(kind, rng.choice((f"with fewer than {lit(n)} units in stock", f"with less than {lit(n)} in stock")),
                    f"have fewer than {lit(n)} units in stock", f"{{a}}stock < {n}")
    if kind == "discontinued":
        return Pred(kind, rng.choice(("that are discontinued", "that are no longer sold")),
                    "are discontinued", "{a}discontinued")
    if kind == "active":
        return Pred(kind, rng.choice(("that are still sold", "that are not discontinued", "still on sale")),
                    "are still sold", "NOT {a}discontinued")
    if kind == "name_word":
        w = rng.choice(lex.product_words)
        return Pred(kind, rng.choice((f"with {lit(w)} in the name", f"whose name contains {lit(w)}")),
                    f"have {lit(w)} in their name", f"{{a}}name LIKE '%{w}%'")
    raise ValueError(kind)


def order_pred(rng: random.Random, lex: Lexicon, kind: str) -> Pred:
    if kind == "status":
        s = rng.choice(lex.statuses)
        return Pred(kind, rng.choice((f"that are {lit(s)}", f"with status {lit(s)}", f"marked as {lit(s)}",
                                      f"in status {lit(s)}")), f"are {lit(s)}", f"{{a}}status = '{s}'")
    if kind == "free_shipping":
        return Pred(kind, rng.choice(("with free shipping", "that shipped for free")), "had free shipping",
                    "{a}shipping_cost = 0")
    if kind == "shipping_over":
        n = rng.choice((5, 8, 10, 12))
        m = money(rng, n)
        return Pred(kind, rng.choice((f"with shipping over {m}", f"where shipping cost more than {m}")),
                    f"had shipping costs above {m}", f"{{a}}shipping_cost > {n}")
    if kind == "year":
        y = rng.choice(lex.order_years)
        return Pred(kind, rng.choice((f"placed in {lit(y)}", f"from {lit(y)}")), f"were placed in {lit(y)}",
                    f"year({{a}}ordered_at) = {y}")
    if kind == "customer":
        c = rng.randint(1, lex.n_customers)
        return Pred(kind, rng.choice((f"placed by customer {lit(c)}", f"from customer #{lit(c)}",
                                      f"of customer id {lit(c)}")), f"were placed by customer {lit(c)}",
                    f"{{a}}customer_id = {c}")
    raise ValueError(kind)


# ------------------------------------------------------------------------------------ shared by the templates
# a template draws values and returns what is asked with its reference SQL (see grammar)
R = random.Random
Template = Callable[[R, Lexicon, int], tuple[Ask, str]]
REV = "sum(oi.quantity * oi.unit_price)"
J_OI = "JOIN order_items oi ON oi.order_id = o.order_id"
J_C = "JOIN customers c ON c.customer_id = o.customer_id"
J_P = "JOIN products p ON p.product_id = oi.product_id"


def n_preds(rng: R, difficulty: int) -> int:
    return {1: 1, 2: rng.choice((1, 2)), 3: rng.choice((2, 2, 3))}[difficulty]


def where_clause(preds: list[Pred], alias: str = "") -> str:
    return f" WHERE {where(preds, alias)}" if preds else ""


ENTITY = {"customers": (CUSTOMER_KINDS, customer_pred), "products": (PRODUCT_KINDS, product_pred),
          "orders": (ORDER_KINDS, order_pred)}

STATS = (("avg", ("average", "mean")), ("min", ("lowest", "minimum", "smallest")),
         ("max", ("highest", "maximum", "largest")), ("sum", ("total",)))
