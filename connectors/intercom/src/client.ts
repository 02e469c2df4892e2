import { IntercomClient, IntercomError } from 'intercom-client';
import { budgetedFetch, destinationError, isOutflowError, OutflowError, readRateLimitHeaders, redact, type ConnectorContext } from '@outflow/core';
import { limitOf, type IntercomConfig } from './config.js';

/** What Intercom refused and why, from its error.list body. */
function reasonOf(body: unknown): { code: string; message: string } {
  const first = (body as { errors?: { code?: unknown; message?: unknown }[] } | undefined)?.errors?.[0];
  const text = typeof first?.message === 'string' ? first.message : JSON.stringify(body ?? null);
  return { code: typeof first?.code === 'string' ? first.code : 'error', message: redact(text).slice(0, 300) };
}

/**
 * One connection's way to Intercom: each call gets an SDK client (its retries off: Outflow
 * retries) on core's budgetedFetch — the rate budget, a timeout, the run's stop, a bounded
 * answer, a 429 pausing every sender until X-RateLimit-Reset — and a lower
 * X-RateLimit-Limit than declared is kept from then on.
 */
export class Session {
  private perWindow: number;

  constructor(private readonly ctx: ConnectorContext<IntercomConfig>) {
    this.perWindow = limitOf(ctx.config).requests;
  }

  /**
   * Runs `fn` and maps its failure: a 4xx refusal is a non-retryable OUTFLOW_DESTINATION with
   * `details.status` and `details.code` (the record's fault); 401 and 403 say to check the
   * token; 429, 5xx, timeouts and network failures are retryable (a 429 `notApplied`, with
   * the wait until the window resets); a stop is OUTFLOW_ABORTED.
   */
  async call<T>(what: string, fn: (client: IntercomClient) => Promise<T>): Promise<T> {
    const { config, rateBudget } = this.ctx;
    const timeoutMs = config.timeoutMs ?? 30_000;
    const origin = new URL(config.baseUrl ?? 'https://api.intercom.io').origin;
    const send = budgetedFetch(this.ctx, {
      service: 'Intercom',
      timeoutMs,
      onAnswer: ({ headers }) => {
        const seen = readRateLimitHeaders(headers).limit;
        if (seen !== undefined && seen < this.perWindow) rateBudget.addLimit({ requests: (this.perWindow = seen), perMs: 10_000 });
      },
    });
    try {
      return await fn(new IntercomClient({ token: config.token, baseUrl: config.baseUrl ?? origin, maxRetries: 0, timeoutInSeconds: timeoutMs / 1000 + 60, fetch: send }));
    } catch (err) {
      const cause = send.failure;
      if (isOutflowError(cause)) throw cause;
      const status = err instanceof IntercomError ? err.statusCode : undefined;
      if (status === undefined) {
        const detail = cause instanceof Error ? ((cause.cause as NodeJS.ErrnoException | undefined)?.code ?? cause.message) : String(err);
        throw destinationError(`could not reach Intercom at ${origin} for ${what}: ${redact(detail)}`, { retryable: true, cause: err });
      }
      const { code, message } = reasonOf((err as IntercomError).body);
      if (status === 429) throw destinationError(`Intercom rate limit hit on ${what} (${code}: ${message})`, { retryable: true, retryAfterMs: send.retryAfterMs ?? 1_000, status });
      if (status === 401 || status === 403) throw destinationError(`Intercom refused the token for ${what} (HTTP ${status} ${code}: ${message}); check \`token\``, { retryable: false, status });
      if (status < 400 || status >= 500 || status === 408) {
        throw destinationError(`Intercom failed ${what} (HTTP ${status} ${code}: ${message})`, { retryable: true, status });
      }
      throw new OutflowError('OUTFLOW_DESTINATION', `Intercom refused ${what} (HTTP ${status} ${code}: ${message})`, { details: { status, code } });
    }
  }
}

const sessions = new WeakMap<object, Session>();

/** The session of a connection, one per connection context. */
export function sessionOf(ctx: ConnectorContext<IntercomConfig>): Session {
  let session = sessions.get(ctx);
  if (session === undefined) sessions.set(ctx, (session = new Session(ctx)));
  return session;
}
