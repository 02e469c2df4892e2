import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { duckdbStateStore } from '@outflow/state-duckdb';
import { Type, defineConnector, fingerprint, type Operation, type Row } from '../src/index.js';
import { environment, memoryDestination, memorySource, memoryStream, syncConfig, tempDir } from './helpers.js';

const people = (n: number, name = (i: number) => `person ${i}`): Row[] =>
  Array.from({ length: n }, (_, i) => ({ id: i + 1, name: name(i + 1), email: `p${i + 1}@example.com` }));

const fast = { backoff: { baseMs: 1, maxMs: 5 } };

function setup(rows: () => Row[], dest = memoryDestination()) {
  const dir = tempDir();
  const env = environment(dir, { src: memorySource(rows), dst: dest.connector });
  return { dir, env, dest };
}

describe('diff sync', () => {
  it('delivers every row once, then nothing until the model changes, then exactly the change', async () => {
    let rows = people(10);
    const { env, dest } = setup(() => rows);
    const first = await env.engine.run(syncConfig(), fast);
    expect(first).toMatchObject({ status: 'succeeded', inserted: 10, updated: 0, deleted: 0, rejected: 0 });
    expect(dest.records.size).toBe(10);

    const second = await env.engine.run(syncConfig(), fast);
    expect(second).toMatchObject({ status: 'succeeded', inserted: 0, updated: 0, deleted: 0 });
    const callsBefore = dest.calls.length;

    rows = rows.map((r) => (r['id'] === 4 ? { ...r, name: 'renamed' } : r));
    const third = await env.engine.run(syncConfig(), fast);
    expect(third).toMatchObject({ inserted: 0, updated: 1, deleted: 0 });
    expect(dest.calls.slice(callsBefore).flat().map((o) => o.key)).toEqual(['4']);
    expect(dest.records.get('4')!.fields['name']).toBe('renamed');
    await env.close();
  });

  it('sends only mapped fields and the match key, and resends everything as updates when mappings change', async () => {
    const rows = people(3);
    const { env, dest } = setup(() => rows);
    const mapped = syncConfig({ mappings: { full_name: 'name' }, to: { matchKey: { email: 'email' } } });
    await env.engine.run(mapped, fast);
    const op = dest.calls.flat()[0]!;
    expect(op.fields).toEqual({ full_name: 'person 1' });
    expect(op.match).toEqual({ email: 'p1@example.com' });

    const remapped = syncConfig({ mappings: { full_name: 'name', mail: 'email' }, to: { matchKey: { email: 'email' } } });
    const again = await env.engine.run(remapped, fast);
    expect(again).toMatchObject({ inserted: 0, updated: 3 });
    expect(dest.records.get('2')!.fields).toEqual({ full_name: 'person 2', mail: 'p2@example.com' });
    await env.close();
  });

  it('parks a rejected record with its reason, does not resend it unchanged, and resends it when it changes or on retry', async () => {
    let rows = people(5);
    const dest = memoryDestination();
    dest.faults.reject = new Map([['3', { reason: 'email is invalid' }]]);
    const { env } = setup(() => rows, dest);
    const first = await env.engine.run(syncConfig(), fast);
    expect(first).toMatchObject({ status: 'partial', inserted: 4, rejected: 1, parked: 1 });
    const errors = await env.ledger.listRowErrors({ sync: 'people' });
    expect(errors).toMatchObject([{ key: '3', reason: 'email is invalid', retryable: false, attempts: 1 }]);

    const second = await env.engine.run(syncConfig(), fast);
    expect(second).toMatchObject({ status: 'succeeded', inserted: 0, updated: 0, rejected: 0, parked: 1 });

    dest.faults.reject = new Map();
    const retried = await env.engine.run(syncConfig(), { ...fast, unpark: true });
    expect(retried).toMatchObject({ inserted: 1, rejected: 0, parked: 0 });
    expect(dest.records.has('3')).toBe(true);

    dest.faults.reject = new Map([['5', { reason: 'nope' }]]);
    rows = rows.map((r) => (r['id'] === 5 ? { ...r, name: 'five' } : r));
    await env.engine.run(syncConfig(), fast);
    dest.faults.reject = new Map();
    rows = rows.map((r) => (r['id'] === 5 ? { ...r, name: 'FIVE' } : r));
    const changed = await env.engine.run(syncConfig(), fast);
    expect(changed).toMatchObject({ updated: 1, rejected: 0, parked: 0 });
    expect(dest.records.get('5')!.fields['name']).toBe('FIVE');
    await env.close();
  });

  it('isolates the record that makes a whole batch fail by bisection, and lands the rest', async () => {
    const dest = memoryDestination({ maxBatchSize: 8 });
    dest.faults.poison = new Set(['6']);
    const { env } = setup(() => people(16), dest);
    const result = await env.engine.run(syncConfig(), fast);
    expect(result).toMatchObject({ inserted: 15, rejected: 1 });
    expect(dest.records.has('6')).toBe(false);
    const [err] = await env.ledger.listRowErrors({ sync: 'people' });
    expect(err).toMatchObject({ key: '6', reason: expect.stringContaining('400 bad request') });
    await env.close();
  });

  it('retries retryable batch failures and delivers everything', async () => {
    const dest = memoryDestination();
    dest.faults.failCalls = new Map([
      [1, { retryable: true, retryAfterMs: 20 }],
      [2, { retryable: true }],
    ]);
    const { env } = setup(() => people(12), dest);
    const result = await env.engine.run(syncConfig(), fast);
    expect(result).toMatchObject({ status: 'succeeded', inserted: 12, rejected: 0 });
    expect(dest.records.size).toBe(12);
    await env.close();
  });

  it('fails the run when the destination stays down, keeping what was acknowledged, and catches up next run', async () => {
    const dest = memoryDestination({ maxBatchSize: 2, concurrency: 1 });
    dest.faults.failCalls = new Map(Array.from({ length: 50 }, (_, i) => [i + 3, { retryable: true }] as const));
    const { env } = setup(() => people(10), dest);
    const failed = await env.engine.run(syncConfig({ delivery: { maxAttempts: 3 } }), fast);
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('OUTFLOW_DESTINATION');
    expect(failed.inserted).toBe(4);
    dest.faults.failCalls = new Map();
    const next = await env.engine.run(syncConfig(), fast);
    expect(next).toMatchObject({ status: 'succeeded', inserted: 6 });
    expect(dest.records.size).toBe(10);
    await env.close();
  });

  it('mirror deletes only keys Outflow delivered; upsert with deletes ignore leaves records alone', async () => {
    let rows = people(6);
    const { env, dest } = setup(() => rows);
    dest.records.set('outsider', { id: 'x', fields: {}, created: 1 });
    await env.engine.run(syncConfig({ to: { mode: 'mirror' } }), fast);
    rows = rows.filter((r) => r['id'] !== 2);
    const ignored = await env.engine.run(syncConfig({ to: { mode: 'upsert', deletes: 'ignore' } }), fast);
    expect(ignored).toMatchObject({ deleted: 0 });
    expect(dest.records.has('2')).toBe(true);

    rows = rows.filter((r) => r['id'] !== 3);
    const mirrored = await env.engine.run(syncConfig({ to: { mode: 'mirror' } }), fast);
    expect(mirrored).toMatchObject({ deleted: 1 });
    expect(dest.records.has('3')).toBe(false);
    expect(dest.records.has('outsider')).toBe(true);
    // The ignored delete of key 2 was forgotten, so it is not deleted later either.
    expect(dest.records.has('2')).toBe(true);
    await env.close();
  });

  it('deletes: clear nulls the mapped fields of a row that left the model', async () => {
    let rows = people(3);
    const { env, dest } = setup(() => rows);
    const cfg = syncConfig({ mappings: { name: 'name' }, to: { deletes: 'clear' } });
    await env.engine.run(cfg, fast);
    rows = rows.slice(1);
    const r = await env.engine.run(cfg, fast);
    expect(r.deleted).toBe(1);
    expect(dest.records.get('1')!.fields).toEqual({ name: null });
    await env.close();
  });

  it('insert mode creates new rows and skips updates', async () => {
    let rows = people(3);
    const { env, dest } = setup(() => rows);
    await env.engine.run(syncConfig({ to: { mode: 'insert' } }), fast);
    rows = rows.map((r) => ({ ...r, name: 'changed' }));
    const r = await env.engine.run(syncConfig({ to: { mode: 'insert' } }), fast);
    expect(r).toMatchObject({ inserted: 0, updated: 0, skipped: 3 });
    expect(dest.records.get('1')!.fields['name']).toBe('person 1');
    await env.close();
  });

  it('refuses a model with duplicate primary keys before sending anything', async () => {
    const rows = [...people(3), { id: 2, name: 'dup', email: 'd@x' }];
    const { env, dest } = setup(() => rows);
    const r = await env.engine.run(syncConfig(), fast);
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'OUTFLOW_MODEL_KEY', message: expect.stringContaining('duplicated: 2') });
    expect(dest.calls).toHaveLength(0);
    await env.close();
  });

  it('names a mapped column the model lacks', async () => {
    const { env, dest } = setup(() => people(2));
    const r = await env.engine.run(syncConfig({ mappings: { phone: 'PHONE' } }), fast);
    expect(r.error).toMatchObject({ code: 'OUTFLOW_MAPPING', message: expect.stringContaining('phone ← PHONE') });
    expect(dest.calls).toHaveLength(0);
    await env.close();
  });

  it('refuses a mode the destination cannot do', async () => {
    const dest = memoryDestination({ operations: ['insert'] });
    const { env } = setup(() => people(2), dest);
    expect(await env.engine.run(syncConfig({ to: { mode: 'mirror' } }), fast)).toMatchObject({ status: 'failed', error: { code: 'OUTFLOW_MODE_UNSUPPORTED' } });
    await env.close();
  });

  it('never has two operations for one key in flight, and keeps to the concurrency', async () => {
    const dest = memoryDestination({ maxBatchSize: 3, concurrency: 3 });
    dest.faults.latencyMs = 5;
    const { env } = setup(() => people(60), dest);
    await env.engine.run(syncConfig(), fast);
    expect(dest.overlaps).toEqual([]);
    expect(dest.maxConcurrent).toBeLessThanOrEqual(3);
    expect(dest.maxConcurrent).toBeGreaterThan(1);
    await env.close();
  });

  it('plan lists the changes without sending or writing anything', async () => {
    let rows = people(4);
    const { env, dest, dir } = setup(() => rows);
    const before = readdirSync(dir).sort();
    const plan = await env.engine.plan(syncConfig());
    expect(plan.plan?.counts.upsert).toBe(4);
    expect(plan.inserted).toBe(4);
    expect(plan.plan?.changes[0]).toMatchObject({ kind: 'upsert', key: '1', fields: { name: 'person 1' } });
    expect(dest.calls).toHaveLength(0);
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(existsSync(`${dir}/diff`)).toBe(false);

    await env.engine.run(syncConfig(), fast);
    rows = rows.map((r) => (r['id'] === 1 ? { ...r, name: 'x' } : r));
    const plan2 = await env.engine.plan(syncConfig());
    expect(plan2).toMatchObject({ inserted: 0, updated: 1 });
    expect(dest.records.get('1')!.fields['name']).toBe('person 1');
    await env.close();
  });
});

