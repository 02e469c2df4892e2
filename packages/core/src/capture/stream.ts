import type { Checkpoint, ChangeStream, Row } from '../contracts.js';
import type { DiffStore } from '../state/store.js';
import { OutflowError } from '../errors.js';
import type { SyncDelivery } from '../delivery/deliverer.js';
import { fingerprint } from '../mapping/fingerprint.js';
import { mapFields, mapMatch } from '../mapping/mapper.js';
import type { RunScope } from '../engine/scope.js';
import { failpoint } from '../failpoints.js';
import { RECONCILE_PENDING, RECONCILED } from './reconcile.js';

const HEALTH_EVERY_MS = 30_000;

/**
 * Moves a stream's checkpoint forward in order: a batch's checkpoint is saved in the ledger
 * and committed to the stream only once every change of that batch and of all earlier
 * batches settled (delivered or parked).
 */
export class CheckpointTracker {
  private readonly pending: { checkpoint: Checkpoint; remaining: number }[] = [];
  private base = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly save: (checkpoint: Checkpoint) => Promise<void>) {}

  /** Registers a batch of `changes` changes; returns its index for {@link settled}. */
  add(checkpoint: Checkpoint, changes: number): number {
    this.pending.push({ checkpoint, remaining: changes });
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
      this.chain = this.chain.then(() => this.save(done.checkpoint));
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
export async function captureStream(run: RunScope, state: DiffStore, delivery: SyncDelivery): Promise<void> {
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
  const stream: ChangeStream = await source.open(run.from.ctx, run.model, checkpoint, { sync: sync.name, ...(reconciled ? { reconciled } : {}) });
  const tracker = new CheckpointTracker(async (cp) => {
    await run.ledger.setCheckpoint(sync.name, cp);
    failpoint('stream.checkpoint-saved');
    await stream.commit(cp);
  });
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
  try {
    for await (const batch of stream) {
      const index = tracker.add(batch.checkpoint, batch.changes.length);
      const known = state.addresses ? await state.addresses([...new Set(batch.changes.map((c) => c.key))]) : undefined;
      for (const change of batch.changes) {
        read++;
        // Every change of a key in doubt stays in doubt for this run: a later update could not
        // address a record whose create may or may not exist, and would create it again.
        const sentFp = doubt.get(change.key) ?? null;
        const at = known?.get(change.key);
        await delivery.push({ change, fp: change.after ? fpOf(change.after) : null, oldFp: null, destId: at?.destId ?? null, sentFp, sentMatch: at?.match ?? null, batch: index });
      }
      tracker.advance();
      await delivery.flush();
      run.progress({ phase: 'streaming', read, settled: delivery.settled, counts: delivery.counts });
      if (run.signal.aborted) break;
    }
    await delivery.close();
    tracker.advance();
    await tracker.drained();
    if (stale && !run.signal.aborted) {
      throw new OutflowError('OUTFLOW_STREAM_STALE', `sync "${sync.name}": the change stream went stale while running; it will be reconciled by a diff`);
    }
  } finally {
    clearInterval(watchdog);
    run.signal.removeEventListener('abort', onAbort);
    await stream.close().catch(() => undefined);
  }
}
