import './home.js';
import { afterEach, describe, expect, it } from 'vitest';
import { clearSecrets, OutflowError, registerSecret, type ConnectorContext, type Operation } from '@outflow/core';
import salesforce, { type SalesforceConfig } from '@outflow/connector-salesforce';
import { start, type SalesforceEmulator } from '@outflow/connector-salesforce/emulator';
import { createTestContext, startHostileServer, type HostileServer } from '@outflow/testing';
import { CUSTOMER } from './fixtures.js';

// The Salesforce connector, through @salesforce/core, against a server that answers like a
// broken or hostile API: the describe is forwarded to the emulator, the write is not.

const destination = salesforce.destination!;

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

async function emulator(): Promise<SalesforceEmulator> {
  const emu = await start({ customObjects: [CUSTOMER] });
  cleanups.push(() => emu.stop());
  return emu;
}

function context(emu: SalesforceEmulator, instanceUrl: string, config: Partial<SalesforceConfig> = {}): ConnectorContext<SalesforceConfig> {
  const ctx = createTestContext<SalesforceConfig>({ ...emu.config, instanceUrl, timeoutMs: 2_000, ...config } as SalesforceConfig, { connection: 'crm' });
  cleanups.push(async () => {
    await salesforce.close?.(ctx as never);
    await ctx.dispose();
  });
  return ctx;
}

const upsert = (i: number): Operation => ({
  kind: 'upsert',
  key: `c-${i}`,
  match: { External_Id__c: `c-${i}` },
  fields: { Name: `Customer ${i}` },
  idempotencyKey: `ik-${i}`,
});

async function thrown(promise: Promise<unknown>): Promise<OutflowError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutflowError);
  return err as OutflowError;
}

/** Describe and everything but the write go to the emulator; the write gets `mode`. */
const onWrite = (emu: SalesforceEmulator, mode: Exclude<HostileServer['mode'], (r: never) => unknown>) => (r: { method: string; path: string }) =>
  r.method === 'PATCH' && r.path.includes('/composite/sobjects') ? mode : ({ kind: 'forward', to: emu.url } as const);

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  for (let waited = 0; waited < ms && !cond(); waited += 10) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

describe('a huge answer body', () => {
  it('stops reading at maxAnswerBytes and fails the write as retryable "answer too large", closing the connection', async () => {
    const emu = await emulator();
    const server = await hostile(onWrite(emu, { kind: 'huge-body', bytes: 1.5 * 1024 ** 3, status: 500 }));
    const ctx = context(emu, server.url, { maxAnswerBytes: 65_536, timeoutMs: 30_000 });
    const err = await thrown(destination.write(ctx, 'Customer__c', [upsert(1)]));
    expect(err.code).toBe('OUTFLOW_DESTINATION');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/^answer too large: Salesforce \(PATCH \/services\/data\/v62\.0\/composite\/sobjects\/Customer__c\/External_Id__c\) answered HTTP 500 with a body of more than 65536 bytes/);
    await until(() => server.requests.at(-1)!.abandoned);
    // Read up to the limit and a few socket buffers more, never the 1.5 GB.
    expect(server.bytesSent).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a body whose Content-Length is over the limit before reading it', async () => {
    const emu = await emulator();
    const server = await hostile(onWrite(emu, { kind: 'huge-body', bytes: 1024 ** 3, status: 200, declareLength: true }));
    const ctx = context(emu, server.url, { maxAnswerBytes: 65_536 });
    const err = await thrown(destination.write(ctx, 'Customer__c', [upsert(1)]));
    expect(err.message).toMatch(/^answer too large: .* answered HTTP 200 with a body of more than 65536 bytes/);
  });
});

describe('an answer that never comes, or never ends', () => {
  it('gives the write up after timeoutMs as retryable, whether the headers or the body hang', async () => {
    const emu = await emulator();
    const server = await hostile(onWrite(emu, { kind: 'hang' }));
    const ctx = context(emu, server.url, { timeoutMs: 500 });
    const err = await thrown(destination.write(ctx, 'Customer__c', [upsert(1)]));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/no complete answer within 500 ms \(timeoutMs\)/);

    // Headers at once, then a body that trickles on and on: still bounded by timeoutMs.
    server.mode = onWrite(emu, { kind: 'huge-body', bytes: 1.5 * 1024 ** 3, status: 200 });
    const slow = context(emu, server.url, { timeoutMs: 500, maxAnswerBytes: 2 * 1024 ** 3 });
    const again = await thrown(destination.write(slow, 'Customer__c', [upsert(2)]));
    expect(again.message).toMatch(/no complete answer within 500 ms/);
    await until(() => server.requests.at(-1)!.abandoned);
  });
});

describe('an answer that is not what Salesforce sends', () => {
  it('a 200 whose body is not JSON fails the write as an unknown outcome, and does not crash', async () => {
    const emu = await emulator();
    const server = await hostile(onWrite(emu, { kind: 'invalid-json', status: 200 }));
    const ctx = context(emu, server.url);
    const err = await destination.write(ctx, 'Customer__c', [upsert(1)]).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    // Not an Outflow error: the write may have been applied, so the engine treats it as in doubt.
    expect(err).not.toBeInstanceOf(OutflowError);
  });

  it('an error answer echoing the request headers never shows the access token', async () => {
    const emu = await emulator();
    // As the engine does for every value the config schema marks secret.
    registerSecret(emu.config.accessToken);
    const server = await hostile(onWrite(emu, { kind: 'echo-headers', status: 400 }));
    const ctx = context(emu, server.url);
    const err = await thrown(destination.write(ctx, 'Customer__c', [upsert(1)]));
    expect(JSON.stringify(server.requests.at(-1)!.headers)).toContain(emu.config.accessToken);
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/^Salesforce refused a Collections upsert of 1 Customer__c on External_Id__c .*\[REDACTED\]/);
    expect(err.message).not.toContain(emu.config.accessToken);
  });
});
