import snowflake, { configSchema, type SnowflakeConfig } from '@outflow/connector-snowflake';
import { start, type SnowflakeEmulator } from '@outflow/connector-snowflake/emulator';
import type { Value } from '@outflow/core';
import { createTestContext, stateModel, stateStoreSuite, type StateColumnType, type TestContext } from '@outflow/testing';
import { connect, destroy, exec, type Connection } from './sdk.js';

function literal(v: Value): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `'${v.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
  return String(v);
}

const TYPES: Record<StateColumnType, string> = { integer: 'number', text: 'varchar', double: 'float', boolean: 'boolean', json: 'variant' };

let sf: SnowflakeEmulator;
let sql: Connection;
let ctx: TestContext<SnowflakeConfig>;

/** The model of a sync: a table of its own, with no primary key (one check writes a duplicate). */
const tableOf = (sync: string) => `MODEL_${sync.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`;

stateStoreSuite({
  name: 'Snowflake pushdown (emulator)',
  timeoutMs: 30_000,
  async setup() {
    sf = await start();
    sql = await connect(sf.config);
    ctx = createTestContext<SnowflakeConfig>({ ...sf.config }, { schema: configSchema, connection: 'warehouse' });
  },
  async teardown() {
    await ctx?.dispose();
    if (sql) await destroy(sql);
    await sf?.stop();
  },
  async writeModel(sync, rows) {
    // Rows go in as literals (far quicker than binds here), their JSON column as text that
    // the copy parses into a VARIANT.
    const stage = `${tableOf(sync)}_STAGE`;
    await exec(sql, `create or replace table ${stage} (${stateModel.columns.map((c) => `"${c.name}" ${c.type === 'json' ? 'varchar' : TYPES[c.type]}`).join(', ')})`);
    for (let i = 0; i < rows.length; i += 2000) {
      const values = rows.slice(i, i + 2000).map((r) => `(${stateModel.columns.map((c) => literal(c.type === 'json' ? JSON.stringify(r[c.name]) : r[c.name]!)).join(', ')})`);
      await exec(sql, `insert into ${stage} values ${values.join(', ')}`);
    }
    const select = stateModel.columns.map((c) => (c.type === 'json' ? `parse_json("${c.name}") as "${c.name}"` : `"${c.name}"`)).join(', ');
    await exec(sql, `create or replace table ${tableOf(sync)} as select ${select} from ${stage}`);
  },
  open: (options) => snowflake.source!.diff!.open(ctx, { table: tableOf(options.sync), primaryKey: stateModel.primaryKey }, options),
});
