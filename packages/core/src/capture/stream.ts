import type { Change, Checkpoint, ChangeStream, Row } from '../contracts.js';
import type { DiffStore, RecordAddress, SettledChange } from '../state/store.js';
import { OutflowError } from '../errors.js';
import type { SyncDelivery } from '../delivery/deliverer.js';
import { fingerprint } from '../mapping/fingerprint.js';
import { mapFields, mapMatch } from '../mapping/mapper.js';
import type { LeasedScope } from '../engine/scope.js';
import { failpoint } from '../failpoints.js';
import { RECONCILE_PENDING, RECONCILED } from './reconcile.js';

const HEALTH_EVERY_MS = 30_000;
const FORGET_EVERY_MS = 60_000;

/**
 * What the delivered state knows of a batch's keys: their latest settled positions (to skip
 * replays) and their addresses at the destination.
 */
async function readKeys(state: DiffStore, keys: string[]): Promise<{ settledAt?: Map<string, SettledChange>; known?: Map<string, RecordAddress> }> {
  const settledAt = state.positions ? await state.positions(keys) : undefined;
  const known = state.addresses ? await state.addresses(keys) : undefined;
  return { ...(settledAt ? { settledAt } : {}), ...(known ? { known } : {}) };
}

/**
 * A replayed change the delivered state shows was settled: its key's latest settled change
 * is at or past its position; or, on a `log` stream, that change removed the record and
 * this one is not an insert — in a log only an insert can follow a delete, so an update or
 * delete of a record gone (unless inserted again in this run, `revived`) replays a change
 * from before its delete.
 */
function replayed(change: Change, settledAt: Map<string, SettledChange>, revived: Set<string>, log: boolean): boolean {
  const at = settledAt.get(change.key);
  if (at === undefined) return false;
  if (change.position !== undefined && at.pos !== '' && change.position <= at.pos) return true;
  if (!log || !at.gone || revived.has(change.key)) return false;
  if (change.op !== 'insert') return true;
  revived.add(change.key);
  return false;
}

function maxPosition(changes: Change[]): string | undefined {
  let max: string | undefined;
  for (const c of changes) if (c.position !== undefined && (max === undefined || c.position > max)) max = c.position;
  return max;
}

/**
 * Moves a stream's checkpoint forward in order: a batch's checkpoint is saved in the ledger
 * and committed to the stream only once every change of that batch and of all earlier
 * batches settled (delivered or parked).
 */
export class CheckpointTracker {
  private readonly pending: { checkpoint: Checkpoint; remaining: number; position: string | undefined }[] = [];
  private base = 0;
  private chain: Promise<void> = Promise.resolve();

  /**
   * @param save persists a checkpoint; `position` is the highest change position of the
   *   batches it covers (undefined when they carry none).
   */
  constructor(private readonly save: (checkpoint: Checkpoint, position: string | undefined) => Promise<void>) {}

  /**
   * Registers a batch of `changes` changes still to settle, the highest `position` among all
   * its changes; returns its index for {@link settled}.
   */
  add(checkpoint: Checkpoint, changes: number, position?: string): number {
    this.pending.push({ checkpoint, remaining: changes, position });
    return this.base + this.pending.length - 1;
  }

  /** One change of batch `index` settled. */
  settled(index: number): void {
    const p = this.pending[index - this.base];
    if (p) p.remaining--;
    this.advance();
  }

  /** Saves every checkpoint whose batch and predecessors have fully settled. */
  advance(): void {
    while (this.pending.length && this.pending[0]!.remaining === 0) {
      const done = this.pending.shift()!;
      this.base++;
      this.chain = this.chain.then(() => this.save(done.checkpoint, done.position));
    }
  }

  /** Resolves when every save so far has finished (rejects with the first failure). */
  drained(): Promise<void> {
    return this.chain;
  }
}

/**
 * A stream run's capture: follows the source's change stream from the saved checkpoint,
 * delivers each change and advances the checkpoint as changes settle, until the run stops.
 * A stream that reports itself stale while running ends the run with
 * `OUTFLOW_STREAM_STALE`, and the caller reconciles by a diff.
 */
