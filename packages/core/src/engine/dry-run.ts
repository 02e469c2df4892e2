import type { StateStore } from '../state/store.js';
import { prepareSnapshot } from '../capture/diff.js';
import { redactValue } from '../redact.js';
import { mapFields, mapMatch } from '../mapping/mapper.js';
import { clearedFields, planKind, type PlannedKind } from '../mapping/operations.js';
import { openState, zeroCounts, type PlannedChange, type RunOptions, type RunSummary } from './run.js';
import type { RunScope } from './scope.js';
import { deleteGuard, type DeleteGuard } from '../delivery/guards.js';

/**
 * A dry run: the changes a run would send, computed against the delivered state opened
 * read-only, and what the blast-radius guard would say of them. Nothing is sent and nothing
 * is written — not the ledger, not the state.
 */
export async function planRun(scope: RunScope, stateStore: StateStore, options: RunOptions): Promise<RunSummary> {
  const started = Date.now();
  const { sync, caps, mapper } = scope;
  const limit = options.planLimit ?? Number.POSITIVE_INFINITY;
  const state = await openState(scope, stateStore, 'diff', true);
  const counts = { upsert: 0, update: 0, insert: 0, delete: 0, clear: 0, skip: 0, forget: 0 } as Record<PlannedKind, number>;
  const byOp = zeroCounts();
  const changes: PlannedChange[] = [];
  let guard: DeleteGuard;
  try {
    const previousMapping = await state.getMeta('mapping');
    const stale = previousMapping !== undefined && previousMapping !== mapper.hash;
    await prepareSnapshot(scope, state, () => undefined);
    const c = await state.computeChanges();
    guard = deleteGuard(sync, c, c.delete > 0 ? await state.deliveredCount() : 0);
    for await (const chunk of state.changes()) {
      for (const d of chunk) {
        const kind = planKind(d.op, d.oldFp !== null || d.op !== 'insert', sync.to, caps);
        counts[kind]++;
        if (kind === 'skip') byOp.skipped++;
        else if (kind === 'delete' || kind === 'clear') byOp.deleted++;
        else if (kind !== 'forget' && d.op === 'insert') byOp.inserted++;
        else if (kind !== 'forget') byOp.updated++;
        if (changes.length >= limit || kind === 'forget') continue;
        const pc: PlannedChange = { kind, key: d.key };
        if (d.row && kind !== 'delete') {
          pc.fields = redactValue(mapFields(mapper, d.row));
          const m = mapMatch(mapper, d.row);
          if (m) pc.match = redactValue(m);
        }
        if (kind === 'clear') pc.fields = clearedFields(sync.mappings ?? {});
        changes.push(pc);
      }
    }
    if (stale) scope.logger.info({ sync: sync.name }, 'mappings changed since the last run: a run will send every row again');
  } finally {
    await state.close();
  }
  return {
    sync: sync.name,
    capture: sync.capture ?? 'diff',
    status: 'succeeded',
    ...byOp,
    durationMs: Date.now() - started,
    plan: { counts, changes, truncated: Object.values(counts).reduce((a, b) => a + b, 0) - counts.forget > changes.length, deletes: guard },
  };
}
