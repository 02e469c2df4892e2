import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import snowflake, { configSchema, type SnowflakeConfig } from '@outflow/connector-snowflake';
import { start, type SnowflakeEmulator } from '@outflow/connector-snowflake/emulator';
import webhook from '@outflow/connector-webhook';
import { start as startWebhook, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { stateFileOf } from '@outflow/state-duckdb';
import type { Change, ChangeStream, SyncConfig } from '@outflow/core';
import { createTestContext } from '@outflow/testing';
import { environment, tempDir } from './helpers.js';
import { connect, destroy, exec, type Connection } from './sdk.js';

let sf: SnowflakeEmulator;
let sql: Connection;

beforeAll(async () => {
  sf = await start();
  sql = await connect(sf.config);
});
afterAll(async () => {
  await destroy(sql);
  await sf.stop();
});

const ctx = (config: Partial<SnowflakeConfig> = {}) => createTestContext<SnowflakeConfig>({ ...sf.config, ...config }, { schema: configSchema });

async function take(stream: ChangeStream, until: (seen: Change[]) => boolean): Promise<Change[]> {
  const seen: Change[] = [];
  const it = stream[Symbol.asyncIterator]();
  while (!until(seen)) {
    const r = await it.next();
    if (r.done) break;
    seen.push(...r.value.changes);
  }
  return seen;
}

describe('the Snowflake connector', () => {
  it('logs in with a key pair (JWT)', async () => {
    const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    sf.addUser('SVC_OUTFLOW', { publicKey: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    const privateKey = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const { password: _, ...rest } = sf.config;
    await snowflake.source!.check(createTestContext<SnowflakeConfig>({ ...rest, username: 'svc_outflow', privateKey }, { schema: configSchema }));
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await expect(snowflake.source!.check(createTestContext<SnowflakeConfig>({ ...rest, username: 'svc_outflow', privateKey: other }, { schema: configSchema }))).rejects.toMatchObject({
      code: 'OUTFLOW_CHECK_FAILED',
      message: expect.stringMatching(/390144/),
    });
  });

  it('discovers tables with declared primary keys, and reads a SQL model', async () => {
    await exec(sql, 'create table accounts (region varchar, id int, name varchar, primary key (region, id))');
    await exec(sql, `insert into accounts values ('eu', 1, 'A'), ('us', 1, 'B')`);
    const catalog = await snowflake.source!.discover(ctx());
    expect(catalog.tables.find((t) => t.name === 'ACCOUNTS')).toMatchObject({ schema: 'PUBLIC', primaryKey: ['REGION', 'ID'], columns: [{ name: 'REGION', type: 'TEXT' }, { name: 'ID', type: 'NUMBER' }, { name: 'NAME', type: 'TEXT' }] });
    const rows = [];
    for await (const b of snowflake.source!.read(ctx(), { sql: `select name, id * 10 as tens from accounts order by name`, primaryKey: ['NAME'] })) rows.push(...b.rows);
    expect(rows).toEqual([{ NAME: 'A', TENS: 10 }, { NAME: 'B', TENS: 10 }]);
  });

  /**
   * Opens a new stream as core does: the first open creates the STREAM and answers with the
   * stale-stream handshake (core would deliver the table by a diff); the next resumes it.
   */
  async function openNew(model: { table: string; primaryKey: string[] }): Promise<ChangeStream> {
    const c = ctx();
    await expect(snowflake.stream!.open(c, model, null, { sync: 'test' })).rejects.toMatchObject({ code: 'OUTFLOW_STREAM_STALE', message: expect.stringMatching(/was just created/) });
    return snowflake.stream!.open(c, model, null, { sync: 'test', reconciled: true });
  }

  it('folds an update pair into one update carrying the row before and after', async () => {
    await exec(sql, 'create table folks (id int primary key, name varchar)');
    const stream = await openNew({ table: 'FOLKS', primaryKey: ['ID'] });
    try {
      await exec(sql, `insert into folks values (1, 'x')`);
      await take(stream, (s) => s.length === 1);
      await exec(sql, `update folks set name = 'y' where id = 1`);
      const [change] = await take(stream, (s) => s.length === 1);
      expect(change).toMatchObject({ op: 'update', key: '1', before: { ID: 1, NAME: 'x' }, after: { ID: 1, NAME: 'y' } });
    } finally {
      await stream.close();
    }
  });

  it('streams the changes a dynamic table refresh makes', async () => {
    await exec(sql, 'create table sales (id int, customer varchar, amount number(10,2))');
    await exec(sql, `insert into sales values (1, 'a', 10)`);
    await exec(sql, `create dynamic table customer_totals target_lag = '1 minute' warehouse = compute_wh as select customer, sum(amount) as total from sales group by customer`);
    const stream = await openNew({ table: 'CUSTOMER_TOTALS', primaryKey: ['CUSTOMER'] });
    try {
      await exec(sql, `insert into sales values (2, 'a', 5), (3, 'b', 1)`);
      await sf.refreshDynamicTables();
      const changes = await take(stream, (s) => s.length >= 2);
      expect(changes.map((c) => [c.op, c.key, c.after?.['TOTAL']]).sort()).toEqual([
        ['insert', 'b', 1],
        ['update', 'a', 15],
      ]);
    } finally {
      await stream.close();
    }
  });

  it('reads a reconciling diff as of the offset of the new STREAM, so the diff and the stream meet exactly', async () => {
    await exec(sql, 'create table tickets (id int primary key, title varchar)');
    await exec(sql, `insert into tickets values (1, 'a'), (2, 'b'), (3, 'c')`);
    const model = { table: 'TICKETS', primaryKey: ['ID'] };
    const c = ctx();
    const rowsOf = async (options?: { sync: string; reconcile: boolean }) => {
      const rows = [];
      for await (const b of snowflake.source!.read(c, model, options)) rows.push(...b.rows);
      return rows.map((r) => `${String(r['ID'])} ${String(r['TITLE'])}`).sort();
    };
    await expect(snowflake.stream!.open(c, model, null, { sync: 'tickets' })).rejects.toMatchObject({ code: 'OUTFLOW_STREAM_STALE' });
    // After the STREAM was created and before the diff reads: a row inserted and deleted
    // (which neither may deliver), another inserted, one updated, one deleted.
    await exec(sql, `insert into tickets values (4, 'd'), (5, 'e')`);
    await exec(sql, `delete from tickets where id in (1, 4)`);
    await exec(sql, `update tickets set title = 'b2' where id = 2`);
    expect(await rowsOf({ sync: 'tickets', reconcile: true })).toEqual(['1 a', '2 b', '3 c']);
    expect(await rowsOf()).toEqual(['2 b2', '3 c', '5 e']);
    // The stream resumed after the reconcile carries exactly what the diff did not see.
    const stream = await snowflake.stream!.open(c, model, null, { sync: 'tickets', reconciled: true });
    try {
      const changes = await take(stream, (seen) => seen.length >= 3);
      expect(changes.map((ch) => `${ch.op} ${ch.key} ${String(ch.after?.['TITLE'] ?? '')}`.trim()).sort()).toEqual(['delete 1', 'insert 5 e', 'update 2 b2']);
    } finally {
      await stream.close();
    }
    // Once the stream has resumed, a reconciling read is a read of the table as it is.
    expect(await rowsOf({ sync: 'tickets', reconcile: true })).toEqual(['2 b2', '3 c', '5 e']);
  });

  it('refuses to stream a SQL model', async () => {
    await expect(snowflake.stream!.open(ctx(), { sql: 'select 1 as id', primaryKey: ['ID'] }, null)).rejects.toMatchObject({ code: 'OUTFLOW_CONFIG_INVALID' });
  });
});

describe('diff pushdown', () => {
  let hooks: WebhookEmulator;
  beforeAll(async () => {
    hooks = await startWebhook();
    await exec(sql, 'create table members (id int primary key, email varchar, name varchar, note varchar)');
    await exec(sql, `insert into members select n, 'm' || n || '@x.io', 'member ' || n, 'unmapped' from (select seq4() + 1 as n from table(generator(rowcount => 200)))`);
  });
  afterAll(() => hooks.stop());

  const sync = { name: 'members', from: { connection: 'warehouse', table: 'MEMBERS', primaryKey: 'ID' }, capture: 'diff', to: { connection: 'hooks', object: 'members', mode: 'upsert', deletes: 'delete' }, mappings: { email: 'EMAIL', name: 'NAME' } } as SyncConfig;
  const env = (dir: string) => environment(dir, { warehouse: { connector: snowflake, config: sf.config }, hooks: { connector: webhook, config: hooks.config } }, new AbortController().signal);

  it('diffs in Snowflake against state in the Outflow schema and sends only changes', async () => {
    const dir = tempDir();
    const e = env(dir);
    const plan = await e.engine.plan(sync);
    expect(plan.plan!.counts.upsert).toBe(200);
    expect(await exec(sql, `select count(*) as n from information_schema.tables where table_schema = 'OUTFLOW' and table_name like 'OUTFLOW_DIFF_%'`)).toEqual([{ N: 0 }]);

    const first = await e.engine.run(sync);
    expect(first.error?.message).toBeUndefined();
    expect(first).toMatchObject({ status: "succeeded", inserted: 200 });
    expect(hooks.records('members')).toHaveLength(200);

    await exec(sql, `update members set name = 'renamed' where id <= 3`);
    await exec(sql, `update members set note = 'not delivered' where id between 10 and 20`);
    await exec(sql, `delete from members where id = 200`);
    await exec(sql, `insert into members values (201, 'new@x.io', 'new', null)`);
    const second = await e.engine.run(sync);
    expect(second).toMatchObject({ status: 'succeeded', inserted: 1, updated: 3, deleted: 1 });
    expect(hooks.records('members').find((r) => r.key === '2')?.fields).toEqual({ email: 'm2@x.io', name: 'renamed' });
    expect(hooks.records('members').some((r) => r.key === '200')).toBe(false);
    expect(await e.engine.run(sync)).toMatchObject({ inserted: 0, updated: 0, deleted: 0 });
    const state = await exec(sql, `select table_name from information_schema.tables where table_schema = 'OUTFLOW' and table_name like 'OUTFLOW_DIFF_%MEMBERS_%' order by 1`);
    expect(state).toHaveLength(2);
    await e.close();
    // The delivered state lives in Snowflake, not in the embedded store.
    expect(existsSync(stateFileOf(dir, 'members'))).toBe(false);
  });
});
