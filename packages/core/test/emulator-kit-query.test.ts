import { cursorPage, matchesFilter, offsetCursor, opaqueCursor } from '@outflow/core/emulator-kit';
import { describe, expect, it } from 'vitest';

describe('matchesFilter', () => {
  it('compares exactly for eq and in, a wanted null matching a missing value; neq and nin negate them', () => {
    expect([matchesFilter('eq', 'a', 'a'), matchesFilter('eq', 'A', 'a'), matchesFilter('eq', undefined, null), matchesFilter('eq', null, null), matchesFilter('eq', undefined, 'a')]).toEqual([true, false, true, true, false]);
    expect(matchesFilter('eq', 'a', undefined)).toBe(false);
    expect([matchesFilter('neq', 'b', 'a'), matchesFilter('neq', undefined, 'a'), matchesFilter('neq', null, null)]).toEqual([true, true, false]);
    expect([matchesFilter('in', 'b', ['a', 'b']), matchesFilter('in', undefined, ['a', null]), matchesFilter('in', 'c', ['a']), matchesFilter('nin', 'c', ['a']), matchesFilter('nin', undefined, ['a'])]).toEqual([true, true, false, true, true]);
  });

  it('orders numbers as numbers (text spelling them too) and other text as text, never passing a missing value', () => {
    expect([matchesFilter('gt', '10', '9'), matchesFilter('gt', 10, 9), matchesFilter('lt', 'apple', 'banana'), matchesFilter('gte', 5, 5), matchesFilter('lte', '5', 4)]).toEqual([true, true, true, true, false]);
    expect([matchesFilter('gt', undefined, 0), matchesFilter('lt', null, 10), matchesFilter('gte', undefined, 0), matchesFilter('lte', 3, undefined)]).toEqual([false, false, false, false]);
  });

  it('matches text case-sensitively; has and not_has look for a value present', () => {
    expect([matchesFilter('contains', 'Ada Lovelace', 'Love'), matchesFilter('contains', 'Ada', 'ada'), matchesFilter('starts_with', 'Ada', 'Ad'), matchesFilter('ends_with', 'Ada', 'da')]).toEqual([true, false, true, true]);
    expect([matchesFilter('contains', undefined, 'a'), matchesFilter('not_contains', undefined, 'a'), matchesFilter('not_contains', 'abc', 'b')]).toEqual([false, true, false]);
    expect([matchesFilter('has', '', undefined), matchesFilter('has', null, undefined), matchesFilter('not_has', undefined, undefined)]).toEqual([true, false, true]);
  });
});

describe('cursorPage', () => {
  const items = Array.from({ length: 7 }, (_, i) => i);

  it('walks a list page by page with the cursor each page gives, each item once', () => {
    for (const codec of [opaqueCursor, offsetCursor]) {
      const seen: number[] = [];
      let after: string | undefined;
      let pages = 0;
      do {
        const page = cursorPage(items, after, 3, codec)!;
        seen.push(...page.items);
        after = page.next;
        pages++;
      } while (after !== undefined);
      expect(seen).toEqual(items);
      expect(pages).toBe(3);
    }
  });

  it('starts at the beginning without a cursor and gives no next cursor on the last page', () => {
    expect(cursorPage(items, undefined, 10)).toEqual({ items, offset: 0 });
    expect(cursorPage(items, null, 7)).toEqual({ items, offset: 0 });
    expect(cursorPage(items, '6', 3, offsetCursor)).toEqual({ items: [6], offset: 6 });
  });

  it('answers undefined for a cursor its codec did not make, so the vendor refuses it in its words', () => {
    expect(cursorPage(items, 'not-a-cursor', 3)).toBeUndefined();
    expect(cursorPage(items, '-1', 3, offsetCursor)).toBeUndefined();
    expect(cursorPage(items, 'abc', 3, offsetCursor)).toBeUndefined();
  });

  it('makes opaque cursors that do not show the offset, and offset cursors that are the digits', () => {
    const next = cursorPage(items, undefined, 3)!.next!;
    expect(next).not.toContain('3');
    expect(cursorPage(items, undefined, 3, offsetCursor)!.next).toBe('3');
  });
});
