import { DuckDBInstance, JsonDuckDBValueConverter, type DuckDBValueConverter } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import type { Value } from '@outflow/core';
import { ChangeReader } from '../src/read-out.js';

// Every column type the reader sends as JSON text, at its edges, beside types read as DuckDB values.
const TABLE = `SELECT * FROM (VALUES
  ('a "quoted" line\n', 'ünï ✓', true, (-128)::TINYINT, 32767::SMALLINT, (-2147483648)::INTEGER, 255::UTINYINT, 65535::USMALLINT, 4294967295::UINTEGER,
   9223372036854775807::BIGINT, 18446744073709551615::UBIGINT, '-170141183460469231731687303715884105728'::HUGEINT, '340282366920938463463374607431768211455'::UHUGEINT,
   0.1::FLOAT, 0.1::DOUBLE + 0.2::DOUBLE, '{"x": [1, 2]}'::JSON, TIMESTAMP '2024-02-29 12:34:56.789012',
   DATE '2024-01-01', 12.30::DECIMAL(6, 2), [1, 2], {'a': 1}),
  ('', '', false, 0::TINYINT, 0::SMALLINT, 0, 0::UTINYINT, 0::USMALLINT, 0::UINTEGER,
   (-9007199254740993)::BIGINT, 9007199254740993::UBIGINT, 1::HUGEINT, 0::UHUGEINT,
   'nan'::FLOAT, '-0.0'::DOUBLE, 'null'::JSON, TIMESTAMP 'infinity',
   DATE 'infinity', (-0.01)::DECIMAL(6, 2), [], {'a': NULL}),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   '-inf'::FLOAT, 'inf'::DOUBLE, NULL, TIMESTAMP '-infinity', NULL, NULL, NULL, NULL),
  ('x', 'y', true, 1::TINYINT, 1::SMALLINT, 1, 1::UTINYINT, 1::USMALLINT, 1::UINTEGER, 1::BIGINT, 1::UBIGINT, 1::HUGEINT, 1::UHUGEINT,
   NULL, 5e-324, '1'::JSON, TIMESTAMP '1901-12-13 20:45:52', NULL, NULL, NULL, NULL)
) t(s, u, b, i1, i2, i4, u1, u2, u4, i8, u8, i16, u16, f4, f8, j, ts, d, dec, l, st)`;

const identity: DuckDBValueConverter<Value> = (value) => value as unknown as Value;

async function compare(convert: DuckDBValueConverter<Value> | undefined) {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    await conn.run(`CREATE TABLE t AS SELECT 'upsert' AS op, * FROM (${TABLE})`);
    const shape = await conn.runAndReadAll(`SELECT * EXCLUDE (op) FROM t LIMIT 0`);
    const types = shape.columnTypes();
    const reader = new ChangeReader(['op'], shape.columnNames().map((name, i) => ({ name, type: types[i]! })), convert);
    const fast = reader.read(await conn.runAndReadAll(`SELECT ${reader.selectList()} FROM t ORDER BY rowid`), () => true, (meta, row) => ({ meta: meta.slice(0, 1), row }));
    const plain = await conn.runAndReadAll(`SELECT * EXCLUDE (op) FROM t ORDER BY rowid`);
    const expected = plain.convertRows(convert ?? (JsonDuckDBValueConverter as DuckDBValueConverter<Value>));
    const names = plain.columnNames();
    return { fast, expected: expected.map((r) => Object.fromEntries(names.map((n, i) => [n, r[i] ?? null]))) };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

describe('reading changed rows out as JSON text', () => {
  it('hands the converter exactly the values DuckDB’s reader would, for every type and edge value', async () => {
    const { fast, expected } = await compare(identity);
    expect(fast.map((r) => r.meta)).toEqual([['upsert'], ['upsert'], ['upsert'], ['upsert']]);
    expect(fast.map((r) => r.row)).toEqual(expected);
    // NaN equals NaN for toEqual; make sure the float really is NaN, not null.
    expect(Number.isNaN(fast[1]!.row!['f4'])).toBe(true);
    expect(Object.is(fast[1]!.row!['f8'], -0)).toBe(true);
  });

  it('gives the same rows as DuckDB’s JSON conversion when no converter is set', async () => {
    const { fast, expected } = await compare(undefined);
    expect(fast.map((r) => r.row)).toEqual(expected);
    expect(fast[0]!.row!['i8']).toBe('9223372036854775807');
    expect(fast[0]!.row!['s']).toBe('a "quoted" line\n');
  });
});
