import { isOutflowError, type Operation, type RateLimit, type Row } from '@outflow/core';
import { createTestContext, type TestContext } from '@outflow/testing';
import braze, { configSchema, type BrazeConfig } from '@outflow/connector-braze';
import { SANDBOX_CAMPAIGN, SANDBOX_CANVAS, start, type BrazeEmulator, type BrazeEmulatorOptions } from '@outflow/connector-braze/emulator';
import { afterEach, describe, expect, it } from 'vitest';

// What a write does at Braze, counted in the emulator's logs: one request per write, row
// errors, per-object idempotency, and how each failure of a request surfaces.
const destination = braze.destination!;
let emu: BrazeEmulator | undefined;
let ctx: TestContext<BrazeConfig> | undefined;
afterEach(async () => {
  if (ctx !== undefined) await braze.close!(ctx);
  await ctx?.dispose();
  await emu?.stop();
  [ctx, emu] = [undefined, undefined];
});

async function connect(options: BrazeEmulatorOptions = {}): Promise<{ emu: BrazeEmulator; ctx: TestContext<BrazeConfig> }> {
  emu = await start(options);
  ctx = createTestContext<BrazeConfig>({ ...emu.config, timeoutMs: 2_000 }, { schema: configSchema });
  return { emu, ctx };
}

const event = (i: number, fields: Row, committedAt?: string): Operation => ({
  kind: 'event',
  key: `k${i}`,
  fields,
  idempotencyKey: `idem-${i}`,
  event: { trigger: 'order-paid', change: 'update', ...(committedAt === undefined ? {} : { committedAt }) },
});
const paid = (i: number) => event(i, { external_id: `u${i}`, event: { name: 'order_paid', properties: { order: i } } });

