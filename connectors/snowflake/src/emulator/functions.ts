/**
 * Snowflake's functions, types, date parts and format strings, each implemented on DuckDB
 * with Snowflake's semantics. The tables here are allowlists: a function or type that is not
 * in them is refused with Snowflake's error, never handed to DuckDB under its own name.
 */
import type { Expr, FnArg, TypeName } from './ast.js';
import { SnowflakeError, unknownFunction, unsupported, unsupportedType } from './errors.js';
import { literal } from './sql.js';

type Call = Extract<Expr, { k: 'fn' }>;

/** What a function printer gets: the call, its printed arguments and the printer. */
export interface FnContext {
  call: Call;
  args: Expr[];
  /** Prints argument `i`. */
  a(i: number): string;
  /** Prints any expression. */
  print(e: Expr): string;
  /** The window clause, ` OVER (…)`, or '' (printed once by the function, never twice). */
  over(): string;
  /** The ORDER BY of WITHIN GROUP, printed (without the keywords), or ''. */
  withinGroup(): string;
}

interface FnDef {
  min: number;
  max: number;
  print(c: FnContext): string;
  /** Whether the result is semi-structured (VARIANT, OBJECT, ARRAY): JSON in DuckDB. */
  variant?: boolean;
}

/** DuckDB macros behind the function table (created in every DuckDB connection). */
export const MACROS = [
  // VARIANT → text is the string itself, not its JSON quoting.
  `CREATE OR REPLACE TEMP MACRO sf_str(x) AS CASE WHEN typeof(x) = 'JSON' THEN json_extract_string(CAST(x AS JSON), '$') ELSE CAST(x AS VARCHAR) END`,
  `CREATE OR REPLACE TEMP MACRO sf_date_add(x DATE, i) AS CAST(x + i AS DATE), (x TIMESTAMP, i) AS x + i, (x TIMESTAMPTZ, i) AS x + i, (x TIME, i) AS x + i, (x VARCHAR, i) AS CAST(x AS TIMESTAMP) + i`,
  `CREATE OR REPLACE TEMP MACRO sf_time_add(x DATE, i) AS CAST(x AS TIMESTAMP) + i, (x TIMESTAMP, i) AS x + i, (x TIMESTAMPTZ, i) AS x + i, (x TIME, i) AS x + i, (x VARCHAR, i) AS CAST(x AS TIMESTAMP) + i`,
  `CREATE OR REPLACE TEMP MACRO sf_date_trunc(p, x DATE) AS CAST(date_trunc(p, x) AS DATE), (p, x TIMESTAMP) AS date_trunc(p, x), (p, x TIMESTAMPTZ) AS date_trunc(p, x), (p, x VARCHAR) AS date_trunc(p, CAST(x AS TIMESTAMP))`,
  `CREATE OR REPLACE TEMP MACRO sf_to_timestamp(x VARCHAR) AS CAST(x AS TIMESTAMP), (x DOUBLE) AS make_timestamp(CAST(x * 1000000 AS BIGINT)), (x TIMESTAMP) AS x, (x TIMESTAMPTZ) AS CAST(x AS TIMESTAMP), (x DATE) AS CAST(x AS TIMESTAMP)`,
  `CREATE OR REPLACE TEMP MACRO sf_try_to_timestamp(x VARCHAR) AS TRY_CAST(x AS TIMESTAMP), (x TIMESTAMP) AS x, (x TIMESTAMPTZ) AS CAST(x AS TIMESTAMP), (x DATE) AS CAST(x AS TIMESTAMP)`,
  `CREATE OR REPLACE TEMP MACRO sf_to_boolean(x VARCHAR) AS CASE WHEN lower(trim(x)) IN ('true', 't', 'yes', 'y', 'on', '1') THEN TRUE WHEN lower(trim(x)) IN ('false', 'f', 'no', 'n', 'off', '0') THEN FALSE WHEN x IS NULL THEN NULL ELSE error('Boolean value ''' || x || ''' is not recognized') END, (x BOOLEAN) AS x, (x DOUBLE) AS x <> 0`,
  `CREATE OR REPLACE TEMP MACRO sf_try_to_boolean(x VARCHAR) AS CASE WHEN lower(trim(x)) IN ('true', 't', 'yes', 'y', 'on', '1') THEN TRUE WHEN lower(trim(x)) IN ('false', 'f', 'no', 'n', 'off', '0') THEN FALSE END, (x BOOLEAN) AS x, (x DOUBLE) AS x <> 0`,
  `CREATE OR REPLACE TEMP MACRO sf_substr(s, p) AS substring(s, CASE WHEN p = 0 THEN 1 ELSE p END), (s, p, n) AS substring(s, CASE WHEN p = 0 THEN 1 ELSE p END, n)`,
  `CREATE OR REPLACE TEMP MACRO sf_split_part(s, d, n) AS split_part(s, d, CASE WHEN n = 0 THEN 1 ELSE n END)`,
  `CREATE OR REPLACE TEMP MACRO sf_typeof(v) AS CASE json_type(CAST(v AS JSON)) WHEN 'NULL' THEN 'NULL_VALUE' WHEN 'BIGINT' THEN 'INTEGER' WHEN 'UBIGINT' THEN 'INTEGER' WHEN 'DOUBLE' THEN 'DOUBLE' WHEN 'VARCHAR' THEN 'VARCHAR' WHEN 'BOOLEAN' THEN 'BOOLEAN' WHEN 'OBJECT' THEN 'OBJECT' WHEN 'ARRAY' THEN 'ARRAY' END`,
  `CREATE OR REPLACE TEMP MACRO sf_array_size(a) AS CASE WHEN json_type(CAST(a AS JSON)) = 'ARRAY' THEN CAST(json_array_length(CAST(a AS JSON)) AS BIGINT) END`,
  `CREATE OR REPLACE TEMP MACRO sf_elements(a) AS json_extract(CAST(a AS JSON), '$[*]')`,
  `CREATE OR REPLACE TEMP MACRO sf_initcap(s) AS array_to_string(list_transform(string_split(lower(s), ' '), w -> upper(w[1:1]) || w[2:]), ' ')`,
  `CREATE OR REPLACE TEMP MACRO sf_charindex(n, s) AS CAST(strpos(s, n) AS BIGINT), (n, s, p) AS CASE WHEN strpos(substring(s, p), n) = 0 THEN 0 ELSE strpos(substring(s, p), n) + p - 1 END`,
  `CREATE OR REPLACE TEMP MACRO sf_version() AS '9.0.0 (Outflow emulator)'`,
];

