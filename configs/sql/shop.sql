-- sql-shop: a small web shop. The student writes one read-only DuckDB query over these four tables.
-- Money is DECIMAL, times are TIMESTAMP, days are DATE. NULL means "not known" or "not yet":
-- customers.email / customers.city (never given), products.category (not categorised yet),
-- orders.shipped_at (not shipped: pending or cancelled orders).

CREATE TABLE customers (
    customer_id   INTEGER PRIMARY KEY,
    first_name    VARCHAR NOT NULL,
    last_name     VARCHAR NOT NULL,
    email         VARCHAR,                  -- NULL: the customer gave none
    city          VARCHAR,                  -- NULL: unknown
    country       VARCHAR NOT NULL,
    signup_date   DATE NOT NULL,
    loyalty_tier  VARCHAR NOT NULL          -- 'bronze', 'silver' or 'gold'
);

CREATE TABLE products (
    product_id    INTEGER PRIMARY KEY,
    name          VARCHAR NOT NULL,         -- not unique: two products can share a name
    category      VARCHAR,                  -- NULL: not categorised yet
    price         DECIMAL(10, 2) NOT NULL,  -- current list price
    stock         INTEGER NOT NULL,         -- units in the warehouse; 0 = out of stock
    discontinued  BOOLEAN NOT NULL
);

CREATE TABLE orders (
    order_id      INTEGER PRIMARY KEY,
    customer_id   INTEGER NOT NULL REFERENCES customers (customer_id),
    ordered_at    TIMESTAMP NOT NULL,
    status        VARCHAR NOT NULL,         -- 'pending', 'shipped', 'delivered', 'cancelled' or 'returned'
    shipped_at    TIMESTAMP,                -- NULL: not shipped (pending or cancelled)
    shipping_cost DECIMAL(8, 2) NOT NULL    -- 0.00 = free shipping
);

CREATE TABLE order_items (
    order_id      INTEGER NOT NULL REFERENCES orders (order_id),
    line_no       INTEGER NOT NULL,         -- 1, 2, ... within the order
    product_id    INTEGER NOT NULL REFERENCES products (product_id),  -- a product can appear on two lines
    quantity      INTEGER NOT NULL,
    unit_price    DECIMAL(10, 2) NOT NULL,  -- price paid per unit (the list price at the time, maybe discounted)
    PRIMARY KEY (order_id, line_no)
);
