import type { SyncConfig } from '../config/schema.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Logger } from '../logger.js';
import type { RunSummary } from '../engine/run.js';

export interface StreamLoop {
  /** Runs the sync once with the given capture settings. */
  runOnce(sync: SyncConfig): Promise<RunSummary>;
  ledger: Ledger;
  logger: Logger;
  signal: AbortSignal;
  onRun?(summary: RunSummary): void;
}

/**
 * Follows a stream sync until `signal` aborts or it fails for a reason other than a stale
 * stream. Each time the stream reports itself stale (slot dropped, retention missed, table
 * truncated) it is reconciled: one diff run of the model against what the stream delivered
 * — the stream's own delivered state, never the source's pushdown store, and fingerprinted
 * as the stream fingerprints, so rows the stream already delivered are not sent again —
 * then the checkpoint is cleared and the stream opens again from the position the
 * connector secured when it reported itself stale (see `Stream.open`). Every run,
 * reconciliations included, is recorded in the ledger and passed to `onRun`. Returns the
 * last run's summary.
 */
export async function followStream(loop: StreamLoop, sync: SyncConfig): Promise<RunSummary> {
  for (;;) {
    const run = await loop.runOnce({ ...sync, capture: 'stream' });
    loop.onRun?.(run);
    if (run.error?.code !== 'OUTFLOW_STREAM_STALE' || loop.signal.aborted) return run;
    loop.logger.warn({ sync: sync.name }, 'the change stream is stale: reconciling by a diff');
    const reconcile = await loop.runOnce({ ...sync, capture: 'diff', from: { ...sync.from, pushdown: false } });
    loop.onRun?.(reconcile);
    if (reconcile.status === 'succeeded' || reconcile.status === 'partial') await loop.ledger.clearCheckpoint(sync.name);
    if (reconcile.status === 'failed' || loop.signal.aborted) return reconcile;
  }
}