// -------------------------------------------------------------------------------------
// Types
// -------------------------------------------------------------------------------------

const TEXT_TYPES = new Set(['VARCHAR', 'CHAR', 'CHARACTER', 'STRING', 'TEXT', 'NCHAR', 'NVARCHAR', 'NVARCHAR2', 'CHAR VARYING', 'NCHAR VARYING', 'CHARACTER VARYING']);
const INT_TYPES = new Set(['INT', 'INTEGER', 'BIGINT', 'SMALLINT', 'TINYINT', 'BYTEINT']);
const FLOAT_TYPES = new Set(['FLOAT', 'FLOAT4', 'FLOAT8', 'DOUBLE', 'DOUBLE PRECISION', 'REAL']);

/** The DuckDB type of a Snowflake type name; a name outside Snowflake's reference is refused. */
export function duckType(t: TypeName): string {
  const n = t.name;
  if (n === 'NUMBER' || n === 'DECIMAL' || n === 'NUMERIC') {
    const [p = 38, s = 0] = t.args;
    if (p < 1 || p > 38 || s < 0 || s > p) throw new SnowflakeError('001003', '42000', `SQL compilation error:\nInvalid precision or scale for ${n}(${t.args.join(',')})`);
    return `DECIMAL(${p},${s})`;
  }
  if (INT_TYPES.has(n)) return 'BIGINT';
  if (FLOAT_TYPES.has(n)) return 'DOUBLE';
  if (TEXT_TYPES.has(n)) return 'VARCHAR';
  if (n === 'BINARY' || n === 'VARBINARY') return 'BLOB';
  if (n === 'BOOLEAN') return 'BOOLEAN';
  if (n === 'DATE') return 'DATE';
  if (n === 'TIME') return 'TIME';
  if (n === 'DATETIME' || n === 'TIMESTAMP' || n === 'TIMESTAMP_NTZ') return 'TIMESTAMP';
  if (n === 'TIMESTAMP_LTZ' || n === 'TIMESTAMP_TZ') return 'TIMESTAMPTZ';
  if (n === 'VARIANT' || n === 'OBJECT' || n === 'ARRAY') return 'JSON';
  if (n === 'GEOGRAPHY' || n === 'GEOMETRY' || n === 'VECTOR' || n === 'FILE') throw unsupported(`the ${n} type`);
  throw unsupportedType(n);
}

/** Whether a Snowflake type is one of the text types. */
export const isTextType = (t: TypeName) => TEXT_TYPES.has(t.name);
export const isVariantType = (t: TypeName) => t.name === 'VARIANT' || t.name === 'OBJECT' || t.name === 'ARRAY';

/** Snowflake's name of a column type DuckDB reports (DESCRIBE TABLE, SHOW COLUMNS). */
export function snowflakeTypeName(duck: string): { type: string; json: Record<string, unknown> } {
  const d = duck.toUpperCase();
  const dec = /^DECIMAL\((\d+),\s*(\d+)\)$/.exec(d);
  if (dec) return { type: `NUMBER(${dec[1]},${dec[2]})`, json: { type: 'FIXED', precision: Number(dec[1]), scale: Number(dec[2]) } };
  if (['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT'].includes(d)) {
    return { type: 'NUMBER(38,0)', json: { type: 'FIXED', precision: 38, scale: 0 } };
  }
  if (d === 'DOUBLE' || d === 'FLOAT') return { type: 'FLOAT', json: { type: 'REAL' } };
  if (d === 'VARCHAR') return { type: 'VARCHAR(16777216)', json: { type: 'TEXT', length: 16_777_216, byteLength: 16_777_216, fixed: false } };
  if (d === 'BOOLEAN') return { type: 'BOOLEAN', json: { type: 'BOOLEAN' } };
  if (d === 'DATE') return { type: 'DATE', json: { type: 'DATE' } };
  if (d === 'TIME') return { type: 'TIME(9)', json: { type: 'TIME', precision: 0, scale: 9 } };
  if (d === 'TIMESTAMP') return { type: 'TIMESTAMP_NTZ(9)', json: { type: 'TIMESTAMP_NTZ', precision: 0, scale: 9 } };
  if (d === 'TIMESTAMP WITH TIME ZONE') return { type: 'TIMESTAMP_LTZ(9)', json: { type: 'TIMESTAMP_LTZ', precision: 0, scale: 9 } };
  if (d === 'JSON') return { type: 'VARIANT', json: { type: 'VARIANT' } };
  if (d === 'BLOB') return { type: 'BINARY(8388608)', json: { type: 'BINARY', length: 8_388_608, byteLength: 8_388_608, fixed: true } };
  return { type: d, json: { type: d } };
}

// -------------------------------------------------------------------------------------
// Date parts and formats
// -------------------------------------------------------------------------------------

const PART_ALIASES: Record<string, string[]> = {
  YEAR: ['Y', 'YY', 'YYY', 'YYYY', 'YR', 'YEARS', 'YRS'],
  QUARTER: ['Q', 'QTR', 'QTRS', 'QUARTERS'],
  MONTH: ['MM', 'MON', 'MONS', 'MONTHS'],
  WEEK: ['W', 'WK', 'WEEKOFYEAR', 'WOY', 'WY'],
  WEEKISO: ['WEEK_ISO', 'WEEKOFYEARISO', 'WEEKOFYEAR_ISO'],
  DAY: ['D', 'DD', 'DAYS', 'DAYOFMONTH'],
  DAYOFWEEK: ['WEEKDAY', 'DOW', 'DW'],
  DAYOFWEEKISO: ['WEEKDAY_ISO', 'DOW_ISO', 'DW_ISO'],
  DAYOFYEAR: ['YEARDAY', 'DOY', 'DY'],
  YEAROFWEEK: [],
  YEAROFWEEKISO: [],
  HOUR: ['H', 'HH', 'HR', 'HOURS', 'HRS'],
  MINUTE: ['M', 'MI', 'MIN', 'MINUTES', 'MINS'],
  SECOND: ['S', 'SEC', 'SECONDS', 'SECS'],
  MILLISECOND: ['MS', 'MSEC', 'MILLISECONDS'],
  MICROSECOND: ['US', 'USEC', 'MICROSECONDS'],
  NANOSECOND: ['NS', 'NSEC', 'NANOSEC', 'NSECOND', 'NANOSECONDS', 'NANOSECS', 'NSECONDS'],
  EPOCH_SECOND: ['EPOCH', 'EPOCH_SECONDS'],
  EPOCH_MILLISECOND: ['EPOCH_MILLISECONDS'],
  EPOCH_MICROSECOND: ['EPOCH_MICROSECONDS'],
  EPOCH_NANOSECOND: ['EPOCH_NANOSECONDS'],
};
const PARTS = new Map<string, string>();
for (const [part, aliases] of Object.entries(PART_ALIASES)) for (const a of [part, ...aliases]) PARTS.set(a, part);

