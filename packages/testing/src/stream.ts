import { describe } from 'vitest';
import { keyOf, type AnyConnector, type Change, type ChangeBatch, type ChangeOp, type ChangeStream, type Checkpoint, type Model, type Row, type Stream } from '@outflow/core';
import type { TestContext } from './context.js';
import { differingFields, fail, openConnection, registerChecks, show, within, type Check, type ConnectionDriver } from './harness.js';
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
}

/** A started stream under test. */
export interface StreamHarness<C = unknown> extends SpecHarness<C> {
  driver: StreamDriver<C>;
  stream: Stream<C>;
}

/** Starts the driver's connection for the stream checks. */
export async function startStream<C>(driver: StreamDriver<C>): Promise<StreamHarness<C>> {
  const stream = driver.connector.stream as Stream<C> | undefined;
  if (stream === undefined) fail(`connector "${driver.connector.name}" provides no stream`);
  const connection = await openConnection<C>(driver.connector, driver);
  return { ...connection, connector: driver.connector, driver, stream };
}

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

  /** Pulls until `done(changes)` holds and returns the checkpoint of the batch that made it hold. */
  async until(done: (changes: Change[]) => boolean, what: string): Promise<Checkpoint> {
    for (;;) {
      const r = await within(this.it.next(), this.ms, `waiting for ${what} (seen so far: ${show(this.changes.map(brief), 300)})`);
      if (r.done) fail(`the change stream ended while waiting for ${what}`);
      const batch = r.value;
      if (!Array.isArray(batch?.changes)) fail(`the stream yielded ${show(batch)}, not { changes, checkpoint }`);
      if (typeof batch.checkpoint !== 'string' || batch.checkpoint === '') fail(`a batch has no checkpoint: ${show(batch)}`);
      this.changes.push(...batch.changes);
      if (done(this.changes)) return batch.checkpoint;
    }
  }

  of(key: string): Change[] {
    return this.changes.filter((c) => c.key === key);
  }
}

function brief(c: Change): string {
  return `${c.op} ${c.key}`;
}

async function open(h: StreamHarness, from: Checkpoint | null, ctx: TestContext<unknown> = h.ctx): Promise<Follower> {
  const opened = await within(h.stream.open(ctx as never, h.driver.model, from), h.timeoutMs, `open(${show(from)})`);
  return new Follower(opened, h.timeoutMs);
}

async function closing<T>(f: Follower, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } finally {
    await within(f.stream.close(), 5_000, 'close()').catch(() => undefined);
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

/** The stream checks, as plain async functions over a {@link StreamHarness}. */
export const streamChecks = {
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
   * Reopening from a committed checkpoint replays nothing before it and loses nothing after
   * it: neither what was read but not committed, nor what changed while the stream was closed.
   */
  async resume(h: StreamHarness): Promise<void> {
    const { row, mutate } = h.driver;
    const [a, b] = [keyFor(h, 11), keyFor(h, 12)];
    const first = await open(h, null);
    const checkpoint = await closing(first, async () => {
      await mutate('insert', row(11, 0));
      const cp = await first.until(saw(a, 'insert'), `the insert of ${a}`);
      await within(first.stream.commit(cp), h.timeoutMs, 'commit()');
      await mutate('insert', row(12, 0));
      await first.until(saw(b, 'insert'), `the insert of ${b} (read, never committed)`);
      return cp;
    });
    await mutate('update', row(11, 1));
    const second = await open(h, checkpoint);
    await closing(second, async () => {
      await second.until(all(saw(b, 'insert'), saw(a, 'update')), `the uncommitted insert of ${b} and the update of ${a} made while closed`);
      if (second.of(a).some((c) => c.op === 'insert')) fail(`resuming from checkpoint ${show(checkpoint)} replayed the insert of ${a}, which it covers`);
      expectSequence(second, a, [{ op: 'update', row: row(11, 1) }], `after resuming from ${show(checkpoint)}`);
      expectSequence(second, b, [{ op: 'insert', row: row(12, 0) }], `after resuming from ${show(checkpoint)}`);
    });
  },

  /** A freshly opened stream reports itself healthy. */
  async health(h: StreamHarness): Promise<void> {
    const f = await open(h, null);
    await closing(f, async () => {
      const health = await within(f.stream.health(), h.timeoutMs, 'health()');
      if (health?.stale !== false) fail(`health() of a fresh stream is ${show(health)}, expected { stale: false }`);
    });
  },
};

/** The stream checks, in the order they run. */
export function streamCheckList<C>(): Check<StreamHarness<C>>[] {
  return [
    { id: 'stream-follow', title: 'changes after open(null) arrive in order per key', run: streamChecks.follow },
    { id: 'stream-resume', title: 'reopening from a committed checkpoint replays nothing before it and loses nothing after it', run: streamChecks.resume },
    { id: 'stream-health', title: 'a fresh stream is healthy', run: streamChecks.health },
  ] as Check<StreamHarness<C>>[];
}

/**
 * Registers the stream acceptance suite for a connector as vitest tests: the spec checks,
 * following changes made through `driver.mutate`, and resuming from a checkpoint.
 */
export function streamAcceptance<C>(driver: StreamDriver<C>): void {
  describe(`stream acceptance: ${driver.connector.name}`, () => {
    registerChecks<StreamHarness<C>>(
      () => startStream(driver),
      [...(specCheckList(driver.connector) as Check<StreamHarness<C>>[]), ...streamCheckList<C>()],
      driver.skip,
    );
  });
}
