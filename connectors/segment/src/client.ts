/**
 * Delivery through analytics-node. Each write() gets its own Analytics client, so what the
 * SDK reports says what became of exactly that write's calls: a call is reported once the
 * batch holding it was accepted by Segment (2xx), or failed. The SDK batches (by
 * count and by its 480 KB budget per request) and flushes; its own retries are off — its
 * requests go through core's budgetedFetch (the rate budget, a timeout, the run's stop, a
 * bounded answer, a 429 pausing every sender), and any answer but a 2xx is thrown back to
 * it as an OutflowError, which the SDK reports as the failure of every call in the batch.
 */
import { Analytics, type HTTPFetchFn } from '@segment/analytics-node';
import { budgetedFetch, destinationError, isOutflowError, parseRetryAfter, redact, type ConnectorContext, type OutflowError } from '@outflow/core';
import type { CallName, Message } from './calls.js';
import { DEFAULT_HOST, DEFAULT_PATH, DEFAULT_TIMEOUT_MS, type SegmentConfig } from './config.js';

/** What became of one call: accepted by Segment, or the error its batch (or the SDK) failed it with. */
export type Delivery = { ok: true } | { ok: false; error: unknown };

/**
 * How long the SDK holds a batch that is not full before sending it. A write's batch is
 * sent as soon as all its calls are in it (closeAndFlush); this only bounds the wait of a
 * batch the SDK would otherwise hold back.
 */
const FLUSH_INTERVAL_MS = 250;
/** Vendor messages are shown to people; a long one is cut here. */
const MAX_MESSAGE_LENGTH = 300;

function where(config: Readonly<SegmentConfig>): string {
  return `Segment at ${new URL(config.host ?? DEFAULT_HOST).origin}`;
}

/** Why a fetch failed below HTTP: its cause's code (ECONNREFUSED …), else its message. */
const networkCode = (err: unknown): string => String((err as { cause?: { code?: unknown } }).cause?.code ?? (err instanceof Error ? err.message : err));

/** The reason in an error answer: its JSON `message`, else its text. */
function said(text: string): string {
  let message = text;
  try {
    const body = JSON.parse(text) as { message?: unknown } | null;
    if (typeof body?.message === 'string') message = body.message;
  } catch {
    // Not JSON: the text is the reason.
  }
  message = redact(message.trim()).slice(0, MAX_MESSAGE_LENGTH);
  return message === '' ? '' : `: ${message}`;
}

/**
 * The error for an answer that is not a 2xx. A 429 (refused before anything was applied,
 * waiting as Retry-After says), a 408 or a 5xx passes: retryable. A 400 (a malformed batch,
 * or one over Segment's size limits) and any other status fail the same way again.
 */
function refusal(config: Readonly<SegmentConfig>, status: number, text: string, headers: Headers): OutflowError {
  const reason = `HTTP ${status}${said(text)}`;
  if (status === 429) {
    return destinationError(`${where(config)} is rate limiting (${reason})`, { retryable: true, status, retryAfterMs: parseRetryAfter(headers.get('retry-after')) ?? 1_000 });
  }
  if (status === 408 || status >= 500) return destinationError(`${where(config)} failed a batch (${reason})`, { retryable: true, status });
  if (status === 401 || status === 403) return destinationError(`${where(config)} refused the write key (${reason}); check \`writeKey\``, { retryable: false, status });
  return destinationError(`${where(config)} refused a batch (${reason})`, { retryable: false, status });
}

/** The fetch analytics-node sends with: budgeted, and throwing for any answer but a 2xx. */
function tracker(ctx: ConnectorContext<SegmentConfig>): HTTPFetchFn {
  const { config } = ctx;
  const send = budgetedFetch(ctx, { service: 'Segment', timeoutMs: config.timeoutMs ?? DEFAULT_TIMEOUT_MS });
  return async (url, init) => {
    let res: Response;
    try {
      res = await send(url, { method: init.method, headers: init.headers, body: init.body, redirect: 'manual' });
    } catch (err) {
      if (isOutflowError(err)) throw err;
      throw destinationError(`could not reach ${where(config)}: ${redact(networkCode(err))}`, { retryable: true, cause: err });
    }
    if (res.status >= 200 && res.status < 300) return res;
    throw refusal(config, res.status, await res.text(), res.headers);
  };
}

/**
 * Sends `messages` as `call`s through one Analytics client and resolves once every one of
 * them has settled: one {@link Delivery} per message, in order. Never rejects. What became of
 * a call is read from the client's events (`track` … on acceptance, `error` with the call
 * on failure) rather than its callback, which the SDK holds back at least 300 ms.
 */
export async function deliver(ctx: ConnectorContext<SegmentConfig>, call: CallName, messages: Message[]): Promise<Delivery[]> {
  const { writeKey, host, path, timeoutMs } = ctx.config;
  const analytics = new Analytics({
    writeKey,
    host: host ?? DEFAULT_HOST,
    path: path ?? DEFAULT_PATH,
    maxRetries: 0,
    flushAt: Math.max(1, messages.length),
    flushInterval: FLUSH_INTERVAL_MS,
    httpRequestTimeout: timeoutMs ?? DEFAULT_TIMEOUT_MS,
    httpClient: tracker(ctx),
  });
  const waiting = new Map<string, ((d: Delivery) => void)[]>();
  const settle = (messageId: unknown, delivery: Delivery): void => {
    for (const resolve of waiting.get(String(messageId)) ?? []) resolve(delivery);
    waiting.delete(String(messageId));
  };
  const settled = messages.map((m) => new Promise<Delivery>((resolve) => waiting.set(m.messageId!, [...(waiting.get(m.messageId!) ?? []), resolve])));
  let unexplained: unknown;
  analytics.on(call, (c) => settle(c.event.messageId, { ok: true }));
  analytics.on('error', (e) => {
    if (e.ctx === undefined) unexplained = e.reason;
    else settle(e.ctx.event.messageId, { ok: false, error: e.reason });
  });
  const send = analytics[call] as (message: Message) => void;
  for (const message of messages) {
    try {
      send(message);
    } catch (err) {
      // The SDK validates a call before queueing it, and throws.
      settle(message.messageId, { ok: false, error: err });
    }
  }
  // No timeout: every request ends within timeoutMs, or when the run stops. Once drained,
  // every call has been reported.
  await analytics.closeAndFlush({ timeout: 0 });
  for (const id of [...waiting.keys()]) settle(id, { ok: false, error: unexplained ?? new Error('analytics-node did not report what became of this call') });
  return Promise.all(settled);
}

/**
 * Posts an empty batch, which adds nothing: fails on an address with nothing listening or a
 * refusal. Segment's Tracking API takes any non-empty write key (it drops the calls of an
 * unknown one later), so a wrong key cannot be told from here.
 */
export async function ping(ctx: ConnectorContext<SegmentConfig>): Promise<void> {
  const { writeKey, host, path } = ctx.config;
  const url = new URL(path ?? DEFAULT_PATH, host ?? DEFAULT_HOST).href;
  const headers = { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` };
  await tracker(ctx)(url, { method: 'POST', headers, body: JSON.stringify({ batch: [], sentAt: new Date().toISOString() }), signal: undefined });
}
