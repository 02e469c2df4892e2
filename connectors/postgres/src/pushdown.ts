import { createHash } from 'node:crypto';
import type pg from 'pg';
import {
  OutflowError,
  describeError,
  failpoint,
  isOutflowError,
  latestAcks,
  type Ack,
  type DiffRow,
  type DiffStore,
  type Model,
  type PushdownDiff,
  type PushdownOptions,
  type Row,
} from '@outflow/core';
import { DEFAULTS, type PostgresConfig } from './config.js';
import { connect, isTransient, modelSql, type Ctx } from './db.js';
import { ident, literal } from './values.js';

/** Marks a row parked as a delete (the destination refused to delete it). */
const PARKED_DELETE = '~delete';
/** Marks a delivered fingerprint as out of date after a mapping change. */
const STALE = '~stale';
const PAGE_ROWS = 5000;
const META_COLUMNS = new Set(['outflow_n', 'outflow_op', 'outflow_key', 'outflow_dkey', 'outflow_fp', 'outflow_old_fp', 'outflow_dest_id', 'outflow_sent_fp', 'outflow_sent_match']);

/** The name of a sync's delivered-state table: readable, unique, within PostgreSQL's 63 bytes. */
export function stateTableName(sync: string): string {
  const readable = sync.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 40);
  const hash = createHash('sha256').update(sync).digest('hex').slice(0, 8);
  return `delivered_${readable}_${hash}`;
}

/** The model key as {@link keyOf} renders it, computed in SQL. */
function keySql(primaryKey: string[]): string {
  if (primaryKey.length === 1) return `m.${ident(primaryKey[0]!)}::text`;
  const parts = primaryKey.map((c) => `to_json(m.${ident(c)}::text)::text`);
  return `CASE WHEN ${primaryKey.map((c) => `m.${ident(c)} IS NULL`).join(' OR ')} THEN NULL ELSE '[' || concat_ws(',', ${parts.join(', ')}) || ']' END`;
}

/**
 * The fingerprint of the delivered columns: md5 of the row constructor's text form, which
 * quotes values and tells NULL from an empty string.
 */
function fpSql(columns: string[] | null): string {
  if (columns === null) return 'md5(m::text)';
  if (columns.length === 0) return `md5('')`;
  return `md5(ROW(${columns.map((c) => `m.${ident(c)}`).join(', ')})::text)`;
}

class PostgresDiffStore implements DiffStore {
  private diffRows = 0;
  private snapshotted = false;

  constructor(
    private readonly ctx: Ctx,
    private readonly client: pg.Client,
    private readonly model: Model,
    private readonly o: PushdownOptions,
    private readonly schema: string,
    /** The delivered table, qualified (a temp table when read-only and never written). */
    private readonly delivered: string,
    private readonly metaReadable: boolean,
  ) {}

  private where(): string {
    return `sync "${this.o.sync}"`;
  }

  private fail(what: string, err: unknown): OutflowError {
    if (isOutflowError(err)) return err;
    return new OutflowError('OUTFLOW_LEDGER', `${this.where()}: ${what} in ${this.schema} failed: ${describeError(err)}`, {
      retryable: isTransient(err),
      cause: err,
    });
  }

  private assertWritable(): void {
    if (this.o.readOnly) throw new OutflowError('OUTFLOW_INTERNAL', 'the pushed-down diff state was opened read-only');
  }

  async getMeta(k: string): Promise<string | undefined> {
    if (!this.metaReadable) return undefined;
    const r = await this.client.query<{ v: string }>(`SELECT v FROM ${ident(this.schema)}.sync_meta WHERE sync = $1 AND k = $2`, [this.o.sync, k]);
    return r.rows[0]?.v;
  }

  async setMeta(k: string, v: string): Promise<void> {
    this.assertWritable();
    await this.client.query(
      `INSERT INTO ${ident(this.schema)}.sync_meta (sync, k, v) VALUES ($1, $2, $3) ON CONFLICT (sync, k) DO UPDATE SET v = excluded.v`,
      [this.o.sync, k, v],
    );
  }

  async markAllStale(): Promise<number> {
    this.assertWritable();
    const r = await this.client.query(`UPDATE ${this.delivered} SET fp = '${STALE}', parked_fp = NULL WHERE fp IS NOT NULL`);
    return r.rowCount ?? 0;
  }

  async unpark(keys?: string[]): Promise<number> {
    this.assertWritable();
    const r =
      keys === undefined
        ? await this.client.query(`UPDATE ${this.delivered} SET parked_fp = NULL WHERE parked_fp IS NOT NULL`)
        : await this.client.query(`UPDATE ${this.delivered} SET parked_fp = NULL WHERE key = ANY($1::text[])`, [keys]);
    return r.rowCount ?? 0;
  }

