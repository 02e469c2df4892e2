import { describe } from 'vitest';
import {
  describeError,
  isOutflowError,
  keyOf,
  type AnyConnector,
  type Change,
  type ChangeBatch,
  type ChangeOp,
  type ChangeStream,
  type Checkpoint,
  type Model,
  type Row,
  type Stream,
} from '@outflow/core';
import { expectBadConfigsRefused } from './bad-configs.js';
import type { TestContext } from './context.js';
import { AcceptanceFailure, differingFields, fail, openConnection, registerChecks, show, within, type Check, type ConnectionDriver } from './harness.js';
import { instrument } from './secrets.js';
import { specCheckList, type SpecHarness } from './spec.js';

/** What {@link streamAcceptance} needs to exercise a change stream. */
export interface StreamDriver<C = unknown> extends ConnectionDriver<C> {
  connector: AnyConnector;
  /** The model whose changes are streamed. */
  model: Model;
  /**
   * A row of the model for index `i` at `version` (0 when inserted, higher after updates);
   * its primary key depends on `i` only, and rows of different versions differ.
   */
  row(i: number, version: number): Row;
  /** Changes the source: inserts or updates `row`, or deletes the row with `row`'s key. */
  mutate(kind: ChangeOp, row: Row): Promise<void>;
  /**
   * Makes the stream fall behind its retention as the source itself would: drops the
   * replication slot, expires the stream's retention, truncates the log. Positions streams
   * were at can no longer be resumed. Called while a stream is open, and while none is.
   */
  makeStale?(): Promise<void>;
  /** Why the stream can never go stale, when there is no `makeStale`; the stale checks are then skipped with it. */
  noStale?: string;
}

/** A started stream under test. */
export interface StreamHarness<C = unknown> extends SpecHarness<C> {
  driver: StreamDriver<C>;
  stream: Stream<C>;
  /** When the harness started (Date.now()): no lag the stream reports can be longer than its life. */
  startedAt: number;
}

/** Starts the driver's connection for the stream checks. */
export async function startStream<C>(driver: StreamDriver<C>): Promise<StreamHarness<C>> {
  const stream = driver.connector.stream as Stream<C> | undefined;
  if (stream === undefined) fail(`connector "${driver.connector.name}" provides no stream`);
  const startedAt = Date.now();
  const connection = await openConnection<C>(driver.connector, driver);
  return instrument({ ...connection, connector: driver.connector, driver, stream, startedAt });
}

/** How an iteration ended: the stream said it is done, or next() threw. */
type Ending = { done: true } | { error: unknown };

/** Pulls batches from one opened stream and keeps every change seen. */
class Follower {
  readonly changes: Change[] = [];
  private readonly it: AsyncIterator<ChangeBatch>;

  constructor(
    readonly stream: ChangeStream,
    private readonly ms: number,
  ) {
    this.it = stream[Symbol.asyncIterator]();
  }

  private take(batch: ChangeBatch): void {
    if (!Array.isArray(batch?.changes)) fail(`the stream yielded ${show(batch)}, not { changes, checkpoint }`);
    if (typeof batch.checkpoint !== 'string' || batch.checkpoint === '') fail(`a batch has no checkpoint: ${show(batch)}`);
    this.changes.push(...batch.changes);
  }

  /** Pulls until `done(changes)` holds and returns the checkpoint of the batch that made it hold. */
  async until(done: (changes: Change[]) => boolean, what: string): Promise<Checkpoint> {
    for (;;) {
      const r = await within(this.it.next(), this.ms, `waiting for ${what} (seen so far: ${show(this.changes.map(brief), 300)})`);
      if (r.done) fail(`the change stream ended while waiting for ${what}`);
      this.take(r.value);
      if (done(this.changes)) return r.value.checkpoint;
    }
  }

  /** Pulls with no time limit until the iteration ends, and says how it ended. */
  async drain(): Promise<Ending> {
    for (;;) {
      let r: IteratorResult<ChangeBatch>;
      try {
        r = await this.it.next();
      } catch (error) {
        if (error instanceof AcceptanceFailure) throw error;
        return { error };
      }
      if (r.done) return { done: true };
      this.take(r.value);
    }
  }

  of(key: string): Change[] {
    return this.changes.filter((c) => c.key === key);
  }
}

function brief(c: Change): string {
  return `${c.op} ${c.key}`;
}

/**
 * Opens the stream as the engine does. An open(null) answered with OUTFLOW_STREAM_STALE is the
 * handshake (a source with no snapshot of its own has the engine deliver the rows already
 * there by a diff first): the engine reconciles and opens from null again, which must succeed.
 */
