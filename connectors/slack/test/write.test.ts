import { isOutflowError, type Operation, type RecordResult } from '@outflow/core';
import { capturingLogger, createTestContext, type TestContext } from '@outflow/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import connector, { POST_LIMIT, type SlackConfig } from '../src/index.js';
import { start, type LoggedRequest, type SlackEmulator } from '../src/emulator/index.js';

const slack = connector.destination!;
let emulator: SlackEmulator;
const contexts: TestContext<SlackConfig>[] = [];
let seq = 0;

/** A context as the engine gives one, its budget keeping the declared limits when `paced`. */
function context(options: { paced?: boolean; config?: Partial<SlackConfig>; logger?: ReturnType<typeof capturingLogger>['logger'] } = {}): TestContext<SlackConfig> {
  const ctx = createTestContext<SlackConfig>({ ...emulator.config, timeoutMs: 2_000, ...options.config }, { schema: connector.config, ...(options.logger ? { logger: options.logger } : {}) });
  if (options.paced) ctx.rateBudget.addLimit(POST_LIMIT);
  contexts.push(ctx);
  return ctx;
}

/** An event operation with a fresh idempotency key. */
function event(fields: Operation['fields'], committedAt?: string): Operation {
  const n = ++seq;
  return { kind: 'event', key: `k${n}`, fields, idempotencyKey: `sync:k${n}:order-paid:${n}`, event: { trigger: 'order-paid', change: 'insert', ...(committedAt ? { committedAt } : {}) } };
}

const posts = (channel: string): LoggedRequest[] => emulator.requests().filter((r) => r.method === 'chat.postMessage' && r.channel === channel);
const texts = (): string[] => emulator.messages().map((m) => m.text);

beforeEach(async () => {
  emulator = await start();
});

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.dispose()));
  await emulator.stop();
});

