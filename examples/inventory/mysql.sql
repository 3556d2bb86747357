-- The demo's inventory database for MySQL 8 and MariaDB: database
-- `inventory` with customers, products and orders (the same rows as
-- postgres.sql). Loaded by scripts/demo (MariaDB) and by the docker-compose
-- demo (MySQL 8); captured by examples/mysql.json. Running it again starts
-- the data over.
DROP DATABASE IF EXISTS inventory;
CREATE DATABASE inventory;

CREATE TABLE inventory.customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  first_name VARCHAR(255) NOT NULL,
  last_name VARCHAR(255) NOT NULL,
  email VARCHAR(255) NOT NULL UNIQUE
);

CREATE TABLE inventory.products (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  description VARCHAR(512),
  weight DECIMAL(8,3),
  price DECIMAL(10,2) NOT NULL
);

CREATE TABLE inventory.orders (
  id INT AUTO_INCREMENT PRIMARY KEY,
  order_date DATE NOT NULL,
  purchaser INT NOT NULL,
  quantity INT NOT NULL,
  product_id INT NOT NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'new'
);

-- A recursive row generator both MySQL 8 and MariaDB understand.
INSERT INTO inventory.customers (first_name, last_name, email)
  WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 100)
  SELECT CONCAT('First', n), CONCAT('Last', n), CONCAT('customer', n, '@example.com') FROM seq;
INSERT INTO inventory.products (name, description, weight, price)
  WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 50)
  SELECT CONCAT('product ', n), CONCAT('a fine product number ', n), n * 0.125, n * 1.99 FROM seq;
INSERT INTO inventory.orders (order_date, purchaser, quantity, product_id)
  WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 300)
  SELECT DATE '2024-01-01' + INTERVAL n DAY, 1 + n % 100, 1 + n % 5, 1 + n % 50 FROM seq;
