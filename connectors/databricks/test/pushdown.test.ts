import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import webhook from '@outflow/connector-webhook';
import { start as startWebhook, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import type { Change, SyncConfig } from '@outflow/core';
import databricks from '../src/index.js';
import { startDatabricksEmulator } from '../src/emulator/index.js';
import { configOf, contextOf, environment, tempDir, type Emulator } from './helpers.js';

let dbx: Emulator;
let hooks: WebhookEmulator;
let dir: string;

beforeEach(async () => {
  dir = tempDir();
  dbx = await startDatabricksEmulator();
  hooks = await startWebhook({ dataDir: join(dir, 'receiver') });
});

afterEach(async () => {
  await hooks.stop();
  await dbx.stop();
});

const connections = () => ({ warehouse: { connector: databricks, config: configOf(dbx) }, hooks: { connector: webhook, config: hooks.config } });
const ctx = () => contextOf(configOf(dbx));
/** A diff sync of `table` into the receiver's object of the same name. */
const diffSync = (table: string, mappings: Record<string, string>): SyncConfig =>
  ({
    name: table,
    from: { connection: 'warehouse', table, primaryKey: 'id' },
    capture: 'diff',
    to: { connection: 'hooks', object: table, mode: 'upsert', deletes: 'delete' },
    mappings,
  }) as SyncConfig;
const writes = (object: string) => hooks.writes(object).map((w) => `${w.t} ${w.key}`);

describe('the diff pushed down into Databricks', () => {
  it('keeps delivered state in outflow_state, plans without writing, and sends only the rows that changed', async () => {
    await dbx.sql('CREATE TABLE users (id BIGINT, email STRING, name STRING, visits BIGINT)');
    await dbx.sql(`INSERT INTO users VALUES (1, 'a@x.io', 'a0', 0), (2, 'b@x.io', 'b0', 0), (3, 'c@x.io', 'c0', 0)`);
    const env = environment(dir, connections(), new AbortController().signal);
    const sync = diffSync('users', { email: 'email', name: 'name' });

    const plan = await env.engine.plan(sync);
    expect([plan.inserted, plan.updated, plan.deleted]).toEqual([3, 0, 0]);
    expect(await dbx.sql('SHOW SCHEMAS')).not.toContainEqual({ databaseName: 'outflow_state' });

    expect(await env.engine.run(sync)).toMatchObject({ status: 'succeeded', inserted: 3 });
    const tables = (await dbx.sql('SHOW TABLES IN outflow_state')).map((r) => String(r['tableName']));
    expect(tables).toContain('outflow_meta');
    // The snapshot and the changes of a run are dropped when it ends: only the state stays.
    expect(tables.filter((t) => t.startsWith('outflow_diff_users_'))).toHaveLength(1);
    const [state] = tables.filter((t) => t.startsWith('outflow_diff_users_'));
    expect(await dbx.sql(`SELECT count(*) AS n FROM outflow_state.${state} WHERE fp IS NOT NULL`)).toEqual([{ n: 3n }]);

    expect(await env.engine.run(sync)).toMatchObject({ status: 'succeeded', inserted: 0, updated: 0, deleted: 0 });
    await dbx.sql(`UPDATE users SET name = 'b1' WHERE id = 2`);
    await dbx.sql('DELETE FROM users WHERE id = 3');
    await dbx.sql(`INSERT INTO users VALUES (4, 'd@x.io', 'd0', 0)`);
    // Only mapped columns count: a change to an unmapped one is no change.
    await dbx.sql('UPDATE users SET visits = 5 WHERE id = 1');
    expect(await env.engine.run(sync)).toMatchObject({ status: 'succeeded', inserted: 1, updated: 1, deleted: 1 });
    await env.close();

    const w = writes('users');
    expect([w.slice(0, 3).sort(), w.slice(3).sort()]).toEqual([
      ['put 1', 'put 2', 'put 3'],
      ['del 3', 'put 2', 'put 4'],
    ]);
    expect(Object.fromEntries(hooks.records('users').map((r) => [r.key, r.fields['name']]))).toEqual({ '1': 'a0', '2': 'b1', '4': 'd0' });
  });

  it('refuses a model with a column named like the diff\'s own, naming it', async () => {
    await dbx.sql('CREATE TABLE clash (id BIGINT, outflow_fp STRING)');
    await expect(databricks.source!.diff!.open(ctx(), { table: 'clash', primaryKey: ['id'] }, { sync: 'clash', columns: null, readOnly: false })).rejects.toMatchObject({
      code: 'OUTFLOW_MAPPING',
      message: expect.stringContaining('"outflow_fp"'),
    });
  });
});

describe('materialized views and streaming tables', () => {
  it('a materialized view is synced by a diff after each refresh; a stream sync of it is refused, pointing to diff', async () => {
    await dbx.sql('CREATE TABLE orders (customer BIGINT, amount BIGINT)');
    await dbx.sql('INSERT INTO orders VALUES (1, 10), (1, 5), (2, 7)');
    await dbx.sql('CREATE MATERIALIZED VIEW totals AS SELECT customer AS id, sum(amount) AS total FROM orders GROUP BY customer');
    expect(await dbx.sql(`SELECT table_type FROM information_schema.tables WHERE table_name = 'totals'`)).toEqual([{ table_type: 'MATERIALIZED_VIEW' }]);

    await expect(databricks.stream!.open(ctx(), { table: 'totals', primaryKey: ['id'] }, null, { sync: 'totals' })).rejects.toMatchObject({
      code: 'OUTFLOW_CONFIG_INVALID',
      message: expect.stringContaining('capture: diff'),
    });

    const env = environment(dir, connections(), new AbortController().signal);
    const sync = diffSync('totals', { total: 'total' });
    expect(await env.engine.run(sync)).toMatchObject({ status: 'succeeded', inserted: 2 });
    await dbx.sql('INSERT INTO orders VALUES (2, 1), (3, 4)');
    // Until it is refreshed, the view holds what its last refresh computed.
    expect(await env.engine.run(sync)).toMatchObject({ status: 'succeeded', inserted: 0, updated: 0 });
    await dbx.sql('REFRESH MATERIALIZED VIEW totals');
    expect(await env.engine.run(sync)).toMatchObject({ status: 'succeeded', inserted: 1, updated: 1, deleted: 0 });
    await env.close();
    expect(Object.fromEntries(hooks.records('totals').map((r) => [r.key, r.fields['total']]))).toEqual({ '1': 15, '2': 8, '3': 4 });
  });

  it('a streaming table that records its change data feed is followed through it; one that does not is refused, saying where to enable it', async () => {
    await dbx.sql('CREATE TABLE events (id BIGINT, name STRING)');
    await dbx.sql(`INSERT INTO events VALUES (1, 'a')`);
    await dbx.sql('CREATE STREAMING TABLE clicks TBLPROPERTIES (delta.enableChangeDataFeed = true) AS SELECT id, upper(name) AS name FROM STREAM(events)');
    await dbx.sql('CREATE STREAMING TABLE plain_clicks AS SELECT id, name FROM STREAM events');
    expect(await dbx.sql('SELECT id, name FROM clicks')).toEqual([{ id: 1n, name: 'A' }]);

    await expect(databricks.stream!.open(ctx(), { table: 'plain_clicks', primaryKey: ['id'] }, null, { sync: 'plain' })).rejects.toMatchObject({
      code: 'OUTFLOW_SOURCE',
      message: expect.stringContaining('in the statement that defines the streaming table'),
    });

    const c = ctx();
    await expect(databricks.stream!.open(c, { table: 'clicks', primaryKey: ['id'] }, null, { sync: 'clicks' })).rejects.toMatchObject({ code: 'OUTFLOW_STREAM_STALE' });
    const stream = await databricks.stream!.open(c, { table: 'clicks', primaryKey: ['id'] }, null, { sync: 'clicks', reconciled: true });
    try {
      await dbx.sql(`INSERT INTO events VALUES (2, 'b'), (3, 'c')`);
      await dbx.sql('REFRESH STREAMING TABLE clicks');
      const seen: Change[] = [];
      const it = stream[Symbol.asyncIterator]();
      while (seen.length < 2) {
        const r = await it.next();
        if (r.done) break;
        seen.push(...r.value.changes);
      }
      expect(seen.map((s) => [s.op, s.key, s.after?.['name']])).toEqual([
        ['insert', '2', 'B'],
        ['insert', '3', 'C'],
      ]);
    } finally {
      await stream.close();
    }
  });
});
