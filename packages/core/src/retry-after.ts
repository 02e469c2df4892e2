import { MAX_PAUSE_MS } from './delivery/rate-budget.js';

/**
 * Milliseconds to wait from a Retry-After header: delay-seconds (`120`, fractions
 * tolerated) or an HTTP-date (a date already past means now). Absent, negative or
 * unreadable values are undefined; waits are capped at {@link MAX_PAUSE_MS} (a day), so a
 * server's typo cannot stall a sync for years.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = value.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(text)) {
    ms = Math.round(Number(text) * 1000);
  } else if (/^[A-Za-z]{3}/.test(text)) {
    // Every HTTP-date form (IMF-fixdate, RFC 850, asctime) opens with the day name.
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - now);
  } else {
    return undefined;
  }
  return Math.min(ms, MAX_PAUSE_MS);
}
