import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OutflowError, clearSecrets, registerSecret } from '@outflow/core';
import { ledgerAcceptance } from '@outflow/testing';
import { openSqliteLedger, type SqliteLedger } from '../src/index.js';

const zero = { inserted: 0, updated: 0, deleted: 0, rejected: 0, skipped: 0 };

const suiteDir = mkdtempSync(join(tmpdir(), 'outflow-ledger-suite-'));
afterAll(() => rmSync(suiteDir, { recursive: true, force: true }));

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

// The contract's semantics, several instances over one file standing for several processes.
ledgerAcceptance({
  name: 'SQLite',
  open: (store) => openSqliteLedger(join(suiteDir, store)),
});

describe('SQLite ledger: its file', () => {
  it('creates the folder and the file, and shows a run in progress to a second connection', async () => {
    const writer = ledger();
    expect(writer.file).toBe(join(dir, '.outflow', 'ledger.db'));
    expect(existsSync(writer.file)).toBe(true);
    const reader = ledger();
    const id = await writer.startRun('contacts', 'diff');
    await writer.updateRun(id, { ...zero, updated: 7 });
    expect(await reader.listRuns()).toMatchObject([{ id, status: 'running', updated: 7 }]);
  });

  it('names the file and the run when a run does not exist', async () => {
    const l = ledger();
    const err = await ledgerFailure(l.finishRun(42, 'succeeded', zero));
    expect(err.message).toContain(l.file);
    expect(err.message).toContain('run 42');
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

  it('upgrades a ledger of schema version 2: its leases get fencing tokens, and a held lease stays held', async () => {
    const l = ledger();
    await l.close();
    const raw = new Database(l.file);
    const until = new Date(Date.now() + 60_000).toISOString();
    raw.exec(`DROP TABLE leases;
      CREATE TABLE leases (sync TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TEXT NOT NULL);
      DELETE FROM schema_version WHERE version > 2;
      INSERT INTO leases VALUES ('s', 'old-runner', '${until}');`);
    raw.close();
    const upgraded = ledger();
    expect(await upgraded.leaseHolder('s')).toMatchObject({ owner: 'old-runner', token: 1, expired: false });
    expect(await upgraded.acquireLease('s', 'new-runner', 60_000)).toBeUndefined();
    await upgraded.releaseLease('s', 'old-runner');
    expect(await upgraded.acquireLease('s', 'new-runner', 60_000)).toMatchObject({ owner: 'new-runner', token: 2 });
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
