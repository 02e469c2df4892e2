/**
 * One connection's way to Braze's REST API: requests go through core's budgetedFetch (the
 * rate budget, a timeout, the run's stop, a bounded answer, a 429 pausing every sender until
 * X-RateLimit-Reset) over an undici connection pool of the connection's own, with the REST
 * API key as a bearer token. An X-RateLimit-Limit lower than the limit declared for the
 * endpoint is kept from then on.
 */
import { Agent } from 'undici';
import { budgetedFetch, destinationError, isOutflowError, perConnection, readRateLimitHeaders, redact, type ConnectorContext, type OutflowError, type RateLimit } from '@outflow/core';
import { DEFAULT_TIMEOUT_MS, type BrazeConfig } from './config.js';

/** Vendor messages are shown to people; a long one is cut here. */
const MAX_MESSAGE_LENGTH = 300;
/** Connections kept open to the instance: enough for every write in flight. */
const CONNECTIONS = 8;

/** A 2xx answer: its status and its JSON body. */
export interface Answer {
  status: number;
  body: unknown;
}

/** What Braze said in an error body: `{ "message": …, "errors": [...] }`. */
function said(text: string): string {
  let message = text.trim();
  try {
    const body = JSON.parse(text) as { message?: unknown; errors?: unknown } | null;
    const errors = Array.isArray(body?.errors) && body.errors.length > 0 ? ` ${JSON.stringify(body.errors)}` : '';
    if (typeof body?.message === 'string') message = body.message + errors;
  } catch {
    // Not JSON: the text is the reason.
  }
  message = redact(message).slice(0, MAX_MESSAGE_LENGTH);
  return message === '' ? '' : `: ${message}`;
}

/** Why a fetch failed below HTTP: its cause's code (ECONNREFUSED …), else its message. */
const networkCode = (err: unknown): string => String((err as { cause?: { code?: unknown } }).cause?.code ?? (err instanceof Error ? err.message : err));

export class Session {
  private readonly agent = new Agent({ connections: CONNECTIONS });
  private readonly origin: string;
  /** The lowest X-RateLimit-Limit seen per window length, so a lower one is added once. */
  private readonly learned = new Map<number, number>();

  constructor(private readonly ctx: ConnectorContext<BrazeConfig>) {
    this.origin = new URL(ctx.config.instanceUrl).origin;
  }

  /**
   * POSTs `body` to `path` and answers its 2xx (a 202 `queued` included: Braze took it).
   * Throws for anything else: a 429 retryable and not applied, with the wait until
   * X-RateLimit-Reset; a 5xx, a timeout or a lost connection retryable (applied or not,
   * nobody knows); a 401 or 403 naming the key; any other refusal (a 400: the request as a
   * whole is malformed) not retryable. `limit` is the endpoint's declared limit.
   */
  async post(path: string, body: unknown, what: string, limit: RateLimit): Promise<Answer> {
    const { config, rateBudget } = this.ctx;
    const send = budgetedFetch(this.ctx, {
      service: 'Braze',
      timeoutMs: config.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      onAnswer: ({ headers }) => {
        const seen = readRateLimitHeaders(headers).limit;
        if (seen !== undefined && seen > 0 && seen < (this.learned.get(limit.perMs) ?? limit.requests)) {
          this.learned.set(limit.perMs, seen);
          rateBudget.addLimit({ requests: seen, perMs: limit.perMs });
        }
      },
    });
    const url = new URL(path, config.instanceUrl.replace(/\/*$/, '/')).href;
    let res: Response;
    try {
      res = await send(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${config.restApiKey}`, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        redirect: 'manual',
        // Node's fetch is undici; its `dispatcher` option takes this pool (undici's own
        // types and the ones Node's fetch is typed with differ in version, not in use).
        dispatcher: this.agent,
      } as unknown as RequestInit);
    } catch (err) {
      if (isOutflowError(err)) throw err;
      throw destinationError(`could not reach Braze at ${this.origin} for ${what}: ${redact(networkCode(err))}`, { retryable: true, cause: err });
    }
    const text = await res.text();
    if (res.status >= 200 && res.status < 300) {
      let parsed: unknown;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        throw destinationError(`Braze answered ${what} with HTTP ${res.status} and a body that is not JSON`, { retryable: true, status: res.status });
      }
      return { status: res.status, body: parsed };
    }
    throw this.refusal(res.status, said(text), what, send.retryAfterMs);
  }

  private refusal(status: number, reason: string, what: string, retryAfterMs: number | undefined): OutflowError {
    const at = `Braze at ${this.origin}`;
    if (status === 429) return destinationError(`${at} rate limited ${what} (HTTP 429${reason})`, { retryable: true, status, retryAfterMs: retryAfterMs ?? 1_000 });
    if (status === 408 || status >= 500) return destinationError(`${at} failed ${what} (HTTP ${status}${reason})`, { retryable: true, status });
    if (status === 401 || status === 403) {
      return destinationError(`${at} refused the REST API key for ${what} (HTTP ${status}${reason}); check \`restApiKey\` and its permissions`, { retryable: false, status });
    }
    return destinationError(`${at} refused ${what} (HTTP ${status}${reason})`, { retryable: false, status });
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

const sessions = perConnection((ctx: ConnectorContext<BrazeConfig>) => new Session(ctx));

/** The session of a connection, one per connection context, made on first use. */
export const sessionOf = sessions.of;

/** Closes the connection's session, if it has one. */
export async function closeSession(ctx: ConnectorContext<BrazeConfig>): Promise<void> {
  await sessions.drop(ctx)?.close();
}
