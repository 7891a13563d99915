"""Grammar templates whose answer is rows: filters, joins, dates, NULL handling and ordering (see ``grammar``).

Each template takes (rng, lexicon, difficulty) and returns what is asked (``phrasing.Ask``) with its reference SQL.
"""

from __future__ import annotations

import datetime as dt

from tasks.kinds.sql.lexicon import (
    CUSTOMER_KINDS,
    ENTITY,
    J_C,
    J_OI,
    J_P,
    ORDER_KINDS,
    PRODUCT_KINDS,
    REV,
    Lexicon,
    R,
    customer_pred,
    fmt_date,
    fmt_month,
    month_bounds,
    n_preds,
    order_pred,
    pick_kinds,
    post,
    product_pred,
    rand_date,
    verbs,
    where,
)
from tasks.kinds.sql.phrasing import Ask, lit


# ----------------------------------------------------------------------------------------------------- filters
def f_customers(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    preds = [customer_pred(rng, lex, k) for k in pick_kinds(rng, CUSTOMER_KINDS, n_preds(rng, d))]
    what, cols = rng.choice((("customers", "*"), ("customers", "*"), ("names of customers", "first_name, last_name"),
                             ("first and last names of customers", "first_name, last_name"),
                             ("emails of customers", "email"), ("email addresses of customers", "email"),
                             ("ids and names of customers", "customer_id, first_name, last_name")))
    np = f"{what} {post(preds)}"
    qs = [f"Which customers {verbs(preds)}?", f"Who are the customers that {verbs(preds)}?"] if cols == "*" else \
        [f"What are the {np}?"]
    return Ask([f"the {np}", f"all {np}"], qs, subject="customers"), \
        f"SELECT {cols} FROM customers WHERE {where(preds)}"


def f_products(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    preds = [product_pred(rng, lex, k) for k in pick_kinds(rng, PRODUCT_KINDS, n_preds(rng, d))]
    what, cols = rng.choice((("products", "*"), ("products", "*"), ("names of products", "name"),
                             ("names and prices of products", "name, price"),
                             ("product names and prices", "name, price"),
                             ("ids and names of products", "product_id, name")))
    np = f"{what} {post(preds)}"
    qs = [f"Which products {verbs(preds)}?"] if cols == "*" else [f"What are the {np}?"]
    return Ask([f"the {np}", f"all {np}"], qs, subject="products"), f"SELECT {cols} FROM products WHERE {where(preds)}"


def f_orders(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    preds = [order_pred(rng, lex, k) for k in pick_kinds(rng, ORDER_KINDS, n_preds(rng, d))]
    what, cols = rng.choice((("orders", "*"), ("orders", "*"), ("ids of orders", "order_id"), ("order ids", "order_id"),
                             ("order ids and dates", "order_id, ordered_at")))
    np = f"{what} {post(preds)}"
    qs = [f"Which orders {verbs(preds)}?"] if cols == "*" else [f"What are the {np}?"]
    return Ask([f"the {np}", f"all {np}"], qs, subject="orders"), f"SELECT {cols} FROM orders WHERE {where(preds)}"


def f_in_list(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    if rng.random() < 0.5:
        vals = rng.sample(lex.cities, rng.choice((2, 3)))
        names = [lit(v) for v in vals]
        listed = ", ".join(names[:-1]) + " or " + names[-1]
        sql_in = ", ".join(f"'{v}'" for v in vals)
        return Ask([f"the customers in {listed}", f"customers living in {listed}"],
                   [f"Which customers live in {listed}?"], subject="customers"), \
            f"SELECT * FROM customers WHERE city IN ({sql_in})"
    vals = rng.sample(lex.categories, rng.choice((2, 3)))
    names = [lit(v) for v in vals]
    listed = ", ".join(names[:-1]) + " or " + names[-1]
    sql_in = ", ".join(f"'{v}'" for v in vals)
    return Ask([f"the products in the {listed} categories", f"{listed} products"],
               [f"Which products are in {listed}?"], subject="products"), \
        f"SELECT * FROM products WHERE category IN ({sql_in})"


def f_negation(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    if rng.random() < 0.5:
        s = rng.choice(lex.statuses)
        return Ask([f"the orders that are not {lit(s)}", f"orders whose status isn't {lit(s)}"],
                   [f"Which orders are not {lit(s)}?"], subject="orders"), \
            f"SELECT * FROM orders WHERE status <> '{s}'"
    t = rng.choice(lex.tiers)
    c = rng.choice(lex.countries)
    return Ask([f"the customers in {lit(c)} who are not {lit(t)} members",
                f"customers from {lit(c)} without {lit(t)} status"], subject="customers"), \
        f"SELECT * FROM customers WHERE country = '{c}' AND loyalty_tier <> '{t}'"


def f_or(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    a, b = (product_pred(rng, lex, k) for k in pick_kinds(rng, ("out_of_stock", "discontinued", "price_over",
                                                              "category", "low_stock"), 2))
    return Ask([f"the products that either {a.verb} or {b.verb}", f"products that {a.verb} or {b.verb}"],
               [f"Which products {a.verb} or {b.verb}?"], subject="products"), \
        f"SELECT * FROM products WHERE {a.on()} OR {b.on()}"


# ------------------------------------------------------------------------------------------------------- joins
def j_orders_of_customers(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    cp = customer_pred(rng, lex, rng.choice(("city", "country", "tier", "signup_year")))
    preds = [cp.on("c")]
    extra = ""
    if d >= 2 and rng.random() < 0.6:
        op = order_pred(rng, lex, rng.choice(("status", "year", "free_shipping")))
        preds.append(op.on("o"))
        extra = f" {op.text}"
    what, cols = rng.choice((("orders", "o.*"), ("order ids", "o.order_id"),
                             ("order ids and dates", "o.order_id, o.ordered_at")))
    who = f"customers {cp.text}"
    return Ask([f"the {what}{extra} placed by {who}", f"{what}{extra} from {who}"],
               [f"What are the {what}{extra} of {who}?"], subject="orders"), \
        f"SELECT {cols} FROM orders o {J_C} WHERE {' AND '.join(preds)}"


def j_orders_with_customer(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    op = order_pred(rng, lex, rng.choice(("status", "year", "shipping_over")))
    what, cols = rng.choice((("name", "c.first_name, c.last_name"), ("city", "c.city"), ("email", "c.email")))
    return Ask([f"the order ids {op.text} with the customer's {what}",
                f"the orders {op.text} (ids) together with each customer's {what}"],
               [f"For the orders {op.text}, what is the {what} of each customer?"], subject="orders"), \
        f"SELECT o.order_id, {cols} FROM orders o {J_C} WHERE {op.on('o')}"


def j_items_of_order(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    oid = rng.randint(1, lex.n_orders)
    n = lit(oid)
    return Ask([f"the products and quantities in order {n}", f"the items of order #{n} with their quantities",
                f"product names and quantities for order {n}"],
               [f"What was bought in order {n}, and how many of each?"], subject="orders"), \
        f"SELECT p.name, oi.quantity FROM order_items oi {J_P} WHERE oi.order_id = {oid}"


def j_customers_bought_category(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    c = rng.choice(lex.categories)
    extra, cond = "", ""
    if d >= 2 and rng.random() < 0.5:
        y = rng.choice(lex.order_years)
        extra, cond = f" in {lit(y)}", f" AND year(o.ordered_at) = {y}"
    what, cols = rng.choice((("customers", "c.*"), ("ids of customers", "c.customer_id")))
    return Ask([f"the {what} who bought {lit(c)} products{extra}",
                f"{what} that ordered something from the {lit(c)} category{extra}"],
               [f"Which customers bought a {lit(c)} product{extra}?"], subject="customers"), \
        f"SELECT DISTINCT {cols} FROM customers c JOIN orders o ON o.customer_id = c.customer_id {J_OI} {J_P} " \
        f"WHERE p.category = '{c}'{cond}"


def j_never_ordered(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    if rng.random() < 0.6:
        preds = [customer_pred(rng, lex, rng.choice(("country", "tier", "signup_year")))] if d >= 2 else []
        mod = f" {post(preds)}" if preds else ""
        cond = f" AND {where(preds, 'c')}" if preds else ""
        return Ask([f"the customers{mod} who have never placed an order", f"customers{mod} with no orders",
                    f"customers{mod} that never ordered anything"],
                   [f"Which customers{mod} have never ordered?"], subject="customers"), \
            f"SELECT c.* FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = " \
            f"c.customer_id){cond}"
    y = rng.choice(lex.order_years)
    m = rng.randint(1, 12)
    lo, hi = month_bounds(y, m)
    mon = fmt_month(rng, y, m)
    return Ask([f"the products that were not ordered in {mon}", f"products nobody bought in {mon}"],
               [f"Which products had no orders in {mon}?"], subject="products"), \
        f"SELECT p.* FROM products p WHERE NOT EXISTS (SELECT 1 FROM order_items oi JOIN orders o ON o.order_id = " \
        f"oi.order_id WHERE oi.product_id = p.product_id AND o.ordered_at >= DATE '{lo}' AND o.ordered_at < " \
        f"DATE '{hi}')"


def j_orders_containing(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    w = rng.choice(lex.product_words)
    return Ask([f"the ids of orders that include a product with {lit(w)} in its name",
                f"order ids containing a {lit(w)} product"],
               [f"Which orders contain a product whose name includes {lit(w)}?"], subject="orders"), \
        f"SELECT DISTINCT oi.order_id FROM order_items oi {J_P} WHERE p.name LIKE '%{w}%'"


# ------------------------------------------------------------------------------------------------------- dates
def d_month(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    y, m = rng.choice(lex.order_years), rng.randint(1, 12)
    lo, hi = month_bounds(y, m)
    mon = fmt_month(rng, y, m)
    rng_sql = f"ordered_at >= DATE '{lo}' AND ordered_at < DATE '{hi}'"
    if rng.random() < 0.5:
        return Ask([f"the number of orders placed in {mon}", f"order count for {mon}"],
                   [f"How many orders were placed in {mon}?"], subject="orders"), \
            f"SELECT count(*) FROM orders WHERE {rng_sql}"
    preds = [order_pred(rng, lex, "status")] if d >= 2 else []
    extra = f" AND {where(preds)}" if preds else ""
    mod = f" {post(preds)}" if preds else ""
    return Ask([f"the orders{mod} placed in {mon}", f"orders{mod} from {mon}"],
               [f"Which orders{mod} were placed in {mon}?"], subject="orders"), \
        f"SELECT * FROM orders WHERE {rng_sql}{extra}"


def d_between(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    a = rand_date(rng, lex.order_years)
    b = a + dt.timedelta(days=rng.choice((6, 13, 14, 30, 45, 60)))
    da, db = fmt_date(rng, a), fmt_date(rng, b)
    return Ask([f"the orders placed between {da} and {db}", f"orders from {da} to {db} (inclusive)"],
               [f"Which orders were placed between {da} and {db}?"], subject="orders"), \
        f"SELECT * FROM orders WHERE CAST(ordered_at AS DATE) BETWEEN DATE '{a.isoformat()}' AND DATE '{b.isoformat()}'"


def d_per_month(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    y = rng.choice(lex.order_years)
    if rng.random() < 0.5:
        return Ask([f"the number of orders per month in {lit(y)}", f"monthly order counts for {lit(y)}"],
                   [f"How many orders did we get each month in {lit(y)}?"], subject="orders"), \
            f"SELECT month(ordered_at) AS month, count(*) FROM orders WHERE year(ordered_at) = {y} GROUP BY month"
    return Ask([f"the revenue per quarter in {lit(y)}", f"quarterly revenue for {lit(y)}"],
               [f"What was the revenue in each quarter of {lit(y)}?"], subject="orders"), \
        f"SELECT quarter(o.ordered_at) AS quarter, {REV} FROM orders o {J_OI} WHERE year(o.ordered_at) = {y} " \
        f"GROUP BY quarter"


def d_signup(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    roll = rng.randrange(3)
    if roll == 0:
        y = rng.choice(lex.signup_years)
        q = rng.randint(1, 4)
        qn = rng.choice((f"Q{q} {y}", f"the {('first', 'second', 'third', 'fourth')[q - 1]} quarter of {y}"))
        return Ask([f"the customers who signed up in {lit(qn)}", f"customers registered during {lit(qn)}"],
                   [f"Which customers joined in {lit(qn)}?"], subject="customers"), \
            f"SELECT * FROM customers WHERE year(signup_date) = {y} AND quarter(signup_date) = {q}"
    day = rand_date(rng, lex.signup_years)
    before = roll == 1
    ds = fmt_date(rng, day)
    word = "before" if before else "on or after"
    return Ask([f"the number of customers who signed up {word} {ds}", f"how many customers joined {word} {ds}"],
               [f"How many customers signed up {word} {ds}?"], subject="customers"), \
        f"SELECT count(*) FROM customers WHERE signup_date {'<' if before else '>='} DATE '{day.isoformat()}'"


def d_shipping_delay(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    if rng.random() < 0.5:
        n = rng.choice((3, 5, 7))
        return Ask([f"the orders that shipped more than {lit(n)} days after they were placed",
                    f"orders that took over {lit(n)} days to ship"],
                   [f"Which orders took more than {lit(n)} days to ship?"], subject="orders"), \
            f"SELECT * FROM orders WHERE shipped_at > ordered_at + INTERVAL {n} DAY"
    y = rng.choice(lex.order_years)
    return Ask([f"the average number of days between ordering and shipping in {lit(y)}",
                f"average shipping delay in days for {lit(y)} orders"],
               [f"On average, how many days did it take to ship an order in {lit(y)}?"], subject="orders"), \
        f"SELECT avg(epoch(shipped_at - ordered_at) / 86400) FROM orders WHERE year(ordered_at) = {y} " \
        f"AND shipped_at IS NOT NULL"


def d_weekday(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    if rng.random() < 0.5:
        y = rng.choice(lex.order_years)
        return Ask([f"the number of orders placed on weekends in {lit(y)}", f"weekend orders in {lit(y)} (count)"],
                   [f"How many orders were placed on a Saturday or Sunday in {lit(y)}?"], subject="orders"), \
            f"SELECT count(*) FROM orders WHERE isodow(ordered_at) IN (6, 7) AND year(ordered_at) = {y}"
    return Ask(["the number of orders per day of the week", "order counts by weekday"],
               ["How many orders come in on each day of the week?"], subject="orders"), \
        "SELECT dayname(ordered_at) AS weekday, count(*) FROM orders GROUP BY weekday"


# ------------------------------------------------------------------------------------------------------- nulls
def n_missing(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    options = (("customers", "email", ("without an email", "with no email address", "missing an email")),
               ("customers", "city", ("with no city", "whose city is unknown", "without a city on file")),
               ("products", "category", ("without a category", "with no category", "that are uncategorised")),
               ("orders", "shipped_at", ("that have not shipped yet", "with no ship date", "not shipped yet")))
    table, col, phrases = rng.choice(options)
    ph = rng.choice(phrases)
    preds = []
    if d >= 2 and rng.random() < 0.6:
        kinds, make = ENTITY[table]
        preds = [make(rng, lex, rng.choice(tuple(k for k in kinds if k not in ("city", "email_domain", "category",
                                                                                "status", "customer"))))]
    mod = f" {post(preds)}" if preds else ""
    cond = f"{col} IS NULL" + (f" AND {where(preds)}" if preds else "")
    if rng.random() < 0.45:
        return Ask([f"the number of {table}{mod} {ph}", f"how many {table}{mod} are {ph}"],
                   [f"How many {table}{mod} are there {ph}?"], [f"Count the {table}{mod} {ph}"], subject=table), \
            f"SELECT count(*) FROM {table} WHERE {cond}"
    return Ask([f"the {table}{mod} {ph}", f"all {table}{mod} {ph}"], [f"Which {table}{mod} are {ph}?"],
               subject=table), f"SELECT * FROM {table} WHERE {cond}"


def n_present(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    roll = rng.randrange(3)
    if roll == 0:
        return Ask(["the number of customers who have an email address", "how many customers gave an email"],
                   ["How many customers have an email on file?"], subject="customers"), \
            "SELECT count(email) FROM customers"
    if roll == 1:
        c = rng.choice(lex.countries)
        return Ask([f"the customers in {lit(c)} who have an email but no city",
                    f"customers from {lit(c)} with an email address and an unknown city"], subject="customers"), \
            f"SELECT * FROM customers WHERE country = '{c}' AND email IS NOT NULL AND city IS NULL"
    return Ask(["the percentage of customers with an email address", "share of customers that have an email (%)"],
               ["What percentage of customers have an email address?"], subject="customers"), \
        "SELECT 100.0 * count(email) / count(*) FROM customers"


def n_coalesce(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    if rng.random() < 0.5:
        label = rng.choice(("unknown", "n/a", "none"))
        return Ask([f"the number of customers per city, with missing cities shown as '{lit(label)}'",
                    f"customers by city, counting unknown cities as '{lit(label)}'"], subject="customers"), \
            f"SELECT coalesce(city, '{label}') AS city, count(*) FROM customers GROUP BY 1"
    label = rng.choice(("uncategorised", "other", "none"))
    return Ask([f"every product name with its category, or '{lit(label)}' when it has none",
                f"product names and categories (use '{lit(label)}' for missing ones)"], subject="products"), \
        f"SELECT name, coalesce(category, '{label}') FROM products"


# ---------------------------------------------------------------------------------------------------- ordering
def o_products(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    pred = product_pred(rng, lex, rng.choice(("category", "price_under", "price_over", "active")))
    desc = rng.random() < 0.5
    how = rng.choice(("from most to least expensive", "by price, highest first", "by descending price")) if desc else \
        rng.choice(("from cheapest to most expensive", "by price, lowest first", "by ascending price"))
    return Ask([f"the names and prices of products {pred.text}, sorted {how}",
                f"products {pred.text} (name and price) ordered {how}"], subject="products"), \
        f"SELECT name, price FROM products WHERE {pred.on()} ORDER BY price {'DESC' if desc else 'ASC'}, product_id"


def o_customers(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    pred = customer_pred(rng, lex, rng.choice(("city", "country", "tier")))
    if rng.random() < 0.5:
        old_first = rng.random() < 0.5
        how = "from earliest to latest signup" if old_first else "newest signups first"
        return Ask([f"the names and signup dates of customers {pred.text}, {how}",
                    f"customers {pred.text} ordered by signup date ({how}): name and date"], subject="customers"), \
            f"SELECT first_name, last_name, signup_date FROM customers WHERE {pred.on()} " \
            f"ORDER BY signup_date {'ASC' if old_first else 'DESC'}, customer_id"
    return Ask([f"the customers {pred.text} in alphabetical order by last name, then first name",
                f"customers {pred.text} sorted by last name and first name"], subject="customers"), \
        f"SELECT * FROM customers WHERE {pred.on()} ORDER BY last_name, first_name, customer_id"


def o_orders(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    cid = rng.randint(1, lex.n_customers)
    if rng.random() < 0.5:
        return Ask([f"the orders of customer {lit(cid)} from newest to oldest",
                    f"customer #{lit(cid)}'s orders, latest first"], subject="orders"), \
            f"SELECT * FROM orders WHERE customer_id = {cid} ORDER BY ordered_at DESC, order_id"
    s = rng.choice(lex.statuses)
    return Ask([f"the {lit(s)} orders sorted by shipping cost, most expensive first",
                f"{lit(s)} orders ordered by shipping cost descending"], subject="orders"), \
        f"SELECT * FROM orders WHERE status = '{s}' ORDER BY shipping_cost DESC, order_id"


def o_groups(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    if rng.random() < 0.5:
        return Ask(["the categories with their number of products, largest first",
                    "product counts per category sorted from most to fewest"], subject="products"), \
            "SELECT category, count(*) AS n FROM products GROUP BY category ORDER BY n DESC, category NULLS LAST"
    return Ask(["the countries ordered by number of customers, most first, with the counts",
                "customer count per country, sorted descending"], subject="customers"), \
        "SELECT country, count(*) AS n FROM customers GROUP BY country ORDER BY n DESC, country"
