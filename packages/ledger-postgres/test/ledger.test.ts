import { createServer, type Server } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { OutflowError, isOutflowError } from '@outflow/core';
import { startPostgres, type TestPostgres } from '@outflow/connector-postgres/testing';
import { ledgerAcceptance } from '@outflow/testing';
import { PostgresLedger } from '../src/index.js';

let server: TestPostgres;
let url: string;
const opened: PostgresLedger[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  server = await startPostgres();
  url = server.url;
});

afterAll(async () => {
  for (const l of opened.splice(0)) await l.close();
  await server?.stop();
});

/** A ledger instance, as one runner (or one process) would open it. */
function ledger(schema: string): PostgresLedger {
  const l = new PostgresLedger({ url, schema });
  opened.push(l);
  return l;
}

async function failure(promise: Promise<unknown>, code = 'OUTFLOW_LEDGER'): Promise<OutflowError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isOutflowError(err), `expected an ${code} error, got ${String(err)}`).toBe(true);
  expect((err as OutflowError).code).toBe(code);
  return err as OutflowError;
}

let schemas = 0;
const fresh = (name: string) => `${name}_${process.pid}_${++schemas}`;

// Each store of the suite is a schema of its own in one database.
ledgerAcceptance({
  name: 'PostgreSQL',
  open: (store) => new PostgresLedger({ url, schema: store.toLowerCase().replace(/[^a-z0-9_]/g, '_') }),
});

describe('PostgreSQL ledger: schema', () => {
  it('creates its schema in the default "outflow", records its version, and migrates once when runners open it together', async () => {
    const runners = Array.from({ length: 5 }, () => ledger('outflow'));
    expect(runners[0]!.schema).toBe('outflow');
    expect(new PostgresLedger({ url }).schema).toBe('outflow');
    await Promise.all(runners.map((l, i) => l.setCheckpoint(`s${i}`, `c${i}`)));
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const versions = await db.query<{ version: number }>('SELECT version FROM outflow.schema_version ORDER BY version');
      expect(versions.rows.map((r) => r.version)).toEqual([1]);
      const tables = await db.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'outflow' ORDER BY 1");
      expect(tables.rows.map((r) => r.t)).toEqual(['checkpoints', 'kv', 'leases', 'row_errors', 'runs', 'schema_version', 'syncs']);
    } finally {
      await db.end();
    }
    expect(await ledger('outflow').getCheckpoint('s4')).toBe('c4');
  });

  it('refuses a ledger written by a newer Outflow, naming the server and the version', async () => {
    const schema = fresh('newer');
    await ledger(schema).listRuns();
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(`INSERT INTO ${schema}.schema_version VALUES (99)`);
    await db.end();
    const err = await failure(ledger(schema).listRuns());
    expect(err.message).toMatch(/schema version 99, newer than this Outflow understands/);
    expect(err.message).toContain(new URL(url).host);
  });

  it('refuses a schema name that is not a plain PostgreSQL name', () => {
    expect(() => new PostgresLedger({ url, schema: 'outflow"; DROP SCHEMA public; --' })).toThrow(/is not a plain PostgreSQL name/);
  });
});

describe('PostgreSQL ledger: failures', () => {
  let closed: Server | undefined;
  afterEach(() => closed?.close());

  it('fails retryably when the server cannot be reached, naming the server and never the password', async () => {
    // A port that accepts nothing: bound, then closed.
    closed = createServer();
    await new Promise<void>((resolve) => closed!.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed!.close(() => resolve()));
    closed = undefined;
    const password = 'pg-pass-8d1c0e97';
    const l = new PostgresLedger({ url: `postgres://outflow:${password}@127.0.0.1:${port}/ledger`, schema: 'outflow' });
    const err = await failure(l.acquireLease('s', 'runner-a', 1000));
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`postgres://outflow@127.0.0.1:${port}/ledger`);
    expect(err.message).toMatch(/could not acquire the lease of sync "s"/);
    expect(JSON.stringify({ message: err.message, details: err.details })).not.toContain(password);
    await l.close();
  });

  it('fails without retrying when the database does not exist', async () => {
    const u = new URL(url);
    u.pathname = '/no_such_database';
    const l = new PostgresLedger({ url: u.toString() });
    const err = await failure(l.listRuns());
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/no_such_database/);
    await l.close();
  });

  it('fails with OUTFLOW_LEDGER after close; closing twice is harmless', async () => {
    const l = new PostgresLedger({ url, schema: fresh('closed') });
    await l.listRuns();
    await l.close();
    await l.close();
    await failure(l.listRuns());
  });
});

