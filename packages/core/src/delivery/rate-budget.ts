import type { RateBudget, RateLimit } from '../contracts.js';
import { OutflowError } from '../errors.js';

/** The longest pause a Retry-After may impose (a day); longer values are clamped. */
export const MAX_PAUSE_MS = 24 * 60 * 60 * 1000;

/** The longest wait a system may ask of a connection unless its `maxWait` says otherwise. */
export const DEFAULT_MAX_WAIT_MS = 5 * 60 * 1000;

/** The longest delay a Node timer keeps; a longer one fires after 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const t = setTimeout(done, Math.min(ms, MAX_TIMER_MS));
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
 * sliding window (GCRA-style request log): no window of W ms ever holds more than N
 * requests, which saturates a rolling-window limit without tripping it. A plain token bucket
 * with capacity N admits up to 2N starts in some window of W and trips such limits.
 *
 * A request taken with `hold` counts as in flight until {@link release}, and from then on
 * by when it finished: a vendor counts requests when they arrive, which is some time after
 * they start (a busy event loop, a slow network), but never after the answer. Counting by
 * completion keeps every window of arrivals within the limit whatever the delay.
 * `pauseFor` honours a Retry-After for every caller.
 */
export class RateLimiter {
  private readonly windows: { limit: RateLimit; starts: number[]; head: number }[];
  private pausedUntil = 0;
  private inFlight = 0;
  /** The latest requests, whatever the limits: a limit added later counts them too. */
  private recent: number[] = [];
  private readonly completions: (() => void)[] = [];
  private chain: Promise<void> = Promise.resolve();

  constructor(limits: readonly RateLimit[], private readonly now: () => number = Date.now) {
    this.windows = [];
    for (const l of limits) this.addLimit(l);
  }

  /** Keeps one more limit from now on (a limit already kept is ignored). */
  addLimit(limit: RateLimit): void {
    if (!(limit.requests > 0 && limit.perMs > 0)) return;
    if (this.windows.some((w) => w.limit.requests === limit.requests && w.limit.perMs === limit.perMs)) return;
    // Requests already made count against the new window too, so adding it never allows a
    // burst (a connector may learn its limits only after its first requests).
    const since = this.now() - limit.perMs;
    this.windows.push({ limit: { ...limit }, starts: this.recent.filter((t) => t > since), head: 0 });
  }

  private remember(t: number): void {
    this.recent.push(t);
    if (this.recent.length > 8192) this.recent = this.recent.slice(-4096);
  }

  /** The limits kept. */
  get limits(): RateLimit[] {
    return this.windows.map((w) => ({ ...w.limit }));
  }

  /** Stops every caller until `ms` from now (Retry-After). */
  pauseFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + Math.min(Math.max(0, ms), MAX_PAUSE_MS));
  }

  /**
   * Resolves when one request may start; callers are served in order. With `hold`, the
   * request counts as in flight until {@link release} is called for it (exactly once).
   * Resolves to false, taking nothing, when `signal` aborts first.
   */
  acquire(signal?: AbortSignal, options: { hold?: boolean } = {}): Promise<boolean> {
    const next = this.chain.then(() => this.waitTurn(signal, options.hold === true));
    this.chain = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  /** A request taken with `hold` finished: it counts from now, as if it started now. */
  release(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    const now = this.now();
    this.remember(now);
    for (const w of this.windows) w.starts.push(now);
    for (const wake of this.completions.splice(0)) wake();
  }

  private async waitTurn(signal: AbortSignal | undefined, hold: boolean): Promise<boolean> {
    for (;;) {
      if (signal?.aborted) return false;
      const now = this.now();
      let wait = this.pausedUntil - now;
      let untilCompletion = false;
      for (const w of this.windows) {
        while (w.head < w.starts.length && w.starts[w.head]! <= now - w.limit.perMs) w.head++;
        if (w.head > 1024) {
          w.starts = w.starts.slice(w.head);
          w.head = 0;
        }
        const inWindow = w.starts.length - w.head;
        const over = inWindow + this.inFlight - w.limit.requests + 1;
        if (over <= 0) continue;
        if (over > inWindow) untilCompletion = true;
        else wait = Math.max(wait, w.starts[w.head + over - 1]! + w.limit.perMs - now + 1);
      }
      if (wait <= 0 && !untilCompletion) {
        if (hold) this.inFlight++;
        else {
          this.remember(now);
          for (const w of this.windows) w.starts.push(now);
        }
        return true;
      }
      if (untilCompletion) {
        // Requests in flight fill the window: only a completion can free a place.
        await Promise.race([new Promise<void>((resolve) => this.completions.push(resolve)), sleep(Math.max(wait, 1000), signal)]);
      } else {
        await sleep(wait, signal);
      }
    }
  }
}

/**
 * The request budget of one destination connection ({@link RateBudget}): a sliding-window
 * limiter shared by every sync that writes through the connection. Limits declared by
 * several objects of one connection are all kept. `acquire` rejects with `OUTFLOW_ABORTED`
 * when the connection's signal aborts while it waits.
 */
export class ConnectionBudget implements RateBudget {
  private readonly limiter: RateLimiter;
  /** Requests started through this budget. */
  started = 0;
  /** The longest pause a system may impose on this connection (its `maxWait`). */
  readonly maxWaitMs: number;

  constructor(
    limits: readonly RateLimit[],
    private readonly signal?: AbortSignal,
    maxWaitMs: number = DEFAULT_MAX_WAIT_MS,
  ) {
    this.limiter = new RateLimiter(limits);
    this.maxWaitMs = Math.min(Math.max(0, maxWaitMs), MAX_PAUSE_MS);
  }

  addLimit(limit: RateLimit): void {
    this.limiter.addLimit(limit);
  }

  get limits(): RateLimit[] {
    return this.limiter.limits;
  }

  async acquire(requests = 1): Promise<void> {
    for (let i = 0; i < requests; i++) {
      if (!(await this.take())) {
        throw new OutflowError('OUTFLOW_ABORTED', 'the run is stopping; the request was not sent', { retryable: true });
      }
    }
  }

  async request<T>(send: () => Promise<T>): Promise<T> {
    if (!(await this.limiter.acquire(this.signal, { hold: true }))) {
      throw new OutflowError('OUTFLOW_ABORTED', 'the run is stopping; the request was not sent', { retryable: true });
    }
    this.started++;
    try {
      return await send();
    } finally {
      this.limiter.release();
    }
  }

  /** Waits for one request's turn; false (nothing taken) when the signal aborts first. */
  async take(): Promise<boolean> {
    if (!(await this.limiter.acquire(this.signal))) return false;
    this.started++;
    return true;
  }

  /**
   * Waits for one request's turn and holds it as in flight until the returned function is
   * called (see {@link request}); null, nothing taken, when `stop` or the connection's
   * signal aborts first. The engine draws this way for each `write` it makes.
   */
  async hold(stop?: AbortSignal): Promise<(() => void) | null> {
    const signals = [stop, this.signal].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    if (!(await this.limiter.acquire(signal, { hold: true }))) return null;
    this.started++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.limiter.release();
    };
  }

  /**
   * Pauses every sender for `ms`. A wait longer than {@link maxWaitMs} is not kept: the
   * batch that was asked for it fails instead, and the connection stays usable.
   */
  pause(ms: number): void {
    if (ms <= this.maxWaitMs) this.limiter.pauseFor(ms);
  }
}

/** A budget with no limits: for contexts of connections that are not rate limited (tests). */
export function unlimitedBudget(signal?: AbortSignal): RateBudget {
  return new ConnectionBudget([], signal);
}
