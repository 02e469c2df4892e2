import { afterEach, describe, expect, it } from 'vitest';
import { clearSecrets, OutflowError, registerSecret, type ConnectorContext, type Operation, type Row, type SyncConfig } from '@outflow/core';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import hubspot, { type HubSpotConfig } from '@outflow/connector-hubspot';
import { start, type HubSpotEmulator } from '@outflow/connector-hubspot/emulator';
import { createTestContext, createTestEngine, memorySource, startHostileServer, type HostileServer } from '@outflow/testing';

// The HubSpot connector, through @hubspot/api-client, against a server that answers like a
// broken or hostile API.

const TOKEN = 'pat-na1-hostile"\\token';
const destination = hubspot.destination!;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  clearSecrets();
});

async function hostile(mode: HostileServer['mode']): Promise<HostileServer> {
  const server = await startHostileServer(mode);
  cleanups.push(() => server.close());
  return server;
}

async function emulator(): Promise<HubSpotEmulator> {
  const emu = await start({ accessToken: TOKEN });
  cleanups.push(() => emu.stop());
  return emu;
}

function context(config: Partial<HubSpotConfig> & { basePath: string }): ConnectorContext<HubSpotConfig> & { controller: AbortController } {
  const ctx = createTestContext<HubSpotConfig>({ accessToken: TOKEN, ...config } as HubSpotConfig, { connection: 'crm' });
  cleanups.push(async () => {
    await hubspot.close?.(ctx as never);
    await ctx.dispose();
  });
  return ctx;
}

const upsert = (email: string): Operation => ({
  kind: 'upsert',
  key: email,
  match: { email },
  fields: { email, firstname: 'Ada' },
  idempotencyKey: `ik-${email}`,
});

async function thrown(promise: Promise<unknown>): Promise<OutflowError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutflowError);
  return err as OutflowError;
}

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  for (let waited = 0; waited < ms && !cond(); waited += 10) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

const people = (n: number): Row[] => Array.from({ length: n }, (_, i) => ({ id: i + 1, email: `p${i + 1}@example.com`, first: `P${i + 1}` }));
const sync = {
  name: 'contacts',
  from: { connection: 'src', table: 'people', primaryKey: 'id' },
  capture: 'diff',
  to: { connection: 'crm', object: 'contacts', mode: 'upsert', deletes: 'ignore', matchKey: { email: 'email' } },
  mappings: { email: 'email', firstname: 'first' },
  delivery: { maxAttempts: 2 },
} as SyncConfig;

function engineFor(basePath: string, maxWaitMs?: number) {
  const env = createTestEngine({
    connections: {
      src: memorySource(() => people(20)),
      crm: { connector: hubspot, config: { accessToken: TOKEN, basePath, tier: 'professional' }, ...(maxWaitMs === undefined ? {} : { maxWaitMs }) },
    },
    ledger: openSqliteLedger,
    stateStore: (dir) => duckdbStateStore({ dir }),
  });
  cleanups.push(() => env.close());
  return env;
}

const fast = { backoff: { baseMs: 1, maxMs: 5 } };
/** How many times the emulator created a contact with this email, from its own write log. */
const createsOf = (emu: HubSpotEmulator, email: string) =>
  emu.stats().writes.filter((w) => w.op === 'create' && w.object === 'contacts' && w.properties?.['email'] === email).length;

