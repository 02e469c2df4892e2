import type { DuckDBAppender } from '@duckdb/node-api';
import type { Row, Value } from '../contracts.js';
import { OutflowError } from '../errors.js';
import { SqlDiffStore, type DiffStats } from './sql-diff.js';
import type { Ack, DiffRow, DiffStore } from './store.js';

/** Marks a stored value as JSON (anything but a string); strings are stored as they are. */
const JSON_MARK = '\u0001';
const KEY_COLUMN = '__key';
const FLUSH_ROWS = 100_000;

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
  /** Model columns the fingerprint covers; null: every column. */
  fingerprint: string[] | null;
  memoryLimit?: string;
  threads?: number;
}

/**
 * The delivered state of a sync whose rows come from JavaScript (any source without
 * pushdown, and stream syncs): rows are ingested through DuckDB's appender into a snapshot
 * table (one VARCHAR column per model column: strings as they are, other values as marked
 * JSON), and diffed in SQL by {@link SqlDiffStore}. No model row is kept in JS memory.
 */
export class EmbeddedDiffStore implements DiffStore {
  private appender: DuckDBAppender | null = null;
  private columns: string[] = [];
  private index = new Map<string, number>();
  private appended = 0;

  private constructor(
    private readonly store: SqlDiffStore,
    private readonly o: EmbeddedOptions,
  ) {}

  static async open(o: EmbeddedOptions): Promise<EmbeddedDiffStore> {
    const store = await SqlDiffStore.open(
      { relation: 'SELECT * FROM memory.main.snap', key: { kind: 'text', expr: `"${KEY_COLUMN}"` }, fingerprint: [], hidden: [KEY_COLUMN] },
      {
        stateFile: o.stateFile,
        readOnly: o.readOnly,
        tempDir: o.tempDir,
        ...(o.memoryLimit ? { memoryLimit: o.memoryLimit } : {}),
        ...(o.threads ? { threads: o.threads } : {}),
        convert: (value) => (value === null ? null : decode(String(value))),
      },
    );
    return new EmbeddedDiffStore(store, o);
  }

  get stats(): DiffStats {
    return this.store.stats;
  }

  /** Starts a snapshot with the columns of the model's first row. */
  async beginSnapshot(columns: string[]): Promise<void> {
    this.columns = columns.filter((c) => c !== KEY_COLUMN);
    this.index = new Map(this.columns.map((c, i) => [c, i]));
    const defs = [`"${KEY_COLUMN}" VARCHAR`, ...this.columns.map((c) => `"${c.replaceAll('"', '""')}" VARCHAR`)];
    await this.store.conn.run(`CREATE OR REPLACE TABLE memory.main.snap (${defs.join(', ')})`);
    this.appender = await this.store.conn.createAppender('snap', 'main', 'memory');
    this.appended = 0;
    const fp = this.o.fingerprint ?? this.columns;
    this.store.setFingerprint(fp);
  }

  /** Adds one model row under its key string. */
  addRow(key: string, row: Row): void {
    const a = this.appender!;
    a.appendVarchar(key);
    const cols = this.columns;
    for (let i = 0; i < cols.length; i++) {
      const s = encode(row[cols[i]!]);
      if (s === null) a.appendNull();
      else a.appendVarchar(s);
    }
    a.endRow();
    if (++this.appended % FLUSH_ROWS === 0) a.flushSync();
  }

  /** Fails when a row carries a column the first row did not have. */
  checkColumns(row: Row, where: string): void {
    for (const c of Object.keys(row)) {
      if (!this.index.has(c)) {
        throw new OutflowError(
          'OUTFLOW_SOURCE',
          `${where}: row ${this.appended + 1} has column "${c}", which the model's first row did not have`,
        );
      }
    }
  }

  async endSnapshot(): Promise<number> {
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
  deliveredCount() {
    return this.store.deliveredCount();
  }
  async close(): Promise<void> {
    try {
      this.appender?.closeSync();
    } catch {
      /* closed */
    }
    if (!this.o.readOnly) await this.store.fold().catch(() => undefined);
    this.store.close();
  }
}
