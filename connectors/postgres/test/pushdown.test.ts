import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import postgres, { stateTableName } from '@outflow/connector-postgres';
import type { SyncConfig } from '@outflow/core';
import { client, createDatabase } from './helpers.js';
import { engineEnv } from './engine.js';

let db: pg.Client;
let url: string;

beforeAll(async () => {
  url = await createDatabase('pushdown');
  db = await client(url);
  await db.query('CREATE TABLE accounts (id bigint PRIMARY KEY, email text, plan text, seats int, notes text)');
  await db.query(`INSERT INTO accounts SELECT i, 'a' || i || '@example.com', 'free', i % 10, 'internal ' || i FROM generate_series(1, 500) AS i`);
  await db.query('CREATE TABLE accounts_copy (id bigint PRIMARY KEY, email text, plan text, seats int CHECK (seats >= 0))');
});

afterAll(() => db?.end());

const sync: SyncConfig = {
  name: 'accounts-diff',
  from: { connection: 'wh', table: 'accounts', primaryKey: 'id' },
  capture: 'diff',
  to: { connection: 'app', object: 'accounts_copy', mode: 'upsert', deletes: 'delete' },
  mappings: { id: 'id', email: 'email', plan: 'plan', seats: 'seats' },
};

async function copy(): Promise<Record<string, unknown>[]> {
  return (await db.query('SELECT id::int AS id, email, plan, seats FROM accounts_copy ORDER BY id')).rows;
}

async function source(): Promise<Record<string, unknown>[]> {
  return (await db.query(`SELECT id::int AS id, email, plan, seats FROM accounts WHERE seats >= 0 ORDER BY id`)).rows;
}

it('diffs inside PostgreSQL: only changed rows are sent, state lives in outflow_state, rejections are parked with the database message', async () => {
  const { engine, ledger } = engineEnv({ wh: { connector: postgres, config: { url } }, app: { connector: postgres, config: { url } } });

  const first = await engine.run(sync);
  expect(first).toMatchObject({ status: 'succeeded', inserted: 500, updated: 0, deleted: 0 });
  expect(await copy()).toEqual(await source());
  const state = await db.query<{ n: string }>(`SELECT count(*) AS n FROM outflow_state.${stateTableName(sync.name)} WHERE fp IS NOT NULL`);
  expect(Number(state.rows[0]!.n)).toBe(500);

  // Nothing changed: nothing is sent.
  expect(await engine.run(sync)).toMatchObject({ status: 'succeeded', inserted: 0, updated: 0, deleted: 0 });

  // An unmapped column changing is not a change; mapped ones are; a bad row is refused alone.
  await db.query(`UPDATE accounts SET notes = 'edited' WHERE id <= 100`);
  await db.query(`UPDATE accounts SET plan = 'pro' WHERE id IN (3, 4, 5)`);
  await db.query(`UPDATE accounts SET seats = -1 WHERE id = 6`);
  await db.query(`DELETE FROM accounts WHERE id IN (7, 8)`);
  const plan = await engine.plan(sync);
  expect(plan.plan?.counts).toMatchObject({ upsert: 4, delete: 2 });
  const third = await engine.run(sync);
  expect(third).toMatchObject({ status: 'partial', updated: 3, deleted: 2, rejected: 1 });
  const errors = await ledger.listRowErrors({ sync: sync.name });
  expect(errors.map((e) => [e.key, e.reason])).toEqual([['6', expect.stringMatching(/violates check constraint/)]]);

  // The parked version is not sent again until it changes.
  expect(await engine.run(sync)).toMatchObject({ status: 'succeeded', updated: 0, rejected: 0 });
  await db.query(`UPDATE accounts SET seats = 1 WHERE id = 6`);
  const fifth = await engine.run(sync);
  expect(fifth).toMatchObject({ status: 'succeeded', updated: 1, rejected: 0 });
  expect(await copy()).toEqual(await source());
  expect(await ledger.listRowErrors({ sync: sync.name })).toEqual([]);
});

it('sends again a row that was sent but never acknowledged (a crash between write and ack)', async () => {
  const { createTestContext } = await import('@outflow/testing');
  await db.query('CREATE TABLE crashy (id int PRIMARY KEY, v text)');
  await db.query(`INSERT INTO crashy VALUES (1, 'a'), (2, 'b')`);
  const ctx = createTestContext({ url }, { connection: 'crashy' });
  const model = { table: 'crashy', primaryKey: ['id'] };
  const open = () => postgres.source!.diff!.open(ctx as never, model, { sync: 'crashy', columns: null, readOnly: false });
  const changesOf = async (store: Awaited<ReturnType<typeof open>>) => {
    await store.computeChanges();
    const out: { op: string; key: string; fp: string | null }[] = [];
    for await (const page of store.changes()) out.push(...page.map(({ op, key, fp }) => ({ op, key, fp })));
    return out.sort((a, b) => a.key.localeCompare(b.key));
  };
  let store = await open();
  const first = await changesOf(store);
  expect(first.map((c) => [c.op, c.key])).toEqual([['insert', '1'], ['insert', '2']]);
  // Row 1 is acknowledged; row 2 was logged as sent, then the process died before its ack.
  await store.apply([{ key: '1', kind: 'sent', fp: first[0]!.fp! }, { key: '2', kind: 'sent', fp: first[1]!.fp! }]);
  await store.apply([{ key: '1', kind: 'delivered', fp: first[0]!.fp! }]);
  await store.close();
  store = await open();
  expect((await changesOf(store)).map((c) => [c.op, c.key])).toEqual([['insert', '2']]);
  // Once sent, a key that leaves the model is deleted downstream: it may have been written.
  await db.query('DELETE FROM crashy WHERE id = 2');
  expect((await changesOf(store)).map((c) => [c.op, c.key])).toEqual([['delete', '2']]);
  await store.close();
});

