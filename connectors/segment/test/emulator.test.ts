import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Analytics, type AnalyticsSettings } from '@segment/analytics-node';
import { MAX_BATCH_BYTES, MAX_CALL_BYTES, start, type SegmentEmulator, type SegmentEmulatorOptions } from '@outflow/connector-segment/emulator';
import { afterEach, describe, expect, it } from 'vitest';

// The emulator driven by analytics-node itself, without the connector: what it answers.
const running: SegmentEmulator[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const e of running.splice(0)) await e.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function emulator(options: SegmentEmulatorOptions = {}): Promise<SegmentEmulator> {
  const emu = await start(options);
  running.push(emu);
  return emu;
}

/** A client of the emulated source, as an application would make one. */
const client = (emu: SegmentEmulator, settings: Partial<AnalyticsSettings> = {}) => new Analytics({ writeKey: emu.config.writeKey, host: emu.url, flushInterval: 50, ...settings });

/** The error the SDK's callback reports for a call, or undefined once its batch was accepted. */
function outcome(send: (cb: (err?: unknown) => void) => void): Promise<unknown> {
  return new Promise((resolve) => send((err) => resolve(err)));
}

/** A raw request to the Tracking API, for what analytics-node never sends. */
async function post(emu: SegmentEmulator, path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const basic = `Basic ${Buffer.from(`${emu.config.writeKey}:`).toString('base64')}`;
  const res = await fetch(emu.url + path, { method: 'POST', headers: { 'content-type': 'application/json', authorization: basic, ...headers }, body });
  return { status: res.status, body: await res.json() };
}

