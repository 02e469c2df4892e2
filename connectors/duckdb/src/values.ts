import {
  DuckDBBlobValue,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBListType,
  DuckDBListValue,
  DuckDBArrayType,
  DuckDBArrayValue,
  DuckDBMapType,
  DuckDBMapValue,
  DuckDBStructType,
  DuckDBStructValue,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTypeId,
  DuckDBUnionType,
  DuckDBUnionValue,
  createDuckDBValueConverter,
  fromVariantValue,
  type DuckDBType,
  type DuckDBValue,
  type DuckDBValueConverter,
} from '@duckdb/node-api';
import type { Value } from '@outflow/core';

type Converter = DuckDBValueConverter<NonNullable<Value>>;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const DAY_US = 86_400_000_000n;

function unexpected(value: DuckDBValue, type: DuckDBType): never {
  throw new TypeError(`unexpected DuckDB value ${String(value)} for type ${type.toString()}`);
}

/** Integers within ±(2^53−1) become numbers; larger ones keep every digit as a decimal string. */
function integer(value: DuckDBValue, type: DuckDBType): Value {
  if (typeof value === 'number') return value;
  if (typeof value !== 'bigint') return unexpected(value, type);
  return value <= MAX_SAFE && value >= -MAX_SAFE ? Number(value) : value.toString();
}

/** JSON has no NaN or infinities, so those become the strings `NaN`, `Infinity`, `-Infinity`. */
function float(value: DuckDBValue, type: DuckDBType): Value {
  if (typeof value !== 'number') return unexpected(value, type);
  return Number.isFinite(value) ? value : String(value);
}

/** A DECIMAL is a number only when that number prints back as the same decimal at its scale. */
function decimal(value: DuckDBValue, type: DuckDBType): Value {
  if (!(value instanceof DuckDBDecimalValue)) return unexpected(value, type);
  const text = value.toString();
  const n = Number(text);
  return Number.isFinite(n) && n.toFixed(value.scale) === text ? n : text;
}

// Proleptic Gregorian calendar date of a day count since 1970-01-01 (Hinnant's algorithm).
function civilDate(days: bigint): string {
  const z = days + 719_468n;
  const era = (z >= 0n ? z : z - 146_096n) / 146_097n;
  const doe = z - era * 146_097n;
  const yoe = (doe - doe / 1_460n + doe / 36_524n - doe / 146_096n) / 365n;
  const doy = doe - (365n * yoe + yoe / 4n - yoe / 100n);
  const mp = (5n * doy + 2n) / 153n;
  const day = doy - (153n * mp + 2n) / 5n + 1n;
  const month = mp < 10n ? mp + 3n : mp - 9n;
  const year = yoe + era * 400n + (month <= 2n ? 1n : 0n);
  const y =
    year >= 0n && year <= 9999n
      ? year.toString().padStart(4, '0')
      : (year < 0n ? '-' : '+') + (year < 0n ? -year : year).toString().padStart(6, '0');
  return `${y}-${month.toString().padStart(2, '0')}-${day.toString().padStart(2, '0')}`;
}

function pad2(n: bigint): string {
  return n.toString().padStart(2, '0');
}

/**
 * Formats nanoseconds since the epoch as ISO 8601. The fraction has 3 digits, or 6 or 9
 * when the value has that precision, so whole milliseconds match `Date.toISOString()`.
 */
function isoTimestamp(nanos: bigint, zulu: boolean): string {
  const dayNs = DAY_US * 1000n;
  let days = nanos / dayNs;
  let rest = nanos % dayNs;
  if (rest < 0n) {
    rest += dayNs;
    days -= 1n;
  }
  const secs = rest / 1_000_000_000n;
  const frac = rest % 1_000_000_000n;
  let fraction = frac.toString().padStart(9, '0');
  if (fraction.endsWith('000000')) fraction = fraction.slice(0, 3);
  else if (fraction.endsWith('000')) fraction = fraction.slice(0, 6);
  const time = `${pad2(secs / 3600n)}:${pad2((secs / 60n) % 60n)}:${pad2(secs % 60n)}.${fraction}`;
  return `${civilDate(days)}T${time}${zulu ? 'Z' : ''}`;
}

function infinity(positive: boolean): string {
  return positive ? 'infinity' : '-infinity';
}

function date(value: DuckDBValue, type: DuckDBType): Value {
  if (!(value instanceof DuckDBDateValue)) return unexpected(value, type);
  if (!value.isFinite) return infinity(value.days > 0);
  return civilDate(BigInt(value.days));
}

function timestamp(value: DuckDBValue, type: DuckDBType): Value {
  let nanos: bigint;
  if (value instanceof DuckDBTimestampValue || value instanceof DuckDBTimestampTZValue) {
    if (!value.isFinite) return infinity(value.micros > 0n);
    nanos = value.micros * 1000n;
  } else if (value instanceof DuckDBTimestampSecondsValue) {
    if (!value.isFinite) return infinity(value.seconds > 0n);
    nanos = value.seconds * 1_000_000_000n;
  } else if (value instanceof DuckDBTimestampMillisecondsValue) {
    if (!value.isFinite) return infinity(value.millis > 0n);
    nanos = value.millis * 1_000_000n;
  } else if (value instanceof DuckDBTimestampNanosecondsValue) {
    if (!value.isFinite) return infinity(value.nanos > 0n);
    nanos = value.nanos;
  } else {
    return unexpected(value, type);
  }
  return isoTimestamp(nanos, type.typeId === DuckDBTypeId.TIMESTAMP_TZ);
}

