import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, LogLevel, WebClient, type ConversationsHistoryResponse, type ConversationsListResponse, type WebAPIPlatformError, type WebAPIRateLimitedError } from '@slack/web-api';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_TEXT, SANDBOX_TOKEN, start, type SlackEmulator, type SlackEmulatorOptions } from '../src/emulator/index.js';

// The emulator on its own, driven through Slack's own SDK as an app would call Slack.
let emulator: SlackEmulator | undefined;

async function open(options: SlackEmulatorOptions = {}): Promise<{ emu: SlackEmulator; slack: WebClient }> {
  emulator = await start(options);
  const slack = new WebClient(options.token ?? SANDBOX_TOKEN, {
    slackApiUrl: emulator.config.slackApiUrl,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    logLevel: LogLevel.ERROR,
  });
  return { emu: emulator, slack };
}

/** The Slack error code a call was refused with. */
async function refusal(call: Promise<unknown>): Promise<string> {
  const err = (await call.then(
    () => undefined,
    (e: unknown) => e,
  )) as WebAPIPlatformError | undefined;
  expect(err?.code).toBe(ErrorCode.PlatformError);
  return err!.data.error;
}

afterEach(async () => {
  await emulator?.stop();
  emulator = undefined;
});

describe('Slack emulator, through @slack/web-api', () => {
  it('answers auth.test for its bot token, and invalid_auth or account_inactive otherwise', async () => {
    const { emu, slack } = await open();
    const me = await slack.auth.test();
    expect(me).toMatchObject({ ok: true, team_id: 'T0SANDBOX', bot_id: 'B0OUTFLOW' });
    const stranger = new WebClient('xoxb-not-this-one', { slackApiUrl: emu.config.slackApiUrl, retryConfig: { retries: 0 }, logLevel: LogLevel.ERROR });
    expect(await refusal(stranger.auth.test())).toBe('invalid_auth');
    emu.setInactive(true);
    expect(await refusal(slack.auth.test())).toBe('account_inactive');
  });

  it('takes the token as a form field, and refuses a JSON body without the bearer header', async () => {
    const { emu } = await open();
    const form = await fetch(`${emu.config.slackApiUrl}auth.test`, { method: 'POST', body: new URLSearchParams({ token: SANDBOX_TOKEN }) });
    expect(await form.json()).toMatchObject({ ok: true });
    const json = await fetch(`${emu.config.slackApiUrl}chat.postMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ token: SANDBOX_TOKEN, channel: '#alerts', text: 'hi' }),
    });
    expect(await json.json()).toEqual({ ok: false, error: 'not_authed' });
    const bearer = await fetch(`${emu.config.slackApiUrl}chat.postMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${SANDBOX_TOKEN}` },
      body: JSON.stringify({ channel: '#alerts', text: 'hi', blocks: [{ type: 'divider' }] }),
    });
    expect(await bearer.json()).toMatchObject({ ok: true, channel: 'C0ALERTS' });
    expect(emu.messages()).toHaveLength(1);
  });

  it('posts to a channel by name or id, and refuses unknown, archived and not-joined channels', async () => {
    const { emu, slack } = await open();
    const byName = await slack.chat.postMessage({ channel: '#alerts', text: 'one' });
    expect(byName).toMatchObject({ ok: true, channel: 'C0ALERTS', message: { text: 'one', bot_id: 'B0OUTFLOW' } });
    const byId = await slack.chat.postMessage({ channel: 'C0ALERTS', text: 'two' });
    expect(Number(byId.ts)).toBeGreaterThan(Number(byName.ts));
    expect(await refusal(slack.chat.postMessage({ channel: '#nowhere', text: 'x' }))).toBe('channel_not_found');
    expect(await refusal(slack.chat.postMessage({ channel: '#board', text: 'x' }))).toBe('channel_not_found');
    expect(await refusal(slack.chat.postMessage({ channel: '#random', text: 'x' }))).toBe('not_in_channel');
    expect(await refusal(slack.chat.postMessage({ channel: '#old-news', text: 'x' }))).toBe('is_archived');
    expect(emu.messages().map((m) => m.text)).toEqual(['one', 'two']);
  });

  it('refuses an empty message and bad blocks, and cuts text beyond 40,000 characters with a warning', async () => {
    // Refused calls count against the channel's window too: give this one room.
    const { emu, slack } = await open({ limits: { postPerChannel: { requests: 20, perMs: 5_000 } } });
    expect(await refusal(slack.chat.postMessage({ channel: '#alerts', text: '' }))).toBe('no_text');
    expect(await refusal(slack.apiCall('chat.postMessage', { channel: '#alerts', text: 'x', blocks: 'not json' }))).toBe('invalid_blocks_format');
    const divider = { type: 'divider' as const };
    expect(await refusal(slack.chat.postMessage({ channel: '#alerts', text: 'x', blocks: Array.from({ length: 51 }, () => divider) }))).toBe('invalid_blocks');
    expect(await refusal(slack.apiCall('chat.postMessage', { channel: '#alerts', text: 'x', blocks: [{ type: 'marquee' }] }))).toBe('invalid_blocks');
    const long = await slack.chat.postMessage({ channel: '#alerts', text: 'a'.repeat(MAX_TEXT + 5) });
    expect(long.response_metadata?.warnings).toEqual(['message_truncated']);
    const fifty = await slack.chat.postMessage({ channel: '#alerts', text: 'fifty', blocks: Array.from({ length: 50 }, () => divider) });
    expect(fifty.ok).toBe(true);
    expect(emu.messages().map((m) => m.text.length)).toEqual([MAX_TEXT, 5]);
  });

  it('keeps metadata, shown by conversations.history only with include_all_metadata', async () => {
    const { slack } = await open();
    const metadata = { event_type: 'order_paid', event_payload: { id: 'o-1' } };
    await slack.chat.postMessage({ channel: '#sales', text: 'paid', metadata });
    const plain = await slack.conversations.history({ channel: 'C0SALES' });
    expect(plain.messages?.[0]).not.toHaveProperty('metadata');
    const full = await slack.conversations.history({ channel: 'C0SALES', include_all_metadata: true });
    expect(full.messages?.[0]?.metadata).toEqual(metadata);
    expect(await refusal(slack.apiCall('chat.postMessage', { channel: '#sales', text: 'x', metadata: { event_type: 'x' } }))).toBe('invalid_metadata_format');
  });

  it('pages conversations.history newest first with cursors, and by oldest', async () => {
    const { slack } = await open();
    const ts: string[] = [];
    for (const text of ['m1', 'm2', 'm3', 'm4', 'm5']) ts.push((await slack.chat.postMessage({ channel: '#general', text })).ts!);
    const texts: string[] = [];
    for await (const page of slack.paginate('conversations.history', { channel: 'C0GENERAL', limit: 2 })) {
      texts.push(...((page as ConversationsHistoryResponse).messages ?? []).map((m) => m.text ?? ''));
    }
    expect(texts).toEqual(['m5', 'm4', 'm3', 'm2', 'm1']);
    const since = await slack.conversations.history({ channel: 'C0GENERAL', oldest: ts[2] });
    expect(since.messages?.map((m) => m.text)).toEqual(['m5', 'm4']);
    expect(await refusal(slack.conversations.history({ channel: '#general' }))).toBe('channel_not_found');
    expect(await refusal(slack.conversations.history({ channel: 'C0RANDOM' }))).toBe('not_in_channel');
    expect(await refusal(slack.conversations.history({ channel: 'C0GENERAL', cursor: 'bm9wZQ==' }))).toBe('invalid_cursor');
  });

  it('lists channels page by page, private ones only where the app is a member', async () => {
    const { slack } = await open();
    const names: string[] = [];
    for await (const page of slack.paginate('conversations.list', { types: 'public_channel,private_channel', exclude_archived: true, limit: 2 })) {
      names.push(...((page as ConversationsListResponse).channels ?? []).map((c) => c.name ?? ''));
    }
    expect(names).toEqual(['general', 'alerts', 'sales', 'random', 'finance']);
    const publicOnly = await slack.conversations.list({});
    expect(publicOnly.channels?.map((c) => c.name)).toContain('old-news');
    expect(await refusal(slack.conversations.list({ limit: 1001 }))).toBe('invalid_limit');
    expect(await refusal(slack.conversations.list({ types: 'rooms' }))).toBe('invalid_types');
  });

  it('answers 429 ratelimited with Retry-After past the per-channel burst, per channel', async () => {
    const { emu, slack } = await open();
    const { requests } = emu.limits.postPerChannel;
    for (let i = 0; i < requests; i++) await slack.chat.postMessage({ channel: '#alerts', text: `burst ${i}` });
    const err = (await slack.chat.postMessage({ channel: 'C0ALERTS', text: 'one too many' }).catch((e: unknown) => e)) as WebAPIRateLimitedError;
    expect(err.code).toBe(ErrorCode.RateLimitedError);
    expect(err.retryAfter).toBeGreaterThanOrEqual(1);
    // Another channel has its own window.
    expect((await slack.chat.postMessage({ channel: '#sales', text: 'elsewhere' })).ok).toBe(true);
    expect(emu.messages().filter((m) => m.channel === 'C0ALERTS')).toHaveLength(requests);
    const refused = emu.requests().filter((r) => r.status === 429);
    expect(refused).toEqual([expect.objectContaining({ method: 'chat.postMessage', channel: 'C0ALERTS', error: 'ratelimited' })]);
  });

  it("holds each method to its tier, and posting to the workspace's limit", async () => {
    const { slack } = await open({ limits: { tiers: { 'conversations.list': { requests: 2, perMs: 60_000 } }, postPerWorkspace: { requests: 3, perMs: 60_000 } } });
    await slack.conversations.list({});
    await slack.conversations.list({});
    expect(((await slack.conversations.list({}).catch((e: unknown) => e)) as WebAPIRateLimitedError).code).toBe(ErrorCode.RateLimitedError);
    for (const channel of ['#alerts', '#sales', '#general']) await slack.chat.postMessage({ channel, text: 'x' });
    expect(((await slack.chat.postMessage({ channel: '#finance', text: 'x' }).catch((e: unknown) => e)) as WebAPIRateLimitedError).code).toBe(ErrorCode.RateLimitedError);
  });

  it('posts, then loses the answer when told to; answers 5xx and 429 faults without posting', async () => {
    const { emu, slack } = await open();
    emu.setFaults({ loseAnswers: 1 });
    const lost = (await slack.chat.postMessage({ channel: '#alerts', text: 'posted, answer lost' }).catch((e: unknown) => e)) as { code: string };
    expect(lost.code).toBe(ErrorCode.RequestError);
    emu.setFaults({ errorRate: 1 });
    expect(((await slack.chat.postMessage({ channel: '#alerts', text: 'never' }).catch((e: unknown) => e)) as { code: string }).code).toBe(ErrorCode.HTTPError);
    emu.setFaults({ status429Every: 1 });
    expect(((await slack.chat.postMessage({ channel: '#alerts', text: 'never' }).catch((e: unknown) => e)) as { code: string }).code).toBe(ErrorCode.RateLimitedError);
    expect(emu.messages().map((m) => m.text)).toEqual(['posted, answer lost']);
  });

  it('keeps its messages across a restart with dataDir', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'slack-emulator-'));
    try {
      const first = await open({ dataDir });
      await first.slack.chat.postMessage({ channel: '#alerts', text: 'kept' });
      await first.emu.stop();
      const second = await open({ dataDir });
      expect(second.emu.messages().map((m) => m.text)).toEqual(['kept']);
      const after = await second.slack.chat.postMessage({ channel: '#alerts', text: 'later' });
      expect(Number(after.ts)).toBeGreaterThan(Number(second.emu.messages()[0]!.ts));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
