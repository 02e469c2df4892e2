import { beforeAll, describe, expect, it } from 'vitest';
import duckdb from '@outflow/connector-duckdb';
import type { Model, Row } from '@outflow/core';
import { createFixtures, type Fixtures } from './fixtures.js';
import { collect, context, readRows } from './helpers.js';

const source = duckdb.source!;
let f: Fixtures;

beforeAll(async () => {
  f = await createFixtures();
});

const model = (m: Partial<Model>): Model => ({ primaryKey: ['id'], ...m });
const byId = (rows: Row[]) => [...rows].sort((a, b) => Number(a['id']) - Number(b['id']));

const ada: Row = {
  id: 1,
  big: '9007199254740993',
  ratio: 0.25,
  price: 1234.5,
  name: 'Ada "the first"',
  active: true,
  born: '1815-12-10',
  seen: '2024-01-02T03:04:05.123456',
  seen_tz: '2024-03-01T10:00:00.000Z',
  tags: ['a', null, 'c'],
  address: { city: 'London', zip: 1 },
  attrs: { x: 1, y: 2 },
  payload: '{"plan":"pro","seats":3}',
  huge: '170141183460469231731687303715884105727',
  exact: '123456789012345678.99',
  photo: '3q2+7w==',
};
const empty: Row = {
  id: 2,
  big: null,
  ratio: null,
  price: null,
  name: null,
  active: null,
  born: null,
  seen: null,
  seen_tz: null,
  tags: null,
  address: null,
  attrs: null,
  payload: null,
  huge: null,
  exact: null,
  photo: null,
};
const edge: Row = {
  id: 3,
  big: -42,
  ratio: -1.5e300,
  price: -0.05,
  name: '',
  active: false,
  born: '0001-01-01',
  seen: '1969-12-31T23:59:59.000',
  seen_tz: '2000-02-29T00:00:00.500Z',
  tags: [],
  address: { city: null, zip: null },
  attrs: {},
  payload: '[1, 2]',
  huge: -5,
  exact: 0.1,
  photo: '',
};

describe('read', () => {
  it('reads a table with every value converted to JSON-friendly form', async () => {
    const rows = await readRows(source.read(context({ path: f.db }), model({ table: 'people' })));
    expect(byId(rows)).toEqual([ada, empty, edge]);
    // Whatever a destination does with a row, it must survive JSON.
    expect(JSON.parse(JSON.stringify(rows))).toEqual(rows);
  });

  it('reads a view and a schema-qualified, quoted table name', async () => {
    expect(await readRows(source.read(context({ path: f.db }), model({ table: 'active_people' })))).toEqual([
      { id: 1, name: 'Ada "the first"' },
    ]);
    expect(
      await readRows(source.read(context({ path: f.db }), model({ table: 'crm."Deal Book"', primaryKey: ['deal_id'] }))),
    ).toEqual([{ deal_id: 7, amount: 99.5 }]);
  });

  it('reads a SQL model, keeping its order and computed columns', async () => {
    const rows = await readRows(
      source.read(
        context({ path: f.db }),
        model({ sql: `SELECT id, upper(name) AS shout, price * 2 AS double_price FROM people WHERE name IS NOT NULL ORDER BY id DESC;` }),
      ),
    );
    expect(rows).toEqual([
      { id: 3, shout: '', double_price: -0.1 },
      { id: 1, shout: 'ADA "THE FIRST"', double_price: 2469 },
    ]);
  });

  it('reads CSV, TSV and Parquet files and globs without a database file', async () => {
    const ctx = context({});
    const fromCsv = [
      { id: 1, name: 'Ada "the first"', price: 1234.5, born: '1815-12-10' },
      { id: 3, name: null, price: -0.05, born: '0001-01-01' },
    ];
    // DuckDB writes the empty string and NULL alike in CSV, so both read back as NULL.
    expect(await readRows(source.read(ctx, model({ file: f.csv })))).toEqual(fromCsv);
    expect(await readRows(source.read(ctx, model({ file: f.tsv })))).toEqual(fromCsv);
    // Parquet has no 128-bit integer, so COPY wrote HUGEINT as DOUBLE.
    expect(await readRows(source.read(ctx, model({ file: f.parquet })))).toEqual([
      { ...ada, huge: 1.7014118346046923e38 },
      empty,
      { ...edge, huge: -5 },
    ]);
    const parts = await readRows(source.read(ctx, model({ file: f.parquetGlob })));
    expect(byId(parts)).toEqual([0, 1, 2, 3, 4].map((i) => ({ id: i, label: `row ${i}` })));
  });

  it('resolves a relative file model against the working directory', async () => {
    const cwd = process.cwd();
    process.chdir(f.dir);
    try {
      const rows = await readRows(source.read(context({}), model({ file: 'people.parquet' })));
      expect(rows).toHaveLength(3);
    } finally {
      process.chdir(cwd);
    }
  });

  it('streams a large table in batches of 10,000 with every row exactly once', async () => {
    const batches = await collect(source.read(context({ path: f.db }), model({ table: 'numbers' })));
    expect(batches.map((b) => b.rows.length)).toEqual([10_000, 10_000, 5_000]);
    const ids = batches.flatMap((b) => b.rows.map((r) => r['id'] as number));
    expect(new Set(ids).size).toBe(25_000);
    expect(Math.min(...ids)).toBe(0);
    expect(Math.max(...ids)).toBe(24_999);
    expect(batches[1]!.rows[0]).toEqual({ id: expect.any(Number), label: `row ${batches[1]!.rows[0]!['id']}` });
  });

  it('renders DuckDB types beyond the basics', async () => {
    const rows = await readRows(
      source.read(
        context({}),
        model({
          sql: `SELECT 1 AS id, 18446744073709551615::UBIGINT AS ubig, 9007199254740991::BIGINT AS max_safe,
                  'NaN'::DOUBLE AS nan, 'infinity'::DOUBLE AS inf, 1.5::FLOAT AS f,
                  'infinity'::TIMESTAMP AS ts_inf, TIMESTAMP_NS '2024-01-02 03:04:05.123456789' AS ns,
                  TIMESTAMP_MS '2024-01-02 03:04:05.120' AS ms, DATE '12345-01-01' AS far,
                  TIME '12:34:56' AS t, INTERVAL 3 DAY AS iv,
                  '00000000-0000-0000-0000-000000000001'::UUID AS u, 'b'::ENUM('a', 'b') AS e,
                  [[1, 2], [3]] AS nested, [1, 2, 3]::INTEGER[3] AS arr,
                  MAP {1: 'one'} AS int_map, 'x'::UNION(num INTEGER, str VARCHAR) AS un,
                  12.345::DECIMAL(10,3) AS dec3`,
        }),
      ),
    );
    expect(rows).toEqual([
      {
        id: 1,
        ubig: '18446744073709551615',
        max_safe: 9007199254740991,
        nan: 'NaN',
        inf: 'Infinity',
        f: 1.5,
        ts_inf: 'infinity',
        ns: '2024-01-02T03:04:05.123456789',
        ms: '2024-01-02T03:04:05.120',
        far: '+012345-01-01',
        t: '12:34:56',
        iv: '3 days',
        u: '00000000-0000-0000-0000-000000000001',
        e: 'b',
        nested: [[1, 2], [3]],
        arr: [1, 2, 3],
        int_map: { '1': 'one' },
        un: 'x',
        dec3: 12.345,
      },
    ]);
  });
});
