import { isOutflowError, type Operation, type Row } from '@outflow/core';
import { createTestContext, type TestContext } from '@outflow/testing';
import segment, { configSchema, type SegmentConfig } from '@outflow/connector-segment';
import { start, type SegmentEmulator } from '@outflow/connector-segment/emulator';
import { afterEach, describe, expect, it } from 'vitest';

// What a write does at Segment, counted in the emulator's logs: batching, messageIds,
// dedupe, row errors, and how each failure of a batch request surfaces.
const destination = segment.destination!;
let emu: SegmentEmulator | undefined;
let ctx: TestContext<SegmentConfig> | undefined;
afterEach(async () => {
  await ctx?.dispose();
  await emu?.stop();
  [ctx, emu] = [undefined, undefined];
});

async function connect(config: Partial<SegmentConfig> = {}, options: Parameters<typeof start>[0] = {}): Promise<{ emu: SegmentEmulator; ctx: TestContext<SegmentConfig> }> {
  emu = await start(options);
  ctx = createTestContext<SegmentConfig>({ ...emu.config, timeoutMs: 2_000, ...config }, { schema: configSchema });
  return { emu, ctx };
}

/** An event operation as the engine builds it from a trigger. */
const event = (i: number, fields: Row, committedAt?: string): Operation => ({
  kind: 'event',
  key: `k${i}`,
  fields,
  idempotencyKey: `idem-${i}`,
  event: { trigger: 'order-paid', change: 'insert', ...(committedAt === undefined ? {} : { committedAt }) },
});
const paid = (i: number) => event(i, { userId: `u${i}`, event: 'Order Paid', properties: { order: i, total: 10 * i } });

