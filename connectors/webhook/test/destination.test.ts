import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  OutflowError,
  secretPaths,
  type ConnectorContext,
  type Operation,
} from '@outflow/core';
import webhook, { configSchema, parseRetryAfter, verifySignature, type WebhookConfig } from '@outflow/connector-webhook';
import { start, type WebhookEmulator, type WebhookEmulatorOptions } from '@outflow/connector-webhook/emulator';
import { createTestContext } from '@outflow/testing';

const SECRET = 'destination-test-secret-9f2c';
const destination = webhook.destination!;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function context(config: WebhookConfig, signal?: AbortSignal): ConnectorContext<WebhookConfig> {
  const ctx = createTestContext(config, { connection: 'hooks' });
  cleanups.push(() => ctx.dispose());
  return signal === undefined ? ctx : { ...ctx, signal };
}

async function emulator(options: WebhookEmulatorOptions = {}): Promise<WebhookEmulator> {
  const e = await start({ secret: SECRET, ...options });
  cleanups.push(() => e.stop());
  return e;
}

interface Seen {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A hand-written receiver that answers every request with `reply`. */
async function receiver(reply: (seen: Seen, res: http.ServerResponse) => void): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      reply(s, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/in`, seen };
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

const upsert = (key: string, fields: Operation['fields'] = {}): Operation => ({
  kind: 'upsert',
  key,
  match: { id: key },
  fields,
  idempotencyKey: `ik-${key}-${JSON.stringify(fields)}`,
});

async function thrown(promise: Promise<unknown>): Promise<OutflowError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutflowError);
  expect((err as OutflowError).message).not.toContain(SECRET);
  expect(JSON.stringify(err)).not.toContain(SECRET);
  return err as OutflowError;
}

describe('write', () => {
  it('returns one result per operation, in order, with the receiver ids', async () => {
    const e = await emulator();
    const ctx = context({ url: e.url, secret: SECRET });
    await destination.write(ctx, 'contacts', [upsert('2', { name: 'Grace' })]);
    const ops: Operation[] = [
      upsert('1', { name: 'Ada' }),
      { kind: 'update', key: '2', fields: { name: 'Grace H' }, idempotencyKey: 'ik-u2' },
      { kind: 'insert', key: '3', fields: { name: 'Edsger' }, idempotencyKey: 'ik-i3' },
      { kind: 'delete', key: '4', idempotencyKey: 'ik-d4' },
    ];
    const results = await destination.write(ctx, 'contacts', ops);
    const ids = Object.fromEntries(e.records('contacts').map((r) => [r.key, r.id]));
    expect(results).toEqual([
      { ok: true, destinationId: ids['1'] },
      { ok: true, destinationId: ids['2'] },
      { ok: true, destinationId: ids['3'] },
      { ok: true },
    ]);
    expect(e.records('contacts').map((r) => [r.key, r.fields])).toEqual([
      ['2', { name: 'Grace H' }],
      ['1', { name: 'Ada' }],
      ['3', { name: 'Edsger' }],
    ]);
    expect(e.records('contacts').find((r) => r.key === '1')!.match).toEqual({ id: '1' });
  });

  it('sends nothing for an empty batch', async () => {
    const e = await emulator();
    expect(await destination.write(context({ url: e.url, secret: SECRET }), 'contacts', [])).toEqual([]);
    expect(e.requests).toBe(0);
  });

  it('a rejected record does not fail the rest of the batch', async () => {
    const e = await emulator();
    const results = await destination.write(context({ url: e.url, secret: SECRET }), 'contacts', [
      upsert('1', { email: 'ada@example.com' }),
      upsert('2', { email: 'grace(at)example.com' }),
      upsert('3', { email: 'edsger@example.com' }),
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(results[1]).toEqual({
      ok: false,
      reason: 'email "grace(at)example.com" is not a valid email address',
      retryable: false,
    });
    expect(e.records('contacts').map((r) => r.key)).toEqual(['1', '3']);
  });

  it('sending the same batch twice creates each record once', async () => {
    const e = await emulator();
    const ctx = context({ url: e.url, secret: SECRET });
    const ops = [upsert('1', { n: 1 }), upsert('2', { n: 2 })];
    const first = await destination.write(ctx, 'contacts', ops);
    const second = await destination.write(ctx, 'contacts', ops);
    expect(second).toEqual(first);
    expect(e.createdCounts()).toEqual({ contacts: { '1': 1, '2': 1 } });
  });

  it('signs the exact body, sends configured headers, and does not let them replace the signature', async () => {
    const r = await receiver((s, res) => {
      const batch = JSON.parse(s.body) as { records: Array<{ idempotencyKey: string }> };
      json(res, 200, { results: batch.records.map((x) => ({ idempotencyKey: x.idempotencyKey, ok: true })) });
    });
    const ctx = context({
      url: r.url,
      secret: SECRET,
      headers: { 'x-api-key': 'gateway-key', 'x-outflow-signature': 'forged' },
    });
    await destination.write(ctx, 'contacts', [upsert('1', { name: 'Ada' })]);
    const { headers, body } = r.seen[0]!;
    expect(headers['x-api-key']).toBe('gateway-key');
    expect(headers['content-type']).toBe('application/json');
    const problem = verifySignature(
      SECRET,
      { timestamp: headers['x-outflow-timestamp'] as string, signature: headers['x-outflow-signature'] as string },
      body,
    );
    expect(problem).toBeNull();
    expect(JSON.parse(body)).toEqual({
      object: 'contacts',
      records: [{ idempotencyKey: upsert('1', { name: 'Ada' }).idempotencyKey, op: 'upsert', key: '1', match: { id: '1' }, fields: { name: 'Ada' } }],
    });
  });

  it('a header fetch cannot send fails the batch without retry and without quoting the value', async () => {
    const e = await emulator();
    const ctx = context({ url: e.url, secret: SECRET, headers: { 'x-api-key': 'key-with\nnewline' } });
    const err = await thrown(destination.write(ctx, 'contacts', [upsert('1')]));
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('`headers`');
    expect(err.message).not.toContain('key-with');
    expect(e.requests).toBe(0);
  });

  it('a record the receiver did not answer for is a retryable failure', async () => {
    const r = await receiver((s, res) => {
      const batch = JSON.parse(s.body) as { records: Array<{ idempotencyKey: string }> };
      // Answers out of order and forgets the middle record.
      json(res, 200, {
        results: [
          { idempotencyKey: batch.records[2]!.idempotencyKey, ok: true, id: 33 },
          { idempotencyKey: batch.records[0]!.idempotencyKey, ok: false, error: 'quota exceeded', retryable: true },
        ],
      });
    });
    const results = await destination.write(context({ url: r.url, secret: SECRET }), 'contacts', [
      upsert('1'),
      upsert('2'),
      upsert('3'),
    ]);
    expect(results).toEqual([
      { ok: false, reason: 'quota exceeded', retryable: true },
      { ok: false, reason: 'receiver returned no result for this record', retryable: true },
      { ok: true, destinationId: '33' },
    ]);
  });

  it('429 throws a retryable error that says to come back after Retry-After', async () => {
    const e = await emulator({ faults: { status429Every: 1 } });
    const err = await thrown(destination.write(context({ url: e.url, secret: SECRET }), 'contacts', [upsert('1')]));
    expect(err.code).toBe('OUTFLOW_DESTINATION');
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBe(1000);
    expect(err.details).toEqual({ status: 429 });
    expect(e.records()).toEqual([]);
  });

  it('503 with an HTTP-date Retry-After is retryable after that date', async () => {
    const r = await receiver((_s, res) =>
      json(res, 503, { error: 'maintenance' }, { 'retry-after': new Date(Date.now() + 60_000).toUTCString() }),
    );
    const err = await thrown(destination.write(context({ url: r.url, secret: SECRET }), 'contacts', [upsert('1')]));
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBeGreaterThan(50_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(err.message).toContain('maintenance');
  });

  it('500s, connection resets and timeouts are retryable', async () => {
    const failing = await emulator({ faults: { errorRate: 1 } });
    const resetting = await emulator({ faults: { resetRate: 1 } });
    const slow = await emulator({ faults: { latencyMs: 2_000 } });
    const errors = [
      await thrown(destination.write(context({ url: failing.url, secret: SECRET }), 'contacts', [upsert('1')])),
      await thrown(destination.write(context({ url: resetting.url, secret: SECRET }), 'contacts', [upsert('1')])),
      await thrown(destination.write(context({ url: slow.url, secret: SECRET, timeoutMs: 50 }), 'contacts', [upsert('1')])),
    ];
    expect(errors.map((e) => [e.code, e.retryable])).toEqual([
      ['OUTFLOW_DESTINATION', true],
      ['OUTFLOW_DESTINATION', true],
      ['OUTFLOW_DESTINATION', true],
    ]);
    expect(errors[0]!.message).toMatch(/HTTP 500/);
    expect(errors[2]!.message).toMatch(/did not answer within 50 ms/);
  });

  it('an answer lost after the receiver applied the batch is retryable, and the re-send is not applied again', async () => {
    for (const how of ['reset', 'timeout', 'error'] as const) {
      const receiver = await emulator({ faults: { loseAnswers: 1, lostAnswer: how } });
      const ctx = context({ url: receiver.url, secret: SECRET, timeoutMs: 300 });
      const batch = [upsert('1', { name: 'Ada' }), upsert('2', { name: 'Grace' })];
      const lost = await thrown(destination.write(ctx, 'contacts', batch));
      expect([how, lost.retryable]).toEqual([how, true]);
      // The receiver has the batch although the sender never heard so.
      expect(receiver.writes('contacts').map((w) => w.key)).toEqual(['1', '2']);
      const again = await destination.write(ctx, 'contacts', batch);
      expect(again.map((r) => r.ok)).toEqual([true, true]);
      // Counted at the receiver's write log: each record applied and created once.
      expect(receiver.writes('contacts').map((w) => [w.key, w.created])).toEqual([
        ['1', true],
        ['2', true],
      ]);
    }
  });

  it('stops promptly with OUTFLOW_ABORTED when the run is stopping', async () => {
    const slow = await emulator({ faults: { latencyMs: 5_000 } });
    const controller = new AbortController();
    const pending = destination.write(context({ url: slow.url, secret: SECRET }, controller.signal), 'contacts', [upsert('1')]);
    setTimeout(() => controller.abort(), 20);
    const err = await thrown(pending);
    expect(err.code).toBe('OUTFLOW_ABORTED');
  });

  it('a 4xx other than 429 is not retryable and carries the receiver message', async () => {
    const e = await emulator();
    const bad = { kind: 'merge', key: '1', idempotencyKey: 'ik' } as unknown as Operation;
    const err = await thrown(destination.write(context({ url: e.url, secret: SECRET }), 'contacts', [bad]));
    expect(err.retryable).toBe(false);
    expect(err.details).toEqual({ status: 400 });
    expect(err.message).toContain('HTTP 400');
    expect(err.message).toContain('records[0].op must be one of upsert, update, insert, delete, event');
  });

  it('a wrong secret is a non-retryable signature refusal that never shows either secret', async () => {
    const e = await emulator();
    const err = await thrown(destination.write(context({ url: e.url, secret: 'wrong-secret-value' }), 'contacts', [upsert('1')]));
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/refused the request signature \(HTTP 401/);
    expect(err.message).not.toContain('wrong-secret-value');
  });

  it('masks the secret even when a receiver echoes it back', async () => {
    const r = await receiver((_s, res) => json(res, 422, { error: `secret ${SECRET} is not allowed here` }));
    const err = await thrown(destination.write(context({ url: r.url, secret: SECRET }), 'contacts', [upsert('1')]));
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('HTTP 422: secret [REDACTED] is not allowed here');
  });

  it('a body of the wrong shape is a non-retryable error saying what was wrong', async () => {
    const cases: Array<[string, RegExp]> = [
      ['<html>ok</html>', /the body is not JSON/],
      ['{"ok":true}', /the body has no "results" array/],
      ['{"results":[{"ok":true}]}', /results\[0\] has no string "idempotencyKey"/],
      ['{"results":[{"idempotencyKey":"x","ok":"yes"}]}', /results\[0\] has no boolean "ok"/],
    ];
    for (const [body, expected] of cases) {
      const r = await receiver((_s, res) => json(res, 200, body));
      const err = await thrown(destination.write(context({ url: r.url, secret: SECRET }), 'contacts', [upsert('1')]));
      expect(err.retryable).toBe(false);
      expect(err.message).toMatch(expected);
    }
  });

  it('does not name the url path or query, where receivers often keep tokens', async () => {
    const r = await receiver((_s, res) => json(res, 500, { error: 'boom' }));
    const url = `${r.url}/T0KEN-in-path?token=query-token`;
    const err = await thrown(destination.write(context({ url, secret: SECRET }), 'contacts', [upsert('1')]));
    expect(err.message).toContain(new URL(url).origin);
    expect(err.message).not.toContain('T0KEN');
    expect(err.message).not.toContain('query-token');
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, and ignores nonsense', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('1', now)).toBe(1000);
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe('check', () => {
  it('succeeds against a receiver that accepts the signature', async () => {
    const e = await emulator();
    await expect(destination.check(context({ url: e.url, secret: SECRET }))).resolves.toBeUndefined();
    expect(e.requests).toBe(1);
    expect(e.records()).toEqual([]);
  });

  it('fails with OUTFLOW_CHECK_FAILED when the receiver refuses the signature', async () => {
    const e = await emulator();
    const err = await thrown(destination.check(context({ url: e.url, secret: 'not-the-right-one' })));
    expect(err.code).toBe('OUTFLOW_CHECK_FAILED');
    expect(err.message).toMatch(/refused the request signature \(HTTP 401/);
    expect(err.message).toContain('`secret`');
    expect(err.message).not.toContain('not-the-right-one');
  });

  it('fails with OUTFLOW_CHECK_FAILED when nothing listens at the url', async () => {
    const e = await emulator();
    const url = e.url;
    await e.stop();
    const err = await thrown(destination.check(context({ url, secret: SECRET })));
    expect(err.code).toBe('OUTFLOW_CHECK_FAILED');
    expect(err.message).toContain(`could not reach webhook receiver at ${new URL(url).origin}: ECONNREFUSED`);
  });

  it('fails when the receiver answers the ping with an error', async () => {
    const r = await receiver((_s, res) => json(res, 404, { error: 'no such hook' }));
    const err = await thrown(destination.check(context({ url: r.url, secret: SECRET })));
    expect(err.code).toBe('OUTFLOW_CHECK_FAILED');
    expect(err.message).toContain('refused the check ping with HTTP 404: no such hook');
  });
});

describe('manifest', () => {
  it('describes every config property and marks only the secret as secret', () => {
    const props = configSchema.properties as Record<string, { description?: string }>;
    expect(Object.keys(props).sort()).toEqual(
      ['batchSize', 'concurrency', 'headers', 'maxResponseBytes', 'requestsPerSecond', 'secret', 'timeoutMs', 'url'].sort(),
    );
    for (const [name, prop] of Object.entries(props)) expect(prop.description, name).toMatch(/\w{3,}/);
    expect(secretPaths(configSchema)).toEqual(['secret']);
    expect((configSchema.properties.secret as { secret?: boolean }).secret).toBe(true);
    expect(configSchema.additionalProperties).toBe(false);
    expect(configSchema.required?.sort()).toEqual(['secret', 'url']);
    expect(webhook.config).toBe(configSchema);
    expect([webhook.name, webhook.version]).toEqual(['webhook', '1.0.0']);
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { peerDependencies: Record<string, string> };
    expect(pkg.peerDependencies['@outflow/core']).toBe('^1.0.0');
  });

  it('declares capabilities from the config, with defaults', async () => {
    const base = { url: 'http://127.0.0.1:1/in', secret: SECRET };
    expect(await destination.capabilities(context(base), 'contacts')).toEqual({
      operations: ['upsert', 'update', 'insert', 'delete', 'event'],
      maxBatchSize: 100,
      rateLimits: [{ requests: 20, perMs: 1000 }],
      concurrency: 4,
      idempotency: 'key',
    });
    const tuned = await destination.capabilities(context({ ...base, batchSize: 7, requestsPerSecond: 0.5, concurrency: 2 }), 'deals');
    expect(tuned).toMatchObject({ maxBatchSize: 7, rateLimits: [{ requests: 1, perMs: 2000 }], concurrency: 2 });
  });

  it('accepts any object name', async () => {
    const catalog = await destination.discover(context({ url: 'http://127.0.0.1:1/in', secret: SECRET }));
    expect(catalog.objects).toEqual([{ name: '*', fields: [], matchKeys: [], modes: ['upsert', 'update', 'insert', 'mirror', 'event'] }]);
  });

  it('its emulator starts from the manifest and its config is enough to write to it (sandbox mode)', async () => {
    const mod = await webhook.emulator!();
    const running = await mod.start({});
    cleanups.push(() => running.stop());
    const ctx = context({ ...running.config, url: running.config.url!, secret: running.config.secret! });
    await destination.check(ctx);
    const [result] = await destination.write(ctx, 'contacts', [upsert('1', { email: 'ada@example.com' })]);
    expect(result!.ok).toBe(true);
    const snapshot = (await (await fetch(new URL('/_outflow/records?object=contacts', running.url))).json()) as {
      records: Array<{ key: string }>;
    };
    expect(snapshot.records.map((r) => r.key)).toEqual(['1']);
  });
});
