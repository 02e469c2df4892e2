import type { ConnectorContext } from './contracts.js';
import { destinationError, OutflowError } from './errors.js';
import { readAnswer } from './http.js';
import { readRateLimitHeaders } from './rate-limit-headers.js';
import { parseRetryAfter } from './retry-after.js';

export interface BudgetedFetchOptions {
  /** The service, as errors name it: e.g. `Intercom`. */
  service: string;
  /** How long one request may wait for its answer before it is cancelled. */
  timeoutMs: number;
  /** The largest answer body read (default 8 MiB); a larger one fails, retryable. */
  maxAnswerBytes?: number;
  /** The wait after a 429 that says neither Retry-After nor X-RateLimit-Reset (default 1 s). */
  defaultRetryAfterMs?: number;
  /**
   * The limit the connector declared for the window the vendor's X-RateLimit-Limit header
   * speaks of: an answer stating a lower limit for that window has it kept in the
   * connection's budget from then on, so a workspace with a lower limit is obeyed.
   */
  statedLimit?: { perMs: number; declared: number };
  /** Sees every answer's status and headers before its body is read: e.g. to learn a limit from them. */
  onAnswer?(answer: { status: number; headers: Headers }): void;
}

/** A `fetch` for a vendor SDK, with what its last request left behind (make one per SDK call to read them). */
export interface BudgetedFetch {
  (input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** The wait the last 429 asked for, in milliseconds. */
  readonly retryAfterMs: number | undefined;
  /**
   * Why the last request failed below the HTTP answer (the run stopping, a timeout, a refused
   * connection), as the SDK that called it may report it only as text.
   */
  readonly failure: unknown;
}

/**
 * A `fetch` to hand a vendor SDK that takes one: every request waits for its turn in the
 * connection's rate budget, is cancelled when the run stops (OUTFLOW_ABORTED, retryable) or
 * after `timeoutMs` (a retryable destination error), and has its answer read whole, at
 * most `maxAnswerBytes`, before the SDK sees it. A 429 pauses every sender of the connection
 * for as long as its Retry-After or X-RateLimit-Reset header says. Turn the SDK's own
 * retries off: the engine retries, within the budget.
 */
export function budgetedFetch(ctx: ConnectorContext, o: BudgetedFetchOptions): BudgetedFetch {
  const { signal, rateBudget } = ctx;
  const limit = o.maxAnswerBytes ?? 8 * 1024 * 1024;
  let retryAfterMs: number | undefined;
  let failure: unknown;
  const send = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    rateBudget.request(async () => {
      failure = undefined;
      const timeout = AbortSignal.timeout(o.timeoutMs);
      const url = new URL(input instanceof Request ? input.url : String(input));
      const what = `${init?.method ?? (input instanceof Request ? input.method : 'GET')} ${url.pathname}`;
      try {
        const res = await fetch(input, { ...init, signal: AbortSignal.any([signal, timeout]) });
        const stated = o.statedLimit === undefined ? undefined : readRateLimitHeaders(res.headers).limit;
        if (stated !== undefined && stated > 0 && stated < o.statedLimit!.declared) rateBudget.addLimit({ requests: stated, perMs: o.statedLimit!.perMs });
        o.onAnswer?.({ status: res.status, headers: res.headers });
        if (res.status === 429) {
          retryAfterMs = parseRetryAfter(res.headers.get('retry-after')) ?? readRateLimitHeaders(res.headers).resetMs ?? o.defaultRetryAfterMs ?? 1_000;
          rateBudget.pause(retryAfterMs);
        }
        const where = `${o.service} (${what})`;
        const text = await readAnswer(res.body, { limit, where, status: res.status, contentLength: res.headers.get('content-length') });
        return new Response(res.status === 204 || res.status === 304 ? null : text, { status: res.status, statusText: res.statusText, headers: res.headers });
      } catch (err) {
        failure = signal.aborted
          ? new OutflowError('OUTFLOW_ABORTED', `the run is stopping; ${o.service} ${what} was cancelled before it answered`, { retryable: true })
          : timeout.aborted
            ? destinationError(`${o.service} did not answer ${what} within ${o.timeoutMs} ms; the request was cancelled`, { retryable: true })
            : err;
        throw failure;
      }
    });
  return Object.defineProperties(send, {
    retryAfterMs: { get: () => retryAfterMs },
    failure: { get: () => failure },
  }) as BudgetedFetch;
}
