import { captureDiff } from '../capture/diff.js';
import { captureStream } from '../capture/stream.js';
import { resendParked } from '../capture/resend.js';
import { tooManyRejected, type DeleteGuard } from '../delivery/guards.js';
import type { DiffStore, StateStore } from '../state/store.js';
import { SyncDelivery } from '../delivery/deliverer.js';
import { describeError, isOutflowError } from '../errors.js';
import type { RunCounts, RunStatus } from '../ledger/ledger.js';
import { redact } from '../redact.js';
import type { Mapper } from '../mapping/mapper.js';
import type { PlannedKind } from '../mapping/operations.js';
import type { LeasedScope, Progress, RunScope } from './scope.js';
import type { Row } from '../contracts.js';
import { failpoint } from '../failpoints.js';

export interface RunOptions {
  /** Most planned changes to return in `plan` (dry runs). */
  planLimit?: number;
  onProgress?(p: Progress): void;
  /** Retry and backoff tuning (tests shorten it). */
  backoff?: { baseMs: number; maxMs: number };
  /**
   * Before running, clear parked rejections so they are sent again (`outflow retry`): all,
   * or the rows of these keys. Writes in doubt among them are sent again too. A stream sync
   * first sends those rows as the model has them now (its stream would not send them again).
   */
  unpark?: boolean | string[];
  /**
   * Let a diff run delete or clear more of the records Outflow owns than the sync's
   * `maxDeletes.pct` (`outflow run --allow-deletes`).
   */
  allowDeletes?: boolean;
  /** This run is the reconciling diff of a stale stream. */
  reconcile?: boolean;
  /** Called with the summary of every run, reconciling diffs of a stream included. */
  onRun?(summary: RunSummary): void;
}

export interface PlannedChange {
  kind: PlannedKind;
  key: string;
  /** The fields a record operation sends; an event's payload. */
  fields?: Row;
  match?: Row;
  /** Event mode: the trigger that fires and where its event goes. */
  event?: { trigger: string; object: string };
}

export interface RunSummary extends RunCounts {
  sync: string;
  capture: 'diff' | 'stream';
  status: Exclude<RunStatus, 'running'>;
  durationMs: number;
  runId?: number;
  error?: { code: string; message: string };
  /** Rows parked with errors in total for this sync after the run. */
  parked?: number;
  plan?: {
    counts: Record<PlannedKind, number>;
    changes: PlannedChange[];
    truncated: boolean;
    /** The blast-radius guard: what a run would delete of what Outflow owns, and whether it would stop. */
    deletes: DeleteGuard;
  };
}

export const zeroCounts = (): RunCounts => ({ inserted: 0, updated: 0, deleted: 0, rejected: 0, skipped: 0 });

/** Opens the delivered-state store of a run: the source's pushdown store, or the engine's. */
export async function openState(scope: RunScope, stateStore: StateStore, capture: 'diff' | 'stream', readOnly: boolean): Promise<DiffStore> {
  const { sync, from, mapper, model } = scope;
  const pushdown = from.connector.source?.diff;
  const options = { sync: sync.name, columns: fingerprintColumns(mapper), readOnly };
  if (pushdown && capture === 'diff' && sync.from.pushdown !== false) return pushdown.open(from.ctx, model, options);
  return stateStore.open(options);
}

/** The model columns whose values are delivered, or null for every column. */
function fingerprintColumns(mapper: Mapper): string[] | null {
  return mapper.fields === null ? null : [...new Set([...mapper.fields, ...(mapper.match ?? [])].map(([, col]) => col))];
}

/**
 * Runs one sync once under its lease (`scope.lease`, taken by the engine): a diff run
 * delivers what changed since the last delivered state; a stream run follows the change
 * stream until `scope.signal` aborts. The run is recorded in the ledger, and a failure
 * becomes a failed summary, not a throw. A run whose lease is lost stops at once and fails
 * with `OUTFLOW_LEASE_LOST`; its finish is then refused by the ledger, and the new holder
 * marks it aborted.
 */
