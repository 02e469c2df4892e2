// #if fetch
import { OutflowError, isOutflowError, networkCode, parseRetryAfter, readAnswer, type ConnectorContext, type ErrorCode } from '@outflow/core';
// #endif
// #if each&!fetch
import { budgetedFetch, httpRefusal, isOutflowError, unreachable, type ConnectorContext } from '@outflow/core';
// #endif
// #if each&fetch
import { budgetedFetch, httpRefusal, unreachable } from '@outflow/core';
// #endif
import { DEFAULT_BASE_URL, type __Name__Config } from './config.js';
// #if each

/** A record as the API answers it. */
export interface ApiRecord {
  id: string;
  properties: Record<string, unknown>;
}

/** An answer that is not a success, with its status and body, as an SDK's error carries them. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`the API answered HTTP ${status}`);
    this.name = 'ApiError';
  }
}

/**
 * A stand-in for the vendor's SDK, one method per endpoint. Once the emulator speaks the
 * vendor's API, replace it with the vendor's official SDK built on the `fetch` given (its
 * retries off), and keep call() below: only the SDK's error class and status change.
 */
export class __Name__Api {
  constructor(private readonly o: { baseUrl: string; token: string; fetch: typeof fetch }) {}

  account(): Promise<unknown> {
    return this.request('GET', '/v1/account');
  }

  create(object: string, properties: Record<string, unknown>): Promise<ApiRecord> {
    return this.request('POST', recordsOf(object), { properties });
  }

  get(object: string, id: string): Promise<ApiRecord> {
    return this.request('GET', `${recordsOf(object)}/${encodeURIComponent(id)}`);
  }

  update(object: string, id: string, properties: Record<string, unknown>): Promise<ApiRecord> {
    return this.request('PATCH', `${recordsOf(object)}/${encodeURIComponent(id)}`, { properties });
  }

  delete(object: string, id: string): Promise<unknown> {
    return this.request('DELETE', `${recordsOf(object)}/${encodeURIComponent(id)}`);
  }

