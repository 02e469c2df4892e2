import {
  DuckDBTimestampValue,
  DuckDBTypeId,
  JsonDuckDBValueConverter,
  type DuckDBType,
  type DuckDBValue,
  type DuckDBValueConverter,
} from '@duckdb/node-api';
import type { Value } from '@outflow/core';

const q = (id: string) => `"${id.replaceAll('"', '""')}"`;

/** How a column travels: as text inside the row's JSON array (restored for the converter), or as a DuckDB value. */
interface ColumnRead {
  name: string;
  type: DuckDBType;
  /** SQL of the value as text, which restores exactly; undefined: read as a DuckDB value. */
  text?: string;
  /** Turns the text back into what DuckDB's reader hands the converter. */
  restore?(v: string): DuckDBValue;
}

const NON_FINITE: Record<string, number> = { nan: NaN, inf: Infinity, '-inf': -Infinity };

function columnRead(name: string, type: DuckDBType): ColumnRead {
  const c = q(name);
  switch (type.typeId) {
    case DuckDBTypeId.VARCHAR: // JSON is an alias of VARCHAR: a string either way
      return { name, type, text: `${c}::VARCHAR` };
    case DuckDBTypeId.BOOLEAN:
      return { name, type, text: `${c}::VARCHAR`, restore: (v) => v === 'true' };
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UINTEGER:
      return { name, type, text: `${c}::VARCHAR`, restore: Number };
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
      return { name, type, text: `${c}::VARCHAR`, restore: BigInt };
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE: // DuckDB prints a double as the shortest text that reads back as it
      return { name, type, text: `${c}::DOUBLE::VARCHAR`, restore: (v) => NON_FINITE[v] ?? Number(v) };
    case DuckDBTypeId.TIMESTAMP: // microseconds since the epoch; the infinities by name
      return {
        name,
        type,
        text: `CASE WHEN isfinite(${c}) THEN epoch_us(${c})::VARCHAR ELSE ${c}::VARCHAR END`,
        restore: (v) =>
          v === 'infinity' ? DuckDBTimestampValue.PosInf : v === '-infinity' ? DuckDBTimestampValue.NegInf : new DuckDBTimestampValue(BigInt(v)),
      };
    default:
      return { name, type };
  }
}

/**
 * Reads changed rows out of DuckDB fast. DuckDB's reader costs about a microsecond per text
 * value, so the change's own fields and the plain columns of a row (text, booleans,
 * integers, floats, timestamps) leave DuckDB as one JSON array of texts per row, parsed in
 * JavaScript; each value is restored to what DuckDB's reader would have handed the
 * converter, so the rows are the same. Columns of other types are read as DuckDB values
 * beside it.
 */
export class ChangeReader {
  private readonly columns: ColumnRead[];
  private readonly convert: DuckDBValueConverter<Value>;

  /** `meta`: SQL of the change's own fields, each of type VARCHAR; `columns`: the row's columns and their types. */
  constructor(
    private readonly meta: string[],
    columns: { name: string; type: DuckDBType }[],
    convert?: DuckDBValueConverter<Value>,
  ) {
    this.columns = columns.map((c) => columnRead(c.name, c.type));
    this.convert = convert ?? (JsonDuckDBValueConverter as DuckDBValueConverter<Value>);
  }

  /** The SELECT list: the JSON array first, then the columns read as DuckDB values. */
  selectList(): string {
    const texts = [...this.meta, ...this.columns.filter((c) => c.text).map((c) => c.text!)];
    return [`to_json([${texts.join(', ')}])::VARCHAR`, ...this.columns.filter((c) => !c.text).map((c) => q(c.name))].join(', ');
  }

  /**
   * Builds one item per row of a page read with {@link selectList}, from the change's fields
   * (texts or nulls, in the order given) and the row's values by column name; `withRow` says
   * whether a row has values to read (a delete has none).
   */
  read<T>(
    page: { getColumns(): DuckDBValue[][] },
    withRow: (meta: (string | null)[]) => boolean,
    build: (meta: (string | null)[], row: Record<string, Value> | null) => T,
  ): T[] {
    const cols = page.getColumns();
    const texts = cols[0] ?? [];
    const n = this.meta.length;
    const out = new Array<T>(texts.length);
    for (let i = 0; i < texts.length; i++) {
      // The change's fields first, then the texts of the row's columns.
      const values = JSON.parse(texts[i] as string) as (string | null)[];
      let row: Record<string, Value> | null = null;
      if (withRow(values)) {
        row = {};
        let j = n;
        let native = 1;
        for (const c of this.columns) {
          let raw: DuckDBValue;
          if (c.text === undefined) raw = cols[native++]![i]!;
          else {
            const v = values[j++]!;
            raw = v === null || c.restore === undefined ? v : c.restore(v);
          }
          row[c.name] = (this.convert(raw, c.type, this.convert) ?? null) as Value;
        }
      }
      out[i] = build(values, row);
    }
    return out;
  }
}