export async function runOnce(scope: LeasedScope, stateStore: StateStore, options: RunOptions): Promise<RunSummary> {
  const started = Date.now();
  const { sync, ledger, logger, lease } = scope;
  const capture = sync.capture ?? 'diff';
  await ledger.abandonRunningRuns(sync.name);
  const runId = await ledger.startRun(sync.name, capture);
  const counts = zeroCounts();
  let state: DiffStore | null = null;
  try {
    state = await openState(scope, stateStore, capture, false);
    if (options.unpark) await state.unpark(options.unpark === true ? undefined : options.unpark);
    const previousMapping = await state.getMeta('mapping');
    if (previousMapping !== undefined && previousMapping !== scope.mapper.hash) {
      const n = await state.markAllStale();
      logger.info({ sync: sync.name, rows: n }, 'mappings changed: every delivered row will be sent again');
    }
    await state.setMeta('mapping', scope.mapper.hash);
    const opened = state;
    const deliver = (): SyncDelivery => new SyncDelivery({
      sync,
      to: scope.to,
      budget: scope.budget,
      caps: scope.caps,
      mapper: scope.mapper,
      state: opened,
      ledger,
      logger,
      runId,
      counts,
      signal: scope.signal,
      resend: options.unpark === true ? true : new Set(options.unpark || []),
      total: () => scope.total,
      followsStream: capture === 'stream' || options.reconcile === true,
      afterWrite: () => {
        failpoint('delivery.after-write');
        if (options.reconcile) failpoint('reconcile.after-write');
      },
      ...(options.backoff ? { backoff: options.backoff } : {}),
      onSettled: (settled) =>
        scope.progress({ phase: capture === 'stream' ? 'streaming' : 'delivering', read: 0, settled, counts, ...(scope.total === undefined ? {} : { total: scope.total }) }),
    });
    const delivery = deliver();
    if (capture === 'stream') {
      // A stream re-sends nothing by itself: `outflow retry` sends the parked rows first.
      if (options.unpark) await resendParked(scope, state, deliver(), options.unpark);
      await captureStream(scope, state, delivery);
    } else {
      // A reconcile starts the stream's positions afresh: what its diff deletes is recorded
      // as gone, so replays from before those deletes are not applied after it.
      if (options.reconcile) {
        scope.reconcile = true;
        await state.forgetPositions?.();
      }
      await captureDiff(scope, state, delivery);
    }
    if (lease.lost) throw lease.lost;
    // A stream has no end of its own: stopped with every batch in flight settled (no call
    // cancelled after the grace period), its run ended as it should, not aborted.
    const aborted = scope.signal.aborted && (capture !== 'stream' || scope.to.ctx.signal.aborted);
    const tooMany = aborted ? undefined : tooManyRejected(sync, counts, { final: true });
    if (tooMany) throw tooMany;
    const parked = await ledger.countRowErrors(sync.name);
    const status: RunSummary['status'] = aborted ? 'aborted' : counts.rejected > 0 ? 'partial' : 'succeeded';
    await lease.finishRun(runId, status, counts, aborted ? 'stopped by a signal before it finished' : undefined);
    scope.progress({ phase: 'done', read: 0, settled: 0, counts });
    return { sync: sync.name, capture, status, ...counts, durationMs: Date.now() - started, runId, parked };
  } catch (err) {
    // A run stopped because its lease was lost fails with that, whatever else went wrong as it stopped.
    const cause = lease.lost ?? err;
    const message = redact(describeError(cause));
    await lease.finishRun(runId, 'failed', counts, message).catch(() => undefined);
    const code = isOutflowError(cause) ? cause.code : 'OUTFLOW_INTERNAL';
    logger.error({ sync: sync.name, code, err: message }, 'sync failed');
    const parked = await ledger.countRowErrors(sync.name).catch(() => undefined);
    return {
      sync: sync.name,
      capture,
      status: 'failed',
      ...counts,
      durationMs: Date.now() - started,
      runId,
      ...(parked === undefined ? {} : { parked }),
      error: { code, message: isOutflowError(cause) ? redact(cause.message) : message },
    };
  } finally {
    await state?.close();
  }
}
