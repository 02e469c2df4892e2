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
const META_COLUMNS = new Set([
  'outflow_n',
  'outflow_op',
  'outflow_key',
  'outflow_dkey',
  'outflow_fp',
  'outflow_old_fp',
  'outflow_dest_id',
  'outflow_sent_fp',
  'outflow_sent_match',
  'outflow_legacy_fp',
  'outflow_parked_fp',
  'outflow_in_state',
]);
/** The operations a diff row may carry; other rows of outflow_diff are kept for tidy() and the key checks. */
const CHANGE_OPS = `('insert', 'update', 'delete')`;

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

/** The text the fingerprint hashes: the row constructor's text form, which quotes values and tells NULL from an empty string. */
function rowTextSql(alias: string, columns: string[]): string {
  return columns.length === 0 ? `''` : `ROW(${columns.map((c) => `${alias}.${ident(c)}`).join(', ')})::text`;
}

/**
 * The fingerprint of the delivered columns: a 64-bit hash of their text form, in hex (at
 * most 16 characters). A row's fingerprint is only ever compared with the same key's
 * previous one, so 64 bits leave a change unseen with odds of 2^-64; md5, used before, cost
 * more than reading the row.
 */
function fpSql(text: string): string {
  return `to_hex(hashtextextended(${text}, 0))`;
}

/** State written before the 64-bit fingerprint holds md5 fingerprints: 32 hex characters. */
function legacyFpSql(text: string): string {
  return `md5(${text})`;
}

/**
 * The memory the diff's hash join may take is work_mem × hash_mem_multiplier (4): 4 GB. It
 * takes about 70 bytes per delivered row (700 MB measured at 10M), but the planner sizes
 * batches from its estimate (near 200 bytes a row), so this keeps ~20M delivered rows in one
 * batch; beyond that PostgreSQL spills batches to disk. Set for the diff's own transaction only.
 */
const DIFF_WORK_MEM = '1GB';

