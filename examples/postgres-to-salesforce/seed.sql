-- A customers table for the example: 5,000 rows.
CREATE TABLE IF NOT EXISTS customers (
  id integer PRIMARY KEY,
  email text NOT NULL,
  first_name text,
  last_name text NOT NULL,
  title text,
  birth_date date,
  opted_out boolean NOT NULL DEFAULT false
);
INSERT INTO customers
SELECT i, 'customer' || i || '@example.com', 'First' || i, 'Last' || i,
       CASE WHEN i % 3 = 0 THEN 'Buyer' ELSE NULL END,
       DATE '1970-01-01' + (i % 15000),
       i % 10 = 0
FROM generate_series(1, 5000) AS i
ON CONFLICT (id) DO NOTHING;
