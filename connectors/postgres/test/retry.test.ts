import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from '@outflow/connector-postgres';
import webhook from '@outflow/connector-webhook';
import { LOG_FILE, start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import type { SyncConfig } from '@outflow/core';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import { createTestEngine } from '@outflow/testing';
import { client, createDatabase, eventually } from './helpers.js';

const sync: SyncConfig = {
  name: 'people-retry',
  from: { connection: 'src', table: 'people', primaryKey: 'id' },
  capture: 'stream',
  to: { connection: 'hook', object: 'people', mode: 'upsert', deletes: 'delete' },
};

let url: string;
let db: pg.Client;
let emulator: WebhookEmulator;
let dataDir: string;

beforeAll(async () => {
  url = await createDatabase('retry_src');
  db = await client(url);
  await db.query('CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, version int NOT NULL)');
  await db.query(`INSERT INTO people SELECT i, 'person ' || i, 0 FROM generate_series(1, 20) AS i`);
  dataDir = mkdtempSync(join(tmpdir(), 'outflow-retry-hook-'));
  emulator = await start({ dataDir });
});

afterAll(async () => {
  await db?.end();
  await emulator?.stop();
});

/** The engine as the runner sets it up, over one state folder that outlives each engine (each process). */
function engineAt(dir: string) {
  return createTestEngine({
    connections: {
      src: { connector: postgres, config: { url, heartbeatSeconds: 1 } },
      hook: { connector: webhook, config: { ...emulator.config, requestsPerSecond: 1000 } },
    },
    dir,
    ledger: openSqliteLedger,
    stateStore: (d) => duckdbStateStore({ dir: d }),
  });
}

const record = (id: number) => emulator.records('people').find((r) => r.key === String(id));

/** The records the receiver wrote, in order (its JSON-lines log). */
function puts(): { key: string; fields: Record<string, unknown> }[] {
  return readFileSync(join(dataDir, LOG_FILE), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { t: string; record?: { key: string; fields: Record<string, unknown> } })
    .filter((e) => e.t === 'put')
    .map((e) => e.record!);
}

describe('outflow retry of a stream sync', () => {
  it("sends the parked rows again as the model has them now (a delete for a row that left it); a plain run does not", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outflow-retry-state-'));

    // 1. The backfill lands; then the receiver refuses keys 7 and 8 for a while: the update of
    //    7 and the delete of 8 are parked, and the stream moves on.
    let e = engineAt(dir);
    let running = e.engine.run(sync);
    await eventually(() => emulator.records('people').length === 20, 'the backfill');
    emulator.setFaults({ rejectKeys: ['7', '8'] });
    await db.query(`UPDATE people SET name = 'seven v1', version = 1 WHERE id = 7`);
    await db.query(`DELETE FROM people WHERE id = 8`);
    await eventually(async () => (await e.ledger.listRowErrors({ sync: sync.name })).length === 2, 'both rows parked');
    expect(await e.ledger.listRowErrors({ sync: sync.name })).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: '7', op: 'upsert', parked: true }),
        expect.objectContaining({ key: '8', op: 'delete', parked: true }),
      ]),
    );
    e.engine.stop();
    expect(await running).toMatchObject({ status: 'partial', rejected: 2 });
    await e.close();
    emulator.setFaults({});

    // 2. A plain run: the stream has nothing new for 7 and 8, so they stay as they were.
    e = engineAt(dir);
    running = e.engine.run(sync);
    await db.query(`UPDATE people SET version = 5 WHERE id = 1`);
    await eventually(() => record(1)?.fields['version'] === 5, 'a later change');
    expect(record(7)!.fields).toMatchObject({ name: 'person 7', version: 0 });
    expect(record(8)).toBeDefined();
    e.engine.stop();
    await running;
    await e.close();

    // 3. Row 7 changes again while nothing runs; then `outflow retry`.
    await db.query(`UPDATE people SET name = 'seven v2', version = 2 WHERE id = 7`);
    const before = puts().length;
    e = engineAt(dir);
    running = e.engine.run(sync, { unpark: true });
    await eventually(() => record(7)?.fields['version'] === 2 && record(8) === undefined, 'the retried rows');
    await eventually(async () => (await e.ledger.listRowErrors({ sync: sync.name })).length === 0, 'the row errors resolved');
    e.engine.stop();
    const retried = await running;
    expect(retried).toMatchObject({ status: 'succeeded', rejected: 0 });
    expect(retried.deleted).toBeGreaterThanOrEqual(1);
    // Every write of row 7 since the retry carries the model's current row, never the parked v1.
    const seven = puts().slice(before).filter((p) => p.key === '7');
    expect(seven.length).toBeGreaterThanOrEqual(1);
    for (const p of seven) expect(p.fields).toMatchObject({ name: 'seven v2', version: 2 });
    await e.close();
  });
});