interface PlanNode {
  'Node Type'?: string;
  'Join Type'?: string;
  'Relation Name'?: string;
  'Parent Relationship'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

/**
 * The rows each side of the diff's full join read, from the statement's own EXPLAIN ANALYZE:
 * model rows that met a delivered row, against the delivered keys they met, show a duplicate
 * key without another pass over the model. The diff's join is the topmost one.
 */
function joinInputs(explained: unknown, deliveredName: string): { modelRows: number; stateRows: number } {
  const root = (explained as { Plan: PlanNode }[])[0]!.Plan;
  const find = (n: PlanNode): PlanNode | undefined => (n['Join Type'] === 'Full' ? n : n.Plans?.map(find).find((x) => x !== undefined));
  const scans = (n: PlanNode): boolean => n['Relation Name'] === deliveredName || (n.Plans ?? []).some(scans);
  const join = find(root);
  const sides = (join?.Plans ?? []).filter((n) => n['Parent Relationship'] === 'Outer' || n['Parent Relationship'] === 'Inner');
  const state = sides.find(scans);
  const model = sides.find((n) => n !== state);
  if (!join || join['Node Type'] !== 'Hash Join' || !state || !model) {
    throw new OutflowError('OUTFLOW_INTERNAL', `the pushed-down diff did not run as one hash join (${join?.['Node Type'] ?? 'no full join'})`);
  }
  const rows = (n: PlanNode) => (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1);
  return { modelRows: rows(model), stateRows: rows(state) };
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
    /** The delivered table's own name, unqualified. */
    private readonly deliveredName: string,
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
    const cols = this.o.columns ?? names;
    const text = rowTextSql('s', cols);
    const key = keySql(this.model.primaryKey);
    const sentMatch = (await this.hasSentMatch()) ? 'd.sent_match' : 'NULL::text';
    // A fingerprint is the same when it equals the model row's, or is the md5 that state
    // written before the 64-bit fingerprint holds (computed only for such rows).
    const same = (v: string) => `coalesce(${v} = x.outflow_fp OR ${v} = x.outflow_legacy_fp, false)`;
    // One pass: the model's key and fingerprint are computed as it is read and joined
    // straight with the delivered table; only rows that matter are materialized: changes,
    // rows tidy() needs (parked, or neither delivered nor sent), rows whose md5 fingerprint
    // is to be rewritten, every delivered key the model lacks, and null keys. The filter runs
    // in the join itself, so only those rows are projected; the model's subquery stays
    // apart (OFFSET 0) so each row's fingerprint is computed once.
    // A delivered row is compared with its model row; a parked version is not re-sent
    // until it changes; a row sent but never acknowledged is sent again; a key that left
    // the model is deleted only when it was delivered (or possibly delivered: sent).
    const modelCols = names.map((n) => `x.${ident(n)}`).join(', ');
    const diffSql = `CREATE TEMP TABLE outflow_diff AS
      SELECT CASE WHEN j.outflow_op IN ${CHANGE_OPS} THEN row_number() OVER (PARTITION BY j.outflow_op IN ${CHANGE_OPS}) END AS outflow_n, j.*
        FROM (
          SELECT CASE WHEN x.outflow_fp IS NULL THEN
                        CASE WHEN (x.outflow_old_fp IS NOT NULL OR x.outflow_sent_fp IS NOT NULL) AND x.outflow_parked_fp IS DISTINCT FROM '${PARKED_DELETE}' THEN 'delete' ELSE 'keep' END
                      WHEN x.outflow_key IS NULL THEN 'nullkey'
                      WHEN x.outflow_dkey IS NULL THEN 'insert'
                      WHEN (x.outflow_sent_fp IS NOT NULL AND NOT ${same('x.outflow_parked_fp')}) OR (NOT ${same('x.outflow_old_fp')} AND NOT ${same('x.outflow_parked_fp')})
                        THEN CASE WHEN x.outflow_old_fp IS NULL THEN 'insert' ELSE 'update' END
                      WHEN x.outflow_parked_fp IS NOT NULL OR (x.outflow_old_fp IS NULL AND x.outflow_sent_fp IS NULL) OR x.outflow_legacy_fp IS NOT NULL THEN 'keep'
                 END AS outflow_op,
                 coalesce(x.outflow_key, x.outflow_dkey) AS outflow_dkey, x.outflow_old_fp, x.outflow_dest_id, x.outflow_sent_fp, x.outflow_sent_match,
                 x.outflow_legacy_fp, x.outflow_in_state, x.outflow_key, x.outflow_fp${modelCols ? `, ${modelCols}` : ''}
            FROM (
              SELECT s.outflow_key, s.outflow_fp${names.length ? `, ${names.map((n) => `s.${ident(n)}`).join(', ')}` : ''}, d.*, CASE WHEN octet_length(d.outflow_old_fp) = 32 OR octet_length(d.outflow_parked_fp) = 32 THEN ${legacyFpSql(text)} END AS outflow_legacy_fp
                FROM (SELECT ${key} AS outflow_key, ${fpSql(rowTextSql('m', cols))} AS outflow_fp, m.*
                        FROM (${m.sql}) AS m
                      OFFSET 0) AS s
                FULL JOIN (SELECT d.key AS outflow_dkey, d.fp AS outflow_old_fp, d.dest_id AS outflow_dest_id, d.parked_fp AS outflow_parked_fp,
                                  d.sent_fp AS outflow_sent_fp, ${sentMatch} AS outflow_sent_match, true AS outflow_in_state
                             FROM ${this.delivered} AS d) AS d
                  ON s.outflow_key = d.outflow_dkey
            ) AS x
        ) AS j
       WHERE j.outflow_op IS NOT NULL`;
    let read: { modelRows: number; stateRows: number };
    try {
      await this.client.query('BEGIN');
      await this.client.query(`SET LOCAL work_mem = '${DIFF_WORK_MEM}'`);
      await this.client.query(`SELECT set_config('hash_mem_multiplier', '4', true) WHERE current_setting('server_version_num')::int >= 130000`);
      await this.client.query('DROP TABLE IF EXISTS pg_temp.outflow_diff');
      // Exact row counts need one process and a hash join (a merge join may read rows twice).
      await this.client.query('SET LOCAL max_parallel_workers_per_gather = 0');
      await this.client.query('SET LOCAL enable_mergejoin = off');
      // Compiling the statement (about 1 s) cost more than it saved at 1M and 10M rows.
      await this.client.query('SET LOCAL jit = off');
      const plan = await this.client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF, FORMAT JSON) ${diffSql}`);
      read = joinInputs(plan.rows[0]!['QUERY PLAN'], this.deliveredName);
      await this.client.query('COMMIT');
    } catch (err) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw new OutflowError('OUTFLOW_SOURCE', `${where}: diffing ${m.label} failed: ${describeError(err)}`, { retryable: isTransient(err), cause: err });
    }
    this.snapshotted = true;
    try {
      const r = await this.client.query<{ op: string; n: string; unmatched: string }>(
        `SELECT outflow_op AS op, count(*) AS n, count(*) FILTER (WHERE outflow_fp IS NULL) AS unmatched FROM outflow_diff GROUP BY 1`,
      );
      const counts = new Map(r.rows.map((row) => [row.op, Number(row.n)]));
      const nullKeys = counts.get('nullkey') ?? 0;
      if (nullKeys > 0) {
        throw new OutflowError('OUTFLOW_MODEL_KEY', `${where}: ${nullKeys} rows of ${m.label} have a null primary key (${this.model.primaryKey.join(', ')}); every row needs one`);
      }
      const { modelRows, stateRows } = read;
      const unmatched = r.rows.reduce((n, row) => n + Number(row.unmatched), 0);
      const fresh = await this.client.query<{ n: string; dup: boolean }>(
        `SELECT count(*) AS n, count(*) > count(DISTINCT outflow_key) AS dup FROM outflow_diff WHERE outflow_op = 'insert' AND outflow_in_state IS NULL`,
      );
      // Model rows that met a delivered row, against the delivered keys met: more rows than
      // keys means a key came twice. New keys are all in outflow_diff, checked there.
      const duplicated = modelRows - Number(fresh.rows[0]!.n) > stateRows - unmatched || fresh.rows[0]!.dup;
      if (duplicated) {
        const dup = await this.client.query<{ k: string }>(
          `SELECT ${key} AS k FROM (${m.sql}) AS m GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 5`,
        );
        const duplicates = dup.rows.map((row) => row.k);
        throw new OutflowError(
          'OUTFLOW_MODEL_KEY',
          `${where}: the primary key (${this.model.primaryKey.join(', ')}) is not unique; duplicated: ${duplicates.join(', ')}. Nothing was sent.`,
          { details: { duplicates } },
        );
      }
      if (!this.o.readOnly) {
        // md5 fingerprints of unchanged rows take the 64-bit form, once.
        await this.client.query(
          `UPDATE ${this.delivered} d
              SET fp = CASE WHEN d.fp = x.outflow_legacy_fp THEN x.outflow_fp ELSE d.fp END,
                  parked_fp = CASE WHEN d.parked_fp = x.outflow_legacy_fp THEN x.outflow_fp ELSE d.parked_fp END
             FROM outflow_diff x
            WHERE x.outflow_op = 'keep' AND x.outflow_legacy_fp IS NOT NULL AND x.outflow_dkey = d.key`,
        );
      }
      await this.client.query(`CREATE INDEX ON outflow_diff (outflow_n) WHERE outflow_n IS NOT NULL`);
      await this.client.query(`ANALYZE outflow_diff`);
      const out = { insert: counts.get('insert') ?? 0, update: counts.get('update') ?? 0, delete: counts.get('delete') ?? 0 };
      this.diffRows = out.insert + out.update + out.delete;
      return out;
    } catch (err) {
      throw this.fail('computing the diff', err);
    }
  }

  /** Whether the delivered table has the match key of writes in doubt (state written before it had none). */
  private async hasSentMatch(): Promise<boolean> {
    const r = await this.client.query(`SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'sent_match' AND NOT attisdropped`, [this.delivered]);
    return r.rows.length > 0;
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

  /**
   * Rows that left the model and are neither delivered nor sent go; parked rows whose model
   * row is back to the delivered version are unparked. Every row either can touch is in
   * outflow_diff: it was parked or undelivered when the diff ran (kept there for this), or
   * the diff sent it.
   */
  async tidy(): Promise<string[]> {
    this.assertWritable();
    if (!this.snapshotted) return [];
    try {
      await this.client.query('BEGIN');
      const gone = await this.client.query<{ key: string }>(
        `DELETE FROM ${this.delivered} d
          USING (SELECT outflow_dkey FROM outflow_diff GROUP BY 1 HAVING bool_and(outflow_fp IS NULL)) x
          WHERE x.outflow_dkey = d.key AND d.fp IS NULL AND d.sent_fp IS NULL
          RETURNING d.key`,
      );
      const back = await this.client.query<{ key: string }>(
        `UPDATE ${this.delivered} d SET parked_fp = NULL FROM outflow_diff x
          WHERE x.outflow_dkey = d.key AND x.outflow_fp IS NOT NULL AND d.parked_fp IS NOT NULL AND x.outflow_fp = d.fp RETURNING d.key`,
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
 * Whether the schema's tables and the sync's state table (with every column this version
 * writes) are there already: then a run prepares nothing, and does not queue behind the
 * other syncs' runs for the schema's lock.
 */
async function stateReady(client: pg.Client, schema: string, table: string): Promise<boolean> {
  const r = await client.query<{ ready: boolean }>(
    `SELECT to_regclass($2) IS NOT NULL
        AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'sent_match' AND NOT attisdropped) AS ready`,
    [table, `${ident(schema)}.sync_meta`],
  );
  return r.rows[0]?.ready === true;
}

/**
 * The diff pushed down into PostgreSQL: the delivered state of each sync is a table in the
 * schema Outflow owns (`outflow_state` by default), the model's key and fingerprint are
 * computed in SQL as one pass joins it with that table, and only changed rows are kept (in a
 * temporary table) and read back.
 */
export const pushdownDiff: PushdownDiff<PostgresConfig> = {
  async open(ctx, model, options) {
    const schema = ctx.config.stateSchema ?? DEFAULTS.stateSchema;
    const client = await connect(ctx, 'OUTFLOW_LEDGER');
    try {
      const table = `${ident(schema)}.${ident(stateTableName(options.sync))}`;
      if (!options.readOnly && (await stateReady(client, schema, table))) {
        return new PostgresDiffStore(ctx, client, model, options, schema, table, stateTableName(options.sync), true);
      }
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
        return new PostgresDiffStore(ctx, client, model, options, schema, table, stateTableName(options.sync), true);
      }
      const exists = await client.query<{ t: string | null; m: string | null }>(`SELECT to_regclass($1)::text AS t, to_regclass($2)::text AS m`, [
        table,
        `${ident(schema)}.sync_meta`,
      ]);
      if (exists.rows[0]!.t !== null) return new PostgresDiffStore(ctx, client, model, options, schema, table, stateTableName(options.sync), exists.rows[0]!.m !== null);
      await client.query(TABLE_DDL('pg_temp.outflow_delivered'));
      return new PostgresDiffStore(ctx, client, model, options, schema, 'pg_temp.outflow_delivered', 'outflow_delivered', exists.rows[0]!.m !== null);
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
