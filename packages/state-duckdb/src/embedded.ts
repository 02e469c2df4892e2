import type { DuckDBAppender } from '@duckdb/node-api';
import type { Ack, DiffRow, DiffStore, Row, SnapshotIngest, Value } from '@outflow/core';
import { assertNoReservedColumns } from './reserved.js';
import { SqlDiffStore, type DiffStats } from './sql-diff.js';

/** Marks a stored value as JSON (anything but a string); strings are stored as they are. */
const JSON_MARK = '\u0001';
const KEY_COLUMN = '__key';
const FP_COLUMN = '__outflow_fp';
const FLUSH_ROWS = 100_000;

type ColumnKind = 'double' | 'bool' | 'text';

const quote = (c: string) => `"${c.replaceAll('"', '""')}"`;

function kindOf(sample: Row[], column: string): ColumnKind {
  let kind: ColumnKind | undefined;
  for (const row of sample) {
    const v = row[column];
    if (v === null || v === undefined) continue;
    const k: ColumnKind = typeof v === 'number' && Number.isFinite(v) ? 'double' : typeof v === 'boolean' ? 'bool' : 'text';
    if (kind !== undefined && kind !== k) return 'text';
    kind = k;
  }
  return kind ?? 'text';
}

function encode(v: Value | undefined): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v.length > 0 && v.charCodeAt(0) === 1 ? JSON_MARK + JSON.stringify(v) : v;
  if (typeof v === 'number') return JSON_MARK + (Number.isFinite(v) ? String(v) : 'null');
  return JSON_MARK + JSON.stringify(v);
}

function decode(s: string): Value {
  return s.length > 0 && s.charCodeAt(0) === 1 ? (JSON.parse(s.slice(1)) as Value) : s;
}

export interface EmbeddedOptions {
  stateFile: string;
  readOnly: boolean;
  tempDir: string;
  memoryLimit?: string;
  threads?: number;
}

/**
 * The delivered state of a sync whose rows come from JavaScript (any source without
 * pushdown, and stream syncs): rows are ingested through DuckDB's appender into a snapshot
 * table (one column per model column: see {@link beginSnapshot}) with the fingerprint the
 * engine gave each row, and diffed in SQL by {@link SqlDiffStore} on those fingerprints:
 * core's `fingerprint()`, the one stream capture records, so a diff recognises what a
 * stream delivered. No model row is kept in JS memory.
 */
export class EmbeddedDiffStore implements DiffStore {
  private appender: DuckDBAppender | null = null;
  private columns: string[] = [];
  private kinds: ColumnKind[] = [];
  private appended = 0;
  readonly ingest: SnapshotIngest = {
    begin: (columns, sample) => this.beginSnapshot(columns, sample),
    add: (keys, rows, fingerprints) => this.addRows(keys, rows, fingerprints),
    end: () => this.endSnapshot(),
  };

  private constructor(private readonly store: SqlDiffStore) {}

  static async open(o: EmbeddedOptions): Promise<EmbeddedDiffStore> {
    const store = await SqlDiffStore.open(
      {
        relation: 'SELECT * FROM memory.main.snap',
        key: { kind: 'text', expr: quote(KEY_COLUMN) },
        fingerprint: { column: FP_COLUMN },
        hidden: [KEY_COLUMN, FP_COLUMN],
      },
      {
        stateFile: o.stateFile,
        readOnly: o.readOnly,
        tempDir: o.tempDir,
        ...(o.memoryLimit ? { memoryLimit: o.memoryLimit } : {}),
        ...(o.threads ? { threads: o.threads } : {}),
        convert: (value) => (value === null ? null : typeof value === 'string' ? decode(value) : (value as Value)),
      },
    );
    return new EmbeddedDiffStore(store);
  }

  get stats(): DiffStats {
    return this.store.stats;
  }

