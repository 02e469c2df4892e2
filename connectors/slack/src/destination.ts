import { isOutflowError, OutflowError, type Capabilities, type ConnectorContext, type Destination, type FieldInfo, type Operation, type RateLimit, type RecordResult } from '@outflow/core';
import { listChannels, rememberChannel } from './channels.js';
import { isAuthFailure, slackCall, slackCodeOf } from './client.js';
import type { SlackConfig } from './config.js';
import { forgetSent, lookup, noteSent } from './lookup.js';
import { isChannel, messageOf } from './message.js';

/**
 * chat.postMessage's limit: about one message a second per channel, short bursts allowed.
 * Kept for the whole connection (every request draws from it), so it also holds when
 * several channels share the workspace-wide limit.
 */
export const POST_LIMIT: RateLimit = { requests: 5, perMs: 5_000 };
/** Events per write() call: posted one after another, in order. */
export const MAX_BATCH = 20;

/** The payload fields a trigger may set, as discover() reports them. */
const FIELDS: FieldInfo[] = [
  { name: 'text', type: 'string' },
  { name: 'blocks', type: 'json' },
  { name: 'channel', type: 'string' },
  { name: 'thread_ts', type: 'string' },
  { name: 'reply_broadcast', type: 'boolean' },
  { name: 'unfurl_links', type: 'boolean' },
  { name: 'unfurl_media', type: 'boolean' },
  { name: 'mrkdwn', type: 'boolean' },
];

/** Why Slack refused one message, in words that say what to fix; by Slack's error code. */
const REASONS: Record<string, (channel: string) => string> = {
  channel_not_found: (c) => `Slack has no channel ${c} that the app can see (channel_not_found): check the name, and invite the app to a private channel`,
  not_in_channel: (c) => `the app is not a member of ${c} (not_in_channel): invite it to the channel`,
  is_archived: (c) => `${c} is archived (is_archived)`,
  invalid_blocks: () => "Slack refused the message's blocks (invalid_blocks): check them in Block Kit Builder; at most 50 blocks",
  invalid_blocks_format: () => "the message's blocks are not a JSON array of blocks (invalid_blocks_format)",
  msg_too_long: () => 'the message is too long for Slack (msg_too_long)',
  msg_blocks_too_long: () => "the message's blocks are too long for Slack (msg_blocks_too_long)",
  no_text: () => 'the message has neither text nor blocks (no_text)',
  restricted_action: (c) => `the workspace does not let the app post in ${c} (restricted_action)`,
};

const reject = (reason: string, retryable = false): RecordResult => ({ ok: false, reason, retryable });

function assertChannel(object: string): void {
  if (!isChannel(object)) {
    throw new OutflowError('OUTFLOW_CONFIG_INVALID', `to.object ${JSON.stringify(object)} is not a Slack channel: write #name (lower case) or an id such as C0123ABCD`);
  }
}

/**
 * Posts each event as one message with chat.postMessage, one after another so a channel
 * shows them in order, and answers one result per event. A payload that cannot be a
 * message, and a message Slack refuses (no such channel, the app not in it, bad blocks),
 * is that event's row error. What is about the connection is thrown while nothing in the
 * batch was posted: a 429 (retryable, not applied, with its Retry-After) or a refused
 * token, app or workspace (not retryable). Once a message was posted, those answer the rest of the batch as
 * retryable results, so the posted one is not sent again. A failure that leaves a
 * message's fate unknown (a 5xx, a timeout, a dropped connection, a stop) is always
 * thrown: the engine then looks the batch up (lookup) rather than post twice.
 */
async function write(ctx: ConnectorContext<SlackConfig>, object: string, ops: Operation[]): Promise<RecordResult[]> {
  assertChannel(object);
  // From now on any of them may be posted: the start of the history a lookup reads.
  for (const op of ops) noteSent(ctx, op.idempotencyKey);
  const results: RecordResult[] = [];
  for (const [i, op] of ops.entries()) {
    if (op.kind !== 'event') {
      results.push(reject(`Slack takes events (event mode) only, not ${op.kind}`));
      continue;
    }
    const message = messageOf(object, op);
    if (!message.ok) {
      results.push(reject(message.reason));
      continue;
    }
    try {
      const posted = await slackCall(ctx, `a message to ${message.channel}`, (client) => client.chat.postMessage(message.args));
      if (typeof posted.channel === 'string') rememberChannel(ctx, message.channel, posted.channel);
      results.push({ ok: true, destinationId: `${posted.channel}/${posted.ts}` });
    } catch (err) {
      if (!isOutflowError(err) || !err.notApplied || err.code === 'OUTFLOW_ABORTED') throw err;
      if (!err.retryable && !isAuthFailure(err)) {
        const code = slackCodeOf(err) ?? 'error';
        results.push(reject(REASONS[code]?.(message.channel) ?? `Slack refused the message to ${message.channel} (${code})`));
        continue;
      }
      if (!results.some((r) => r.ok)) throw err;
      // Not applied, and about the connection: the rest waits for the next attempt.
      const rest: RecordResult = { ok: false, reason: err.message, retryable: true, ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }) };
      results.push(...ops.slice(i).map(() => rest));
      break;
    }
  }
  // Every event of the batch is answered for: none needs a lookup. (A throw keeps them all.)
  forgetSent(ctx, ops.map((op) => op.idempotencyKey));
  return results;
}

export const destination: Destination<SlackConfig> = {
  // auth.test: a wrong, revoked or inactive token, or an unreachable API, fails it. Changes nothing.
  async check(ctx) {
    try {
      await slackCall(ctx, 'the token check (auth.test)', (client) => client.auth.test());
    } catch (err) {
      if (isOutflowError(err, 'OUTFLOW_ABORTED')) throw err;
      throw new OutflowError('OUTFLOW_CHECK_FAILED', (err as Error).message, { cause: err });
    }
  },

  // The channels the app can post in (it is a member, not archived), each as `#name`.
  async discover(ctx) {
    const channels = (await listChannels(ctx)).filter((c) => c.is_member === true && c.is_archived !== true);
    return { objects: channels.map((c) => ({ name: `#${c.name}`, fields: FIELDS, matchKeys: [], modes: ['event'] })) };
  },

  // Events only, posted one at a time; `none`: Slack posts a message sent twice twice, so an
  // event in doubt is looked up (lookup) and never re-sent blindly.
  capabilities(_ctx, object): Capabilities {
    assertChannel(object);
    return { operations: ['event'], maxBatchSize: MAX_BATCH, rateLimits: [POST_LIMIT], budget: 'connector', concurrency: 1, idempotency: 'none' };
  },

  write,
  lookup,
};
