/**
 * The event-destination acceptance suite: a destination that takes `event` operations
 * (event mode: a Slack message, a Segment call, a Braze send, a webhook event) delivers
 * each event once, keeps its declared idempotency across re-sends and lost answers, keeps
 * to its rate limits, and turns a payload it refuses into a row error with a reason.
 * Every count is taken from what the destination itself accepted (its emulator's log),
 * never from what the connector answered.
 */
import { randomUUID } from 'node:crypto';
import { describe } from 'vitest';
import {
  describeError,
  isOutflowError,
  type AnyConnector,
  type Capabilities,
  type Destination,
  type Operation,
  type RateLimit,
  type Row,
} from '@outflow/core';
import type { KitFaults } from '@outflow/core/emulator-kit';
import { fail, openDestination, registerChecks, runChecks, show, within, type Check, type CheckReport, type ConnectionDriver } from './harness.js';
import { attempt, deliver, underFaults, type Outcome } from './destination-kit.js';
import { specCheckList, type SpecHarness } from './spec.js';

/** One event as the destination accepted it, read from its own log by {@link EventDriver.delivered}. */
export interface DeliveredEvent {
  /**
   * The marker the suite put into the payload (see {@link EventDriver.payload}), read back
   * from where the destination keeps it (a message's text, an event's property).
   */
  marker: string;
  /** What the destination holds for the event, for failure messages. */
  payload?: Row;
}

/** What {@link eventAcceptance} needs to exercise an event destination. */
export interface EventDriver<C = unknown> extends ConnectionDriver<C> {
  connector: AnyConnector;
  /** Where the events go: the operation's `object` (a channel, a call such as `track`, an endpoint). */
  object: string;
  /**
   * A valid payload (the operation's `fields`) that carries `marker` where
   * {@link delivered} can read it back. Markers are distinct for distinct events.
   */
  payload(marker: string): Row;
  /**
   * Every event the destination accepted, in the order it accepted them, read from the
   * destination's own write log (an emulator's request log): one entry per acceptance, so
   * an event delivered twice shows up twice. Never read into a map keyed by marker.
   */
  delivered(): Promise<DeliveredEvent[]>;
  /**
   * A payload carrying `marker` that the destination refuses on its own (a missing required
   * property, a channel that does not exist), and what the refusal's reason must say.
   */
  badPayload?(marker: string): { payload: Row; reason: RegExp };
  /** Why the destination refuses no payload, when there is no `badPayload`; `row-error` is then skipped with it. */
  noBadPayload?: string;
  /**
   * Sets the faults of the emulator the connection talks to, replacing those set before
   * (`{}` clears them): `status429Every` (429 with Retry-After), `failRequests` (503),
   * `errorRate` (5xx), `lostAnswerRate` with `lostAnswer` (the event is accepted, then the
   * answer is lost).
   */
  faults?(faults: KitFaults): void | Promise<void>;
  /** Why there is no `faults()`; the fault checks are then skipped with it. */
  noFaults?: string;
  /**
   * How long the connector, with the working config, waits for an answer before it gives
   * up. The `lost-answer` check loses answers by not sending them, so keep it short in the
   * config (a second or two). Required with `faults()`.
   */
  requestTimeoutMs?: number;
  /** The rate limits the service (or its emulator) enforces on this connection, in its requests. */
  enforcedLimits?(): RateLimit[] | Promise<RateLimit[]>;
  /** Why the declared limits cannot be compared with enforced ones; `rate-limits` is then skipped with it. */
  noEnforcedLimits?: string;
}

/** A started event destination under test. */
export interface EventHarness<C = unknown> extends SpecHarness<C> {
  driver: EventDriver<C>;
  destination: Destination<C>;
  /** The destination's capabilities for `driver.object`. */
  capabilities: Capabilities;
  /** A fresh `event` operation to `driver.object` carrying a new marker, with its own idempotency key. */
  event(): { op: Operation; marker: string };
}

/** Events sent by each check: a small batch, within any maxBatchSize. */
const BATCH = 3;

/**
 * Starts the driver's connection and reads the destination's capabilities for its object.
 * The harness's context keeps to the declared rate limits, as the engine's budget does.
 */
export async function startEventDestination<C>(driver: EventDriver<C>): Promise<EventHarness<C>> {
  const opened = await openDestination<C>(driver.connector, driver, driver.object);
  const run = randomUUID().slice(0, 8);
  let seq = 0;
  return {
    ...opened,
    driver,
    event: () => {
      const marker = `ev-${run}-${++seq}`;
      const op: Operation = {
        kind: 'event',
        key: marker,
        fields: driver.payload(marker),
        idempotencyKey: `acceptance:${run}:${seq}:event:${marker}`,
        event: { trigger: 'acceptance', change: 'insert' },
      };
      return { op, marker };
    },
  };
}

