import { describe, expect, it } from 'vitest';
import { RecentMap } from '../src/index.js';

describe('RecentMap', () => {
  it('holds at least the last max keys set and at most twice as many', () => {
    const m = new RecentMap<number, string>(100);
    for (let i = 0; i < 1_000; i++) {
      m.set(i, `v${i}`);
      expect(m.size).toBeLessThanOrEqual(200);
      for (const back of [0, 50, 99]) if (i - back >= 0) expect(m.get(i - back)).toBe(`v${i - back}`);
    }
    expect(m.has(0)).toBe(false);
    expect(m.get(0)).toBeUndefined();
  });

  it('keeps a key set again as one of the latest, with its newest value', () => {
    const m = new RecentMap<string, number | null>(3);
    m.set('a', 1);
    for (const k of ['b', 'c', 'd', 'e']) {
      m.set(k, 0);
      m.set('a', null);
    }
    expect(m.has('a')).toBe(true);
    expect(m.get('a')).toBeNull();
    for (let i = 0; i < 6; i++) m.set(`x${i}`, i);
    expect(m.has('a')).toBe(false);
  });

  it('forgets deleted keys in either generation and refuses a size below 1', () => {
    const m = new RecentMap<string, number>(2);
    m.set('a', 1).set('b', 2).set('c', 3);
    expect(m.delete('a')).toBe(true);
    expect(m.delete('c')).toBe(true);
    expect(m.delete('zz')).toBe(false);
    expect([m.has('a'), m.has('b'), m.has('c')]).toEqual([false, true, false]);
    m.clear();
    expect(m.size).toBe(0);
    expect(() => new RecentMap(0)).toThrow(RangeError);
  });
});
