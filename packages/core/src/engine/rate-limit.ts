import type { RateLimit } from '../contracts.js';

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
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
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