/** The canonical Snowflake date part named by an argument (an identifier or a string). */
export function datePart(e: Expr | undefined, fn: string): string {
  let text: string | undefined;
  if (e?.k === 'col' && e.parts.length === 1) text = e.parts[0]!.name;
  else if (e?.k === 'str') text = e.v;
  const part = text === undefined ? undefined : PARTS.get(text.toUpperCase());
  if (!part) {
    throw new SnowflakeError('001003', '42000', `SQL compilation error:\ninvalid date part${text === undefined ? '' : ` '${text}'`} for function ${fn}`);
  }
  return part;
}

/** DuckDB's INTERVAL for `n` units of a Snowflake date part. */
function interval(part: string, n: string): string {
  switch (part) {
    case 'YEAR':
    case 'MONTH':
    case 'DAY':
    case 'HOUR':
    case 'MINUTE':
    case 'SECOND':
    case 'MILLISECOND':
    case 'MICROSECOND':
      return `INTERVAL (${n}) ${part}`;
    case 'QUARTER':
      return `INTERVAL (3 * (${n})) MONTH`;
    case 'WEEK':
      return `INTERVAL (7 * (${n})) DAY`;
    case 'NANOSECOND':
      return `INTERVAL (CAST((${n}) / 1000 AS BIGINT)) MICROSECOND`;
    default:
      throw new SnowflakeError('001003', '42000', `SQL compilation error:\ninvalid date part '${part}' for function DATEADD`);
  }
}

const DATE_PARTS = new Set(['YEAR', 'QUARTER', 'MONTH', 'WEEK', 'DAY']);

/** DuckDB's date_part name for a Snowflake part. */
function duckPart(part: string, fn: string): string {
  const map: Record<string, string> = {
    YEAR: 'year', QUARTER: 'quarter', MONTH: 'month', WEEK: 'week', WEEKISO: 'week', DAY: 'day', DAYOFWEEK: 'dayofweek', DAYOFWEEKISO: 'isodow',
    DAYOFYEAR: 'dayofyear', YEAROFWEEK: 'isoyear', YEAROFWEEKISO: 'isoyear', HOUR: 'hour', MINUTE: 'minute', SECOND: 'second',
    MILLISECOND: 'millisecond', MICROSECOND: 'microsecond', EPOCH_SECOND: 'epoch',
  };
  const d = map[part];
  if (!d) throw unsupported(`the date part ${part} in ${fn}`);
  return d;
}

/**
 * A Snowflake date/time format (YYYY-MM-DD HH24:MI:SS.FF3 …) as a strftime/strptime format.
 * Text in double quotes is literal; an element Snowflake has and this table lacks is refused.
 */
export function strftimeFormat(fmt: string): string {
  const elements: [string, string][] = [
    ['YYYY', '%Y'], ['YY', '%y'], ['MMMM', '%B'], ['MON', '%b'], ['MM', '%m'], ['DD', '%d'], ['DY', '%a'], ['HH24', '%H'], ['HH12', '%I'],
    ['HH', '%H'], ['AM', '%p'], ['PM', '%p'], ['MI', '%M'], ['SS', '%S'], ['FF9', '%n'], ['FF6', '%f'], ['FF3', '%g'], ['FF', '%n'],
    ['TZH:TZM', '%z'], ['TZHTZM', '%z'],
  ];
  let out = '';
  let i = 0;
  while (i < fmt.length) {
    const c = fmt[i]!;
    if (c === '"') {
      const end = fmt.indexOf('"', i + 1);
      if (end < 0) throw new SnowflakeError('100096', '22007', `Can't parse format '${fmt}'`);
      out += fmt.slice(i + 1, end).replaceAll('%', '%%');
      i = end + 1;
      continue;
    }
    const hit = elements.find(([e]) => fmt.slice(i, i + e.length).toUpperCase() === e);
    if (hit) {
      out += hit[1];
      i += hit[0].length;
      continue;
    }
    if (/[A-Za-z]/.test(c)) throw unsupported(`the format element '${fmt.slice(i)}' in '${fmt}'`);
    out += c === '%' ? '%%' : c;
    i++;
  }
  return out;
}

function formatArg(e: Expr | undefined, fn: string): string | undefined {
  if (e === undefined) return undefined;
  if (e.k !== 'str') throw unsupported(`a format for ${fn} that is not a string literal`);
  if (e.v.toUpperCase() === 'AUTO') return undefined;
  return strftimeFormat(e.v);
}

// -------------------------------------------------------------------------------------
// The function table
// -------------------------------------------------------------------------------------

const simple = (duck: string, min: number, max = min, variant = false): FnDef => ({
  min,
  max,
  variant,
  print: (c) => `${duck}(${c.args.map((_, i) => c.a(i)).join(', ')})${c.over()}`,
});

const all = (c: FnContext) => c.args.map((_, i) => c.a(i));

function aggregate(duck: string, min = 1, max = min): FnDef {
  return {
    min,
    max,
    print: (c) => {
      const order = c.withinGroup();
      return `${duck}(${c.call.distinct ? 'DISTINCT ' : ''}${all(c).join(', ')}${order ? ` ORDER BY ${order}` : ''})${c.over()}`;
    },
  };
}