function events(h: EventHarness, n = Math.min(BATCH, h.capabilities.maxBatchSize)): { ops: Operation[]; markers: string[] } {
  const made = Array.from({ length: n }, () => h.event());
  return { ops: made.map((e) => e.op), markers: made.map((e) => e.marker) };
}

async function delivered(h: EventHarness): Promise<DeliveredEvent[]> {
  const all = await within(h.driver.delivered(), h.timeoutMs, 'driver.delivered()');
  if (!Array.isArray(all)) fail(`driver.delivered() returned ${show(all)}, not an array of events`);
  for (const e of all) {
    if (e === null || typeof e !== 'object' || typeof e.marker !== 'string') fail(`driver.delivered() returned ${show(e)}; each event must be { marker: string, payload? }`);
  }
  return all;
}

/**
 * Every event accepted (`ok`) is in the destination's log exactly once; a parked one at
 * most once; none is there twice. Returns a note on parked events.
 */
async function expectOnce(h: EventHarness, markers: string[], outcomes: Outcome[], what: string): Promise<string | undefined> {
  const log = await delivered(h);
  const parked: string[] = [];
  markers.forEach((marker, i) => {
    const copies = log.filter((e) => e.marker === marker);
    const outcome = outcomes[i]!;
    if (copies.length > 1) {
      fail(`${what}: the destination accepted event ${show(marker)} ${copies.length} times; idempotency ${show(h.capabilities.idempotency)} promises it never takes one event twice`);
    }
    if (outcome.state === 'rejected') fail(`${what}: the valid event ${show(marker)} was rejected for good (${show(outcome.reason)}); once the fault is gone it must be delivered`);
    if (outcome.state === 'parked') return void parked.push(marker);
    if (copies.length === 0) fail(`${what}: event ${show(marker)} was acknowledged but the destination never accepted it: it was lost`);
  });
  return parked.length === 0 ? undefined : `${parked.length} of ${markers.length} events were parked as "outcome unknown" (idempotency none), as the engine parks them; none was sent twice`;
}