describe('PostgreSQL ledger: runners contending for a sync', () => {
  it("judges expiry by the database's clock, not a runner's", async () => {
    const schema = fresh('clock');
    const a = ledger(schema);
    const b = ledger(schema);
    const grant = (await a.acquireLease('s', 'runner-a', 60_000))!;
    // runner-b's clock runs an hour ahead: the lease it sees is still running.
    const skew = vi.spyOn(Date, 'now').mockImplementation(() => new Date().getTime() + 3_600_000);
    try {
      expect(await b.acquireLease('s', 'runner-b', 60_000)).toBeUndefined();
      expect(await b.leaseHolder('s')).toMatchObject({ owner: 'runner-a', expired: false });
    } finally {
      skew.mockRestore();
    }
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const { rows } = await db.query<{ now: Date }>('SELECT clock_timestamp() AS now');
    await db.end();
    const left = Date.parse(grant.expiresAt) - rows[0]!.now.getTime();
    expect(left).toBeGreaterThan(50_000);
    expect(left).toBeLessThanOrEqual(60_000);
  });

  it('lets one of two runners hold a sync; a paused holder is refused on its next checkpoint, and the new holder resumes from the last checkpoint', async () => {
    const schema = fresh('paused');
    const a = ledger(schema);
    const b = ledger(schema);
    const ttl = 300;
    const first = (await a.acquireLease('orders', 'runner-a', ttl))!;
    expect(await b.acquireLease('orders', 'runner-b', ttl)).toBeUndefined();
    const run = await a.startRun('orders', 'stream');
    await a.setCheckpoint('orders', 'lsn:0/100', first.token);

    // runner-a pauses (a long GC, a SIGSTOP, a partition) past its lease; runner-b takes over.
    await sleep(ttl * 3);
    const second = (await b.acquireLease('orders', 'runner-b', 60_000))!;
    expect(second.token).toBeGreaterThan(first.token);
    expect(await b.abandonRunningRuns('orders')).toBe(1);
    expect(await b.getCheckpoint('orders')).toBe('lsn:0/100');

    // runner-a wakes up and tries to move the checkpoint on.
    const refused = await failure(a.setCheckpoint('orders', 'lsn:0/180', first.token), 'OUTFLOW_LEASE_LOST');
    expect(refused.message).toMatch(/sync "orders": another runner took the sync over/);
    expect(refused.message).toContain('runner-b');
    await failure(a.finishRun(run, 'succeeded', { inserted: 8, updated: 0, deleted: 0, rejected: 0, skipped: 0 }, undefined, first.token), 'OUTFLOW_LEASE_LOST');
    await failure(a.renewLease(first, ttl), 'OUTFLOW_LEASE_LOST');

    await b.setCheckpoint('orders', 'lsn:0/200', second.token);
    expect(await a.getCheckpoint('orders')).toBe('lsn:0/200');
    expect(await b.listRuns({ sync: 'orders' })).toMatchObject([{ id: run, status: 'aborted', inserted: 0 }]);
  });

  it('serialises a takeover with a checkpoint write in flight: the write lands before the takeover or is refused', async () => {
    const schema = fresh('race');
    const a = ledger(schema);
    const b = ledger(schema);
    for (let round = 0; round < 20; round++) {
      const sync = `s${round}`;
      const grant = (await a.acquireLease(sync, 'runner-a', 50))!;
      await sleep(80);
      const [write, takeover] = await Promise.allSettled([a.setCheckpoint(sync, 'from-a', grant.token), b.acquireLease(sync, 'runner-b', 60_000)]);
      expect(takeover.status).toBe('fulfilled');
      const taken = (takeover as PromiseFulfilledResult<Awaited<ReturnType<typeof b.acquireLease>>>).value;
      expect(taken?.owner).toBe('runner-b');
      const seen = await b.getCheckpoint(sync);
      if (write.status === 'fulfilled') expect(seen).toBe('from-a');
      else {
        expect(isOutflowError(write.reason, 'OUTFLOW_LEASE_LOST')).toBe(true);
        expect(seen).toBeUndefined();
      }
      // Whatever the order, runner-b's own writes are never overwritten by runner-a afterwards.
      await b.setCheckpoint(sync, 'from-b', taken!.token);
      await failure(a.setCheckpoint(sync, 'late', grant.token), 'OUTFLOW_LEASE_LOST');
      expect(await b.getCheckpoint(sync)).toBe('from-b');
    }
  });
});
