/**
 * The rate-limit check: the limits a destination declares are the ones its service
 * enforces — not above (the engine, pacing at them, would be refused) and not far below
 * (it would leave the service's capacity unused) — compared with what the driver says the
 * service enforces and then probed against the service itself.
 */
import { describeError, type RateBudget, type RateLimit } from '@outflow/core';
import { fail, show, within } from './harness.js';
import { attempt, BASE, createKind, opFor, sleep, type Answer } from './destination-kit.js';
import type { DestinationHarness } from './destination.js';

/** The share of an enforced limit a declared one must reach: within 20% of what the service allows. */
export const SATURATION = 0.8;
/** Limits probed against the service: small and short enough to fill a window in a test. */
const PROBE_MAX_REQUESTS = 1_000;
const PROBE_MAX_WINDOW_MS = 15_000;

const fmt = (l: RateLimit) => `${l.requests} requests per ${l.perMs} ms`;

/** A budget that counts the requests drawn from it and otherwise passes through. */
function counting(inner: RateBudget): RateBudget & { count: number } {
  const budget = {
    count: 0,
    async acquire(requests = 1) {
      budget.count += requests;
      await inner.acquire(requests);
    },
    request<T>(send: () => Promise<T>): Promise<T> {
      budget.count++;
      return inner.request(send);
    },
    pause: (ms: number) => inner.pause(ms),
    addLimit: (limit: RateLimit) => inner.addLimit(limit),
  };
  return budget;
}

/** Whether the service refused a probe request: a retryable failure of the call or of a record. */
function refusal(answer: Answer): string | undefined {
  if ('error' in answer) return describeError(answer.error);
  const refused = answer.results.find((r) => !r.ok);
  return refused === undefined || refused.ok ? undefined : refused.reason;
}

function permanent(answer: Answer): boolean {
  if ('error' in answer) {
    const e = answer.error as { retryable?: unknown; code?: unknown };
    return typeof e?.code === 'string' && e.retryable !== true;
  }
  return answer.results.some((r) => !r.ok && !r.retryable);
}

/** Compares declared limits with enforced ones, window by window; returns the pairs. */
function compare(declared: RateLimit[], enforced: RateLimit[]): [RateLimit, RateLimit][] {
  const pairs: [RateLimit, RateLimit][] = [];
  for (const e of enforced) {
    const d = declared.find((l) => l.perMs === e.perMs);
    if (d === undefined) {
      fail(`the service enforces ${fmt(e)}, and capabilities().rateLimits (${show(declared)}) has no limit over ${e.perMs} ms: declare the service's limits as it states them`);
    }
    if (d.requests > e.requests) {
      fail(`capabilities() declares ${fmt(d)}, above the ${fmt(e)} the service enforces: the engine, pacing at the declared limit, would be refused`);
    }
    if (d.requests < e.requests * SATURATION) {
      fail(
        `capabilities() declares ${fmt(d)}, under ${SATURATION * 100}% of the ${fmt(e)} the service enforces: ` +
          `the engine would leave ${Math.round((1 - d.requests / e.requests) * 100)}% of the service's capacity unused`,
      );
    }
    pairs.push([d, e]);
  }
  const extra = declared.filter((d) => !pairs.some(([p]) => p === d));
  if (extra.length > 0) fail(`capabilities() declares ${extra.map(fmt).join(', ')}, which the service does not enforce (it enforces ${enforced.map(fmt).join(', ')})`);
  return pairs;
}

/**
 * Fills one window of the limit `[d, e]` (declared, enforced) from an empty start: the
 * declared number of requests must all be taken, and going on, the service must refuse one
 * before the declared number over {@link SATURATION} is passed.
 */
