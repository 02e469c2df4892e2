import { IntercomClient, IntercomError } from 'intercom-client';
import { budgetedFetch, httpRefusal, isOutflowError, unreachable, type ConnectorContext } from '@outflow/core';
import { DEFAULT_BASE_URL, limitOf, type IntercomConfig } from './config.js';

/** What Intercom refused and why, from its error.list body: `code: message`. */
function reasonOf(body: unknown): string {
  const first = (body as { errors?: { code?: unknown; message?: unknown }[] } | undefined)?.errors?.[0];
  return typeof first?.message === 'string' ? `${String(first.code ?? 'error')}: ${first.message}` : JSON.stringify(body ?? null);
}

/**
 * Runs `fn` with an SDK client (its retries off: Outflow retries) on core's budgetedFetch —
 * the rate budget, a timeout, the run's stop, a bounded answer, a 429 pausing every sender
 * until X-RateLimit-Reset, a lower X-RateLimit-Limit than declared kept from then on — and
 * maps its failure: a stop stays OUTFLOW_ABORTED; an answer goes by its status (core's
 * httpRefusal: a 4xx is the record's fault, not retryable, with `details.status`); no answer
 * at all is retryable.
 */
export async function call<T>(ctx: ConnectorContext<IntercomConfig>, what: string, fn: (client: IntercomClient) => Promise<T>): Promise<T> {
  const { token, baseUrl = DEFAULT_BASE_URL, timeoutMs = 30_000 } = ctx.config;
  const declared = limitOf(ctx.config);
  const send = budgetedFetch(ctx, { service: 'Intercom', timeoutMs, statedLimit: { perMs: declared.perMs, declared: declared.requests } });
  try {
    return await fn(new IntercomClient({ token, baseUrl, maxRetries: 0, timeoutInSeconds: timeoutMs / 1000 + 60, fetch: send }));
  } catch (err) {
    if (isOutflowError(send.failure)) throw send.failure;
    if (send.failure !== undefined) throw unreachable(`Intercom at ${new URL(baseUrl).origin}`, what, send.failure);
    // Neither an answer nor a failed request: a fault in the code, not the API's.
    if (!(err instanceof IntercomError) || err.statusCode === undefined) throw err;
    throw httpRefusal({ service: 'Intercom', what, status: err.statusCode, reason: reasonOf(err.body), retryAfterMs: send.retryAfterMs, credential: 'token' });
  }
}
