import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fingerprint, type Row, type Value } from '@outflow/core';

const fp = (fields: Row, match?: Row) => fingerprint(fields, match);

/** JSON with sorted keys and -0 as 0: two rows fingerprint alike exactly when this is equal. */
function canonical(v: Value | undefined): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const rowArb = fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Value>, { maxKeys: 8 });

describe('fingerprint()', () => {
  it('is a 64-bit unsigned integer in decimal, without leading zeros', () => {
    const seen = [fp({}), fp({ a: 1 }), fp({ a: 'x' }, { e: 'x@y' })];
    for (let i = 0; i < 2000; i++) seen.push(fp({ id: i, name: `row ${i}` }));
    for (const s of seen) {
      expect(s).toMatch(/^(0|[1-9]\d*)$/);
      expect(BigInt(s) < 2n ** 64n).toBe(true);
    }
    // Both halves of the range are used: the high bit is set about half the time.
    const high = seen.filter((s) => BigInt(s) >= 2n ** 63n).length;
    expect(high).toBeGreaterThan(seen.length * 0.4);
    expect(high).toBeLessThan(seen.length * 0.6);
  });

  it('is stable across calls and independent of key order, nested too', () => {
    const row: Row = { id: 7, email: 'a@b.c', tags: ['x', 'y'], attrs: { plan: 'pro', seats: 3, nested: { z: null, a: true } } };
    const reordered: Row = { attrs: { nested: { a: true, z: null }, seats: 3, plan: 'pro' }, tags: ['x', 'y'], email: 'a@b.c', id: 7 };
    expect(fp(row)).toBe(fp(row));
    expect(fp(row)).toBe(fp(structuredClone(row)));
    expect(fp(reordered)).toBe(fp(row));
    expect(fp({ a: 1 }, { e: 'x', f: 'y' })).toBe(fp({ a: 1 }, { f: 'y', e: 'x' }));
  });

  it('tells types apart', () => {
    const values: Value[] = [1, '1', true, 'true', null, 'null', 0, '', false, [], {}, [1], ['1'], { 0: 1 }, [null], [[]], 1.5, '1.5'];
    const fps = values.map((v) => fp({ v }));
    expect(new Set(fps).size).toBe(values.length);
  });

  it('separates fields, keys and values, and array elements', () => {
    const pairs: [Row, Row][] = [
      [{ x: 'ab', y: 'c' }, { x: 'a', y: 'bc' }],
      [{ ab: 'c' }, { a: 'bc' }],
      [{ a: '' }, { a: null }],
      [{ a: ['a', 'b'] }, { a: ['ab'] }],
      [{ a: [['a'], 'b'] }, { a: [['a', 'b']] }],
      [{ a: { b: 1 } }, { a: 1, b: 1 }],
      [{ a: 1, b: 2 }, { a: 2, b: 1 }],
      [{ a: 1 }, { a: 1, b: null }],
      [{ a: 'x\u0000y' }, { a: 'x', y: null }],
    ];
    for (const [a, b] of pairs) expect(fp(a), `${canonical(a)} vs ${canonical(b)}`).not.toBe(fp(b));
  });

  it('tells the fields from the match key', () => {
    const all = [fp({ a: 1 }), fp({ a: 1 }, {}), fp({}, { a: 1 }), fp({ a: 1 }, { a: 1 })];
    expect(new Set(all).size).toBe(all.length);
  });

  it('treats -0 as 0 and undefined as null, as JSON does', () => {
    expect(fp({ n: -0 })).toBe(fp({ n: 0 }));
    expect(fp({ n: undefined as unknown as Value })).toBe(fp({ n: null }));
  });

  it('changes with one bit of a number or one character of a string', () => {
    const fps = new Set<string>();
    const base = 1.5;
    const f64 = new Float64Array([base]);
    const u32 = new Uint32Array(f64.buffer);
    for (let bit = 0; bit < 32; bit++) {
      u32[0] = 1 << bit;
      fps.add(fp({ n: f64[0]! }));
    }
    for (let c = 0; c < 64; c++) fps.add(fp({ s: `abc${String.fromCharCode(c)}def` }));
    expect(fps.size).toBe(32 + 64);
  });

  it('matches for equal rows and differs for different ones (property)', () => {
    fc.assert(
      fc.property(rowArb, rowArb, (a, b) => {
        expect(fp(a) === fp(b)).toBe(canonical(a) === canonical(b));
        expect(fp(a)).toBe(fp(JSON.parse(JSON.stringify(a)) as Row));
      }),
      { numRuns: 2000, seed: 11 },
    );
  });

  it('does not collide among many distinct rows', () => {
    const rows = fc.sample(rowArb, { numRuns: 20_000, seed: 5 });
    const distinct = new Map(rows.map((r) => [canonical(r), r]));
    const fps = new Set([...distinct.values()].map((r) => fp(r)));
    expect(fps.size).toBe(distinct.size);
    // Rows that differ in little: one counter and a near-identical string.
    const near = new Set<string>();
    for (let i = 0; i < 100_000; i++) near.add(fp({ id: i, name: `user${i % 1000}`, score: i / 8 }));
    expect(near.size).toBe(100_000);
  });
});