describe('segment emulator, through analytics-node', () => {
  it('takes a track and an identify in one batch request, each with its messageId', async () => {
    const emu = await emulator();
    const analytics = client(emu, { flushAt: 2 });
    const before = Date.now();
    const [a, b] = await Promise.all([
      outcome((cb) => analytics.track({ userId: 'u1', event: 'Order Paid', properties: { total: 42 }, messageId: 'm-1' }, cb)),
      outcome((cb) => analytics.identify({ userId: 'u1', traits: { plan: 'pro' }, messageId: 'm-2' }, cb)),
    ]);
    expect([a, b]).toEqual([undefined, undefined]);
    expect(emu.requests()).toEqual([{ path: '/v1/batch', status: 200, messageIds: ['m-1', 'm-2'] }]);
    expect(emu.calls()).toEqual([
      expect.objectContaining({ type: 'track', userId: 'u1', event: 'Order Paid', properties: { total: 42 }, messageId: 'm-1' }),
      expect.objectContaining({ type: 'identify', userId: 'u1', traits: { plan: 'pro' }, messageId: 'm-2' }),
    ]);
    // Each call carries when the API received it, as Segment stamps receivedAt.
    for (const call of emu.calls()) expect(Date.parse(call.receivedAt)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
  });

  it('holds a call sent again with the same messageId once, while its request log shows both sends', async () => {
    const emu = await emulator();
    for (let i = 0; i < 2; i++) {
      const analytics = client(emu);
      expect(await outcome((cb) => analytics.track({ anonymousId: 'a1', event: 'Signed Up', messageId: 'same' }, cb))).toBeUndefined();
    }
    expect(emu.calls().map((c) => c.messageId)).toEqual(['same']);
    expect(emu.requests().flatMap((r) => r.messageIds)).toEqual(['same', 'same']);
  });

  it('answers 429 with Retry-After past its request limit; the SDK waits it out and the call is held once', async () => {
    const emu = await emulator({ limit: { requests: 1, perMs: 1_000 } });
    const analytics = client(emu, { flushAt: 1 });
    expect(await outcome((cb) => analytics.track({ userId: 'u1', event: 'First', messageId: 'm-1' }, cb))).toBeUndefined();
    expect(await outcome((cb) => analytics.track({ userId: 'u1', event: 'Second', messageId: 'm-2' }, cb))).toBeUndefined();
    const statuses = emu.requests().map((r) => r.status);
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 200)).toHaveLength(2);
    expect(emu.calls().map((c) => c.messageId)).toEqual(['m-1', 'm-2']);
  });

  it('loses the answer after taking the calls; the SDK sends the batch again and the call is held once', async () => {
    const emu = await emulator({ faults: { loseAnswers: 1, lostAnswer: 'error' } });
    const analytics = client(emu, { flushAt: 1, maxRetries: 2 });
    expect(await outcome((cb) => analytics.track({ userId: 'u1', event: 'Paid', messageId: 'm-1' }, cb))).toBeUndefined();
    expect(emu.requests().map((r) => [r.status, r.messageIds])).toEqual([
      [0, ['m-1']],
      [200, ['m-1']],
    ]);
    expect(emu.calls()).toHaveLength(1);
  });

  it('answers 200 for calls it cannot use and drops them, as it does every call of an unknown write key', async () => {
    const emu = await emulator();
    expect(await post(emu, '/v1/track', JSON.stringify({ userId: 'u1', messageId: 'no-name' }))).toEqual({ status: 200, body: { success: true } });
    expect(await post(emu, '/v1/identify', JSON.stringify({ traits: { a: 1 }, messageId: 'no-id' }))).toEqual({ status: 200, body: { success: true } });
    const stranger = new Analytics({ writeKey: 'some-other-key', host: emu.url, flushAt: 1 });
    expect(await outcome((cb) => stranger.track({ userId: 'u1', event: 'Paid', messageId: 'stranger' }, cb))).toBeUndefined();
    expect(emu.calls()).toEqual([]);
    expect(emu.dropped().map((d) => [d.call['messageId'], d.reason])).toEqual([
      ['no-name', 'a track call needs an event name'],
      ['no-id', 'no_user_anon_id: the call has neither userId nor anonymousId'],
      ['stranger', 'unknown write key'],
    ]);
  });

  it('refuses with 400 what Segment refuses: invalid JSON, no write key, a batch over 500 KB, a call over 32 KB', async () => {
    const emu = await emulator();
    expect((await post(emu, '/v1/batch', '{"batch": [')).status).toBe(400);
    expect((await post(emu, '/v1/batch', JSON.stringify({ batch: [{ type: 'track', userId: 'u', event: 'e' }] }), { authorization: '' })).status).toBe(400);
    const big = 'x'.repeat(MAX_CALL_BYTES);
    expect((await post(emu, '/v1/batch', JSON.stringify({ batch: [{ type: 'track', userId: 'u', event: 'e', properties: { big } }] }))).status).toBe(400);
    expect((await post(emu, '/v1/track', JSON.stringify({ userId: 'u', event: 'e', properties: { big } }))).status).toBe(400);
    const many = Array.from({ length: 20 }, (_, i) => ({ type: 'track', userId: 'u', event: 'e', messageId: `m${i}`, properties: { pad: 'y'.repeat(30 * 1024) } }));
    expect(Buffer.byteLength(JSON.stringify({ batch: many }))).toBeGreaterThan(MAX_BATCH_BYTES);
    expect((await post(emu, '/v1/batch', JSON.stringify({ batch: many }))).status).toBe(400);
    expect(emu.calls()).toEqual([]);
  });

  it('keeps the accepted calls in its log in dataDir, and still dedupes them after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'segment-emulator-'));
    dirs.push(dir);
    const first = await emulator({ dataDir: dir });
    expect(await outcome((cb) => client(first, { flushAt: 1 }).track({ userId: 'u1', event: 'Paid', messageId: 'kept' }, cb))).toBeUndefined();
    await first.stop();
    const second = await emulator({ dataDir: dir });
    expect(await outcome((cb) => client(second, { flushAt: 1 }).track({ userId: 'u1', event: 'Paid', messageId: 'kept' }, cb))).toBeUndefined();
    expect(second.calls().map((c) => c.messageId)).toEqual(['kept']);
  });
});
