import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RateLimit } from '../src/index.js';
import { ConnectionBudget, RateLimiter } from '../src/delivery/rate-budget.js';

// Simulated time: the limits are checked exactly, and the tests take no real time.
beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Starts `n` acquires at once and returns, in call order, the time each was let through. */
async function startTimes(limiter: RateLimiter, n: number): Promise<number[]> {
  const starts: number[] = new Array<number>(n);
  const all = Promise.all(
    Array.from({ length: n }, (_, i) =>
      limiter.acquire().then(() => {
        starts[i] = Date.now();
      }),
    ),
  );
  await vi.runAllTimersAsync();
  await all;
  return starts;
}

/** The most starts that fall in any window of `perMs` (a window is [t, t + perMs)). */
function busiestWindow(starts: number[], perMs: number): number {
  const sorted = [...starts].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j < sorted.length && sorted[j]! < sorted[i]! + perMs) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

describe('RateLimiter', () => {
  it('never lets more than N requests start in any sliding window, and lets the first N go at once', async () => {
    const t0 = Date.now();
    const starts = await startTimes(new RateLimiter([{ requests: 5, perMs: 200 }]), 20);
    expect(busiestWindow(starts, 200)).toBe(5);
    expect(starts.slice(0, 5)).toEqual([t0, t0, t0, t0, t0]);
  });

  it('counts the starts of the last window, not of a fixed period, when callers trickle in', async () => {
    // Three start at once, then more keep arriving every 25 ms: a fixed window or a token
    // bucket would let a second burst through less than a window after the first.
    const limiter = new RateLimiter([{ requests: 5, perMs: 200 }]);
    const starts: number[] = [];
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      if (i >= 3) await vi.advanceTimersByTimeAsync(25);
      calls.push(limiter.acquire().then(() => void starts.push(Date.now())));
    }
    await vi.runAllTimersAsync();
    await Promise.all(calls);
    expect(starts).toHaveLength(20);
    expect(busiestWindow(starts, 200)).toBe(5);
  });

  it('serves callers in the order they called, including callers that arrive while others wait', async () => {
    const limiter = new RateLimiter([{ requests: 2, perMs: 50 }]);
    const order: number[] = [];
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 6; i++) calls.push(limiter.acquire().then(() => void order.push(i)));
    await vi.advanceTimersByTimeAsync(60);
    for (let i = 6; i < 12; i++) calls.push(limiter.acquire().then(() => void order.push(i)));
    await vi.runAllTimersAsync();
    await Promise.all(calls);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('respects every declared limit at once', async () => {
    const limits: RateLimit[] = [
      { requests: 3, perMs: 100 },
      { requests: 5, perMs: 1000 },
    ];
    const starts = await startTimes(new RateLimiter(limits), 12);
    expect(busiestWindow(starts, 100)).toBeLessThanOrEqual(3);
    expect(busiestWindow(starts, 1000)).toBe(5);
    // The short limit binds first: the fourth caller waits for it although the long one has room.
    expect(starts[3]! - starts[0]!).toBeGreaterThanOrEqual(100);
  });

  it('holds every caller back until a pause (Retry-After) is over', async () => {
    for (const limits of [[], [{ requests: 100, perMs: 1000 }]]) {
      const limiter = new RateLimiter(limits);
      await limiter.acquire();
      const pausedAt = Date.now();
      limiter.pauseFor(150);
      const starts = await startTimes(limiter, 3);
      for (const t of starts) expect(t).toBeGreaterThanOrEqual(pausedAt + 150);
    }
  });

  it('lets a waiting caller go as soon as its signal aborts, without letting later callers past the limit', async () => {
    const limiter = new RateLimiter([{ requests: 1, perMs: 10_000 }]);
    const t0 = Date.now();
    await limiter.acquire();
    const controller = new AbortController();
    let returned = false;
    const waiting = limiter.acquire(controller.signal).then(() => {
      returned = true;
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(returned).toBe(false);
    controller.abort();
    await waiting;
    expect(Date.now()).toBe(t0 + 100);

    // An already aborted signal does not wait at all, and lets no one else past the limit.
    await limiter.acquire(controller.signal);
    expect(Date.now()).toBe(t0 + 100);
    const [next] = await startTimes(limiter, 1);
    expect(next).toBeGreaterThanOrEqual(t0 + 10_000);
  });

  it('never waits when there are no limits', async () => {
    const limiter = new RateLimiter([]);
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 100 }, () => limiter.acquire()));
    expect(Date.now()).toBe(t0);
  });
});

describe('ConnectionBudget', () => {
  it('counts a request from its answer: a slow request holds its place until then, and a window after', async () => {
    const budget = new ConnectionBudget([{ requests: 1, perMs: 1000 }]);
    let answer!: () => void;
    const slow = budget.request(() => new Promise<void>((resolve) => (answer = resolve)));
    const next = budget.request(async () => Date.now());
    // Counted by start, the second request could go after a second; it waits for the answer.
    await vi.advanceTimersByTimeAsync(5000);
    answer();
    await slow;
    const answeredAt = Date.now();
    await vi.advanceTimersByTimeAsync(2000);
    expect((await next) - answeredAt).toBeGreaterThanOrEqual(1000);
  });

  it('counts requests made before a limit was known once it is added', async () => {
    const budget = new ConnectionBudget([]);
    for (let i = 0; i < 3; i++) await budget.request(async () => undefined);
    budget.addLimit({ requests: 3, perMs: 1000 });
    const started = Date.now();
    const next = budget.request(async () => Date.now());
    await vi.advanceTimersByTimeAsync(1500);
    expect((await next) - started).toBeGreaterThanOrEqual(1000);
  });
});
