import pg from 'pg';
import type { Value } from '@outflow/core';

/** Turns PostgreSQL's text form of one value into an Outflow value. */
export type TextParser = (text: string) => Value;

const text: TextParser = (s) => s;
const bool: TextParser = (s) => s === 't' || s === 'true';
const int: TextParser = (s) => Number(s);
// int8 beyond 2^53 would silently lose digits as a number, so it stays a decimal string.
const int8: TextParser = (s) => {
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : s;
};
// NaN and ±Infinity have no JSON form; they stay strings.
const float: TextParser = (s) => {
  const n = Number(s);
  return Number.isFinite(n) ? n : s;
};
const json: TextParser = (s) => JSON.parse(s) as Value;
const defaultTimestamptz = pg.types.getTypeParser(1184) as (s: string) => Date | string;
const timestamptz: TextParser = (s) => {
  const d = defaultTimestamptz(s);
  return d instanceof Date && !Number.isNaN(d.getTime()) ? d.toISOString() : s;
};
const timestamp: TextParser = (s) => (/^\d{4}-\d\d-\d\d \d/.test(s) ? s.replace(' ', 'T') : s);

const SCALARS: Record<number, TextParser> = {
  16: bool,
  20: int8,
  21: int,
  23: int,
  26: int,
  700: float,
  701: float,
  114: json,
  3802: json,
  1114: timestamp,
  1184: timestamptz,
};

/** Array type oid → element type oid, for the built-in types. */
const ARRAYS: Record<number, number> = {
  1000: 16, 1005: 21, 1007: 23, 1016: 20, 1028: 26, 1021: 700, 1022: 701, 1231: 1700, 1009: 25, 1015: 1043,
  1014: 1042, 1115: 1114, 1185: 1184, 1182: 1082, 1183: 1083, 199: 114, 3807: 3802, 2951: 2950, 1001: 17,
};

/**
 * The parser of a type, the same for snapshot reads and the change stream, so a row reads
 * the same both ways: int2/int4/float → number, int8 → number when exact else string,
 * numeric → string, timestamptz → ISO 8601 in UTC (millisecond precision), timestamp →
 * ISO 8601 without zone, date/time → text, json/jsonb → parsed, arrays → arrays, bool →
 * boolean; every other type → its text form.
 */
export function parserFor(oid: number): TextParser {
  const scalar = SCALARS[oid];
  if (scalar) return scalar;
  const element = ARRAYS[oid];
  if (element !== undefined) {
    const parse = parserFor(element);
    return (s) => parseArray(s, parse);
  }
  return text;
}

/** Type parsers for a `pg` client, so query results use {@link parserFor}. */
export const pgTypes = {
  getTypeParser: (oid: number, format?: string) =>
    format === 'binary' ? (pg.types.getTypeParser(oid, 'binary') as (v: string) => unknown) : parserFor(oid),
};

/** Parses a PostgreSQL array literal (`{1,2,NULL}`, `{"a b","c\"d"}`, `{{1,2},{3,4}}`). */
export function parseArray(s: string, element: TextParser): Value[] {
  let i = 0;
  // Arrays with explicit bounds start with `[1:2]=`.
  if (s[0] === '[') i = s.indexOf('=') + 1;
  const parseLevel = (): Value[] => {
    const out: Value[] = [];
    i++; // '{'
    if (s[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      if (s[i] === '{') out.push(parseLevel());
      else if (s[i] === '"') {
        let v = '';
        i++;
        while (s[i] !== '"') {
          if (s[i] === '\\') i++;
          v += s[i++];
        }
        i++;
        out.push(element(v));
      } else {
        let j = i;
        while (s[j] !== ',' && s[j] !== '}') j++;
        const raw = s.slice(i, j);
        i = j;
        out.push(raw === 'NULL' ? null : element(raw));
      }
      if (s[i] === ',') i++;
      else {
        i++; // '}'
        return out;
      }
    }
  };
  return parseLevel();
}

/** Quotes an SQL identifier. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quotes an SQL string literal. */
export function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