export async function captureStream(run: LeasedScope, state: DiffStore, delivery: SyncDelivery): Promise<void> {
  const { sync } = run;
  const source = run.from.connector.stream;
  if (!source) {
    throw new OutflowError('OUTFLOW_CONNECTOR_ROLE', `connection "${sync.from.connection}" (${run.from.connector.name}) has no change stream`);
  }
  const saved = (await run.ledger.getCheckpoint(sync.name)) ?? null;
  const reconciled = saved === RECONCILED;
  const checkpoint = reconciled ? null : saved;
  if (checkpoint === RECONCILE_PENDING) {
    throw new OutflowError('OUTFLOW_STREAM_STALE', `sync "${sync.name}": a reconcile of the change stream did not finish; it must be reconciled by a diff first`);
  }
  // Positions settled before a fresh start need not compare with the stream's from now on
  // (after a reconcile they were forgotten when it began, and what it deleted is kept).
  if (checkpoint === null && !reconciled) await state.forgetPositions?.();
  const stream: ChangeStream = await source.open(run.from.ctx, run.model, checkpoint, { sync: sync.name, ...(reconciled ? { reconciled } : {}) });
  // The highest position covered by a saved checkpoint: positions at or below it are never
  // replayed, and are forgotten from time to time so the state does not grow with deletes.
  let savedUpTo: string | undefined;
  // Saved under the run's lease: a runner that lost the sync is refused, and stops.
  const tracker = new CheckpointTracker(async (cp, position) => {
    await run.lease.setCheckpoint(cp);
    failpoint('stream.checkpoint-saved');
    if (position !== undefined) savedUpTo = position;
    await stream.commit(cp);
  });
  let forgottenAt = Date.now();
  delivery.onBatchSettled = (batch) => tracker.settled(batch);
  // Writes in doubt from an earlier run: the replayed changes of those keys are looked up
  // or parked at a destination that cannot dedupe (see SyncDelivery).
  const doubt = run.caps.idempotency === 'none' ? new Map((await state.inDoubt()).map((d) => [d.key, d.fp])) : new Map<string, string>();
  const fpOf = (row: Row) => fingerprint(mapFields(run.mapper, row), mapMatch(run.mapper, row));
  const onAbort = () => void stream.close().catch(() => undefined);
  run.signal.addEventListener('abort', onAbort, { once: true });
  let stale = false;
  const watchdog = setInterval(() => {
    void stream
      .health()
      .then((h) => {
        if (h.lagMs !== undefined) run.from.ctx.metrics.gauge('stream_lag_ms', h.lagMs, { sync: sync.name });
        if (h.stale && !stale) {
          stale = true;
          void stream.close().catch(() => undefined);
        }
      })
      .catch(() => undefined);
  }, HEALTH_EVERY_MS);
  watchdog.unref();
  let read = 0;
  let skipped = 0;
  // Keys deleted before this run and inserted again in it.
  const revived = new Set<string>();
  const log = (stream.changes ?? 'log') === 'log';
  // What the delivered state knows of a batch's keys is read as soon as the batch arrives,
  // while the batch before it is still being delivered: a stream with a backlog then waits
  // for the slower of the two, not for both in turn. A read made before the previous batch
  // settled misses nothing: those changes are at earlier positions (never replays of these),
  // and the pipeline passes the ids their answers bring on to a key's later operations.
  const batches = stream[Symbol.asyncIterator]();
  const fetchNext = () =>
    batches.next().then((r) => {
      if (r.done) return undefined;
      const keys = [...new Set(r.value.changes.map((c) => c.key))];
      return { batch: r.value, known: readKeys(state, keys) };
    });
  let next = fetchNext();
  try {
    for (;;) {
      const fetched = await next;
      if (fetched === undefined) break;
      const { batch } = fetched;
      next = run.signal.aborted ? Promise.resolve(undefined) : fetchNext();
      const { settledAt, known } = await fetched.known;
      // Changes replayed from the checkpoint that settled before a restart.
      const fresh = settledAt?.size ? batch.changes.filter((c) => !replayed(c, settledAt, revived, log)) : batch.changes;
      skipped += batch.changes.length - fresh.length;
      read += batch.changes.length;
      const index = tracker.add(batch.checkpoint, fresh.length, maxPosition(batch.changes));
      for (const change of fresh) {
        // Every change of a key in doubt stays in doubt for this run: a later update could not
        // address a record whose create may or may not exist, and would create it again.
        const sentFp = doubt.get(change.key) ?? null;
        const at = known?.get(change.key);
        // A delete of a key the state holds nothing for, and this run did not write lately,
        // removes a record the destination never had (a row inserted and deleted before the
        // stream reached it, or before a resumed backfill read it): nothing is sent.
        const never = change.op === 'delete' && known !== undefined && at === undefined && sentFp === null && !delivery.touched(change.key);
        await delivery.push({
          change,
          fp: change.after ? fpOf(change.after) : null,
          oldFp: null,
          destId: at?.destId ?? null,
          sentFp,
          sentMatch: at?.match ?? null,
          batch: index,
          ...(never ? { known: false } : {}),
        });
      }
      tracker.advance();
      await delivery.flush();
      run.progress({ phase: 'streaming', read, settled: delivery.settled, counts: delivery.counts });
      if (run.signal.aborted) break;
      if (savedUpTo !== undefined && state.forgetPositions && Date.now() - forgottenAt >= FORGET_EVERY_MS) {
        forgottenAt = Date.now();
        await state.forgetPositions(savedUpTo);
      }
    }
    if (skipped > 0) run.logger.info({ sync: sync.name, changes: skipped }, 'replayed changes the delivered state shows were settled: not applied again');
    await delivery.close();
    tracker.advance();
    await tracker.drained();
    if (stale && !run.signal.aborted) {
      throw new OutflowError('OUTFLOW_STREAM_STALE', `sync "${sync.name}": the change stream went stale while running; it will be reconciled by a diff`);
    }
  } finally {
    // A batch fetched ahead and not delivered: the stream resumes from the checkpoint before it.
    next.then((f) => f?.known.catch(() => undefined), () => undefined).catch(() => undefined);
    clearInterval(watchdog);
    run.signal.removeEventListener('abort', onAbort);
    await stream.close().catch(() => undefined);
  }
}
