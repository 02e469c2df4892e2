import { RecentMap, type ConnectorContext, type LookupResult, type Operation } from '@outflow/core';
import { channelIdOf } from './channels.js';
import { slackCall, slackCodeOf } from './client.js';
import type { SlackConfig } from './config.js';
import { EVENT_TYPE, messageOf } from './message.js';

/** How far before the earliest possible send the history is read: room for a clock that differs from Slack's. */
const SKEW_MS = 2 * 60_000;
/** Messages per conversations.history page, and the most pages one lookup reads per channel. */
const PAGE = 200;
const MAX_PAGES = 25;
/** How many times a history read refused with `ratelimited` is tried again, after its Retry-After. */
const RATE_LIMITED_TRIES = 3;

/** Send times kept per connection: at least this many, the oldest forgotten first. */
const MAX_KEPT = 10_000;

/**
 * When this process first tried to post each event whose outcome it does not know yet,
 * per connection: the earliest its message can be in the channel. Kept from the attempt
 * until a write answers for it or a lookup settles it.
 */
const firstSent = new WeakMap<object, RecentMap<string, number>>();

function sendTimes(ctx: ConnectorContext<SlackConfig>): RecentMap<string, number> {
  let times = firstSent.get(ctx);
  if (times === undefined) firstSent.set(ctx, (times = new RecentMap(MAX_KEPT)));
  return times;
}

/** Notes that the event with idempotency key `key` is about to be posted. */
export function noteSent(ctx: ConnectorContext<SlackConfig>, key: string): void {
  const times = sendTimes(ctx);
  if (times.has(key)) return;
  times.set(key, Date.now());
}

/** Forgets the send times of events whose outcome is known. */
export function forgetSent(ctx: ConnectorContext<SlackConfig>, keys: readonly string[]): void {
  const times = sendTimes(ctx);
  for (const key of keys) times.delete(key);
}

/** What the channel's history since `oldestMs` holds: the ts of each of the app's messages by idempotency key, and whether it was read to its start. */
async function postedSince(ctx: ConnectorContext<SlackConfig>, channel: string, oldestMs: number): Promise<{ posted: Map<string, string>; complete: boolean }> {
  const posted = new Map<string, string>();
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const answer = await historyPage(ctx, channel, (oldestMs / 1000).toFixed(6), cursor);
    for (const m of answer.messages ?? []) {
      const payload = m.metadata?.event_type === EVENT_TYPE ? (m.metadata.event_payload as Record<string, unknown> | undefined) : undefined;
      const key = payload?.['idempotency_key'];
      if (typeof key === 'string' && typeof m.ts === 'string' && !posted.has(key)) posted.set(key, m.ts);
    }
    cursor = answer.response_metadata?.next_cursor || undefined;
    if (cursor === undefined) return { posted, complete: true };
  }
  return { posted, complete: false };
}

async function historyPage(ctx: ConnectorContext<SlackConfig>, channel: string, oldest: string, cursor: string | undefined) {
  for (let attempt = 1; ; attempt++) {
    try {
      // A 429 paused the connection's budget for its Retry-After: the next try waits for it there.
      return await slackCall(ctx, `the history of ${channel} (conversations.history)`, (client) =>
        client.conversations.history({ channel, oldest, limit: PAGE, include_all_metadata: true, ...(cursor === undefined ? {} : { cursor }) }),
      );
    } catch (err) {
      if (slackCodeOf(err) !== 'ratelimited' || attempt >= RATE_LIMITED_TRIES) throw err;
    }
  }
}

/**
 * Tells whether messages whose answer was lost were posted: each carries its idempotency
 * key in its metadata, so the channel's history since the message could first have been
 * sent — when this process first tried it, else when the source committed the change —
 * is read with conversations.history and searched for the key. `applied` when found (with
 * `channel/ts` as the id), `absent` when the history since then was read whole without
 * it, or when the payload is one write() refuses before posting; `unknown` when the start
 * of that window is not known, the history is longer than a lookup reads, or the channel
 * cannot be read (renamed, archived, the app removed). Read-only.
 */
export async function lookup(ctx: ConnectorContext<SlackConfig>, object: string, ops: Operation[]): Promise<LookupResult[]> {
  const out: LookupResult[] = ops.map(() => ({ state: 'unknown' }));
  const byChannel = new Map<string, { i: number; since: number }[]>();
  ops.forEach((op, i) => {
    const message = messageOf(object, op);
    if (!message.ok) return void (out[i] = { state: 'absent' });
    const since = firstSent.get(ctx)?.get(op.idempotencyKey) ?? (op.event?.committedAt === undefined ? Number.NaN : Date.parse(op.event.committedAt));
    if (Number.isNaN(since)) return;
    const group = byChannel.get(message.channel) ?? [];
    byChannel.set(message.channel, [...group, { i, since }]);
  });
  for (const [ref, members] of byChannel) {
    const id = await channelIdOf(ctx, ref);
    if (id === undefined) continue;
    let history: Awaited<ReturnType<typeof postedSince>>;
    try {
      history = await postedSince(ctx, id, Math.min(...members.map((m) => m.since)) - SKEW_MS);
    } catch (err) {
      if (slackCodeOf(err) === 'channel_not_found' || slackCodeOf(err) === 'not_in_channel') continue;
      throw err;
    }
    for (const { i } of members) {
      const ts = history.posted.get(ops[i]!.idempotencyKey);
      if (ts !== undefined) out[i] = { state: 'applied', destinationId: `${id}/${ts}` };
      else if (history.complete) out[i] = { state: 'absent' };
    }
  }
  forgetSent(ctx, ops.filter((_, i) => out[i]!.state !== 'unknown').map((op) => op.idempotencyKey));
  return out;
}
