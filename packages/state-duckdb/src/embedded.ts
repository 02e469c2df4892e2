import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { OutflowError, describeError, type Ack, type DiffRow, type DiffStore, type Row, type SnapshotIngest, type Value } from '@outflow/core';
import { assertNoReservedColumns } from './reserved.js';
import { SqlDiffStore, type DiffStats } from './sql-diff.js';

/** Marks a stored value as JSON (anything but a string); strings are stored as they are. */
const JSON_MARK = '\u0001';
const KEY_COLUMN = '__key';
const FP_COLUMN = '__outflow_fp';
/** Rows written to a spool file before DuckDB reads it in, while the next rows go to another. */
const SPOOL_ROWS = 100_000;
/** Rows per line of a spool file (one JSON array of rows). */
const LINE_ROWS = 1000;

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

/** String methods of ES2024 (Node 20 has them; the compile target's library does not list them). */
type WellFormed = { isWellFormed(): boolean; toWellFormed(): string };
/** A string as DuckDB stores it: a lone surrogate (not text in UTF-8) becomes U+FFFD. */
const wellFormed = (s: string) => ((s as unknown as WellFormed).isWellFormed() ? s : (s as unknown as WellFormed).toWellFormed());

/** A spool file being written: rows for DuckDB to read in, one JSON array of rows per line. */
interface Spool {
  file: string;
  fd: number;
  rows: number;
  /** Bytes of its longest line: DuckDB reads a line whole, so it is told this bound. */
  longest: number;
}

/**
 * The delivered state of a sync whose rows come from JavaScript (any source without
 * pushdown, and stream syncs): rows are ingested into a snapshot table (one column per
 * model column: see {@link beginSnapshot}) with the fingerprint the engine gave each row,
 * and diffed in SQL by {@link SqlDiffStore} on those fingerprints: core's `fingerprint()`,
 * the one stream capture records, so a diff recognises what a stream delivered. Rows reach
 * DuckDB through spool files of JSON text, which DuckDB reads in itself while the next rows
 * are written (a value handed over at a time through the appender costs several times
 * more). No model row is kept in JS memory.
 */
export class EmbeddedDiffStore implements DiffStore {
  private columns: string[] = [];
  private kinds: ColumnKind[] = [];
  private appended = 0;
  private spool: Spool | null = null;
  private spools = 0;
  /** DuckDB reading in the spool file written before the current one (one at a time, in order). */
  private loading: Promise<void> = Promise.resolve();
  private loadError: unknown;
  readonly ingest: SnapshotIngest = {
    begin: (columns, sample) => this.beginSnapshot(columns, sample),
    add: (keys, rows, fingerprints) => this.addRows(keys, rows, fingerprints),
    end: () => this.endSnapshot(),
  };

