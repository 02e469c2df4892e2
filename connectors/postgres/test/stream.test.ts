import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres, { type PostgresConfig } from '@outflow/connector-postgres';
import { isOutflowError, type Change, type ChangeBatch, type ChangeStream } from '@outflow/core';
import { createTestContext } from '@outflow/testing';
import { client, createDatabase, eventually } from './helpers.js';

let db: pg.Client;
let url: string;

beforeAll(async () => {
  url = await createDatabase('stream_unit');
  db = await client(url);
});

afterAll(() => db?.end());

/** Pulls batches in the background, keeping them in arrival order. */
function follow(stream: ChangeStream): { batches: ChangeBatch[]; changes: () => Change[]; ended: Promise<unknown> } {
  const batches: ChangeBatch[] = [];
  const ended = (async () => {
    try {
      for await (const b of stream) batches.push(b);
      return undefined;
    } catch (err) {
      return err;
    }
  })();
  return { batches, changes: () => batches.flatMap((b) => b.changes), ended };
}

async function confirmed(slotLike: string): Promise<string | null> {
  const r = await db.query<{ lsn: string | null }>(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name LIKE $1`, [slotLike]);
  return r.rows[0]?.lsn ?? null;
}

describe('postgres change stream', () => {
  it('maps types faithfully, splits nothing across transactions, and advances the slot only on commit', async () => {
    await db.query(`CREATE TABLE typed (id bigint PRIMARY KEY, big bigint, amount numeric(20,4), at timestamptz, doc jsonb, ints int[], note text, flag boolean, ratio float8)`);
    await db.query(`INSERT INTO typed (id, note) VALUES (1, 'existing')`);
    const ctx = createTestContext<PostgresConfig>({ url }, { connection: 'types' });
    const stream = await postgres.stream!.open(ctx, { table: 'typed', primaryKey: ['id'] }, null);
    const f = follow(stream);
    try {
      await eventually(() => f.changes().some((c) => c.key === '1'), 'the backfill of row 1');
      expect(f.changes()[0]).toMatchObject({ op: 'insert', key: '1', after: { id: 1, note: 'existing', big: null, doc: null } });
      const afterBackfill = await confirmed('outflow_types_typed_%');

      await db.query('BEGIN');
      await db.query(`INSERT INTO typed VALUES (2, 9007199254740993, 12345678901234.5678, '2024-05-06 07:08:09.123+02', '{"a":[1,{"b":null}]}', '{1,2,NULL}', 'x', true, 0.5)`);
      await db.query(`INSERT INTO typed VALUES (3, 42, 0, NULL, '"text"', '{}', NULL, false, 'NaN')`);
      await db.query('COMMIT');
      await eventually(() => f.changes().some((c) => c.key === '3'), 'the transaction');
      const batch = f.batches.find((b) => b.changes.some((c) => c.key === '2'))!;
      expect(batch.changes.map((c) => c.key)).toEqual(['2', '3']);
      expect(batch.changes[0]!.after).toEqual({
        id: 2,
        big: '9007199254740993',
        amount: '12345678901234.5678',
        at: '2024-05-06T05:08:09.123Z',
        doc: { a: [1, { b: null }] },
        ints: [1, 2, null],
        note: 'x',
        flag: true,
        ratio: 0.5,
      });
      expect(batch.changes[1]!.after).toMatchObject({ big: 42, amount: '0.0000', at: null, doc: 'text', ints: [], flag: false, ratio: 'NaN' });
      expect(batch.changes[0]!.committedAt).toMatch(/^\d{4}-\d\d-\d\dT/);

      // Read but not committed: the slot does not move.
      await new Promise((r) => setTimeout(r, 300));
      expect(await confirmed('outflow_types_typed_%')).toBe(afterBackfill);
      await stream.commit(batch.checkpoint);
      await eventually(async () => (await confirmed('outflow_types_typed_%')) !== afterBackfill, 'the slot to advance after commit');
      expect(await stream.health()).toMatchObject({ stale: false });
      expect(ctx.metrics.lastGauge('stream_lag_bytes')).toBeGreaterThanOrEqual(0);
    } finally {
      await stream.close();
    }
  });

  it('fills unchanged TOAST columns, and carries the key of deletes and key changes', async () => {
    await db.query(`CREATE TABLE docs (id int PRIMARY KEY, body text, title text)`);
    await db.query(`ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL`);
    const big = 'lorem ipsum '.repeat(2000);
    await db.query(`INSERT INTO docs VALUES (1, $1, 'first')`, [big]);
    const ctx = createTestContext<PostgresConfig>({ url }, { connection: 'toast' });
    const stream = await postgres.stream!.open(ctx, { table: 'docs', primaryKey: ['id'] }, null);
    const f = follow(stream);
    try {
      await eventually(() => f.changes().length === 1, 'the backfill');
      await db.query(`UPDATE docs SET title = 'renamed' WHERE id = 1`);
      await eventually(() => f.changes().length === 2, 'the update');
      await db.query(`UPDATE docs SET id = 2 WHERE id = 1`);
      await db.query(`DELETE FROM docs WHERE id = 2`);
      await eventually(() => f.changes().filter((c) => c.op === 'delete').length === 2, 'the key change and the delete');
      const [, update, movedOut, movedIn, deleted] = f.changes();
      expect(update).toMatchObject({ op: 'update', key: '1', after: { id: 1, title: 'renamed' } });
      // pgoutput leaves the unchanged TOAST value out; the stream fills it in.
      expect(update!.after!['body'] === big).toBe(true);
      expect(movedOut).toMatchObject({ op: 'delete', key: '1' });
      expect(movedIn).toMatchObject({ op: 'insert', key: '2' });
      expect(deleted).toMatchObject({ op: 'delete', key: '2' });
      expect(deleted!.after).toBeUndefined();
    } finally {
      await stream.close();
    }
  });

  it('reports a truncate as stale, and refuses to resume until a diff reconciled it', async () => {
    await db.query(`CREATE TABLE truncated (id int PRIMARY KEY, v int)`);
    const ctx = createTestContext<PostgresConfig>({ url }, { connection: 'trunc' });
    const model = { table: 'truncated', primaryKey: ['id'] };
    const stream = await postgres.stream!.open(ctx, model, null);
    const f = follow(stream);
    let checkpoint: string;
    try {
      await db.query(`INSERT INTO truncated VALUES (1, 1)`);
      await eventually(() => f.changes().length === 1, 'the insert');
      checkpoint = f.batches.at(-1)!.checkpoint;
      await stream.commit(checkpoint);
      await db.query(`TRUNCATE truncated`);
      const err = await f.ended;
      expect(isOutflowError(err, 'OUTFLOW_STREAM_STALE')).toBe(true);
      expect((err as Error).message).toMatch(/truncated/);
      expect(await stream.health()).toMatchObject({ stale: true });
    } finally {
      await stream.close();
    }
    // Resuming the old position would skip the truncate: refused until core reconciles.
    await expect(postgres.stream!.open(ctx, model, checkpoint)).rejects.toMatchObject({ code: 'OUTFLOW_STREAM_STALE' });
    // After the reconciling diff, open(null) streams from the re-created slot with no backfill.
    await db.query(`INSERT INTO truncated VALUES (2, 2)`);
    // Before the engine recorded a completed reconcile, open(null) asks for it again.
    await expect(postgres.stream!.open(ctx, model, null)).rejects.toMatchObject({ code: 'OUTFLOW_STREAM_STALE' });
    const resumed = await postgres.stream!.open(ctx, model, null, { reconciled: true });
    const g = follow(resumed);
    try {
      await db.query(`INSERT INTO truncated VALUES (3, 3)`);
      await eventually(() => g.changes().some((c) => c.key === '3'), 'a change after the reconcile');
      expect(g.changes().map((c) => c.key)).toEqual(['2', '3']);
    } finally {
      await resumed.close();
    }
  });

  it('refuses a table whose deletes would not carry the key, naming the fix', async () => {
    await db.query(`CREATE TABLE nokey (id int, v int)`);
    const ctx = createTestContext<PostgresConfig>({ url }, { connection: 'nokey' });
    await expect(postgres.stream!.open(ctx, { table: 'nokey', primaryKey: ['id'] }, null)).rejects.toThrow(/REPLICA IDENTITY FULL/);
  });
});
