import type { DiffStore } from '../state/store.js';
import type { Pending, SyncDelivery } from '../delivery/deliverer.js';
import type { RunScope } from '../engine/scope.js';
import { prepareSnapshot } from './diff.js';

/**
 * `outflow retry` of a stream sync. A stream delivers only changes, so nothing would send a
 * parked row again until its row changes. Here the model is read (whole, as a reconciling
 * diff reads it) and diffed against the stream's delivered state — parked versions were
 * just cleared — and the changes of the keys asked for (all keys with row errors, or the
 * given ones) are delivered: the model's current row, or, for a key that left the model, a
 * delete (or clear, or nothing) under the sync's delete policy. A key the destination
 * already has at its current version has its row error resolved. The diff's other changes
 * are left to the stream, which delivers them from its checkpoint. Resolves once every
 * record sent here has settled and been recorded; the stream opens after that.
 */
export async function resendParked(run: RunScope, state: DiffStore, delivery: SyncDelivery, keys: true | string[]): Promise<void> {
  const { sync, ledger } = run;
  const asked = new Set(keys === true ? (await ledger.listRowErrors({ sync: sync.name })).map((e) => e.key) : keys);
  if (asked.size > 0) {
    await prepareSnapshot(run, state, (read) => run.progress({ phase: 'reading', read, settled: 0, counts: delivery.counts }));
    if (run.signal.aborted) return;
    await state.computeChanges();
    const pending: Pending[] = [];
    for await (const chunk of state.changes()) {
      for (const d of chunk) {
        if (!asked.has(d.key)) continue;
        pending.push({
          change: { op: d.op, key: d.key, ...(d.row ? { after: d.row } : {}) },
          fp: d.fp,
          oldFp: d.oldFp,
          destId: d.destId,
          sentFp: d.sentFp,
          sentMatch: d.sentMatch ?? null,
        });
      }
    }
    // The model is whole here, so parked rows that left it unsent can go (tidy), and keys
    // without a change are at the version the destination has.
    const changed = new Set(pending.map((p) => p.change.key));
    const settled = [...(await state.tidy()), ...[...asked].filter((k) => !changed.has(k))];
    if (settled.length) await ledger.resolveRowErrors(sync.name, [...new Set(settled)]);
    run.logger.info({ sync: sync.name, rows: pending.length }, 'sending the parked rows of the stream again');
    try {
      for (const p of pending) {
        if (run.signal.aborted) break;
        await delivery.push(p);
      }
    } catch (err) {
      await delivery.close().catch(() => undefined);
      throw err;
    }
  }
  await delivery.close();
}