  async computeChanges(): Promise<{ insert: number; update: number; delete: number }> {
    const where = this.where();
    const m = await modelSql(this.client, this.model, where);
    const missing = this.model.primaryKey.filter((c) => m.table && !m.table.columns.some((col) => col.name === c));
    if (missing.length) {
      throw new OutflowError('OUTFLOW_MAPPING', `${where}: primary key column ${missing.join(', ')} is not in ${m.label}`);
    }
    // The diff's own columns sit beside the model's: a model column of such a name would
    // collide with one or be dropped from the rows sent.
    let names: string[];
    try {
      names = (await this.client.query(`SELECT * FROM (${m.sql}) AS m LIMIT 0`)).fields.map((f) => f.name);
    } catch (err) {
      throw new OutflowError('OUTFLOW_SOURCE', `${where}: reading ${m.label} failed: ${describeError(err)}`, { retryable: isTransient(err), cause: err });
    }
    const taken = names.filter((n) => META_COLUMNS.has(n));
    if (taken.length) {
      throw new OutflowError(
        'OUTFLOW_MAPPING',
        `${where}: ${m.label} has ${taken.length === 1 ? 'a column' : 'columns'} named ${taken.map((n) => `"${n}"`).join(', ')}, which the diff reserves for itself (${[...META_COLUMNS].join(', ')}); rename ${taken.length === 1 ? 'it' : 'them'} in the model`,
      );
    }
    try {
      await this.client.query('DROP TABLE IF EXISTS pg_temp.outflow_snap, pg_temp.outflow_diff');
      await this.client.query(
        `CREATE TEMP TABLE outflow_snap AS
           SELECT ${keySql(this.model.primaryKey)} AS outflow_key, ${fpSql(this.o.columns)} AS outflow_fp, m.*
             FROM (${m.sql}) AS m`,
      );
    } catch (err) {
      throw new OutflowError('OUTFLOW_SOURCE', `${where}: snapshotting ${m.label} failed: ${describeError(err)}`, { retryable: isTransient(err), cause: err });
    }
    this.snapshotted = true;
    const nulls = await this.client.query<{ n: string }>(`SELECT count(*) AS n FROM outflow_snap WHERE outflow_key IS NULL`);
    if (Number(nulls.rows[0]!.n) > 0) {
      throw new OutflowError('OUTFLOW_MODEL_KEY', `${where}: ${nulls.rows[0]!.n} rows of ${m.label} have a null primary key (${this.model.primaryKey.join(', ')}); every row needs one`);
    }
    const dup = await this.client.query<{ k: string }>(`SELECT outflow_key AS k FROM outflow_snap GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 5`);
    if (dup.rows.length) {
      const duplicates = dup.rows.map((r) => r.k);
      throw new OutflowError(
        'OUTFLOW_MODEL_KEY',
        `${where}: the primary key (${this.model.primaryKey.join(', ')}) is not unique; duplicated: ${duplicates.join(', ')}. Nothing was sent.`,
        { details: { duplicates } },
      );
    }
    try {
      await this.client.query(`CREATE INDEX ON outflow_snap (outflow_key)`);
      await this.client.query(`ANALYZE outflow_snap`);
      // A delivered row is compared with its model row; a parked version is not re-sent
      // until it changes; a row sent but never acknowledged is sent again; a key that left
      // the model is deleted only when it was delivered (or possibly delivered: sent).
      await this.client.query(
        `CREATE TEMP TABLE outflow_diff AS
           SELECT row_number() OVER () AS outflow_n,
                  CASE WHEN s.outflow_key IS NULL THEN 'delete' WHEN d.fp IS NULL THEN 'insert' ELSE 'update' END AS outflow_op,
                  coalesce(s.outflow_key, d.key) AS outflow_dkey, d.fp AS outflow_old_fp, d.dest_id AS outflow_dest_id, d.sent_fp AS outflow_sent_fp, to_jsonb(d) ->> 'sent_match' AS outflow_sent_match, s.*
             FROM outflow_snap s FULL OUTER JOIN ${this.delivered} d ON s.outflow_key = d.key
            WHERE (s.outflow_key IS NULL AND (d.fp IS NOT NULL OR d.sent_fp IS NOT NULL) AND d.parked_fp IS DISTINCT FROM '${PARKED_DELETE}')
               OR (s.outflow_key IS NOT NULL AND d.key IS NULL)
               OR (s.outflow_key IS NOT NULL AND d.sent_fp IS NOT NULL AND s.outflow_fp IS DISTINCT FROM d.parked_fp)
               OR (s.outflow_key IS NOT NULL AND s.outflow_fp IS DISTINCT FROM d.fp AND s.outflow_fp IS DISTINCT FROM d.parked_fp)`,
      );
      await this.client.query(`CREATE INDEX ON outflow_diff (outflow_n)`);
      const r = await this.client.query<{ op: string; n: string }>(`SELECT outflow_op AS op, count(*) AS n FROM outflow_diff GROUP BY 1`);
      const out = { insert: 0, update: 0, delete: 0 };
      for (const { op, n } of r.rows) out[op as keyof typeof out] = Number(n);
      this.diffRows = out.insert + out.update + out.delete;
      return out;
    } catch (err) {
      throw this.fail('computing the diff', err);
    }
  }