async function open(h: StreamHarness, from: Checkpoint | null, ctx: TestContext<unknown> = h.ctx): Promise<Follower> {
  const attempt = (reconciled: boolean) =>
    within(h.stream.open(ctx as never, h.driver.model, from, { sync: 'acceptance', ...(reconciled ? { reconciled } : {}) }), h.timeoutMs, `open(${show(from)})`);
  let opened: ChangeStream;
  try {
    opened = await attempt(false);
  } catch (err) {
    if (from !== null || !isOutflowError(err, 'OUTFLOW_STREAM_STALE')) throw err;
    try {
      opened = await attempt(true);
    } catch (again) {
      if (isOutflowError(again, 'OUTFLOW_STREAM_STALE')) {
        fail(`open(null) answered OUTFLOW_STREAM_STALE, and again after the handshake (${describeError(again)}); once reconciled, open(null) must resume at the position it secured`);
      }
      throw again;
    }
  }
  return new Follower(opened, h.timeoutMs);
}

async function closing<T>(f: Follower, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } finally {
    await within(f.stream.close(), 5_000, 'close()').catch((err: unknown) => {
      if (err instanceof AcceptanceFailure && !/did not finish within/.test(err.message)) throw err;
    });
  }
}

function keyFor(h: StreamHarness, i: number): string {
  const row = h.driver.row(i, 0);
  return keyOf(row, h.driver.model.primaryKey) ?? fail(`driver.row(${i}, 0) has no primary key ${show(h.driver.model.primaryKey)}`);
}

const saw = (key: string, op: ChangeOp, n = 1) => (changes: Change[]) => changes.filter((c) => c.key === key && c.op === op).length >= n;
const all =
  (...preds: ((changes: Change[]) => boolean)[]) =>
  (changes: Change[]) =>
    preds.every((p) => p(changes));

/** Checks the changes seen for `key` are exactly `expected`, in order, with the rows written. */
function expectSequence(f: Follower, key: string, expected: { op: ChangeOp; row?: Row }[], what: string): void {
  const got = f.of(key);
  const ops = got.map((c) => c.op);
  if (ops.join() !== expected.map((e) => e.op).join()) fail(`${what}: key ${show(key)} got ${show(ops)}, expected ${show(expected.map((e) => e.op))}`);
  got.forEach((c, i) => {
    const want = expected[i]!.row;
    if (c.op === 'delete') {
      if (c.after !== undefined) fail(`${what}: the delete of ${show(key)} carries an after row`);
      return;
    }
    if (c.after === undefined) fail(`${what}: the ${c.op} of ${show(key)} has no after row`);
    const differing = want === undefined ? [] : differingFields(c.after, want);
    if (differing.length > 0) fail(`${what}: the ${c.op} of ${show(key)} has after ${show(c.after)}, expected ${show(want)}`);
  });
}

/** Clock differences between the source and the machine running the suite that a lag may include. */
const CLOCK_SKEW_MS = 10 * 60_000;
/** How often the stale checks ask health() while waiting for the stream to notice. */
const HEALTH_POLL_MS = 100;

