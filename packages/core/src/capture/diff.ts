import type { Row } from '../contracts.js';
import { keyOf } from '../contracts.js';
import type { DiffStore, SnapshotIngest } from '../state/store.js';
import { OutflowError, describeError, isOutflowError } from '../errors.js';
import type { SyncDelivery } from '../delivery/deliverer.js';
import { fingerprint } from '../mapping/fingerprint.js';
import { assertColumns, mapFields, mapMatch } from '../mapping/mapper.js';
import type { RunScope } from '../engine/scope.js';
import { failpoint } from '../failpoints.js';
import { deleteGuard, deleteGuardError } from '../delivery/guards.js';

/**
 * Gets the model ready to diff: a store with `ingest` is handed every row read from the
 * source (with its key and fingerprint); a pushdown store reads the model itself, so only
 * its columns are checked here.
 */
export async function prepareSnapshot(run: RunScope, state: DiffStore, onRead: (n: number) => void): Promise<void> {
  if (state.ingest) {
    await ingestModel(run, state.ingest, onRead);
    return;
  }
  const source = run.from.connector.source!;
  if (source.columns) assertModelColumns(run, (await source.columns(run.from.ctx, run.model)).map((c) => c.name));
}

/** Fails before anything is read or sent when a mapped or key column is not in the model. */
export function assertModelColumns(run: RunScope, columns: string[]): void {
  const where = `sync "${run.sync.name}"`;
  assertColumns(run.mapper, columns, where);
  const missing = run.model.primaryKey.filter((c) => !columns.includes(c));
  if (missing.length) {
    throw new OutflowError(
      'OUTFLOW_MAPPING',
      `${where}: primary key column ${missing.join(', ')} is not in the model (columns: ${columns.join(', ')})`,
    );
  }
}

/** Reads the model into the store's snapshot; fails on a missing key column or a null key. */
async function ingestModel(run: RunScope, ingest: SnapshotIngest, onRead: (n: number) => void): Promise<number> {
  const { sync, model, mapper } = run;
  const source = run.from.connector.source;
  if (!source) {
    throw new OutflowError('OUTFLOW_CONNECTOR_ROLE', `connection "${sync.from.connection}" (${run.from.connector.name}) is not a source`);
  }
  const where = `sync "${sync.name}"`;
  let read = 0;
  let known: Set<string> | null = null;
  try {
    for await (const batch of source.read(run.from.ctx, model, { sync: sync.name, ...(run.reconcile ? { reconcile: true } : {}) })) {
      if (run.signal.aborted) break;
      if (batch.rows.length === 0) continue;
      if (known === null) {
        const columns = Object.keys(batch.rows[0]!);
        assertModelColumns(run, columns);
        await ingest.begin(columns, batch.rows.slice(0, 1000));
        known = new Set(columns);
      }
      const n = batch.rows.length;
      const keys = new Array<string>(n);
      const fps = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        const row = batch.rows[i]!;
        const key = keyOf(row, model.primaryKey);
        if (key === undefined) {
          throw new OutflowError(
            'OUTFLOW_MODEL_KEY',
            `${where}: row ${read + i + 1} of the model has a null primary key (${model.primaryKey.join(', ')}); every row needs one`,
          );
        }
        if ((read + i) % 10_000 === 0) checkColumns(known, row, read + i + 1, where);
        keys[i] = key;
        fps[i] = fingerprint(mapFields(mapper, row), mapMatch(mapper, row));
      }
      await ingest.add(keys, batch.rows, fps);
      read += n;
      onRead(read);
    }
  } catch (err) {
    await ingest.end().catch(() => undefined);
    if (isOutflowError(err)) throw err;
    throw new OutflowError('OUTFLOW_SOURCE', `${where}: reading the model failed: ${describeError(err)}`, { cause: err });
  }
  await ingest.end();
  return read;
}

/** Fails when a row carries a column the model's first row did not have. */
function checkColumns(known: Set<string>, row: Row, n: number, where: string): void {
  for (const c of Object.keys(row)) {
    if (!known.has(c)) {
      throw new OutflowError('OUTFLOW_SOURCE', `${where}: row ${n} has column "${c}", which the model's first row did not have`);
    }
  }
}

/**
 * A diff run's capture: snapshot the model, diff it with the delivered state and deliver
 * every change — unless it would delete more of the records Outflow owns than the sync's
 * `maxDeletes.pct` allows, which fails the run before anything is sent. After a complete
 * run, parked rows that left the model or went back to their delivered version are tidied
 * and their row errors resolved.
 */
export async function captureDiff(run: RunScope, state: DiffStore, delivery: SyncDelivery): Promise<void> {
  let read = 0;
  const progress = (phase: 'reading' | 'diffing' | 'delivering', total?: number) =>
    run.progress({ phase, read, settled: delivery.settled, counts: delivery.counts, ...(total === undefined ? {} : { total }) });
  await prepareSnapshot(run, state, (n) => {
    read = n;
    progress('reading');
  });
  if (run.signal.aborted) return;
  progress('diffing');
  const c = await state.computeChanges();
  failpoint('diff.after-snapshot');
  const guard = deleteGuard(run.sync, c, c.delete > 0 ? await state.deliveredCount() : 0);
  if (guard.exceeded && !run.allowDeletes) throw deleteGuardError(run.sync, guard);
  if (guard.exceeded) run.logger.warn({ sync: run.sync.name, ...guard }, 'deleting more than maxDeletes.pct allows, as --allow-deletes permits');
  const total = c.insert + c.update + c.delete;
  run.total = total;
  progress('delivering', total);
  try {
    for await (const chunk of state.changes()) {
      if (run.signal.aborted) break;
      for (const d of chunk) {
        await delivery.push({
          change: { op: d.op, key: d.key, ...(d.row ? { after: d.row } : {}) },
          fp: d.fp,
          oldFp: d.oldFp,
          destId: d.destId,
          sentFp: d.sentFp ?? null,
          sentMatch: d.sentMatch ?? null,
        });
      }
    }
  } catch (err) {
    // Delivery failed (e.g. failWhen): the batches in flight settle and are recorded first.
    await delivery.close().catch(() => undefined);
    throw err;
  }
  await delivery.close();
  if (!run.signal.aborted) {
    const resolved = await state.tidy();
    if (resolved.length) await run.ledger.resolveRowErrors(run.sync.name, resolved);
  }
}