/** The checks, each a plain function over a started harness. */
export const eventChecks = {
  /** capabilities() declares `event`, a positive maxBatchSize, and idempotency `key` or `none` (an event has no match key). */
  async capabilities(h: EventHarness): Promise<void> {
    const c = h.capabilities;
    if (!Array.isArray(c?.operations) || !c.operations.includes('event')) fail(`capabilities(${show(h.driver.object)}).operations is ${show(c?.operations)}; an event destination declares 'event'`);
    if (!Number.isInteger(c.maxBatchSize) || c.maxBatchSize < 1) fail(`capabilities().maxBatchSize must be a positive integer, got ${show(c.maxBatchSize)}`);
    if (c.idempotency !== 'key' && c.idempotency !== 'none') {
      fail(`capabilities().idempotency is ${show(c.idempotency)}; an event has no match key to upsert on, so it is 'key' (the destination takes each idempotency key once) or 'none'`);
    }
  },

  /** A batch of events is acknowledged, and the destination's log holds each exactly once. */
  async deliverOnce(h: EventHarness): Promise<void> {
    const { ops, markers } = events(h);
    const outcomes = await deliver(h, ops, 'a batch of events');
    await expectOnce(h, markers, outcomes, 'a batch of events');
  },

  /** Events sent again with the same idempotency keys (a re-send after a crash) are not delivered twice. */
  async resend(h: EventHarness): Promise<void> {
    const { ops, markers } = events(h);
    const first = await deliver(h, ops, 'a batch of events');
    const again = await attempt(h, ops, 'the same events sent again with the same idempotency keys');
    if ('error' in again) fail(`the same events sent again with the same idempotency keys failed: ${describeError(again.error)}; a repeat must be answered as the first time`);
    again.results.forEach((r, i) => {
      if (!r.ok) fail(`event ${show(markers[i])} sent again with its idempotency key was refused (${show(r.reason)}); a repeat must be answered as the first time`);
    });
    await expectOnce(h, markers, first, 'a batch of events sent twice with the same idempotency keys');
  },

  /** A 429 with Retry-After is retryable (notApplied at a `none` destination) and carries the wait; sent again, each event is delivered once. */
  async throttle(h: EventHarness): Promise<void> {
    const { ops, markers } = events(h);
    const first = await underFaults(h, { status429Every: 1 }, () => attempt(h, ops, 'events answered with a 429'));
    if ('results' in first) {
      first.results.forEach((r, i) => {
        if (r.ok) fail(`event ${show(markers[i])} was acknowledged though the service answered 429: nothing was accepted`);
        if (!r.retryable) fail(`a 429 surfaced as a permanent rejection of event ${show(markers[i])} (${show(r.reason)}); it must be retryable`);
      });
    } else {
      const err = first.error;
      if (!isOutflowError(err) || !err.retryable) fail(`a 429 surfaced as ${describeError(err)}; throw a retryable OutflowError so the engine waits and sends again`);
      if (err.retryAfterMs === undefined) fail(`a 429 with Retry-After surfaced without retryAfterMs (${err.message}); the engine must wait as long as the service asks`);
      if (h.capabilities.idempotency === 'none' && !err.notApplied) fail(`a 429 surfaced without notApplied; at a destination whose idempotency is none the engine then parks events the service never took`);
    }
    await expectOnce(h, markers, await deliver(h, ops, 'events sent again after a 429', first), 'after a 429 and sending again');
  },

  /** A 5xx is retryable or an unknown outcome, never a permanent rejection; delivered per the idempotency, no event is accepted twice. */
  async serverError(h: EventHarness): Promise<string | undefined> {
    const { ops, markers } = events(h);
    const first = await underFaults(h, { errorRate: 1 }, () => attempt(h, ops, 'events answered with a 5xx'));
    if ('results' in first ? first.results.some((r) => r.ok || !r.retryable) : isOutflowError(first.error) && !first.error.retryable) {
      fail(`a 5xx surfaced as ${'results' in first ? show(first.results) : describeError(first.error)}; it is temporary: every event must be retryable, none acknowledged`);
    }
    return expectOnce(h, markers, await deliver(h, ops, 'events sent again after a 5xx', first), 'after a 5xx and sending again');
  },

  /**
   * The service accepts the events and the answer is lost (reset, 5xx, or none at all):
   * write() must not acknowledge them nor claim they were not applied; delivered per the
   * idempotency, none is accepted twice (`key` re-sends with the same key; `none` looks up
   * or parks).
   */
  async lostAnswer(h: EventHarness): Promise<string | undefined> {
    const timeout = h.driver.requestTimeoutMs ?? fail('the driver gives faults() but no requestTimeoutMs');
    const notes: string[] = [];
    for (const how of ['reset', 'error', 'timeout'] as const) {
      const { ops, markers } = events(h);
      const first = await underFaults(h, { lostAnswerRate: 1, lostAnswer: how }, () =>
        attempt(h, ops, `events whose answer is lost (${how})`, { ms: timeout + h.timeoutMs }),
      );
      if ('results' in first) {
        first.results.forEach((r, i) => {
          if (r.ok) fail(`event ${show(markers[i])} was acknowledged though its answer was lost (${how})`);
          if (h.capabilities.idempotency === 'none') fail(`a lost answer (${how}) surfaced as a retryable result for ${show(markers[i])}, which says it was not accepted; a none destination would send it twice`);
        });
      } else if (isOutflowError(first.error) && first.error.notApplied) {
        fail(`a lost answer (${how}) surfaced as notApplied (${first.error.message}), but the service accepted the events`);
      }
      const note = await expectOnce(h, markers, await deliver(h, ops, `events sent again after a lost answer (${how})`, first), `after a lost answer (${how})`);
      if (note !== undefined) notes.push(`${how}: ${note}`);
    }
    return notes.length === 0 ? undefined : notes.join('; ');
  },

  /** A payload the destination refuses is a per-event rejection, not retryable, naming the reason; the rest of its batch is delivered. */
  async rowError(h: EventHarness): Promise<void> {
    const bad = h.driver.badPayload ?? fail('the driver gives neither badPayload() nor noBadPayload');
    const good = h.event();
    const marker = `${good.marker}-bad`;
    const { payload, reason } = bad.call(h.driver, marker);
    const badOp: Operation = { ...good.op, key: marker, fields: payload, idempotencyKey: `${good.op.idempotencyKey}-bad` };
    const ops = h.capabilities.maxBatchSize >= 2 ? [good.op, badOp] : [badOp];
    const answer = await attempt(h, ops, 'a batch with a payload the destination refuses');
    if ('error' in answer) fail(`a batch with one refused payload failed as a whole (${describeError(answer.error)}); the refusal must be that event's row error`);
    const refused = answer.results[ops.length - 1]!;
    if (refused.ok) fail(`the refused payload ${show(payload)} was acknowledged`);
    if (refused.retryable) fail(`the refused payload was rejected as retryable (${show(refused.reason)}); it fails the same way every time, so retryable must be false`);
    if (!reason.test(refused.reason)) fail(`the refused payload's reason ${show(refused.reason)} does not say why (expected ${reason})`);
    if (ops.length === 2) {
      if (!answer.results[0]!.ok) fail(`the valid event beside a refused one was rejected (${show(answer.results[0])})`);
      const log = await delivered(h);
      if (log.filter((e) => e.marker === good.marker).length !== 1) fail(`the valid event ${show(good.marker)} beside a refused one is not in the destination's log once`);
      if (log.some((e) => e.marker === marker)) fail(`the refused event ${show(marker)} is in the destination's log`);
    }
  },

  /**
   * The declared rate limits are no looser than the enforced ones, and a burst of events
   * paced by them is never answered with a 429.
   */
  async rateLimits(h: EventHarness): Promise<void> {
    const declared = h.capabilities.rateLimits ?? [];
    const enforced = await Promise.resolve(h.driver.enforcedLimits!());
    for (const e of enforced) {
      const ok = declared.some((d) => d.perMs >= e.perMs ? d.requests <= e.requests : d.requests * Math.ceil(e.perMs / d.perMs) <= e.requests);
      if (!ok) fail(`the service enforces ${e.requests} requests per ${e.perMs} ms, and the declared limits ${show(declared)} allow more: paced at them the engine is refused`);
    }
    const tightest = enforced.reduce<RateLimit | undefined>((a, e) => (a === undefined || e.requests < a.requests ? e : a), undefined);
    const calls = Math.min(40, (tightest?.requests ?? 10) + 2);
    const answers = await Promise.all(Array.from({ length: calls }, () => attempt(h, [h.event().op], 'one event of a paced burst')));
    const refused = answers.find((a) => ('error' in a ? true : !a.results[0]!.ok));
    if (refused !== undefined) {
      fail(`a burst of ${calls} events paced by the declared limits ${show(declared)} was refused: ${'error' in refused ? describeError(refused.error) : show(refused.results)}`);
    }
  },
};