async function probe(h: DestinationHarness, d: RateLimit, e: RateLimit): Promise<string> {
  const base = h.context(h.config);
  const budget = counting(base.rateBudget);
  const ctx = { ...base, rateBudget: budget };
  const kind = createKind(h);
  // Let the window of everything sent before (by earlier checks) pass: a rolling one by
  // waiting it out, a fixed one by starting just after the next window starts.
  await sleep(h.driver.fixedWindows ? e.perMs - (Date.now() % e.perMs) + 50 : e.perMs + 100);
  const started = Date.now();
  let i = 0;
  const send = () => {
    const op = opFor(h, kind, h.driver.record(BASE.rateLimits + i++));
    return attempt(h, [op], `request ${budget.count + 1} of a burst at the declared limit`, { ctx });
  };
  while (budget.count < d.requests) {
    const answer = await send();
    const refused = refusal(answer);
    if (refused !== undefined) {
      fail(
        `the service refused request ${budget.count} of ${d.requests} sent within ${e.perMs} ms, the most the engine sends under the declared ${fmt(d)}: ${refused}; ` +
          'the declared limit is above what the service enforces',
      );
    }
  }
  const most = Math.ceil(d.requests / SATURATION);
  let refusedAt: number | undefined;
  while (budget.count <= most) {
    const answer = await send();
    if (refusal(answer) !== undefined) {
      if (permanent(answer)) fail(`the service's refusal of request ${budget.count} (over the limit) surfaced as a permanent rejection: ${refusal(answer)}; it must be retryable`);
      refusedAt = budget.count;
      break;
    }
  }
  const elapsed = Date.now() - started;
  if (refusedAt === undefined) {
    if (elapsed >= e.perMs || (h.driver.fixedWindows && (started % e.perMs) + elapsed >= e.perMs)) {
      fail(`the probe took ${elapsed} ms to send ${budget.count} requests, longer than the ${e.perMs} ms window, so it shows nothing; skip rate-limits in the driver, saying why`);
    }
    fail(
      `the service took ${budget.count} requests within ${elapsed} ms without refusing one, more than the declared ${fmt(d)} over ${SATURATION}: ` +
        "it allows far more than the destination declares, or the emulator does not enforce what enforcedLimits() says",
    );
  }
  return `a burst of ${d.requests} requests (the declared ${fmt(d)}) was taken, and the service refused request ${refusedAt}`;
}

export const limitChecks = {
  /**
   * The declared rate limits are what the service enforces: for each limit the driver's
   * enforcedLimits() gives, a declared limit over the same window, neither above it nor
   * under {@link SATURATION} of it, and no other. Then the shortest window is probed (when
   * it is small enough): after an idle window, as many requests as declared are all taken,
   * and the service refuses one before the declared number over {@link SATURATION}. Runs
   * last: it leaves the service's window full.
   */
  async rateLimits(h: DestinationHarness): Promise<string> {
    const declared = h.capabilities.rateLimits;
    if (declared.length === 0) {
      return h.driver.noRateLimits ?? fail("capabilities().rateLimits is empty: declare the vendor's limits, or give the driver `noRateLimits` saying why the destination has none");
    }
    const read =
      h.driver.enforcedLimits ??
      fail(
        'the destination declares rate limits, and the driver gives neither enforcedLimits() (what the service enforces, to compare them with) ' +
          'nor noEnforcedLimits saying why they cannot be compared',
      );
    const enforced = await within(Promise.resolve(read.call(h.driver)), h.timeoutMs, 'driver.enforcedLimits()');
    if (!Array.isArray(enforced) || enforced.length === 0 || enforced.some((l) => !(l?.requests > 0) || !(l.perMs > 0))) {
      fail(`driver.enforcedLimits() returned ${show(enforced)}, not a non-empty list of { requests > 0, perMs > 0 }`);
    }
    const pairs = compare(declared, enforced);
    const probed = pairs
      .filter(([, e]) => e.requests <= PROBE_MAX_REQUESTS && e.perMs <= PROBE_MAX_WINDOW_MS)
      .sort((a, b) => a[1].perMs - b[1].perMs)[0];
    if (probed === undefined) return `the declared limits match enforcedLimits(); none is small enough to probe in a test`;
    return probe(h, ...probed);
  },
};

/** Why the rate-limit check does not apply, as the driver says. */
export function needsLimits(h: DestinationHarness): string | undefined {
  if (h.capabilities.rateLimits.length === 0) return h.driver.noRateLimits;
  return h.driver.enforcedLimits === undefined ? h.driver.noEnforcedLimits : undefined;
}
