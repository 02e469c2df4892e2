/**
 * Results on the wire as a SQL warehouse sends them without Arrow: a TTableSchema and
 * column-based row sets (TRowSet.columns), each column its values plus a null bitmap (bit
 * i of the bitmap, least significant first, set for a null in row i). BIGINT travels as
 * i64, DOUBLE and FLOAT as doubles, DECIMAL, DATE and TIMESTAMP as their text, STRUCT, ARRAY
 * and MAP as JSON text.
 */
import { DuckDBTypeId, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';
import Int64 from 'node-int64';
// The generated module is CommonJS whose enums Node cannot see as named exports.
import thriftTypes from '@databricks/sql/thrift/TCLIService_types.js';
import type { TColumn, TColumnDesc, TRowSet, TTableSchema, TTypeId as TypeId } from '@databricks/sql/thrift/TCLIService_types.js';
import type { Result } from './engine.js';

const { TTypeId } = thriftTypes;

interface WireType {
  id: TypeId;
  /** Which TColumn field carries the values. */
  field: 'boolVal' | 'byteVal' | 'i16Val' | 'i32Val' | 'i64Val' | 'doubleVal' | 'stringVal' | 'binaryVal';
  /** DECIMAL's precision and scale. */
  qualifiers?: { precision: number; scale: number };
}

function wireType(t: DuckDBType): WireType {
  switch (t.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return { id: TTypeId.BOOLEAN_TYPE, field: 'boolVal' };
    case DuckDBTypeId.TINYINT:
      return { id: TTypeId.TINYINT_TYPE, field: 'byteVal' };
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.UTINYINT:
      return { id: TTypeId.SMALLINT_TYPE, field: 'i16Val' };
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.USMALLINT:
      return { id: TTypeId.INT_TYPE, field: 'i32Val' };
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UINTEGER:
      return { id: TTypeId.BIGINT_TYPE, field: 'i64Val' };
    case DuckDBTypeId.FLOAT:
      return { id: TTypeId.FLOAT_TYPE, field: 'doubleVal' };
    case DuckDBTypeId.DOUBLE:
      return { id: TTypeId.DOUBLE_TYPE, field: 'doubleVal' };
    case DuckDBTypeId.DECIMAL: {
      const d = t as unknown as { width: number; scale: number };
      return { id: TTypeId.DECIMAL_TYPE, field: 'stringVal', qualifiers: { precision: d.width, scale: d.scale } };
    }
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UBIGINT:
      return { id: TTypeId.DECIMAL_TYPE, field: 'stringVal', qualifiers: { precision: 38, scale: 0 } };
    case DuckDBTypeId.DATE:
      return { id: TTypeId.DATE_TYPE, field: 'stringVal' };
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_NS:
    case DuckDBTypeId.TIMESTAMP_TZ:
      return { id: TTypeId.TIMESTAMP_TYPE, field: 'stringVal' };
    case DuckDBTypeId.BLOB:
      return { id: TTypeId.BINARY_TYPE, field: 'binaryVal' };
    case DuckDBTypeId.STRUCT:
      return { id: TTypeId.STRUCT_TYPE, field: 'stringVal' };
    case DuckDBTypeId.LIST:
    case DuckDBTypeId.ARRAY:
      return { id: TTypeId.ARRAY_TYPE, field: 'stringVal' };
    case DuckDBTypeId.MAP:
      return { id: TTypeId.MAP_TYPE, field: 'stringVal' };
    default:
      return { id: TTypeId.STRING_TYPE, field: 'stringVal' };
  }
}

/**
 * Whether a column of this type travels as text other than a string column's own: such
 * columns are best rendered by DuckDB (`CAST … AS VARCHAR`) before they reach JS.
 */
export const carriedAsText = (t: DuckDBType): boolean => t.typeId !== DuckDBTypeId.VARCHAR && wireType(t).field === 'stringVal';

/** Whether a column of this type (STRUCT, ARRAY, MAP) travels as JSON text, which the SDK parses. */
export const carriedAsJson = (t: DuckDBType): boolean => [TTypeId.STRUCT_TYPE, TTypeId.ARRAY_TYPE, TTypeId.MAP_TYPE].includes(wireType(t).id);

/** The result's schema; positions count from 1. */
export function tableSchema(result: Result): TTableSchema {
  const columns: TColumnDesc[] = result.names.map((name, i) => {
    const w = wireType(result.types[i]!);
    return {
      columnName: name,
      position: i + 1,
      typeDesc: {
        types: [
          {
            primitiveEntry: {
              type: w.id,
              ...(w.qualifiers
                ? { typeQualifiers: { qualifiers: { precision: { i32Value: w.qualifiers.precision }, scale: { i32Value: w.qualifiers.scale } } } }
                : {}),
            },
          },
        ],
      },
    } as TColumnDesc;
  });
  return { columns } as TTableSchema;
}

/** BIGINT values as Int64s, each over its own 8 bytes of one buffer (the Thrift writer sends an Int64's whole buffer). */
function int64s(values: readonly DuckDBValue[]): Int64[] {
  const bytes = Buffer.alloc(8 * values.length);
  return values.map((v, i) => {
    bytes.writeBigInt64BE(BigInt((v as bigint | number | null) ?? 0), 8 * i);
    return new Int64(bytes.subarray(8 * i, 8 * i + 8));
  });
}

/** Rows `from` (inclusive) to `to` (exclusive) as a column-based row set. */
export function rowSet(result: Result, from: number, to: number): TRowSet {
  const columns: TColumn[] = result.types.map((type, c) => {
    const w = wireType(type);
    const source = result.columns[c]!.slice(from, to);
    const nulls = Buffer.alloc(Math.ceil(source.length / 8));
    source.forEach((v, r) => {
      if (v === null) nulls[r >> 3]! |= 1 << (r & 7);
    });
    const values = w.field === 'i64Val' ? int64s(source) : source.map((v) => encode(w, v));
    return { [w.field]: { values, nulls } } as TColumn;
  });
  return { startRowOffset: new Int64(from), rows: [], columns } as TRowSet;
}

/** One value in its TColumn field's type (i64 aside); a null gets the field's zero, flagged in the bitmap. */
function encode(w: WireType, v: DuckDBValue): unknown {
  switch (w.field) {
    case 'boolVal':
      return v === null ? false : Boolean(v);
    case 'byteVal':
    case 'i16Val':
    case 'i32Val':
    case 'doubleVal':
      return v === null ? 0 : Number(v);
    case 'binaryVal':
      return v === null ? Buffer.alloc(0) : Buffer.from((v as { bytes: Uint8Array }).bytes);
    default:
      return v === null ? '' : String(v);
  }
}
