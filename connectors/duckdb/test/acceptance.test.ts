import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import duckdb, { BATCH_SIZE, type DuckDBConfig } from '@outflow/connector-duckdb';
import type { Row } from '@outflow/core';
import { sourceAcceptance } from '@outflow/testing';

// More rows than two batches, so aborting after the first batch leaves a read in progress.
const ROWS = BATCH_SIZE * 2 + 5_000;

const expectedRows: Row[] = Array.from({ length: ROWS }, (_, n) => {
  const id = n + 1;
  return { id, email: id % 7 === 0 ? null : `customer${id}@example.com`, name: `Customer ${id}`, score: id / 4, active: id % 3 !== 0 };
});

let dir: string;

sourceAcceptance<DuckDBConfig>({
  connector: duckdb,
  model: { table: 'customers', primaryKey: ['id'] },
  expectedRows,
  async setup() {
    dir = mkdtempSync(join(tmpdir(), 'outflow-duckdb-acceptance-'));
    const path = join(dir, 'warehouse.duckdb');
    const instance = await DuckDBInstance.create(path);
    const connection = await instance.connect();
    try {
      await connection.run(`
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR, name VARCHAR NOT NULL, score DOUBLE, active BOOLEAN);
        INSERT INTO customers
          SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'customer' || i || '@example.com' END,
                 'Customer ' || i, CAST(i AS DOUBLE) / 4, i % 3 <> 0
          FROM range(1, ${ROWS + 1}) t(i);
      `);
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
    writeFileSync(join(dir, 'notes.txt'), 'not a database\n');
    return { path, readOnly: true };
  },
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
  badConfigs: () => [
    { name: 'a database file that does not exist', config: { path: join(dir, 'missing.duckdb'), readOnly: true } },
    { name: 'a file that is not a DuckDB database', config: { path: join(dir, 'notes.txt'), readOnly: true } },
  ],
});
