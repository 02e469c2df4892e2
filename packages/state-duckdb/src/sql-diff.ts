import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  DuckDBInstance,
  type DuckDBConnection,
  type DuckDBValueConverter,
} from '@duckdb/node-api';
import { OutflowError, describeError, failpoint, fingerprint, isOutflowError, type Ack, type RecordAddress, type SettledChange, type DiffRow, type DiffStore, type Row, type Value } from '@outflow/core';
import { AckJournal, readJournal, type JournalRow } from './ack-journal.js';
import { KeyStates, type KeyState } from './key-states.js';
import { ChangeReader } from './read-out.js';

/** How the model is seen by the diff: a relation, its key and the fingerprinted columns. */
export interface SqlModel {
  /** A SELECT statement that yields the model's rows. */
  relation: string;
  /**
   * The key: `int` for one integer column (compared natively, diffed by key blocks), or
   * `text` with a SQL expression whose value is the key string.
   */
  key: { kind: 'int'; column: string } | { kind: 'text'; expr: string };
  /**
   * The row fingerprint: the columns it covers (the delivered fields, in a fixed order),
   * hashed by DuckDB; or a UBIGINT column that already holds each row's fingerprint (core's
   * `fingerprint()`, computed where the rows were read).
   */
  fingerprint: string[] | { column: string };
  /** Columns not to hand out in DiffRow.row (helper columns of an ingest table). */
  hidden?: string[];
}

export interface SqlDiffOptions {
  /** The DuckDB file of the delivered state. */
  stateFile: string;
  /** Dry run: a missing state file is empty, and nothing is written. */
  readOnly: boolean;
  tempDir: string;
  /** DuckDB memory limit; the diff spills to `tempDir` beyond it. */
  memoryLimit?: string;
  threads?: number;
  /** Runs after the state is attached, e.g. to ATTACH a warehouse file and `USE` it. */
  setup?(conn: DuckDBConnection): Promise<void>;
  /** Converts model values to JSON values for DiffRow.row. */
  convert?: DuckDBValueConverter<Value>;
  /** Decides the key after `setup` (e.g. from the model's column types), overriding `model.key`. */
  keyKind?(): SqlModel['key'];
}

export interface DiffStats {
  /** 'full' (first run: every row is new), 'join' (one join) or 'blocks' (key blocks). */
  method: 'full' | 'join' | 'blocks';
  blockSize?: number;
  /** Fraction of key blocks whose checksums differed. */
  blocksChanged?: number;
  modelRows?: number;
}

/** Per key of the ack log `acks`, its latest ack with a stream position (callers add conditions and GROUP BY k). */
const latestPositions = (acks: string) => `SELECT k, arg_max(pos, seq) AS pos, arg_max(kind IN ('deleted', 'forget'), seq) AS gone FROM ${acks} WHERE pos IS NOT NULL`;
/**
 * Per key of the ack log, each field as the acks leave it in order: the latest ack that sets
 * or clears a field decides it, and a key whose last ack is a delete or forget goes (callers
 * add conditions on k and GROUP BY k).
 */
const acked = (acks: string) => `SELECT k,
    arg_max(kind, seq) AS last_kind,
    arg_max({'kind': kind, 'fp': fp}, seq) FILTER (WHERE kind IN ('delivered', 'deleted', 'forget')) AS fp_ack,
    arg_max({'kind': kind, 'fp': fp}, seq) FILTER (WHERE kind IN ('parked', 'delivered', 'deleted', 'forget')) AS parked_ack,
    arg_max({'kind': kind, 'fp': fp, 'm': m}, seq) FILTER (WHERE kind IN ('sent', 'delivered', 'deleted', 'forget')) AS sent_ack,
    max(seq) FILTER (WHERE kind IN ('deleted', 'forget')) AS reset_seq,
    arg_max(dest_id, seq) FILTER (WHERE kind = 'delivered' AND dest_id IS NOT NULL) AS dest_id,
    max(seq) FILTER (WHERE kind = 'delivered' AND dest_id IS NOT NULL) AS dest_seq
  FROM ${acks}`;
/**
 * The delivered rows of the keys in `a` (a relation of {@link acked}) as their acks leave
 * them. A refusal writes nothing, so a write in doubt stays in doubt; an acknowledgement
 * without a destination id keeps the one known.
 */
const MERGED = `SELECT a.k,
    CASE WHEN a.fp_ack IS NULL THEN d.fp WHEN a.fp_ack['kind'] = 'delivered' THEN a.fp_ack['fp'] END AS fp,
    CASE WHEN a.dest_seq > coalesce(a.reset_seq, -1) THEN a.dest_id WHEN a.reset_seq IS NULL THEN d.dest_id END AS dest_id,
    CASE WHEN a.parked_ack IS NULL THEN d.parked_fp WHEN a.parked_ack['kind'] = 'parked' THEN a.parked_ack['fp'] END AS parked_fp,
    CASE WHEN a.sent_ack IS NULL THEN d.sent_fp WHEN a.sent_ack['kind'] = 'sent' THEN a.sent_ack['fp'] END AS sent_fp,
    CASE WHEN a.sent_ack IS NULL THEN d.sent_match WHEN a.sent_ack['kind'] = 'sent' THEN a.sent_ack['m'] END AS sent_match
  FROM a LEFT JOIN st.delivered d ON d.k = a.k
  WHERE a.last_kind IN ('delivered', 'parked', 'sent')`;
/**
 * A row's part of its block's checksum: its key, fingerprint and (delivered rows) the
 * fingerprint of a write in doubt, hashed twice. DuckDB combines the hashes of several values
 * linearly, so with one pass two rows of a block that change from the same fingerprint to
 * the same other one would leave the block's XOR as it was, and both changes would be missed.
 */