describe('segment destination, against the emulator', () => {
  it('sends a write of many events as one batch request, each with its idempotency key as messageId', async () => {
    const { emu, ctx } = await connect();
    const ops = Array.from({ length: 20 }, (_, i) => paid(i));
    expect(await destination.write(ctx, 'track', ops)).toEqual(ops.map(() => ({ ok: true })));
    expect(emu.requests()).toEqual([{ path: '/v1/batch', status: 200, messageIds: ops.map((op) => op.idempotencyKey) }]);
    expect(emu.calls()[3]).toMatchObject({ type: 'track', userId: 'u3', event: 'Order Paid', properties: { order: 3, total: 30 }, messageId: 'idem-3' });
  });

  it('sends identify, page and group calls with their fields; an integer id as its digits; the commit time as timestamp', async () => {
    const { emu, ctx } = await connect();
    const at = '2026-11-30T10:00:00.000Z';
    expect(await destination.write(ctx, 'identify', [event(1, { userId: 7, traits: { plan: 'pro' }, anonymousId: null }, at)])).toEqual([{ ok: true }]);
    expect(await destination.write(ctx, 'page', [event(2, { anonymousId: 'a2', name: 'Pricing', properties: { path: '/pricing' } })])).toEqual([{ ok: true }]);
    expect(await destination.write(ctx, 'group', [event(3, { userId: 'u3', groupId: 'acme', traits: { seats: 5 } })])).toEqual([{ ok: true }]);
    const [identify, page, group] = emu.calls();
    expect(identify).toMatchObject({ type: 'identify', userId: '7', traits: { plan: 'pro' }, timestamp: at });
    expect(identify).not.toHaveProperty('anonymousId');
    expect(page).toMatchObject({ type: 'page', anonymousId: 'a2', name: 'Pricing', properties: { path: '/pricing' } });
    expect(group).toMatchObject({ type: 'group', userId: 'u3', groupId: 'acme', traits: { seats: 5 } });
  });

  it('sent again with the same keys, Segment holds each event once; its request log shows the second send', async () => {
    const { emu, ctx } = await connect();
    const ops = [paid(1), paid(2), paid(3)];
    await destination.write(ctx, 'track', ops);
    expect(await destination.write(ctx, 'track', ops)).toEqual(ops.map(() => ({ ok: true })));
    expect(emu.calls().map((c) => c.messageId)).toEqual(['idem-1', 'idem-2', 'idem-3']);
    expect(emu.requests().flatMap((r) => r.messageIds)).toEqual([...ops, ...ops].map((op) => op.idempotencyKey));
  });

  it('rejects, unsent and with the reason, an event Segment would drop or refuse; the rest of the write lands', async () => {
    const { emu, ctx } = await connect();
    const results = await destination.write(ctx, 'track', [
      paid(1),
      event(2, { userId: 'u2' }),
      event(3, { event: 'Order Paid' }),
      event(4, { userId: 'u4', event: 'Order Paid', colour: 'red' }),
      event(5, { userId: 'u5', event: 'Order Paid', timestamp: 'yesterday' }),
      event(6, { userId: 'u6', event: 'Order Paid', properties: 'not an object' }),
      event(7, { userId: 'u7', event: 'Order Paid', properties: { blob: 'x'.repeat(40 * 1024) } }),
      paid(8),
    ]);
    expect(results[0]).toEqual({ ok: true });
    expect(results[7]).toEqual({ ok: true });
    expect(results.slice(1, 7)).toEqual([
      { ok: false, retryable: false, reason: 'a track call needs event' },
      { ok: false, retryable: false, reason: 'a track call needs userId or anonymousId (Segment drops a call with neither)' },
      { ok: false, retryable: false, reason: expect.stringContaining('a track call has no field "colour"') },
      { ok: false, retryable: false, reason: 'track: timestamp must be an ISO 8601 date-time, not "yesterday"' },
      { ok: false, retryable: false, reason: 'track: properties must be an object, not "not an object"' },
      { ok: false, retryable: false, reason: expect.stringMatching(/^a track call of \d+ bytes is over the 31744 Outflow sends \(Segment refuses a call over 32 KB\)$/) },
    ]);
    expect(emu.calls().map((c) => c.messageId)).toEqual(['idem-1', 'idem-8']);
    expect(emu.dropped()).toEqual([]);
  });

  it('throws a 429 for the whole write as retryable, not applied, with its Retry-After; the next write lands it once', async () => {
    const { emu, ctx } = await connect({}, { faults: { status429Every: 1 } });
    const ops = [paid(1), paid(2)];
    const err = await destination.write(ctx, 'track', ops).catch((e: unknown) => e);
    expect(isOutflowError(err, 'OUTFLOW_DESTINATION')).toBe(true);
    expect(err).toMatchObject({ retryable: true, notApplied: true, retryAfterMs: 1_000 });
    emu.setFaults({});
    expect(await destination.write(ctx, 'track', ops)).toEqual([{ ok: true }, { ok: true }]);
    // The SDK did not retry on its own: one 429, then the engine's send.
    expect(emu.requests().map((r) => r.status)).toEqual([429, 200]);
    expect(emu.calls()).toHaveLength(2);
  });

  it('throws a lost answer for the whole write as retryable; sent again, each event is held once', async () => {
    const { emu, ctx } = await connect({}, { faults: { loseAnswers: 1, lostAnswer: 'reset' } });
    const ops = [paid(1), paid(2)];
    const err = await destination.write(ctx, 'track', ops).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'OUTFLOW_DESTINATION', retryable: true });
    expect(await destination.write(ctx, 'track', ops)).toEqual([{ ok: true }, { ok: true }]);
    expect(emu.requests().map((r) => r.status)).toEqual([0, 200]);
    expect(emu.calls().map((c) => c.messageId)).toEqual(['idem-1', 'idem-2']);
  });

  it('throws a 5xx and an unreachable host as retryable, naming Segment and never the write key', async () => {
    const writeKey = 'wk-secret-0123456789';
    const { ctx } = await connect({ writeKey }, { writeKey, faults: { failRequests: 1 } });
    const unavailable = await destination.write(ctx, 'track', [paid(1)]).catch((e: unknown) => e);
    expect(unavailable).toMatchObject({ code: 'OUTFLOW_DESTINATION', retryable: true, message: expect.stringContaining('HTTP 503') });
    const away = createTestContext<SegmentConfig>({ writeKey, host: 'http://127.0.0.1:9' }, { schema: configSchema });
    const unreachable = await destination.write(away, 'track', [paid(1)]).catch((e: unknown) => e);
    await away.dispose();
    expect(unreachable).toMatchObject({ code: 'OUTFLOW_DESTINATION', retryable: true, message: expect.stringContaining('could not reach Segment at http://127.0.0.1:9') });
    for (const err of [unavailable, unreachable]) expect(JSON.stringify({ message: (err as Error).message, stack: (err as Error).stack })).not.toContain(writeKey);
  });

  it('declares events only, deduped by key, and refuses an object that is not a Segment call', async () => {
    const { ctx } = await connect();
    expect(await destination.capabilities(ctx, 'track')).toMatchObject({ operations: ['event'], idempotency: 'key', budget: 'connector' });
    expect(() => destination.capabilities(ctx, 'contacts')).toThrow(/Segment has no call "contacts" here \(it has: track, identify, page, group\)/);
    const { objects } = await destination.discover(ctx);
    expect(objects.map((o) => o.name)).toEqual(['track', 'identify', 'page', 'group']);
  });
});