describe('a huge Retry-After', () => {
  it("fails the run at once as retryable, naming the wait and maxWait; the next run creates each contact once", async () => {
    const emu = await emulator();
    // Property reads pass; every write is answered 429 with a Retry-After of 10^9 seconds.
    const server = await hostile((r) => (r.method === 'POST' ? { kind: 'retry-after', value: '1000000000' } : { kind: 'forward', to: emu.url }));
    const { engine } = engineFor(server.url, 30_000);

    const first = await engine.run(sync, fast);
    expect(first.status).toBe('failed');
    expect(first.error?.code).toBe('OUTFLOW_DESTINATION');
    expect(first.error?.message).toMatch(/HubSpot rate limit hit \(429.*asked to wait \d+ (h|d) .*maxWait \(30 s\)/);
    expect(server.requests.filter((r) => r.method === 'POST')).toHaveLength(1);

    server.mode = { kind: 'forward', to: emu.url };
    const second = await engine.run(sync, fast);
    expect(second.status).toBe('succeeded');
    for (const p of people(20)) expect(createsOf(emu, String(p['email']))).toBe(1);
  });
});

describe('a huge answer body', () => {
  it('stops reading at maxResponseBytes and fails the call as retryable "answer too large", closing the connection', async () => {
    const server = await hostile({ kind: 'huge-body', bytes: 1.5 * 1024 ** 3, status: 500 });
    const ctx = context({ basePath: server.url, maxResponseBytes: 65_536 });
    const err = await thrown(destination.write(ctx, 'contacts', [upsert('a@example.com')]));
    expect(err.code).toBe('OUTFLOW_DESTINATION');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/^answer too large: HubSpot \(GET \/crm\/v3\/properties\/contacts\) answered HTTP 500 with a body of more than 65536 bytes/);
    await until(() => server.requests[0]!.abandoned);
    expect(server.bytesSent).toBeLessThan(16 * 1024 * 1024);
  });

  it('refuses an answer whose Content-Length is over the limit before reading it', async () => {
    const server = await hostile({ kind: 'huge-body', bytes: 1024 ** 3, status: 200, declareLength: true });
    const ctx = context({ basePath: server.url, maxResponseBytes: 65_536 });
    const err = await thrown(destination.write(ctx, 'contacts', [upsert('a@example.com')]));
    expect(err.message).toContain('answered HTTP 200 with a body of more than 65536 bytes');
  });
});

describe('an answer that never comes', () => {
  it('is cancelled at timeoutMs: the request is aborted on the wire, not only no longer waited for', async () => {
    const server = await hostile({ kind: 'hang' });
    // The agent's idle-socket timeout is also timeoutMs: a stop must cancel well before it.
    const ctx = context({ basePath: server.url, timeoutMs: 300 });
    const err = await thrown(destination.write(ctx, 'contacts', [upsert('a@example.com')]));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/did not answer the property list of contacts within 300 ms; the request was cancelled/);
    await until(() => server.requests[0]!.abandoned, 1_000);
  });

  it('is cancelled when the run stops for good, long before the deadline', async () => {
    const server = await hostile({ kind: 'hang' });
    const ctx = context({ basePath: server.url, timeoutMs: 60_000 });
    const pending = destination.write(ctx, 'contacts', [upsert('a@example.com')]);
    await until(() => server.requests.length === 1);
    ctx.controller.abort();
    const err = await thrown(pending);
    expect(err.code).toBe('OUTFLOW_ABORTED');
    await until(() => server.requests[0]!.abandoned, 2_000);
    expect(server.requests).toHaveLength(1);
  });
});

describe('invalid JSON in a 200 answer', () => {
  it('is a retryable destination error naming the endpoint and status, never OUTFLOW_INTERNAL', async () => {
    const emu = await emulator();
    const server = await hostile((r) => (r.method === 'POST' ? { kind: 'invalid-json', status: 200 } : { kind: 'forward', to: emu.url }));
    const ctx = context({ basePath: server.url });
    const err = await thrown(destination.write(ctx, 'contacts', [upsert('a@example.com')]));
    expect(err.code).toBe('OUTFLOW_DESTINATION');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/HubSpot answered .* \(POST \/crm\/v3\/objects\/contacts\/batch\/upsert\) with HTTP 200, but the body is not valid JSON/);
  });

  it('in a property read fails the run with OUTFLOW_DESTINATION naming the endpoint', async () => {
    const server = await hostile({ kind: 'invalid-json', status: 200 });
    const { engine } = engineFor(server.url);
    const summary = await engine.run(sync, fast);
    expect(summary.status).toBe('failed');
    expect(summary.error?.code).toBe('OUTFLOW_DESTINATION');
    expect(summary.error?.message).toContain('(GET /crm/v3/properties/contacts) with HTTP 200, but the body is not valid JSON');
  });
});

describe('an API echoing the request headers', () => {
  it('never shows the access token, raw or JSON-escaped, in errors', async () => {
    registerSecret(TOKEN);
    const server = await hostile({ kind: 'echo-headers', status: 400 });
    const ctx = context({ basePath: server.url });
    const err = await thrown(destination.write(ctx, 'contacts', [upsert('a@example.com')]));
    // The token travelled in the Authorization header, and came back JSON-escaped.
    expect(JSON.stringify(server.requests[0]!.headers)).toContain(JSON.stringify(TOKEN).slice(1, -1));
    expect(err.message).toContain('[REDACTED]');
    expect(err.message).not.toContain(TOKEN);
    expect(err.message).not.toContain(JSON.stringify(TOKEN).slice(1, -1));
  });
});
