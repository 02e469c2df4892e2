/**
 * The fault checks: a 429, 5xx answers, a timeout, an abort and lost answers, each driven
 * through the emulator's fault knobs (`driver.faults`), each followed by delivery per the
 * contract and a count of what the destination holds.
 */
import { describeError, isOutflowError, type Operation } from '@outflow/core';
import type { KitFaults, LostAnswer } from '@outflow/core/emulator-kit';
import { AcceptanceFailure, fail, show, within } from './harness.js';
import {
  attempt,
  BASE,
  createKind,
  deliver,
  expectDeliveredOnce,
  opFor,
  records,
  setFaults,
  settleWithin,
  sleep,
  underFaults,
  type Answer,
} from './destination-kit.js';
import type { DestinationHarness, TestRecord } from './destination.js';

/** How long the emulator holds a request in the abort check, and how soon after the abort write() must give up. */
const ABORT_LATENCY_MS = 3_000;
const ABORT_AFTER_MS = 200;
const ABORT_PROMPT_MS = 1_000;
/** How long a write let go on is given to land before the records are counted. */
const HELD_LANDS_MS = 250;

/** A batch of up to three new records to send under a fault. */
function batch(h: DestinationHarness, base: number): { recs: TestRecord[]; ops: Operation[] } {
  const recs = records(h, base, Math.min(3, h.capabilities.maxBatchSize));
  const kind = createKind(h);
  return { recs, ops: recs.map((r) => opFor(h, kind, r)) };
}

function requestTimeout(h: DestinationHarness): number {
  const t = h.driver.requestTimeoutMs;
  if (t === undefined || !(t > 0)) {
    fail('the driver gives faults() but no requestTimeoutMs: say how long the connector, with the working config, waits for an answer (set it short in the config, a second or two)');
  }
  return t;
}

/** A margin around the connector's timeout: long enough to tell a timeout from a hang, short enough for a test. */
function graceFor(timeoutMs: number): number {
  return Math.round(500 + timeoutMs / 4);
}

function describe(answer: Answer): string {
  return 'results' in answer ? `answered ${show(answer.results)}` : `threw ${describeError(answer.error)}`;
}

interface Refusal {
  /** What the service answered, e.g. "a 429 (Too Many Requests)". */
  what: string;
  /** Whether a plain (non-Outflow) throw is acceptable: it is an unknown outcome, which a 429 is not. */
  plainThrow: boolean;
  /** Whether the error must say notApplied when idempotency is none (so the engine may send it again). */
  notApplied: boolean;
}

/**
 * The service refused every request before acting on it: the answer must be a retryable
 * error or retryable results — never an acknowledgement, never a permanent rejection.
 */
function expectRefused(h: DestinationHarness, answer: Answer, ops: Operation[], r: Refusal): void {
  if ('results' in answer) {
    answer.results.forEach((res, i) => {
      const op = ops[i]!;
      if (res.ok) fail(`the ${op.kind} of ${show(op.key)} was acknowledged (${show(res)}) though the service answered every request with ${r.what}: nothing was applied`);
      if (!res.retryable) {
        fail(`${r.what} surfaced as a permanent rejection of ${show(op.key)} (retryable: false, ${show(res.reason)}); it is temporary, so the result must be retryable`);
      }
    });
    return;
  }
  const err = answer.error;
  if (!isOutflowError(err)) {
    if (r.plainThrow) return;
    fail(`${r.what} surfaced as a plain throw (${describeError(err)}), which the engine takes as an unknown outcome; throw a retryable OutflowError (destinationError) so it waits and sends the batch again`);
  }
  if (!err.retryable) {
    fail(`${r.what} surfaced as a permanent rejection: write() threw a non-retryable ${err.code} (${err.message}); it is temporary, so the error must be retryable`);
  }
  if (r.notApplied && h.capabilities.idempotency === 'none' && !err.notApplied) {
    fail(`${r.what} surfaced as a retryable error without notApplied; the service refused the request before acting on it, and without notApplied a destination whose idempotency is none parks the batch instead of sending it again`);
  }
}

/**
 * The outcome is unknown (a timeout, an abort, a lost answer): the answer must not claim
 * that nothing was applied, nor reject for good, nor acknowledge what got no answer.
 */