describe('stream sync', () => {
  it('delivers changes in order per key and commits a checkpoint only after its changes are acknowledged', async () => {
    const dir = tempDir();
    const stream = memoryStream();
    const dest = memoryDestination({ maxBatchSize: 2, concurrency: 2 });
    dest.faults.latencyMs = 2;
    const env = environment(dir, { src: stream.connector, dst: dest.connector });
    const cfg = syncConfig({ capture: 'stream' });
    const running = env.engine.run(cfg, fast);
    for (let b = 0; b < 5; b++) {
      stream.emit({
        checkpoint: String(b + 1),
        changes: [
          { op: b === 0 ? 'insert' : 'update', key: 'a', after: { id: 'a', n: b } },
          { op: 'insert', key: `k${b}`, after: { id: `k${b}`, n: b } },
        ],
      });
    }
    await expect.poll(() => stream.commits.at(-1), { timeout: 5000 }).toBe('5');
    env.engine.stop();
    const result = await running;
    expect(result.status).toBe('succeeded');
    expect(dest.records.get('a')!.fields['n']).toBe(4);
    const aOps = dest.calls.flat().filter((o) => o.key === 'a').map((o) => o.fields!['n']);
    expect(aOps).toEqual([0, 1, 2, 3, 4]);
    expect(stream.commits).toEqual([...stream.commits].sort());
    expect(await env.ledger.getCheckpoint('people')).toBe('5');
    await env.close();
  });

  /**
   * Runs a stream sync from `dir` until its checkpoint reads `until`, then stops it, as a
   * process would; `from` first sets the checkpoint it resumes from (as if the one saved
   * after it had been lost in a crash).
   */
  async function streamUntil(dir: string, connections: Parameters<typeof environment>[1], until: string, from?: string) {
    const env = environment(dir, connections);
    if (from !== undefined) await env.ledger.setCheckpoint('people', from);
    const running = env.engine.run(syncConfig({ capture: 'stream', to: { deletes: 'delete' } }), fast);
    await expect.poll(() => env.ledger.getCheckpoint('people'), { timeout: 5000 }).toBe(until);
    env.engine.stop();
    await running;
    await env.close();
  }

  it('does not apply again the changes it replays after a restart, so a record deleted later in the replay is not created again', async () => {
    const dir = tempDir();
    const stream = memoryStream();
    const dest = memoryDestination({ maxBatchSize: 2 });
    const connections = { src: stream.connector, dst: dest.connector };
    stream.emit({ checkpoint: '1', changes: [{ op: 'insert', key: 'b', after: { id: 'b', n: 0 }, position: '01' }] });
    stream.emit({
      checkpoint: '2',
      changes: [
        { op: 'insert', key: 'a', after: { id: 'a', n: 0 }, position: '02' },
        { op: 'update', key: 'a', after: { id: 'a', n: 1 }, position: '03' },
        { op: 'update', key: 'b', after: { id: 'b', n: 1 }, position: '04' },
      ],
    });
    stream.emit({ checkpoint: '3', changes: [{ op: 'delete', key: 'a', position: '05' }] });
    await streamUntil(dir, connections, '3');
    expect([...dest.records.keys()]).toEqual(['b']);
    // A crash after these changes were settled and before the checkpoint was saved: the
    // stream resumes from checkpoint 1 and replays batches 2 and 3.
    const writes = dest.calls.flat().length;
    stream.emit({ checkpoint: '4', changes: [{ op: 'update', key: 'b', after: { id: 'b', n: 2 }, position: '06' }] });
    await streamUntil(dir, connections, '4', '1');
    expect(dest.calls.flat().slice(writes).map((o) => `${o.kind} ${o.key} ${o.fields?.['n'] ?? ''}`.trim())).toEqual(['upsert b 2']);
    expect(dest.creations.get('a')).toBe(1);
    expect(dest.records.get('b')!.fields['n']).toBe(2);
  });

  it('skips, without positions, a replayed update of a record deleted since, and sends no delete for a record it never wrote', async () => {
    const dir = tempDir();
    const stream = memoryStream();
    const dest = memoryDestination();
    const connections = { src: stream.connector, dst: dest.connector };
    stream.emit({ checkpoint: '1', changes: [{ op: 'insert', key: 'a', after: { id: 'a', n: 0 } }] });
    stream.emit({ checkpoint: '2', changes: [{ op: 'update', key: 'a', after: { id: 'a', n: 1 } }] });
    stream.emit({ checkpoint: '3', changes: [{ op: 'delete', key: 'a' }, { op: 'delete', key: 'never' }] });
    await streamUntil(dir, connections, '3');
    expect(dest.calls.flat().map((o) => `${o.kind} ${o.key}`)).toEqual(['upsert a', 'upsert a', 'delete a']);
    stream.emit({ checkpoint: '4', changes: [{ op: 'insert', key: 'a', after: { id: 'a', n: 5 } }, { op: 'update', key: 'a', after: { id: 'a', n: 6 } }] });
    await streamUntil(dir, connections, '4', '1');
    // The replayed update and deletes are skipped; the row inserted again is delivered.
    expect(dest.calls.flat().slice(3).map((o) => `${o.kind} ${o.key} ${o.fields?.['n'] ?? ''}`.trim())).toEqual(['upsert a 5', 'upsert a 6']);
    expect(dest.creations.get('a')).toBe(2);
  });
});