  async *changes(): AsyncGenerator<DiffRow[]> {
    for (let from = 1; from <= this.diffRows; from += PAGE_ROWS) {
      const r = await this.client.query<Row>(`SELECT * FROM outflow_diff WHERE outflow_n BETWEEN $1 AND $2 ORDER BY outflow_n`, [from, from + PAGE_ROWS - 1]);
      yield r.rows.map((raw) => {
        const op = raw['outflow_op'] as DiffRow['op'];
        let row: Row | null = null;
        if (op !== 'delete') {
          row = {};
          for (const [k, v] of Object.entries(raw)) if (!META_COLUMNS.has(k)) row[k] = v;
        }
        return {
          op,
          key: raw['outflow_dkey'] as string,
          fp: op === 'delete' ? null : (raw['outflow_fp'] as string),
          row,
          oldFp: (raw['outflow_old_fp'] as string | null) ?? null,
          sentFp: (raw['outflow_sent_fp'] as string | null) ?? null,
          sentMatch: raw['outflow_sent_match'] == null ? null : (JSON.parse(raw['outflow_sent_match'] as string) as Row),
          destId: (raw['outflow_dest_id'] as string | null) ?? null,
        };
      });
    }
  }

  async apply(acks: Ack[]): Promise<void> {
    this.assertWritable();
    if (acks.length === 0) return;
    const delivered: [string[], string[], (string | null)[]] = [[], [], []];
    const parked: [string[], string[]] = [[], []];
    const sent: [string[], string[], (string | null)[]] = [[], [], []];
    const removed: string[] = [];
    for (const a of latestAcks(acks)) {
      if (a.kind === 'delivered') {
        delivered[0].push(a.key);
        delivered[1].push(a.fp);
        delivered[2].push(a.destId ?? null);
      } else if (a.kind === 'parked') {
        parked[0].push(a.key);
        parked[1].push(a.fp ?? PARKED_DELETE);
      } else if (a.kind === 'sent') {
        sent[0].push(a.key);
        sent[1].push(a.fp);
        sent[2].push(a.match ? JSON.stringify(a.match) : null);
      } else removed.push(a.key);
    }
    try {
      await this.client.query('BEGIN');
      if (delivered[0].length) {
        await this.client.query(
          `INSERT INTO ${this.delivered} AS d (key, fp, dest_id, parked_fp, sent_fp, updated_at)
             SELECT k, f, i, NULL, NULL, now() FROM unnest($1::text[], $2::text[], $3::text[]) AS u(k, f, i)
           ON CONFLICT (key) DO UPDATE SET fp = excluded.fp, dest_id = coalesce(excluded.dest_id, d.dest_id),
             parked_fp = NULL, sent_fp = NULL, sent_match = NULL, updated_at = now()`,
          delivered,
        );
      }
      if (parked[0].length) {
        await this.client.query(
          `INSERT INTO ${this.delivered} AS d (key, fp, dest_id, parked_fp, sent_fp, updated_at)
             SELECT k, NULL, NULL, p, NULL, now() FROM unnest($1::text[], $2::text[]) AS u(k, p)
           ON CONFLICT (key) DO UPDATE SET parked_fp = excluded.parked_fp, updated_at = now()`,
          parked,
        );
      }
      if (sent[0].length) {
        // Logged before the write: until acknowledged, the record may or may not be there.
        await this.client.query(
          `INSERT INTO ${this.delivered} AS d (key, fp, dest_id, parked_fp, sent_fp, sent_match, updated_at)
             SELECT k, NULL, NULL, NULL, f, m, now() FROM unnest($1::text[], $2::text[], $3::text[]) AS u(k, f, m)
           ON CONFLICT (key) DO UPDATE SET sent_fp = excluded.sent_fp, sent_match = excluded.sent_match, updated_at = now()`,
          sent,
        );
      }
      if (removed.length) await this.client.query(`DELETE FROM ${this.delivered} WHERE key = ANY($1::text[])`, [removed]);
      failpoint('state.inside-apply');
      await this.client.query('COMMIT');
    } catch (err) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw this.fail('recording delivered state', err);
    }
  }

  async inDoubt(): Promise<{ key: string; fp: string }[]> {
    try {
      const r = await this.client.query<{ key: string; sent_fp: string }>(`SELECT key, sent_fp FROM ${this.delivered} WHERE sent_fp IS NOT NULL`);
      return r.rows.map((row) => ({ key: row.key, fp: row.sent_fp }));
    } catch (err) {
      throw this.fail('reading writes in doubt', err);
    }
  }

  async deliveredCount(): Promise<number> {
    try {
      const r = await this.client.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.delivered} WHERE fp IS NOT NULL OR sent_fp IS NOT NULL`);
      return Number(r.rows[0]!.n);
    } catch (err) {
      throw this.fail('counting delivered records', err);
    }
  }

  async tidy(): Promise<string[]> {
    this.assertWritable();
    if (!this.snapshotted) return [];
    try {
      await this.client.query('BEGIN');
      const gone = await this.client.query<{ key: string }>(
        `DELETE FROM ${this.delivered} d WHERE d.fp IS NULL AND d.sent_fp IS NULL AND NOT EXISTS (SELECT 1 FROM outflow_snap s WHERE s.outflow_key = d.key) RETURNING d.key`,
      );
      const back = await this.client.query<{ key: string }>(
        `UPDATE ${this.delivered} d SET parked_fp = NULL FROM outflow_snap s
          WHERE s.outflow_key = d.key AND d.parked_fp IS NOT NULL AND s.outflow_fp = d.fp RETURNING d.key`,
      );
      await this.client.query('COMMIT');
      return [...gone.rows.map((r) => r.key), ...back.rows.map((r) => r.key)];
    } catch (err) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw this.fail('tidying parked rows', err);
    }
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}

const TABLE_DDL = (t: string) =>
  `CREATE TABLE IF NOT EXISTS ${t} (key text PRIMARY KEY, fp text, dest_id text, parked_fp text, sent_fp text, sent_match text, updated_at timestamptz NOT NULL DEFAULT now())`;

/**
 * The diff pushed down into PostgreSQL: the delivered state of each sync is a table in the
 * schema Outflow owns (`outflow_state` by default), the model is snapshotted into a
 * temporary table with its key and fingerprint computed in SQL, and only changed rows are
 * read back.
 */
export const pushdownDiff: PushdownDiff<PostgresConfig> = {
  async open(ctx, model, options) {
    const schema = ctx.config.stateSchema ?? DEFAULTS.stateSchema;
    const client = await connect(ctx, 'OUTFLOW_LEDGER');
    try {
      const table = `${ident(schema)}.${ident(stateTableName(options.sync))}`;
      if (!options.readOnly) {
        await client.query('BEGIN');
        // Two syncs preparing the schema at once would race on CREATE … IF NOT EXISTS.
        await client.query(`SELECT pg_advisory_xact_lock(hashtext(${literal(`outflow:${schema}`)}))`);
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`);
        await client.query(`CREATE TABLE IF NOT EXISTS ${ident(schema)}.sync_meta (sync text NOT NULL, k text NOT NULL, v text, PRIMARY KEY (sync, k))`);
        await client.query(TABLE_DDL(table));
        // State written before the match key of writes in doubt was kept.
        await client.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS sent_match text`);
        await client.query('COMMIT');
        return new PostgresDiffStore(ctx, client, model, options, schema, table, true);
      }
      const exists = await client.query<{ t: string | null; m: string | null }>(`SELECT to_regclass($1)::text AS t, to_regclass($2)::text AS m`, [
        table,
        `${ident(schema)}.sync_meta`,
      ]);
      if (exists.rows[0]!.t !== null) return new PostgresDiffStore(ctx, client, model, options, schema, table, exists.rows[0]!.m !== null);
      await client.query(TABLE_DDL('pg_temp.outflow_delivered'));
      return new PostgresDiffStore(ctx, client, model, options, schema, 'pg_temp.outflow_delivered', exists.rows[0]!.m !== null);
    } catch (err) {
      await client.end().catch(() => undefined);
      if (isOutflowError(err)) throw err;
      throw new OutflowError('OUTFLOW_LEDGER', `sync "${options.sync}": preparing the diff state in schema ${schema} failed: ${describeError(err)}`, {
        retryable: isTransient(err),
        cause: err,
      });
    }
  },
};
