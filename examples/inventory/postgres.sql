-- The demo's inventory database for PostgreSQL: schema `inventory` with
-- customers, products and orders. Loaded by scripts/demo and by the
-- docker-compose demo (docker/docker-compose.yml); captured by
-- examples/postgres.json. Running it again starts the data over.
DROP SCHEMA IF EXISTS inventory CASCADE;
CREATE SCHEMA inventory;

CREATE TABLE inventory.customers (
  id serial PRIMARY KEY,
  first_name text NOT NULL,
  last_name text NOT NULL,
  email text NOT NULL UNIQUE
);

CREATE TABLE inventory.products (
  id serial PRIMARY KEY,
  name text NOT NULL,
  description text,
  weight numeric(8,3),
  price numeric(10,2) NOT NULL
);

CREATE TABLE inventory.orders (
  id serial PRIMARY KEY,
  order_date date NOT NULL,
  purchaser int NOT NULL REFERENCES inventory.customers,
  quantity int NOT NULL,
  product_id int NOT NULL REFERENCES inventory.products,
  status text NOT NULL DEFAULT 'new'
);

-- Updates and deletes carry the whole old row (the event's `before`), as
-- they do from MySQL, so the demo can show what changed.
ALTER TABLE inventory.customers REPLICA IDENTITY FULL;
ALTER TABLE inventory.products REPLICA IDENTITY FULL;
ALTER TABLE inventory.orders REPLICA IDENTITY FULL;

INSERT INTO inventory.customers (first_name, last_name, email)
  SELECT 'First' || g, 'Last' || g, 'customer' || g || '@example.com' FROM generate_series(1, 100) g;
INSERT INTO inventory.products (name, description, weight, price)
  SELECT 'product ' || g, 'a fine product number ' || g, g * 0.125, g * 1.99 FROM generate_series(1, 50) g;
INSERT INTO inventory.orders (order_date, purchaser, quantity, product_id)
  SELECT date '2024-01-01' + g, 1 + g % 100, 1 + g % 5, 1 + g % 50 FROM generate_series(1, 300) g;