/** Calls health() (a hang fails) and checks its answer's shape and lag. */
async function healthOf(h: StreamHarness, f: Follower, what: string): Promise<{ stale: boolean; lagMs?: number }> {
  const health = await within(f.stream.health(), h.timeoutMs, `health() ${what}`);
  if (health === null || typeof health !== 'object' || typeof health.stale !== 'boolean') fail(`health() ${what} answered ${show(health)}, not { stale: boolean, lagMs? }`);
  if (health.lagMs !== undefined) {
    const life = Date.now() - h.startedAt;
    if (typeof health.lagMs !== 'number' || !Number.isFinite(health.lagMs) || health.lagMs < 0) {
      fail(`health() ${what} answered lagMs ${show(health.lagMs)}; a lag is a finite number of milliseconds, 0 or more`);
    }
    if (health.lagMs > life + CLOCK_SKEW_MS) {
      fail(`health() ${what} answered lagMs ${health.lagMs}, longer than the ${life} ms the suite has been running (a timestamp, or another unit, instead of a lag in milliseconds?)`);
    }
  }
  return health;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Waits for an open stream to report itself stale, as the engine would notice it: pulling
 * batches (next() may throw OUTFLOW_STREAM_STALE) while asking health() (which may answer
 * stale: true). Any other ending, or no report within the timeout, fails. Closes the stream
 * in any case; after a report, close() must end the pending next().
 */
async function untilStale(h: StreamHarness, f: Follower, what: string): Promise<string> {
  let ending: Ending | undefined;
  const pulling = f.drain().then((e) => (ending = e));
  pulling.catch(() => undefined);
  const answers: string[] = [];
  const deadline = Date.now() + h.timeoutMs;
  let how: string | undefined;
  try {
    while (how === undefined) {
      if (ending !== undefined) {
        if ('done' in ending) fail(`${what}: the change stream ended without reporting stale (next() finished instead of throwing OUTFLOW_STREAM_STALE)`);
        if (!isOutflowError(ending.error, 'OUTFLOW_STREAM_STALE')) fail(`${what}: next() failed with ${describeError(ending.error)} instead of OUTFLOW_STREAM_STALE`);
        how = 'next() threw OUTFLOW_STREAM_STALE';
        break;
      }
      try {
        const health = await healthOf(h, f, what);
        if (health.stale) {
          how = 'health() answered stale: true';
          break;
        }
        answers.push(show(health));
      } catch (err) {
        if (err instanceof AcceptanceFailure) throw err;
        answers.push(`threw ${describeError(err)}`);
      }
      if (Date.now() > deadline) {
        const next = ending === undefined ? 'kept waiting' : 'ended';
        fail(`${what}: the stream never reported stale within ${h.timeoutMs} ms: health() answered ${[...new Set(answers)].join(', ')} and next() ${next}; it must throw OUTFLOW_STREAM_STALE or answer stale: true`);
      }
      await Promise.race([sleep(HEALTH_POLL_MS), pulling]);
    }
  } finally {
    const closing = within(f.stream.close(), h.timeoutMs, `close() after ${how ?? 'waiting for the stream to report stale'}`);
    // After a failure above, that failure is the one to report.
    await (how === undefined ? closing.catch(() => undefined) : closing);
  }
  await within(pulling, h.timeoutMs, `the pending next() after ${how} and close() (close() must end the iteration: the engine closes a stale stream to end its run)`);
  return how;
}

/**
 * The end of the stale-stream handshake: the engine has reconciled and calls open(null),
 * which must resume at the position the connector secured before it reported stale, so the
 * changes made since (a delete and an insert) arrive.
 */
async function expectResumedAfterHandshake(h: StreamHarness, deleted: number, inserted: number, how: string): Promise<void> {
  const { row, mutate } = h.driver;
  const [d, i] = [keyFor(h, deleted), keyFor(h, inserted)];
  await mutate('delete', row(deleted, 0));
  await mutate('insert', row(inserted, 0));
  let f: Follower;
  try {
    f = new Follower(await within(h.stream.open(h.ctx as never, h.driver.model, null, { sync: 'acceptance', reconciled: true }), h.timeoutMs, 'open(null) after the handshake'), h.timeoutMs);
  } catch (err) {
    if (err instanceof AcceptanceFailure) throw err;
    const again = isOutflowError(err, 'OUTFLOW_STREAM_STALE') ? ', asking for another reconcile,' : '';
    fail(`after the stream reported stale (${how}), open(null) threw ${describeError(err)}${again} instead of resuming at the position the connector secured before reporting it`);
  }
  await closing(f, async () => {
    await f.until(
      all(saw(d, 'delete'), saw(i, 'insert')),
      `the delete of ${d} and the insert of ${i}, made after the stream reported stale (${how}): open(null) must resume at the position the connector secured before reporting stale, not start afresh`,
    );
  });
}

/** The stream checks, as plain async functions over a {@link StreamHarness}. */
export const streamChecks = {
  /** Opening the stream with each bad config fails with an OutflowError; the driver must give at least one. */
  async badConfigs(h: StreamHarness): Promise<void> {
    await expectBadConfigsRefused(h, 'open()', async (ctx) => {
      const opened = await h.stream.open(ctx, h.driver.model, null, { sync: 'acceptance' });
      await within(opened.close(), h.timeoutMs, 'close() of a stream opened with a bad config').catch(() => undefined);
    });
  },

  /** Changes made after open(null) arrive, in order per key, with their rows. */
  async follow(h: StreamHarness): Promise<void> {
    const { row, mutate } = h.driver;
    const [a, b] = [keyFor(h, 1), keyFor(h, 2)];
    const f = await open(h, null);
    await closing(f, async () => {
      await mutate('insert', row(1, 0));
      await mutate('insert', row(2, 0));
      await f.until(all(saw(a, 'insert'), saw(b, 'insert')), `the inserts of ${a} and ${b}`);
      await mutate('update', row(1, 1));
      await f.until(saw(a, 'update'), `the update of ${a}`);
      await mutate('delete', row(2, 0));
      await f.until(saw(b, 'delete'), `the delete of ${b}`);
      expectSequence(f, a, [{ op: 'insert', row: row(1, 0) }, { op: 'update', row: row(1, 1) }], 'after open(null)');
      expectSequence(f, b, [{ op: 'insert', row: row(2, 0) }, { op: 'delete' }], 'after open(null)');
    });
  },

  /**
   * Reopening from the last committed checkpoint replays nothing it covers (neither what an
   * earlier commit covered nor what the last one did) and loses nothing after it: neither
   * what was read but not committed, nor what changed while the stream was closed.
   */
  async resume(h: StreamHarness): Promise<void> {
    const { row, mutate } = h.driver;
    const [a, b, c] = [keyFor(h, 11), keyFor(h, 12), keyFor(h, 13)];
    const first = await open(h, null);
    const checkpoint = await closing(first, async () => {
      await mutate('insert', row(11, 0));
      const cp1 = await first.until(saw(a, 'insert'), `the insert of ${a}`);
      await within(first.stream.commit(cp1), h.timeoutMs, 'commit()');
      await mutate('insert', row(12, 0));
      const cp2 = await first.until(saw(b, 'insert'), `the insert of ${b}`);
      await within(first.stream.commit(cp2), h.timeoutMs, 'commit()');
      await mutate('insert', row(13, 0));
      await first.until(saw(c, 'insert'), `the insert of ${c} (read, never committed)`);
      return cp2;
    });
    await mutate('update', row(11, 1));
    const second = await open(h, checkpoint);
    await closing(second, async () => {
      await second.until(all(saw(c, 'insert'), saw(a, 'update')), `the uncommitted insert of ${c} and the update of ${a} made while closed`);
      for (const key of [a, b]) {
        if (second.of(key).some((x) => x.op === 'insert')) fail(`resuming from checkpoint ${show(checkpoint)} replayed the insert of ${key}, which it covers`);
      }
      expectSequence(second, a, [{ op: 'update', row: row(11, 1) }], `after resuming from ${show(checkpoint)}`);
      expectSequence(second, b, [], `after resuming from ${show(checkpoint)}`);
      expectSequence(second, c, [{ op: 'insert', row: row(13, 0) }], `after resuming from ${show(checkpoint)}`);
    });
  },

  /**
   * health() answers promptly with `stale: false` and a sane lag (a finite, non-negative
   * number of milliseconds, no longer than the stream has existed): on a fresh stream, with a
   * change read but not committed, and while a next() is waiting for changes (the engine
   * asks health() during iteration). close() then ends that waiting next().
   */
  async health(h: StreamHarness): Promise<void> {
    const { row, mutate } = h.driver;
    const f = await open(h, null);
    let pending: Promise<unknown> | undefined;
    try {
      const fresh = await healthOf(h, f, 'of a fresh stream');
      if (fresh.stale) fail(`health() of a fresh stream answered ${show(fresh)}, expected stale: false`);
      await mutate('insert', row(41, 0));
      await f.until(saw(keyFor(h, 41), 'insert'), `the insert of ${keyFor(h, 41)}`);
      const behind = await healthOf(h, f, 'with a change read but not committed');
      if (behind.stale) fail(`health() with a change read but not committed answered ${show(behind)}, expected stale: false`);
      pending = f.drain();
      pending.catch(() => undefined);
      const waiting = await healthOf(h, f, 'while next() waits for changes');
      if (waiting.stale) fail(`health() while next() waits for changes answered ${show(waiting)}, expected stale: false`);
    } finally {
      await within(f.stream.close(), h.timeoutMs, 'close()');
    }
    await within(pending ?? Promise.resolve(), h.timeoutMs, 'the pending next() after close() (close() must end the iteration)');
  },

  /**
   * A stream that goes stale while open reports it (next() throws OUTFLOW_STREAM_STALE, or
   * health() answers stale: true), and after the handshake open(null) resumes at the
   * position secured before the report: changes made after it all arrive.
   */
  async staleWhileOpen(h: StreamHarness): Promise<void> {
    const { row, mutate } = h.driver;
    const makeStale = h.driver.makeStale ?? fail('the driver gives no makeStale(); give one, or `noStale` saying why the stream cannot go stale');
    const f = await open(h, null);
    try {
      await mutate('insert', row(21, 0));
      const cp = await f.until(saw(keyFor(h, 21), 'insert'), `the insert of ${keyFor(h, 21)}`);
      await within(f.stream.commit(cp), h.timeoutMs, 'commit()');
      await makeStale();
      await mutate('insert', row(22, 0));
    } catch (err) {
      await within(f.stream.close(), 5_000, 'close()').catch(() => undefined);
      throw err;
    }
    // untilStale closes the stream.
    const how = await untilStale(h, f, 'after makeStale() while the stream was open');
    await expectResumedAfterHandshake(h, 21, 23, how);
  },

  /**
   * Reopening from a checkpoint the stream can no longer resume (it went stale while closed)
   * reports it: open() throws OUTFLOW_STREAM_STALE, or the opened stream reports stale; it
   * never resumes as if nothing was lost. After the handshake open(null) resumes at the
   * secured position.
   */
  async staleWhileClosed(h: StreamHarness): Promise<void> {
    const { row, mutate } = h.driver;
    const makeStale = h.driver.makeStale ?? fail('the driver gives no makeStale(); give one, or `noStale` saying why the stream cannot go stale');
    const [a] = [keyFor(h, 31)];
    const first = await open(h, null);
    const checkpoint = await closing(first, async () => {
      await mutate('insert', row(31, 0));
      const cp = await first.until(saw(a, 'insert'), `the insert of ${a}`);
      await within(first.stream.commit(cp), h.timeoutMs, 'commit()');
      return cp;
    });
    await makeStale();
    await mutate('update', row(31, 1));
    const what = `open(${show(checkpoint)}) after makeStale() while the stream was closed`;
    let how: string;
    let reopened: ChangeStream;
    try {
      reopened = await within(h.stream.open(h.ctx as never, h.driver.model, checkpoint, { sync: 'acceptance' }), h.timeoutMs, what);
    } catch (err) {
      if (err instanceof AcceptanceFailure) throw err;
      if (!isOutflowError(err, 'OUTFLOW_STREAM_STALE')) fail(`${what} failed with ${describeError(err)} instead of OUTFLOW_STREAM_STALE`);
      how = 'open() threw OUTFLOW_STREAM_STALE';
      await expectResumedAfterHandshake(h, 31, 33, how);
      return;
    }
    const f = new Follower(reopened, h.timeoutMs);
    how = await untilStale(h, f, what).catch((err: unknown) => {
      const resumed = f.changes.length > 0 ? ` (it resumed as if nothing was lost, yielding ${show(f.changes.map(brief), 200)})` : '';
      throw err instanceof AcceptanceFailure ? new AcceptanceFailure(`${err.message}${resumed}`) : err;
    });
    await expectResumedAfterHandshake(h, 31, 33, how);
  },
};

/** The stream checks, in the order they run. */
export function streamCheckList<C>(): Check<StreamHarness<C>>[] {
  const staleSkipped = (h: StreamHarness) => (h.driver.makeStale === undefined ? h.driver.noStale : undefined);
  return [
    {
      id: 'bad-configs',
      title: 'open() refuses each bad config with an OutflowError',
      notApplicable: (h) => (h.badConfigs.length === 0 ? h.noBadConfigs : undefined),
      run: streamChecks.badConfigs,
    },
    { id: 'stream-follow', title: 'changes after open(null) arrive in order per key', run: streamChecks.follow },
    {
      id: 'stream-resume',
      title: 'reopening from the last committed checkpoint replays nothing it covers and loses nothing after it',
      run: streamChecks.resume,
    },
    { id: 'stream-health', title: 'health() answers promptly, not stale, with a sane lag, also while next() waits', run: streamChecks.health },
    {
      id: 'stream-stale',
      title: 'a stream gone stale while open reports it, and open(null) then resumes at the secured position',
      notApplicable: staleSkipped,
      run: streamChecks.staleWhileOpen,
    },
    {
      id: 'stream-stale-open',
      title: 'reopening a checkpoint gone stale reports it, and open(null) then resumes at the secured position',
      notApplicable: staleSkipped,
      run: streamChecks.staleWhileClosed,
    },
  ] as Check<StreamHarness<C>>[];
}

/**
 * Registers the stream acceptance suite for a connector as vitest tests: the spec checks,
 * bad configs, following changes made through `driver.mutate`, resuming from a checkpoint,
 * health, and the stale-stream handshake through `driver.makeStale`.
 */
export function streamAcceptance<C>(driver: StreamDriver<C>): void {
  describe(`stream acceptance: ${driver.connector.name}`, () => {
    registerChecks<StreamHarness<C>>(
      () => startStream(driver),
      [...(specCheckList(driver.connector, 'stream') as Check<StreamHarness<C>>[]), ...streamCheckList<C>()],
      driver.skip,
    );
  });
}