function text(value: DuckDBValue): Value {
  return typeof value === 'string' ? value : String(value);
}

function blob(value: DuckDBValue, type: DuckDBType): Value {
  if (!(value instanceof DuckDBBlobValue)) return unexpected(value, type);
  return Buffer.from(value.bytes.buffer, value.bytes.byteOffset, value.bytes.byteLength).toString('base64');
}

function list(value: DuckDBValue, type: DuckDBType, convert: Converter): Value {
  if (value instanceof DuckDBListValue && type instanceof DuckDBListType) {
    return value.items.map((v) => convert(v, type.valueType, convert));
  }
  if (value instanceof DuckDBArrayValue && type instanceof DuckDBArrayType) {
    return value.items.map((v) => convert(v, type.valueType, convert));
  }
  return unexpected(value, type);
}

function struct(value: DuckDBValue, type: DuckDBType, convert: Converter): Value {
  if (!(value instanceof DuckDBStructValue && type instanceof DuckDBStructType)) return unexpected(value, type);
  const out: Record<string, Value> = {};
  for (const [k, v] of Object.entries(value.entries)) out[k] = convert(v, type.typeForEntry(k), convert);
  return out;
}

/** A MAP becomes an object; keys that are not strings are keyed by their JSON text. */
function map(value: DuckDBValue, type: DuckDBType, convert: Converter): Value {
  if (!(value instanceof DuckDBMapValue && type instanceof DuckDBMapType)) return unexpected(value, type);
  const out: Record<string, Value> = {};
  for (const entry of value.entries) {
    const key = convert(entry.key, type.keyType, convert);
    out[typeof key === 'string' ? key : JSON.stringify(key)] = convert(entry.value, type.valueType, convert);
  }
  return out;
}

function union(value: DuckDBValue, type: DuckDBType, convert: Converter): Value {
  if (!(value instanceof DuckDBUnionValue && type instanceof DuckDBUnionType)) return unexpected(value, type);
  return convert(value.value, type.memberTypeForTag(value.tag), convert);
}

function unsupported(_: DuckDBValue, type: DuckDBType): never {
  throw new TypeError(`DuckDB type ${type.toString()} cannot be read as a value`);
}

const byTypeId: Record<DuckDBTypeId, Converter> = {
  [DuckDBTypeId.INVALID]: unsupported,
  [DuckDBTypeId.BOOLEAN]: (v, t) => (typeof v === 'boolean' ? v : unexpected(v, t)),
  [DuckDBTypeId.TINYINT]: integer,
  [DuckDBTypeId.SMALLINT]: integer,
  [DuckDBTypeId.INTEGER]: integer,
  [DuckDBTypeId.BIGINT]: integer,
  [DuckDBTypeId.UTINYINT]: integer,
  [DuckDBTypeId.USMALLINT]: integer,
  [DuckDBTypeId.UINTEGER]: integer,
  [DuckDBTypeId.UBIGINT]: integer,
  [DuckDBTypeId.HUGEINT]: integer,
  [DuckDBTypeId.UHUGEINT]: integer,
  [DuckDBTypeId.BIGNUM]: integer,
  [DuckDBTypeId.FLOAT]: float,
  [DuckDBTypeId.DOUBLE]: float,
  [DuckDBTypeId.DECIMAL]: decimal,
  [DuckDBTypeId.DATE]: date,
  [DuckDBTypeId.TIMESTAMP]: timestamp,
  [DuckDBTypeId.TIMESTAMP_S]: timestamp,
  [DuckDBTypeId.TIMESTAMP_MS]: timestamp,
  [DuckDBTypeId.TIMESTAMP_NS]: timestamp,
  [DuckDBTypeId.TIMESTAMP_TZ]: timestamp,
  [DuckDBTypeId.TIME]: text,
  [DuckDBTypeId.TIME_NS]: text,
  [DuckDBTypeId.TIME_TZ]: text,
  [DuckDBTypeId.INTERVAL]: text,
  [DuckDBTypeId.VARCHAR]: text,
  [DuckDBTypeId.ENUM]: text,
  [DuckDBTypeId.UUID]: text,
  [DuckDBTypeId.BIT]: text,
  [DuckDBTypeId.GEOMETRY]: text,
  [DuckDBTypeId.BLOB]: blob,
  [DuckDBTypeId.LIST]: list,
  [DuckDBTypeId.ARRAY]: list,
  [DuckDBTypeId.STRUCT]: struct,
  [DuckDBTypeId.MAP]: map,
  [DuckDBTypeId.UNION]: union,
  [DuckDBTypeId.VARIANT]: fromVariantValue,
  [DuckDBTypeId.SQLNULL]: () => null,
  [DuckDBTypeId.ANY]: unsupported,
  [DuckDBTypeId.STRING_LITERAL]: text,
  [DuckDBTypeId.INTEGER_LITERAL]: integer,
};

/**
 * Converts a DuckDB value to Outflow's JSON-friendly {@link Value}: see the type mapping in
 * the package README.
 */
export const toValue: Converter = createDuckDBValueConverter(byTypeId);