const checksum = (...values: string[]) => `hash(hash(${values.join(', ')}))`;
const CHECKSUM = `CASE WHEN sent_fp IS NULL THEN ${checksum('k', 'fp')} ELSE ${checksum('k', 'fp', 'sent_fp')} END`;
/** The number of the finest block (`int 8` or `text <buckets>`, as kept) of key `k`. */
const fineBlock = (spec: string, k: string) => {
  const [kind, n] = spec.split(' ') as [string, string];
  return kind === 'int' ? `(${k} // ${n})` : `(hash(${k}) % ${n})`;
};
/** The delivered rows that count in a block's checksum: those delivered or in doubt (not only parked). */
const COUNTED = '(fp IS NOT NULL OR sent_fp IS NOT NULL)';
/** An integer as a key string is written: up to 18 digits, so that it fits a BIGINT. */
const CANONICAL_INT = /^-?(0|[1-9][0-9]{0,17})$/;
/** Acks moved into the ack log between folds: a long stream folds as it goes, so the log stays small. */
const FOLD_EVERY = 250_000;
/** Acks the journal holds before they are moved into DuckDB even though nothing reads the state. */
const MOVE_EVERY = 10_000;
const STALE = 0n; // fingerprint of a delivered row after a mapping change: always differs
const PARKED_DELETE = 1n; // parked fingerprint of a delete the destination refused
const PAGE = 5000;
/** The columns of the changes table that describe a change rather than hold the row. */
const CHANGE_FIELDS = ['__op', '__key', '__new_fp', '__old_fp', '__dest_id', '__sent_fp', '__sent_match'];

const q = (id: string) => `"${id.replaceAll('"', '""')}"`;

/**
 * Names the fingerprints a state was diffed by. DuckDB's hash() is stable for one DuckDB
 * version; core's fingerprint() is named by its value for a fixed row, so a change of
 * either algorithm re-sends every row once (as updates) rather than risking a silent miss.
 */
async function fingerprintEngine(conn: DuckDBConnection, model: SqlModel): Promise<string> {
  if (!Array.isArray(model.fingerprint)) {
    return `outflow-fp-2 ${fingerprint({ s: 'a', n: 1.5, b: true, z: null, o: { x: [1, 'y'] } }, { k: 'm' })}`;
  }
  return `duckdb ${String((await conn.runAndReadAll(`SELECT library_version FROM pragma_version()`)).getRows()[0]![0])}`;
}

/**
 * The diff engine: the delivered state (key, fingerprint, destination id, parked
 * fingerprint) in a DuckDB file, compared with a model relation entirely in SQL. Only rows
 * that changed leave DuckDB.
 *
 * Large models are compared in key blocks first: per block of keys both sides are reduced
 * to an XOR of row hashes (a cheap grouped aggregate), and only the blocks whose checksums
 * differ are joined row by row. At low change rates that skips the big hash join, which is
 * what dominates a plain diff at scale. The block size follows the previous run's change
 * rate; at high change rates one join is cheaper and is used instead.
 *
 * Acknowledgements are appended to a journal file (durable in well under a millisecond, see
 * AckJournal), moved in bulk into an ack log table before a diff or plan reads the state and
 * every {@link MOVE_EVERY} acks, and folded into the delivered table before the next diff,
 * every {@link FOLD_EVERY} acks and at close, so the big table is never updated row by row.
 * A stream's reads of keys not held in memory do not wait for a move (see lookupNow). A
 * read-only store merges a log left unfolded (and a journal a crashed run left) into a
 * temporary copy instead.
 */
export class SqlDiffStore implements DiffStore {
  stats: DiffStats = { method: 'join' };
  private rows = 0;
  private seq = 0;
  private readView: string | undefined;
  /** The journal acks are written to (undefined when read-only). */
  private journal: AckJournal | undefined;
  /** The ack log as reads see it: the table, with a journal left by a crash when read-only. */
  private acks = 'st.acks';
  /** Acks moved into the ack log since it was last folded. */
  private sinceFold = 0;
  /** Set when acks could not be moved from the journal: nothing more is trusted to this store. */
  private broken: unknown;
  /** The state of keys a stream touched lately, kept in step with every ack (see KeyStates). */
  private readonly keyStates = new KeyStates();
  /**
   * The highest key written as an integer (canonically: no sign but `-`, no leading zero)
   * that the state holds anywhere, once a stream asked: an integer key above it is absent.
   * Serial keys then need no read for the rows a stream sees inserted.
   */
  private maxIntKey: bigint | undefined;
  /**
   * Per key, the acks recorded since the journal was last moved into DuckDB, in order: a
   * stream's read of keys not held takes DuckDB's answer and applies these on top, so that
   * reading never waits for a move (see lookupNow).
   */
  private unmoved = new Map<string, JournalRow[]>();
  /** A move of the journal is queued (see apply). */
  private moveQueued = false;
  private constructor(
    private readonly instance: DuckDBInstance,
    readonly conn: DuckDBConnection,
    private model: SqlModel,
    private readonly o: SqlDiffOptions,
  ) {}

