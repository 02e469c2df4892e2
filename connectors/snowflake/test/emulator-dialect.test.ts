import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start, type SnowflakeEmulator } from '@outflow/connector-snowflake/emulator';
import { connect, destroy, type Connection } from './sdk.js';

/**
 * The emulator alone, through the real snowflake-sdk: Snowflake statements answer as
 * Snowflake's SQL reference documents, and other engines' statements are refused with
 * Snowflake's error codes. Dates and timestamps are fetched as text in the session's output
 * formats (YYYY-MM-DD, YYYY-MM-DD HH24:MI:SS.FF3).
 */

let emu: SnowflakeEmulator;
let conn: Connection;

function run(sqlText: string, binds?: unknown[]): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) =>
    conn.execute({
      sqlText,
      fetchAsString: ['Date'],
      ...(binds ? { binds: binds as never } : {}),
      complete: (err, _stmt, rows) => (err ? reject(err) : resolve((rows ?? []) as Record<string, unknown>[])),
    }),
  );
}

async function failure(sqlText: string): Promise<{ code?: string; message: string }> {
  try {
    await run(sqlText);
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error(`expected the emulator to refuse: ${sqlText}`);
}

beforeAll(async () => {
  emu = await start();
  conn = await connect(emu.config);
  await run(`create table orders (id number(38,0) primary key, customer varchar, amount number(10,2), status string, created_at timestamp_ntz, payload variant)`);
  await run(`insert into orders select column1, column2, column3, column4, to_timestamp_ntz(column5), parse_json(column6) from values
    (1, 'ann', 10.50, 'paid', '2024-01-31 10:00:00', '{"items":[{"sku":"a","qty":2},{"sku":"b","qty":1}],"tags":["x","y"],"meta":{"source":"web"}}'),
    (2, 'bob', 20.00, 'paid', '2024-02-29 23:30:00', '{"items":[{"sku":"c","qty":5}],"tags":[],"meta":{"source":"app"}}'),
    (3, 'ann', null, 'open', '2024-03-01 08:15:30', '{"items":[],"meta":{"source":null}}'),
    (4, 'cy', 5.25, 'void', '2024-03-02 00:00:00', null)`);
});

afterAll(async () => {
  await destroy(conn);
  await emu.stop();
});

/** Snowflake statements and the rows Snowflake's reference documents for them. */
const SNOWFLAKE: [string, Record<string, unknown>[]][] = [
  // NULL handling and conditionals
  ['select nvl(null, 5) as a, nvl(3, 5) as b, ifnull(null, 7) as c', [{ A: 5, B: 3, C: 7 }]],
  ['select nvl2(null, 1, 2) as a, nvl2(0, 1, 2) as b', [{ A: 2, B: 1 }]],
  ['select zeroifnull(amount) as z from orders where id = 3', [{ Z: 0 }]],
  ['select nullifzero(0) as n, nullif(1, 1) as m', [{ N: null, M: null }]],
  ["select iff(amount > 10, 'big', 'small') as size from orders order by id", [{ SIZE: 'big' }, { SIZE: 'big' }, { SIZE: 'small' }, { SIZE: 'small' }]],
  ["select decode(status, 'paid', 1, 'open', 2, 0) as d from orders order by id", [{ D: 1 }, { D: 1 }, { D: 2 }, { D: 0 }]],
  ["select decode(null, null, 'null matches', 'no') as d", [{ D: 'null matches' }]],
  ['select equal_null(null, null) as e, coalesce(null, null, 3) as c', [{ E: true, C: 3 }]],
  ['select greatest(1, 5, 3) as g, least(4, 2) as l, greatest(1, null) as gn', [{ G: 5, L: 2, GN: null }]],
  // Strings
  ["select concat('a', 'b', 'c') as c, concat('a', null) as n, 'x' || 1 as p", [{ C: 'abc', N: null, P: 'x1' }]],
  ["select concat_ws('-', 'a', 'b') as c, concat_ws('-', 'a', null) as n", [{ C: 'a-b', N: null }]],
  ["select upper('abc') as u, lower('ABC') as l, initcap('hello world') as i, length('abcd') as n, len('ab') as m", [{ U: 'ABC', L: 'abc', I: 'Hello World', N: 4, M: 2 }]],
  ["select substr('snowflake', 1, 4) as a, substr('snowflake', 0, 4) as b, substring('snowflake', 5) as c", [{ A: 'snow', B: 'snow', C: 'flake' }]],
  ["select left('abcdef', 2) as l, right('abcdef', 2) as r, replace('a-b-c', '-') as r2, replace('a-b', '-', '+') as r3", [{ L: 'ab', R: 'ef', R2: 'abc', R3: 'a+b' }]],
  ["select split_part('a,b,c', ',', 2) as p, split_part('a,b,c', ',', 0) as z, split_part('a,b,c', ',', -1) as last", [{ P: 'b', Z: 'a', LAST: 'c' }]],
  ["select split('a,b,c', ',') as parts, array_size(split('a,b', ',')) as n", [{ PARTS: ['a', 'b', 'c'], N: 2 }]],
  ["select charindex('b', 'abcb') as i, charindex('b', 'abcb', 3) as j, position('c' in 'abc') as k", [{ I: 2, J: 4, K: 3 }]],
  ["select contains('snowflake', 'flake') as c, startswith('snow', 'sn') as s, endswith('snow', 'ow') as e", [{ C: true, S: true, E: true }]],
  ["select lpad('7', 3, '0') as l, rpad('ab', 4) as r, trim('  x  ') as t, ltrim('xxa', 'x') as lt, reverse('abc') as rv", [{ L: '007', R: 'ab  ', T: 'x', LT: 'a', RV: 'cba' }]],
  ["select regexp_replace('a1b22', '[0-9]+', '#') as r, regexp_substr('abc123def', '[0-9]+') as s, regexp_substr('abc', '[0-9]+') as n", [{ R: 'a#b#', S: '123', N: null }]],
  ["select 'abc' rlike 'a.c' as full_match, 'abcd' rlike 'a.c' as partial, regexp_like('abc', 'A.C') as cased", [{ FULL_MATCH: true, PARTIAL: false, CASED: false }]],
  ["select 'Snow' ilike 'sn%' as i, 'Snow' like 'sn%' as l", [{ I: true, L: false }]],
  ["select md5('a') as m, sha2('a') as s", [{ M: '0cc175b9c0f1b6a831c399e269772661', S: 'ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb' }]],
  // Numbers and conversion
  ['select round(2.5) as r, round(-2.5) as n, round(3.14159, 2) as p, trunc(3.99) as t, floor(-1.5) as f, ceil(1.2) as c', [{ R: 3, N: -3, P: 3.14, T: 3, F: -2, C: 2 }]],
  ['select mod(7, 3) as m, 7 % 3 as p, abs(-4) as a, power(2, 10) as pw, div0(1, 0) as d, div0null(1, null) as dn', [{ M: 1, P: 1, A: 4, PW: 1024, D: 0, DN: 0 }]],
  ["select to_number('12.7') as n, to_number('12.345', 10, 2) as d, try_to_number('abc') as bad, try_to_number('42') as ok", [{ N: 13, D: 12.35, BAD: null, OK: 42 }]],
  ["select to_double('1.5') as d, try_to_double('x') as bad, to_boolean('yes') as y, to_boolean('off') as o, try_to_boolean('maybe') as m", [{ D: 1.5, BAD: null, Y: true, O: false, M: null }]],
  ["select try_cast('12' as integer) as ok, try_cast('x' as integer) as bad, cast('7' as number) + 1 as n, '8'::int as c", [{ OK: 12, BAD: null, N: 8, C: 8 }]],
  ["select to_varchar(42) as v, to_char(1.5) as c, 42::varchar as s", [{ V: '42', C: '1.5', S: '42' }]],
  // Dates and times
  ["select to_date('2024-03-05') as d, to_date('05/03/2024', 'DD/MM/YYYY') as f, try_to_date('not a date') is null as bad", [{ D: '2024-03-05', F: '2024-03-05', BAD: true }]],
  ["select to_varchar(created_at, 'YYYY-MM-DD') as d, to_char(created_at, 'DD.MM.YY HH24:MI') as t, to_varchar(created_at, 'MON DY') as m from orders where id = 1", [{ D: '2024-01-31', T: '31.01.24 10:00', M: 'Jan Wed' }]],
  ["select dateadd(day, 1, '2024-02-28'::date) as d, dateadd('month', 1, '2024-01-31'::date) as m, dateadd(year, -1, '2024-02-29'::date) as y", [{ D: '2024-02-29', M: '2024-02-29', Y: '2023-02-28' }]],
  ["select dateadd(hour, 2, '2024-01-01 23:00:00'::timestamp_ntz) as h, timeadd(minute, 30, '2024-01-01 10:00:00'::timestamp_ntz) as m", [{ H: '2024-01-02 01:00:00.000', M: '2024-01-01 10:30:00.000' }]],
  ["select dateadd(day, 1, '2024-01-31'::date) as plain_day, dateadd(dd, 2, '2024-01-31'::date) as alias_dd, dateadd(quarter, 1, '2024-01-15'::date) as q", [{ PLAIN_DAY: '2024-02-01', ALIAS_DD: '2024-02-02', Q: '2024-04-15' }]],
  ["select datediff(day, '2024-01-01'::date, '2024-03-01'::date) as d, datediff(month, '2024-01-31'::date, '2024-02-01'::date) as m, datediff(year, '2023-12-31'::date, '2024-01-01'::date) as y", [{ D: 60, M: 1, Y: 1 }]],
  ["select datediff(hour, '2024-01-01 23:59:00'::timestamp_ntz, '2024-01-02 00:01:00'::timestamp_ntz) as h, timestampdiff(minute, '2024-01-01 10:00'::timestamp_ntz, '2024-01-01 10:45'::timestamp_ntz) as m", [{ H: 1, M: 45 }]],
  ["select date_trunc('month', '2024-03-15'::date) as m, date_trunc(year, '2024-03-15 10:11:12'::timestamp_ntz) as y", [{ M: '2024-03-01', Y: '2024-01-01 00:00:00.000' }]],
  ["select year(created_at) as y, month(created_at) as m, day(created_at) as d, date_part(hour, created_at) as h, extract(minute from created_at) as mi from orders where id = 3", [{ Y: 2024, M: 3, D: 1, H: 8, MI: 15 }]],
  ["select last_day('2024-02-10'::date) as l, dayname('2024-03-04'::date) as dn, monthname('2024-03-04'::date) as mn", [{ L: '2024-02-29', DN: 'Mon', MN: 'Mar' }]],
  ["select '2024-01-10'::date + 5 as d, date_from_parts(2024, 2, 29) as p", [{ D: '2024-01-15', P: '2024-02-29' }]],
  ["select to_timestamp_ntz(0) as epoch, to_timestamp('2024-01-01 12:00:00') as t", [{ EPOCH: '1970-01-01 00:00:00.000', T: '2024-01-01 12:00:00.000' }]],
  // Semi-structured data
  ["select payload:meta.source::string as src, payload:items[0].sku::varchar as first_sku, payload['meta']['source'] as raw from orders where id = 1", [{ SRC: 'web', FIRST_SKU: 'a', RAW: 'web' }]],
  ['select payload:items[1].qty::number + 1 as qty from orders where id = 1', [{ QTY: 2 }]],
  ["select array_size(payload:items) as n, array_size(payload:meta) as not_array from orders order by id", [{ N: 2, NOT_ARRAY: null }, { N: 1, NOT_ARRAY: null }, { N: 0, NOT_ARRAY: null }, { N: null, NOT_ARRAY: null }]],
  ["select id from orders where payload:meta.source = 'app'", [{ ID: 2 }]],
  ["select parse_json('{\"a\":{\"b\":[10,20]}}'):a.b[1] as v, try_parse_json('{bad') as bad", [{ V: 20, BAD: null }]],
  ["select array_construct(1, 'two') as a, array_construct() as e, array_construct_compact(1, null, 2) as c", [{ A: [1, 'two'], E: [], C: [1, 2] }]],
  ["select object_construct('a', 1, 'b', null) as o, object_construct_keep_null('a', 1, 'b', null) as k", [{ O: { a: 1 }, K: { a: 1, b: null } }]],
  ["select array_contains('x'::variant, payload:tags) as has_x, array_to_string(payload:tags, '|') as joined from orders where id = 1", [{ HAS_X: true, JOINED: 'x|y' }]],
  ["select typeof(parse_json('1')) as i, typeof(parse_json('\"s\"')) as s, typeof(parse_json('[1]')) as a, typeof(parse_json('null')) as n", [{ I: 'INTEGER', S: 'VARCHAR', A: 'ARRAY', N: 'NULL_VALUE' }]],
  ["select get(parse_json('[5,6]'), 1) as g, get_path(parse_json('{\"a\":{\"b\":3}}'), 'a.b') as p, object_keys(parse_json('{\"k\":1}')) as k", [{ G: 6, P: 3, K: ['k'] }]],
  ["select o.id, f.index, f.value:sku::string as sku, f.value:qty as qty from orders o, lateral flatten(input => o.payload:items) f order by o.id, f.index", [
    { ID: 1, INDEX: 0, SKU: 'a', QTY: 2 },
    { ID: 1, INDEX: 1, SKU: 'b', QTY: 1 },
    { ID: 2, INDEX: 0, SKU: 'c', QTY: 5 },
  ]],
  ["select f.key, f.value::string as v from table(flatten(input => parse_json('{\"x\":\"1\",\"y\":\"2\"}'))) f order by f.key", [{ KEY: 'x', V: '1' }, { KEY: 'y', V: '2' }]],
  ["select o.id, f.value as tag from orders o, lateral flatten(input => o.payload:tags, outer => true) f where o.id in (2, 3) order by o.id", [{ ID: 2, TAG: null }, { ID: 3, TAG: null }]],
  // Generators, aggregates, windows, QUALIFY
  ['select seq4() as n from table(generator(rowcount => 5)) order by n', [{ N: 0 }, { N: 1 }, { N: 2 }, { N: 3 }, { N: 4 }]],
  ['select count(*) as c from table(generator(rowcount => 100))', [{ C: 100 }]],
  ['select sum(n) as s from (select seq4() as n from table(generator(rowcount => 100)))', [{ S: 4950 }]],
  ["select customer, listagg(status, ',') within group (order by id desc) as statuses from orders group by customer order by customer", [
    { CUSTOMER: 'ann', STATUSES: 'open,paid' },
    { CUSTOMER: 'bob', STATUSES: 'paid' },
    { CUSTOMER: 'cy', STATUSES: 'void' },
  ]],
  ["select listagg(distinct customer, '|') within group (order by customer) as c, array_agg(id) within group (order by id desc) as ids from orders", [{ C: 'ann|bob|cy', IDS: [4, 3, 2, 1] }]],
  ['select count_if(amount > 6) as big, count(amount) as n, count(*) as all_rows, sum(amount) as total, avg(amount) as average from orders', [{ BIG: 2, N: 3, ALL_ROWS: 4, TOTAL: 35.75, AVERAGE: 11.916667 }]],
  ['select median(amount) as m, max_by(customer, amount) as top, min(created_at)::date as first_day from orders', [{ M: 10.5, TOP: 'bob', FIRST_DAY: '2024-01-31' }]],
  ['select percentile_cont(0.5) within group (order by amount) as p from orders', [{ P: 10.5 }]],
  ["select object_agg(customer, amount) as o from orders where status = 'paid'", [{ O: { ann: 10.5, bob: 20 } }]],
  ['select id, row_number() over (partition by customer order by id) as rn, lag(id) over (order by id) as prev from orders order by id', [
    { ID: 1, RN: 1, PREV: null },
    { ID: 2, RN: 1, PREV: 1 },
    { ID: 3, RN: 2, PREV: 2 },
    { ID: 4, RN: 1, PREV: 3 },
  ]],
  ['select customer, id from orders qualify row_number() over (partition by customer order by id desc) = 1 order by customer', [
    { CUSTOMER: 'ann', ID: 3 },
    { CUSTOMER: 'bob', ID: 2 },
    { CUSTOMER: 'cy', ID: 4 },
  ]],
  ['select id, sum(amount) over (order by id rows between unbounded preceding and current row) as running from orders order by id', [
    { ID: 1, RUNNING: 10.5 },
    { ID: 2, RUNNING: 30.5 },
    { ID: 3, RUNNING: 30.5 },
    { ID: 4, RUNNING: 35.75 },
  ]],
  ['select id, first_value(amount) ignore nulls over (order by id desc) as f, ratio_to_report(amount) over () as r from orders where id in (1, 2) order by id', [
    { ID: 1, F: 20, R: 0.344262 },
    { ID: 2, F: 20, R: 0.655738 },
  ]],
  // Identifiers, NULL ordering, set operations, CTEs, names of unaliased columns
  ['select "id" from (select 1 as "id")', [{ id: 1 }]],
  ['select sample, type, date from (select 1 as sample, 2 as type, 3 as date)', [{ SAMPLE: 1, TYPE: 2, DATE: 3 }]],
  ['select amount from orders order by amount', [{ AMOUNT: 5.25 }, { AMOUNT: 10.5 }, { AMOUNT: 20 }, { AMOUNT: null }]],
  ['select amount from orders order by amount desc', [{ AMOUNT: null }, { AMOUNT: 20 }, { AMOUNT: 10.5 }, { AMOUNT: 5.25 }]],
  ['select 1 as x union all select 2 minus select 2', [{ X: 1 }]],
  ['with t (a, b) as (select 1, 2) select b, a from t', [{ B: 2, A: 1 }]],
  ['select count(*), max(id) from orders', [{ 'COUNT(*)': 4, 'MAX(ID)': 4 }]],
  ['select * from values (1, \'a\'), (2, \'b\') order by column1', [{ COLUMN1: 1, COLUMN2: 'a' }, { COLUMN1: 2, COLUMN2: 'b' }]],
  ['select * exclude (payload, created_at, amount) from orders where id = 4', [{ ID: 4, CUSTOMER: 'cy', STATUS: 'void' }]],
  ['select top 2 id from orders order by id', [{ ID: 1 }, { ID: 2 }]],
  ["select id from orders where customer = ? and amount > ?", [{ ID: 1 }]],
  // Metadata
  ["show tables like 'ORD%'", [expect.objectContaining({ name: 'ORDERS', database_name: 'ANALYTICS', schema_name: 'PUBLIC', kind: 'TABLE', rows: 4 })]],
  ['show schemas like \'PUB%\'', [expect.objectContaining({ name: 'PUBLIC', database_name: 'ANALYTICS', is_current: 'Y' })]],
  ["show columns like 'AMOUNT' in table orders", [expect.objectContaining({ table_name: 'ORDERS', column_name: 'AMOUNT', data_type: JSON.stringify({ type: 'FIXED', precision: 10, scale: 2, nullable: true }), kind: 'COLUMN' })]],
  ['describe table orders', [
    expect.objectContaining({ name: 'ID', type: 'NUMBER(38,0)', kind: 'COLUMN', 'null?': 'N', 'primary key': 'Y' }),
    expect.objectContaining({ name: 'CUSTOMER', type: 'VARCHAR(16777216)', 'null?': 'Y', 'primary key': 'N' }),
    expect.objectContaining({ name: 'AMOUNT', type: 'NUMBER(10,2)' }),
    expect.objectContaining({ name: 'STATUS', type: 'VARCHAR(16777216)' }),
    expect.objectContaining({ name: 'CREATED_AT', type: 'TIMESTAMP_NTZ(9)' }),
    expect.objectContaining({ name: 'PAYLOAD', type: 'VARIANT' }),
  ]],
];

/** Statements of other engines (DuckDB, PostgreSQL, MySQL, BigQuery, T-SQL) Snowflake refuses, with its error code. */
const OTHER_DIALECTS: [string, string, string][] = [
  ['DuckDB', 'select * from range(1, 10)', '002140'],
  ['DuckDB', 'select range(5)', '002140'],
  ['DuckDB', 'select list_value(1, 2)', '002140'],
  ['DuckDB', 'select 1::hugeint', '002040'],
  ['DuckDB', 'select 1::ubigint', '002040'],
  ['DuckDB', "select struct_pack(a := 1)", '001003'],
  ['DuckDB', 'from orders select id', '001003'],
  ['DuckDB', "select * from read_csv('x.csv')", '002140'],
  ['DuckDB', "select strftime(current_timestamp, '%Y')", '002140'],
  ['DuckDB', "select regexp_matches('a', 'a')", '002140'],
  ['DuckDB', 'select epoch_ms(0)', '002140'],
  ['DuckDB', 'pragma database_list', '001003'],
  ['DuckDB', "attach 'x.db' as x", '001003'],
  ['DuckDB', 'summarize orders', '001003'],
  ['DuckDB', 'select columns(*) from orders', '002140'],
  ['PostgreSQL', 'select * from generate_series(1, 3)', '002140'],
  ['PostgreSQL', "select string_agg(customer, ',') from orders", '002140'],
  ['PostgreSQL', 'select distinct on (customer) id from orders', '001003'],
  ['PostgreSQL', "select payload->>'meta' from orders", '001003'],
  ['PostgreSQL', "select '{}'::jsonb", '002040'],
  ['PostgreSQL', 'select 1::int4', '002040'],
  ['PostgreSQL', "insert into orders (id) values (9) returning id", '001003'],
  ['PostgreSQL', 'insert into orders (id) values (1) on conflict do nothing', '001003'],
  ['PostgreSQL', 'create table t_serial (id serial)', '002040'],
  ['PostgreSQL', "select array_agg(id order by id) from orders", '001003'],
  ['MySQL', 'select `id` from orders', '001003'],
  ['MySQL', "select if(amount > 1, 'y', 'n') from orders", '002140'],
  ['MySQL', "select group_concat(customer) from orders", '002140'],
  ['MySQL', "select date_format(created_at, '%Y') from orders", '002140'],
  ['MySQL', 'select id from orders limit 1, 2', '001003'],
  ['BigQuery', 'select * from unnest([1, 2])', '002140'],
  ['BigQuery', 'select safe_cast(id as int64) from orders', '001003'],
  ['BigQuery', "select format_date('%Y', current_date)", '002140'],
  ['BigQuery', 'select cast(id as int64) from orders', '002040'],
  ['T-SQL', 'select newid()', '002140'],
  ['T-SQL', "select datalength('abc')", '002140'],
  ['T-SQL', "select convert(varchar, id) from orders", '002140'],
];

describe('Snowflake statements answer as Snowflake documents', () => {
  it.each(SNOWFLAKE.map(([sql, rows]) => ({ sql, rows })))('$sql', async ({ sql, rows }) => {
    const binds = sql.includes('?') ? ['ann', 5] : undefined;
    const got = await run(sql, binds);
    expect(got.map(round)).toEqual(rows);
  });
});

describe('other engines’ SQL is refused with Snowflake’s error codes', () => {
  it.each(OTHER_DIALECTS.map(([dialect, sql, code]) => ({ dialect, sql, code })))('$dialect: $sql → $code', async ({ sql, code }) => {
    const err = await failure(sql);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(/SQL compilation error|syntax error/);
  });

  it('names the unknown function as Snowflake does', async () => {
    const err = await failure('select list_value(1, 2)');
    expect(err.message).toBe('SQL compilation error:\nUnknown function LIST_VALUE');
  });

  it('points a syntax error at the token', async () => {
    const err = await failure('select `id` from orders');
    expect(err.message).toBe("SQL compilation error:\nsyntax error line 1 at position 7 unexpected '`'.");
  });
});

/** The output columns of each metadata statement, in order, as Snowflake's SQL reference documents them. */
const METADATA_COLUMNS: [string, string[]][] = [
  // https://docs.snowflake.com/en/sql-reference/sql/show-tables
  ['show tables', [
    'created_on', 'name', 'database_name', 'schema_name', 'kind', 'comment', 'cluster_by', 'rows', 'bytes', 'owner', 'retention_time',
    'automatic_clustering', 'change_tracking', 'search_optimization', 'search_optimization_progress', 'search_optimization_bytes',
    'is_external', 'enable_schema_evolution', 'owner_role_type', 'is_event', 'budget', 'is_hybrid', 'is_iceberg', 'is_dynamic', 'is_immutable',
  ]],
  // https://docs.snowflake.com/en/sql-reference/sql/show-views
  ['show views', [
    'created_on', 'name', 'reserved', 'kind', 'database_name', 'schema_name', 'owner', 'comment', 'text', 'is_secure', 'is_materialized',
    'owner_role_type', 'change_tracking',
  ]],
  // https://docs.snowflake.com/en/sql-reference/sql/show-schemas
  ['show schemas', [
    'created_on', 'name', 'is_default', 'is_current', 'database_name', 'owner', 'comment', 'options', 'retention_time', 'owner_role_type', 'budget',
    'object_visibility',
  ]],
  // https://docs.snowflake.com/en/sql-reference/sql/show-databases
  ['show databases', [
    'created_on', 'name', 'is_default', 'is_current', 'origin', 'owner', 'comment', 'options', 'retention_time', 'kind', 'budget', 'owner_role_type',
    'object_visibility',
  ]],
  // https://docs.snowflake.com/en/sql-reference/sql/show-columns
  ['show columns in table orders', [
    'table_name', 'schema_name', 'column_name', 'data_type', 'null?', 'default', 'kind', 'expression', 'comment', 'database_name', 'autoincrement',
    'schema_evolution_record',
  ]],
  // https://docs.snowflake.com/en/sql-reference/sql/show-streams
  ['show streams', [
    'created_on', 'name', 'database_name', 'schema_name', 'owner', 'comment', 'table_name', 'source_type', 'base_tables', 'type', 'stale', 'mode',
    'stale_after', 'invalid_reason', 'owner_role_type',
  ]],
  // https://docs.snowflake.com/en/sql-reference/sql/show-dynamic-tables
  ['show dynamic tables', [
    'created_on', 'name', 'database_name', 'schema_name', 'cluster_by', 'rows', 'bytes', 'owner', 'target_lag', 'refresh_mode', 'refresh_mode_reason',
    'warehouse', 'comment', 'text', 'automatic_clustering', 'scheduling_state', 'last_suspended_on', 'is_clone', 'is_replica', 'is_iceberg',
    'data_timestamp', 'owner_role_type', 'immutable_where', 'execute_as_user',
  ]],
  // https://docs.snowflake.com/en/sql-reference/sql/desc-table
  ['describe table orders', [
    'name', 'type', 'kind', 'null?', 'default', 'primary key', 'unique key', 'check', 'expression', 'comment', 'policy name', 'privacy domain',
  ]],
  // https://docs.snowflake.com/en/sql-reference/sql/desc-view (DESCRIBE VIEW answers as DESCRIBE TABLE)
  ['describe view paid_orders', [
    'name', 'type', 'kind', 'null?', 'default', 'primary key', 'unique key', 'check', 'expression', 'comment', 'policy name', 'privacy domain',
  ]],
];

/** The column names of a statement's result, in order, as the driver reports them. */
function columnNames(sqlText: string): Promise<string[]> {
  return new Promise((resolve, reject) =>
    conn.execute({
      sqlText,
      complete: (err, stmt) => (err ? reject(err) : resolve((stmt.getColumns() ?? []).map((c) => c.getName()))),
    }),
  );
}

describe('metadata statements answer with the columns Snowflake documents', () => {
  beforeAll(async () => {
    await run(`create or replace view paid_orders as select id, amount from orders where status = 'paid'`);
    await run(`create or replace stream orders_s on table orders`);
    await run(`create or replace dynamic table order_totals target_lag = '1 minute' warehouse = compute_wh as select customer, sum(amount) as total from orders group by customer`);
  });

  it.each(METADATA_COLUMNS.map(([sql, columns]) => ({ sql, columns })))('$sql', async ({ sql, columns }) => {
    expect(await columnNames(sql)).toEqual(columns);
    expect((await run(sql)).length).toBeGreaterThan(0);
  });

  it('fills the values it knows', async () => {
    const [view] = await run(`show views like 'PAID_ORDERS'`);
    expect(view).toMatchObject({ name: 'PAID_ORDERS', kind: 'VIEW', is_secure: 'false', is_materialized: 'false' });
    const [stream] = await run(`show streams like 'ORDERS_S'`);
    expect(stream).toMatchObject({ name: 'ORDERS_S', source_type: 'Table', type: 'DELTA', stale: 'false', mode: 'DEFAULT' });
    const [dt] = await run(`show dynamic tables like 'ORDER_TOTALS'`);
    expect(dt).toMatchObject({ name: 'ORDER_TOTALS', target_lag: '60 seconds', refresh_mode: 'FULL', scheduling_state: 'RUNNING', is_clone: 'false' });
  });
});

/** Rounds floats to 6 places, as the comparisons above are written. */
function round(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(6)) : v]));
}

export { SNOWFLAKE, OTHER_DIALECTS };
