import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Change, ChangeStream } from '@outflow/core';
import connector, { PAGE_ROWS } from '../src/index.js';
import { startDatabricksEmulator } from '../src/emulator/index.js';
import { configOf, contextOf, type Emulator } from './helpers.js';

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startDatabricksEmulator();
});
afterAll(() => emulator.stop());

const ctx = () => contextOf(configOf(emulator));

/** Pulls batches until `done` holds for the changes seen. */
async function take(stream: ChangeStream, done: (seen: Change[]) => boolean): Promise<{ seen: Change[]; checkpoints: string[] }> {
  const seen: Change[] = [];
  const checkpoints: string[] = [];
  const it = stream[Symbol.asyncIterator]();
  while (!done(seen)) {
    const r = await it.next();
    if (r.done) break;
    seen.push(...r.value.changes);
    checkpoints.push(r.value.checkpoint);
  }
  return { seen, checkpoints };
}

/** Opens a stream as the engine does the first time: the handshake, then open(null) reconciled. */
async function follow(table: string, sync: string): Promise<ChangeStream> {
  const c = ctx();
  await expect(connector.stream!.open(c, { table, primaryKey: ['id'] }, null, { sync })).rejects.toMatchObject({ code: 'OUTFLOW_STREAM_STALE' });
  return connector.stream!.open(c, { table, primaryKey: ['id'] }, null, { sync, reconciled: true });
}

