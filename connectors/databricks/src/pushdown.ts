import { createHash } from 'node:crypto';
import {
  OutflowError,
  failpoint,
  latestAcks,
  type Ack,
  type ConnectorContext,
  type DiffRow,
  type DiffStore,
  type Model,
  type PushdownDiff,
  type PushdownOptions,
  type Row,
} from '@outflow/core';
import { DatabricksSession, databricksError, ident, str } from './client.js';
import type { DatabricksConfig } from './config.js';
import { modelSql, relationType } from './source.js';

type Ctx = ConnectorContext<DatabricksConfig>;

/** The schema Outflow owns for pushed-down diff state, unless `stateSchema` names another. */
export const STATE_SCHEMA = 'outflow_state';
/** Marks a row parked as a delete (the destination refused to delete it). */
const PARKED_DELETE = '~delete';
/** Marks a delivered fingerprint as out of date after a mapping change. */
const STALE = '~stale';
/** Changed rows read per statement. */
const PAGE_ROWS = 5_000;
/** Acknowledgements written per MERGE (and keys per IN list): keeps a statement's text small. */
const ACK_ROWS = 2_000;
/** The diff's own columns, beside the model's. */
const OWN = new Set(['outflow_n', 'outflow_op', 'outflow_key', 'outflow_dkey', 'outflow_fp', 'outflow_old_fp', 'outflow_dest_id', 'outflow_sent_fp', 'outflow_sent_match']);

const STATE_COLUMNS = 'key STRING NOT NULL, fp STRING, dest_id STRING, parked_fp STRING, sent_fp STRING, sent_match STRING, updated_at TIMESTAMP';
/** The delivered state of a sync that never wrote any: read-only plans read this. */
const EMPTY_STATE =
  '(SELECT CAST(NULL AS STRING) AS key, CAST(NULL AS STRING) AS fp, CAST(NULL AS STRING) AS dest_id, CAST(NULL AS STRING) AS parked_fp, ' +
  'CAST(NULL AS STRING) AS sent_fp, CAST(NULL AS STRING) AS sent_match WHERE 1 = 0)';

/** A string, or NULL typed as a string (an inline table's column of nulls only would have no type). */
const text = (v: string | null | undefined): string => (v === null || v === undefined ? 'CAST(NULL AS STRING)' : str(v));
const nul = (v: Row[string] | undefined): string | null => (v === null || v === undefined ? null : String(v));
const count = (rows: Row[]): number => Number(rows[0]?.['num_affected_rows'] ?? rows[0]?.['n'] ?? 0);

/** The names of one sync's tables in the schema Outflow owns. */
interface Names {
  /** `catalog.schema` (or `schema`, resolved in the session's catalog), quoted. */
  schema: string;
  /** The schema's name, for messages. */
  label: string;
  /** The state table's own name, as `information_schema` lists it. */
  stateName: string;
  /** Per key: what was delivered, parked, sent. */
  state: string;
  /** Per sync: the engine's notes (mapping fingerprint …). */
  meta: string;
  /** This run's snapshot of the model: key, fingerprint, columns. */
  snap: string;
  /** This run's changes, numbered. */
  changes: string;
}

function namesOf(ctx: Ctx, sync: string): Names {
  const schemaName = ctx.config.stateSchema ?? STATE_SCHEMA;
  const schema = [...(ctx.config.catalog === undefined ? [] : [ctx.config.catalog]), schemaName].map(ident).join('.');
  const base = `outflow_diff_${sync.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 60)}_${createHash('sha256').update(sync).digest('hex').slice(0, 10)}`;
  const table = (name: string) => `${schema}.${ident(name)}`;
  return {
    schema,
    label: `${ctx.config.catalog === undefined ? '' : `${ctx.config.catalog}.`}${schemaName}`,
    stateName: base,
    state: table(base),
    meta: table('outflow_meta'),
    snap: table(`${base}__snap`),
    changes: table(`${base}__changes`),
  };
}

/** The model key as core's `keyOf` writes it: the value's text, or a JSON array of the values' texts. */
function keySql(primaryKey: readonly string[]): string {
  const texts = primaryKey.map((c) => `CAST(m.${ident(c)} AS STRING)`);
  if (primaryKey.length === 1) return texts[0]!;
  return `CASE WHEN ${primaryKey.map((c) => `m.${ident(c)} IS NULL`).join(' OR ')} THEN NULL ELSE to_json(array(${texts.join(', ')})) END`;
}

