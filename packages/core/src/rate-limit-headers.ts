import { MAX_PAUSE_MS } from './delivery/rate-budget.js';

/** What a vendor's X-RateLimit-Limit, -Remaining and -Reset headers say; each absent when not sent or unreadable. */
export interface RateLimitHeaders {
  /** Requests the current window allows. */
  limit?: number;
  /** Requests left in the current window. */
  remaining?: number;
  /** Milliseconds from now until the window resets (at least 0, at most {@link MAX_PAUSE_MS}). */
  resetMs?: number;
}

/**
 * Reads the X-RateLimit-* headers many APIs send (Intercom, GitHub, Zendesk …). `Reset` is
 * read as a UNIX time in seconds when it is one (over 10^9), else as seconds from now.
 * Negative or non-numeric values are left out.
 */
export function readRateLimitHeaders(headers: { get(name: string): string | null }, now: number = Date.now()): RateLimitHeaders {
  const num = (name: string): number | undefined => {
    const text = headers.get(name)?.trim();
    const n = text === undefined || text === '' ? Number.NaN : Number(text);
    return Number.isFinite(n) && n >= 0 ? n : undefined;
  };
  const out: RateLimitHeaders = {};
  const limit = num('x-ratelimit-limit');
  const remaining = num('x-ratelimit-remaining');
  const reset = num('x-ratelimit-reset');
  if (limit !== undefined) out.limit = limit;
  if (remaining !== undefined) out.remaining = remaining;
  if (reset !== undefined) out.resetMs = Math.min(MAX_PAUSE_MS, Math.max(0, reset > 1e9 ? reset * 1000 - now : reset * 1000));
  return out;
}
