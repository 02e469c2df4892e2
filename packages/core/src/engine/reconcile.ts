import { isOutflowError } from '../errors.js';
import type { SyncConfig } from '../config/schema.js';
import { runSync, type RunOptions, type RunSummary, type SyncEnvironment } from './sync.js';

/**
 * Reconciles a stream sync whose change stream went stale (slot dropped, retention missed,
 * table truncated): one diff run of the model against what the stream delivered (the
 * stream's own delivered state, never the source's pushdown store), then the checkpoint is
 * cleared so the next stream run opens from the position the connector prepared when it
 * reported the stream stale. The diff run is recorded in the ledger like any run, so the
 * reconciliation is reported in `outflow status`.
 *
 * The stream connector must, before throwing `OUTFLOW_STREAM_STALE`, have secured a new
 * position that keeps every change from then on (e.g. a new replication slot); its
 * `open(null)` then resumes there without a backfill. The diff's snapshot is taken after
 * that point, so the diff and the resumed stream together miss nothing; changes between
 * the two are applied twice, idempotently.
 */
export async function reconcileStream(env: SyncEnvironment, sync: SyncConfig, options: RunOptions = {}): Promise<RunSummary> {
  env.logger.warn({ sync: sync.name }, 'the change stream is stale: reconciling by a diff');
  const diffSync: SyncConfig = { ...sync, capture: 'diff', from: { ...sync.from, pushdown: false } };
  const summary = await runSync(env, diffSync, options);
  if (summary.status === 'succeeded' || summary.status === 'partial') await env.ledger.clearCheckpoint(sync.name);
  return summary;
}

/**
 * Runs a stream sync until `env.signal` aborts or it fails for another reason; each time
 * the stream reports itself stale, reconciles by a diff ({@link reconcileStream}) and
 * streams again. Returns every run's summary, in order.
 */
export async function runStream(
  env: SyncEnvironment,
  sync: SyncConfig,
  options: RunOptions = {},
  onRun?: (summary: RunSummary) => void,
): Promise<RunSummary[]> {
  const runs: RunSummary[] = [];
  for (;;) {
    const run = await runSync(env, { ...sync, capture: 'stream' }, options);
    runs.push(run);
    onRun?.(run);
    if (run.error?.code !== 'OUTFLOW_STREAM_STALE' || env.signal.aborted) return runs;
    const reconcile = await reconcileStream(env, sync, options);
    runs.push(reconcile);
    onRun?.(reconcile);
    if (reconcile.status === 'failed' || env.signal.aborted) return runs;
  }
}

/** True when a thrown error means the stream must be reconciled by a diff. */
export function isStale(err: unknown): boolean {
  return isOutflowError(err, 'OUTFLOW_STREAM_STALE');
}