/**
 * The fingerprint of the delivered columns: md5 of the columns as a JSON object, named and in
 * a fixed order. (`to_json` leaves out null fields; with the same fields every time, two rows
 * still print alike only when their values are alike.)
 */
function fpSql(columns: readonly string[]): string {
  if (columns.length === 0) return `md5('')`;
  return `md5(to_json(named_struct(${columns.map((c) => `${str(c)}, m.${ident(c)}`).join(', ')})))`;
}

/**
 * The delivered state of one diff sync in a schema Outflow owns in Databricks, and the diff
 * as Databricks SQL: the model is snapshotted with its key and fingerprint into a Delta table,
 * compared with the state table by a full outer join into a table of changes, and only those
 * are read back, a page at a time. Acknowledgements are MERGEs, each one atomic (a Delta
 * commit); an `apply` of more than {@link ACK_ROWS} keys writes several, each key once, so a
 * crash between two leaves keys settled or still in doubt, never half-written. Same semantics
 * as every DiffStore (packages/core/src/state/store.ts). A read-only store (a plan) writes
 * nothing: its diff is a query, run again for each page.
 */
class DatabricksDiffStore implements DiffStore {
  private diffRows = 0;
  private snapshotted = false;

  constructor(
    private readonly session: DatabricksSession,
    private readonly names: Names,
    private readonly snapSql: string,
    private readonly options: PushdownOptions,
    /** Whether the state tables exist (a read-only store of a sync never run reads them as empty). */
    private readonly exists: boolean,
    private readonly label: string,
  ) {}

  private get where(): string {
    return `sync "${this.options.sync}"`;
  }

  private get stateRel(): string {
    return this.exists ? this.names.state : EMPTY_STATE;
  }

  private assertWritable(): void {
    if (this.options.readOnly) throw new OutflowError('OUTFLOW_INTERNAL', 'the Databricks diff state was opened read-only');
  }

  /** Runs `body`; a failure is a ledger error naming what was being done in the state schema. */
  private async state<T>(what: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (err) {
      throw databricksError('OUTFLOW_LEDGER', `${this.where}: ${what} in ${this.names.label}`, err);
    }
  }

  getMeta(key: string): Promise<string | undefined> {
    if (!this.exists) return Promise.resolve(undefined);
    return this.state('reading sync metadata', async () => {
      const rows = await this.session.query(`SELECT v FROM ${this.names.meta} WHERE sync = ${str(this.options.sync)} AND k = ${str(key)}`);
      return rows.length ? nul(rows[0]!['v']) ?? undefined : undefined;
    });
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.assertWritable();
    await this.state('writing sync metadata', () =>
      this.session.query(
        `MERGE INTO ${this.names.meta} AS d USING (VALUES (${str(this.options.sync)}, ${str(key)}, ${str(value)})) AS s(sync, k, v) ON d.sync = s.sync AND d.k = s.k
         WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (sync, k, v) VALUES (s.sync, s.k, s.v)`,
      ),
    );
  }

  async markAllStale(): Promise<number> {
    this.assertWritable();
    return this.state('marking delivered rows stale', async () =>
      count(await this.session.query(`UPDATE ${this.names.state} SET fp = '${STALE}', parked_fp = NULL, updated_at = current_timestamp WHERE fp IS NOT NULL`)),
    );
  }

  async unpark(keys?: string[]): Promise<number> {
    this.assertWritable();
    return this.state('clearing parked rows', async () => {
      if (keys === undefined) return count(await this.session.query(`UPDATE ${this.names.state} SET parked_fp = NULL WHERE parked_fp IS NOT NULL`));
      let n = 0;
      for (let i = 0; i < keys.length; i += ACK_ROWS) {
        const part = keys.slice(i, i + ACK_ROWS);
        n += count(await this.session.query(`UPDATE ${this.names.state} SET parked_fp = NULL WHERE parked_fp IS NOT NULL AND key IN (${part.map(str).join(', ')})`));
      }
      return n;
    });
  }

