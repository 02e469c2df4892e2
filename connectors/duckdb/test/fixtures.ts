import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSql } from './helpers.js';

export interface Fixtures {
  dir: string;
  /** A DuckDB file with the tables and views below. */
  db: string;
  csv: string;
  tsv: string;
  parquet: string;
  /** A glob matching two Parquet files. */
  parquetGlob: string;
}

/**
 * Builds a warehouse in a fresh temp dir:
 * - `people`: one row of every common type, one row of NULLs, one of negative / edge values;
 * - `active_people`: a view over it;
 * - `accounts`: a composite primary key; `crm."Deal Book"`: a quoted name in another schema;
 * - `numbers`: 25,000 rows;
 * and CSV, TSV and Parquet copies of part of `people`, all written by DuckDB's COPY.
 */
export async function createFixtures(): Promise<Fixtures> {
  const dir = mkdtempSync(join(tmpdir(), 'outflow-duckdb-'));
  const db = join(dir, 'warehouse.duckdb');
  mkdirSync(join(dir, 'parts'));
  const f: Fixtures = {
    dir,
    db,
    csv: join(dir, 'people.csv'),
    tsv: join(dir, 'people.tsv'),
    parquet: join(dir, 'people.parquet'),
    parquetGlob: join(dir, 'parts', '*.parquet'),
  };
  await runSql(
    db,
    `
    CREATE TABLE people (
      id BIGINT, big BIGINT, ratio DOUBLE, price DECIMAL(18,2), name VARCHAR, active BOOLEAN,
      born DATE, seen TIMESTAMP, seen_tz TIMESTAMPTZ, tags VARCHAR[],
      address STRUCT(city VARCHAR, zip INTEGER), attrs MAP(VARCHAR, INTEGER), payload VARCHAR,
      huge HUGEINT, exact DECIMAL(38,2), photo BLOB
    );
    INSERT INTO people VALUES
      (1, 9007199254740993, 0.25, 1234.50, 'Ada "the first"', true,
       DATE '1815-12-10', TIMESTAMP '2024-01-02 03:04:05.123456', TIMESTAMPTZ '2024-03-01 12:00:00+02',
       ['a', NULL, 'c'], {'city': 'London', 'zip': 1}, MAP {'x': 1, 'y': 2}, '{"plan":"pro","seats":3}',
       170141183460469231731687303715884105727, 123456789012345678.99, '\\xDE\\xAD\\xBE\\xEF'::BLOB),
      (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (3, -42, -1.5e300, -0.05, '', false,
       DATE '0001-01-01', TIMESTAMP '1969-12-31 23:59:59', TIMESTAMPTZ '2000-02-29 00:00:00.5+00',
       [], {'city': NULL, 'zip': NULL}, MAP {}, '[1, 2]',
       -5, 0.10, ''::BLOB);
    CREATE VIEW active_people AS SELECT id, name FROM people WHERE active;
    CREATE TABLE accounts (region VARCHAR, id INTEGER, name VARCHAR NOT NULL, PRIMARY KEY (region, id));
    INSERT INTO accounts VALUES ('eu', 1, 'Acme'), ('us', 1, 'Globex');
    CREATE SCHEMA crm;
    CREATE TABLE crm."Deal Book" (deal_id INTEGER PRIMARY KEY, amount DOUBLE);
    INSERT INTO crm."Deal Book" VALUES (7, 99.5);
    CREATE TABLE numbers AS SELECT i AS id, 'row ' || i AS label FROM range(25000) t(i);
    COPY (SELECT id, name, price, born FROM people WHERE id IN (1, 3) ORDER BY id) TO '${f.csv}' (HEADER);
    COPY (SELECT id, name, price, born FROM people WHERE id IN (1, 3) ORDER BY id) TO '${f.tsv}' (HEADER, DELIMITER '\t');
    COPY (SELECT * FROM people ORDER BY id) TO '${f.parquet}' (FORMAT PARQUET);
    COPY (SELECT * FROM numbers WHERE id < 3) TO '${join(dir, 'parts', 'a.parquet')}' (FORMAT PARQUET);
    COPY (SELECT * FROM numbers WHERE id BETWEEN 3 AND 4) TO '${join(dir, 'parts', 'b.parquet')}' (FORMAT PARQUET);
    `,
  );
  return f;
}