function toNumber(tryCast: boolean): FnDef {
  return {
    min: 1,
    max: 4,
    print: (c) => {
      const rest = c.args.slice(1);
      if (rest[0]?.k === 'str') throw unsupported(`a number format model in ${c.call.name}`);
      const [p = 38, s = 0] = rest.map((e) => (e.k === 'num' ? Number(e.v) : NaN));
      if (Number.isNaN(p) || Number.isNaN(s)) throw unsupported(`a precision or scale for ${c.call.name} that is not a number`);
      const type = duckType({ name: 'NUMBER', args: [p, s] });
      return viaText(c, 0, (x) => `${tryCast ? 'TRY_CAST' : 'CAST'}(${x} AS ${type})`);
    },
  };
}

/**
 * Applies `wrap` to argument `i`, through its text when it is a VARIANT at run time (a JSON
 * string's value, not its quoting). Each branch is typed on its own, so nothing else goes
 * through text.
 */
function viaText(c: FnContext, i: number, wrap: (s: string) => string): string {
  return unjson(c.a(i), isLiteral(c.args[i]!), wrap);
}

export function unjson(inner: string, isLit: boolean, wrap: (s: string) => string): string {
  if (isLit) return wrap(inner);
  return `CASE WHEN typeof(${inner}) = 'JSON' THEN ${wrap(`json_extract_string(CAST(${inner} AS JSON), '$')`)} ELSE ${wrap(inner)} END`;
}

const isLiteral = (e: Expr) => e.k === 'num' || e.k === 'str' || e.k === 'null' || e.k === 'bool' || e.k === 'bind';

function toDate(tryCast: boolean): FnDef {
  return {
    min: 1,
    max: 2,
    print: (c) => {
      const fmt = formatArg(c.args[1], c.call.name);
      if (fmt) return `CAST(${tryCast ? 'try_strptime' : 'strptime'}(${c.a(0)}, ${literal(fmt)}) AS DATE)`;
      return viaText(c, 0, (x) => `${tryCast ? 'TRY_CAST' : 'CAST'}(${x} AS DATE)`);
    },
  };
}

function toTimestamp(tryCast: boolean, tz: boolean): FnDef {
  return {
    min: 1,
    max: 2,
    print: (c) => {
      const second = c.args[1];
      let inner: string;
      if (second?.k === 'num') {
        const scale = Number(second.v);
        inner = `make_timestamp(CAST((${c.a(0)}) * ${10 ** (6 - scale)} AS BIGINT))`;
      } else {
        const fmt = formatArg(second, c.call.name);
        if (fmt) inner = `${tryCast ? 'try_strptime' : 'strptime'}(${c.a(0)}, ${literal(fmt)})`;
        else inner = viaText(c, 0, (x) => `${tryCast ? 'sf_try_to_timestamp' : 'sf_to_timestamp'}(${x})`);
      }
      return tz ? `CAST(${inner} AS TIMESTAMPTZ)` : inner;
    },
  };
}

const nullIfAnyNull = (args: string[], body: string) => `CASE WHEN ${args.map((a) => `(${a}) IS NULL`).join(' OR ')} THEN NULL ELSE ${body} END`;

const dateadd: FnDef = {
  min: 3,
  max: 3,
  print: (c) => {
    const part = datePart(c.args[0], c.call.name);
    return `${DATE_PARTS.has(part) ? 'sf_date_add' : 'sf_time_add'}(${c.a(2)}, ${interval(part, c.a(1))})`;
  },
};

const datediff: FnDef = {
  min: 3,
  max: 3,
  print: (c) => {
    const part = datePart(c.args[0], c.call.name);
    const duck = { WEEKISO: 'week', DAYOFWEEK: 'day', DAYOFYEAR: 'day' }[part as string] ?? duckPart(part, c.call.name);
    return `CAST(date_diff(${literal(duck)}, ${c.a(1)}, ${c.a(2)}) AS BIGINT)`;
  },
};

const part = (p: string): FnDef => ({ min: 1, max: 1, print: (c) => `CAST(date_part(${literal(p)}, ${c.a(0)}) AS BIGINT)` });

const toVarchar: FnDef = {
  min: 1,
  max: 2,
  print: (c) => {
    if (c.args.length === 1) return `sf_str(${c.a(0)})`;
    const fmt = c.args[1]!;
    if (fmt.k !== 'str') throw unsupported(`a format for ${c.call.name} that is not a string literal`);
    if (/^[09,.$SMILBXDG]+$/i.test(fmt.v) && !/[YHMS]{2}/i.test(fmt.v)) throw unsupported(`a number format model in ${c.call.name}`);
    return `strftime(${c.a(0)}, ${literal(strftimeFormat(fmt.v))})`;
  },
};

const windowOnly = (duck: string, min: number, max: number): FnDef => ({
  min,
  max,
  print: (c) => {
    if (!c.call.over) throw new SnowflakeError('002062', '42601', `SQL compilation error:\nWindow function ${c.call.name} requires an OVER clause`);
    const args = all(c);
    return `${duck}(${args.join(', ')}${c.call.ignoreNulls ? ' IGNORE NULLS' : ''})${c.over()}`;
  },
});