  /**
   * A delivered row is compared with its model row; a parked version is not sent again until
   * it changes; a row sent but never acknowledged is sent again; a key that left the model is
   * deleted only when it was delivered (or possibly delivered: sent) and its delete is not parked.
   */
  private diffSql(snap: string): string {
    return `SELECT row_number() OVER (ORDER BY coalesce(s.outflow_key, d.key)) AS outflow_n,
        CASE WHEN s.outflow_key IS NULL THEN 'delete' WHEN d.fp IS NULL THEN 'insert' ELSE 'update' END AS outflow_op,
        coalesce(s.outflow_key, d.key) AS outflow_dkey, d.fp AS outflow_old_fp, d.dest_id AS outflow_dest_id, d.sent_fp AS outflow_sent_fp,
        d.sent_match AS outflow_sent_match, s.*
      FROM ${snap} AS s FULL OUTER JOIN ${this.stateRel} AS d ON s.outflow_key = d.key
      WHERE (s.outflow_key IS NULL AND (d.fp IS NOT NULL OR d.sent_fp IS NOT NULL) AND d.parked_fp IS DISTINCT FROM '${PARKED_DELETE}')
         OR (s.outflow_key IS NOT NULL AND d.key IS NULL)
         OR (s.outflow_key IS NOT NULL AND d.sent_fp IS NOT NULL AND s.outflow_fp IS DISTINCT FROM d.parked_fp)
         OR (s.outflow_key IS NOT NULL AND s.outflow_fp IS DISTINCT FROM d.fp AND s.outflow_fp IS DISTINCT FROM d.parked_fp)`;
  }

  /** The relation the changes are read from: the table written by computeChanges, or (read-only) the query. */
  private get changesRel(): string {
    return this.options.readOnly ? `(${this.diffSql(`(${this.snapSql})`)}) AS c` : this.names.changes;
  }

  async computeChanges(): Promise<{ insert: number; update: number; delete: number }> {
    const snap = this.options.readOnly ? `(${this.snapSql})` : this.names.snap;
    if (!this.options.readOnly) {
      try {
        await this.session.query(`DROP TABLE IF EXISTS ${this.names.snap}`);
        await this.session.query(`CREATE TABLE ${this.names.snap} USING DELTA AS ${this.snapSql}`);
      } catch (err) {
        throw databricksError('OUTFLOW_SOURCE', `${this.where}: snapshotting ${this.label} into ${this.names.label}`, err);
      }
      this.snapshotted = true;
    }
    return this.state('computing the diff', async () => {
      const nulls = Number((await this.session.query(`SELECT count(*) AS n FROM ${snap} AS s WHERE outflow_key IS NULL`))[0]?.['n'] ?? 0);
      if (nulls > 0) {
        throw new OutflowError('OUTFLOW_MODEL_KEY', `${this.where}: ${nulls} rows of ${this.label} have a null primary key; every row needs one. Nothing was sent.`);
      }
      const dups = await this.session.query(`SELECT outflow_key AS k FROM ${snap} AS s GROUP BY outflow_key HAVING count(*) > 1 ORDER BY outflow_key LIMIT 5`);
      if (dups.length) {
        const duplicates = dups.map((d) => String(d['k']));
        throw new OutflowError('OUTFLOW_MODEL_KEY', `${this.where}: the primary key of ${this.label} is not unique; duplicated: ${duplicates.join(', ')}. Nothing was sent.`, {
          details: { duplicates },
        });
      }
      if (!this.options.readOnly) {
        await this.session.query(`DROP TABLE IF EXISTS ${this.names.changes}`);
        await this.session.query(`CREATE TABLE ${this.names.changes} USING DELTA AS ${this.diffSql(this.names.snap)}`);
      }
      const counts = await this.session.query(`SELECT outflow_op AS op, count(*) AS n FROM ${this.changesRel} GROUP BY outflow_op`);
      const out = { insert: 0, update: 0, delete: 0 };
      for (const c of counts) out[String(c['op']) as keyof typeof out] = Number(c['n']);
      this.diffRows = out.insert + out.update + out.delete;
      return out;
    });
  }

  async *changes(): AsyncGenerator<DiffRow[]> {
    for (let from = 1; from <= this.diffRows; from += PAGE_ROWS) {
      const rows = await this.state('reading the changes', () =>
        this.session.query(`SELECT * FROM ${this.changesRel} WHERE outflow_n BETWEEN ${from} AND ${from + PAGE_ROWS - 1} ORDER BY outflow_n`),
      );
      yield rows.map((r): DiffRow => {
        const op = String(r['outflow_op']) as DiffRow['op'];
        let row: Row | null = null;
        if (op !== 'delete') {
          row = {};
          for (const [k, v] of Object.entries(r)) if (!OWN.has(k)) row[k] = v;
        }
        const match = nul(r['outflow_sent_match']);
        return {
          op,
          key: String(r['outflow_dkey']),
          fp: op === 'delete' ? null : nul(r['outflow_fp']),
          row,
          oldFp: nul(r['outflow_old_fp']),
          sentFp: nul(r['outflow_sent_fp']),
          sentMatch: match === null ? null : (JSON.parse(match) as Row),
          destId: nul(r['outflow_dest_id']),
        };
      });
    }
  }