describe('braze destination, against the emulator', () => {
  it('sends a write as one /users/track request: attributes, events and purchases, each event and purchase carrying its idempotency key', async () => {
    const { emu, ctx } = await connect();
    const at = '2026-11-30T10:00:00.000Z';
    const ops = [
      event(1, { external_id: 7, attributes: { plan: 'pro' }, event: { name: 'order_paid', properties: { total: 42 } } }, at),
      event(2, { email: 'b@example.com', purchase: { product_id: 'sku-1', currency: 'EUR', price: 9.5, quantity: 2 } }, at),
      paid(3),
    ];
    expect(await destination.write(ctx, 'users/track', ops)).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(emu.requests()).toEqual([{ path: '/users/track', status: 201 }]);
    expect(emu.users().find((u) => u.identifiers['external_id'] === '7')?.attributes).toEqual({ plan: 'pro' });
    expect(emu.events().map((e) => e.object)).toEqual([
      { external_id: '7', name: 'order_paid', time: at, properties: { total: 42, outflow_idempotency_key: 'idem-1' } },
      expect.objectContaining({ external_id: 'u3', name: 'order_paid', properties: { order: 3, outflow_idempotency_key: 'idem-3' } }),
    ]);
    expect(emu.purchases().map((p) => p.object)).toEqual([
      { email: 'b@example.com', product_id: 'sku-1', currency: 'EUR', price: 9.5, quantity: 2, time: at, properties: { outflow_idempotency_key: 'idem-2' } },
    ]);
  });

  it('rejects, unsent and with the reason, a payload Braze cannot take, and maps the objects Braze refuses to their operations', async () => {
    const { emu, ctx } = await connect({ blockedExternalIds: ['dummy'] });
    const results = await destination.write(ctx, 'users/track', [
      paid(1),
      event(2, { event: { name: 'x' } }),
      event(3, { external_id: 'u3', colour: 'red' }),
      event(4, { external_id: 'u4', purchase: { product_id: 'p', currency: 'euro', price: 1 } }),
      event(5, { external_id: 'u5' }),
      event(6, { external_id: 'dummy', event: { name: 'order_paid' } }),
      paid(7),
    ]);
    expect(results).toEqual([
      { ok: true },
      { ok: false, retryable: false, reason: 'users/track needs one of external_id, braze_id, email, phone, user_alias to name the user' },
      { ok: false, retryable: false, reason: expect.stringContaining('users/track has no field "colour"') },
      { ok: false, retryable: false, reason: 'users/track: purchase: currency must be an ISO 4217 code such as USD, not "euro"' },
      { ok: false, retryable: false, reason: 'users/track needs attributes, an event or a purchase' },
      { ok: false, retryable: false, reason: 'Braze refused its event: provided external_id is blacklisted and disallowed' },
      { ok: true },
    ]);
    expect(emu.requests()).toHaveLength(1);
    expect(emu.events().map((e) => e.object['external_id'])).toEqual(['u1', 'u7']);
  });

  it('declares each object its own idempotency: attributes key, events and sends none; users/attributes refuses an event', async () => {
    const { ctx } = await connect();
    const caps = async (object: string) => {
      const c = await destination.capabilities(ctx, object);
      return [c.idempotency, c.maxBatchSize, c.rateLimits];
    };
    expect(await caps('users/track')).toEqual(['none', 75, [{ requests: 3_000, perMs: 3_000 }]]);
    expect(await caps('users/attributes')).toEqual(['key', 75, [{ requests: 3_000, perMs: 3_000 }]]);
    expect(await caps(`campaign:${SANDBOX_CAMPAIGN}`)).toEqual(['none', 50, [{ requests: 250_000, perMs: 3_600_000 }]]);
    expect(await caps('canvas:c1')).toEqual(['none', 50, [{ requests: 250_000, perMs: 3_600_000 }]]);
    expect(() => destination.capabilities(ctx, 'contacts')).toThrow(/Braze has no object "contacts"/);
    expect(await destination.write(ctx, 'users/attributes', [paid(1)])).toEqual([{ ok: false, retryable: false, reason: expect.stringContaining('users/attributes has no field "event"') }]);
  });

  it('sends a write to a campaign as one request of recipients, and to a Canvas with canvas_entry_properties', async () => {
    const { emu, ctx } = await connect();
    const campaign = [
      event(1, { external_user_id: 'u1', trigger_properties: { order: 1 } }),
      event(2, { trigger_properties: { order: 2 } }),
      event(3, { user_alias: { alias_name: 'dev-3', alias_label: 'device' }, trigger_properties: { order: 3 } }),
    ];
    expect(await destination.write(ctx, `campaign:${SANDBOX_CAMPAIGN}`, campaign)).toEqual([
      { ok: true },
      { ok: false, retryable: false, reason: 'a campaign recipient needs exactly one of external_user_id and user_alias' },
      { ok: true },
    ]);
    expect(await destination.write(ctx, `canvas:${SANDBOX_CANVAS}`, [event(4, { external_user_id: 'u4', canvas_entry_properties: { step: 1 } })])).toEqual([{ ok: true }]);
    expect(emu.requests()).toEqual([
      { path: '/campaigns/trigger/send', status: 201 },
      { path: '/canvas/trigger/send', status: 201 },
    ]);
    expect(emu.sends().map((s) => [s.kind, s.recipient])).toEqual([
      ['campaign', { external_user_id: 'u1', trigger_properties: { order: 1 } }],
      ['campaign', { user_alias: { alias_name: 'dev-3', alias_label: 'device' }, trigger_properties: { order: 3 } }],
      ['canvas', { external_user_id: 'u4', canvas_entry_properties: { step: 1 } }],
    ]);
  });

  it('throws a send to an unknown campaign for the whole write, not retryable, with Braze\'s message', async () => {
    const { emu, ctx } = await connect();
    const err = await destination.write(ctx, 'campaign:nope', [event(1, { external_user_id: 'u1' })]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'OUTFLOW_DESTINATION', retryable: false, message: expect.stringContaining('HTTP 400: Invalid Campaign ID') });
    expect(emu.sends()).toEqual([]);
  });

  it('throws a 429 as retryable and not applied, with the wait until X-RateLimit-Reset; a lost answer as retryable and maybe applied', async () => {
    const { emu, ctx } = await connect({ faults: { status429Every: 1 } });
    const throttled = await destination.write(ctx, 'users/track', [paid(1)]).catch((e: unknown) => e);
    expect(isOutflowError(throttled, 'OUTFLOW_DESTINATION')).toBe(true);
    expect(throttled).toMatchObject({ retryable: true, notApplied: true, retryAfterMs: expect.any(Number) });
    emu.setFaults({ loseAnswers: 1, lostAnswer: 'reset' });
    const lost = await destination.write(ctx, 'users/track', [paid(2)]).catch((e: unknown) => e);
    expect(lost).toMatchObject({ code: 'OUTFLOW_DESTINATION', retryable: true, notApplied: false });
    // Applied, though its answer was lost: a re-send would record the event twice, which
    // is why users/track is `none` and the engine parks it instead.
    expect(emu.events().map((e) => e.object['external_id'])).toEqual(['u2']);
    expect(emu.requests().map((r) => r.status)).toEqual([429, 0]);
  });

  it('keeps to a lower X-RateLimit-Limit than declared, from the first answer on', async () => {
    const { ctx } = await connect({ limits: { usersTrack: { requests: 40, perMs: 3_000 } } });
    const added: RateLimit[] = [];
    const addLimit = ctx.rateBudget.addLimit.bind(ctx.rateBudget);
    ctx.rateBudget.addLimit = (limit) => (added.push(limit), addLimit(limit));
    await destination.write(ctx, 'users/track', [paid(1)]);
    await destination.write(ctx, 'users/track', [paid(2)]);
    expect(added).toEqual([{ requests: 40, perMs: 3_000 }]);
  });

  it('names the REST API key setting, never its value, when Braze refuses it', async () => {
    const { emu } = await connect();
    const key = 'wrong-key-0123456789';
    const wrong = createTestContext<BrazeConfig>({ ...emu.config, restApiKey: key }, { schema: configSchema });
    const err = await destination.write(wrong, 'users/track', [paid(1)]).catch((e: unknown) => e);
    await braze.close!(wrong);
    await wrong.dispose();
    expect(err).toMatchObject({ retryable: false, message: expect.stringContaining('HTTP 401: Invalid API key') });
    expect((err as Error).message).toContain('check `restApiKey`');
    expect(JSON.stringify({ message: (err as Error).message, stack: (err as Error).stack })).not.toContain(key);
  });
});
