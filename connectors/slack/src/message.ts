import type { ChatPostMessageArguments } from '@slack/web-api';
import type { Operation, Row, Value } from '@outflow/core';

/** Slack cuts a message's text beyond this many characters; Outflow refuses such a message instead. */
export const MAX_TEXT = 40_000;
/** The most Block Kit blocks one message holds. */
export const MAX_BLOCKS = 50;
/** What the app's messages carry in their metadata, so a lookup can find them by idempotency key. */
export const EVENT_TYPE = 'outflow_event';

/** A channel as `to.object` or a payload's `channel` names it: `#name`, a bare name, or an id (`C…`, `G…`, `D…`). */
const CHANNEL = /^(#?[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{2,})$/;

/** The payload fields a trigger may set, and what each must be. */
const FIELDS: Record<string, (v: Value) => string | undefined> = {
  text: (v) => (typeof v === 'string' ? (v.length > MAX_TEXT ? `is ${v.length} characters long; Slack takes at most ${MAX_TEXT}` : undefined) : 'must be text'),
  blocks: (v) => blocksProblem(v),
  channel: (v) => (typeof v === 'string' && CHANNEL.test(v) ? undefined : 'must name a channel: #name or an id such as C0123ABCD'),
  thread_ts: (v) => (typeof v === 'string' && /^\d+\.\d+$/.test(v) ? undefined : "must be a message's ts, such as 1700000000.000100"),
  reply_broadcast: (v) => (typeof v === 'boolean' ? undefined : 'must be true or false'),
  unfurl_links: (v) => (typeof v === 'boolean' ? undefined : 'must be true or false'),
  unfurl_media: (v) => (typeof v === 'boolean' ? undefined : 'must be true or false'),
  mrkdwn: (v) => (typeof v === 'boolean' ? undefined : 'must be true or false'),
};

/** Whether `ref` names a channel the way Slack takes it. */
export const isChannel = (ref: string): boolean => CHANNEL.test(ref);

/** Blocks as given: a JSON array, or text holding one (a template renders text). */
function blocksOf(v: Value): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return undefined;
  }
}

function blocksProblem(v: Value): string | undefined {
  const blocks = blocksOf(v);
  if (!Array.isArray(blocks)) return 'must be a Block Kit array of blocks (JSON)';
  if (blocks.length > MAX_BLOCKS) return `holds ${blocks.length} blocks; a message holds at most ${MAX_BLOCKS}`;
  const bad = blocks.findIndex((b) => typeof b !== 'object' || b === null || Array.isArray(b) || typeof (b as { type?: unknown }).type !== 'string');
  return bad === -1 ? undefined : `block ${bad} is not an object with a "type"`;
}

/** A message ready for chat.postMessage, or why the payload cannot be one (shown to people as the row's error). */
export type Message = { ok: true; channel: string; args: ChatPostMessageArguments } | { ok: false; reason: string };

/**
 * The message an event operation posts: its payload (`fields`) checked field by field,
 * the channel from `fields.channel` or else `object`, and metadata carrying the
 * operation's idempotency key and trigger (hidden from people; read back by lookup).
 */
export function messageOf(object: string, op: Operation): Message {
  const fields: Row = op.fields ?? {};
  for (const [name, value] of Object.entries(fields)) {
    if (value === null) continue;
    const check = FIELDS[name];
    if (check === undefined) return { ok: false, reason: `a Slack message has no field "${name}" (it takes: ${Object.keys(FIELDS).join(', ')})` };
    const problem = check(value);
    if (problem !== undefined) return { ok: false, reason: `the message's ${name} ${problem}` };
  }
  const text = typeof fields['text'] === 'string' ? fields['text'] : '';
  const blocks = fields['blocks'] === undefined || fields['blocks'] === null ? undefined : (blocksOf(fields['blocks']) as unknown[]);
  if (text.trim() === '' && (blocks === undefined || blocks.length === 0)) return { ok: false, reason: 'the message has neither text nor blocks; Slack posts nothing empty' };
  const channel = typeof fields['channel'] === 'string' ? fields['channel'] : object;
  const extra = Object.fromEntries(['thread_ts', 'reply_broadcast', 'unfurl_links', 'unfurl_media', 'mrkdwn'].filter((k) => fields[k] !== undefined && fields[k] !== null).map((k) => [k, fields[k]]));
  const metadata = { event_type: EVENT_TYPE, event_payload: { idempotency_key: op.idempotencyKey, trigger: op.event?.trigger ?? '' } };
  const args = { channel, text, ...(blocks === undefined ? {} : { blocks }), ...extra, metadata } as unknown as ChatPostMessageArguments;
  return { ok: true, channel, args };
}
