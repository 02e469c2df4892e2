/**
 * Sends alert notices to `alerts.webhook`: a JSON POST signed exactly as the webhook
 * destination signs its batches (`x-outflow-timestamp`, and `x-outflow-signature:
 * sha256=<HMAC-SHA256 of "<timestamp>.<body>">`), so a receiver verifies both the same way.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, OutflowError, parseRetryAfter } from '@outflow/core';
import { SIGNATURE_HEADER, signBody, TIMESTAMP_HEADER } from '@outflow/connector-webhook';

/** How long one POST may take before it is cancelled. */
const TIMEOUT_MS = 10_000;
/** Tries per notice: the first, then after 1 s, 2 s and 4 s (or the receiver's Retry-After, up to a minute). */
const ATTEMPTS = 4;
const MAX_WAIT_MS = 60_000;

/** Posts one JSON notice; resolves once the receiver answered 2xx, throws naming why not. */
export type AlertPost = (notice: object, signal: AbortSignal) => Promise<void>;

/**
 * A poster for `alerts.webhook`. A 429 (after its Retry-After), a 5xx, a timeout or a
 * refused connection is tried again; any other answer fails at once. Errors never carry
 * the URL (it may hold a token) and are redacted again where they are logged.
 */
export function alertWebhook(webhook: { url: string; secret: string }): AlertPost {
  return async (notice, signal) => {
    const body = JSON.stringify(notice);
    for (let attempt = 1; ; attempt++) {
      let retryAfterMs: number | undefined;
      let problem: string;
      try {
        const timestamp = Math.floor(Date.now() / 1000);
        const res = await fetch(webhook.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: signBody(webhook.secret, timestamp, body) },
          body,
          redirect: 'manual',
          signal: AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MS)]),
        });
        await res.body?.cancel();
        if (res.ok) return;
        problem = `answered HTTP ${res.status}`;
        if (res.status !== 429 && res.status < 500) throw failure(problem);
        if (res.status === 429) retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      } catch (e) {
        if (e instanceof OutflowError || signal.aborted) throw e instanceof OutflowError ? e : failure('was not reached: the process is stopping');
        problem = `could not be reached (${describeError(e)})`;
      }
      if (attempt === ATTEMPTS) throw failure(`${problem}, ${ATTEMPTS} times`);
      await sleep(Math.min(retryAfterMs ?? 1000 * 2 ** (attempt - 1), MAX_WAIT_MS), undefined, { signal }).catch(() => {
        throw failure(`${problem}; not tried again: the process is stopping`);
      });
    }
  };
}

function failure(what: string): OutflowError {
  return new OutflowError('OUTFLOW_DESTINATION', `the alert webhook (alerts.webhook.url) ${what}`);
}
