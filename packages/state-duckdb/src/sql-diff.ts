import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  DuckDBInstance,
  type DuckDBConnection,
  type DuckDBValueConverter,
} from '@duckdb/node-api';
import { OutflowError, describeError, failpoint, fingerprint, isOutflowError, type Ack, type RecordAddress, type SettledChange, type DiffRow, type DiffStore, type Row, type Value } from '@outflow/core';
import { AckJournal, journalDamage, leftJournals, type JournalRow } from './ack-journal.js';
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
  /** Keys per block (integer keys), or the mean rows per block (text keys). */
  blockSize?: number;
  /** The blocks compared: `int <keys per block>` or `text <hash buckets>`. */
  blockSpec?: string;
  /** Blocks whose checksums differed. */
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
 * them, from `delivered` (which holds their rows before). A refusal writes nothing, so a
 * write in doubt stays in doubt; an acknowledgement without a destination id keeps the one
 * known.
 */
const merged = (delivered: string) => `SELECT a.k,
    CASE WHEN a.fp_ack IS NULL THEN d.fp WHEN a.fp_ack['kind'] = 'delivered' THEN a.fp_ack['fp'] END AS fp,
    CASE WHEN a.dest_seq > coalesce(a.reset_seq, -1) THEN a.dest_id WHEN a.reset_seq IS NULL THEN d.dest_id END AS dest_id,
    CASE WHEN a.parked_ack IS NULL THEN d.parked_fp WHEN a.parked_ack['kind'] = 'parked' THEN a.parked_ack['fp'] END AS parked_fp,
    CASE WHEN a.sent_ack IS NULL THEN d.sent_fp WHEN a.sent_ack['kind'] = 'sent' THEN a.sent_ack['fp'] END AS sent_fp,
    CASE WHEN a.sent_ack IS NULL THEN d.sent_match WHEN a.sent_ack['kind'] = 'sent' THEN a.sent_ack['m'] END AS sent_match
  FROM a LEFT JOIN ${delivered} d ON d.k = a.k
  WHERE a.last_kind IN ('delivered', 'parked', 'sent')`;
/**
 * A row's part of its block's checksum: its key, fingerprint and (delivered rows) the
 * fingerprint of a write in doubt, hashed twice. DuckDB combines the hashes of several values
 * linearly, so with one pass two rows of a block that change from the same fingerprint to
 * the same other one would leave the block's XOR as it was, and both changes would be missed.
 */
const checksum = (...values: string[]) => `hash(hash(${values.join(', ')}))`;
const CHECKSUM = `CASE WHEN sent_fp IS NULL THEN ${checksum('k', 'fp')} ELSE ${checksum('k', 'fp', 'sent_fp')} END`;
/** The number of the block of key `k` in blocks `spec` (`int <keys>` or `text <buckets>`, see blockSpec). */
const blockNumber = (spec: string, k: string) => {
  const [kind, n] = spec.split(' ') as [string, string];
  return kind === 'int' ? `(${k} // ${n})` : `(hash(${k}) % ${n})`;
};
/**
 * A bound of the keys of integer block `b` (keys k with k // n = b, rounded toward zero):
 * below them all for `side` -n, above them all for n, kept within BIGINT.
 */
