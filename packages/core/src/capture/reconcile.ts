import type { SyncConfig } from '../config/schema.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Logger } from '../logger.js';
import type { RunSummary } from '../engine/run.js';
import type { HeldLease } from '../engine/lease.js';
import { failpoint } from '../failpoints.js';

/** The checkpoint of a stream sync whose reconciling diff has begun and not completed. */
export const RECONCILE_PENDING = 'outflow:reconcile-pending';
/**
 * The checkpoint of a stream sync whose reconciling diff completed: the stream opens from
 * null with `reconciled: true`, and resumes the position its connector secured.
 */
export const RECONCILED = 'outflow:reconciled';

export interface StreamLoop {
  /** Runs the sync once with the given capture settings; `reconcile` marks a reconciling diff. */
  runOnce(sync: SyncConfig, reconcile?: boolean): Promise<RunSummary>;
  ledger: Ledger;
  /** The sync's lease, held across the stream runs and their reconciles; the checkpoint marks are written under it. */
  lease: HeldLease;
  logger: Logger;
  /** Aborted when the engine stops or the lease is lost. */
  signal: AbortSignal;
  onRun?(summary: RunSummary): void;
}

/**
 * Follows a stream sync until `signal` aborts or it fails for a reason other than a stale
 * stream. Each time the stream reports itself stale (slot dropped, retention missed, table
 * truncated) it is reconciled: one diff run of the model against what the stream delivered
 * — the stream's own delivered state, never the source's pushdown store, and fingerprinted
 * as the stream fingerprints, so rows the stream already delivered are not sent again —
 * then the stream opens again (from null, told it was reconciled) at the position the
 * connector secured when it reported itself stale (see `Stream.open`). Every run,
 * reconciliations included, is recorded in the ledger and passed to `onRun`. Returns the
 * last run's summary.
 *
 * A reconcile that has begun is marked in the ledger (the checkpoint becomes
 * {@link RECONCILE_PENDING}) until it completes: a process killed during it, or a reconcile
 * that failed or was stopped, reconciles again at the next start before the stream opens.
 * (Without the mark, a connector told `open(null)` could not tell "reconciled" from
 * "reconcile interrupted" and would resume its stream past rows never delivered.)
 */
export async function followStream(loop: StreamLoop, sync: SyncConfig): Promise<RunSummary> {
  let pending = (await loop.ledger.getCheckpoint(sync.name)) === RECONCILE_PENDING;
  for (;;) {
    if (!pending) {
      const run = await loop.runOnce({ ...sync, capture: 'stream' });
      loop.onRun?.(run);
      if (run.error?.code !== 'OUTFLOW_STREAM_STALE') return run;
      // Marked before anything else: a connector that reported stale secured a position
      // that must not be resumed until the reconcile completes, even if the process stops now.
      await loop.lease.setCheckpoint(RECONCILE_PENDING);
      if (loop.signal.aborted) return run;
      loop.logger.warn({ sync: sync.name, reason: run.error.message }, 'reconciling the change stream by a diff');
    } else loop.logger.warn({ sync: sync.name }, 'a reconcile of the change stream did not finish: reconciling by a diff before the stream resumes');
    pending = false;
    const reconcile = await loop.runOnce({ ...sync, capture: 'diff', from: { ...sync.from, pushdown: false } }, true);
    loop.onRun?.(reconcile);
    if (reconcile.status === 'succeeded' || reconcile.status === 'partial') {
      failpoint('reconcile.after-diff');
      await loop.lease.setCheckpoint(RECONCILED);
    }
    if (reconcile.status === 'failed' || loop.signal.aborted) return reconcile;
  }
}
