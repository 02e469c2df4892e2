import type { SyncConfig } from '../config/schema.js';
import { OutflowError } from '../errors.js';
import type { RunCounts } from '../ledger/ledger.js';

/**
 * Default `maxDeletes.pct`. A run that would remove more than half of what Outflow wrote is
 * far more often a broken model (an empty table after a failed upstream job, a wrong
 * filter, a renamed schema) than a real change, and a model that really shrinks that much
 * is rare enough to confirm once with `--allow-deletes`.
 */
export const DEFAULT_MAX_DELETE_PCT = 50;

/** Default `delivery.maxRowAttempts`: runs that try a record failing with a retryable error. */
export const DEFAULT_MAX_ROW_ATTEMPTS = 5;

/** Records a stream run sends before its share of rejections is judged (its total is never known). */
export const STREAM_SAMPLE = 100;

/** What a diff run would delete of the records Outflow owns: `outflow plan` shows it, a run stops on it. */
export interface DeleteGuard {
  /** Records the run would delete or clear. */
  deletes: number;
  /** Records Outflow owns in the destination (see `DiffStore.deliveredCount`). */
  owned: number;
  /** `deletes` as a percentage of `owned`. */
  pct: number;
  /** The sync's `maxDeletes.pct`. */
  maxPct: number;
  /** True when a run would stop before sending anything (unless deletes are allowed). */
  exceeded: boolean;
}

/** The blast-radius guard of a diff run whose diff counted `changes`. */
export function deleteGuard(sync: SyncConfig, changes: { delete: number }, owned: number): DeleteGuard {
  const policy = sync.to.mode === 'mirror' ? 'delete' : (sync.to.deletes ?? 'ignore');
  const deletes = policy === 'ignore' ? 0 : changes.delete;
  const pct = deletes === 0 ? 0 : owned === 0 ? 100 : (deletes / owned) * 100;
  const maxPct = sync.maxDeletes?.pct ?? DEFAULT_MAX_DELETE_PCT;
  return { deletes, owned, pct, maxPct, exceeded: pct > maxPct };
}

/** The error a run stops with when {@link deleteGuard} is exceeded; it names the numbers and the way out. */
export function deleteGuardError(sync: SyncConfig, g: DeleteGuard): OutflowError {
  const verb = sync.to.mode !== 'mirror' && sync.to.deletes === 'clear' ? 'clear' : 'delete';
  return new OutflowError(
    'OUTFLOW_DELETE_GUARD',
    `sync "${sync.name}": this run would ${verb} ${g.deletes} of the ${g.owned} records Outflow owns in ${sync.to.object} (${percent(g.pct, g.maxPct)}), ` +
      `more than maxDeletes.pct ${g.maxPct}; nothing was sent. If the model really lost those rows, run once with \`outflow run --allow-deletes\`, or raise maxDeletes.pct in the config`,
    { details: { sync: sync.name, deletes: g.deletes, owned: g.owned, pct: g.pct, maxPct: g.maxPct } },
  );
}

/**
 * The error a run fails with when its rejections pass the sync's `failWhen`, or undefined.
 * At the end of a run (`final`) the share is of the records it sent. While a diff run goes
 * on, a share is judged only once it is certain whatever the rest does: more rejections
 * than the threshold allows of `total`, the run's changes (it sends at most that many). A
 * stream run never knows its total: its share is judged once it has sent
 * {@link STREAM_SAMPLE} records. A count is certain as soon as it is passed.
 */
export function tooManyRejected(sync: SyncConfig, counts: RunCounts, o: { final: boolean; total?: number }): OutflowError | undefined {
  const fw = sync.failWhen;
  const rejected = counts.rejected;
  if (fw === undefined || rejected === 0) return undefined;
  const sent = counts.inserted + counts.updated + counts.deleted + rejected;
  const fail = (why: string) =>
    new OutflowError('OUTFLOW_TOO_MANY_REJECTED', `sync "${sync.name}": ${why}${o.final ? '' : '; the run stopped without sending the rest'} (see \`outflow errors\`)`, {
      details: { sync: sync.name, rejected, sent, ...(o.total === undefined ? {} : { total: o.total }) },
    });
  if (fw.rejected !== undefined && rejected > fw.rejected) return fail(`${rejected} records were rejected, more than failWhen.rejected ${fw.rejected}`);
  const limit = fw.rejectedPct;
  if (limit === undefined) return undefined;
  const over = (of: number) => (rejected / of) * 100 > limit;
  const why = (of: number, what: string) =>
    `${rejected} of ${of} ${what} (${percent((rejected / of) * 100, limit)}) were rejected, more than failWhen.rejectedPct ${limit}`;
  if (o.final) return over(sent) ? fail(why(sent, 'records')) : undefined;
  if (o.total !== undefined) return o.total > 0 && over(o.total) ? fail(why(o.total, 'changes of the run')) : undefined;
  return sent >= STREAM_SAMPLE && over(sent) ? fail(why(sent, 'records sent so far')) : undefined;
}

/** A percentage with as few decimals as show it is above `above` when it is. */
function percent(x: number, above: number): string {
  let digits = Number.isInteger(x) ? 0 : 1;
  while (digits < 6 && x > above && Number(x.toFixed(digits)) <= above) digits++;
  return `${Number(x.toFixed(digits))}%`;
}
