import fc from 'fast-check';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqlDiffStore, type SqlModel } from '../src/sql-diff.js';
import { mkdtempSync } from 'node:fs';
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

  it('refuses duplicate keys, naming them, also when only a few blocks are compared', async () => {
    const dir = tempDir('outflow-sqldiff-');
    const rows = Array.from({ length: 1000 }, (_, i) => ({ id: i, v: 0 }));
    let store = await open(dir, rows, { kind: 'int', column: 'id' });
    await store.computeChanges();
    const acks = [];
    for await (const page of store.changes()) for (const c of page) acks.push({ key: c.key, kind: 'delivered' as const, fp: c.fp! });
    await store.apply(acks);
    await store.setMeta('change_fraction', '0.001');
    await store.close();
    store = await open(dir, [...rows, { id: 500, v: 1 }], { kind: 'int', column: 'id' });
    await expect(store.computeChanges()).rejects.toMatchObject({ code: 'OUTFLOW_MODEL_KEY', message: expect.stringContaining('duplicated: 500') });
    expect(store.stats.method).toBe('blocks');
    await store.close();
  });
});
