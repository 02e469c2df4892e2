-- Run in a Databricks SQL editor (or any SQL client on the warehouse).
CREATE SCHEMA IF NOT EXISTS main.crm;

CREATE TABLE IF NOT EXISTS main.crm.customers (
  id BIGINT NOT NULL,
  email STRING,
  first_name STRING,
  last_name STRING,
  company STRING,
  CONSTRAINT customers_pk PRIMARY KEY (id)
) TBLPROPERTIES (delta.enableChangeDataFeed = true);

INSERT INTO main.crm.customers VALUES
  (1, 'ada@example.com', 'Ada', 'Lovelace', 'Analytical Engines'),
  (2, 'grace@example.com', 'Grace', 'Hopper', 'COBOL Inc'),
  (3, 'alan@example.com', 'Alan', 'Turing', 'Bletchley');
