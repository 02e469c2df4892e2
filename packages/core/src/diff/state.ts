import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBAppender } from '@duckdb/node-api';
import { OutflowError } from '../errors.js';
import type { Ack, DiffRow, DiffStore } from './store.js';

export type { Ack, DiffRow } from './store.js';

/** Marks a row parked as a delete (the destination refused to delete it). */
const PARKED_DELETE = '~delete';
/** Marks a delivered fingerprint as out of date after a mapping change. */
const STALE = '~stale';

export interface DiffStateOptions {
  /** The DuckDB file holding this sync's delivered state. */
  file: string;
  /** Read only (plan): a missing file is an empty state, and nothing is written. */
  readOnly: boolean;
  /** Folder DuckDB spills to when the snapshot outgrows memory. */
  tempDir: string;
  memoryLimit?: string;
  threads?: number;
}

const SNAPSHOT_FLUSH_ROWS = 50_000;

/**
 * The delivered state of one diff sync, in an embedded DuckDB file: per key, the
 * fingerprint last acknowledged by the destination, the destination's record id, and the
 * fingerprint of a parked (rejected) version. The snapshot is ingested next to it through
 * DuckDB's appender and compared in SQL, so unchanged rows never come back into JS.
 */
export class DiffState implements DiffStore {
  private appender: DuckDBAppender | null = null;
  private appended = 0;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    private readonly readOnly: boolean,
  ) {}

  static async open(o: DiffStateOptions): Promise<DiffState> {
    mkdirSync(o.tempDir, { recursive: true });
    const instance = await DuckDBInstance.create(':memory:', {
      temp_directory: o.tempDir,
      memory_limit: o.memoryLimit ?? '2GB',
      ...(o.threads ? { threads: String(o.threads) } : {}),
    });
    const conn = await instance.connect();
    const state = new DiffState(instance, conn, o.readOnly);
    try {
      if (o.readOnly && !existsSync(o.file)) {
        await conn.run(`ATTACH ':memory:' AS st`);
      } else {
        if (!o.readOnly) mkdirSync(dirname(o.file), { recursive: true });
        await conn.run(`ATTACH '${o.file.replaceAll("'", "''")}' AS st ${o.readOnly ? '(READ_ONLY)' : ''}`);
      }
    } catch (err) {
      state.close();
      const msg = err instanceof Error ? err.message : String(err);
      throw new OutflowError(
        msg.includes('lock') ? 'OUTFLOW_LOCKED' : 'OUTFLOW_LEDGER',
        msg.includes('lock')
          ? `the diff state ${o.file} is in use by another outflow process; wait for it to finish`
          : `cannot open the diff state ${o.file}: ${msg}`,
        { cause: err },
      );
    }
    if (!o.readOnly || !existsSync(o.file)) {
      await conn.run(`CREATE TABLE IF NOT EXISTS st.delivered (
        key VARCHAR PRIMARY KEY, fp VARCHAR, dest_id VARCHAR, parked_fp VARCHAR, updated_at TIMESTAMP)`);
      await conn.run(`CREATE TABLE IF NOT EXISTS st.meta (k VARCHAR PRIMARY KEY, v VARCHAR)`);
    }
    return state;
  }

  async getMeta(k: string): Promise<string | undefined> {
    const r = await this.conn.runAndReadAll(`SELECT v FROM st.meta WHERE k = $1`, [k]);
    const rows = r.getRows();
    return rows.length ? String(rows[0]![0]) : undefined;
  }

  async setMeta(k: string, v: string): Promise<void> {
    this.assertWritable();
    await this.conn.run(`INSERT OR REPLACE INTO st.meta VALUES ($1, $2)`, [k, v]);
  }

  /** After a mapping change: every delivered row is sent again as an update. */
  async markAllStale(): Promise<number> {
    this.assertWritable();
    const r = await this.conn.run(`UPDATE st.delivered SET fp = '${STALE}', parked_fp = NULL WHERE fp IS NOT NULL`);
    return Number(r.rowsChanged);
  }

  /** Clears parked versions so they are sent again (`outflow retry`). */
  async unpark(keys?: string[]): Promise<number> {
    this.assertWritable();
    if (keys === undefined) {
      const r = await this.conn.run(`UPDATE st.delivered SET parked_fp = NULL WHERE parked_fp IS NOT NULL`);
      return Number(r.rowsChanged);
    }
    let n = 0;
    for (const key of keys) {
      const r = await this.conn.run(`UPDATE st.delivered SET parked_fp = NULL WHERE key = $1`, [key]);
      n += Number(r.rowsChanged);
    }
    return n;
  }

  async deliveredCount(): Promise<number> {
    const r = await this.conn.runAndReadAll(`SELECT count(*) FROM st.delivered WHERE fp IS NOT NULL`);
    return Number(r.getRows()[0]![0]);
  }

  /** Starts a new snapshot; rows are added with {@link addRow}. */
  async beginSnapshot(): Promise<void> {
    await this.conn.run(`CREATE OR REPLACE TABLE snap (key VARCHAR, fp VARCHAR, row VARCHAR)`);
    this.appender = await this.conn.createAppender('snap');
    this.appended = 0;
  }

  addRow(key: string, fp: string, rowJson: string): void {
    const a = this.appender!;
    a.appendVarchar(key);
    a.appendVarchar(fp);
    a.appendVarchar(rowJson);
    a.endRow();
    if (++this.appended % SNAPSHOT_FLUSH_ROWS === 0) a.flushSync();
  }

  /** Ends the snapshot and returns up to `limit` keys that occur more than once. */
  async endSnapshot(limit = 5): Promise<{ rows: number; duplicates: string[] }> {
    this.appender?.flushSync();
    this.appender?.closeSync();
    this.appender = null;
    const dup = await this.conn.runAndReadAll(
      `SELECT key FROM snap GROUP BY key HAVING count(*) > 1 ORDER BY key LIMIT ${Math.max(1, limit)}`,
    );
    return { rows: this.appended, duplicates: dup.getRows().map((r) => String(r[0])) };
  }

  /**
   * Computes the diff into a table of changed rows only, and returns their counts by op.
   * Reading it back in pages (not one open streaming result) lets state updates run on
   * the same connection while changes are delivered.
   */
  async computeChanges(): Promise<{ insert: number; update: number; delete: number }> {
    await this.conn.run(`CREATE OR REPLACE TABLE diff AS SELECT row_number() OVER () AS n, * FROM (${DIFF_SQL})`);
    const r = await this.conn.runAndReadAll(`SELECT op, count(*) FROM diff GROUP BY op`);
    const out = { insert: 0, update: 0, delete: 0 };
    for (const [op, n] of r.getRows()) out[op as keyof typeof out] = Number(n);
    this.diffRows = out.insert + out.update + out.delete;
    return out;
  }

  private diffRows = 0;

  /** Pages through the computed diff; only changed rows leave DuckDB. */
  async *changes(pageRows = 5000): AsyncGenerator<DiffRow[]> {
    for (let from = 1; from <= this.diffRows; from += pageRows) {
      const r = await this.conn.runAndReadAll(
        `SELECT op, key, fp, row, old_fp, dest_id FROM diff WHERE n BETWEEN $1 AND $2 ORDER BY n`,
        [from, from + pageRows - 1],
      );
      const rows = r.getRows();
      const out: DiffRow[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!;
        out[i] = {
          op: row[0] as DiffRow['op'],
          key: row[1] as string,
          fp: (row[2] as string | null) ?? null,
          row: (row[3] as string | null) ?? null,
          oldFp: (row[4] as string | null) ?? null,
          destId: (row[5] as string | null) ?? null,
        };
      }
      yield out;
    }
  }

  /** Records settled records; one statement per kind, committed before it returns. */
  async apply(acks: Ack[]): Promise<void> {
    this.assertWritable();
    if (acks.length === 0) return;
    const delivered: Extract<Ack, { kind: 'delivered' }>[] = [];
    const parked: Extract<Ack, { kind: 'parked' }>[] = [];
    const removed: string[] = [];
    for (const a of acks) {
      if (a.kind === 'delivered') delivered.push(a);
      else if (a.kind === 'parked') parked.push(a);
      else removed.push(a.key);
    }
    await this.conn.run('BEGIN TRANSACTION');
    try {
      for (let i = 0; i < delivered.length; i += 500) {
        const part = delivered.slice(i, i + 500);
        const params: (string | null)[] = [];
        const values = part.map((a, j) => {
          params.push(a.key, a.fp, a.destId ?? null);
          return `($${j * 3 + 1}, $${j * 3 + 2}, $${j * 3 + 3}, NULL, now())`;
        });
        await this.conn.run(
          `INSERT INTO st.delivered VALUES ${values.join(',')}
           ON CONFLICT (key) DO UPDATE SET fp = excluded.fp,
             dest_id = coalesce(excluded.dest_id, st.delivered.dest_id), parked_fp = NULL, updated_at = now()`,
          params,
        );
      }
      for (let i = 0; i < parked.length; i += 500) {
        const part = parked.slice(i, i + 500);
        const params: string[] = [];
        const values = part.map((a, j) => {
          params.push(a.key, a.fp ?? PARKED_DELETE);
          return `($${j * 2 + 1}, NULL, NULL, $${j * 2 + 2}, now())`;
        });
        await this.conn.run(
          `INSERT INTO st.delivered VALUES ${values.join(',')}
           ON CONFLICT (key) DO UPDATE SET parked_fp = excluded.parked_fp, updated_at = now()`,
          params,
        );
      }
      for (let i = 0; i < removed.length; i += 500) {
        const part = removed.slice(i, i + 500);
        await this.conn.run(`DELETE FROM st.delivered WHERE key IN (${part.map((_, j) => `$${j + 1}`).join(',')})`, part);
      }
      await this.conn.run('COMMIT');
    } catch (err) {
      await this.conn.run('ROLLBACK').catch(() => undefined);
      throw new OutflowError('OUTFLOW_LEDGER', `cannot record delivered state: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * After a complete snapshot: forgets parked rows whose key left the model (they were
   * never delivered, so nothing to delete) and returns their keys, so their row errors
   * can be resolved; clears the parking of rows that went back to their delivered version.
   */
  async tidy(): Promise<string[]> {
    this.assertWritable();
    const gone = await this.conn.runAndReadAll(
      `SELECT d.key FROM st.delivered d ANTI JOIN snap s ON s.key = d.key WHERE d.fp IS NULL`,
    );
    const keys = gone.getRows().map((r) => String(r[0]));
    await this.conn.run(`DELETE FROM st.delivered WHERE fp IS NULL AND key NOT IN (SELECT key FROM snap)`);
    const back = await this.conn.runAndReadAll(
      `SELECT d.key FROM st.delivered d JOIN snap s ON s.key = d.key WHERE d.parked_fp IS NOT NULL AND s.fp = d.fp`,
    );
    const reverted = back.getRows().map((r) => String(r[0]));
    await this.conn.run(
      `UPDATE st.delivered SET parked_fp = NULL WHERE parked_fp IS NOT NULL AND key IN (SELECT s.key FROM snap s WHERE s.fp = st.delivered.fp)`,
    );
    return [...keys, ...reverted];
  }

  close(): void {
    try {
      this.appender?.closeSync();
    } catch {
      /* already closed */
    }
    this.conn.closeSync();
    this.instance.closeSync();
  }

  private assertWritable(): void {
    if (this.readOnly) throw new OutflowError('OUTFLOW_INTERNAL', 'the diff state was opened read-only');
  }
}

// A delivered row is compared with its model row; a parked version is not re-sent until it
// changes (or `outflow retry` clears the parking); a key that left the model is deleted only
// when Outflow delivered it.
const DIFF_SQL = `
  SELECT
    CASE WHEN s.key IS NULL THEN 'delete' WHEN d.fp IS NULL THEN 'insert' ELSE 'update' END AS op,
    coalesce(s.key, d.key) AS key, s.fp, s.row, d.fp AS old_fp, d.dest_id
  FROM snap s FULL OUTER JOIN st.delivered d ON s.key = d.key
  WHERE (s.key IS NULL AND d.fp IS NOT NULL AND d.parked_fp IS DISTINCT FROM '${PARKED_DELETE}')
     OR (s.key IS NOT NULL AND d.key IS NULL)
     OR (s.key IS NOT NULL AND s.fp IS DISTINCT FROM d.fp AND s.fp IS DISTINCT FROM d.parked_fp)`;