describe('the Databricks connector', () => {
  it('discovers tables from information_schema with their declared primary keys, and reads a SQL model', async () => {
    await emulator.sql('CREATE TABLE accounts (region STRING NOT NULL, id BIGINT NOT NULL, name STRING, CONSTRAINT accounts_pk PRIMARY KEY (region, id))');
    await emulator.sql(`INSERT INTO accounts VALUES ('eu', 1, 'A'), ('us', 1, 'B')`);
    const catalog = await connector.source!.discover(ctx());
    expect(catalog.tables.find((t) => t.name === 'accounts')).toMatchObject({
      primaryKey: ['region', 'id'],
      columns: [
        { name: 'region', nullable: false },
        { name: 'id', nullable: false },
        { name: 'name', nullable: true },
      ],
    });
    const rows = [];
    for await (const b of connector.source!.read(ctx(), { sql: 'SELECT name, id * 10 AS tens FROM accounts ORDER BY name', primaryKey: ['name'] })) rows.push(...b.rows);
    expect(rows).toEqual([
      { name: 'A', tens: 10 },
      { name: 'B', tens: 10 },
    ]);
    expect((await connector.source!.columns!(ctx(), { table: 'accounts', primaryKey: ['region', 'id'] })).map((c) => c.name)).toEqual(['region', 'id', 'name']);
  });

  it('refuses to stream a table without its change data feed, saying how to enable it', async () => {
    await emulator.sql('CREATE TABLE plain (id BIGINT, name STRING)');
    await expect(connector.stream!.open(ctx(), { table: 'plain', primaryKey: ['id'] }, null, { sync: 'plain' })).rejects.toMatchObject({
      code: 'OUTFLOW_SOURCE',
      message: expect.stringContaining('SET TBLPROPERTIES (delta.enableChangeDataFeed = true)'),
    });
  });

  it('folds an update into one change with its before image, and keeps a commit\'s changes in order with ordered positions', async () => {
    await emulator.sql('CREATE TABLE folded (id BIGINT, name STRING) TBLPROPERTIES (delta.enableChangeDataFeed = true)');
    const stream = await follow('folded', 'folded');
    try {
      await emulator.sql(`INSERT INTO folded VALUES (1, 'a0'), (2, 'b0'), (3, 'c0')`);
      await emulator.sql(`UPDATE folded SET name = name || '1' WHERE id IN (1, 3)`);
      await emulator.sql('DELETE FROM folded WHERE id = 2');
      const { seen, checkpoints } = await take(stream, (s) => s.some((c) => c.op === 'delete'));
      expect(seen.map((c) => [c.op, c.key, c.after?.['name'] ?? null, c.before?.['name'] ?? null])).toEqual([
        ['insert', '1', 'a0', null],
        ['insert', '2', 'b0', null],
        ['insert', '3', 'c0', null],
        ['update', '1', 'a01', 'a0'],
        ['update', '3', 'c01', 'c0'],
        ['delete', '2', null, 'b0'],
      ]);
      const positions = seen.map((c) => c.position!);
      expect([...positions].sort()).toEqual(positions);
      expect(new Set(positions.map((p) => p.length)).size).toBe(1);
      // Versions: 0 the creation, 1 the inserts, 2 the update, 3 the delete. A checkpoint
      // covers its batch: here version 2 whole and the first change of version 3.
      expect(checkpoints.at(-1)).toBe('3.1');
      expect(seen.every((c) => c.committedAt !== undefined && !Number.isNaN(Date.parse(c.committedAt)))).toBe(true);
    } finally {
      await stream.close();
    }
  });

  it('resumes inside a commit larger than a batch: the rest of that commit arrives, nothing delivered before it again', async () => {
    await emulator.sql('CREATE TABLE big (id BIGINT, name STRING) TBLPROPERTIES (delta.enableChangeDataFeed = true)');
    const first = await follow('big', 'big');
    let checkpoint: string;
    try {
      const values = Array.from({ length: PAGE_ROWS + 3 }, (_, i) => `(${i + 1}, 'n${i + 1}')`);
      await emulator.sql(`INSERT INTO big VALUES ${values.join(', ')}`);
      const { seen, checkpoints } = await take(first, (s) => s.length >= PAGE_ROWS);
      expect(seen).toHaveLength(PAGE_ROWS);
      // Version 1 (the insert) is not done: the checkpoint says how far into it delivery got.
      checkpoint = checkpoints.at(-1)!;
      expect(checkpoint).toBe(`1.${PAGE_ROWS}`);
      await first.commit(checkpoint);
    } finally {
      await first.close();
    }
    await emulator.sql(`UPDATE big SET name = 'changed' WHERE id = 1`);
    const second = await connector.stream!.open(ctx(), { table: 'big', primaryKey: ['id'] }, checkpoint, { sync: 'big' });
    try {
      const { seen } = await take(second, (s) => s.some((c) => c.op === 'update'));
      expect(seen.map((c) => `${c.op} ${c.key}`)).toEqual([...[1, 2, 3].map((i) => `insert ${PAGE_ROWS + i}`), 'update 1']);
    } finally {
      await second.close();
    }
  });

  it('passes OAuth client credentials to the driver\'s OAuth flow, which serves Databricks host names only, without showing the secret', async () => {
    const { token: _, ...rest } = configOf(emulator);
    const secret = 'dose-oauth-secret-0123456789';
    const err = await connector.source!.check(contextOf({ ...rest, clientId: 'svc-outflow', clientSecret: secret })).catch((e: unknown) => e as Error);
    expect(err).toMatchObject({ code: 'OUTFLOW_CHECK_FAILED', message: expect.stringContaining('OAuth is not supported for 127.0.0.1') });
    expect(JSON.stringify(err) + String(err)).not.toContain(secret);
  });

  it('reports a warehouse answering 503 (starting) as a retryable failure; the next attempt passes', async () => {
    emulator.setFaults({ failRequests: 1 });
    try {
      await expect(connector.source!.check(ctx())).rejects.toMatchObject({ code: 'OUTFLOW_CHECK_FAILED', retryable: true, message: expect.stringContaining('503') });
    } finally {
      emulator.setFaults({});
    }
    await connector.source!.check(ctx());
  });

  it('refuses a stream of a SQL model: a query has no change data feed', async () => {
    await expect(connector.stream!.open(ctx(), { sql: 'SELECT 1 AS id', primaryKey: ['id'] }, null)).rejects.toMatchObject({ code: 'OUTFLOW_CONFIG_INVALID' });
  });
});