describe('Slack destination', () => {
  it('checks the token with auth.test, and lists the channels the app can post in', async () => {
    const ctx = context();
    await slack.check(ctx);
    const catalog = await slack.discover(ctx);
    expect(catalog.objects.map((o) => o.name)).toEqual(['#general', '#alerts', '#sales', '#finance']);
    expect(catalog.objects[0]).toMatchObject({ matchKeys: [], modes: ['event'] });
    const refused = await slack.check(context({ config: { token: 'xoxb-revoked-token-123' } })).catch((e: unknown) => e);
    expect(isOutflowError(refused, 'OUTFLOW_CHECK_FAILED')).toBe(true);
    expect((refused as Error).message).toMatch(/invalid_auth.*check `token`/);
  });

  it('declares events only, idempotency none, and refuses an object that is not a channel', async () => {
    const ctx = context();
    expect(await slack.capabilities(ctx, '#alerts')).toMatchObject({ operations: ['event'], idempotency: 'none', concurrency: 1, rateLimits: [POST_LIMIT] });
    expect(() => slack.capabilities(ctx, 'Alerts Channel')).toThrow(/not a Slack channel/);
  });

  it('posts each event once, in order, with its blocks and its idempotency key in the metadata', async () => {
    const ctx = context({ paced: true });
    const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: '*Order 1* paid' } }];
    const ops = [event({ text: 'Order 1 paid', blocks }), event({ text: 'Order 2 paid', blocks: JSON.stringify(blocks) }), event({ text: 'Order 3 paid', channel: 'C0SALES' })];
    const results = await slack.write(ctx, '#alerts', ops);
    expect(results.every((r) => r.ok)).toBe(true);
    expect((results[0] as { destinationId: string }).destinationId).toMatch(/^C0ALERTS\/\d+\.\d{6}$/);
    const messages = emulator.messages();
    expect(messages.map((m) => [m.channel, m.text])).toEqual([
      ['C0ALERTS', 'Order 1 paid'],
      ['C0ALERTS', 'Order 2 paid'],
      ['C0SALES', 'Order 3 paid'],
    ]);
    expect(messages[1]!.blocks).toEqual(blocks);
    expect(messages.map((m) => m.metadata?.event_payload['idempotency_key'])).toEqual(ops.map((o) => o.idempotencyKey));
  });

  it('answers a payload it cannot post, or one Slack refuses, with a row error saying why; the rest lands', async () => {
    const ctx = context({ paced: true });
    const ops = [
      event({ text: 'lands first' }),
      event({ text: 'to nowhere', channel: '#no-such-channel' }),
      event({ text: 'not invited', channel: '#random' }),
      event({ text: 'odd blocks', blocks: [{ type: 'marquee' }] }),
      event({ text: 'x'.repeat(40_001) }),
      event({ text: 'hi', colour: 'red' }),
      event({ blocks: [] }),
      event({ text: 'lands last' }),
    ];
    const results = await slack.write(ctx, '#alerts', ops);
    const reasons = results.map((r) => (r.ok ? 'ok' : (expect(r.retryable).toBe(false), r.reason)));
    expect(reasons[0]).toBe('ok');
    expect(reasons[1]).toMatch(/no channel #no-such-channel .*channel_not_found/);
    expect(reasons[2]).toMatch(/not a member of #random .*invite/);
    expect(reasons[3]).toMatch(/blocks \(invalid_blocks\)/);
    expect(reasons[4]).toMatch(/text is 40001 characters long; Slack takes at most 40000/);
    expect(reasons[5]).toMatch(/no field "colour"/);
    expect(reasons[6]).toMatch(/neither text nor blocks/);
    expect(reasons[7]).toBe('ok');
    expect(texts()).toEqual(['lands first', 'lands last']);
  });

  it('paced by the declared limit, stays within the per-channel window and is never refused', async () => {
    const ctx = context({ paced: true });
    const ops = Array.from({ length: POST_LIMIT.requests + 3 }, (_, i) => event({ text: `paced ${i}` }));
    for (const op of ops) expect(await slack.write(ctx, '#alerts', [op])).toEqual([expect.objectContaining({ ok: true })]);
    const arrivals = posts('#alerts');
    expect(arrivals.every((r) => r.status === 200)).toBe(true);
    // Counted in the emulator's log: no window of the limit's length holds more posts than it allows.
    for (const first of arrivals) {
      expect(arrivals.filter((r) => r.at >= first.at && r.at < first.at + POST_LIMIT.perMs).length).toBeLessThanOrEqual(POST_LIMIT.requests);
    }
    expect(emulator.messages()).toHaveLength(ops.length);
  });

  it('on a 429 before anything is posted, throws retryable and notApplied with the Retry-After', async () => {
    const ctx = context();
    emulator.setFaults({ status429Every: 1 });
    const err = await slack.write(ctx, '#alerts', [event({ text: 'throttled' })]).catch((e: unknown) => e);
    expect(isOutflowError(err, 'OUTFLOW_DESTINATION')).toBe(true);
    expect(err).toMatchObject({ retryable: true, notApplied: true, retryAfterMs: 1_000 });
    expect(texts()).toEqual([]);
  });

  it('on a 429 after a message was posted, answers the rest as retryable and waits Retry-After before posting them', async () => {
    // No declared limit: the emulator's per-channel window refuses the sixth message in a row.
    const ctx = context();
    const ops = Array.from({ length: 7 }, (_, i) => event({ text: `burst ${i}` }));
    const first = await slack.write(ctx, '#alerts', ops);
    expect(first.slice(0, 5).every((r) => r.ok)).toBe(true);
    for (const r of first.slice(5) as Extract<RecordResult, { ok: false }>[]) {
      expect(r).toMatchObject({ ok: false, retryable: true, reason: expect.stringMatching(/ratelimited/) });
      expect(r.retryAfterMs).toBeGreaterThanOrEqual(1_000);
    }
    // The 429 paused the connection's budget: sent again, they wait it out and are not refused again.
    expect((await slack.write(ctx, '#alerts', ops.slice(5))).every((r) => r.ok)).toBe(true);
    expect(posts('#alerts').filter((r) => r.status === 429)).toHaveLength(1);
    expect(texts()).toEqual(ops.map((o) => o.fields!['text']));
  });

  it('throws the outcome of a lost answer as unknown; lookup finds the message posted once, and the rest of the batch not posted', async () => {
    const ctx = context();
    emulator.setFaults({ loseAnswers: 1 });
    const lost = event({ text: 'answer lost' });
    const after = event({ text: 'after it in the batch' });
    const err = await slack.write(ctx, '#alerts', [lost, after]).catch((e: unknown) => e);
    expect(isOutflowError(err)).toBe(true);
    expect(err).toMatchObject({ retryable: true, notApplied: false });
    const neverWritten = event({ text: 'never written' });
    const found = await slack.lookup!(ctx, '#alerts', [lost, after, neverWritten]);
    expect(found).toEqual([{ state: 'applied', destinationId: expect.stringMatching(/^C0ALERTS\//) }, { state: 'absent' }, { state: 'unknown' }]);
    expect(texts()).toEqual(['answer lost']);
  });

  it('on a 429 in the middle of a batch, answers the posted message ok and the rest retryable', async () => {
    const ctx = context();
    emulator.setFaults({ status429Every: 2 });
    const results = await slack.write(ctx, '#alerts', [event({ text: 'first' }), event({ text: 'second' }), event({ text: 'third' })]);
    expect(results.map((r) => (r.ok ? 'ok' : `retryable ${r.retryable} after ${r.retryAfterMs}`))).toEqual(['ok', 'retryable true after 1000', 'retryable true after 1000']);
    expect(texts()).toEqual(['first']);
  });

  it('looks up in another process from the change commit time; unknown without one, absent when not posted', async () => {
    const earlier = new Date(Date.now() - 60_000).toISOString();
    const posted = event({ text: 'posted before a crash' }, earlier);
    await slack.write(context(), '#alerts', [posted]);
    const notPosted = event({ text: 'not posted' }, earlier);
    const noTime = event({ text: 'no commit time' });
    const badPayload = event({ text: 'to a bad place', channel: 'Not A Channel' }, earlier);
    // A fresh context stands for a new process: it never saw these sends.
    const found = await slack.lookup!(context(), '#alerts', [posted, notPosted, noTime, badPayload]);
    expect(found.map((f) => f.state)).toEqual(['applied', 'absent', 'unknown', 'absent']);
    const outsider = event({ text: 'x', channel: '#random' }, earlier);
    expect(await slack.lookup!(context(), '#alerts', [outsider])).toEqual([{ state: 'unknown' }]);
  });

  it('fails the batch when the workspace refuses the token, naming what to check and never the token', async () => {
    const { logger, lines } = capturingLogger('debug');
    const ctx = context({ logger });
    emulator.setInactive(true);
    const err = await slack.write(ctx, '#alerts', [event({ text: 'x' }), event({ text: 'y' })]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'OUTFLOW_DESTINATION', retryable: false, notApplied: true });
    expect((err as Error).message).toMatch(/account_inactive.*check `token`/);
    const wrong = 'xoxb-a-distinctive-wrong-token';
    const refused = await slack.write(context({ config: { token: wrong }, logger }), '#alerts', [event({ text: 'x' })]).catch((e: unknown) => e);
    expect((refused as Error).message).toMatch(/invalid_auth/);
    for (const shown of [JSON.stringify(err), String(err), JSON.stringify(refused), String(refused), ...lines]) {
      expect(shown).not.toContain(emulator.config.token);
      expect(shown).not.toContain(wrong);
    }
    expect(texts()).toEqual([]);
  });
});
