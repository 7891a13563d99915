"""Grammar templates whose answer summarises: aggregates, group by / having, top-N and distinct counts.

Each template takes (rng, lexicon, difficulty) and returns what is asked (``phrasing.Ask``) with its reference SQL.
"""

from __future__ import annotations

from tasks.kinds.sql.lexicon import (
    ENTITY,
    J_C,
    J_OI,
    J_P,
    REV,
    STATS,
    Lexicon,
    R,
    fmt_month,
    money,
    month_bounds,
    n_preds,
    order_pred,
    pick_kinds,
    post,
    price_point,
    product_pred,
    verbs,
    where,
    where_clause,
)
from tasks.kinds.sql.phrasing import Ask, lit


def a_count(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    table = rng.choice(tuple(ENTITY))
    kinds, make = ENTITY[table]
    preds = [make(rng, lex, k) for k in pick_kinds(rng, kinds, n_preds(rng, d))]
    p = post(preds)
    return Ask([f"the number of {table} {p}", f"the count of {table} {p}", f"how many {table} {verbs(preds)}"],
               [f"How many {table} {verbs(preds)}?", f"What is the number of {table} {p}?"],
               [f"Count the {table} {p}", f"Count {table} {p}"], subject=table), \
        f"SELECT count(*) FROM {table} WHERE {where(preds)}"


def a_price_stat(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    fn, words = rng.choice(STATS)
    col, noun = rng.choice((("price", "price"), ("stock", "stock level"))) if fn != "sum" else ("stock", "stock")
    preds = [product_pred(rng, lex, k) for k in pick_kinds(rng, ("category", "active", "price_over", "name_word"),
                                                           n_preds(rng, d) if d > 1 else 1)]
    word = rng.choice(words)
    expr = f"{fn}({col})"
    if fn == "avg" and rng.random() < 0.35:
        expr, word = f"round(avg({col}), 2)", f"{word} (rounded to 2 decimals)"
    np = f"the {word} {noun} of products {post(preds)}"
    return Ask([np, f"the {word} {noun} among products {post(preds)}"],
               [f"What is {np}?", f"What's the {word} {noun} for products that {verbs(preds)}?"], subject="products"), \
        f"SELECT {expr} FROM products WHERE {where(preds)}"


def a_revenue(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    kind = rng.choice(("status", "year", "category", "customer", "country"))
    if kind == "category":
        c = rng.choice(lex.categories)
        mod, sql = f"from {lit(c)} products", f"FROM order_items oi {J_P} WHERE p.category = '{c}'"
    elif kind == "country":
        c = rng.choice(lex.countries)
        mod, sql = f"from customers in {lit(c)}", f"FROM orders o {J_C} {J_OI} WHERE c.country = '{c}'"
    else:
        op = order_pred(rng, lex, kind)
        mod, sql = f"from orders {op.text}", f"FROM orders o {J_OI} WHERE {op.on('o')}"
    word = rng.choice(("total revenue", "total sales", "revenue", "sales amount"))
    return Ask([f"the {word} {mod}", f"how much money we made {mod}"],
               [f"What is the {word} {mod}?", f"How much revenue came {mod}?"], subject="orders"), \
        f"SELECT {REV} {sql}"


def a_units(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    c = rng.choice(lex.categories)
    if d >= 2 and rng.random() < 0.5:
        y = rng.choice(lex.order_years)
        return Ask([f"the total quantity of {lit(c)} products sold in {lit(y)}",
                    f"units of {lit(c)} items sold in {lit(y)}"],
                   [f"How many {lit(c)} units did we sell in {lit(y)}?"], subject="products"), \
            f"SELECT sum(oi.quantity) FROM orders o {J_OI} {J_P} WHERE p.category = '{c}' AND " \
            f"year(o.ordered_at) = {y}"
    return Ask([f"the total quantity of {lit(c)} products sold", f"units sold in the {lit(c)} category"],
               [f"How many {lit(c)} units have been sold?"], subject="products"), \
        f"SELECT sum(oi.quantity) FROM order_items oi {J_P} WHERE p.category = '{c}'"


def a_shipping(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    fn, words = rng.choice(STATS)
    word = rng.choice(words)
    op = order_pred(rng, lex, rng.choice(("status", "year", "customer")))
    return Ask([f"the {word} shipping cost of orders {op.text}", f"{word} shipping cost for orders {op.text}"],
               [f"What is the {word} shipping cost of orders {op.text}?"], subject="orders"), \
        f"SELECT {fn}(shipping_cost) FROM orders WHERE {op.on()}"


def a_order_value(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    if rng.random() < 0.5:
        oid = rng.randint(1, lex.n_orders)
        return Ask([f"the total value of order {lit(oid)}", f"the amount of order #{lit(oid)}"],
                   [f"How much was order {lit(oid)} worth?", f"What is the total of order #{lit(oid)}?"],
                   subject="orders"), f"SELECT sum(quantity * unit_price) FROM order_items WHERE order_id = {oid}"
    cid = rng.randint(1, lex.n_customers)
    return Ask([f"the total amount spent by customer {lit(cid)}", f"how much customer #{lit(cid)} has spent"],
               [f"How much has customer {lit(cid)} spent in total?"], subject="customers"), \
        f"SELECT {REV} FROM orders o {J_OI} WHERE o.customer_id = {cid}"


def a_per_order(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    if rng.random() < 0.5:
        return Ask(["the average number of lines per order", "the mean number of order lines per order"],
                   ["On average, how many lines does an order have?"], subject="orders"), \
            "SELECT avg(n) FROM (SELECT count(*) AS n FROM order_items GROUP BY order_id) t"
    return Ask(["the average order value", "the mean value of an order"],
               ["What is the average value of an order?", "How much is an average order worth?"],
               subject="orders"), \
        "SELECT avg(total) FROM (SELECT sum(quantity * unit_price) AS total FROM order_items GROUP BY order_id) t"


# ------------------------------------------------------------------------------------------------ group_having
_GROUPS = {"customers": (("country", "country"), ("city", "city"), ("loyalty_tier", "loyalty tier")),
           "orders": (("status", "status"),), "products": (("category", "category"),)}


def g_count_by(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    table = rng.choice(tuple(_GROUPS))
    key, kname = rng.choice(_GROUPS[table])
    kinds, make = ENTITY[table]
    preds = []
    if d >= 2 and rng.random() < 0.6:
        preds = [make(rng, lex, k) for k in pick_kinds(rng, tuple(k for k in kinds if k not in (key, "city")), 1)]
    mod = f" {post(preds)}" if preds else ""
    return Ask([f"the number of {table}{mod} per {kname}", f"{table}{mod} count by {kname}",
                f"how many {table}{mod} there are in each {kname}"],
               [f"How many {table}{mod} are there per {kname}?"], [f"Count the {table}{mod} by {kname}"],
               subject=table), f"SELECT {key}, count(*) FROM {table}{where_clause(preds)} GROUP BY {key}"


def g_sum_by(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    roll = rng.randrange(5)
    if roll == 0:
        return Ask(["the revenue per product category", "total sales by category", "revenue for each category"],
                   ["How much revenue does each category bring in?"], subject="products"), \
            f"SELECT p.category, {REV} FROM order_items oi {J_P} GROUP BY p.category"
    if roll == 1:
        return Ask(["the revenue per customer country", "total sales by country", "revenue for each country"],
                   ["How much did customers from each country spend?"], subject="customers"), \
            f"SELECT c.country, {REV} FROM orders o {J_C} {J_OI} GROUP BY c.country"
    if roll == 2:
        fn, words = rng.choice(STATS[:3])
        w = rng.choice(words)
        return Ask([f"the {w} product price per category", f"{w} price by category"],
                   [f"What is the {w} price in each category?"], subject="products"), \
            f"SELECT category, {fn}(price) FROM products GROUP BY category"
    if roll == 3:
        return Ask(["the total stock per category", "units in stock by category"],
                   ["How many units do we have in stock for each category?"], subject="products"), \
            "SELECT category, sum(stock) FROM products GROUP BY category"
    y = rng.choice(lex.order_years)
    return Ask([f"the average shipping cost per order status in {lit(y)}",
                f"average shipping cost by status for {lit(y)} orders"],
               [f"What was the average shipping cost for each status in {lit(y)}?"], subject="orders"), \
        f"SELECT status, avg(shipping_cost) FROM orders WHERE year(ordered_at) = {y} GROUP BY status"


def g_having(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    roll = rng.randrange(5)
    with_n = rng.random() < 0.5
    cmp_word, op = rng.choice((("more than", ">"), ("at least", ">=")))
    if roll == 0:
        key, n = rng.choice((("country", rng.choice((10, 15, 20, 25))), ("city", rng.choice((3, 4, 5, 6, 8)))))
        tail = " and how many customers each has" if with_n else ""
        return Ask([f"the {key.replace('country', 'countries').replace('city', 'cities')} with {cmp_word} "
                    f"{lit(n)} customers{tail}"],
                   [f"Which {'countries' if key == 'country' else 'cities'} have {cmp_word} {lit(n)} customers?"],
                   subject="customers"), \
            f"SELECT {key}{', count(*)' if with_n else ''} FROM customers GROUP BY {key} HAVING count(*) {op} {n}"
    if roll == 1:
        n = rng.choice((3, 4, 5, 6, 8))
        tail = " with their order counts" if with_n else ""
        return Ask([f"the ids of customers who placed {cmp_word} {lit(n)} orders{tail}",
                    f"customer ids with {cmp_word} {lit(n)} orders{tail}"],
                   [f"Which customers have placed {cmp_word} {lit(n)} orders?"], subject="customers"), \
            f"SELECT customer_id{', count(*)' if with_n else ''} FROM orders GROUP BY customer_id " \
            f"HAVING count(*) {op} {n}"
    if roll == 2:
        n = price_point(rng, 40, 150)
        return Ask([f"the categories whose average price is above {money(rng, n)}",
                    f"categories with an average product price over {money(rng, n)}"],
                   [f"Which categories have an average price higher than {money(rng, n)}?"], subject="products"), \
            f"SELECT category FROM products GROUP BY category HAVING avg(price) > {n}"
    if roll == 3:
        n = rng.choice((4, 5, 6, 8, 10))
        return Ask([f"the orders with {cmp_word} {lit(n)} units in total", f"order ids where the total quantity is "
                    f"{cmp_word} {lit(n)}"],
                   [f"Which orders contain {cmp_word} {lit(n)} items in total?"], subject="orders"), \
            f"SELECT order_id FROM order_items GROUP BY order_id HAVING sum(quantity) {op} {n}"
    n = rng.choice((500, 1000, 1500, 2000, 3000))
    return Ask([f"the customers (ids) who spent more than {money(rng, n)} in total",
                f"customer ids with total spending over {money(rng, n)}"],
               [f"Which customers have spent more than {money(rng, n)} overall?"], subject="customers"), \
        f"SELECT o.customer_id FROM orders o {J_OI} GROUP BY o.customer_id HAVING {REV} > {n}"


# ------------------------------------------------------------------------------------------------------ top_n
def t_products(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    n = rng.choice((1, 3, 5, 5, 10))
    dear = rng.random() < 0.6
    adj = rng.choice(("most expensive", "priciest")) if dear else rng.choice(("cheapest", "least expensive"))
    preds = [product_pred(rng, lex, rng.choice(("category", "active")))] if d >= 2 else []
    mod = f" {post(preds)}" if preds else ""
    cols = rng.choice(("name, price", "*"))
    head = f"the {adj} product" if n == 1 else f"the {lit(n)} {adj} products"
    extra = " with its price" if n == 1 and cols != "*" else (" with their prices" if cols != "*" else "")
    top = f"the single {adj} product" if n == 1 else f"top {lit(n)} {adj} products"
    return Ask([f"{head}{mod}{extra}", f"{top}{mod}{extra}"],
               [f"What {'is' if n == 1 else 'are'} {head}{mod}?"], subject="products"), \
        f"SELECT {cols} FROM products{where_clause(preds)} ORDER BY price {'DESC' if dear else 'ASC'}, product_id " \
        f"LIMIT {n}"


def t_customers_by_orders(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    n = rng.choice((3, 5, 10))
    if rng.random() < 0.5:
        return Ask([f"the top {lit(n)} customers by number of orders", f"the {lit(n)} customers with the most orders"],
                   [f"Who are the {lit(n)} customers with the most orders?"], subject="customers"), \
            f"SELECT c.customer_id, c.first_name, c.last_name, count(*) AS n_orders FROM customers c JOIN orders o " \
            f"ON o.customer_id = c.customer_id GROUP BY c.customer_id, c.first_name, c.last_name " \
            f"ORDER BY n_orders DESC, c.customer_id LIMIT {n}"
    return Ask([f"the top {lit(n)} customers by total spend",
                f"the {lit(n)} biggest spenders (customer ids and totals)"],
               [f"Which {lit(n)} customers spent the most?"], subject="customers"), \
        f"SELECT o.customer_id, {REV} AS spent FROM orders o {J_OI} GROUP BY o.customer_id " \
        f"ORDER BY spent DESC, o.customer_id LIMIT {n}"


def t_products_by_sales(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    n = rng.choice((3, 5, 10))
    by_units = rng.random() < 0.5
    measure, expr = ("units sold", "sum(oi.quantity)") if by_units else ("revenue", REV)
    return Ask([f"the top {lit(n)} products by {measure}", f"the {lit(n)} best-selling products by {measure}"],
               [f"Which {lit(n)} products have the highest {measure}?"], subject="products"), \
        f"SELECT p.product_id, p.name, {expr} AS total FROM order_items oi {J_P} GROUP BY p.product_id, p.name " \
        f"ORDER BY total DESC, p.product_id LIMIT {n}"


def t_recent_orders(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    n = rng.choice((5, 10, 20))
    preds = [order_pred(rng, lex, rng.choice(("status", "customer")))] if d >= 2 else []
    mod = f" {post(preds)}" if preds else ""
    new = rng.random() < 0.7
    adj = rng.choice(("most recent", "latest", "newest")) if new else rng.choice(("oldest", "earliest", "first"))
    return Ask([f"the {lit(n)} {adj} orders{mod}", f"{'last' if new else 'first'} {lit(n)} orders{mod}"],
               [f"What are the {lit(n)} {adj} orders{mod}?"], subject="orders"), \
        f"SELECT * FROM orders{where_clause(preds)} ORDER BY ordered_at {'DESC' if new else 'ASC'}, order_id LIMIT {n}"


def t_cities(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    n = rng.choice((3, 5))
    return Ask([f"the top {lit(n)} cities by number of customers", f"the {lit(n)} cities with the most customers"],
               [f"Which {lit(n)} cities have the most customers?"], subject="customers"), \
        f"SELECT city, count(*) AS n FROM customers WHERE city IS NOT NULL GROUP BY city " \
        f"ORDER BY n DESC, city LIMIT {n}"


# ---------------------------------------------------------------------------------------------------- distinct
def x_count_distinct(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    roll = rng.randrange(4)
    if roll == 0:
        c = rng.choice(lex.countries)
        return Ask([f"the number of different cities our customers in {lit(c)} live in",
                    f"how many distinct cities there are among customers from {lit(c)}"],
                   [f"How many different cities do our customers in {lit(c)} come from?"], subject="customers"), \
            f"SELECT count(DISTINCT city) FROM customers WHERE country = '{c}'"
    y, m = rng.choice(lex.order_years), rng.randint(1, 12)
    lo, hi = month_bounds(y, m)
    mon = fmt_month(rng, y, m)
    if roll == 1:
        return Ask([f"the number of distinct products ordered in {mon}", f"how many different products sold in {mon}"],
                   [f"How many different products were ordered in {mon}?"], subject="products"), \
            f"SELECT count(DISTINCT oi.product_id) FROM orders o {J_OI} WHERE o.ordered_at >= DATE '{lo}' " \
            f"AND o.ordered_at < DATE '{hi}'"
    if roll == 2:
        return Ask([f"the number of different customers who ordered in {mon}",
                    f"how many unique customers placed an order in {mon}"],
                   [f"How many distinct customers bought something in {mon}?"], subject="customers"), \
            f"SELECT count(DISTINCT customer_id) FROM orders WHERE ordered_at >= DATE '{lo}' AND ordered_at < " \
            f"DATE '{hi}'"
    cid = rng.randint(1, lex.n_customers)
    return Ask([f"the number of different categories customer {lit(cid)} has bought from"],
               [f"From how many distinct categories has customer {lit(cid)} bought?"], subject="customers"), \
        f"SELECT count(DISTINCT p.category) FROM orders o {J_OI} {J_P} WHERE o.customer_id = {cid}"


def x_list_distinct(rng: R, lex: Lexicon, d: int) -> tuple[Ask, str]:
    roll = rng.randrange(4)
    if roll == 0:
        t = rng.choice(lex.tiers)
        return Ask([f"the distinct countries of {lit(t)} customers", f"every country that has {lit(t)} customers"],
                   [f"Which countries do our {lit(t)} customers come from?"], subject="customers"), \
            f"SELECT DISTINCT country FROM customers WHERE loyalty_tier = '{t}'"
    if roll == 1:
        c = rng.choice(lex.cities)
        return Ask([f"the distinct first names of customers in {lit(c)}", f"unique first names in {lit(c)}"],
                   [f"What different first names do customers in {lit(c)} have?"], subject="customers"), \
            f"SELECT DISTINCT first_name FROM customers WHERE city = '{c}'"
    if roll == 2:
        n = price_point(rng, 50, 200)
        return Ask([f"the distinct categories that have products over {money(rng, n)}",
                    f"categories with at least one product priced above {money(rng, n)}"],
                   [f"Which categories have a product costing more than {money(rng, n)}?"], subject="products"), \
            f"SELECT DISTINCT category FROM products WHERE price > {n}"
    c = rng.choice(lex.categories)
    return Ask([f"the distinct statuses of orders containing {lit(c)} products"],
               [f"Which statuses appear on orders that include a {lit(c)} product?"], subject="orders"), \
        f"SELECT DISTINCT o.status FROM orders o {J_OI} {J_P} WHERE p.category = '{c}'"
