import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from '@outflow/connector-postgres';
import webhook from '@outflow/connector-webhook';
import { LOG_FILE, start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import type { RunSummary, SyncConfig } from '@outflow/core';
import { client, createDatabase, eventually } from './helpers.js';
import { engineEnv } from './engine.js';

type Person = { id: number; name: string; version: number };

const sync = (name: string, from: string, to: string, object: string): SyncConfig => ({
  name,
  from: { connection: from, table: 'people', primaryKey: 'id' },
  capture: 'stream',
  to: { connection: to, object, mode: 'upsert', deletes: 'delete' },
  delivery: { batchSize: 200 },
});

async function sourceRows(db: pg.Client): Promise<Person[]> {
  return (await db.query<Person>('SELECT id, name, version FROM people ORDER BY id')).rows;
}

async function copyRows(db: pg.Client, table = 'people_copy'): Promise<Person[]> {
  return (await db.query<Person>(`SELECT id, name, version FROM ${table} ORDER BY id`)).rows;
}

function webhookRows(emulator: WebhookEmulator): Person[] {
  return emulator
    .records('people')
    .map((r) => ({ id: Number(r.fields['id']), name: String(r.fields['name']), version: Number(r.fields['version']) }))
    .sort((a, b) => a.id - b.id);
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Fails when any key's versions, in the order they were applied, ever go backwards. */
function expectInOrder(applied: { id: number; version: number }[], where: string): void {
  const last = new Map<number, number>();
  for (const a of applied) {
    const before = last.get(a.id);
    if (before !== undefined && a.version < before) throw new Error(`${where}: key ${a.id} went from version ${before} back to ${a.version}`);
    last.set(a.id, a.version);
  }
}

let url: string;
let destUrl: string;
let db: pg.Client;
let dest: pg.Client;

beforeAll(async () => {
  url = await createDatabase('e2e_src');
  destUrl = await createDatabase('e2e_dst');
  db = await client(url);
  dest = await client(destUrl);
  await db.query('CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, version int NOT NULL)');
  await db.query(`INSERT INTO people SELECT i, 'person ' || i, 0 FROM generate_series(1, 300) AS i`);
  for (const t of ['people_copy', 'people_copy2']) {
    await dest.query(`CREATE TABLE ${t} (id int PRIMARY KEY, name text, version int)`);
  }
  // Every write the destination applies, in order, to check the order per key.
  await dest.query('CREATE TABLE applied (seq bigserial PRIMARY KEY, tbl text, id int, version int, op text, at timestamptz NOT NULL DEFAULT clock_timestamp())');
  await dest.query(`CREATE FUNCTION log_applied() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN INSERT INTO applied (tbl, id, version, op) VALUES (TG_TABLE_NAME, OLD.id, NULL, TG_OP);
      ELSE INSERT INTO applied (tbl, id, version, op) VALUES (TG_TABLE_NAME, NEW.id, NEW.version, TG_OP); END IF;
      RETURN NULL;
    END $$`);
  for (const t of ['people_copy', 'people_copy2']) {
    await dest.query(`CREATE TRIGGER log AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION log_applied()`);
  }
});

afterAll(async () => {
  await db?.end();
  await dest?.end();
});

/** Inserts, updates (several times per key, some in one transaction) and deletes at the source. */
async function churn(): Promise<void> {
  await db.query(`INSERT INTO people SELECT i, 'new ' || i, 0 FROM generate_series(301, 400) AS i`);
  for (let v = 1; v <= 3; v++) await db.query(`UPDATE people SET version = ${v}, name = 'person ' || id || ' v${v}' WHERE id % 5 = 0`);
  await db.query('BEGIN');
  await db.query(`UPDATE people SET version = version + 10 WHERE id BETWEEN 1 AND 50`);
  await db.query(`DELETE FROM people WHERE id BETWEEN 41 AND 60`);
  await db.query(`INSERT INTO people VALUES (45, 'back again', 99)`);
  await db.query('COMMIT');
  await db.query(`DELETE FROM people WHERE id % 17 = 0`);
  await db.query(`UPDATE people SET version = version + 1 WHERE id > 350`);
}

describe('streaming end to end', () => {
  it('delivers inserts, updates and deletes to the webhook emulator and a Postgres table, in order per key', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'outflow-hook-'));
    const emulator = await start({ dataDir });
    const { engine, gauges } = engineEnv({
      'src-hook': { connector: postgres, config: { url } },
      'src-pg': { connector: postgres, config: { url, heartbeatSeconds: 1 } },
      hook: { connector: webhook, config: { ...emulator.config, requestsPerSecond: 1000 } },
      dest: { connector: postgres, config: { url: destUrl } },
    });
    try {
      const runs = [
        engine.run(sync('people-to-hook', 'src-hook', 'hook', 'people')),
        engine.run(sync('people-to-pg', 'src-pg', 'dest', 'people_copy')),
      ];
      // The initial backfill: every existing row arrives.
      await eventually(async () => webhookRows(emulator).length === 300 && (await copyRows(dest)).length === 300, 'the backfill');
      await churn();
      const want = await sourceRows(db);
      await eventually(async () => JSON.stringify(await copyRows(dest)) === JSON.stringify(want), 'the Postgres table to match the source');
      await eventually(() => JSON.stringify(webhookRows(emulator)) === JSON.stringify(want), 'the webhook receiver to match the source');
      await eventually(() => gauges.has('stream_lag_bytes'), 'the slot lag metric', 10_000);
      engine.stop();
      const summaries = await Promise.all(runs);
      for (const s of summaries) expect(s.status).toBe('succeeded');

      const applied = (await dest.query<{ id: number; version: number | null; op: string }>(`SELECT id, version, op FROM applied WHERE tbl = 'people_copy' ORDER BY seq`)).rows;
      expectInOrder(applied.filter((a) => a.op !== 'DELETE').map((a) => ({ id: a.id, version: a.version! })), 'Postgres destination');
      // Row 45 was deleted and inserted again in one transaction: the delete came first.
      const for45 = applied.filter((a) => a.id === 45).map((a) => a.op);
      expect(for45.lastIndexOf('DELETE')).toBeLessThan(for45.lastIndexOf('UPDATE') === -1 ? for45.lastIndexOf('INSERT') : Math.max(for45.lastIndexOf('INSERT'), for45.lastIndexOf('UPDATE')));

      const log = readFileSync(join(dataDir, LOG_FILE), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { t: string; record?: { key: string; fields: Person } });
      expectInOrder(log.filter((e) => e.t === 'put').map((e) => ({ id: Number(e.record!.key), version: e.record!.fields.version })), 'webhook receiver');
    } finally {
      engine.stop();
      await emulator.stop();
    }
  });

  it('detects a slot dropped behind its back, reports it, and reconciles by a diff', async () => {
    const { engine, ledger } = engineEnv({
      src: { connector: postgres, config: { url } },
      dest: { connector: postgres, config: { url: destUrl } },
    });
    const s = sync('people-reconciled', 'src', 'dest', 'people_copy2');
    let before = new Set<number>();
    const runs: RunSummary[] = [];
    const running = engine.run(s, { onRun: (r) => void runs.push(r) });
    try {
      await eventually(async () => JSON.stringify(await copyRows(dest, 'people_copy2')) === JSON.stringify(await sourceRows(db)), 'the first sync');
      const slot = (await db.query<{ slot_name: string }>(`SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'outflow_people_reconciled_people_%'`)).rows[0]!.slot_name;
      // Someone drops the slot: the walsender is terminated first, as an operator would have to.
      await eventually(async () => {
        await db.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot]);
        try {
          await db.query('SELECT pg_drop_replication_slot($1)', [slot]);
          return true;
        } catch {
          return false;
        }
      }, 'dropping the slot');
      // Changes while the slot is gone — deletes included — must not be lost.
      before = new Set((await sourceRows(db)).map((p) => p.id));
      await db.query(`DELETE FROM people WHERE id BETWEEN 100 AND 120`);
      await db.query(`UPDATE people SET version = version + 100, name = 'after the drop' WHERE id BETWEEN 200 AND 230`);
      await db.query(`INSERT INTO people SELECT i, 'late ' || i, 7 FROM generate_series(500, 520) AS i`);
      await eventually(async () => JSON.stringify(await copyRows(dest, 'people_copy2')) === JSON.stringify(await sourceRows(db)), 'the reconciled destination');
      // And the stream carries on afterwards.
      await db.query(`UPDATE people SET version = version + 1000 WHERE id = 500`);
      await eventually(async () => (await copyRows(dest, 'people_copy2')).find((p) => p.id === 500)?.version === 1007, 'a change after the reconcile');
    } finally {
      engine.stop();
    }
    await running;
    expect(runs.map((r) => [r.capture, r.status, r.error?.code])).toEqual([
      ['stream', 'failed', 'OUTFLOW_STREAM_STALE'],
      ['diff', 'succeeded', undefined],
      ['stream', 'succeeded', undefined],
    ]);
    const recorded = await ledger.listRuns({ sync: s.name });
    expect(recorded.some((r) => r.status === 'failed' && /OUTFLOW_STREAM_STALE/.test(r.error ?? ''))).toBe(true);

    // What the reconciling diff wrote, counted by the destination's own trigger: exactly the
    // rows that changed while the stream was gone, once each — not the rows the stream had
    // already delivered (the diff recognises them by the stream's own fingerprints).
    const diff = recorded.find((r) => r.capture === 'diff')!;
    const written = (
      await dest.query<{ id: number; op: string }>(
        `SELECT id, op FROM applied WHERE tbl = 'people_copy2' AND at >= $1 AND at <= $2 ORDER BY id`,
        [diff.startedAt, diff.finishedAt],
      )
    ).rows;
    const deleted = range(100, 120).filter((id) => before.has(id));
    const updated = range(200, 230).filter((id) => before.has(id));
    const inserted = range(500, 520);
    expect(written.map((w) => w.id)).toEqual([...deleted, ...updated, ...inserted]);
    expect(written.filter((w) => w.op === 'DELETE').map((w) => w.id)).toEqual(deleted);
    expect(diff).toMatchObject({ inserted: inserted.length, updated: updated.length, deleted: deleted.length });
  });

  it('two stream syncs on one table of one connection each get every change (each owns its slot)', async () => {
    for (const t of ['people_a', 'people_b']) await dest.query(`CREATE TABLE ${t} (id int PRIMARY KEY, name text, version int)`);
    const { engine } = engineEnv({
      src: { connector: postgres, config: { url, heartbeatSeconds: 1 } },
      dest: { connector: postgres, config: { url: destUrl } },
    });
    try {
      const runs = [engine.run(sync('people-to-a', 'src', 'dest', 'people_a')), engine.run(sync('people-to-b', 'src', 'dest', 'people_b'))];
      await eventually(async () => (await copyRows(dest, 'people_a')).length > 0 && (await copyRows(dest, 'people_b')).length > 0, 'both backfills');
      await db.query(`UPDATE people SET version = version + 100 WHERE id % 3 = 0`);
      await db.query(`INSERT INTO people VALUES (1001, 'only once', 1)`);
      const want = JSON.stringify(await sourceRows(db));
      await eventually(async () => JSON.stringify(await copyRows(dest, 'people_a')) === want, 'sync a to match the source');
      await eventually(async () => JSON.stringify(await copyRows(dest, 'people_b')) === want, 'sync b to match the source');
      engine.stop();
      for (const summary of await Promise.all(runs)) expect(summary.status).toBe('succeeded');
      const slots = (await db.query<{ slot_name: string }>(`SELECT slot_name FROM pg_replication_slots WHERE slot_name ~ '^outflow_people_to_[ab]_people_'`)).rows;
      expect(slots.map((r) => r.slot_name.slice(0, 'outflow_people_to_a'.length)).sort()).toEqual(['outflow_people_to_a', 'outflow_people_to_b']);
    } finally {
      engine.stop();
    }
  });
});