  static async open(model: SqlModel, o: SqlDiffOptions): Promise<SqlDiffStore> {
    mkdirSync(o.tempDir, { recursive: true });
    const instance = await DuckDBInstance.create(':memory:', {
      temp_directory: o.tempDir,
      memory_limit: o.memoryLimit ?? '1200MB',
      preserve_insertion_order: 'false',
      ...(o.threads ? { threads: String(o.threads) } : {}),
    });
    const conn = await instance.connect();
    const store = new SqlDiffStore(instance, conn, model, o);
    try {
      if (o.readOnly && !existsSync(o.stateFile)) {
        await conn.run(`ATTACH ':memory:' AS st`);
      } else {
        if (!o.readOnly) mkdirSync(dirname(o.stateFile), { recursive: true });
        await conn.run(`ATTACH '${o.stateFile.replaceAll("'", "''")}' AS st ${o.readOnly ? '(READ_ONLY)' : ''}`);
      }
      await o.setup?.(conn);
      if (o.keyKind) store.model = { ...store.model, key: o.keyKind() };
      const kt = store.model.key.kind === 'int' ? 'BIGINT' : 'VARCHAR';
      if (!o.readOnly || !existsSync(o.stateFile)) {
        await conn.run(`CREATE TABLE IF NOT EXISTS st.meta (k VARCHAR PRIMARY KEY, v VARCHAR)`);
        await conn.run(`CREATE TABLE IF NOT EXISTS st.delivered (k ${kt}, fp UBIGINT, dest_id VARCHAR, parked_fp UBIGINT, sent_fp UBIGINT, sent_match VARCHAR)`);
        await conn.run(`CREATE TABLE IF NOT EXISTS st.acks (seq BIGINT, k ${kt}, kind VARCHAR, fp UBIGINT, dest_id VARCHAR, m VARCHAR, pos VARCHAR)`);
        // Per key, its latest settled stream change (see DiffStore.positions).
        await conn.run(`CREATE TABLE IF NOT EXISTS st.positions (k ${kt}, pos VARCHAR, gone BOOLEAN)`);
        // Per finest block of keys, entries whose XOR is the delivered rows' checksum (see stateBlocks).
        await conn.run(`CREATE TABLE IF NOT EXISTS st.blocks (b BIGINT, x UBIGINT)`);
        // State written before the match of writes in doubt and stream positions were kept.
        if (!o.readOnly) {
          await conn.run(`ALTER TABLE st.delivered ADD COLUMN IF NOT EXISTS sent_match VARCHAR`);
          await conn.run(`ALTER TABLE st.acks ADD COLUMN IF NOT EXISTS m VARCHAR`);
          await conn.run(`ALTER TABLE st.acks ADD COLUMN IF NOT EXISTS pos VARCHAR`);
        }
      }
      const existing = await store.getMetaNow('key_kind');
      if (existing !== undefined && existing !== store.model.key.kind) {
        throw new OutflowError(
          'OUTFLOW_LEDGER',
          `the delivered state ${o.stateFile} was keyed as ${existing}, but the model's key is now ${store.model.key.kind}; remove that file to resync`,
        );
      }
      if (!o.readOnly) {
        await store.setMetaNow('key_kind', store.model.key.kind);
        const engine = await fingerprintEngine(conn, store.model);
        const before = await store.getMetaNow('fingerprint_engine');
        if (before !== undefined && before !== engine) await store.markAllStaleNow();
        await store.setMetaNow('fingerprint_engine', engine);
      }
      await store.openJournal();
    } catch (err) {
      store.closeQuietly();
      if (isOutflowError(err)) throw err;
      const msg = describeError(err);
      throw new OutflowError(
        /lock/i.test(msg) ? 'OUTFLOW_LOCKED' : 'OUTFLOW_LEDGER',
        /lock/i.test(msg)
          ? `the diff state ${o.stateFile} is in use by another outflow process; wait for it to finish`
          : `cannot open the diff state ${o.stateFile}: ${msg}`,
        { cause: err },
      );
    }
    return store;
  }

  private chain: Promise<unknown> = Promise.resolve();