  private constructor(
    private readonly store: SqlDiffStore,
    private readonly o: EmbeddedOptions,
  ) {}

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
    return new EmbeddedDiffStore(store, o);
  }

  get stats(): DiffStats {
    return this.store.stats;
  }

  /**
   * Starts a snapshot with the columns of the model's first rows. A column whose sampled
   * values are all numbers is stored as DOUBLE and all booleans as BOOLEAN; anything else is
   * text as above. A later value of another type turns its column into text in place.
   */
  private async beginSnapshot(columns: string[], sample: Row[] = []): Promise<void> {
    assertNoReservedColumns(columns, 'the model');
    await this.settle(false);
    this.columns = columns;
    this.kinds = this.columns.map((c) => kindOf(sample, c));
    const defs = [
      `${quote(KEY_COLUMN)} VARCHAR`,
      `${quote(FP_COLUMN)} UBIGINT`,
      ...this.columns.map((c, i) => `${quote(c)} ${this.kinds[i] === 'double' ? 'DOUBLE' : this.kinds[i] === 'bool' ? 'BOOLEAN' : 'VARCHAR'}`),
    ];
    await this.store.conn.run(`CREATE OR REPLACE TABLE memory.main.snap (${defs.join(', ')})`);
    this.appended = 0;
  }

  /** Adds rows with their key strings and fingerprints (decimal u64 strings), in the same order. */
  private async addRows(keys: string[], rows: Row[], fingerprints: string[]): Promise<void> {
    this.throwIfLoadFailed();
    let line: unknown[][] = [];
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r]!;
      if (this.mismatch(row) >= 0) {
        // The rows before this one are read in with the columns' types as they are.
        this.write(line);
        line = [];
        await this.load();
        await this.settle(true);
        for (let bad = this.mismatch(row); bad >= 0; bad = this.mismatch(row)) await this.toText(bad);
      }
      line.push(this.encodeRow(keys[r]!, fingerprints[r]!, row));
      if (line.length === LINE_ROWS) {
        this.write(line);
        line = [];
      }
    }
    this.write(line);
    if (this.spool !== null && this.spool.rows >= SPOOL_ROWS) await this.load();
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

  /**
   * A row as a spool line holds it: key, fingerprint, then each value as DuckDB casts it to
   * its column's type (a number JSON cannot hold as text: NaN, ±Infinity and -0).
   */
  private encodeRow(key: string, fp: string, row: Row): unknown[] {
    const cols = this.columns;
    const kinds = this.kinds;
    const out = new Array<unknown>(cols.length + 2);
    out[0] = wellFormed(key);
    out[1] = fp;
    for (let i = 0; i < cols.length; i++) {
      const v = row[cols[i]!];
      if (v === null || v === undefined) out[i + 2] = null;
      else if (kinds[i] === 'double') out[i + 2] = Number.isFinite(v) && !Object.is(v, -0) ? v : Object.is(v, -0) ? '-0' : String(v);
      else if (kinds[i] === 'bool') out[i + 2] = v;
      else out[i + 2] = wellFormed(encode(v)!);
    }
    return out;
  }

  /** Writes rows to the spool file, opening one if none is open. */
  private write(rows: unknown[][]): void {
    if (rows.length === 0) return;
    if (this.spool === null) {
      const file = join(this.o.tempDir, `${basename(this.o.stateFile)}.snap-${++this.spools}.ndjson`);
      this.spool = { file, fd: openSync(file, 'w', 0o600), rows: 0, longest: 0 };
    }
    const buf = Buffer.from(JSON.stringify(rows) + '\n');
    this.spool.longest = Math.max(this.spool.longest, buf.length);
    for (let off = 0; off < buf.length; ) off += writeSync(this.spool.fd, buf, off);
    this.spool.rows += rows.length;
  }

  /**
   * Hands the spool file to DuckDB to read in, once the one before it is in; later rows go
   * to a new file meanwhile. A failure is thrown at the next add or at the end.
   */
  private async load(): Promise<void> {
    const spool = this.spool;
    if (spool === null) return;
    this.spool = null;
    closeSync(spool.fd);
    await this.settle(true);
    const cast = (i: number) => (this.kinds[i] === 'double' ? '::DOUBLE' : this.kinds[i] === 'bool' ? '::BOOLEAN' : '');
    const sql = `INSERT INTO memory.main.snap SELECT r[1], r[2]::UBIGINT${this.columns.map((_, i) => `, r[${i + 3}]${cast(i)}`).join('')}
      FROM (SELECT unnest(j) AS r FROM read_json('${spool.file.replaceAll("'", "''")}', format = 'newline_delimited', records = false,
        columns = {j: 'VARCHAR[][]'}, maximum_object_size = ${Math.max(16 << 20, spool.longest)}))`;
    this.loading = this.store.conn
      .run(sql)
      .then((r) => {
        if (Number(r.rowsChanged) !== spool.rows) throw new Error(`read ${Number(r.rowsChanged)} rows of ${spool.rows}`);
        this.appended += spool.rows;
      })
      .catch((err: unknown) => {
        this.loadError ??= new OutflowError('OUTFLOW_LEDGER', `cannot add the model's rows to the diff snapshot from ${spool.file}: ${describeError(err)}`, { cause: err });
      })
      .finally(() => rmSync(spool.file, { force: true }));
  }

  /** Waits until DuckDB has read in every spool file handed to it; throws what failed, if asked to. */
  private async settle(throwFailure: boolean): Promise<void> {
    await this.loading;
    if (throwFailure) this.throwIfLoadFailed();
  }

  private throwIfLoadFailed(): void {
    if (this.loadError !== undefined) throw this.loadError;
  }

  /**
   * Turns a typed column into text: each value marked JSON, as a value of that type is
   * stored in a text column (a number JSON cannot hold, NaN or ±Infinity, as null).
   */
  private async toText(i: number): Promise<void> {
    const c = quote(this.columns[i]!);
    const json = this.kinds[i] === 'double' ? `CASE WHEN isfinite(${c}) THEN CAST(${c} AS VARCHAR) ELSE 'null' END` : `lower(CAST(${c} AS VARCHAR))`;
    await this.store.conn.run(`ALTER TABLE memory.main.snap ALTER ${c} TYPE VARCHAR USING (CASE WHEN ${c} IS NULL THEN NULL ELSE chr(1) || ${json} END)`);
    this.kinds[i] = 'text';
  }

  /** Reads in what is spooled; returns the rows added (a failure to read them in is thrown). */
  private async endSnapshot(): Promise<number> {
    await this.load();
    await this.settle(true);
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
    if (this.spool !== null) {
      closeSync(this.spool.fd);
      rmSync(this.spool.file, { force: true });
      this.spool = null;
    }
    await this.settle(false);
    await this.store.close();
  }
}
