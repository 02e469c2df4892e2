import { afterEach, describe, expect, it } from 'vitest';
import { clearSecrets, OutflowError, type ConnectorContext, type Operation, type Row, type SyncConfig } from '@outflow/core';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import webhook, { type WebhookConfig } from '@outflow/connector-webhook';
import { RECEIVER_PATH, start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { createTestContext, createTestEngine, memorySource, startHostileServer, type HostileMode, type HostileServer } from '@outflow/testing';

// The webhook connector against a server that answers like a broken or hostile receiver.

const SECRET = 'hostile-test-secret-"q\\uote"';
const destination = webhook.destination!;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  clearSecrets();
});

async function hostile(mode: HostileMode): Promise<HostileServer> {
  const server = await startHostileServer(mode);
  cleanups.push(() => server.close());
  return server;
}

function context(config: Partial<WebhookConfig> & { url: string }): ConnectorContext<WebhookConfig> {
  const ctx = createTestContext<WebhookConfig>({ secret: SECRET, ...config } as WebhookConfig, { connection: "hooks" });
  cleanups.push(() => ctx.dispose());
  return ctx;
}

const upsert = (key: string): Operation => ({ kind: 'upsert', key, match: { id: key }, fields: { n: 1 }, idempotencyKey: `ik-${key}` });

async function thrown(promise: Promise<unknown>): Promise<OutflowError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutflowError);
  return err as OutflowError;
}

const rows = (n: number): Row[] => Array.from({ length: n }, (_, i) => ({ id: i + 1, email: `u${i + 1}@example.com` }));
const sync: SyncConfig = {
  name: 'people',
  from: { connection: 'src', table: 'people', primaryKey: 'id' },
  capture: 'diff',
  to: { connection: 'hooks', object: 'people', mode: 'upsert', deletes: 'ignore' },
} as SyncConfig;

async function engineFor(url: string, maxWaitMs?: number, config: Partial<WebhookConfig> = {}) {
  const env = createTestEngine({
    connections: {
      src: memorySource(() => rows(30)),
      hooks: { connector: webhook, config: { url, secret: SECRET, batchSize: 10, ...config }, ...(maxWaitMs === undefined ? {} : { maxWaitMs }) },
    },
    ledger: openSqliteLedger,
    stateStore: (dir) => duckdbStateStore({ dir }),
  });
  cleanups.push(() => env.close());
  return env;
}

async function receiver(): Promise<WebhookEmulator> {
  const e = await start({ secret: SECRET });
  cleanups.push(() => e.stop());
  return e;
}

describe('a huge Retry-After', () => {
  it("fails the run at once as retryable, naming the wait and maxWait, with no timer overflow; the next run delivers each record once", async () => {
    const server = await hostile({ kind: 'retry-after', value: '1000000000' });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    cleanups.push(() => void process.off('warning', onWarning));
    const { engine } = await engineFor(`${server.url}${RECEIVER_PATH}`, 60_000);

    const first = await engine.run(sync, { backoff: { baseMs: 1, maxMs: 5 } });
    expect(first.status).toBe('failed');
    expect(first.error?.code).toBe('OUTFLOW_DESTINATION');
    expect(first.error?.message).toMatch(/HTTP 429.*asked to wait \d+ (h|d) before trying again, longer than the connection's maxWait \(60 s\)/);
    expect(warnings).not.toContain('TimeoutOverflowWarning');
    // Nothing was sent again in that run.
    const asked = server.requests.length;
    expect(asked).toBeLessThanOrEqual(3);

    const e = await receiver();
    server.mode = { kind: 'forward', to: new URL(e.url).origin };
    const second = await engine.run(sync, { backoff: { baseMs: 1, maxMs: 5 } });
    expect(second.status).toBe('succeeded');
    expect(e.records('people')).toHaveLength(30);
    for (let id = 1; id <= 30; id++) expect(e.createdCount('people', String(id))).toBe(1);
  });
});

describe('a huge answer body', () => {
  it('stops reading at maxResponseBytes and fails the batch as retryable "answer too large"', async () => {
    const server = await hostile({ kind: 'huge-body', bytes: 1.5 * 1024 ** 3 });
    const err = await thrown(destination.write(context({ url: server.url, maxResponseBytes: 64 * 1024 }), 'people', [upsert('1')]));
    expect(err.code).toBe('OUTFLOW_DESTINATION');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/^answer too large: webhook receiver at http:\/\/127\.0\.0\.1:\d+ answered HTTP 500 with a body of more than 65536 bytes/);
    // The connection was closed: the server could send only what fits in the socket buffers.
    await until(() => server.requests[0]!.abandoned);
    expect(server.bytesSent).toBeLessThan(16 * 1024 * 1024);
  });

  it('refuses a body whose Content-Length is over the limit without reading it', async () => {
    const server = await hostile({ kind: 'huge-body', bytes: 1024 ** 3, declareLength: true, status: 200 });
    const err = await thrown(destination.write(context({ url: server.url, maxResponseBytes: 4096 }), 'people', [upsert('1')]));
    expect(err.message).toContain('answered HTTP 200 with a body of more than 4096 bytes');
    expect(err.retryable).toBe(true);
  });
});

