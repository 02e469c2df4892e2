import { createHmac } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LOG_FILE, start, type WebhookEmulator, type WebhookEmulatorOptions } from '@outflow/connector-webhook/emulator';

// The wire format is written out by hand here, so these tests hold the emulator to the
// documented protocol rather than to whatever the connector happens to send.
const SECRET = 'emulator-test-secret';

const running: WebhookEmulator[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function emulator(options: WebhookEmulatorOptions = {}): Promise<WebhookEmulator> {
  const e = await start({ secret: SECRET, ...options });
  running.push(e);
  return e;
}

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'webhook-emulator-'));
  dirs.push(d);
  return d;
}

interface PostOptions {
  secret?: string;
  timestamp?: number;
  signature?: string | null;
}

async function post(url: string, body: unknown, options: PostOptions = {}) {
  const raw = JSON.stringify(body);
  const ts = options.timestamp ?? Math.floor(Date.now() / 1000);
  const mac = createHmac('sha256', options.secret ?? SECRET).update(`${ts}.${raw}`).digest('hex');
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-outflow-timestamp': String(ts) };
  if (options.signature !== null) headers['x-outflow-signature'] = options.signature ?? `sha256=${mac}`;
  const res = await fetch(url, { method: 'POST', headers, body: raw });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

type Rec = { idempotencyKey: string; op: string; key: string; fields?: Record<string, unknown> };
const batch = (object: string, records: Rec[]) => ({ object, records });

describe('signature verification', () => {
  it('accepts a correctly signed check ping', async () => {
    const e = await emulator();
    const res = await post(e.url, { type: 'check' });
    expect(res.status).toBe(200);
  });

  it('refuses a missing signature, a wrong secret, a tampered signature and a stale timestamp with 401', async () => {
    const e = await emulator();
    const body = batch('contacts', [{ idempotencyKey: 'k1', op: 'upsert', key: '1', fields: { name: 'Ada' } }]);
    const now = Math.floor(Date.now() / 1000);
    const refused = [
      await post(e.url, body, { signature: null }),
      await post(e.url, body, { secret: 'not-the-secret' }),
      await post(e.url, body, { signature: 'sha256=' + '0'.repeat(64) }),
      await post(e.url, body, { timestamp: now - 6 * 60 }),
    ];
    for (const res of refused) {
      expect(res.status).toBe(401);
      expect(res.body.error).toMatch(/signature verification failed/);
    }
    expect(refused[3]!.body.error).toMatch(/stale timestamp/);
    expect(e.records('contacts')).toEqual([]);
  });

  it('accepts a timestamp a little in the past', async () => {
    const e = await emulator();
    const res = await post(e.url, { type: 'check' }, { timestamp: Math.floor(Date.now() / 1000) - 4 * 60 });
    expect(res.status).toBe(200);
  });

  it('uses the sandbox secret by default and reports it in config', async () => {
    const e = await start();
    running.push(e);
    expect(e.config).toEqual({ url: e.url, secret: 'outflow-sandbox-secret' });
    expect((await post(e.url, { type: 'check' }, { secret: 'outflow-sandbox-secret' })).status).toBe(200);
    expect((await post(e.url, { type: 'check' })).status).toBe(401);
  });
});

describe('record semantics', () => {
  it('upsert creates then updates the same record, keeping its id and merging fields', async () => {
    const e = await emulator();
    const first = await post(e.url, batch('contacts', [{ idempotencyKey: 'a', op: 'upsert', key: '1', fields: { name: 'Ada', team: 'x' } }]));
    const second = await post(e.url, batch('contacts', [{ idempotencyKey: 'b', op: 'upsert', key: '1', fields: { name: 'Ada L' } }]));
    expect(first.body.results[0]).toMatchObject({ idempotencyKey: 'a', ok: true, id: expect.stringMatching(/^rec_/) });
    expect(second.body.results[0]).toEqual({ idempotencyKey: 'b', ok: true, id: first.body.results[0].id });
    expect(e.records('contacts')).toEqual([
      { id: first.body.results[0].id, object: 'contacts', key: '1', fields: { name: 'Ada L', team: 'x' } },
    ]);
    expect(e.createdCount('contacts', '1')).toBe(1);
  });

  it('insert refuses an existing record and update refuses a missing one, without retry', async () => {
    const e = await emulator();
    const res = await post(
      e.url,
      batch('contacts', [
        { idempotencyKey: 'a', op: 'insert', key: '1', fields: { name: 'Ada' } },
        { idempotencyKey: 'b', op: 'insert', key: '1', fields: { name: 'Again' } },
        { idempotencyKey: 'c', op: 'update', key: '2', fields: { name: 'Nobody' } },
        { idempotencyKey: 'd', op: 'update', key: '1', fields: { name: 'Ada L' } },
      ]),
    );
    expect(res.body.results.map((r: any) => [r.ok, r.error, r.retryable])).toEqual([
      [true, undefined, undefined],
      [false, 'record already exists', false],
      [false, 'record not found', false],
      [true, undefined, undefined],
    ]);
    expect(e.records('contacts').map((r) => [r.key, r.fields])).toEqual([['1', { name: 'Ada L' }]]);
  });

  it('delete removes a record and succeeds when the record is already gone', async () => {
    const e = await emulator();
    await post(e.url, batch('contacts', [{ idempotencyKey: 'a', op: 'upsert', key: '1', fields: { name: 'Ada' } }]));
    const res = await post(
      e.url,
      batch('contacts', [
        { idempotencyKey: 'b', op: 'delete', key: '1' },
        { idempotencyKey: 'c', op: 'delete', key: '404' },
      ]),
    );
    expect(res.body.results).toEqual([
      { idempotencyKey: 'b', ok: true },
      { idempotencyKey: 'c', ok: true },
    ]);
    expect(e.records('contacts')).toEqual([]);
  });

  it('keeps objects apart', async () => {
    const e = await emulator();
    await post(e.url, batch('contacts', [{ idempotencyKey: 'a', op: 'upsert', key: '1', fields: { n: 1 } }]));
    await post(e.url, batch('deals', [{ idempotencyKey: 'b', op: 'upsert', key: '1', fields: { n: 2 } }]));
    expect(e.records('contacts').map((r) => r.fields)).toEqual([{ n: 1 }]);
    expect(e.records('deals').map((r) => r.fields)).toEqual([{ n: 2 }]);
    expect(e.records()).toHaveLength(2);
  });

  it('a re-sent batch creates nothing new and returns the same ids', async () => {
    const e = await emulator();
    const body = batch('contacts', [
      { idempotencyKey: 'a', op: 'upsert', key: '1', fields: { name: 'Ada' } },
      { idempotencyKey: 'b', op: 'insert', key: '2', fields: { name: 'Grace' } },
      { idempotencyKey: 'c', op: 'delete', key: '3' },
    ]);
    const first = await post(e.url, body);
    const again = await post(e.url, body);
    expect(again.body).toEqual(first.body);
    expect(again.body.results[1].ok).toBe(true);
    expect(e.createdCounts()).toEqual({ contacts: { '1': 1, '2': 1 } });
    expect(e.received).toBe(6);
  });

  it('applies a change whose key matches an earlier, superseded change of the record', async () => {
    const e = await emulator();
    const toAda = batch('contacts', [{ idempotencyKey: 'to-ada', op: 'upsert', key: '1', fields: { name: 'Ada' } }]);
    await post(e.url, toAda);
    await post(e.url, batch('contacts', [{ idempotencyKey: 'to-ada-l', op: 'upsert', key: '1', fields: { name: 'Ada L' } }]));
    await post(e.url, toAda);
    expect(e.records('contacts').map((r) => r.fields)).toEqual([{ name: 'Ada' }]);
    expect(e.createdCount('contacts', '1')).toBe(1);
  });

  it('re-creates a deleted record when the same content comes back', async () => {
    const e = await emulator();
    const create = batch('contacts', [{ idempotencyKey: 'c1', op: 'upsert', key: '1', fields: { name: 'Ada' } }]);
    const first = await post(e.url, create);
    await post(e.url, batch('contacts', [{ idempotencyKey: 'd1', op: 'delete', key: '1' }]));
    const back = await post(e.url, create);
    expect(back.body.results[0].id).not.toBe(first.body.results[0].id);
    expect(e.createdCount('contacts', '1')).toBe(2);
    expect(e.records('contacts')).toHaveLength(1);
  });

  it('rejects an invalid email and applies the rest of the batch', async () => {
    const e = await emulator();
    const res = await post(
      e.url,
      batch('contacts', [
        { idempotencyKey: 'a', op: 'upsert', key: '1', fields: { email: 'ada@example.com' } },
        { idempotencyKey: 'b', op: 'upsert', key: '2', fields: { email: 'not-an-email' } },
        { idempotencyKey: 'c', op: 'upsert', key: '3', fields: { email: 'grace@example.com' } },
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.body.results[1]).toEqual({
      idempotencyKey: 'b',
      ok: false,
      error: 'email "not-an-email" is not a valid email address',
      retryable: false,
    });
    expect(e.records('contacts').map((r) => r.key)).toEqual(['1', '3']);
  });

  it('rejects the keys named by the rejectKeys fault', async () => {
    const e = await emulator({ faults: { rejectKeys: ['2'] } });
    const res = await post(
      e.url,
      batch('contacts', [
        { idempotencyKey: 'a', op: 'upsert', key: '1', fields: {} },
        { idempotencyKey: 'b', op: 'upsert', key: '2', fields: {} },
      ]),
    );
    expect(res.body.results.map((r: any) => r.error ?? 'ok')).toEqual(['ok', 'rejected by receiver (test fault)']);
    // A rejection is not remembered: once the fault is lifted, the same record goes through.
    e.setFaults({});
    const retry = await post(e.url, batch('contacts', [{ idempotencyKey: 'b', op: 'upsert', key: '2', fields: {} }]));
    expect(retry.body.results[0].ok).toBe(true);
  });

  it('answers 400 naming what is wrong with a malformed batch', async () => {
    const e = await emulator();
    const res = await post(e.url, { object: 'contacts', records: [{ idempotencyKey: 'a', op: 'merge', key: '1' }] });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('records[0].op must be one of upsert, update, insert, delete, event');
  });
});

describe('faults', () => {
  const one = (k: string) => batch('contacts', [{ idempotencyKey: k, op: 'upsert', key: k, fields: {} }]);

  it('answers every Nth request with 429 and Retry-After: 1, applying nothing', async () => {
    const e = await emulator({ faults: { status429Every: 2 } });
    const statuses: number[] = [];
    for (const k of ['a', 'b', 'c', 'd']) {
      const res = await post(e.url, one(k));
      statuses.push(res.status);
      if (res.status === 429) expect(res.headers.get('retry-after')).toBe('1');
    }
    expect(statuses).toEqual([200, 429, 200, 429]);
    expect(e.records('contacts').map((r) => r.key)).toEqual(['a', 'c']);
  });

  it('answers 500 to every request at errorRate 1', async () => {
    const e = await emulator({ faults: { errorRate: 1 } });
    expect((await post(e.url, one('a'))).status).toBe(500);
    expect(e.records()).toEqual([]);
  });

  it('answers 503 to the next N requests, then recovers', async () => {
    const e = await emulator({ faults: { failRequests: 2 } });
    const statuses = [];
    for (const k of ['a', 'b', 'c']) statuses.push((await post(e.url, one(k))).status);
    expect(statuses).toEqual([503, 503, 200]);
  });

  it('picks the same requests to fail for the same seed', async () => {
    const statuses = async (seed: number) => {
      const e = await emulator({ faults: { errorRate: 0.5, seed } });
      const seen: number[] = [];
      for (const k of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l']) seen.push((await post(e.url, one(k))).status);
      return seen;
    };
    const first = await statuses(11);
    expect(first).toContain(500);
    expect(first).toContain(200);
    expect(await statuses(11)).toEqual(first);
  });

  it('refuses a body over 10 MB with 413', async () => {
    const e = await emulator();
    const res = await fetch(e.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(11 * 1024 * 1024, 32) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(/larger than 10485760 bytes/);
    expect(e.records()).toEqual([]);
  });

  it('resets the connection without an answer at resetRate 1, and faults can be lifted at runtime', async () => {
    const e = await emulator({ faults: { resetRate: 1 } });
    await expect(post(e.url, one('a'))).rejects.toThrow();
    expect(e.records()).toEqual([]);
    e.setFaults({});
    expect((await post(e.url, one('a'))).status).toBe(200);
    expect(e.requests).toBe(2);
  });
});

describe('inspection and persistence', () => {
  it('serves its state over HTTP for tests in other processes', async () => {
    const e = await emulator();
    await post(e.url, batch('contacts', [{ idempotencyKey: 'a', op: 'upsert', key: '1', fields: { name: 'Ada' } }]));
    await post(e.url, batch('deals', [{ idempotencyKey: 'b', op: 'upsert', key: '9', fields: {} }]));
    const res = await fetch(new URL('/_outflow/records?object=contacts', e.url));
    const body = (await res.json()) as any;
    expect(body.records).toEqual(e.records('contacts'));
    expect(body.records).toHaveLength(1);
    expect(body.createdCounts).toEqual({ contacts: { '1': 1 }, deals: { '9': 1 } });
    expect(body.requests).toBe(2);
    expect(body.received).toBe(2);
  });

  it('keeps records, ids and idempotency across a restart with dataDir', async () => {
    const dataDir = tempDir();
    const create = batch('contacts', [
      { idempotencyKey: 'a', op: 'upsert', key: '1', fields: { name: 'Ada' } },
      { idempotencyKey: 'b', op: 'insert', key: '2', fields: { name: 'Grace' } },
    ]);
    const remove = batch('contacts', [{ idempotencyKey: 'c', op: 'delete', key: '2' }]);
    const first = await emulator({ dataDir });
    const created = await post(first.url, create);
    await post(first.url, remove);
    const before = first.records();
    await first.stop();

    const second = await emulator({ dataDir });
    expect(second.records()).toEqual(before);
    expect(second.records().map((r) => r.key)).toEqual(['1']);
    // The unacknowledged tail a restarted sender re-sends is answered, not applied again.
    const resent = await post(second.url, batch('contacts', [create.records[0]!]));
    expect(resent.body.results).toEqual([created.body.results[0]]);
    expect((await post(second.url, remove)).body.results).toEqual([{ idempotencyKey: 'c', ok: true }]);
    expect(second.createdCounts()).toEqual({ contacts: { '1': 1, '2': 1 } });
    const next = await post(second.url, batch('contacts', [{ idempotencyKey: 'd', op: 'upsert', key: '3', fields: {} }]));
    const earlierIds = created.body.results.map((r: any) => r.id);
    expect(earlierIds).not.toContain(next.body.results[0].id);
  });

  it('survives a log whose last line was cut short by a crash', async () => {
    const dataDir = tempDir();
    const first = await emulator({ dataDir });
    await post(first.url, batch('contacts', [{ idempotencyKey: 'a', op: 'upsert', key: '1', fields: { name: 'Ada' } }]));
    await first.stop();
    appendFileSync(path.join(dataDir, LOG_FILE), '{"t":"put","idempot');

    const second = await emulator({ dataDir });
    expect(second.records().map((r) => r.key)).toEqual(['1']);
    await post(second.url, batch('contacts', [{ idempotencyKey: 'b', op: 'upsert', key: '2', fields: {} }]));
    await second.stop();
    const third = await emulator({ dataDir });
    expect(third.records().map((r) => r.key)).toEqual(['1', '2']);
  });

  it('forgets everything without dataDir', async () => {
    const first = await emulator();
    await post(first.url, batch('contacts', [{ idempotencyKey: 'a', op: 'upsert', key: '1', fields: {} }]));
    await first.stop();
    const second = await emulator();
    expect(second.records()).toEqual([]);
  });
});

describe('events', () => {
  const event = (idempotencyKey: string, key: string, fields?: Record<string, unknown>): Rec => ({ idempotencyKey, op: 'event', key, ...(fields ? { fields } : {}) });

  it('accepts each event once by its idempotency key, even after other events of the same key, and logs each acceptance', async () => {
    const e = await emulator();
    const first = await post(e.url, batch('alerts', [event('e1', 'order-1', { text: 'big order' }), event('e2', 'order-1', { text: 'paid' })]));
    expect(first.body.results).toEqual([
      { idempotencyKey: 'e1', ok: true },
      { idempotencyKey: 'e2', ok: true },
    ]);
    // e1 is not the key's latest event, and is still recognised.
    const again = await post(e.url, batch('alerts', [event('e1', 'order-1', { text: 'big order' })]));
    expect(again.body.results).toEqual([{ idempotencyKey: 'e1', ok: true }]);
    expect(e.writes('alerts').map((w) => [w.t, w.idempotencyKey, w.payload])).toEqual([
      ['event', 'e1', { text: 'big order' }],
      ['event', 'e2', { text: 'paid' }],
    ]);
    // An event is not a record.
    expect(e.records('alerts')).toEqual([]);
  });

  it('refuses an event without a payload (400) and rejects one with an invalid email alone', async () => {
    const e = await emulator();
    const missing = await post(e.url, batch('alerts', [event('e1', 'k')]));
    expect(missing.status).toBe(400);
    expect(missing.body.error).toBe("records[0].fields must be the event's payload, an object");
    const res = await post(e.url, batch('alerts', [event('e2', 'k', { email: 'nope' }), event('e3', 'k', { email: 'a@example.com' })]));
    expect(res.body.results).toEqual([
      { idempotencyKey: 'e2', ok: false, error: 'email "nope" is not a valid email address', retryable: false },
      { idempotencyKey: 'e3', ok: true },
    ]);
    expect(e.writes('alerts').map((w) => w.idempotencyKey)).toEqual(['e3']);
  });

  it('remembers the events it accepted across a restart with dataDir', async () => {
    const dataDir = tempDir();
    const first = await emulator({ dataDir });
    await post(first.url, batch('alerts', [event('e1', 'k', { text: 'hi' })]));
    await first.stop();
    const second = await emulator({ dataDir });
    await post(second.url, batch('alerts', [event('e1', 'k', { text: 'hi' })]));
    expect(second.writes('alerts').map((w) => w.idempotencyKey)).toEqual(['e1']);
  });
});