function expectInDoubt(h: DestinationHarness, answer: Answer, ops: Operation[], what: string): void {
  if ('results' in answer) {
    if (answer.results.every((r) => r.ok)) {
      fail(
        `write() answered ok for every operation after ${what}: it acknowledged writes it got no answer for ` +
          '(or the emulator does not take this fault; then skip the check in the driver and say why)',
      );
    }
    answer.results.forEach((res, i) => {
      const op = ops[i]!;
      if (res.ok) fail(`the ${op.kind} of ${show(op.key)} was acknowledged (${show(res)}) after ${what}; no answer came, so the outcome is unknown`);
      if (!res.retryable) fail(`${what} surfaced as a permanent rejection of ${show(op.key)} (retryable: false, ${show(res.reason)}); the write may well be applied`);
      if (h.capabilities.idempotency === 'none') {
        fail(`${what} surfaced as a retryable result for ${show(op.key)}, which says it was not applied; it may be, and a destination whose idempotency is none would apply it twice`);
      }
    });
    return;
  }
  const err = answer.error;
  if (!isOutflowError(err)) return;
  if (!err.retryable && err.code !== 'OUTFLOW_ABORTED') {
    fail(
      `${what} surfaced as a permanent rejection: write() threw a non-retryable ${err.code} (${err.message}); the engine takes that as a batch refused with nothing applied, ` +
        'but the write may well be applied: throw a retryable error (or a plain one: outcome unknown)',
    );
  }
  if (err.notApplied) {
    fail(`${what} surfaced as an error marked notApplied (${err.message}), but the service may have applied the write; a destination whose idempotency is none would apply it twice`);
  }
}

async function refusedThenResent(h: DestinationHarness, base: number, faults: KitFaults, r: Refusal): Promise<string | undefined> {
  const { recs, ops } = batch(h, base);
  const first = await underFaults(h, faults, () => attempt(h, ops, `a batch the service answers with ${r.what}`));
  expectRefused(h, first, ops, r);
  const outcomes = await deliver(h, ops, `the batch sent again after ${r.what}`, first);
  return expectDeliveredOnce(h, recs, ops, outcomes, `after ${r.what} and sending again`);
}

/** Writes held back for the abort check: how, how to let them go on, and how to wait until what was held has landed. */
interface Held {
  how: string;
  release(): Promise<void>;
  landed(): Promise<void>;
}

/** Holds writes back: by the emulator's latency when the driver gives faults(), else by driver.stall(). */
async function holdWrites(h: DestinationHarness): Promise<Held> {
  if (h.driver.faults === undefined && h.driver.stall !== undefined) {
    const release = await within(h.driver.stall(), h.timeoutMs, 'driver.stall()');
    let released = false;
    return {
      how: 'for a write the destination holds back (driver.stall())',
      release: async () => {
        if (released) return;
        released = true;
        await within(release(), h.timeoutMs, 'the release driver.stall() returned');
      },
      landed: () => sleep(HELD_LANDS_MS),
    };
  }
  const started = Date.now();
  await setFaults(h, { latencyMs: ABORT_LATENCY_MS });
  return {
    how: `for an answer the service delays ${ABORT_LATENCY_MS} ms`,
    release: () => setFaults(h, {}),
    landed: () => sleep(started + ABORT_LATENCY_MS + HELD_LANDS_MS - Date.now()),
  };
}