describe('an answer that never comes', () => {
  it('is cancelled at timeoutMs: the request is aborted, not only the wait', async () => {
    const server = await hostile({ kind: 'hang' });
    const err = await thrown(destination.write(context({ url: server.url, timeoutMs: 200 }), 'people', [upsert('1')]));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/did not answer within 200 ms/);
    await until(() => server.requests[0]!.abandoned);
  });
});

describe('invalid JSON in a 200 answer', () => {
  it('is a destination error naming the receiver and status, never an internal one', async () => {
    const server = await hostile({ kind: 'invalid-json' });
    const err = await thrown(destination.write(context({ url: server.url }), 'people', [upsert('1')]));
    expect(err.code).toBe('OUTFLOW_DESTINATION');
    expect(err.message).toMatch(/webhook receiver at http:\/\/127\.0\.0\.1:\d+ answered HTTP 200 but the body is not JSON/);
  });

  it('parks the rows with that reason in a run, which does not fail', async () => {
    const server = await hostile({ kind: 'invalid-json' });
    const { engine, ledger } = await engineFor(server.url);
    const summary = await engine.run(sync, { backoff: { baseMs: 1, maxMs: 5 } });
    expect(summary.status).not.toBe('failed');
    expect(summary.rejected).toBe(30);
    const errors = await ledger.listRowErrors({ sync: 'people' });
    expect(errors[0]!.reason).toContain('answered HTTP 200 but the body is not JSON');
  });
});

describe('a receiver echoing the request headers', () => {
  it('never shows the secret, raw or JSON-escaped, in errors or row-error reasons', async () => {
    const server = await hostile({ kind: 'echo-headers', status: 422 });
    // A receiver that takes the shared secret as a bearer token too.
    const config = { url: server.url, headers: { authorization: `Bearer ${SECRET}` } };
    const err = await thrown(destination.write(context(config), 'people', [upsert('1')]));
    expect(JSON.stringify(server.requests[0]!.headers)).toContain(JSON.stringify(SECRET).slice(1, -1));
    expect(err.message).toContain('"authorization":"Bearer [REDACTED]"');
    expect(err.message).not.toContain(SECRET);
    expect(err.message).not.toContain(JSON.stringify(SECRET).slice(1, -1));

    const { engine, ledger } = await engineFor(server.url, undefined, { headers: config.headers });
    await engine.run(sync, { backoff: { baseMs: 1, maxMs: 5 } });
    const reasons = (await ledger.listRowErrors({ sync: 'people' })).map((r) => r.reason).join('\n');
    expect(reasons).toContain('[REDACTED]');
    expect(reasons).not.toContain('q\\\\uote');
    expect(reasons).not.toContain(SECRET);
  });
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

