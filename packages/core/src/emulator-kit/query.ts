/**
 * The filter operators search APIs share; each emulator maps its vendor's names onto them
 * (Intercom's `=`, `IN`, `~`; HubSpot's `EQ`, `NOT_IN`, `CONTAINS_TOKEN` …).
 */
export type FilterOperator =
  | 'eq'
  | 'neq'
  | 'in'
  | 'nin'
  | 'gt'
  | 'gte'
  | 'lt'
  | 'lte'
  | 'contains'
  | 'not_contains'
  | 'starts_with'
  | 'ends_with'
  | 'has'
  | 'not_has';

const missing = (v: unknown): v is null | undefined => v === null || v === undefined;

/** A value wanted null matches a missing one; an undefined one (no value given) matches nothing. */
function equal(have: unknown, want: unknown): boolean {
  if (want === undefined) return false;
  return want === null ? missing(have) : have === want;
}

const numeric = (v: unknown): number | undefined =>
  typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : undefined;

/** Numbers (or text spelling them, on both sides) compare as numbers, anything else as text; undefined when either is missing. */
function compare(have: unknown, want: unknown): number | undefined {
  if (missing(have) || missing(want)) return undefined;
  const [a, b] = [numeric(have), numeric(want)];
  return a !== undefined && b !== undefined ? a - b : String(have).localeCompare(String(want));
}

/**
 * Whether a record's value `have` (undefined or null: the record has none) passes a filter.
 * `eq` and `in` compare exactly (a vendor that folds case folds both sides first), a wanted
 * null matching a missing value; `neq` and `nin` are their negations. The order operators
 * compare numbers as numbers and anything else as text, and never pass a missing value. The
 * text operators take text on both sides and are case-sensitive (`not_contains` passes a
 * value that is not text). `has` passes any value present. `in` and `nin` take a list.
 */
export function matchesFilter(op: FilterOperator, have: unknown, want: unknown): boolean {
  const text = (test: (h: string, w: string) => boolean) => typeof have === 'string' && typeof want === 'string' && test(have, want);
  switch (op) {
    case 'eq':
      return equal(have, want);
    case 'neq':
      return !equal(have, want);
    case 'in':
      return Array.isArray(want) && want.some((w) => equal(have, w));
    case 'nin':
      return !matchesFilter('in', have, want);
    case 'gt':
      return (compare(have, want) ?? 0) > 0;
    case 'gte':
      return (compare(have, want) ?? -1) >= 0;
    case 'lt':
      return (compare(have, want) ?? 0) < 0;
    case 'lte':
      return (compare(have, want) ?? 1) <= 0;
    case 'contains':
      return text((h, w) => h.includes(w));
    case 'not_contains':
      return !matchesFilter('contains', have, want);
    case 'starts_with':
      return text((h, w) => h.startsWith(w));
    case 'ends_with':
      return text((h, w) => h.endsWith(w));
    case 'has':
      return !missing(have);
    case 'not_has':
      return missing(have);
  }
}

/** How a paging cursor carries the offset of the next page. */
export interface CursorCodec {
  encode(offset: number): string;
  /** The offset a cursor carries, or undefined when it carries none. */
  decode(cursor: unknown): number | undefined;
}

const offsetOf = (n: number): number | undefined => (Number.isSafeInteger(n) && n >= 0 ? n : undefined);

/** An opaque cursor (base64url text), for vendors whose cursors promise nothing about their content. */
export const opaqueCursor: CursorCodec = {
  encode: (offset) => Buffer.from(`offset:${offset}`).toString('base64url'),
  decode: (cursor) => {
    const text = typeof cursor === 'string' ? /^offset:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString())?.[1] : undefined;
    return text === undefined ? undefined : offsetOf(Number(text));
  },
};

/** A cursor that is the offset itself in digits (`"20"`), as HubSpot's search `after` is; a number is taken too. */
export const offsetCursor: CursorCodec = {
  encode: (offset) => String(offset),
  decode: (cursor) => (typeof cursor === 'number' || (typeof cursor === 'string' && /^\d+$/.test(cursor)) ? offsetOf(Number(cursor)) : undefined),
};

/** One page of a list: its items, the offset of the first, and the cursor of the next page when there is one. */
export interface CursorPage<T> {
  items: T[];
  offset: number;
  next?: string;
}

/**
 * The page of `items` (sorted as the API sorts them) starting at the offset `after` carries
 * (the start when it is undefined or null), at most `limit` long; `next` is given when items
 * are left after it. Undefined when `after` is not a cursor `codec` made: the vendor refuses
 * it in its own words.
 */
export function cursorPage<T>(items: readonly T[], after: unknown, limit: number, codec: CursorCodec = opaqueCursor): CursorPage<T> | undefined {
  const offset = missing(after) ? 0 : codec.decode(after);
  if (offset === undefined) return undefined;
  const end = offset + limit;
  return { items: items.slice(offset, end), offset, ...(end < items.length ? { next: codec.encode(end) } : {}) };
}