/**
 * A destination that cannot dedupe, like a chat channel: every write posts a message, a
 * re-send posts it again. `lostAnswerOnCall` applies that call and then fails before
 * answering; with `lookup`, it finds its messages by idempotency key.
 */
function messageDestination(options: { lookup?: boolean; lostAnswerOnCall?: number } = {}) {
  const messages: { key: string; idempotencyKey: string; text: string }[] = [];
  let calls = 0;
  const connector = defineConnector({
    name: 'messages',
    version: '1.0.0',
    coreVersion: '^1.0.0',
    config: Type.Object({}),
    destination: {
      async check() {},
      async discover() {
        return { objects: [] };
      },
      capabilities: () => ({ operations: ['insert'], maxBatchSize: 1, rateLimits: [], concurrency: 1, idempotency: 'none' }),
      async write(_ctx, _object, ops) {
        const n = ++calls;
        for (const op of ops) messages.push({ key: op.key, idempotencyKey: op.idempotencyKey, text: String(op.fields?.['name']) });
        if (n === options.lostAnswerOnCall) throw new Error('socket hang up');
        return ops.map(() => ({ ok: true as const }));
      },
      ...(options.lookup
        ? {
            async lookup(_ctx: unknown, _object: string, ops: Operation[]) {
              return ops.map((op) => (messages.some((m) => m.idempotencyKey === op.idempotencyKey) ? { state: 'applied' as const } : { state: 'absent' as const }));
            },
          }
        : {}),
    },
  });
  const sent = (key: string) => messages.filter((m) => m.key === key).length;
  return { connector, messages, sent };
}

