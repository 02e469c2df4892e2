import {
  DuckDBBlobValue,
  DuckDBDateValue,
  DuckDBDecimalType,
  DuckDBTimeValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTypeId,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';

/** One column of a Snowflake result (`rowtype` in the query response). */
export interface RowType {
  name: string;
  database: string;
  schema: string;
  table: string;
  type: string;
  scale: number | null;
  precision: number | null;
  length: number | null;
  byteLength: number | null;
  nullable: boolean;
  collation: null;
}

/** The Snowflake type a DuckDB column type is reported as, with precision and scale. */
export function snowflakeType(t: DuckDBType): { type: string; precision: number | null; scale: number | null } {
  switch (t.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return { type: 'boolean', precision: null, scale: null };
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
      return { type: 'fixed', precision: 38, scale: 0 };
    case DuckDBTypeId.DECIMAL: {
      const d = t as DuckDBDecimalType;
      return { type: 'fixed', precision: d.width, scale: d.scale };
    }
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE:
      return { type: 'real', precision: null, scale: null };
    case DuckDBTypeId.DATE:
      return { type: 'date', precision: null, scale: null };
    case DuckDBTypeId.TIME:
      return { type: 'time', precision: 0, scale: 6 };
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_NS:
      return { type: 'timestamp_ntz', precision: 0, scale: 9 };
    case DuckDBTypeId.TIMESTAMP_TZ:
      return { type: 'timestamp_ltz', precision: 0, scale: 9 };
    case DuckDBTypeId.BLOB:
      return { type: 'binary', precision: null, scale: null };
    case DuckDBTypeId.LIST:
    case DuckDBTypeId.ARRAY:
      return { type: 'array', precision: null, scale: null };
    case DuckDBTypeId.STRUCT:
    case DuckDBTypeId.MAP:
      return { type: 'object', precision: null, scale: null };
    case DuckDBTypeId.VARCHAR:
      return { type: t.alias === 'JSON' ? 'variant' : 'text', precision: null, scale: null };
    default:
      return { type: 'text', precision: null, scale: null };
  }
}

/** Snowflake's DATA_TYPE name (INFORMATION_SCHEMA) for a DuckDB type name. */
export const DATA_TYPE_SQL = `CASE
  WHEN data_type IN ('TINYINT','SMALLINT','INTEGER','BIGINT','HUGEINT','UTINYINT','USMALLINT','UINTEGER','UBIGINT') OR data_type LIKE 'DECIMAL%' THEN 'NUMBER'
  WHEN data_type IN ('FLOAT','DOUBLE') THEN 'FLOAT'
  WHEN data_type = 'VARCHAR' THEN 'TEXT'
  WHEN data_type = 'JSON' THEN 'VARIANT'
  WHEN data_type = 'TIMESTAMP' THEN 'TIMESTAMP_NTZ'
  WHEN data_type = 'TIMESTAMP WITH TIME ZONE' THEN 'TIMESTAMP_LTZ'
  WHEN data_type = 'BLOB' THEN 'BINARY'
  WHEN data_type LIKE '%[]' THEN 'ARRAY'
  WHEN data_type LIKE 'STRUCT%' OR data_type LIKE 'MAP%' THEN 'OBJECT'
  ELSE data_type END`;

function epochString(micros: bigint): string {
  const sec = micros / 1_000_000n;
  let frac = micros % 1_000_000n;
  let s = sec;
  if (frac < 0n) {
    frac += 1_000_000n;
    s -= 1n;
  }
  return `${s}.${(frac * 1000n).toString().padStart(9, '0')}`;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase();
}

/**
 * Encodes one cell as snowflake-sdk's JSON result format expects it: numbers as decimal
 * text, booleans as 1/0, dates as days since the epoch, timestamps as `seconds.nanos`,
 * binary as hex, semi-structured values as JSON text.
 */
export function encodeCell(v: DuckDBValue, t: DuckDBType, json: unknown): string | null {
  if (v === null || v === undefined) return null;
  switch (t.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return v ? '1' : '0';
    case DuckDBTypeId.DATE:
      return String((v as DuckDBDateValue).days);
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_TZ:
      return epochString((v as DuckDBTimestampValue | DuckDBTimestampTZValue).micros);
    case DuckDBTypeId.TIME:
      return epochString((v as DuckDBTimeValue).micros);
    case DuckDBTypeId.BLOB:
      return hex((v as DuckDBBlobValue).bytes);
    case DuckDBTypeId.LIST:
    case DuckDBTypeId.ARRAY:
    case DuckDBTypeId.STRUCT:
    case DuckDBTypeId.MAP:
      return JSON.stringify(json);
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE: {
      const n = v as number;
      return Number.isNaN(n) ? 'NaN' : n === Infinity ? 'inf' : n === -Infinity ? '-inf' : String(n);
    }
    default:
      return String(v);
  }
}

/** Whether a column needs DuckDB's JSON conversion (nested values). */
export function isNested(t: DuckDBType): boolean {
  return [DuckDBTypeId.LIST, DuckDBTypeId.ARRAY, DuckDBTypeId.STRUCT, DuckDBTypeId.MAP].includes(t.typeId);
}