it('finds a duplicated or null key in the one pass, even when the duplicate matches what was delivered', async () => {
  const { createTestContext } = await import('@outflow/testing');
  await db.query('CREATE TABLE twice (id int, v text)');
  await db.query(`INSERT INTO twice VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
  const ctx = createTestContext({ url }, { connection: 'twice' });
  const open = (sql: string) => postgres.source!.diff!.open(ctx as never, { sql, primaryKey: ['id'] }, { sync: 'twice', columns: ['v'], readOnly: false });
  let store = await open('SELECT * FROM twice');
  await store.computeChanges();
  const acks = [];
  for await (const page of store.changes()) for (const c of page) acks.push({ key: c.key, kind: 'delivered' as const, fp: c.fp! });
  await store.apply(acks);
  await store.close();
  // Row 2 twice, both copies as delivered: nothing to send, but the key is not unique.
  store = await open(`SELECT * FROM twice UNION ALL SELECT * FROM twice WHERE id = 2`);
  await expect(store.computeChanges()).rejects.toMatchObject({ code: 'OUTFLOW_MODEL_KEY', message: expect.stringContaining('duplicated: 2.') });
  await store.close();
  // A new key twice.
  store = await open(`SELECT * FROM twice UNION ALL SELECT 9, 'x' UNION ALL SELECT 9, 'y'`);
  await expect(store.computeChanges()).rejects.toMatchObject({ code: 'OUTFLOW_MODEL_KEY', message: expect.stringContaining('duplicated: 9.') });
  await store.close();
  store = await open(`SELECT * FROM twice UNION ALL SELECT NULL, 'n'`);
  await expect(store.computeChanges()).rejects.toMatchObject({ code: 'OUTFLOW_MODEL_KEY', message: expect.stringContaining('1 rows of query') });
  await store.close();
  store = await open('SELECT * FROM twice');
  expect(await store.computeChanges()).toEqual({ insert: 0, update: 0, delete: 0 });
  await store.close();
});

it('keeps state written with md5 fingerprints: unchanged rows are not sent again and take the new fingerprint', async () => {
  const { createTestContext } = await import('@outflow/testing');
  await db.query('CREATE TABLE olden (id int PRIMARY KEY, v text, w int)');
  await db.query(`INSERT INTO olden VALUES (1, 'a', 1), (2, NULL, 2), (3, 'c', 3)`);
  const ctx = createTestContext({ url }, { connection: 'olden' });
  const open = () => postgres.source!.diff!.open(ctx as never, { table: 'olden', primaryKey: ['id'] }, { sync: 'olden', columns: ['v', 'w'], readOnly: false });
  let store = await open();
  await store.computeChanges();
  const acks = [];
  for await (const page of store.changes()) for (const c of page) acks.push({ key: c.key, kind: 'delivered' as const, fp: c.fp! });
  await store.apply(acks);
  await store.close();
  // As the diff before the 64-bit fingerprint left it; row 3 parked at its current version.
  const table = `outflow_state.${stateTableName('olden')}`;
  await db.query(`UPDATE ${table} d SET fp = md5(ROW(o.v, o.w)::text) FROM olden o WHERE d.key = o.id::text`);
  await db.query(`UPDATE ${table} d SET fp = md5('old'), parked_fp = md5(ROW(o.v, o.w)::text) FROM olden o WHERE d.key = o.id::text AND o.id = 3`);
  await db.query(`UPDATE olden SET w = 20 WHERE id = 2`);
  store = await open();
  expect(await store.computeChanges()).toEqual({ insert: 0, update: 1, delete: 0 });
  const changed = [];
  for await (const page of store.changes()) changed.push(...page.map((c) => [c.op, c.key]));
  expect(changed).toEqual([['update', '2']]);
  await store.close();
  const fps = (await db.query<{ key: string; fp: string; parked_fp: string | null }>(`SELECT key, fp, parked_fp FROM ${table} ORDER BY key`)).rows;
  const kind = (fp: string | null) => (fp === null ? null : fp.length === 32 ? 'md5' : 'h64');
  expect(fps.map((r) => [r.key, kind(r.fp), kind(r.parked_fp)])).toEqual([
    ['1', 'h64', null],
    ['2', 'md5', null],
    ['3', 'md5', 'h64'],
  ]);
});