  async apply(acks: Ack[]): Promise<void> {
    this.assertWritable();
    const last = latestAcks(acks);
    for (let i = 0; i < last.length; i += ACK_ROWS) {
      const values = last.slice(i, i + ACK_ROWS).map((a) => {
        const fp = a.kind === 'parked' ? (a.fp ?? PARKED_DELETE) : a.kind === 'delivered' || a.kind === 'sent' ? a.fp : null;
        const destId = a.kind === 'delivered' ? (a.destId ?? null) : null;
        const match = a.kind === 'sent' && a.match !== undefined ? JSON.stringify(a.match) : null;
        return `(${str(a.key)}, ${str(a.kind)}, ${text(fp)}, ${text(destId)}, ${text(match)})`;
      });
      // One MERGE per part: a Delta commit, all of it or nothing. A key removed ('deleted',
      // 'forget') loses its row; the others update or insert theirs.
      failpoint('state.inside-apply');
      await this.state('recording delivered state', () =>
        this.session.query(
          `MERGE INTO ${this.names.state} AS d
           USING (VALUES ${values.join(', ')}) AS a(key, kind, fp, dest_id, sent_match) ON d.key = a.key
           WHEN MATCHED AND a.kind IN ('deleted', 'forget') THEN DELETE
           WHEN MATCHED AND a.kind = 'delivered' THEN UPDATE SET fp = a.fp, dest_id = coalesce(a.dest_id, d.dest_id), parked_fp = NULL, sent_fp = NULL, sent_match = NULL, updated_at = current_timestamp
           WHEN MATCHED AND a.kind = 'parked' THEN UPDATE SET parked_fp = a.fp, updated_at = current_timestamp
           WHEN MATCHED AND a.kind = 'sent' THEN UPDATE SET sent_fp = a.fp, sent_match = a.sent_match, updated_at = current_timestamp
           WHEN NOT MATCHED AND a.kind = 'delivered' THEN INSERT (key, fp, dest_id, parked_fp, sent_fp, sent_match, updated_at) VALUES (a.key, a.fp, a.dest_id, NULL, NULL, NULL, current_timestamp)
           WHEN NOT MATCHED AND a.kind = 'parked' THEN INSERT (key, fp, dest_id, parked_fp, sent_fp, sent_match, updated_at) VALUES (a.key, NULL, NULL, a.fp, NULL, NULL, current_timestamp)
           WHEN NOT MATCHED AND a.kind = 'sent' THEN INSERT (key, fp, dest_id, parked_fp, sent_fp, sent_match, updated_at) VALUES (a.key, NULL, NULL, NULL, a.fp, a.sent_match, current_timestamp)`,
        ),
      );
    }
  }

  inDoubt(): Promise<{ key: string; fp: string }[]> {
    return this.state('reading writes in doubt', async () =>
      (await this.session.query(`SELECT key, sent_fp FROM ${this.stateRel} AS d WHERE sent_fp IS NOT NULL`)).map((r) => ({ key: String(r['key']), fp: String(r['sent_fp']) })),
    );
  }

  deliveredCount(): Promise<number> {
    return this.state('counting delivered records', async () =>
      Number((await this.session.query(`SELECT count(*) AS n FROM ${this.stateRel} AS d WHERE fp IS NOT NULL OR sent_fp IS NOT NULL`))[0]?.['n'] ?? 0),
    );
  }

  async tidy(): Promise<string[]> {
    this.assertWritable();
    if (!this.snapshotted) return [];
    const { state, snap } = this.names;
    return this.state('tidying parked rows', async () => {
      const gone = await this.session.query(`SELECT key FROM ${state} WHERE fp IS NULL AND sent_fp IS NULL AND key NOT IN (SELECT outflow_key FROM ${snap})`);
      const back = await this.session.query(
        `SELECT d.key FROM ${state} AS d JOIN ${snap} AS s ON s.outflow_key = d.key WHERE d.parked_fp IS NOT NULL AND s.outflow_fp = d.fp`,
      );
      if (gone.length) await this.session.query(`DELETE FROM ${state} WHERE fp IS NULL AND sent_fp IS NULL AND key NOT IN (SELECT outflow_key FROM ${snap})`);
      if (back.length) {
        await this.session.query(
          `MERGE INTO ${state} AS d USING ${snap} AS s ON s.outflow_key = d.key
           WHEN MATCHED AND d.parked_fp IS NOT NULL AND s.outflow_fp = d.fp THEN UPDATE SET parked_fp = NULL, updated_at = current_timestamp`,
        );
      }
      return [...gone, ...back].map((r) => String(r['key']));
    });
  }