export const FUNCTIONS: Record<string, FnDef> = {
  // Conditional and NULL handling
  COALESCE: simple('coalesce', 1, 255),
  NVL: simple('coalesce', 2),
  IFNULL: simple('coalesce', 2),
  NVL2: { min: 3, max: 3, print: (c) => `CASE WHEN (${c.a(0)}) IS NOT NULL THEN ${c.a(1)} ELSE ${c.a(2)} END` },
  NULLIF: simple('nullif', 2),
  ZEROIFNULL: { min: 1, max: 1, print: (c) => `coalesce(${c.a(0)}, 0)` },
  NULLIFZERO: { min: 1, max: 1, print: (c) => `nullif(${c.a(0)}, 0)` },
  IFF: { min: 3, max: 3, print: (c) => `CASE WHEN ${c.a(0)} THEN ${c.a(1)} ELSE ${c.a(2)} END` },
  EQUAL_NULL: { min: 2, max: 2, print: (c) => `((${c.a(0)}) IS NOT DISTINCT FROM (${c.a(1)}))` },
  DECODE: {
    min: 3,
    max: 255,
    print: (c) => {
      const x = c.a(0);
      const parts: string[] = [];
      let k = 1;
      for (; k + 1 < c.args.length; k += 2) parts.push(`WHEN (${x}) IS NOT DISTINCT FROM (${c.a(k)}) THEN ${c.a(k + 1)}`);
      return `CASE ${parts.join(' ')}${k < c.args.length ? ` ELSE ${c.a(k)}` : ''} END`;
    },
  },
  GREATEST: { min: 1, max: 255, print: (c) => nullIfAnyNull(all(c), `greatest(${all(c).join(', ')})`) },
  LEAST: { min: 1, max: 255, print: (c) => nullIfAnyNull(all(c), `least(${all(c).join(', ')})`) },
  // Strings
  CONCAT: { min: 1, max: 255, print: (c) => `(${all(c).map((a) => `sf_str(${a})`).join(' || ')})` },
  CONCAT_WS: { min: 2, max: 255, print: (c) => nullIfAnyNull(all(c), `concat_ws(${all(c).join(', ')})`) },
  LENGTH: { min: 1, max: 1, print: (c) => `CAST(length(${c.a(0)}) AS BIGINT)` },
  LEN: { min: 1, max: 1, print: (c) => `CAST(length(${c.a(0)}) AS BIGINT)` },
  LOWER: simple('lower', 1),
  UPPER: simple('upper', 1),
  INITCAP: { min: 1, max: 1, print: (c) => `sf_initcap(${c.a(0)})` },
  TRIM: simple('trim', 1, 2),
  LTRIM: simple('ltrim', 1, 2),
  RTRIM: simple('rtrim', 1, 2),
  SUBSTR: simple('sf_substr', 2, 3),
  SUBSTRING: simple('sf_substr', 2, 3),
  LEFT: simple('left', 2),
  RIGHT: simple('right', 2),
  REPLACE: { min: 2, max: 3, print: (c) => `replace(${c.a(0)}, ${c.a(1)}, ${c.args.length > 2 ? c.a(2) : "''"})` },
  REVERSE: simple('reverse', 1),
  REPEAT: simple('repeat', 2),
  LPAD: { min: 2, max: 3, print: (c) => `lpad(${c.a(0)}, ${c.a(1)}, ${c.args.length > 2 ? c.a(2) : "' '"})` },
  RPAD: { min: 2, max: 3, print: (c) => `rpad(${c.a(0)}, ${c.a(1)}, ${c.args.length > 2 ? c.a(2) : "' '"})` },
  SPLIT_PART: simple('sf_split_part', 3),
  SPLIT: { min: 2, max: 2, variant: true, print: (c) => `to_json(string_split(${c.a(0)}, ${c.a(1)}))` },
  CHARINDEX: simple('sf_charindex', 2, 3),
  POSITION: simple('sf_charindex', 2, 3),
  CONTAINS: simple('contains', 2),
  STARTSWITH: simple('starts_with', 2),
  ENDSWITH: simple('ends_with', 2),
  ASCII: simple('ascii', 1),
  CHR: simple('chr', 1),
  CHAR: simple('chr', 1),
  TRANSLATE: simple('translate', 3),
  EDITDISTANCE: simple('levenshtein', 2),
  REGEXP_REPLACE: { min: 2, max: 3, print: (c) => `regexp_replace(${c.a(0)}, ${c.a(1)}, ${c.args.length > 2 ? c.a(2) : "''"}, 'g')` },
  REGEXP_SUBSTR: { min: 2, max: 2, print: (c) => `CASE WHEN regexp_matches(${c.a(0)}, ${c.a(1)}) THEN regexp_extract(${c.a(0)}, ${c.a(1)}) END` },
  REGEXP_LIKE: simple('regexp_full_match', 2),
  REGEXP_COUNT: { min: 2, max: 2, print: (c) => `CAST(length(regexp_extract_all(${c.a(0)}, ${c.a(1)})) AS BIGINT)` },
  MD5: simple('md5', 1),
  MD5_HEX: simple('md5', 1),
  SHA1: simple('sha1', 1),
  SHA1_HEX: simple('sha1', 1),
  SHA2: {
    min: 1,
    max: 2,
    print: (c) => {
      const bits = c.args[1];
      if (bits && !(bits.k === 'num' && bits.v === '256')) throw unsupported('SHA2 with a digest size other than 256');
      return `sha256(${c.a(0)})`;
    },
  },
  SHA2_HEX: { min: 1, max: 1, print: (c) => `sha256(${c.a(0)})` },
  HASH: { min: 1, max: 255, print: (c) => `CAST(hash(${all(c).join(', ')}) >> 1 AS BIGINT)` },
  UUID_STRING: { min: 0, max: 0, print: () => `CAST(uuid() AS VARCHAR)` },
  TO_VARCHAR: toVarchar,
  TO_CHAR: toVarchar,
  AS_VARCHAR: { min: 1, max: 1, print: (c) => `CASE WHEN json_type(CAST(${c.a(0)} AS JSON)) = 'VARCHAR' THEN json_extract_string(CAST(${c.a(0)} AS JSON), '$') END` },
  // Numbers
  ABS: simple('abs', 1),
  CEIL: simple('ceil', 1),
  CEILING: simple('ceil', 1),
  FLOOR: simple('floor', 1),
  ROUND: simple('round', 1, 2),
  TRUNC: {
    min: 1,
    max: 2,
    print: (c) => {
      const second = c.args[1];
      if (second && (second.k === 'str' || (second.k === 'col' && second.parts.length === 1))) {
        return `sf_date_trunc(${literal(duckPart(datePart(second, c.call.name), c.call.name))}, ${c.a(0)})`;
      }
      return `trunc(${all(c).join(', ')})`;
    },
  },
  TRUNCATE: simple('trunc', 1, 2),
  MOD: { min: 2, max: 2, print: (c) => `((${c.a(0)}) % (${c.a(1)}))` },
  POWER: simple('power', 2),
  POW: simple('power', 2),
  SQRT: simple('sqrt', 1),
  EXP: simple('exp', 1),
  LN: simple('ln', 1),
  LOG: { min: 2, max: 2, print: (c) => `(ln(${c.a(1)}) / ln(${c.a(0)}))` },
  SIGN: simple('sign', 1),
  PI: simple('pi', 0),
  DIV0: { min: 2, max: 2, print: (c) => `CASE WHEN (${c.a(1)}) = 0 THEN 0 ELSE (${c.a(0)}) / (${c.a(1)}) END` },
  DIV0NULL: { min: 2, max: 2, print: (c) => `CASE WHEN coalesce(${c.a(1)}, 0) = 0 THEN 0 ELSE (${c.a(0)}) / (${c.a(1)}) END` },
  RANDOM: { min: 0, max: 1, print: () => `CAST((random() * 2 - 1) * 9.2e18 AS BIGINT)` },
  UNIFORM: {
    min: 3,
    max: 3,
    print: (c) => {
      const decimal = [c.args[0], c.args[1]].some((e) => e?.k === 'num' && /[.eE]/.test(e.v));
      return decimal
        ? `((${c.a(0)}) + random() * ((${c.a(1)}) - (${c.a(0)})))`
        : `CAST(floor(random() * ((${c.a(1)}) - (${c.a(0)}) + 1)) + (${c.a(0)}) AS BIGINT)`;
    },
  },
  SEQ1: { min: 0, max: 1, print: () => `(row_number() OVER () - 1)` },
  SEQ2: { min: 0, max: 1, print: () => `(row_number() OVER () - 1)` },
  SEQ4: { min: 0, max: 1, print: () => `(row_number() OVER () - 1)` },
  SEQ8: { min: 0, max: 1, print: () => `(row_number() OVER () - 1)` },
  // Conversion
  TO_NUMBER: toNumber(false),
  TO_DECIMAL: toNumber(false),
  TO_NUMERIC: toNumber(false),
  TRY_TO_NUMBER: toNumber(true),
  TRY_TO_DECIMAL: toNumber(true),
  TRY_TO_NUMERIC: toNumber(true),
  TO_DOUBLE: { min: 1, max: 1, print: (c) => viaText(c, 0, (x) => `CAST(${x} AS DOUBLE)`) },
  TRY_TO_DOUBLE: { min: 1, max: 1, print: (c) => viaText(c, 0, (x) => `TRY_CAST(${x} AS DOUBLE)`) },
  TO_BOOLEAN: { min: 1, max: 1, print: (c) => viaText(c, 0, (x) => `sf_to_boolean(${x})`) },
  TRY_TO_BOOLEAN: { min: 1, max: 1, print: (c) => viaText(c, 0, (x) => `sf_try_to_boolean(${x})`) },
  TO_DATE: toDate(false),
  DATE: toDate(false),
  TRY_TO_DATE: toDate(true),
  TO_TIMESTAMP: toTimestamp(false, false),
  TO_TIMESTAMP_NTZ: toTimestamp(false, false),
  TO_TIMESTAMP_LTZ: toTimestamp(false, true),
  TO_TIMESTAMP_TZ: toTimestamp(false, true),
  TRY_TO_TIMESTAMP: toTimestamp(true, false),
  TRY_TO_TIMESTAMP_NTZ: toTimestamp(true, false),
  TRY_TO_TIMESTAMP_LTZ: toTimestamp(true, true),
  TRY_TO_TIMESTAMP_TZ: toTimestamp(true, true),
  TO_TIME: { min: 1, max: 1, print: (c) => viaText(c, 0, (x) => `CAST(${x} AS TIME)`) },
  // Date and time
  CURRENT_DATE: { min: 0, max: 0, print: () => `current_date` },
  CURRENT_TIMESTAMP: { min: 0, max: 1, print: () => `now()` },
  GETDATE: { min: 0, max: 0, print: () => `now()` },
  SYSTIMESTAMP: { min: 0, max: 0, print: () => `now()` },
  LOCALTIMESTAMP: { min: 0, max: 1, print: () => `CAST(now() AS TIMESTAMP)` },
  SYSDATE: { min: 0, max: 0, print: () => `CAST(timezone('UTC', now()) AS TIMESTAMP)` },
  CURRENT_TIME: { min: 0, max: 1, print: () => `CAST(now() AS TIME)` },
  LOCALTIME: { min: 0, max: 1, print: () => `CAST(now() AS TIME)` },
  DATEADD: dateadd,
  TIMEADD: dateadd,
  TIMESTAMPADD: dateadd,
  DATEDIFF: datediff,
  TIMEDIFF: datediff,
  TIMESTAMPDIFF: datediff,
  DATE_TRUNC: { min: 2, max: 2, print: (c) => `sf_date_trunc(${literal(duckPart(datePart(c.args[0], c.call.name), c.call.name))}, ${c.a(1)})` },
  DATE_PART: { min: 2, max: 2, print: (c) => `CAST(date_part(${literal(duckPart(datePart(c.args[0], c.call.name), c.call.name))}, ${c.a(1)}) AS BIGINT)` },
  YEAR: part('year'),
  QUARTER: part('quarter'),
  MONTH: part('month'),
  WEEK: part('week'),
  WEEKOFYEAR: part('week'),
  WEEKISO: part('week'),
  DAY: part('day'),
  DAYOFMONTH: part('day'),
  DAYOFWEEK: part('dayofweek'),
  DAYOFWEEKISO: part('isodow'),
  DAYOFYEAR: part('dayofyear'),
  YEAROFWEEKISO: part('isoyear'),
  HOUR: part('hour'),
  MINUTE: part('minute'),
  SECOND: part('second'),
  LAST_DAY: {
    min: 1,
    max: 2,
    print: (c) => {
      if (c.args[1] && datePart(c.args[1], 'LAST_DAY') !== 'MONTH') throw unsupported('LAST_DAY for a part other than MONTH');
      return `last_day(${c.a(0)})`;
    },
  },
  DAYNAME: { min: 1, max: 1, print: (c) => `strftime(${c.a(0)}, '%a')` },
  MONTHNAME: { min: 1, max: 1, print: (c) => `strftime(${c.a(0)}, '%b')` },
  DATE_FROM_PARTS: simple('make_date', 3),
  TIMESTAMP_FROM_PARTS: { min: 6, max: 6, print: (c) => `make_timestamp(${all(c).join(', ')})` },
  TIMESTAMP_NTZ_FROM_PARTS: { min: 6, max: 6, print: (c) => `make_timestamp(${all(c).join(', ')})` },
  CONVERT_TIMEZONE: {
    min: 2,
    max: 3,
    print: (c) =>
      c.args.length === 3 ? `timezone(${c.a(1)}, timezone(${c.a(0)}, CAST(${c.a(2)} AS TIMESTAMP)))` : `timezone(${c.a(0)}, CAST(${c.a(1)} AS TIMESTAMPTZ))`,
  },
  // Semi-structured
  PARSE_JSON: { min: 1, max: 1, variant: true, print: (c) => `json(${c.a(0)})` },
  TRY_PARSE_JSON: { min: 1, max: 1, variant: true, print: (c) => `CASE WHEN json_valid(${c.a(0)}) THEN json(${c.a(0)}) END` },
  TO_JSON: { min: 1, max: 1, print: (c) => `CAST(to_json(${c.a(0)}) AS VARCHAR)` },
  TO_VARIANT: { min: 1, max: 1, variant: true, print: (c) => `to_json(${c.a(0)})` },
  TO_ARRAY: {
    min: 1,
    max: 1,
    variant: true,
    print: (c) => `CASE WHEN (${c.a(0)}) IS NULL THEN NULL WHEN json_type(to_json(${c.a(0)})) = 'ARRAY' THEN to_json(${c.a(0)}) ELSE json_array(${c.a(0)}) END`,
  },
  TO_OBJECT: { min: 1, max: 1, variant: true, print: (c) => `to_json(${c.a(0)})` },
  OBJECT_CONSTRUCT: {
    min: 0,
    max: 255,
    variant: true,
    print: (c) => {
      if (c.call.star) throw unsupported('OBJECT_CONSTRUCT(*)');
      if (c.args.length % 2) throw new SnowflakeError('000938', '42601', 'SQL compilation error:\nOBJECT_CONSTRUCT takes an even number of arguments');
      return c.args.length ? `json_merge_patch('{}', json_object(${all(c).join(', ')}))` : `json('{}')`;
    },
  },
  OBJECT_CONSTRUCT_KEEP_NULL: {
    min: 0,
    max: 255,
    variant: true,
    print: (c) => {
      if (c.call.star) throw unsupported('OBJECT_CONSTRUCT_KEEP_NULL(*)');
      return c.args.length ? `json_object(${all(c).join(', ')})` : `json('{}')`;
    },
  },
  ARRAY_CONSTRUCT: { min: 0, max: 255, variant: true, print: (c) => (c.args.length ? `json_array(${all(c).join(', ')})` : `json('[]')`) },
  ARRAY_CONSTRUCT_COMPACT: {
    min: 0,
    max: 255,
    variant: true,
    print: (c) => `to_json(list_filter([${all(c).map((a) => `to_json(${a})`).join(', ')}], x -> x IS NOT NULL AND CAST(x AS VARCHAR) <> 'null'))`,
  },
  ARRAY_SIZE: { min: 1, max: 1, print: (c) => `sf_array_size(${c.a(0)})` },
  ARRAY_CONTAINS: { min: 2, max: 2, print: (c) => `list_contains(sf_elements(${c.a(1)}), to_json(${c.a(0)}))` },
  ARRAY_TO_STRING: { min: 2, max: 2, print: (c) => `array_to_string(json_extract_string(CAST(${c.a(0)} AS JSON), '$[*]'), ${c.a(1)})` },
  ARRAY_CAT: { min: 2, max: 2, variant: true, print: (c) => `to_json(list_concat(sf_elements(${c.a(0)}), sf_elements(${c.a(1)})))` },
  ARRAY_APPEND: { min: 2, max: 2, variant: true, print: (c) => `to_json(list_append(sf_elements(${c.a(0)}), to_json(${c.a(1)})))` },
  ARRAY_PREPEND: { min: 2, max: 2, variant: true, print: (c) => `to_json(list_prepend(to_json(${c.a(1)}), sf_elements(${c.a(0)})))` },
  OBJECT_KEYS: { min: 1, max: 1, variant: true, print: (c) => `to_json(json_keys(CAST(${c.a(0)} AS JSON)))` },
  TYPEOF: { min: 1, max: 1, print: (c) => `sf_typeof(${c.a(0)})` },
  IS_NULL_VALUE: { min: 1, max: 1, print: (c) => `(json_type(CAST(${c.a(0)} AS JSON)) = 'NULL')` },
  IS_ARRAY: { min: 1, max: 1, print: (c) => `(json_type(CAST(${c.a(0)} AS JSON)) = 'ARRAY')` },
  IS_OBJECT: { min: 1, max: 1, print: (c) => `(json_type(CAST(${c.a(0)} AS JSON)) = 'OBJECT')` },
  GET: {
    min: 2,
    max: 2,
    variant: true,
    print: (c) => {
      const k = c.args[1]!;
      if (k.k === 'str') return `json_extract(CAST(${c.a(0)} AS JSON), ${literal(jsonPath([{ key: k.v }]))})`;
      return `json_extract(CAST(${c.a(0)} AS JSON), '$[' || CAST(${c.a(1)} AS VARCHAR) || ']')`;
    },
  },
  GET_PATH: {
    min: 2,
    max: 2,
    variant: true,
    print: (c) => {
      const p = c.args[1]!;
      if (p.k !== 'str') throw unsupported('GET_PATH with a path that is not a string literal');
      return `json_extract(CAST(${c.a(0)} AS JSON), ${literal(p.v.startsWith('[') ? `$${p.v}` : `$.${p.v}`)})`;
    },
  },
  // Aggregates
  COUNT: {
    min: 0,
    max: 255,
    print: (c) => {
      if (c.call.star) return `count(*)${c.over()}`;
      const args = all(c);
      const arg = args.length > 1 ? `(${args.join(', ')})` : args[0]!;
      return `count(${c.call.distinct ? 'DISTINCT ' : ''}${arg})${c.over()}`;
    },
  },
  COUNT_IF: { min: 1, max: 1, print: (c) => `CAST(count_if(${c.a(0)}) AS BIGINT)${c.over()}` },
  SUM: aggregate('sum'),
  AVG: aggregate('avg'),
  MIN: aggregate('min'),
  MAX: aggregate('max'),
  MEDIAN: aggregate('median'),
  MODE: aggregate('mode'),
  ANY_VALUE: aggregate('any_value'),
  STDDEV: aggregate('stddev_samp'),
  STDDEV_SAMP: aggregate('stddev_samp'),
  STDDEV_POP: aggregate('stddev_pop'),
  VARIANCE: aggregate('var_samp'),
  VAR_SAMP: aggregate('var_samp'),
  VARIANCE_SAMP: aggregate('var_samp'),
  VAR_POP: aggregate('var_pop'),
  VARIANCE_POP: aggregate('var_pop'),
  CORR: aggregate('corr', 2),
  COVAR_SAMP: aggregate('covar_samp', 2),
  COVAR_POP: aggregate('covar_pop', 2),
  APPROX_COUNT_DISTINCT: aggregate('approx_count_distinct'),
  BOOLAND_AGG: aggregate('bool_and'),
  BOOLOR_AGG: aggregate('bool_or'),
  MAX_BY: aggregate('arg_max', 2),
  MIN_BY: aggregate('arg_min', 2),
  LISTAGG: {
    min: 1,
    max: 2,
    print: (c) => {
      const value = `sf_str(${c.a(0)})`;
      // DuckDB orders a DISTINCT aggregate by its argument only: order the distinct values.
      const first = c.call.withinGroup?.[0];
      const order = c.call.distinct ? (first ? `${value} ${first.desc ? 'DESC' : 'ASC'}` : '') : c.withinGroup();
      const sep = c.args.length > 1 ? c.a(1) : "''";
      const agg = `string_agg(${c.call.distinct ? 'DISTINCT ' : ''}${value}, ${sep}${order ? ` ORDER BY ${order}` : ''})${c.over()}`;
      return c.call.over ? agg : `coalesce(${agg}, '')`;
    },
  },
  ARRAY_AGG: {
    min: 1,
    max: 1,
    variant: true,
    print: (c) => {
      const order = c.withinGroup();
      const filter = c.call.over ? '' : ` FILTER (WHERE (${c.a(0)}) IS NOT NULL)`;
      const agg = `list(${c.call.distinct ? 'DISTINCT ' : ''}${c.a(0)}${order ? ` ORDER BY ${order}` : ''})${filter}${c.over()}`;
      return `to_json(coalesce(${agg}, []))`;
    },
  },
  OBJECT_AGG: { min: 2, max: 2, variant: true, print: (c) => `coalesce(json_merge_patch('{}', json_group_object(${c.a(0)}, ${c.a(1)})), json('{}'))` },
  PERCENTILE_CONT: {
    min: 1,
    max: 1,
    print: (c) => {
      if (!c.call.withinGroup) throw new SnowflakeError('001003', '42000', 'SQL compilation error:\nPERCENTILE_CONT requires WITHIN GROUP (ORDER BY …)');
      return `quantile_cont(${c.print(c.call.withinGroup[0]!.e)}, ${c.a(0)})${c.over()}`;
    },
  },
  PERCENTILE_DISC: {
    min: 1,
    max: 1,
    print: (c) => {
      if (!c.call.withinGroup) throw new SnowflakeError('001003', '42000', 'SQL compilation error:\nPERCENTILE_DISC requires WITHIN GROUP (ORDER BY …)');
      return `quantile_disc(${c.print(c.call.withinGroup[0]!.e)}, ${c.a(0)})${c.over()}`;
    },
  },
  // Window functions
  ROW_NUMBER: windowOnly('row_number', 0, 0),
  RANK: windowOnly('rank', 0, 0),
  DENSE_RANK: windowOnly('dense_rank', 0, 0),
  PERCENT_RANK: windowOnly('percent_rank', 0, 0),
  CUME_DIST: windowOnly('cume_dist', 0, 0),
  NTILE: windowOnly('ntile', 1, 1),
  LAG: windowOnly('lag', 1, 3),
  LEAD: windowOnly('lead', 1, 3),
  FIRST_VALUE: windowOnly('first_value', 1, 1),
  LAST_VALUE: windowOnly('last_value', 1, 1),
  NTH_VALUE: windowOnly('nth_value', 2, 2),
  RATIO_TO_REPORT: {
    min: 1,
    max: 1,
    print: (c) => {
      if (!c.call.over) throw new SnowflakeError('002062', '42601', 'SQL compilation error:\nWindow function RATIO_TO_REPORT requires an OVER clause');
      return `((${c.a(0)}) / sum(${c.a(0)})${c.over()})`;
    },
  },
  CURRENT_VERSION: { min: 0, max: 0, print: () => `sf_version()` },
};