describe('a destination that cannot dedupe (idempotency none)', () => {
  const rows = () => [
    { id: 'a', name: 'A' },
    { id: 'b', name: 'B' },
    { id: 'c', name: 'C' },
  ];
  const insertSync = () => syncConfig({ to: { mode: 'insert' } });

  it('parks a write whose answer was lost as "outcome unknown" instead of sending it twice; retry sends it', async () => {
    const dest = messageDestination({ lostAnswerOnCall: 2 });
    const env = environment(tempDir(), { src: memorySource(rows), dst: dest.connector });
    const first = await env.engine.run(insertSync(), fast);
    expect(first).toMatchObject({ status: 'partial', inserted: 2, rejected: 1 });
    expect(['a', 'b', 'c'].map(dest.sent)).toEqual([1, 1, 1]);
    const [parked] = await env.ledger.listRowErrors({ sync: 'people' });
    expect(parked).toMatchObject({ key: 'b', retryable: false });
    expect(parked!.reason).toMatch(/^outcome unknown: .*outflow retry/);

    expect(await env.engine.run(insertSync(), fast)).toMatchObject({ inserted: 0, rejected: 0 });
    expect(dest.sent('b')).toBe(1);

    // A person checked the channel and decided: send it again.
    expect(await env.engine.run(insertSync(), { ...fast, unpark: ['b'] })).toMatchObject({ status: 'succeeded', inserted: 1 });
    expect(dest.sent('b')).toBe(2);
    expect(await env.ledger.listRowErrors({ sync: 'people' })).toEqual([]);
    await env.close();
  });

  it('asks the destination when it can look writes up: the applied one is recorded as delivered, not sent again', async () => {
    const dest = messageDestination({ lostAnswerOnCall: 2, lookup: true });
    const env = environment(tempDir(), { src: memorySource(rows), dst: dest.connector });
    expect(await env.engine.run(insertSync(), fast)).toMatchObject({ status: 'succeeded', inserted: 3, rejected: 0 });
    expect(['a', 'b', 'c'].map(dest.sent)).toEqual([1, 1, 1]);
    expect(await env.engine.run(insertSync(), fast)).toMatchObject({ inserted: 0 });
    expect(dest.messages).toHaveLength(3);
    await env.close();
  });

  for (const lookup of [false, true]) {
    it(`after a crash between logging a write and recording its answer, ${lookup ? 'looks it up' : 'parks it'} rather than re-sending blindly`, async () => {
      const dir = tempDir();
      // The crashed run logged "b is being sent" and died: the delivered state holds the
      // intent and nothing else. Whether the channel got it is unknown.
      const planted = await duckdbStateStore({ dir }).open({ sync: 'people', columns: null, readOnly: false });
      await planted.apply([{ key: 'b', kind: 'sent', fp: fingerprint({ id: 'b', name: 'B' }, undefined) }]);
      await planted.close();

      const dest = messageDestination({ lookup });
      const env = environment(dir, { src: memorySource(rows), dst: dest.connector });
      const run = await env.engine.run(insertSync(), fast);
      if (lookup) {
        // The channel has no message with that idempotency key: it never arrived, so it is sent.
        expect(run).toMatchObject({ status: 'succeeded', inserted: 3 });
        expect(dest.sent('b')).toBe(1);
      } else {
        expect(run).toMatchObject({ status: 'partial', inserted: 2, rejected: 1 });
        expect(dest.sent('b')).toBe(0);
        expect((await env.ledger.listRowErrors({ sync: 'people' }))[0]!.reason).toMatch(/^outcome unknown/);
      }
      await env.close();
    });
  }
});
