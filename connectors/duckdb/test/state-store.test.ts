import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import duckdb, { type DuckDBConfig } from '@outflow/connector-duckdb';
import { createTestContext, stateModel, stateStoreSuite, type StateColumnType, type TestContext } from '@outflow/testing';
import { runSql } from './helpers.js';

// DuckDB's JSON type reads back as text (see the README), so the nested column is a STRUCT
// of the suite's rows' shape.
const TYPES: Record<StateColumnType, string> = {
  integer: 'BIGINT',
  text: 'VARCHAR',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  json: 'STRUCT(n BIGINT, version BIGINT, tags VARCHAR[], nested STRUCT(deep VARCHAR, ok BOOLEAN))',
};

let dir = '';
let ctx: TestContext<DuckDBConfig>;

/** The model of a sync: a table of its own, with no primary key (one check writes a duplicate). */
const tableOf = (sync: string) => `model_${sync.replace(/[^A-Za-z0-9]/g, '_').toLowerCase()}`;

stateStoreSuite({
  name: 'DuckDB connector pushdown',
  async setup() {
    dir = mkdtempSync(join(tmpdir(), 'outflow-duckdb-state-'));
    ctx = createTestContext<DuckDBConfig>({ path: join(dir, 'warehouse.duckdb'), readOnly: true }, { connection: 'warehouse' });
  },
  async teardown() {
    await ctx?.dispose();
    rmSync(dir, { recursive: true, force: true });
  },
  async writeModel(sync, rows) {
    const file = join(dir, 'rows.json');
    writeFileSync(file, JSON.stringify(rows));
    const columns = stateModel.columns.map((c) => `'${c.name}': '${TYPES[c.type]}'`).join(', ');
    const defs = stateModel.columns.map((c) => `"${c.name}" ${TYPES[c.type]}`).join(', ');
    await runSql(
      ctx.config.path!,
      rows.length
        ? `CREATE OR REPLACE TABLE ${tableOf(sync)} AS SELECT * FROM read_json('${file}', format = 'array', columns = {${columns}})`
        : `CREATE OR REPLACE TABLE ${tableOf(sync)} (${defs})`,
    );
  },
  open: (options) => duckdb.source!.diff!.open(ctx, { table: tableOf(options.sync), primaryKey: stateModel.primaryKey }, options),
});