export const faultChecks = {
  /**
   * A 429 from the service surfaces as a retryable OutflowError (marked notApplied when
   * idempotency is none) or retryable results; sent again, every record is held once.
   */
  async throttle(h: DestinationHarness): Promise<string | undefined> {
    return refusedThenResent(h, BASE.throttle, { status429Every: 1 }, { what: 'a 429 (Too Many Requests)', plainThrow: false, notApplied: true });
  },

  /** A 503 and a 500 surface as retryable (never permanent); sent again, every record is held once. */
  async serverError(h: DestinationHarness): Promise<string | undefined> {
    const notes = [
      await refusedThenResent(h, BASE.serverError, { failRequests: 1_000_000 }, { what: 'a 503 (Service Unavailable)', plainThrow: true, notApplied: false }),
      await refusedThenResent(h, BASE.serverError + 100, { errorRate: 1 }, { what: 'a 5xx server error', plainThrow: true, notApplied: false }),
    ].filter((n) => n !== undefined);
    return notes.length === 0 ? undefined : notes.join('; ');
  },

  /**
   * A request the service answers only after the connector's timeout: write() gives up
   * on its own, with a retryable error or a plain one (outcome unknown), never a permanent
   * rejection. The service applies the request after all; sent again per the contract,
   * every record is held exactly once.
   */
  async timeout(h: DestinationHarness): Promise<string | undefined> {
    const t = requestTimeout(h);
    const grace = graceFor(t);
    const latency = t + 2 * grace;
    const { recs, ops } = batch(h, BASE.timeout);
    const started = Date.now();
    const first = await underFaults(h, { latencyMs: latency }, () =>
      attempt(h, ops, `a batch the service answers after ${latency} ms`, {
        ms: t + grace,
        onHang: () =>
          `write() did not give up on a request left unanswered for ${t + grace} ms, though the driver says the connector waits ${t} ms (requestTimeoutMs); ` +
          'a service that never answers would hold the sync forever',
      }),
    );
    expectInDoubt(h, first, ops, `a request the service did not answer within ${t} ms`);
    // The service still applies the delayed request: wait for it before counting.
    await sleep(started + latency + 250 - Date.now());
    const outcomes = await deliver(h, ops, 'the batch sent again after a timeout', first);
    return expectDeliveredOnce(h, recs, ops, outcomes, 'after a timeout and sending again');
  },

  /**
   * When ctx.signal aborts while write() waits for the service — its answer delayed by the
   * emulator (latencyMs), or, without faults(), writes held back by driver.stall() — write()
   * rejects promptly with OUTFLOW_ABORTED; sent again afterwards per the contract, every
   * record is held once.
   */
  async abort(h: DestinationHarness): Promise<string | undefined> {
    const { recs, ops } = batch(h, BASE.abort);
    const ctx = h.context(h.config);
    const held = await holdWrites(h);
    let settledAt: number | undefined;
    let abortedAt: number | undefined;
    const pending = attempt(h, ops, 'a batch stopped by the run', { ctx, ms: h.timeoutMs + ABORT_LATENCY_MS }).then(
      (a) => ((settledAt = Date.now()), a),
      (err: unknown) => ((settledAt = Date.now()), { error: err }) as Answer,
    );
    let answer: Answer;
    try {
      await sleep(ABORT_AFTER_MS);
      abortedAt = Date.now();
      ctx.controller.abort();
      answer = await settleWithin(
        pending,
        ABORT_PROMPT_MS,
        () => `write() did not stop when the run stopped: ${ABORT_PROMPT_MS} ms after ctx.signal aborted, it was still waiting (${held.how}); a call in flight must give up promptly with OUTFLOW_ABORTED`,
      );
    } finally {
      await held.release();
    }
    if ('error' in answer && answer.error instanceof AcceptanceFailure) throw answer.error;
    if (settledAt !== undefined && abortedAt !== undefined && settledAt < abortedAt) {
      fail(`write() ${describe(answer)} before ctx.signal aborted, though it should have been waiting (${held.how}): is the write held back at all?`);
    }
    if (!('error' in answer) || !isOutflowError(answer.error, 'OUTFLOW_ABORTED')) {
      fail(`when ctx.signal aborted while write() waited (${held.how}), write() ${describe(answer)}; it must reject with an OutflowError whose code is OUTFLOW_ABORTED`);
    }
    // What the destination does with the abandoned write, it does once held writes go on: wait for it before counting.
    await held.landed();
    const outcomes = await deliver(h, ops, 'the batch sent again after the abort', answer);
    return expectDeliveredOnce(h, recs, ops, outcomes, 'after an abort and sending again');
  },

  /**
   * The service applies a batch and then loses its answer — the connection is reset, a 5xx
   * comes instead, or no answer comes at all. write() must not acknowledge, reject for good
   * or claim nothing was applied; sent again per the declared idempotency, every record is
   * held exactly once (`key` and `match` never duplicate; `none` looks up or parks).
   */
  async lostAnswer(h: DestinationHarness): Promise<string | undefined> {
    const t = requestTimeout(h);
    const notes: string[] = [];
    const modes: LostAnswer[] = ['reset', 'error', 'timeout'];
    for (const [n, how] of modes.entries()) {
      const { recs, ops } = batch(h, BASE.lostAnswer + 100 * n);
      const what = `an answer lost after the write was applied (lostAnswer: ${how})`;
      const ms = how === 'timeout' ? t + graceFor(t) : h.timeoutMs;
      const first = await underFaults(h, { lostAnswerRate: 1, lostAnswer: how }, () =>
        attempt(h, ops, `a batch whose answer is lost (${how})`, {
          ms,
          onHang: () => `write() did not give up within ${ms} ms on a request the service applied but never answered (lostAnswer: ${how})`,
        }),
      );
      expectInDoubt(h, first, ops, what);
      const outcomes = await deliver(h, ops, `the batch sent again after ${what}`, first);
      const note = await expectDeliveredOnce(h, recs, ops, outcomes, `after ${what} and sending again`);
      if (note !== undefined) notes.push(`${how}: ${note}`);
    }
    return notes.length === 0 ? undefined : notes.join('; ');
  },
};

/** Why the fault checks do not apply: no emulator to inject faults into, as the driver says. */
export function needsFaults(h: DestinationHarness): string | undefined {
  if (h.driver.faults !== undefined) return undefined;
  return h.driver.noFaults;
}

/** Why the abort check does not apply: neither faults() nor stall() to hold a write back with. */
export function needsHold(h: DestinationHarness): string | undefined {
  return h.driver.stall === undefined ? needsFaults(h) : undefined;
}
