import type { RateLimit } from '../contracts.js';

/** Why a request was refused by a {@link RollingWindow}, and when a request would next be taken. */
export interface WindowRefusal {
  limit: RateLimit;
  retryAfterMs: number;
}

/**
 * A vendor's rolling-window rate limit ("N requests in any W ms"), as emulators enforce
 * it: a request is counted when it arrives, and refused (not counted) when the last W ms
 * already hold N. Vendors with several windows keep one each.
 */
export class RollingWindow {
  /** Arrival times of admitted requests; those before `head` have left the window. */
  private hits: number[] = [];
  private head = 0;

  constructor(readonly limit: RateLimit) {}

  /** Counts a request arriving at `now`, or says how long until one would be taken. */
  admit(now: number = Date.now()): WindowRefusal | null {
    this.trim(now);
    const { requests, perMs } = this.limit;
    if (this.hits.length - this.head >= requests) {
      return { limit: this.limit, retryAfterMs: Math.max(1, this.hits[this.hits.length - requests]! + perMs - now) };
    }
    this.hits.push(now);
    return null;
  }

  /** Requests still allowed in the window ending at `now` (for X-RateLimit-Remaining headers). */
  remaining(now: number = Date.now()): number {
    this.trim(now);
    return Math.max(0, this.limit.requests - (this.hits.length - this.head));
  }

  private trim(now: number): void {
    const cutoff = now - this.limit.perMs;
    while (this.head < this.hits.length && this.hits[this.head]! <= cutoff) this.head++;
    // Drop the expired prefix now and then rather than shifting on every request.
    if (this.head > 4096) {
      this.hits = this.hits.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * A vendor's fixed-window rate limit ("N requests per window", windows starting at
 * multiples of W ms since the epoch, as Intercom's 10-second windows): a request is counted
 * in the window it arrives in, and refused (not counted) once that window holds N.
 */
export class FixedWindow {
  private start = 0;
  private used = 0;

  /** The limit; a change applies from the next request on. */
  constructor(public limit: RateLimit) {}

  /** Counts a request arriving at `now`; what the window says, and whether it was already spent. */
  admit(now: number = Date.now()): { spent: boolean; remaining: number; resetAt: number } {
    const { requests, perMs } = this.limit;
    const start = Math.floor(now / perMs) * perMs;
    if (start !== this.start) [this.start, this.used] = [start, 0];
    const spent = this.used >= requests;
    if (!spent) this.used++;
    return { spent, remaining: requests - this.used, resetAt: start + perMs };
  }
}

/** A `Retry-After` header value in whole seconds, at least one, as most vendors send it. */
export function retryAfterHeader(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}
