import { ErrorCode, LogLevel, WebClient, type Logger as SlackLogger, type WebClientOptions } from '@slack/web-api';
import { budgetedFetch, destinationError, isOutflowError, OutflowError, type ConnectorContext } from '@outflow/core';
import { DEFAULT_API_URL, type SlackConfig } from './config.js';

/** Slack's answers that say the token, the app or the workspace cannot be used: no call will succeed until a person acts. */
const AUTH_ERRORS = new Set([
  'not_authed',
  'invalid_auth',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'no_permission',
  'missing_scope',
  'not_allowed_token_type',
  'team_access_not_granted',
  'ekm_access_denied',
  'org_login_required',
]);
/** Slack's answers for a failure on its side: the call may or may not have acted. */
const TRANSIENT_ERRORS = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']);

/** The Slack error code an OutflowError made by {@link slackCall} carries, when Slack answered one. */
export const slackCodeOf = (err: unknown): string | undefined => (isOutflowError(err) && typeof err.details['slack'] === 'string' ? err.details['slack'] : undefined);

/** Whether Slack refused a call because of the token, the app or the workspace: about the connection, not one message. */
export const isAuthFailure = (err: unknown): boolean => AUTH_ERRORS.has(slackCodeOf(err) ?? '');

/** The SDK's log lines below a warning are dropped; warnings go to the connection's logger, which masks secrets. */
function sdkLogger(ctx: ConnectorContext<SlackConfig>): SlackLogger {
  const warn = (...msg: unknown[]) => ctx.logger.warn({ sdk: '@slack/web-api' }, msg.map(String).join(' '));
  return { debug: () => undefined, info: () => undefined, warn, error: warn, setLevel: () => undefined, getLevel: () => LogLevel.WARN, setName: () => undefined };
}

/**
 * Makes one Web API call with `@slack/web-api`, its own retries off (the engine retries),
 * every request on core's budgetedFetch: drawn from the connection's rate budget, cancelled
 * when the run stops (OUTFLOW_ABORTED) or after `timeoutMs`, and a 429 pausing every sender
 * for its Retry-After. What goes wrong becomes an OUTFLOW_DESTINATION error whose
 * `details.slack` holds Slack's code when it answered one:
 * - `ratelimited` (HTTP 429): retryable, `notApplied`, with Retry-After as `retryAfterMs`;
 * - a refused token, app or workspace (`invalid_auth`, `account_inactive` …): not
 *   retryable, `notApplied`, saying to check `token`;
 * - a failure on Slack's side (HTTP 5xx, `internal_error` …), a timeout or a network
 *   failure: retryable, the outcome unknown;
 * - any other refusal (`channel_not_found`, `invalid_blocks` …): not retryable, `notApplied`.
 * Messages name the call and Slack's code, never the token.
 */
export async function slackCall<T>(ctx: ConnectorContext<SlackConfig>, what: string, fn: (client: WebClient) => Promise<T>): Promise<T> {
  const timeoutMs = ctx.config.timeoutMs ?? 30_000;
  const send = budgetedFetch(ctx, { service: 'Slack', timeoutMs });
  const client = new WebClient(ctx.config.token, {
    slackApiUrl: ctx.config.slackApiUrl ?? DEFAULT_API_URL,
    // budgetedFetch is a WHATWG fetch, which the SDK's narrower fetch type is a subset of.
    fetch: send as unknown as WebClientOptions['fetch'],
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    allowAbsoluteUrls: false,
    logger: sdkLogger(ctx),
  });
  try {
    return await fn(client);
  } catch (err) {
    if (isOutflowError(send.failure)) throw send.failure;
    // A stop while the request waited for its turn in the budget: nothing was sent.
    const original = (err as { original?: unknown }).original;
    if (isOutflowError(original)) throw original;
    throw failureOf(err, what, send.retryAfterMs);
  }
}

function failureOf(err: unknown, what: string, retryAfterMs: number | undefined): OutflowError {
  const e = err as { code?: unknown; data?: { error?: unknown }; retryAfter?: unknown; statusCode?: unknown; original?: Error };
  switch (e.code) {
    case ErrorCode.RateLimitedError: {
      const wait = retryAfterMs ?? (typeof e.retryAfter === 'number' ? e.retryAfter * 1000 : 1_000);
      return refusal(`Slack rate-limited ${what} (ratelimited); it asked to wait ${Math.ceil(wait / 1000)} s`, 'ratelimited', { retryable: true, notApplied: true, retryAfterMs: wait });
    }
    case ErrorCode.PlatformError: {
      const code = typeof e.data?.error === 'string' ? e.data.error.slice(0, 100) : 'unknown_error';
      if (AUTH_ERRORS.has(code)) {
        return refusal(`Slack refused ${what} because of the bot token or its app (${code}): check \`token\`, the app's scopes and that it is installed`, code, { retryable: false, notApplied: true });
      }
      if (TRANSIENT_ERRORS.has(code)) return refusal(`Slack failed ${what} on its side (${code})`, code, { retryable: true });
      return refusal(`Slack refused ${what} (${code})`, code, { retryable: false, notApplied: true });
    }
    case ErrorCode.HTTPError: {
      const status = typeof e.statusCode === 'number' ? e.statusCode : 0;
      return destinationError(`Slack answered ${what} with HTTP ${status}`, { retryable: status >= 500 || status === 408, status });
    }
    case ErrorCode.RequestError: {
      const cause = e.original?.cause as NodeJS.ErrnoException | undefined;
      return destinationError(`could not reach Slack for ${what}: ${cause?.code ?? e.original?.message ?? 'network failure'}`, { retryable: true, cause: err });
    }
    default:
      return destinationError(`Slack call ${what} failed: ${err instanceof Error ? err.message : String(err)}`, { retryable: true, cause: err });
  }
}

/** An answer Slack gave with its error code, kept in `details.slack`. */
function refusal(message: string, slack: string, o: { retryable: boolean; notApplied?: boolean; retryAfterMs?: number }): OutflowError {
  return new OutflowError('OUTFLOW_DESTINATION', message, { ...o, details: { slack } });
}
