import type { RateBudget, RateLimit } from '../contracts.js';
import { OutflowError } from '../errors.js';

/** The longest pause a Retry-After may impose (a day); longer values are clamped. */
export const MAX_PAUSE_MS = 24 * 60 * 60 * 1000;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export { sleep };

/**
 * Keeps to a set of declared limits. Each limit "N requests per W ms" is enforced as a
 * sliding window (GCRA-style request log): no window of W ms ever holds more than N starts,
 * which saturates a rolling-window limit without tripping it. A plain token bucket with
 * capacity N admits up to 2N starts in some window of W and trips such limits.
 * `pauseFor` honours a Retry-After for every caller.
 */
export class RateLimiter {
  private readonly windows: { limit: RateLimit; starts: number[]; head: number }[];
  private pausedUntil = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(limits: readonly RateLimit[], private readonly now: () => number = Date.now) {
    this.windows = limits
      .filter((l) => l.requests > 0 && l.perMs > 0)
      .map((limit) => ({ limit, starts: [], head: 0 }));
  }

  /** Stops every caller until `ms` from now (Retry-After). */
  pauseFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + Math.min(Math.max(0, ms), MAX_PAUSE_MS));
  }

  /** Resolves when one request may start; callers are served in order. */
  acquire(signal?: AbortSignal): Promise<void> {
    const next = this.chain.then(() => this.waitTurn(signal));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async waitTurn(signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (signal?.aborted) return;
      const now = this.now();
      let wait = this.pausedUntil - now;
      for (const w of this.windows) {
        while (w.head < w.starts.length && w.starts[w.head]! <= now - w.limit.perMs) w.head++;
        if (w.head > 1024) {
          w.starts = w.starts.slice(w.head);
          w.head = 0;
        }
        const inWindow = w.starts.length - w.head;
        if (inWindow >= w.limit.requests) {
          const oldest = w.starts[w.starts.length - w.limit.requests]!;
          wait = Math.max(wait, oldest + w.limit.perMs - now + 1);
        }
      }
      if (wait <= 0) {
        for (const w of this.windows) w.starts.push(now);
        return;
      }
      await sleep(wait, signal);
    }
  }
}

/**
 * The request budget of one destination connection ({@link RateBudget}): a sliding-window
 * limiter shared by every sync that writes through the connection. Limits declared by
 * several objects of one connection are all kept. Waits end early, with `OUTFLOW_ABORTED`,
 * when `signal` aborts.
 */
export class ConnectionBudget implements RateBudget {
  private limiter: RateLimiter;
  private readonly limits: RateLimit[] = [];
  private pausedUntil = 0;
  /** Requests started through this budget (for metrics and tests). */
  started = 0;

  constructor(
    limits: readonly RateLimit[],
    private readonly signal?: AbortSignal,
  ) {
    this.limiter = new RateLimiter([]);
    this.addLimits(limits);
  }

  /** Adds limits not yet kept (another object of the same connection may declare more). */
  addLimits(limits: readonly RateLimit[]): void {
    const fresh = limits.filter((l) => !this.limits.some((k) => k.requests === l.requests && k.perMs === l.perMs));
    if (fresh.length === 0) return;
    this.limits.push(...fresh);
    this.limiter = new RateLimiter(this.limits);
    this.limiter.pauseFor(Math.max(0, this.pausedUntil - Date.now()));
  }

  async acquire(requests = 1): Promise<void> {
    for (let i = 0; i < requests; i++) {
      await this.limiter.acquire(this.signal);
      if (this.signal?.aborted) {
        throw new OutflowError('OUTFLOW_ABORTED', 'the run is stopping; the request was not sent', { retryable: true });
      }
      this.started++;
    }
  }

  pause(ms: number): void {
    const bounded = Math.min(Math.max(0, ms), MAX_PAUSE_MS);
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + bounded);
    this.limiter.pauseFor(bounded);
  }
}

/** A budget with no limits: for contexts of connections that are not rate limited (tests). */
export function unlimitedBudget(signal?: AbortSignal): RateBudget {
  return new ConnectionBudget([], signal);
}
