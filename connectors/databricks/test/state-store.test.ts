import type { Row, Value } from '@outflow/core';
import { stateModel, stateStoreSuite, type StateColumnType, type TestContext } from '@outflow/testing';
import connector, { type DatabricksConfig } from '../src/index.js';
import { startDatabricksEmulator } from '../src/emulator/index.js';
import { configOf, contextOf, type Emulator } from './helpers.js';

const TYPES: Record<StateColumnType, string> = {
  integer: 'INT',
  text: 'STRING',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  json: 'STRUCT<n: INT, version: INT, tags: ARRAY<STRING>, nested: STRUCT<deep: STRING, ok: BOOLEAN>>',
};

/** A Databricks SQL literal of a model value: the `json` column's object as a named_struct. */
function literal(v: Value): string {
  if (v === null) return 'NULL';
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(v)) return `array(${v.map(literal).join(', ')})`;
  if (typeof v === 'object') return `named_struct(${Object.entries(v).map(([k, x]) => `'${k}', ${literal(x)}`).join(', ')})`;
  return String(v);
}

let emulator: Emulator;
let ctx: TestContext<DatabricksConfig>;

/** The model of a sync: a table of its own, with no primary key (one check writes a duplicate). */
const tableOf = (sync: string) => `model_${sync.replace(/[^A-Za-z0-9]/g, '_').toLowerCase()}`;

stateStoreSuite({
  name: 'Databricks pushdown (emulator)',
  timeoutMs: 30_000,
  async setup() {
    emulator = await startDatabricksEmulator();
    ctx = contextOf(configOf(emulator));
  },
  async teardown() {
    await ctx?.dispose();
    await emulator?.stop();
  },
  async writeModel(sync, rows: Row[]) {
    const table = tableOf(sync);
    await emulator.sql(`CREATE TABLE IF NOT EXISTS ${table} (${stateModel.columns.map((c) => `${c.name} ${TYPES[c.type]}`).join(', ')})`);
    await emulator.sql(`DELETE FROM ${table}`);
    for (let i = 0; i < rows.length; i += 2000) {
      const values = rows.slice(i, i + 2000).map((r) => `(${stateModel.columns.map((c) => literal(r[c.name] ?? null)).join(', ')})`);
      await emulator.sql(`INSERT INTO ${table} VALUES ${values.join(', ')}`);
    }
  },
  open: (options) => connector.source!.diff!.open(ctx, { table: tableOf(options.sync), primaryKey: stateModel.primaryKey }, options),
});