const keyBound = (b: unknown, side: number) => {
  const v = BigInt(b as bigint) * BigInt(Math.abs(side)) + BigInt(side > 0 ? side - 1 : side + 1);
  const limit = 2n ** 63n;
  return String(v < -limit ? -limit : v >= limit ? limit - 1n : v);
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
        // Per block of keys, entries whose XOR is the delivered rows' checksum (see stateBlocks).
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
   * table alongside the ack log. The order of the rows does not matter: acks are ordered by
   * their sequence numbers wherever they are read.
   */
  private async openJournal(): Promise<void> {
    const left = leftJournals(this.o.stateFile, this.o.tempDir);
    let table = 'st.acks';
    if (this.o.readOnly) {
      if (left.length === 0) return;
      const kt = this.model.key.kind === 'int' ? 'BIGINT' : 'VARCHAR';
      await this.conn.run(`CREATE OR REPLACE TEMP TABLE journal_acks (seq BIGINT, k ${kt}, kind VARCHAR, fp UBIGINT, dest_id VARCHAR, m VARCHAR, pos VARCHAR)`);
      table = 'journal_acks';
    }
    let n = 0;
    for (const { file, lines } of left) {
      try {
        n += Number((await this.conn.run(this.insertJournal(table, lines))).rowsChanged);
      } catch (err) {
        throw new OutflowError('OUTFLOW_LEDGER', journalDamage(file, lines) ?? `cannot read the delivered-state journal ${file}: ${describeError(err)}`, { cause: err });
      } finally {
        if (lines !== file) rmSync(lines, { force: true });
      }
    }
    if (this.o.readOnly) {
      this.acks = '(SELECT * FROM st.acks UNION ALL SELECT * FROM journal_acks)';
      return;
    }
    this.sinceFold += n;
    this.journal = new AckJournal(this.o.stateFile);
    this.journal.clear();
  }

  /**
   * The statement that inserts the acks of a journal file (complete lines only) into `table`.
   * DuckDB reads the file itself, on its own threads: the acks are not handed over one value
   * at a time from JavaScript. A line that is not an ack fails the statement.
   */
  private insertJournal(table: string, file: string): string {
    const k = this.model.key.kind === 'int' ? 'j[2]::BIGINT' : 'j[2]';
    const ack = `len(j) = 7 AND j[1] IS NOT NULL AND j[2] IS NOT NULL AND j[3] IS NOT NULL`;
    return `INSERT INTO ${table} SELECT CASE WHEN ${ack} THEN j[1]::BIGINT ELSE error('a line of the journal is not an ack') END, ${k}, j[3], j[4]::UBIGINT, j[5], j[6], j[7]
      FROM read_json('${file.replaceAll("'", "''")}', format = 'newline_delimited', records = false, columns = {j: 'VARCHAR[]'})`;
  }

  /** Moves the journal's acks into the ack log (one commit), folding it every {@link FOLD_EVERY} acks. */
  private async moveJournal(): Promise<void> {
    if (this.broken !== undefined) throw this.brokenError();
    const journal = this.journal;
    if (journal === undefined || journal.size === 0) return;
    const { file, count } = journal.take();
    this.unmoved = new Map();
    try {
      const r = await this.conn.run(this.insertJournal('st.acks', file));
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
      // Blocks of about 0.16 / p keys, 8 to 64: larger blocks group the model into fewer, but
      // more of their rows are read and hashed again (at 100M rows and 0.1 %, blocks of 64
      // keys took 14.5 s to compare and join, of 128 keys 16.8 s).
      const spec = await this.blockSpec(Math.min(64, Math.max(8, 2 ** Math.round(Math.log2(0.16 / p)))), delivered);
      const n = Number(spec.split(' ')[1]);
      const blockOf = (k: string) => blockNumber(spec, k);
      const sb = await this.stateBlocks(dl, delivered, spec);
      // A block absent on one side has the checksum 0 (no rows).
      await this.conn.run(`CREATE OR REPLACE TEMP TABLE db AS
        WITH mb AS (SELECT ${blockOf('__k')} AS b, bit_xor(${checksum('__k', '__fp')}) AS x FROM mv GROUP BY ALL)
        SELECT coalesce(mb.b, sb.b) AS b FROM mb FULL OUTER JOIN ${sb} sb ON mb.b = sb.b WHERE coalesce(mb.x, 0) <> coalesce(sb.x, 0)`);
      const [changedBlocks, lowest, highest] = (await this.conn.runAndReadAll(`SELECT count(*), min(b), max(b) FROM db`)).getRows()[0]!;
      this.stats = { method: 'blocks', blockSize: m.key.kind === 'int' ? n : Math.max(1, Math.round(delivered / n)), blockSpec: spec, blocksChanged: Number(changedBlocks) };
      // Integer keys: the range of keys the changed blocks span, as constants the scans of the
      // model and the state can skip row groups by (changes among recent keys touch few).
      const within = (k: string) => (m.key.kind === 'int' && lowest !== null ? `${k} BETWEEN ${keyBound(lowest, -n)} AND ${keyBound(highest, n)}` : 'true');
      // The rows of those blocks, hashed after the join: only they are fingerprinted again.
      await this.conn.run(`CREATE OR REPLACE TEMP TABLE mk AS
        SELECT __k, ${fpExpr} AS __fp, * EXCLUDE (__k, __fp) FROM (SELECT mraw.* FROM mraw SEMI JOIN db ON ${blockOf('mraw.__k')} = db.b WHERE ${within('mraw.__k')})`);
      keys = 'mk';
      payload = 'mk';
      state = `(SELECT * FROM ${dl} d SEMI JOIN db ON ${blockOf('d.k')} = db.b WHERE ${within('d.k')})`;
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
         a AS (${acked('st.acks')} WHERE k IN (SELECT k FROM q) GROUP BY k), merged AS (${merged('st.delivered')}),
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
   * The blocks a diff compares (see {@link blockNumber}): `int <n>` (keys k // n) or `text <n>`
   * (n hash buckets, a power of two, so that the blocks stay the same while the number of
   * rows drifts), for blocks of about `size` rows. The state's checksums, when kept at a size
   * within a factor of two of that, serve as they are: a change rate or a row count that
   * wavers around a boundary does not have them computed again every run.
   */
  private async blockSpec(size: number, delivered: number): Promise<string> {
    const wanted = this.model.key.kind === 'int' ? `int ${size}` : `text ${2 ** Math.max(0, Math.round(Math.log2(delivered / size)))}`;
    const kept = await this.getMetaNow('block_checksums');
    if (kept === undefined) return wanted;
    const [keptKind, keptN] = kept.split(' ');
    const [kind, n] = wanted.split(' ') as [string, string];
    return keptKind === kind && Number(keptN) >= Number(n) / 2 && Number(keptN) <= Number(n) * 2 ? kept : wanted;
  }

  /**
   * The delivered rows' checksums per block of keys (`spec`, see {@link blockSpec}). They are
   * kept in the state and brought up to date by every fold, so that a diff hashes only the
   * model. They are computed from the delivered rows when none are kept at `spec`, and then
   * kept; the entries folds appended are merged here once they number a quarter of the merged ones. A
   * read-only store with acks not yet folded computes them from its merged copy.
   */
  private async stateBlocks(dl: string, delivered: number, spec: string): Promise<string> {
    const fresh = `SELECT ${blockNumber(spec, 'k')} AS b, bit_xor(${CHECKSUM}) AS x FROM ${dl} WHERE ${COUNTED} GROUP BY ALL`;
    const merged = '(SELECT b, bit_xor(x) AS x FROM st.blocks GROUP BY ALL)';
    const kept = (await this.getMetaNow('block_checksums')) === spec;
    if (dl !== 'st.delivered' || (!kept && this.o.readOnly)) return `(${fresh})`;
    if (kept) {
      const entries = Number((await this.getMetaNow('block_entries')) ?? '0');
      if (entries === 0) return 'st.blocks';
      const rows = Number((await this.conn.runAndReadAll(`SELECT count(*) FROM st.blocks`)).getRows()[0]![0]);
      if (this.o.readOnly || entries * 4 <= rows - entries) return merged;
    }
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
    return 'st.blocks';
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
        SELECT ${blockNumber(blocks, 'k')} AS b, ${CHECKSUM} AS x FROM old WHERE ${COUNTED}
        UNION ALL SELECT ${blockNumber(blocks, 'k')}, ${CHECKSUM} FROM merged WHERE ${COUNTED}
      ) GROUP BY b HAVING bit_xor(x) <> 0`);
    const entries = Number((await this.getMetaNow('block_entries')) ?? '0') + Number(r.rowsChanged);
    await this.setMetaNow('block_entries', String(entries));
  }

  /** Forgets the kept block checksums (after a change of the delivered rows that no fold made). */
  private async dropBlocks(): Promise<void> {
    await this.conn.run(`DELETE FROM st.meta WHERE k IN ('block_checksums', 'block_entries')`);
    await this.conn.run(`DELETE FROM st.blocks`);
  }

  /**
   * Reduces the ack log to temporary tables: `a` (the keys acked), `old` (their delivered
   * rows before: the one read of the delivered table) and `merged` (their rows now).
   */
  private async mergeAcks(): Promise<void> {
    await this.conn.run(`CREATE OR REPLACE TEMP TABLE a AS ${acked(this.acks)} GROUP BY k`);
    await this.conn.run(`CREATE OR REPLACE TEMP TABLE old AS SELECT * FROM st.delivered WHERE k IN (SELECT k FROM a)`);
    await this.conn.run(`CREATE OR REPLACE TEMP TABLE merged AS ${merged('old')}`);
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
