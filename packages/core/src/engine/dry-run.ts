import type { StateStore } from '../state/store.js';
import { prepareSnapshot } from '../capture/diff.js';
import { redactValue } from '../redact.js';
import { mapFields, mapMatch } from '../mapping/mapper.js';
import { clearedFields, planKind, type PlannedKind } from '../mapping/operations.js';
import { openState, zeroCounts, type PlannedChange, type RunOptions, type RunSummary } from './run.js';
import type { RunScope } from './scope.js';
import { deleteGuard, type DeleteGuard } from '../delivery/guards.js';
import type { RunCounts } from '../ledger/ledger.js';
import type { DiffRow } from '../state/store.js';
import { compileTriggers, type EventTriggers } from '../events/triggers.js';
import { decodeEventState } from '../events/state.js';

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
  const counts = { upsert: 0, update: 0, insert: 0, delete: 0, event: 0, clear: 0, skip: 0, forget: 0 } as Record<PlannedKind, number>;
  const triggers = sync.to.mode === 'event' ? compileTriggers(sync) : undefined;
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
      if (triggers !== undefined) {
        for (const d of chunk) planEvents(d, triggers, counts, byOp, changes, limit);
        continue;
      }
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
    plan: { counts, changes, truncated: listed(counts, triggers !== undefined) > changes.length, deletes: guard },
  };
}

/**
 * Event mode: the events one change of the diff would send, each listed with its trigger,
 * object and payload (counted as creates; a change firing none as skipped).
 */
function planEvents(
  d: DiffRow,
  triggers: EventTriggers,
  counts: Record<PlannedKind, number>,
  byOp: RunCounts,
  changes: PlannedChange[],
  limit: number,
): void {
  const fired = triggers.fire({ op: d.op, key: d.key, ...(d.row ? { after: d.row } : {}) }, decodeEventState(d.destId)?.values);
  if (fired.length === 0) {
    counts[d.op === 'delete' ? 'forget' : 'skip']++;
    if (d.op !== 'delete') byOp.skipped++;
    return;
  }
  counts.event += fired.length;
  byOp.inserted += fired.length;
  for (const e of fired) {
    if (changes.length >= limit) return;
    changes.push({ kind: 'event', key: d.key, fields: redactValue(e.payload), event: { trigger: e.trigger, object: e.object } });
  }
}

/** How many planned changes a full listing holds: every one but forgotten deletes, and in event mode only the events. */
function listed(counts: Record<PlannedKind, number>, events: boolean): number {
  return events ? counts.event : Object.values(counts).reduce((a, b) => a + b, 0) - counts.forget;
}