  /**
   * One operation at a time on the connection (DuckDB connections are not re-entrant), each
   * seeing every ack: the journal is moved into the ack log first.
   */
  private locked<T>(fn: () => Promise<T>, move = true): Promise<T> {
    const next = this.chain.then(async () => {
      if (move) await this.moveJournal();
      return fn();
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  /**
   * Reads back what a journal left by an earlier process holds: a writable store moves it
   * into the ack log and starts a fresh journal; a read-only one reads it from a temporary
   * table alongside the ack log.
   */
  private async openJournal(): Promise<void> {
    const left = readJournal(this.o.stateFile);
    const kt = this.model.key.kind === 'int' ? 'BIGINT' : 'VARCHAR';
    if (this.o.readOnly) {
      if (left.length === 0) return;
      await this.conn.run(`CREATE OR REPLACE TEMP TABLE journal_acks (seq BIGINT, k ${kt}, kind VARCHAR, fp UBIGINT, dest_id VARCHAR, m VARCHAR, pos VARCHAR)`);
      await this.appendRows('journal_acks', 'main', 'temp', left);
      this.acks = '(SELECT * FROM st.acks UNION ALL SELECT * FROM journal_acks)';
      return;
    }
    await this.appendRows('acks', 'main', 'st', left);
    this.sinceFold += left.length;
    this.journal = new AckJournal(this.o.stateFile);
    this.journal.clear();
  }

  /** Appends journal rows to a table through DuckDB's appender, committed as one. */
  private async appendRows(table: string, schema: string, catalog: string, rows: JournalRow[]): Promise<void> {
    if (rows.length === 0) return;
    const appender = await this.conn.createAppender(table, schema, catalog);
    try {
      const int = this.model.key.kind === 'int';
      for (const [seq, k, kind, fp, dest, m, pos] of rows) {
        appender.appendBigInt(BigInt(seq));
        if (int) appender.appendBigInt(BigInt(k));
        else appender.appendVarchar(k);
        appender.appendVarchar(kind);
        if (fp === null) appender.appendNull();
        else appender.appendUBigInt(BigInt(fp));
        if (dest === null) appender.appendNull();
        else appender.appendVarchar(dest);
        if (m === null) appender.appendNull();
        else appender.appendVarchar(m);
        if (pos === null) appender.appendNull();
        else appender.appendVarchar(pos);
        appender.endRow();
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
  }

  /** Moves the journal's acks into the ack log (one commit), folding it every {@link FOLD_EVERY} acks. */
  private async moveJournal(): Promise<void> {
    if (this.broken !== undefined) throw this.brokenError();
    const journal = this.journal;
    if (journal === undefined || journal.size === 0) return;
    const { file, count } = journal.take();
    this.unmoved = new Map();
    try {
      // DuckDB reads the file itself, on its own threads: the acks are not handed over one
      // value at a time from JavaScript.
      const k = this.model.key.kind === 'int' ? 'j[2]::BIGINT' : 'j[2]';
      const r = await this.conn.run(
        `INSERT INTO st.acks SELECT j[1]::BIGINT, ${k}, j[3], j[4]::UBIGINT, j[5], j[6], j[7]
         FROM read_json('${file.replaceAll("'", "''")}', format = 'newline_delimited', records = false, columns = {j: 'VARCHAR[]'})`,
      );
      if (Number(r.rowsChanged) !== count) throw new Error(`the journal ${file} held ${Number(r.rowsChanged)} acks where ${count} were written`);
      await journal.moved();
    } catch (err) {
      // The acks stay in the journal file, read back when the state is next opened.
      this.broken = err;
      throw this.brokenError();
    }
    this.sinceFold += count;
    if (this.sinceFold >= FOLD_EVERY) await this.foldNow();
  }

  private brokenError(): OutflowError {
    return new OutflowError('OUTFLOW_LEDGER', `cannot record delivered state in ${this.o.stateFile}: ${describeError(this.broken)}; what was recorded is kept in its journal and read back when the sync next runs`, { cause: this.broken });
  }

  /** Sets the fingerprinted columns (a pushdown store learns them once the model is described). */
  setFingerprint(columns: string[]): void {
    this.model = { ...this.model, fingerprint: columns };
  }

  getMeta(k: string): Promise<string | undefined> {
    return this.locked(() => this.getMetaNow(k));
  }

  private async getMetaNow(k: string): Promise<string | undefined> {
    const rows = (await this.conn.runAndReadAll(`SELECT v FROM st.meta WHERE k = $1`, [k])).getRows();
    return rows.length ? String(rows[0]![0]) : undefined;
  }

  setMeta(k: string, v: string): Promise<void> {
    return this.locked(() => this.setMetaNow(k, v));
  }

  private async setMetaNow(k: string, v: string): Promise<void> {
    await this.conn.run(`INSERT OR REPLACE INTO st.meta VALUES ($1, $2)`, [k, v]);
  }

  markAllStale(): Promise<number> {
    return this.locked(() => this.markAllStaleNow());
  }

  private async markAllStaleNow(): Promise<number> {
    this.keyStates.clear();
    await this.foldNow();
    const r = await this.conn.run(`UPDATE st.delivered SET fp = ${STALE}, parked_fp = NULL WHERE fp IS NOT NULL`);
    await this.dropBlocks();
    return Number(r.rowsChanged);
  }

  unpark(keys?: string[]): Promise<number> {
    return this.locked(() => this.unparkNow(keys));
  }

  private async unparkNow(keys?: string[]): Promise<number> {
    this.keyStates.clear();
    await this.foldNow();
    if (keys === undefined) {
      return Number((await this.conn.run(`UPDATE st.delivered SET parked_fp = NULL WHERE parked_fp IS NOT NULL`)).rowsChanged);
    }
    let n = 0;
    for (const key of keys) {
      n += Number((await this.conn.run(`UPDATE st.delivered SET parked_fp = NULL WHERE k = ${this.keyParam()}`, [key])).rowsChanged);
    }
    return n;
  }

  computeChanges(): Promise<{ insert: number; update: number; delete: number }> {
    return this.locked(() => this.computeChangesNow());
  }

  private async computeChangesNow(): Promise<{ insert: number; update: number; delete: number }> {
    const dl = await this.deliveredNow();
    const m = this.model;
    const keyExpr = m.key.kind === 'int' ? q(m.key.column) : m.key.expr;
    const fpExpr = !Array.isArray(m.fingerprint)
      ? q(m.fingerprint.column)
      : m.fingerprint.length
        ? `hash(${m.fingerprint.map(q).join(', ')})`
        : '0::UBIGINT';
    await this.conn.run(`CREATE OR REPLACE TEMP VIEW mv AS SELECT ${keyExpr} AS __k, ${fpExpr} AS __fp, * FROM (${m.relation})`);
    await this.conn.run(`CREATE OR REPLACE TEMP VIEW mraw AS SELECT ${keyExpr} AS __k, NULL::UBIGINT AS __fp, * FROM (${m.relation})`);
    const delivered = Number((await this.conn.runAndReadAll(`SELECT count(*) FROM ${dl}`)).getRows()[0]![0]);
    const last = Number((await this.getMetaNow('change_fraction')) ?? 'NaN');

    // 1. Which keys to compare: all of them, or only those in blocks whose checksums differ.
    let keys = 'mv';
    let state = dl;
    // Where the changed rows' columns are read from: the model again (without hashing), or
    // the rows of the differing blocks, kept from the second pass.
    let payload = 'mraw';
    if (delivered === 0) {
      this.stats = { method: 'full' };
    } else if (Number.isFinite(last) && last > 0.04) {
      this.stats = { method: 'join' };
    } else {
      const p = Number.isFinite(last) ? Math.max(last, 1e-5) : 0.01;
      const blockSize = Math.min(256, Math.max(8, 2 ** Math.round(Math.log2(0.16 / p))));
      // Text keys are hashed into a power of two of buckets, so that the blocks stay the same
      // while the number of rows drifts, and their checksums can be kept.
      const textBuckets = (size: number) => 2 ** Math.max(0, Math.round(Math.log2(delivered / size)));
      const buckets = m.key.kind === 'int' ? Math.max(1, Math.ceil(delivered / blockSize)) : textBuckets(blockSize);
      const blockOf = (k: string) => (m.key.kind === 'int' ? `(${k} // ${blockSize})` : `(hash(${k}) % ${buckets})`);
      // The state's checksums per block, merged from those of its finest blocks (numbered b).
      const sb =
        m.key.kind === 'int'
          ? await this.stateBlocks(dl, delivered, { kind: 'int', n: 8 }, `(b // ${blockSize / 8})`)
          : await this.stateBlocks(dl, delivered, { kind: 'text', n: textBuckets(8) }, `(b % ${buckets})`);
      // A block absent on one side has the checksum 0 (no rows).
      await this.conn.run(`CREATE OR REPLACE TEMP TABLE db AS
        WITH mb AS (SELECT ${blockOf('__k')} AS b, bit_xor(${checksum('__k', '__fp')}) AS x FROM mv GROUP BY ALL)
        SELECT coalesce(mb.b, sb.b) AS b FROM mb FULL OUTER JOIN ${sb} sb ON mb.b = sb.b WHERE coalesce(mb.x, 0) <> coalesce(sb.x, 0)`);
      const changedBlocks = Number((await this.conn.runAndReadAll(`SELECT count(*) FROM db`)).getRows()[0]![0]);
      this.stats = { method: 'blocks', blockSize, blocksChanged: Math.min(1, changedBlocks / buckets) };
      // The rows of those blocks, hashed after the join: only they are fingerprinted again.
      await this.conn.run(`CREATE OR REPLACE TEMP TABLE mk AS
        SELECT __k, ${fpExpr} AS __fp, * EXCLUDE (__k, __fp) FROM (SELECT mraw.* FROM mraw SEMI JOIN db ON ${blockOf('mraw.__k')} = db.b)`);
      keys = 'mk';
      payload = 'mk';
      state = `(SELECT * FROM ${dl} d SEMI JOIN db ON ${blockOf('d.k')} = db.b)`;
    }

    // 2. Duplicate keys: every duplicate changes its block's checksum, so the compared keys
    //    hold all of them.
    const dups = (
      await this.conn.runAndReadAll(`SELECT __k::VARCHAR FROM ${keys} GROUP BY __k HAVING count(*) > 1 ORDER BY 1 LIMIT 5`)
    )
      .getRows()
      .map((r) => String(r[0]));
    if (dups.length) {
      throw new OutflowError(
        'OUTFLOW_MODEL_KEY',
        `the model's primary key is not unique; duplicated: ${dups.join(', ')}. Nothing was sent.`,
        { details: { duplicates: dups } },
      );
    }

    // 3. The changed keys, then their rows: only changed rows are materialized.
    await this.conn.run(`CREATE OR REPLACE TEMP TABLE ck AS
      SELECT CASE WHEN m.__k IS NULL THEN 'delete' WHEN d.fp IS NULL THEN 'insert' ELSE 'update' END AS __op,
        coalesce(m.__k, d.k) AS __key, m.__fp AS __new_fp, d.fp AS __old_fp, d.dest_id AS __dest_id, d.sent_fp AS __sent_fp, d.sent_match AS __sent_match
      FROM (SELECT __k, __fp FROM ${keys}) m FULL OUTER JOIN ${state} d ON m.__k = d.k
      WHERE (m.__k IS NULL AND (d.fp IS NOT NULL OR d.sent_fp IS NOT NULL) AND d.parked_fp IS DISTINCT FROM ${PARKED_DELETE})
         OR (m.__k IS NOT NULL AND d.k IS NULL)
         OR (m.__k IS NOT NULL AND d.sent_fp IS NOT NULL AND m.__fp IS DISTINCT FROM d.parked_fp)
         OR (m.__k IS NOT NULL AND m.__fp IS DISTINCT FROM d.fp AND m.__fp IS DISTINCT FROM d.parked_fp)`);
    const nullKeys = Number((await this.conn.runAndReadAll(`SELECT count(*) FROM ck WHERE __key IS NULL`)).getRows()[0]![0]);
    if (nullKeys) {
      throw new OutflowError('OUTFLOW_MODEL_KEY', `${nullKeys} rows of the model have a null primary key; every row needs one. Nothing was sent.`);
    }
    const exclude = ['__k', '__fp', ...(m.hidden ?? [])].map(q).join(', ');
    await this.conn.run(`CREATE OR REPLACE TEMP TABLE changes AS
      SELECT ck.*, m.* EXCLUDE (${exclude})
      FROM ck LEFT JOIN ${payload} m ON m.__k = ck.__key`); // a deleted key is not in the model: no payload

    const out = { insert: 0, update: 0, delete: 0 };
    for (const [op, n] of (await this.conn.runAndReadAll(`SELECT __op, count(*) FROM ck GROUP BY ALL`)).getRows()) {
      out[op as keyof typeof out] = Number(n);
    }
    this.rows = out.insert + out.update + out.delete;
    if (!this.o.readOnly && delivered > 0) {
      const modelRows = Math.max(1, delivered + out.insert - out.delete);
      this.stats.modelRows = modelRows;
      await this.setMetaNow('change_fraction', String(this.rows / modelRows));
    }
    return out;
  }

  async *changes(): AsyncGenerator<DiffRow[]> {
    if (this.rows === 0) return;
    const meta = CHANGE_FIELDS.map((f) => `${f}::VARCHAR`);
    const reader = await this.locked(async () => {
      const shape = await this.conn.runAndReadAll(`SELECT * FROM changes LIMIT 0`);
      const types = shape.columnTypes();
      const columns = shape.columnNames().map((name, i) => ({ name, type: types[i]! }));
      return new ChangeReader(meta, columns.filter((c) => !CHANGE_FIELDS.includes(c.name)), this.o.convert);
    });
    // The table's row ids run from 0 in the order it was written: a page is a range of them.
    for (let from = 0; from < this.rows; from += PAGE) {
      const page = await this.locked(() =>
        this.conn.runAndReadAll(`SELECT ${reader.selectList()} FROM changes WHERE rowid BETWEEN ${from} AND ${from + PAGE - 1} ORDER BY rowid`),
      );
      yield reader.read(
        page,
        (m) => m[0] !== 'delete',
        (m, row): DiffRow => ({
          op: m[0] as DiffRow['op'],
          key: m[1]!,
          fp: m[2] ?? null,
          row: row as Row | null,
          oldFp: m[3] ?? null,
          destId: m[4] ?? null,
          sentFp: m[5] ?? null,
          sentMatch: m[6] == null ? null : (JSON.parse(m[6]) as Row),
        }),
      );
    }
  }

  /**
   * Records acks in the journal: durable when it resolves, in the order of the calls, and
   * seen by every read after it.
   */
  apply(acks: Ack[]): Promise<void> {
    if (acks.length === 0) return Promise.resolve();
    if (this.o.readOnly) return Promise.reject(new OutflowError('OUTFLOW_INTERNAL', 'a dry run tried to record delivered state'));
    if (this.broken !== undefined) return Promise.reject(this.brokenError());
    const rows: JournalRow[] = [];
    for (const a of acks) {
      if (this.model.key.kind === 'int' && !/^-?\d{1,19}$/.test(a.key)) {
        return Promise.reject(new OutflowError('OUTFLOW_LEDGER', `cannot record delivered state: the key ${JSON.stringify(a.key)} is not an integer, as the model's key is`));
      }
      const fp = a.kind === 'delivered' || a.kind === 'parked' || a.kind === 'sent' ? a.fp : null;
      rows.push([
        String(++this.seq + Date.now() * 1000),
        a.key,
        a.kind,
        fp === null ? (a.kind === 'parked' ? String(PARKED_DELETE) : null) : fp,
        a.kind === 'delivered' ? (a.destId ?? null) : null,
        a.kind === 'sent' && a.match ? JSON.stringify(a.match) : null,
        a.kind !== 'sent' && a.pos !== undefined ? a.pos : null,
      ]);
    }
    let durable: Promise<void>;
    try {
      durable = this.journal!.append(rows);
    } catch (err) {
      return Promise.reject(new OutflowError('OUTFLOW_LEDGER', `cannot record delivered state: ${describeError(err)}`, { cause: err }));
    }
    // Reads see the acks at once, in order; a crash before they are durable loses them with
    // everything that waited on them (checkpoints wait).
    for (const r of rows) {
      const above = this.above(r[1]);
      this.keyStates.apply(r, above);
      if (above) this.maxIntKey = BigInt(r[1]);
      const held = this.unmoved.get(r[1]);
      if (held) held.push(r);
      else this.unmoved.set(r[1], [r]);
    }
    // Reads of a stream do not move the journal: it is moved once it holds MOVE_EVERY acks.
    if (this.journal!.size >= MOVE_EVERY && !this.moveQueued) {
      this.moveQueued = true;
      this.locked(async () => {
        this.moveQueued = false;
      }).catch(() => undefined);
    }
    return durable.catch((err: unknown) => {
      this.broken ??= err;
      throw new OutflowError('OUTFLOW_LEDGER', `cannot record delivered state: ${describeError(err)}`, { cause: err });
    });
  }

  /** Whether a key is an integer above every integer key the state holds, so that it holds nothing of it. */
  private above(key: string): boolean {
    return this.maxIntKey !== undefined && CANONICAL_INT.test(key) && BigInt(key) > this.maxIntKey;
  }

  /**
   * The state of `keys` for a stream: from the keys held (or known absent) at once, the rest
   * read from DuckDB in one pass (and held from then on).
   */
  private async keyStatesOf(keys: string[]): Promise<Map<string, KeyState>> {
    const out = new Map<string, KeyState>();
    const missing: string[] = [];
    for (const k of keys) {
      const held = this.keyStates.get(k);
      if (held !== undefined) out.set(k, held);
      else if (this.above(k)) out.set(k, { row: null, pos: null });
      else missing.push(k);
    }
    if (missing.length === 0) return out;
    const read = await this.locked(() => this.lookupNow(missing), false);
    for (const [k, v] of read) out.set(k, v);
    return out;
  }

  /**
   * Reads the state of `keys` from DuckDB, in one query, without moving the journal: the acks
   * not moved yet (including those recorded while the read runs) are applied on top, in
   * order, before the keys are held.
   */
  private async lookupNow(keys: string[]): Promise<Map<string, KeyState>> {
    const out = new Map<string, KeyState>();
    for (const k of keys) out.set(k, { row: null, pos: null });
    if (this.maxIntKey === undefined) {
      // A key stored as text that equals a canonical integer is one too: all are counted.
      const int = `CASE WHEN regexp_full_match(k::VARCHAR, '${CANONICAL_INT.source.slice(1, -1)}') THEN k::VARCHAR::BIGINT END`;
      const max = (
        await this.conn.runAndReadAll(`SELECT max(m) FROM (SELECT max(${int}) AS m FROM st.delivered UNION ALL SELECT max(${int}) FROM st.acks UNION ALL SELECT max(${int}) FROM st.positions)`)
      ).getRows()[0]![0];
      let known = max === null ? -(2n ** 63n) : BigInt(max as bigint);
      for (const rows of this.unmoved.values()) for (const r of rows) if (CANONICAL_INT.test(r[1]) && BigInt(r[1]) > known) known = BigInt(r[1]);
      this.maxIntKey = known;
    }
    const rows = (
      await this.conn.runAndReadAll(
        `WITH q AS (SELECT DISTINCT k FROM (VALUES ${this.keyList(keys, true)}) v(k) WHERE k IS NOT NULL),
         a AS (${acked('st.acks')} WHERE k IN (SELECT k FROM q) GROUP BY k), merged AS (${MERGED}),
         r AS (SELECT k, fp, dest_id, parked_fp, sent_fp, sent_match FROM st.delivered WHERE k IN (SELECT k FROM q) AND k NOT IN (SELECT k FROM a)
               UNION ALL SELECT k, fp, dest_id, parked_fp, sent_fp, sent_match FROM merged),
         pa AS (${latestPositions('st.acks')} AND k IN (SELECT k FROM q) GROUP BY k),
         p AS (SELECT k, pos, gone FROM pa UNION ALL SELECT k, pos, gone FROM st.positions WHERE k IN (SELECT k FROM q) AND k NOT IN (SELECT k FROM pa))
         SELECT k::VARCHAR, r.k IS NOT NULL, r.fp::VARCHAR, r.dest_id, r.parked_fp::VARCHAR, r.sent_fp::VARCHAR, r.sent_match, p.pos, p.gone
         FROM r FULL JOIN p USING (k)`,
      )
    ).getRows();
    const str = (v: unknown) => (v === null ? null : String(v));
    for (const r of rows) {
      const state = out.get(String(r[0]));
      if (state === undefined) continue;
      if (r[1] === true) state.row = { fp: str(r[2]), destId: str(r[3]), parkedFp: str(r[4]), sentFp: str(r[5]), sentMatch: str(r[6]) };
      if (r[7] !== null) state.pos = { pos: String(r[7]), gone: r[8] === true };
    }
    for (const [k, state] of out) {
      this.keyStates.set(k, state);
      for (const r of this.unmoved.get(k) ?? []) this.keyStates.apply(r);
    }
    return new Map([...out.keys()].map((k) => [k, this.keyStates.get(k) ?? out.get(k)!]));
  }

  /** Folds the ack log into the delivered table, in one transaction. */
  fold(): Promise<void> {
    return this.locked(() => this.foldNow());
  }

  private async foldNow(): Promise<void> {
    if (this.o.readOnly) return;
    const pending = Number((await this.conn.runAndReadAll(`SELECT count(*) FROM st.acks`)).getRows()[0]![0]);
    this.sinceFold = 0;
    if (pending === 0) return;
    failpoint('state.before-fold');
    await this.conn.run('BEGIN TRANSACTION');
    try {
      await this.mergeAcks();
      await this.updateBlocks();
      await this.conn.run(`DELETE FROM st.delivered WHERE k IN (SELECT k FROM a)`);
      await this.conn.run(`INSERT INTO st.delivered SELECT k, fp, dest_id, parked_fp, sent_fp, sent_match FROM merged`);
      await this.conn.run(`CREATE OR REPLACE TEMP TABLE p AS ${latestPositions('st.acks')} GROUP BY k`);
      await this.conn.run(`DELETE FROM st.positions WHERE k IN (SELECT k FROM p)`);
      await this.conn.run(`INSERT INTO st.positions SELECT k, pos, gone FROM p`);
      await this.conn.run(`DELETE FROM st.acks`);
      failpoint('state.inside-fold');
      await this.conn.run('COMMIT');
    } catch (err) {
      await this.conn.run('ROLLBACK').catch(() => undefined);
      throw new OutflowError('OUTFLOW_LEDGER', `cannot fold delivered state: ${describeError(err)}`, { cause: err });
    }
  }

  /**
   * The delivered rows' checksums per block of keys, `coarse` of the finest blocks (an
   * expression of their number `b`). The finest blocks' checksums (8 keys for integer keys;
   * for text keys, a power of two of hash buckets near one per 8 rows) are kept in the state
   * and brought up to date by every fold, so that a diff hashes only the model; the blocks a
   * diff compares, sized by the change rate, are unions of them. They are computed from the
   * delivered rows when none are kept (or the number of text buckets moved), and then kept;
   * the entries folds appended are merged here once they are many. A read-only store with
   * acks not yet folded computes them from its merged copy.
   */
  private async stateBlocks(dl: string, delivered: number, fine: { kind: 'int' | 'text'; n: number }, coarse: string): Promise<string> {
    const spec = `${fine.kind} ${fine.n}`;
    const fresh = `SELECT ${fineBlock(spec, 'k')} AS b, bit_xor(${CHECKSUM}) AS x FROM ${dl} WHERE ${COUNTED} GROUP BY ALL`;
    const merged = (blocks: string) => `(SELECT ${coarse} AS b, bit_xor(x) AS x FROM ${blocks} GROUP BY ALL)`;
    const kept = (await this.getMetaNow('block_checksums')) === spec;
    if (dl !== 'st.delivered' || (!kept && this.o.readOnly)) return merged(`(${fresh})`);
    const entries = Number((await this.getMetaNow('block_entries')) ?? '0');
    if (kept && (this.o.readOnly || entries <= delivered / 16)) return merged('st.blocks');
    // Computed afresh, or the entries appended by folds merged into one per block.
    await this.conn.run(`CREATE OR REPLACE TEMP TABLE fb AS ${kept ? `SELECT b, bit_xor(x) AS x FROM st.blocks GROUP BY b HAVING bit_xor(x) <> 0` : fresh}`);
    await this.conn.run('BEGIN TRANSACTION');
    try {
      await this.conn.run(`DELETE FROM st.blocks`);
      await this.conn.run(`INSERT INTO st.blocks SELECT b, x FROM fb`);
      await this.setMetaNow('block_checksums', spec);
      await this.setMetaNow('block_entries', '0');
      await this.conn.run('COMMIT');
    } catch (err) {
      await this.conn.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
    return merged('st.blocks');
  }

  /**
   * Inside a fold, after {@link mergeAcks}: appends to the kept block checksums, per block, the
   * XOR of the rows the acked keys had and the rows they have now. A block's checksum is the
   * XOR of all its entries, so nothing is updated in place; the entries are merged into one
   * per block once they grow by a sixteenth of the delivered rows (see stateBlocks).
   */
  private async updateBlocks(): Promise<void> {
    const blocks = await this.getMetaNow('block_checksums');
    if (blocks === undefined) return;
    const r = await this.conn.run(`INSERT INTO st.blocks
      SELECT b, bit_xor(x) AS x FROM (
        SELECT ${fineBlock(blocks, 'k')} AS b, ${CHECKSUM} AS x FROM st.delivered WHERE k IN (SELECT k FROM a) AND ${COUNTED}
        UNION ALL SELECT ${fineBlock(blocks, 'k')}, ${CHECKSUM} FROM merged WHERE ${COUNTED}
      ) GROUP BY b HAVING bit_xor(x) <> 0`);
    const entries = Number((await this.getMetaNow('block_entries')) ?? '0') + Number(r.rowsChanged);
    await this.setMetaNow('block_entries', String(entries));
  }

  /** Forgets the kept block checksums (after a change of the delivered rows that no fold made). */
  private async dropBlocks(): Promise<void> {
    await this.conn.run(`DELETE FROM st.meta WHERE k IN ('block_checksums', 'block_entries')`);
    await this.conn.run(`DELETE FROM st.blocks`);
  }

  /** Reduces the ack log to temporary tables: `a` (the keys acked) and `merged` (their rows now). */
  private async mergeAcks(): Promise<void> {
    await this.conn.run(`CREATE OR REPLACE TEMP TABLE a AS ${acked(this.acks)} GROUP BY k`);
    await this.conn.run(`CREATE OR REPLACE TEMP TABLE merged AS ${MERGED}`);
  }

  /**
   * The delivered table as of every ack: folded first in a writable store; in a read-only
   * one, acks that a crashed run left unfolded are merged into a temporary copy.
   */
  private async deliveredNow(): Promise<string> {
    if (!this.o.readOnly) {
      await this.foldNow();
      return 'st.delivered';
    }
    if (this.readView === undefined) {
      const pending = Number((await this.conn.runAndReadAll(`SELECT count(*) FROM ${this.acks}`)).getRows()[0]![0]);
      this.readView = 'st.delivered';
      if (pending > 0) {
        await this.mergeAcks();
        await this.conn.run(`CREATE OR REPLACE TEMP TABLE delivered_now AS
          SELECT * FROM st.delivered ANTI JOIN a USING (k) UNION ALL SELECT k, fp, dest_id, parked_fp, sent_fp, sent_match FROM merged`);
        this.readView = 'delivered_now';
      }
    }
    return this.readView;
  }

  tidy(): Promise<string[]> {
    return this.locked(() => this.tidyNow());
  }

  private async tidyNow(): Promise<string[]> {
    this.keyStates.clear();
    await this.foldNow();
    const [parkedOnly, parked] = (
      await this.conn.runAndReadAll(
        `SELECT count(*) FILTER (WHERE fp IS NULL AND sent_fp IS NULL), count(*) FILTER (WHERE parked_fp IS NOT NULL) FROM st.delivered`,
      )
    ).getRows()[0]!.map(Number) as [number, number];
    if (parkedOnly + parked === 0) return [];
    const gone = (
      await this.conn.runAndReadAll(
        `SELECT d.k::VARCHAR FROM (SELECT k FROM st.delivered WHERE fp IS NULL AND sent_fp IS NULL) d ANTI JOIN mv m ON m.__k = d.k`,
      )
    )
      .getRows()
      .map((r) => String(r[0]));
    if (gone.length) await this.conn.run(`DELETE FROM st.delivered WHERE fp IS NULL AND sent_fp IS NULL AND k NOT IN (SELECT __k FROM mv)`);
    const back = (
      await this.conn.runAndReadAll(
        `SELECT d.k::VARCHAR FROM (SELECT k, fp FROM st.delivered WHERE parked_fp IS NOT NULL) d JOIN mv m ON m.__k = d.k AND m.__fp = d.fp`,
      )
    )
      .getRows()
      .map((r) => String(r[0]));
    for (const key of back) {
      await this.conn.run(`UPDATE st.delivered SET parked_fp = NULL WHERE k = ${this.keyParam()}`, [key]);
    }
    return [...gone, ...back];
  }

  inDoubt(): Promise<{ key: string; fp: string }[]> {
    return this.locked(async () => {
      const dl = await this.deliveredNow();
      const rows = (await this.conn.runAndReadAll(`SELECT k::VARCHAR, sent_fp::VARCHAR FROM ${dl} WHERE sent_fp IS NOT NULL`)).getRows();
      return rows.map((r) => ({ key: String(r[0]), fp: String(r[1]) }));
    });
  }

  /** What the destination knows these keys by (see DiffStore.addresses). */
  addresses(keys: string[]): Promise<Map<string, RecordAddress>> {
    if (keys.length === 0) return Promise.resolve(new Map());
    if (!this.o.readOnly) {
      return this.keyStatesOf(keys).then((states) => {
        const out = new Map<string, RecordAddress>();
        for (const [k, { row }] of states) {
          if (row === null || (row.fp === null && row.sentFp === null && row.destId === null)) continue;
          out.set(k, { destId: row.destId, match: row.sentMatch === null ? null : (JSON.parse(row.sentMatch) as Row) });
        }
        return out;
      });
    }
    // Read-only (a plan): the delivered table as of every ack, merged into a temporary copy once.
    return this.locked(async () => {
      const dl = await this.deliveredNow();
      const out = new Map<string, RecordAddress>();
      for (let i = 0; i < keys.length; i += 1000) {
        const list = this.keyList(keys.slice(i, i + 1000));
        const rows = (
          await this.conn.runAndReadAll(`SELECT k::VARCHAR, dest_id, sent_match FROM ${dl} WHERE (fp IS NOT NULL OR sent_fp IS NOT NULL OR dest_id IS NOT NULL) AND k IN (${list})`)
        ).getRows();
        for (const r of rows) {
          out.set(String(r[0]), { destId: r[1] === null ? null : String(r[1]), match: r[2] === null ? null : (JSON.parse(String(r[2])) as Row) });
        }
      }
      return out;
    });
  }

  /** Per key, its latest settled stream change (see DiffStore.positions). */
  positions(keys: string[]): Promise<Map<string, SettledChange>> {
    if (keys.length === 0 || this.o.readOnly) return Promise.resolve(new Map());
    return this.keyStatesOf(keys).then((states) => {
      const out = new Map<string, SettledChange>();
      for (const [k, { pos }] of states) if (pos !== null) out.set(k, { ...pos });
      return out;
    });
  }

  /** Forgets stream positions at or below `upTo`, or all of them. */
  forgetPositions(upTo?: string): Promise<void> {
    if (this.o.readOnly) return Promise.resolve();
    return this.locked(async () => {
      this.keyStates.clear();
      if (upTo === undefined) {
        await this.conn.run(`DELETE FROM st.positions`);
        await this.conn.run(`UPDATE st.acks SET pos = NULL WHERE pos IS NOT NULL`);
      } else {
        await this.conn.run(`DELETE FROM st.positions WHERE pos <> '' AND pos <= $1`, [upTo]);
        await this.conn.run(`UPDATE st.acks SET pos = NULL WHERE pos <> '' AND pos <= $1`, [upTo]);
      }
    });
  }

  /** SQL literals of keys, typed as the key column (NULL when none can be). */
  private keyList(keys: string[], rows = false): string {
    const int = this.model.key.kind === 'int';
    const list = int ? keys.filter((k) => /^-?\d{1,18}$/.test(k)).map((k) => `${k}::BIGINT`) : keys.map((k) => `'${k.replace(/'/g, "''")}'`);
    if (list.length === 0) return rows ? '(NULL)' : 'NULL';
    return rows ? `(${list.join('), (')})` : list.join(', ');
  }

  deliveredCount(): Promise<number> {
    return this.locked(() => this.deliveredCountNow());
  }

  private async deliveredCountNow(): Promise<number> {
    const dl = await this.deliveredNow();
    return Number((await this.conn.runAndReadAll(`SELECT count(*) FROM ${dl} WHERE fp IS NOT NULL OR sent_fp IS NOT NULL`)).getRows()[0]![0]);
  }

  /** Folds the ack log (unless read-only) and closes the database. */
  async close(): Promise<void> {
    const folded = await this.fold().then(
      () => true,
      () => false,
    );
    // The journal's files go once every ack is in DuckDB; else they are read back next time.
    await this.journal?.drained();
    this.journal?.close(folded && this.broken === undefined);
    this.journal = undefined;
    this.closeQuietly();
  }

  private closeQuietly(): void {
    this.journal?.close(false);
    try {
      this.conn.closeSync();
    } catch {
      /* closed */
    }
    try {
      this.instance.closeSync();
    } catch {
      /* closed */
    }
  }

  private keyParam(): string {
    return this.model.key.kind === 'int' ? 'CAST($1 AS BIGINT)' : '$1';
  }
}
