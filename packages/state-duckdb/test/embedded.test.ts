import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { fingerprint, isOutflowError, type DiffRow, type Row } from '@outflow/core';
import { duckdbStateStore, stateFileOf } from '../src/index.js';

const rows: Row[] = Array.from({ length: 50 }, (_, i) => ({ id: i, name: `row ${i}` }));

async function run(dir: string, deliver: boolean, readOnly = false): Promise<{ changes: DiffRow[]; engine: string | undefined; inDoubt: string[] }> {
  const store = await duckdbStateStore({ dir }).open({ sync: 's', columns: null, readOnly });
  await store.ingest.begin(['id', 'name'], rows);
  await store.ingest.add(rows.map((r) => String(r['id'])), rows, rows.map((r) => fingerprint(r, undefined)));
  await store.ingest.end();
  await store.computeChanges();
  const changes: DiffRow[] = [];
  for await (const page of store.changes()) changes.push(...page);
  if (deliver) await store.apply(changes.map((c) => ({ key: c.key, kind: 'delivered' as const, fp: c.fp!, destId: `d${c.key}` })));
  const engine = await store.getMeta('fingerprint_engine');
  const inDoubt = (await store.inDoubt()).map((d) => `${d.key}:${d.fp}`);
  await store.close();
  return { changes, engine, inDoubt };
}

describe('the embedded store', () => {
  it('hands every value over as the source gave it, across several spool files and a column that turns to text late', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outflow-embedded-'));
    const numbers = [Number.NaN, Infinity, -Infinity, -0, 5e-324, 2 ** 53 + 2, 0.1, 1e21];
    const strings = ['plain', '\u0001starts with the mark', 'lone \ud800 surrogate', '', 'é 😀'];
    // 230,000 rows: more than two spool files. The first 1,000 (the sample the column types
    // are chosen by) hold finite numbers; `late` holds numbers until its last rows.
    const n = 230_000;
    const number = (i: number) => (i < 1000 ? i + 0.5 : numbers[i % numbers.length]!);
    const model: Row[] = Array.from({ length: n }, (_, i) => ({
      id: i,
      num: number(i),
      late: i < n - 10 ? number(i) : `text ${i}`,
      str: strings[i % strings.length]!,
      flag: i % 3 === 0 ? null : i % 2 === 0,
    }));
    const store = await duckdbStateStore({ dir }).open({ sync: 's', columns: null, readOnly: false });
    await store.ingest.begin(Object.keys(model[0]!), model.slice(0, 1000));
    for (let i = 0; i < n; i += 10_000) {
      const part = model.slice(i, i + 10_000);
      await store.ingest.add(part.map((r) => String(r['id'])), part, part.map((r) => fingerprint(r, undefined)));
    }
    expect(await store.ingest.end()).toBe(n);
    expect(await store.computeChanges()).toEqual({ insert: n, update: 0, delete: 0 });
    const seen = new Map<string, Row>();
    for await (const page of store.changes()) for (const c of page) seen.set(c.key, c.row!);
    await store.close();
    expect(seen.size).toBe(n);
    const same = (got: unknown, want: unknown) => Object.is(got, want) || (typeof want === 'object' && JSON.stringify(got) === JSON.stringify(want));
    for (const r of model) {
      const got = seen.get(String(r['id']))!;
      // A column that stays numeric keeps every number exactly; one turned to text holds them
      // as JSON does (NaN and ±Infinity as null); a lone surrogate is not UTF-8 and becomes U+FFFD.
      const late = typeof r['late'] === 'number' && !Number.isFinite(r['late']) ? null : r['late'];
      const want = { ...r, late, str: (r['str'] as string).replace('\ud800', '\ufffd') };
      for (const [k, v] of Object.entries(want)) if (!same(got[k], v)) expect({ id: r['id'], column: k, got: got[k] }).toEqual({ id: r['id'], column: k, got: v });
    }
  }, 60_000);

  it('refuses model columns named like its own, in any case, instead of dropping or mixing them up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outflow-embedded-'));
    for (const column of ['__key', '__K', '__outflow_fp', '__op']) {
      const store = await duckdbStateStore({ dir }).open({ sync: 's', columns: null, readOnly: false });
      const err = await store.ingest!.begin(['id', column], []).then(
        () => new Error('accepted'),
        (e: unknown) => e,
      );
      await store.close();
      expect(isOutflowError(err, 'OUTFLOW_MAPPING'), String(err)).toBe(true);
      expect((err as Error).message).toContain(`the model has a column named "${column}", which the diff reserves for itself`);
    }
  });

  it('re-sends every row once, as updates by destination id, when the state was diffed by other fingerprints', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outflow-embedded-'));
    const first = await run(dir, true);
    expect(first.changes).toHaveLength(50);
    expect(first.engine).toMatch(/^outflow-fp-2 \d+$/);

    // A state written before the engine handed over its fingerprints: DuckDB's hash().
    const store = await duckdbStateStore({ dir }).open({ sync: 's', columns: null, readOnly: false });
    await store.setMeta('fingerprint_engine', 'duckdb v1.4.0');
    await store.close();

    const again = await run(dir, true);
    expect(again.changes.map((c) => c.op)).toEqual(Array(50).fill('update'));
    expect(again.changes.every((c) => c.destId === `d${c.key}`)).toBe(true);
    expect(again.engine).toBe(first.engine);
    expect((await run(dir, false)).changes).toEqual([]);
  });

  it('reads acks a crashed run left in the log, also when opened read-only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outflow-embedded-'));
    await run(dir, true);
    // What a run that died after apply() leaves: acks logged, not yet folded.
    const db = await DuckDBInstance.create(stateFileOf(dir, 's'));
    const conn = await db.connect();
    await conn.run(`INSERT INTO acks (seq, k, kind, fp, dest_id, m) VALUES (1, '3', 'forget', NULL, NULL, NULL), (2, '4', 'sent', 77, NULL, NULL)`);
    conn.closeSync();
    db.closeSync();

    const brief = (r: { changes: DiffRow[]; inDoubt: string[] }) => ({
      changes: r.changes.map((c) => `${c.op} ${c.key} ${c.sentFp ?? '-'}`).sort(),
      inDoubt: r.inDoubt,
    });
    const want = { changes: ['insert 3 -', 'update 4 77'], inDoubt: ['4:77'] };
    expect(brief(await run(dir, false, true))).toEqual(want);
    expect(brief(await run(dir, false))).toEqual(want);
  });
});