/** Functions that are aggregates (a path or cast over them is fine; WITHIN GROUP only on these). */
const WITHIN_GROUP = new Set(['LISTAGG', 'ARRAY_AGG', 'PERCENTILE_CONT', 'PERCENTILE_DISC']);

/** Looks a function up, checking its argument count and clauses; unknown names get 002140. */
export function lookupFunction(call: Call): FnDef {
  const def = Object.hasOwn(FUNCTIONS, call.name) ? FUNCTIONS[call.name] : undefined;
  if (!def) throw unknownFunction(call.name);
  const n = call.args.length;
  if (n < def.min) {
    throw new SnowflakeError('000938', '42601', `SQL compilation error: error line 1 at position 0\nnot enough arguments for function [${call.name}], expected ${def.min}, got ${n}`);
  }
  if (n > def.max) {
    throw new SnowflakeError('000939', '42601', `SQL compilation error: error line 1 at position 0\ntoo many arguments for function [${call.name}] expected ${def.max}, got ${n}`);
  }
  if (call.withinGroup && !WITHIN_GROUP.has(call.name)) {
    throw new SnowflakeError('001003', '42000', `SQL compilation error:\nWITHIN GROUP is not allowed for function ${call.name}`);
  }
  if (call.args.some((a: FnArg) => a.name !== undefined)) throw unknownFunction(call.name);
  return def;
}

/** A DuckDB JSON path for Snowflake path steps with literal keys and indexes. */
export function jsonPath(steps: ({ key: string } | { index: number })[]): string {
  let out = '$';
  for (const s of steps) out += 'key' in s ? `."${s.key.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"` : `[${s.index}]`;
  return out;
}
