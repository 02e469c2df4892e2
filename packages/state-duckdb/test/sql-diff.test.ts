import fc from 'fast-check';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Ack } from '@outflow/core';
import { SqlDiffStore, type SqlModel } from '../src/sql-diff.js';
import { copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

/**
 * The key-block diff must find exactly what a plain join finds, whatever the keys, the
 * block size and where the changes fall: a block whose checksums agree is skipped, so a
 * mistake there would silently lose changes.
 */
type Row = { id: number; v: number };

async function open(dir: string, rows: Row[], key: SqlModel['key']) {
  const values = rows.length ? rows.map((r) => `(${r.id}, ${r.v})`).join(', ') : '(0, 0)';
  const where = rows.length ? '' : ' WHERE false';
  return SqlDiffStore.open(
    { relation: `SELECT * FROM (VALUES ${values}) t(id, v)${where}`, key, fingerprint: ['v'] },
    { stateFile: join(dir, 'state.duckdb'), readOnly: false, tempDir: join(dir, 'tmp') },
  );
}

async function changesOf(store: SqlDiffStore): Promise<string[]> {
  await store.computeChanges();
  const out: string[] = [];
  for await (const page of store.changes()) for (const c of page) out.push(`${c.op}:${c.key}`);
  return out.sort();
}

const rowsArb = fc.uniqueArray(fc.record({ id: fc.integer({ min: -50, max: 3000 }), v: fc.integer({ min: 0, max: 3 }) }), {
  selector: (r) => r.id,
  minLength: 50,
  maxLength: 600,
});
/** A few edits, so most key blocks are unchanged and only some must be compared. */
const editsArb = fc.array(
  fc.record({ kind: fc.constantFrom('update', 'delete', 'insert'), at: fc.nat(), id: fc.integer({ min: 3001, max: 4000 }) }),
  { maxLength: 6 },
);

function edit(rows: Row[], edits: { kind: string; at: number; id: number }[]): Row[] {
  const out = new Map(rows.map((r) => [r.id, r]));
  for (const e of edits) {
    const victim = rows[e.at % rows.length]!;
    if (e.kind === 'update') out.set(victim.id, { id: victim.id, v: victim.v + 10 });
    else if (e.kind === 'flip') {
      // One of the first three rows, so that rounds flip the same rows, and twice is back to where it was.
      const row = out.get(rows[e.at % Math.min(3, rows.length)]!.id);
      if (row) out.set(row.id, { id: row.id, v: row.v ^ 16 });
    }
    else if (e.kind === 'delete') out.delete(victim.id);
    else out.set(e.id, { id: e.id, v: 1 });
  }
  return [...out.values()];
}

describe('SqlDiffStore', () => {
  for (const keyKind of ['int', 'text'] as const) {
    it(`key blocks find exactly the changes a plain join finds (${keyKind} keys)`, async () => {
      await fc.assert(
        fc.asyncProperty(rowsArb, editsArb, fc.constantFrom('0.00001', '0.001', '0.01', '0.5'), async (before, edits, lastRate) => {
          const after = edit(before, edits);
          const key: SqlModel['key'] = keyKind === 'int' ? { kind: 'int', column: 'id' } : { kind: 'text', expr: 'CAST(id AS VARCHAR)' };
          const dir = tempDir('outflow-sqldiff-');
          // Deliver `before` in full.
          let store = await open(dir, before, key);
          await store.computeChanges();
          const acks = [];
          for await (const page of store.changes()) for (const c of page) acks.push({ key: c.key, kind: 'delivered' as const, fp: c.fp! });
          await store.apply(acks);
          await store.setMeta('change_fraction', lastRate);
          await store.close();

          store = await open(dir, after, key);
          const found = await changesOf(store);
          const method = store.stats.method;
          await store.close();

          const was = new Map(before.map((r) => [r.id, r.v]));
          const now = new Map(after.map((r) => [r.id, r.v]));
          const want: string[] = [];
          for (const [id, v] of now) {
            if (!was.has(id)) want.push(`insert:${id}`);
            else if (was.get(id) !== v) want.push(`update:${id}`);
          }
          for (const id of was.keys()) if (!now.has(id)) want.push(`delete:${id}`);
          expect(found, method).toEqual(want.sort());
        }),
        { numRuns: 25, seed: 7 },
      );
    });
  }

  for (const keyKind of ['int', 'text'] as const) {
    it(`block checksums kept across runs and folds find what a plain join finds, comparing the blocks checksums computed afresh compare (${keyKind} keys)`, async () => {
      // Each round: the model changes, the diff runs by kept block checksums, by one join and
      // by checksums computed afresh (on copies of the state), then some changes are delivered, some sent and never
      // acknowledged, some parked and some not acknowledged at all, and the run closes
      // (folding its acks into the state and its block checksums).
      const outcome = fc.constantFrom('delivered', 'delivered', 'delivered', 'sent', 'parked', 'none');
      const roundEdits = fc.array(
        fc.record({ kind: fc.constantFrom('flip', 'flip', 'flip', 'delete', 'insert'), at: fc.nat(), id: fc.integer({ min: 301, max: 310 }) }),
        { maxLength: 5 },
      );
      const roundArb = fc.record({ edits: roundEdits, outcomes: fc.array(outcome, { minLength: 8, maxLength: 8 }) });
      // Few rows in few blocks, so that the entries folds append soon outnumber the merged ones
      // and are merged.
      const fewRows = fc.uniqueArray(fc.record({ id: fc.integer({ min: -50, max: 300 }), v: fc.integer({ min: 0, max: 3 }) }), {
        selector: (r) => r.id,
        minLength: 20,
        maxLength: 120,
      });
      let sameBlocks = 0;
      await fc.assert(
        fc.asyncProperty(fewRows, fc.array(roundArb, { minLength: 2, maxLength: 4 }), fc.constantFrom('0.001', '0.03'), async (first, rounds, rate) => {
          const key: SqlModel['key'] = keyKind === 'int' ? { kind: 'int', column: 'id' } : { kind: 'text', expr: 'CAST(id AS VARCHAR)' };
          const dir = tempDir('outflow-sqldiff-kept-');
          let model = first;
          for (const [i, round] of [{ edits: [], outcomes: ['delivered'] }, ...rounds].entries()) {
            model = edit(model, round.edits);
            // The same state diffed by one join, and by checksums computed afresh: the changes
            // the kept checksums must find, and the blocks they must compare.
            const copy = async (afresh: boolean) => {
              const ref = tempDir('outflow-sqldiff-ref-');
              for (const f of ['state.duckdb', 'state.duckdb.wal']) if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(ref, f));
              const before = await open(ref, model, key);
              await before.setMeta(afresh ? 'block_checksums' : 'change_fraction', afresh ? 'none' : '0.5');
              await before.close();
              const store = await open(ref, model, key);
              const changes = await changesOf(store);
              await store.close();
              return { changes, stats: store.stats };
            };
            const want = (await copy(false)).changes;
            const afresh = i > 0 ? await copy(true) : undefined;

            const store = await open(dir, model, key);
            await store.computeChanges();
            const found: string[] = [];
            const acks: Ack[] = [];
            let n = 0;
            for await (const page of store.changes()) {
              for (const c of page) {
                found.push(`${c.op}:${c.key}`);
                const o = i === 0 ? 'delivered' : round.outcomes[n++ % round.outcomes.length];
                if (o === 'none') continue;
                if (c.op === 'delete') acks.push(o === 'parked' ? { key: c.key, kind: 'parked', fp: null } : { key: c.key, kind: 'deleted' });
                else if (o === 'sent') acks.push({ key: c.key, kind: 'sent', fp: c.fp! });
                else acks.push({ key: c.key, kind: o as 'delivered' | 'parked', fp: c.fp! });
              }
            }
            expect(found.sort(), `round ${i}`).toEqual(want);
            if (afresh) {
              expect(store.stats.method).toBe('blocks');
              expect(afresh.changes).toEqual(want);
              // Kept checksums may serve a block size within a factor of two of the one chosen afresh.
              if (store.stats.blockSpec === afresh.stats.blockSpec) {
                expect(store.stats.blocksChanged, `blocks compared in round ${i}`).toBe(afresh.stats.blocksChanged);
                sameBlocks++;
              }
            }
            await store.apply(acks);
            await store.setMeta('change_fraction', rate);
            await store.close();
          }
        }),
        { numRuns: 10, seed: 11, endOnFailure: true },
      );
      expect(sameBlocks, 'rounds whose compared blocks were checked').toBeGreaterThan(10);
    }, 180_000);
  }

  /** 1,000 rows delivered in full, the last change rate set low: the next diff compares key blocks of 64. */
  async function deliveredThousand() {
    const dir = tempDir('outflow-sqldiff-');
    const rows = Array.from({ length: 1000 }, (_, i) => ({ id: i, v: 0 }));
    const store = await open(dir, rows, { kind: 'int', column: 'id' });
    await store.computeChanges();
    const acks = [];
    for await (const page of store.changes()) for (const c of page) acks.push({ key: c.key, kind: 'delivered' as const, fp: c.fp! });
    await store.apply(acks);
    await store.setMeta('change_fraction', '0.001');
    await store.close();
    return { dir, rows };
  }

  it('finds two rows of one key block that change from the same value to the same other value', async () => {
    const { dir, rows } = await deliveredThousand();
    const store = await open(dir, rows.map((r) => (r.id === 2 || r.id === 4 ? { id: r.id, v: 1 } : r)), { kind: 'int', column: 'id' });
    expect(await changesOf(store)).toEqual(['update:2', 'update:4']);
    expect(store.stats).toMatchObject({ method: 'blocks', blockSize: 64 });
    await store.close();
  });

  it('refuses duplicate keys, naming them, also when only a few blocks are compared', async () => {
    const { dir, rows } = await deliveredThousand();
    const store = await open(dir, [...rows, { id: 500, v: 1 }], { kind: 'int', column: 'id' });
    await expect(store.computeChanges()).rejects.toMatchObject({ code: 'OUTFLOW_MODEL_KEY', message: expect.stringContaining('duplicated: 500') });
    expect(store.stats.method).toBe('blocks');
    await store.close();
  });
});