/** Why the fault checks do not apply: no emulator to inject faults into. */
function needsFaults(h: EventHarness): string | undefined {
  return h.driver.faults === undefined ? (h.driver.noFaults ?? 'the driver gives no faults()') : undefined;
}

/** The event checks in the order the suite runs them. */
export function eventCheckList<C = unknown>(): Check<EventHarness<C>>[] {
  const list: Check<EventHarness>[] = [
    { id: 'event-capabilities', title: "capabilities() declares 'event' and an idempotency an event can have", run: eventChecks.capabilities },
    { id: 'deliver-once', title: 'each event of a batch is delivered exactly once', run: eventChecks.deliverOnce },
    {
      id: 'resend',
      title: 'events sent again with the same idempotency keys are not delivered twice',
      notApplicable: (h) => (h.capabilities.idempotency === 'key' ? undefined : `idempotency is ${h.capabilities.idempotency}: the engine never sends an event again blindly`),
      run: eventChecks.resend,
    },
    { id: 'throttle', title: 'a 429 with Retry-After is retryable and carries the wait; sent again, each event is delivered once', notApplicable: needsFaults, run: eventChecks.throttle },
    { id: 'server-error', title: 'a 5xx is never a permanent rejection, and no event is delivered twice', notApplicable: needsFaults, run: eventChecks.serverError },
    {
      id: 'lost-answer',
      title: 'an event accepted whose answer is lost is in doubt: re-sent by its key, or looked up or parked, never delivered twice',
      notApplicable: needsFaults,
      run: eventChecks.lostAnswer,
    },
    {
      id: 'row-error',
      title: 'a refused payload is a row error naming the reason; the rest of its batch is delivered',
      notApplicable: (h) => (h.driver.badPayload === undefined ? (h.driver.noBadPayload ?? 'the driver gives no badPayload()') : undefined),
      run: eventChecks.rowError,
    },
    {
      id: 'rate-limits',
      title: 'the declared rate limits are no looser than the enforced ones, and a paced burst is never refused',
      notApplicable: (h) => (h.driver.enforcedLimits === undefined ? (h.driver.noEnforcedLimits ?? 'the driver gives no enforcedLimits()') : undefined),
      run: eventChecks.rateLimits,
    },
  ];
  return list as Check<EventHarness<C>>[];
}

/**
 * Registers the event-destination acceptance suite for a connector as vitest tests: the
 * spec checks, then the event checks above. Every check also fails when the connector
 * lets a secret of its config into a log line, an error or a result. Call it at the top
 * level of a test file.
 */
export function eventAcceptance<C>(driver: EventDriver<C>): void {
  describe(`event destination acceptance: ${driver.connector.name}`, () => {
    registerChecks<EventHarness<C>>(
      () => startEventDestination(driver),
      [...(specCheckList(driver.connector, 'spec') as Check<EventHarness<C>>[]), ...eventCheckList<C>()],
      driver.skip,
    );
  });
}

/**
 * Runs the event checks without vitest, on one harness started from `driver`, and reports
 * each instead of throwing: all of them in order, or those named in `ids`.
 */
export function runEventChecks<C>(driver: EventDriver<C>, ids?: string[]): Promise<CheckReport[]> {
  return runChecks(() => startEventDestination(driver), eventCheckList<C>(), ids, driver.skip);
}