  /** Drops this run's snapshot and changes (they hold copies of model rows), then closes the session. */
  async close(): Promise<void> {
    if (!this.options.readOnly) {
      await this.session.query(`DROP TABLE IF EXISTS ${this.names.changes}`).catch(() => undefined);
      await this.session.query(`DROP TABLE IF EXISTS ${this.names.snap}`).catch(() => undefined);
    }
    await this.session.close();
  }
}

/** Whether both of a sync's state tables exist. */
async function stateExists(session: DatabricksSession, ctx: Ctx, sync: string): Promise<boolean> {
  const schema = ctx.config.stateSchema ?? STATE_SCHEMA;
  const info = ctx.config.catalog === undefined ? 'information_schema' : `${ident(ctx.config.catalog)}.information_schema`;
  const rows = await session.query(
    `SELECT count(*) AS n FROM ${info}.tables WHERE table_schema = ${str(schema.toLowerCase())} AND table_name IN (${str(namesOf(ctx, sync).stateName)}, 'outflow_meta')`,
  );
  return Number(rows[0]?.['n'] ?? 0) === 2;
}

async function open(ctx: Ctx, model: Model, options: PushdownOptions): Promise<DiffStore> {
  const { sql, label } = modelSql(model);
  const names = namesOf(ctx, options.sync);
  const session = await DatabricksSession.open(ctx, 'OUTFLOW_LEDGER');
  try {
    const columns = (await session.describe(sql)).map((c) => c.name);
    const present = new Set(columns);
    const missingKey = model.primaryKey.filter((c) => !present.has(c));
    if (missingKey.length) throw new OutflowError('OUTFLOW_MAPPING', `${label} has no primary key column ${missingKey.join(', ')} (columns: ${columns.join(', ')})`);
    const missing = (options.columns ?? []).filter((c) => !present.has(c));
    if (missing.length) throw new OutflowError('OUTFLOW_MAPPING', `${label} has no column ${missing.join(', ')} (columns: ${columns.join(', ')})`);
    // The diff's own columns sit beside the model's: a model column of such a name would
    // collide with one or be dropped from the rows sent.
    const taken = columns.filter((c) => /^outflow_/i.test(c));
    if (taken.length) {
      throw new OutflowError(
        'OUTFLOW_MAPPING',
        `${label} has ${taken.length === 1 ? 'a column' : 'columns'} named ${taken.map((c) => `"${c}"`).join(', ')}: names starting with outflow_ (in any case) are reserved for the diff's own columns; rename ${taken.length === 1 ? 'it' : 'them'} in the model`,
      );
    }
    const type = await relationType(session, ctx, model);
    if (type === 'MATERIALIZED_VIEW' || type === 'STREAMING_TABLE') {
      ctx.logger.info(
        { sync: options.sync, table: model.table, type },
        `${model.table} is a ${type === 'MATERIALIZED_VIEW' ? 'materialized view' : 'streaming table'}: each run diffs it in Databricks as of its latest refresh and sends only the rows that changed`,
      );
    }
    const snapSql = `SELECT ${keySql(model.primaryKey)} AS outflow_key, ${fpSql(options.columns ?? columns)} AS outflow_fp, m.* FROM (${sql}) AS m`;
    let exists = await stateExists(session, ctx, options.sync);
    if (!options.readOnly && !exists) {
      await session.query(`CREATE SCHEMA IF NOT EXISTS ${names.schema}`);
      await session.query(`CREATE TABLE IF NOT EXISTS ${names.meta} (sync STRING NOT NULL, k STRING NOT NULL, v STRING) USING DELTA`);
      await session.query(`CREATE TABLE IF NOT EXISTS ${names.state} (${STATE_COLUMNS}) USING DELTA`);
      exists = true;
    }
    return new DatabricksDiffStore(session, names, snapSql, options, exists, label);
  } catch (err) {
    await session.close();
    throw databricksError('OUTFLOW_LEDGER', `sync "${options.sync}": preparing the diff of ${label} in ${names.label}`, err);
  }
}

/**
 * The diff pushed down into Databricks (`source.diff`): delivered state in the schema
 * `stateSchema` (`outflow_state` by default) of the configured catalog, created on first use.
 */
export const pushdown: PushdownDiff<DatabricksConfig> = { open };
