import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { SANDBOX_CAMPAIGN, SANDBOX_CANVAS, start, type BrazeEmulator, type BrazeEmulatorOptions } from '@outflow/connector-braze/emulator';
import { afterEach, describe, expect, it } from 'vitest';

// The emulator driven through undici, as a Braze REST client would call it (Braze ships no
// Node server SDK), without the connector: what it answers.
const running: BrazeEmulator[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const e of running.splice(0)) await e.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function emulator(options: BrazeEmulatorOptions = {}): Promise<BrazeEmulator> {
  const emu = await start(options);
  running.push(emu);
  return emu;
}

async function post(emu: BrazeEmulator, path: string, body: unknown, key = emu.config.restApiKey): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
  const res = await request(emu.url + path, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown>, headers: res.headers };
}

const at = '2026-11-30T10:00:00Z';

describe('braze emulator, through undici', () => {
  it('refuses a wrong REST API key with 401, without rate-limit headers, applying nothing', async () => {
    const emu = await emulator();
    const answer = await post(emu, '/users/track', { attributes: [{ external_id: 'u1', plan: 'pro' }] }, 'not-the-key');
    expect(answer).toMatchObject({ status: 401, body: { message: 'Invalid API key', errors: [] } });
    expect(answer.headers['x-ratelimit-limit']).toBeUndefined();
    expect(emu.users()).toEqual([]);
  });

  it('tracks attributes, an event and a purchase: 201 with the counts and X-RateLimit headers; a repeated event is a second event', async () => {
    const emu = await emulator();
    const body = {
      attributes: [{ external_id: 'u1', plan: 'pro' }],
      events: [{ external_id: 'u1', name: 'order_paid', time: at, properties: { total: 42 } }],
      purchases: [{ external_id: 'u1', product_id: 'sku-1', currency: 'EUR', price: 9.5, quantity: 2, time: at }],
    };
    const answer = await post(emu, '/users/track', body);
    expect(answer).toMatchObject({ status: 201, body: { message: 'success', attributes_processed: 1, events_processed: 1, purchases_processed: 1 } });
    expect(answer.headers).toMatchObject({ 'x-ratelimit-limit': '3000', 'x-ratelimit-remaining': '2999', 'x-ratelimit-reset': expect.stringMatching(/^\d+$/) });
    expect(emu.users()).toEqual([expect.objectContaining({ identifiers: { external_id: 'u1' }, attributes: { plan: 'pro' } })]);
    expect((await post(emu, '/users/track', { events: body.events })).status).toBe(201);
    expect(emu.events().map((e) => e.object['name'])).toEqual(['order_paid', 'order_paid']);
    expect(emu.purchases()).toHaveLength(1);
  });

  it('lists the objects it refuses in errors ({ type, input_array, index }) and processes the rest', async () => {
    const emu = await emulator();
    const answer = await post(emu, '/users/track', {
      events: [
        { external_id: 'u1', name: 'ok', time: at },
        { external_id: 'u1', time: at },
        { name: 'nobody', time: at },
      ],
      purchases: [{ external_id: 'u1', product_id: 'sku', currency: 'euro', price: 1, time: at }],
    });
    expect(answer).toEqual({
      status: 201,
      headers: expect.anything(),
      body: {
        message: 'success',
        events_processed: 1,
        purchases_processed: 0,
        errors: [
          { type: "'name' is required", input_array: 'events', index: 1 },
          { type: "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required", input_array: 'events', index: 2 },
          { type: "'currency' must be a valid ISO 4217 currency code", input_array: 'purchases', index: 0 },
        ],
      },
    });
    expect(emu.events().map((e) => e.object['name'])).toEqual(['ok']);
  });

  it('refuses a request with more than 75 events as a whole: 400, nothing processed', async () => {
    const emu = await emulator();
    const events = Array.from({ length: 76 }, (_, i) => ({ external_id: `u${i}`, name: 'e', time: at }));
    expect(await post(emu, '/users/track', { events })).toMatchObject({ status: 400, body: { message: 'Max Input Length Exceeded' } });
    expect(emu.events()).toEqual([]);
  });

  it('answers 429 once the window is spent, with X-RateLimit-Remaining 0 and the reset', async () => {
    const emu = await emulator({ limits: { usersTrack: { requests: 2, perMs: 60_000 } } });
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await post(emu, '/users/track', { attributes: [{ external_id: 'u1', n: i }] }));
    expect(answers.map((a) => a.status)).toEqual([201, 201, 429]);
    expect(answers[2]!.headers).toMatchObject({ 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0' });
    expect(emu.users()[0]!.attributes).toEqual({ n: 1 });
  });

  it('answers a throttling fault 429 with a reset a second away, whatever window the endpoint counts in', async () => {
    const emu = await emulator({ faults: { status429Every: 1 } });
    const answer = await post(emu, '/campaigns/trigger/send', { campaign_id: SANDBOX_CAMPAIGN, recipients: [{ external_user_id: 'u1' }] });
    expect(answer).toMatchObject({ status: 429, headers: { 'x-ratelimit-remaining': '0' } });
    expect(Number(answer.headers['x-ratelimit-reset'])).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 1);
    expect(emu.sends()).toEqual([]);
  });

  it('sends a campaign to recipients: one dispatch_id; a recipient without a profile gets nothing unless send_to_existing_only is false', async () => {
    const emu = await emulator();
    await post(emu, '/users/track', { attributes: [{ external_id: 'u1', plan: 'pro' }] });
    const before = Date.now();
    const answer = await post(emu, '/campaigns/trigger/send', {
      campaign_id: SANDBOX_CAMPAIGN,
      broadcast: false,
      recipients: [
        { external_user_id: 'u1', trigger_properties: { order: 7 } },
        { external_user_id: 'u2' },
        { external_user_id: 'u3', send_to_existing_only: false, attributes: { plan: 'free' } },
      ],
    });
    expect(answer).toMatchObject({ status: 201, body: { message: 'success', dispatch_id: expect.any(String) } });
    expect(emu.sends().map((s) => [s.recipient['external_user_id'], s.sent, s.dispatchId])).toEqual([
      ['u1', true, answer.body['dispatch_id']],
      ['u2', false, answer.body['dispatch_id']],
      ['u3', true, answer.body['dispatch_id']],
    ]);
    // Each send says when Braze accepted it.
    for (const send of emu.sends()) expect(send.at).toBeGreaterThanOrEqual(before);
    expect(emu.users().find((u) => u.identifiers['external_id'] === 'u3')?.attributes).toEqual({ plan: 'free' });
  });

  it('refuses a triggered send as a whole: an unknown campaign, no recipients, more than 50, a recipient without an id', async () => {
    const emu = await emulator();
    const send = (body: unknown) => post(emu, '/campaigns/trigger/send', body);
    expect(await send({ campaign_id: 'nope', recipients: [{ external_user_id: 'u1' }] })).toMatchObject({ status: 400, body: { message: 'Invalid Campaign ID' } });
    expect(await send({ campaign_id: SANDBOX_CAMPAIGN, recipients: [] })).toMatchObject({ status: 400, body: { message: 'No Recipients' } });
    const many = Array.from({ length: 51 }, (_, i) => ({ external_user_id: `u${i}` }));
    expect((await send({ campaign_id: SANDBOX_CAMPAIGN, recipients: many })).status).toBe(400);
    expect((await send({ campaign_id: SANDBOX_CAMPAIGN, recipients: [{ trigger_properties: {} }] })).status).toBe(400);
    expect(emu.sends()).toEqual([]);
  });

  it('sends a Canvas with canvas_entry_properties', async () => {
    const emu = await emulator();
    const answer = await post(emu, '/canvas/trigger/send', { canvas_id: SANDBOX_CANVAS, recipients: [{ external_user_id: 'u1', canvas_entry_properties: { step: 1 } }] });
    expect(answer.status).toBe(201);
    expect(emu.sends()).toEqual([expect.objectContaining({ kind: 'canvas', id: SANDBOX_CANVAS, recipient: { external_user_id: 'u1', canvas_entry_properties: { step: 1 } } })]);
  });

  it('applies a request and then loses its answer; keeps users, events and sends across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'braze-emulator-'));
    dirs.push(dir);
    const first = await emulator({ dataDir: dir, faults: { loseAnswers: 1, lostAnswer: 'error' } });
    const lost = await post(first, '/users/track', { attributes: [{ external_id: 'u1', plan: 'pro' }], events: [{ external_id: 'u1', name: 'e', time: at }] });
    expect(lost.status).toBe(500);
    await post(first, '/campaigns/trigger/send', { campaign_id: SANDBOX_CAMPAIGN, recipients: [{ external_user_id: 'u1' }] });
    await first.stop();
    const second = await emulator({ dataDir: dir });
    expect(second.users()).toEqual([expect.objectContaining({ attributes: { plan: 'pro' } })]);
    expect(second.events()).toHaveLength(1);
    expect(second.sends()).toEqual([expect.objectContaining({ sent: true })]);
  });
});