  /**
   * Starts a snapshot with the columns of the model's first rows. A column whose sampled
   * values are all numbers is stored as DOUBLE and all booleans as BOOLEAN (the appender
   * takes those far faster than text); anything else is text as above. A later value of
   * another type turns its column into text in place.
   */
  private async beginSnapshot(columns: string[], sample: Row[] = []): Promise<void> {
    assertNoReservedColumns(columns, 'the model');
    this.columns = columns;
    this.kinds = this.columns.map((c) => kindOf(sample, c));
    const defs = [
      `${quote(KEY_COLUMN)} VARCHAR`,
      `${quote(FP_COLUMN)} UBIGINT`,
      ...this.columns.map((c, i) => `${quote(c)} ${this.kinds[i] === 'double' ? 'DOUBLE' : this.kinds[i] === 'bool' ? 'BOOLEAN' : 'VARCHAR'}`),
    ];
    await this.store.conn.run(`CREATE OR REPLACE TABLE memory.main.snap (${defs.join(', ')})`);
    this.appender = await this.store.conn.createAppender('snap', 'main', 'memory');
    this.appended = 0;
  }

  /** Adds rows with their key strings and fingerprints (decimal u64 strings), in the same order. */
  private async addRows(keys: string[], rows: Row[], fingerprints: string[]): Promise<void> {
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r]!;
      for (let bad = this.mismatch(row); bad >= 0; bad = this.mismatch(row)) await this.toText(bad);
      this.append(keys[r]!, fingerprints[r]!, row);
    }
  }

  private mismatch(row: Row): number {
    const kinds = this.kinds;
    for (let i = 0; i < kinds.length; i++) {
      const k = kinds[i];
      if (k === 'text') continue;
      const v = row[this.columns[i]!];
      if (v === null || v === undefined) continue;
      if ((k === 'double' && typeof v !== 'number') || (k === 'bool' && typeof v !== 'boolean')) return i;
    }
    return -1;
  }

  private append(key: string, fp: string, row: Row): void {
    const a = this.appender!;
    a.appendVarchar(key);
    a.appendUBigInt(BigInt(fp));
    const cols = this.columns;
    const kinds = this.kinds;
    for (let i = 0; i < cols.length; i++) {
      const v = row[cols[i]!];
      if (v === null || v === undefined) {
        a.appendNull();
        continue;
      }
      switch (kinds[i]) {
        case 'double':
          a.appendDouble(v as number);
          break;
        case 'bool':
          a.appendBoolean(v as boolean);
          break;
        default:
          a.appendVarchar(encode(v)!);
      }
    }
    a.endRow();
    if (++this.appended % FLUSH_ROWS === 0) a.flushSync();
  }

  /** Turns a typed column into text (marked JSON, as a value of that type is stored). */
  private async toText(i: number): Promise<void> {
    this.appender!.flushSync();
    this.appender!.closeSync();
    const c = quote(this.columns[i]!);
    await this.store.conn.run(
      `ALTER TABLE memory.main.snap ALTER ${c} TYPE VARCHAR USING (CASE WHEN ${c} IS NULL THEN NULL ELSE chr(1) || lower(CAST(${c} AS VARCHAR)) END)`,
    );
    this.kinds[i] = 'text';
    this.appender = await this.store.conn.createAppender('snap', 'main', 'memory');
  }

  private async endSnapshot(): Promise<number> {
    this.appender?.flushSync();
    this.appender?.closeSync();
    this.appender = null;
    return this.appended;
  }

  getMeta(k: string) {
    return this.store.getMeta(k);
  }
  setMeta(k: string, v: string) {
    return this.store.setMeta(k, v);
  }
  markAllStale() {
    return this.store.markAllStale();
  }
  unpark(keys?: string[]) {
    return this.store.unpark(keys);
  }
  async computeChanges() {
    if (this.columns.length === 0 && this.appended === 0) {
      // An empty model: no snapshot table was made; every delivered row is a delete.
      await this.beginSnapshot([]);
      await this.endSnapshot();
    }
    return this.store.computeChanges();
  }
  changes(): AsyncIterable<DiffRow[]> {
    return this.store.changes();
  }
  apply(acks: Ack[]) {
    return this.store.apply(acks);
  }
  async tidy() {
    return this.store.tidy();
  }
  inDoubt() {
    return this.store.inDoubt();
  }
  positions(keys: string[]) {
    return this.store.positions(keys);
  }
  forgetPositions(upTo?: string) {
    return this.store.forgetPositions(upTo);
  }
  addresses(keys: string[]) {
    return this.store.addresses(keys);
  }
  deliveredCount() {
    return this.store.deliveredCount();
  }
  async close(): Promise<void> {
    try {
      this.appender?.closeSync();
    } catch {
      /* closed */
    }
    await this.store.close();
  }
}
