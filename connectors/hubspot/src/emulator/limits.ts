/**
 * HubSpot's API limits for a private app: a rolling ten-second window (TEN_SECONDLY_ROLLING),
 * a daily count that resets at midnight (DAILY) and a per-second cap on search (SECONDLY),
 * with the X-HubSpot-RateLimit-* headers HubSpot sends on every answer.
 */

/** Rate limits the emulator enforces; HubSpot's Professional tier by default. */
export interface HubSpotLimits {
  /** Requests allowed in any rolling window of `windowMs` (TEN_SECONDLY_ROLLING); 190 by default. */
  perWindow?: number;
  /** The rolling window, in milliseconds; 10 000 by default. */
  windowMs?: number;
  /** Requests allowed per day (DAILY); 625 000 by default. */
  daily?: number;
  /**
   * When the daily count resets: every this many milliseconds from start when set (for
   * tests), otherwise at midnight UTC.
   */
  dailyResetMs?: number;
  /** Search requests allowed per second; 4 by default. */
  searchPerSecond?: number;
}

/** A limit that refuses a request: its policyName, HubSpot's message and when to retry. */
export interface Refusal {
  policy: 'DAILY' | 'TEN_SECONDLY_ROLLING' | 'SECONDLY';
  message: string;
  retryAfterMs: number;
}

function nextMidnightUtc(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

/** The Retry-After HubSpot sends with a 429: whole seconds, at least one. */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

export class RateLimits {
  private limits: Required<Omit<HubSpotLimits, 'dailyResetMs'>> & { dailyResetMs?: number };
  /** Times of admitted requests; those before `hitHead` have left the window. */
  private hits: number[] = [];
  private hitHead = 0;
  private searchHits: number[] = [];
  private dailyUsed = 0;
  private dailyResetAt: number;

  constructor(limits: HubSpotLimits = {}) {
    this.limits = { perWindow: 190, windowMs: 10_000, daily: 625_000, searchPerSecond: 4, ...limits };
    this.dailyResetAt = this.nextDailyReset(Date.now());
  }

  /** Changes limits from now on; counts so far are kept. */
  set(limits: HubSpotLimits): void {
    this.limits = { ...this.limits, ...limits };
    if (limits.dailyResetMs !== undefined) this.dailyResetAt = this.nextDailyReset(Date.now());
  }

  /** Requests counted against the daily limit since its last reset. */
  dailyUsage(now: number): number {
    this.rollDaily(now);
    return this.dailyUsed;
  }

  /** Counts a request against the limits, or says which limit refuses it (and counts nothing). */
  admit(now: number, isSearch: boolean): Refusal | null {
    this.rollDaily(now);
    const { perWindow, windowMs, daily, searchPerSecond } = this.limits;
    if (this.dailyUsed >= daily) {
      return { policy: 'DAILY', message: 'You have reached your daily limit.', retryAfterMs: this.dailyResetAt - now };
    }
    this.trim(now);
    if (this.hits.length - this.hitHead >= perWindow) {
      const oldest = this.hits[this.hits.length - perWindow]!;
      return { policy: 'TEN_SECONDLY_ROLLING', message: 'You have reached your ten_secondly_rolling limit.', retryAfterMs: oldest + windowMs - now };
    }
    if (isSearch) {
      this.searchHits = this.searchHits.filter((t) => t > now - 1000);
      if (this.searchHits.length >= searchPerSecond) {
        return { policy: 'SECONDLY', message: 'You have reached your secondly limit.', retryAfterMs: this.searchHits[0]! + 1000 - now };
      }
      this.searchHits.push(now);
    }
    this.hits.push(now);
    this.dailyUsed++;
    return null;
  }

  /** The X-HubSpot-RateLimit-* headers as of `now`. */
  headers(now: number): Record<string, string> {
    this.trim(now);
    const { perWindow, windowMs, daily } = this.limits;
    const inWindow = this.hits.length - this.hitHead;
    const secondly = Math.max(1, Math.floor((perWindow * 1000) / windowMs));
    let lastSecond = 0;
    for (let i = this.hits.length - 1; i >= this.hitHead && this.hits[i]! > now - 1000; i--) lastSecond++;
    return {
      'x-hubspot-ratelimit-daily': String(daily),
      'x-hubspot-ratelimit-daily-remaining': String(Math.max(0, daily - this.dailyUsed)),
      'x-hubspot-ratelimit-interval-milliseconds': String(windowMs),
      'x-hubspot-ratelimit-max': String(perWindow),
      'x-hubspot-ratelimit-remaining': String(Math.max(0, perWindow - inWindow)),
      'x-hubspot-ratelimit-secondly': String(secondly),
      'x-hubspot-ratelimit-secondly-remaining': String(Math.max(0, secondly - lastSecond)),
    };
  }

  private trim(now: number): void {
    const cutoff = now - this.limits.windowMs;
    while (this.hitHead < this.hits.length && this.hits[this.hitHead]! <= cutoff) this.hitHead++;
    // Drop the expired prefix now and then rather than shifting on every request.
    if (this.hitHead > 4096) {
      this.hits = this.hits.slice(this.hitHead);
      this.hitHead = 0;
    }
  }

  private nextDailyReset(now: number): number {
    return this.limits.dailyResetMs !== undefined ? now + this.limits.dailyResetMs : nextMidnightUtc(now);
  }

  private rollDaily(now: number): void {
    if (now < this.dailyResetAt) return;
    this.dailyUsed = 0;
    this.dailyResetAt = this.nextDailyReset(now);
  }
}
