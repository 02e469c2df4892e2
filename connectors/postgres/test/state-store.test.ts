import type pg from 'pg';
import postgres, { configSchema, type PostgresConfig } from '@outflow/connector-postgres';
import { createTestContext, stateModel, stateStoreSuite, type StateColumnType, type TestContext } from '@outflow/testing';
import { client, createDatabase } from './helpers.js';

const TYPES: Record<StateColumnType, string> = { integer: 'integer', text: 'text', double: 'double precision', boolean: 'boolean', json: 'jsonb' };

let db: pg.Client;
let ctx: TestContext<PostgresConfig>;

/** The model of a sync: a table of its own, with no primary key (one check writes a duplicate). */
const tableOf = (sync: string) => `model_${sync.replace(/[^a-z0-9]/gi, '_').toLowerCase()}`;

stateStoreSuite({
  name: 'PostgreSQL pushdown',
  async setup() {
    const url = await createDatabase('statesuite');
    db = await client(url);
    ctx = createTestContext<PostgresConfig>({ url }, { schema: configSchema, connection: 'warehouse' });
  },
  async teardown() {
    await ctx?.dispose();
    await db?.end();
  },
  async writeModel(sync, rows) {
    const table = tableOf(sync);
    const columns = stateModel.columns.map((c) => `${c.name} ${TYPES[c.type]}`).join(', ');
    await db.query(`CREATE TABLE IF NOT EXISTS ${table} (${columns})`);
    await db.query(`TRUNCATE ${table}`);
    await db.query(`INSERT INTO ${table} SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(${columns})`, [JSON.stringify(rows)]);
  },
  open: (options) => postgres.source!.diff!.open(ctx, { table: tableOf(options.sync), primaryKey: stateModel.primaryKey }, options),
});
