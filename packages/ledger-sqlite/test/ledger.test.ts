import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OutflowError, clearSecrets, registerSecret } from '@outflow/core';
import { openSqliteLedger, type SqliteLedger } from '../src/index.js';

const zero = { inserted: 0, updated: 0, deleted: 0, rejected: 0, skipped: 0 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let dir: string;
const open: SqliteLedger[] = [];
function ledger(): SqliteLedger {
  const l = openSqliteLedger(join(dir, '.outflow'));
  open.push(l);
  return l;
}

async function ledgerFailure(promise: Promise<unknown> | (() => unknown)): Promise<OutflowError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    expect(err).toBeInstanceOf(OutflowError);
    expect((err as OutflowError).code).toBe('OUTFLOW_LEDGER');
    return err as OutflowError;
  }
  throw new Error('expected an OUTFLOW_LEDGER error');
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'outflow-ledger-'));
});

afterEach(async () => {
  for (const l of open.splice(0)) await l.close();
  clearSecrets();
  rmSync(dir, { recursive: true, force: true });
});

describe('SQLite ledger: runs', () => {
  it('creates the folder and records a run from start to finish', async () => {
    const l = ledger();
    expect(l.file).toBe(join(dir, '.outflow', 'ledger.db'));
    expect(existsSync(l.file)).toBe(true);

    const id = await l.startRun('contacts', 'diff');
    await l.updateRun(id, { ...zero, inserted: 3 });
    const [running] = await l.listRuns();
    expect(running).toMatchObject({ id, sync: 'contacts', capture: 'diff', status: 'running', inserted: 3 });
    expect(running.finishedAt).toBeUndefined();
    expect(new Date(running.startedAt).toISOString()).toBe(running.startedAt);

    await l.finishRun(id, 'partial', { inserted: 5, updated: 4, deleted: 3, rejected: 2, skipped: 1 }, 'two rejected');
    const [done] = await l.listRuns();
    expect(done).toMatchObject({
      id,
      status: 'partial',
      inserted: 5,
      updated: 4,
      deleted: 3,
      rejected: 2,
      skipped: 1,
      error: 'two rejected',
    });
    expect(done.finishedAt! >= done.startedAt).toBe(true);
    expect(done.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('lists runs newest first, by sync, up to a limit', async () => {
    const l = ledger();
    const a1 = await l.startRun('a', 'diff');
    const b1 = await l.startRun('b', 'stream');
    const a2 = await l.startRun('a', 'diff');
    expect((await l.listRuns()).map((r) => r.id)).toEqual([a2, b1, a1]);
    expect((await l.listRuns({ sync: 'a' })).map((r) => r.id)).toEqual([a2, a1]);
    expect((await l.listRuns({ limit: 2 })).map((r) => r.id)).toEqual([a2, b1]);
    expect((await l.listRuns({ sync: 'b', limit: 5 })).map((r) => [r.id, r.capture])).toEqual([[b1, 'stream']]);
    expect(await l.listRuns({ sync: 'none' })).toEqual([]);
  });

  it('refuses to update or finish a run that does not exist', async () => {
    const l = ledger();
    const err = await ledgerFailure(l.finishRun(42, 'succeeded', zero));
    expect(err.message).toContain(l.file);
    expect(err.message).toContain('run 42');
    await ledgerFailure(l.updateRun(42, zero));
  });

  it('marks runs left running by a dead process as aborted, and only those', async () => {
    const l = ledger();
    const done = await l.startRun('s', 'diff');
    await l.finishRun(done, 'succeeded', zero);
    const dead1 = await l.startRun('s', 'diff');
    const dead2 = await l.startRun('s', 'diff');
    const other = await l.startRun('t', 'diff');

    expect(await l.abandonRunningRuns('s')).toBe(2);
    const byId = new Map((await l.listRuns()).map((r) => [r.id, r]));
    for (const id of [dead1, dead2]) {
      expect(byId.get(id)).toMatchObject({ status: 'aborted', error: expect.stringMatching(/stopped before it finished/) });
      expect(byId.get(id)!.finishedAt).toBeDefined();
    }
    expect(byId.get(done)!.status).toBe('succeeded');
    expect(byId.get(other)!.status).toBe('running');
    expect(await l.abandonRunningRuns('s')).toBe(0);
  });

  it('shows a run in progress to a second connection to the same file', async () => {
    const writer = ledger();
    const reader = ledger();
    const id = await writer.startRun('contacts', 'diff');
    await writer.updateRun(id, { ...zero, updated: 7 });
    expect(await reader.listRuns()).toMatchObject([{ id, status: 'running', updated: 7 }]);
  });
});

describe('SQLite ledger: syncs and checkpoints', () => {
  it('returns the previous configuration hash only when it changed', async () => {
    const l = ledger();
    expect(await l.registerSync('contacts', 'h1')).toEqual({});
    expect(await l.registerSync('contacts', 'h1')).toEqual({});
    expect(await l.registerSync('contacts', 'h2')).toEqual({ previousHash: 'h1' });
    expect(await l.registerSync('contacts', 'h2')).toEqual({});
    expect(await l.registerSync('deals', 'h1')).toEqual({});
  });

  it('sets, replaces and clears checkpoints, which survive reopening', async () => {
    const first = ledger();
    expect(await first.getCheckpoint('s')).toBeUndefined();
    await first.setCheckpoint('s', 'lsn:1');
    await first.setCheckpoint('s', 'lsn:2');
    await first.setCheckpoint('t', 'lsn:9');
    await first.registerSync('s', 'h1');
    const run = await first.startRun('s', 'stream');
    await first.finishRun(run, 'succeeded', { ...zero, inserted: 2 });
    await first.close();

    const second = ledger();
    expect(await second.getCheckpoint('s')).toBe('lsn:2');
    expect(await second.registerSync('s', 'h2')).toEqual({ previousHash: 'h1' });
    expect(await second.listRuns()).toMatchObject([{ id: run, status: 'succeeded', inserted: 2 }]);
    await second.clearCheckpoint('s');
    expect(await second.getCheckpoint('s')).toBeUndefined();
    expect(await second.getCheckpoint('t')).toBe('lsn:9');
  });
});

describe('SQLite ledger: row errors', () => {
  it('counts attempts, keeps firstSeen and moves lastSeen', async () => {
    const l = ledger();
    await l.recordRowError('s', { key: 'k1', op: 'update', reason: 'bad email', retryable: false });
    await sleep(5);
    await l.recordRowError('s', { key: 'k1', op: 'insert', reason: 'still bad', retryable: true });
    const [e] = await l.listRowErrors({ sync: 's' });
    expect(e).toMatchObject({ sync: 's', key: 'k1', op: 'insert', reason: 'still bad', retryable: true, attempts: 2 });
    expect(e.lastSeen > e.firstSeen).toBe(true);
    await l.recordRowError('s', { key: 'k1', op: 'insert', reason: 'again', retryable: false });
    const [again] = await l.listRowErrors();
    expect(again).toMatchObject({ attempts: 3, firstSeen: e.firstSeen, retryable: false });
  });

  it('lists and counts per sync, and resolves thousands of keys at once', async () => {
    const l = ledger();
    for (let i = 0; i < 2500; i++) {
      await l.recordRowError('s', { key: `k${i}`, op: 'insert', reason: 'rejected', retryable: false });
    }
    await l.recordRowError('t', { key: 'k1', op: 'delete', reason: 'gone', retryable: true });
    expect(await l.countRowErrors('s')).toBe(2500);
    expect(await l.countRowErrors('t')).toBe(1);
    expect(await l.listRowErrors({ sync: 's', limit: 10 })).toHaveLength(10);
    expect(await l.listRowErrors()).toHaveLength(2501);

    const resolved = Array.from({ length: 2400 }, (_, i) => `k${i}`);
    await l.resolveRowErrors('s', [...resolved, 'never-failed']);
    expect(await l.countRowErrors('s')).toBe(100);
    expect((await l.listRowErrors({ sync: 's' })).map((e) => e.key).sort()).toEqual(
      Array.from({ length: 100 }, (_, i) => `k${2400 + i}`).sort(),
    );
    // Same key, other sync: untouched.
    expect(await l.countRowErrors('t')).toBe(1);
    await l.resolveRowErrors('s', []);
    expect(await l.countRowErrors('s')).toBe(100);
  });

  it('parks a retryable error once its attempts reach maxAttempts; a new version of the row starts again', async () => {
    const l = ledger();
    const fail = (version: string | null, retryable = true) =>
      l.recordRowError('s', { key: 'k', op: 'upsert', reason: 'locked', retryable, version, maxAttempts: 3 });
    expect(await fail('v1')).toMatchObject({ key: 'k', attempts: 1, parked: false });
    expect(await fail('v1')).toMatchObject({ attempts: 2, parked: false });
    expect(await fail('v1')).toMatchObject({ attempts: 3, parked: true });
    expect(await l.countRowErrors('s', { parked: true })).toBe(1);
    expect(await l.countRowErrors('s', { parked: false })).toBe(0);
    expect(await fail('v2')).toMatchObject({ attempts: 1, parked: false });
    expect(await fail(null)).toMatchObject({ attempts: 1, parked: false });
    expect(await fail(null)).toMatchObject({ attempts: 2, parked: false });
    // Refused for good: parked at once, whatever the attempts.
    expect(await fail(null, false)).toMatchObject({ attempts: 3, parked: true });
    expect(await l.recordRowError('s', { key: 'other', op: 'insert', reason: 'bad', retryable: false })).toMatchObject({ attempts: 1, parked: true });
    // Without maxAttempts a retryable error is never parked.
    const again = await l.recordRowError('s', { key: 'free', op: 'insert', reason: 'busy', retryable: true });
    expect(again).toMatchObject({ attempts: 1, parked: false });
    expect((await l.listRowErrors({ sync: 's' })).map((e) => [e.key, e.parked]).sort()).toEqual([
      ['free', false],
      ['k', true],
      ['other', true],
    ]);
  });

  it('upgrades a ledger of schema version 1: its row errors say whether they are parked', async () => {
    const l = ledger();
    await l.close();
    const raw = new Database(l.file);
    // Back to version 1, as an older Outflow left it.
    raw.exec(`DROP TABLE row_errors;
      CREATE TABLE row_errors (sync TEXT NOT NULL, key TEXT NOT NULL, op TEXT NOT NULL, reason TEXT NOT NULL,
        retryable INTEGER NOT NULL CHECK (retryable IN (0, 1)), attempts INTEGER NOT NULL, first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL, PRIMARY KEY (sync, key));
      DELETE FROM schema_version WHERE version > 1;
      INSERT INTO row_errors VALUES ('s', 'refused', 'insert', 'bad email', 0, 2, 'a', 'a'), ('s', 'busy', 'update', 'locked', 1, 4, 'a', 'a');`);
    raw.close();
    const upgraded = ledger();
    const errors = await upgraded.listRowErrors({ sync: 's' });
    expect(errors.map((e) => [e.key, e.attempts, e.parked]).sort()).toEqual([
      ['busy', 4, false],
      ['refused', 2, true],
    ]);
    expect(await upgraded.recordRowError('s', { key: 'busy', op: 'update', reason: 'locked', retryable: true, maxAttempts: 5 })).toMatchObject({
      attempts: 5,
      parked: true,
    });
  });
});

describe('SQLite ledger: key-value store', () => {
  it('keeps each scope separate', async () => {
    const l = ledger();
    const hubspot = l.kv('hubspot');
    const webhook = l.kv('webhook');
    await hubspot.set('cursor', 'a');
    await hubspot.set('cursor', 'b');
    await webhook.set('cursor', 'z');
    expect(await hubspot.get('cursor')).toBe('b');
    expect(await webhook.get('cursor')).toBe('z');
    await hubspot.delete('cursor');
    expect(await hubspot.get('cursor')).toBeUndefined();
    expect(await webhook.get('cursor')).toBe('z');
    expect(await ledger().kv('webhook').get('cursor')).toBe('z');
  });
});

describe('SQLite ledger: leases', () => {
  it('grants, denies, renews and releases', async () => {
    const a = ledger();
    const b = ledger();
    expect(await a.acquireLease('s', 'runner-a', 60_000)).toBe(true);
    expect(await b.acquireLease('s', 'runner-b', 60_000)).toBe(false);
    expect(await a.acquireLease('s', 'runner-a', 60_000)).toBe(true);
    expect(await b.acquireLease('other', 'runner-b', 60_000)).toBe(true);

    await b.releaseLease('s', 'runner-b');
    expect(await b.acquireLease('s', 'runner-b', 60_000)).toBe(false);
    await a.releaseLease('s', 'runner-a');
    expect(await b.acquireLease('s', 'runner-b', 60_000)).toBe(true);
    expect(await a.acquireLease('s', 'runner-a', 60_000)).toBe(false);
  });

  it('lets another owner take over an expired lease', async () => {
    const a = ledger();
    const b = ledger();
    expect(await a.acquireLease('s', 'runner-a', 1)).toBe(true);
    await sleep(20);
    expect(await b.acquireLease('s', 'runner-b', 60_000)).toBe(true);
    expect(await a.acquireLease('s', 'runner-a', 60_000)).toBe(false);
  });
});

describe('SQLite ledger: secrets and failures', () => {
  it('never writes a registered secret into what people read', async () => {
    const secret = 'sk_live_9f8e7d6c5b4a';
    registerSecret(secret);
    const l = ledger();
    const id = await l.startRun('s', 'diff');
    await l.finishRun(id, 'failed', zero, `401 for token ${secret}`);
    await l.recordRowError('s', { key: 'k1', op: 'insert', reason: `echoed ${JSON.stringify({ auth: secret })} back`, retryable: false });

    expect((await l.listRuns())[0].error).toBe('401 for token [REDACTED]');
    expect((await l.listRowErrors())[0].reason).toBe('echoed {"auth":"[REDACTED]"} back');
    // While open, the writes sit in the -wal file; after close they are in ledger.db.
    const whileOpen = Buffer.concat([l.file, `${l.file}-wal`].filter(existsSync).map((f) => readFileSync(f)));
    expect(whileOpen.includes('[REDACTED]')).toBe(true);
    expect(whileOpen.includes(secret)).toBe(false);
    await l.close();
    const db = readFileSync(l.file);
    expect(db.includes('[REDACTED]')).toBe(true);
    expect(db.includes(secret)).toBe(false);
  });

  it('keeps checkpoints and key-value entries exactly as written, even when they contain a secret', async () => {
    // A text key during a backfill may happen to hold a secret's text: resuming from a
    // masked checkpoint would resume from the wrong place.
    const secret = 'sk_live_9f8e7d6c5b4a';
    registerSecret(secret);
    const l = ledger();
    await l.setCheckpoint('s', `{"after":"${secret}"}`);
    await l.kv('conn').set('cursor', `page-${secret}`);
    await l.close();
    const again = ledger();
    expect(await again.getCheckpoint('s')).toBe(`{"after":"${secret}"}`);
    expect(await again.kv('conn').get('cursor')).toBe(`page-${secret}`);
  });

  it('creates its folder and files readable by the owner only', async () => {
    const l = ledger();
    await l.setCheckpoint('s', 'x');
    expect(statSync(dirname(l.file)).mode & 0o777).toBe(0o700);
    for (const f of [l.file, `${l.file}-wal`, `${l.file}-shm`].filter(existsSync)) expect(statSync(f).mode & 0o077).toBe(0);
    await l.close();
  });

  it('names the path when the ledger folder is a file', async () => {
    const path = join(dir, 'not-a-folder');
    writeFileSync(path, 'x');
    const err = await ledgerFailure(() => openSqliteLedger(path));
    expect(err.message).toContain(path);
  });

  it('refuses a ledger written by a newer Outflow', async () => {
    const l = ledger();
    await l.close();
    const raw = new Database(l.file);
    raw.prepare('INSERT INTO schema_version (version) VALUES (99)').run();
    raw.close();
    const err = await ledgerFailure(() => ledger());
    expect(err.message).toContain(l.file);
    expect(err.message).toMatch(/version 99/);
  });

  it('fails with OUTFLOW_LEDGER after close', async () => {
    const l = ledger();
    await l.close();
    await l.close();
    const err = await ledgerFailure(l.listRuns());
    expect(err.message).toContain(l.file);
  });
});
