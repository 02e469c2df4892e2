/**
 * The Web API methods the emulator answers, each `(workspace, args) → answer`. Every
 * answer is HTTP 200 with `ok`; a refusal is `{ ok: false, error: '<code>' }` with Slack's
 * code for it. Cursors are opaque base64 text, as Slack's are; `next_cursor` is empty on
 * the last page.
 */
import { readContent } from './messages.js';
import { microsOf, type Channel, type Message, type Workspace } from './workspace.js';

export type Args = Record<string, unknown>;
/** A method's answer; `posted` marks one that wrote a message (its answer may then be lost). */
export interface Answer {
  body: Record<string, unknown>;
  posted?: boolean;
}
export type Method = (ws: Workspace, args: Args) => Answer;

/** The workspace's and the app's identity, as auth.test reports them. */
export const TEAM = { team: 'Outflow Sandbox', team_id: 'T0SANDBOX', user: 'outflow', user_id: 'U0OUTFLOW', bot_id: 'B0OUTFLOW', app_id: 'A0OUTFLOW' };

const refuse = (error: string): Answer => ({ body: { ok: false, error } });
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);
const flag = (v: unknown): boolean => v === true || v === 'true' || v === '1' || v === 1;
const cursorOf = (value: string): string => Buffer.from(value).toString('base64');
const uncursor = (cursor: string, prefix: string): string | undefined => {
  const text = Buffer.from(cursor, 'base64').toString('utf8');
  return text.startsWith(prefix) ? text.slice(prefix.length) : undefined;
};

/** A `limit` argument: the default when absent, undefined when not an integer in 1..max. */
function limitOf(v: unknown, fallback: number, max: number): number | undefined {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  return Number.isInteger(n) && n >= 1 && n <= max ? n : undefined;
}

function channelView(c: Channel): Record<string, unknown> {
  return { id: c.id, name: c.name, is_channel: !c.is_private, is_group: false, is_im: false, is_mpim: false, is_private: c.is_private, is_archived: c.is_archived, is_member: c.is_member };
}

export const METHODS: Record<string, Method> = {
  'auth.test': () => ({ body: { ok: true, url: 'https://outflow-sandbox.slack.com/', ...TEAM, is_enterprise_install: false } }),

  'chat.postMessage': (ws, args) => {
    const ref = str(args['channel']);
    const channel = ref === undefined ? undefined : ws.find(ref);
    // A private channel the app is not in does not exist, as far as the app can tell.
    if (channel === undefined || (channel.is_private && !channel.is_member)) return refuse('channel_not_found');
    if (channel.is_archived) return refuse('is_archived');
    if (!channel.is_member) return refuse('not_in_channel');
    const content = readContent(args);
    if (!content.ok) return refuse(content.error);
    const threadTs = str(args['thread_ts']);
    const message = ws.post({
      channel: channel.id,
      text: content.text,
      ...(content.blocks ? { blocks: content.blocks } : {}),
      ...(content.metadata ? { metadata: content.metadata } : {}),
      ...(threadTs ? { thread_ts: threadTs } : {}),
    });
    const warnings = content.warnings.length ? { response_metadata: { warnings: content.warnings } } : {};
    return { posted: true, body: { ok: true, channel: channel.id, ts: message.ts, message: messageView(message, true), ...warnings } };
  },

  'conversations.list': (ws, args) => {
    const limit = limitOf(args['limit'], 100, 1000);
    if (limit === undefined) return refuse('invalid_limit');
    const types = (str(args['types']) ?? 'public_channel').split(',').map((t) => t.trim());
    if (types.some((t) => !['public_channel', 'private_channel', 'mpim', 'im'].includes(t))) return refuse('invalid_types');
    let start = 0;
    const cursor = str(args['cursor']);
    if (cursor) {
      const at = Number(uncursor(cursor, 'offset:'));
      if (!Number.isInteger(at) || at < 0) return refuse('invalid_cursor');
      start = at;
    }
    const visible = ws.channels.filter(
      (c) => (c.is_private ? types.includes('private_channel') && c.is_member : types.includes('public_channel')) && !(flag(args['exclude_archived']) && c.is_archived),
    );
    const page = visible.slice(start, start + limit);
    const next = start + limit < visible.length ? cursorOf(`offset:${start + limit}`) : '';
    return { body: { ok: true, channels: page.map(channelView), response_metadata: { next_cursor: next } } };
  },

  'conversations.history': (ws, args) => {
    const id = str(args['channel']);
    const channel = id === undefined ? undefined : ws.channels.find((c) => c.id === id);
    if (channel === undefined || (channel.is_private && !channel.is_member)) return refuse('channel_not_found');
    if (!channel.is_member) return refuse('not_in_channel');
    const limit = limitOf(args['limit'], 100, 999);
    if (limit === undefined) return refuse('invalid_limit');
    const inclusive = flag(args['inclusive']);
    const bound = (name: 'oldest' | 'latest', fallback: number): number | string => {
      const v = str(args[name]);
      if (v === undefined || v === '') return fallback;
      const micros = Math.round(Number(v) * 1e6);
      return Number.isFinite(micros) && micros >= 0 ? micros : `invalid_ts_${name}`;
    };
    const oldest = bound('oldest', 0);
    let latest = bound('latest', Number.MAX_SAFE_INTEGER);
    if (typeof oldest === 'string') return refuse(oldest);
    if (typeof latest === 'string') return refuse(latest);
    const cursor = str(args['cursor']);
    if (cursor) {
      const before = microsOf(uncursor(cursor, 'before:') ?? '');
      if (Number.isNaN(before)) return refuse('invalid_cursor');
      // The next page starts below the last message of the previous one.
      latest = Math.min(latest, before);
    }
    const fromCursor = Boolean(cursor);
    const inRange = ws.history(channel.id).filter((m) => {
      const t = microsOf(m.ts);
      const aboveOldest = inclusive ? t >= oldest : t > oldest;
      const belowLatest = inclusive && !fromCursor ? t <= latest : t < latest;
      return aboveOldest && belowLatest;
    });
    const page = inRange.slice(0, limit);
    const hasMore = inRange.length > limit;
    const metadata = flag(args['include_all_metadata']);
    return {
      body: {
        ok: true,
        messages: page.map((m) => messageView(m, metadata)),
        has_more: hasMore,
        pin_count: 0,
        response_metadata: { next_cursor: hasMore ? cursorOf(`before:${page[page.length - 1]!.ts}`) : '' },
      },
    };
  },
};

/** A message as the API shows it: by the app's bot user, metadata only when asked for. */
function messageView(m: Message, withMetadata: boolean): Record<string, unknown> {
  return {
    type: 'message',
    user: TEAM.user_id,
    bot_id: TEAM.bot_id,
    app_id: TEAM.app_id,
    team: TEAM.team_id,
    text: m.text,
    ts: m.ts,
    ...(m.blocks ? { blocks: m.blocks } : {}),
    ...(m.thread_ts ? { thread_ts: m.thread_ts } : {}),
    ...(withMetadata && m.metadata ? { metadata: m.metadata } : {}),
  };
}