  /** The records whose properties equal every one of `equals`: one page of at most `limit`, after the cursor `after`. */
  search(object: string, equals: Record<string, unknown>, limit: number, after?: string): Promise<{ results: ApiRecord[]; paging?: { next: { after: string } } }> {
    const filters = Object.entries(equals).map(([property, value]) => ({ property, value }));
    return this.request('POST', `${recordsOf(object)}/search`, { filters, limit, ...(after === undefined ? {} : { after }) });
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.o.fetch(this.o.baseUrl.replace(/\/+$/, '') + path, {
      method,
      headers: { authorization: `Bearer ${this.o.token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      redirect: 'manual',
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (response.status < 200 || response.status > 299) throw new ApiError(response.status, parsed);
    return parsed as T;
  }
}

const recordsOf = (object: string) => `/v1/objects/${encodeURIComponent(object)}/records`;

/** What the API refused and why, from its error body: `code: message`. */
function reasonOf(body: unknown): string {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return typeof error?.message === 'string' ? `${String(error.code ?? 'error')}: ${error.message}` : JSON.stringify(body ?? null);
}

/**
 * Runs `fn` with an API client on core's budgetedFetch — the rate budget, a timeout, the
 * run's stop, a bounded answer, a 429 pausing every sender until its Retry-After — and maps
 * its failure: a stop stays OUTFLOW_ABORTED; an answer goes by its status (core's
 * httpRefusal: a 4xx is the record's fault, not retryable, with `details.status`); no answer
 * at all is retryable.
 */
export async function call<T>(ctx: ConnectorContext<__Name__Config>, what: string, fn: (client: __Name__Api) => Promise<T>): Promise<T> {
  const { token, baseUrl = DEFAULT_BASE_URL, timeoutMs = 30_000 } = ctx.config;
  const send = budgetedFetch(ctx, { service: '__Name__', timeoutMs });
  try {
    return await fn(new __Name__Api({ token, baseUrl, fetch: send }));
  } catch (err) {
    if (isOutflowError(send.failure)) throw send.failure;
    if (send.failure !== undefined) throw unreachable(`__Name__ at ${new URL(baseUrl).origin}`, what, send.failure);
    // Neither an answer nor a failed request: a fault in the code, not the API's.
    if (!(err instanceof ApiError)) throw err;
    throw httpRefusal({ service: '__Name__', what, status: err.status, reason: reasonOf(err.body), retryAfterMs: send.retryAfterMs, credential: 'token' });
  }
}
// #endif
// #if fetch

/** The most bytes of one answer read: a larger answer fails as retryable, and is not read further. */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
/** Vendor messages are shown to people; a long one is cut here. */
const MAX_MESSAGE_LENGTH = 300;

/** One request to the API. */
export interface Call {
  method: 'GET' | 'POST';
  /** The path under the base URL, e.g. `/v1/account`. */
  path: string;
  query?: Record<string, string | number | undefined>;
  /** Sent as JSON. */
  body?: unknown;
  /** Another signal that cancels the request, e.g. a stream's close(). */
  signal?: AbortSignal;
}

/** An answer of any status, its body parsed as JSON (undefined when empty or not JSON). */
export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** The API's error body, `{ "error": { "code", "message" } }`, when the answer has one. */
export function vendorError(body: unknown): { code: string; message: string } | undefined {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (typeof error?.code !== 'string') return undefined;
  const message = typeof error.message === 'string' ? error.message.slice(0, MAX_MESSAGE_LENGTH) : '';
  return { code: error.code, message };
}

/** Where errors say the request went: the origin only, never a path or query that may carry data. */
export function origin(ctx: ConnectorContext<__Name__Config>): string {
  return `__Name__ at ${new URL(ctx.config.baseUrl ?? DEFAULT_BASE_URL).origin}`;
}

/**
 * Sends one request and reads its answer, whatever its status. Every request, reads too,
 * is drawn from the connection's rate budget (the vendor counts them all). It gives up
 * after `timeoutMs`, and at once when `ctx.signal` aborts (the engine is stopping for
 * good: OUTFLOW_ABORTED). A timeout or a network failure throws a retryable error with
 * `code`: the request may have been applied or not, which the engine resolves through the
 * declared idempotency. Errors name the origin and a network code, never the token.
 */
export function send(ctx: ConnectorContext<__Name__Config>, call: Call, code: ErrorCode): Promise<Answer> {
  return ctx.rateBudget.request(() => exchange(ctx, call, code));
}

async function exchange(ctx: ConnectorContext<__Name__Config>, call: Call, code: ErrorCode): Promise<Answer> {
  const url = new URL((ctx.config.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '') + call.path);
  for (const [name, value] of Object.entries(call.query ?? {})) if (value !== undefined) url.searchParams.set(name, String(value));
  const timeoutMs = ctx.config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const where = origin(ctx);
  try {
    const response = await fetch(url, {
      method: call.method,
      headers: {
        authorization: `Bearer ${ctx.config.token}`,
        accept: 'application/json',
        ...(call.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
      redirect: 'manual',
      signal: AbortSignal.any([ctx.signal, timeout, ...(call.signal === undefined ? [] : [call.signal])]),
    });
    const text = await readAnswer(response.body, { limit: MAX_ANSWER_BYTES, where, status: response.status, contentLength: response.headers.get('content-length') });
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: response.status, headers: response.headers, body };
  } catch (err) {
    if (ctx.signal.aborted || call.signal?.aborted) {
      throw new OutflowError('OUTFLOW_ABORTED', `a request to ${where} was stopped because the run is stopping`, { retryable: true });
    }
    if (timeout.aborted) throw new OutflowError(code, `${where} did not answer within ${timeoutMs} ms`, { retryable: true });
    if (isOutflowError(err)) throw err;
    // fetch refuses to build a request (a bad header value) with a bare TypeError whose
    // message quotes the value, which may be the token: say what to check instead.
    if (err instanceof TypeError && err.cause === undefined) {
      throw new OutflowError(code, `could not build a request to ${where}: check \`baseUrl\` and \`token\``, { retryable: false });
    }
    throw new OutflowError(code, `could not reach ${where}: ${networkCode(err)}`, { retryable: true });
  }
}

/**
 * The error for an answer that failed a whole request. A 429 or a 5xx passes: the same
 * request may succeed later (after `Retry-After`, which pauses every sender of the
 * connection). A 429 was refused before anything was applied (`notApplied`). Any other
 * status (401, 403, 404, 400 …) fails the same way again: not retryable.
 */
export function failure(ctx: ConnectorContext<__Name__Config>, answer: Answer, code: ErrorCode, what: string): OutflowError {
  const { status } = answer;
  const vendor = vendorError(answer.body);
  const retryAfterMs = parseRetryAfter(answer.headers.get('retry-after'));
  const said = vendor === undefined ? '' : ` (${vendor.code}: ${vendor.message})`;
  return new OutflowError(code, `${origin(ctx)} refused ${what} with HTTP ${status}${said}`, {
    retryable: status === 429 || status === 408 || status >= 500,
    notApplied: status === 429,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    details: { status },
  });
}

/**
 * `check()` of every role: reads the account the token belongs to, which fails on a wrong
 * token or an unreachable API. Changes nothing.
 */
export async function checkAccount(ctx: ConnectorContext<__Name__Config>): Promise<void> {
  let answer: Answer;
  try {
    answer = await send(ctx, { method: 'GET', path: '/v1/account' }, 'OUTFLOW_CHECK_FAILED');
  } catch (err) {
    if (isOutflowError(err, 'OUTFLOW_ABORTED') || isOutflowError(err, 'OUTFLOW_CHECK_FAILED')) throw err;
    throw new OutflowError('OUTFLOW_CHECK_FAILED', (err as Error).message);
  }
  if (answer.status !== 200) throw failure(ctx, answer, 'OUTFLOW_CHECK_FAILED', 'the account request');
}
// #endif
