import { createHash } from 'node:crypto';
import { OutflowError, latestAcks, type Ack, type ConnectorContext, type DiffRow, type DiffStore, type Model, type PushdownDiff, type PushdownOptions, type Row } from '@outflow/core';
import { SnowflakeSession, ident, snowflakeError, str, type Bind } from './client.js';
import type { SnowflakeConfig } from './config.js';
import { modelSql } from './source.js';

type Ctx = ConnectorContext<SnowflakeConfig>;

/** Marks a row parked as a delete (the destination refused to delete it). */
const PARKED_DELETE = '~delete';
/** Marks a delivered fingerprint as out of date after a mapping change. */
const STALE = '~stale';
const PAGE_ROWS = 5000;
const ACK_ROWS = 300;

// Columns of the temporary diff table that are Outflow's, not the model's.
const OWN = new Set(['OUTFLOW_N', 'OUTFLOW_OP', 'OUTFLOW_KEY', 'OUTFLOW_FP', 'OUTFLOW_OLD_FP', 'OUTFLOW_DEST_ID', 'OUTFLOW_SENT_FP']);

/**
 * The delivered state of one diff sync in a schema Outflow owns in Snowflake, and the diff
 * as Snowflake SQL: the model is fingerprinted (MD5 of its delivered columns as JSON) into a
 * temporary table, compared with the state table by a full outer join, and only the changed
 * rows are read back. Same semantics as every DiffStore (packages/core/src/state/store.ts).
 */
class SnowflakeDiffStore implements DiffStore {
  private diffRows = 0;

  constructor(
    private readonly session: SnowflakeSession,
    private readonly state: string,
    private readonly meta: string,
    private readonly stateName: string,
    private readonly snapSql: string,
    private readonly readOnly: boolean,
    private readonly exists: boolean,
    private readonly label: string,
  ) {}

  private get stateRel(): string {
    return this.exists ? this.state : `(SELECT CAST(NULL AS VARCHAR) AS KEY, CAST(NULL AS VARCHAR) AS FP, CAST(NULL AS VARCHAR) AS DEST_ID, CAST(NULL AS VARCHAR) AS PARKED_FP, CAST(NULL AS VARCHAR) AS SENT_FP WHERE 1 = 0)`;
  }

  private assertWritable(): void {
    if (this.readOnly) throw new OutflowError('OUTFLOW_INTERNAL', 'the Snowflake diff state was opened read-only');
  }

  async getMeta(key: string): Promise<string | undefined> {
    if (!this.exists) return undefined;
    const rows = await this.session.query(`SELECT V FROM ${this.meta} WHERE K = ?`, [key]);
    return rows.length ? String(rows[0]!['V']) : undefined;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.assertWritable();
    await this.transaction(async () => {
      await this.session.updateNow(`DELETE FROM ${this.meta} WHERE K = ?`, [key]);
      await this.session.updateNow(`INSERT INTO ${this.meta} (K, V) VALUES (?, ?)`, [key, value]);
    });
  }

  async markAllStale(): Promise<number> {
    this.assertWritable();
    return this.session.exclusive(() => this.session.updateNow(`UPDATE ${this.state} SET FP = '${STALE}', PARKED_FP = NULL WHERE FP IS NOT NULL`));
  }

  async unpark(keys?: string[]): Promise<number> {
    this.assertWritable();
    if (keys === undefined) {
      return this.session.exclusive(() => this.session.updateNow(`UPDATE ${this.state} SET PARKED_FP = NULL WHERE PARKED_FP IS NOT NULL`));
    }
    let n = 0;
    for (let i = 0; i < keys.length; i += ACK_ROWS) {
      const part = keys.slice(i, i + ACK_ROWS);
      n += await this.session.exclusive(() =>
        this.session.updateNow(`UPDATE ${this.state} SET PARKED_FP = NULL WHERE KEY IN (${part.map(() => '?').join(', ')})`, part),
      );
    }
    return n;
  }

  async computeChanges(): Promise<{ insert: number; update: number; delete: number }> {
    await this.session.query(`CREATE OR REPLACE TEMPORARY TABLE OUTFLOW_SNAP AS ${this.snapSql}`);
    const nulls = await this.session.query(`SELECT COUNT(*) AS N FROM OUTFLOW_SNAP WHERE OUTFLOW_KEY IS NULL`);
    if (Number(nulls[0]!['N']) > 0) {
      throw new OutflowError('OUTFLOW_MODEL_KEY', `${this.label}: ${String(nulls[0]!['N'])} rows have a null primary key; every row needs one. Nothing was sent.`);
    }
    const dups = await this.session.query(`SELECT OUTFLOW_KEY AS K FROM OUTFLOW_SNAP GROUP BY OUTFLOW_KEY HAVING COUNT(*) > 1 ORDER BY OUTFLOW_KEY LIMIT 5`);
    if (dups.length) {
      const duplicates = dups.map((d) => String(d['K']));
      throw new OutflowError('OUTFLOW_MODEL_KEY', `${this.label}: the primary key is not unique; duplicated: ${duplicates.join(', ')}. Nothing was sent.`, {
        details: { duplicates },
      });
    }
    // A delivered row is compared with its model row; a parked version is not re-sent until it
    // changes; a key that left the model is deleted only when Outflow delivered it.
    await this.session.query(`CREATE OR REPLACE TEMPORARY TABLE OUTFLOW_DIFF AS
      SELECT ROW_NUMBER() OVER (ORDER BY COALESCE(s.OUTFLOW_KEY, d.KEY)) AS OUTFLOW_N,
        CASE WHEN s.OUTFLOW_KEY IS NULL THEN 'delete' WHEN d.FP IS NULL THEN 'insert' ELSE 'update' END AS OUTFLOW_OP,
        COALESCE(s.OUTFLOW_KEY, d.KEY) AS OUTFLOW_KEY, d.FP AS OUTFLOW_OLD_FP, d.DEST_ID AS OUTFLOW_DEST_ID, d.SENT_FP AS OUTFLOW_SENT_FP, s.* EXCLUDE (OUTFLOW_KEY)
      FROM OUTFLOW_SNAP s FULL OUTER JOIN ${this.stateRel} d ON s.OUTFLOW_KEY = d.KEY
      WHERE (s.OUTFLOW_KEY IS NULL AND (d.FP IS NOT NULL OR d.SENT_FP IS NOT NULL) AND d.PARKED_FP IS DISTINCT FROM '${PARKED_DELETE}')
         OR (s.OUTFLOW_KEY IS NOT NULL AND d.KEY IS NULL)
         OR (s.OUTFLOW_KEY IS NOT NULL AND d.SENT_FP IS NOT NULL AND s.OUTFLOW_FP IS DISTINCT FROM d.PARKED_FP)
         OR (s.OUTFLOW_KEY IS NOT NULL AND s.OUTFLOW_FP IS DISTINCT FROM d.FP AND s.OUTFLOW_FP IS DISTINCT FROM d.PARKED_FP)`);
    const counts = await this.session.query(`SELECT OUTFLOW_OP AS OP, COUNT(*) AS N FROM OUTFLOW_DIFF GROUP BY OUTFLOW_OP`);
    const out = { insert: 0, update: 0, delete: 0 };
    for (const c of counts) out[c['OP'] as keyof typeof out] = Number(c['N']);
    this.diffRows = out.insert + out.update + out.delete;
    return out;
  }

  async *changes(): AsyncGenerator<DiffRow[]> {
    for (let from = 1; from <= this.diffRows; from += PAGE_ROWS) {
      const rows = await this.session.query(`SELECT * FROM OUTFLOW_DIFF WHERE OUTFLOW_N BETWEEN ? AND ? ORDER BY OUTFLOW_N`, [from, from + PAGE_ROWS - 1]);
      yield rows.map((r) => {
        const op = r['OUTFLOW_OP'] as DiffRow['op'];
        const model: Row = {};
        for (const [k, v] of Object.entries(r)) if (!OWN.has(k)) model[k] = v;
        const nul = (v: unknown) => (v === null || v === undefined ? null : String(v));
        return {
          op,
          key: String(r['OUTFLOW_KEY']),
          fp: op === 'delete' ? null : nul(r['OUTFLOW_FP']),
          row: op === 'delete' ? null : model,
          oldFp: nul(r['OUTFLOW_OLD_FP']),
          sentFp: nul(r['OUTFLOW_SENT_FP']),
          destId: nul(r['OUTFLOW_DEST_ID']),
        };
      });
    }
  }

  async apply(acks: Ack[]): Promise<void> {
    this.assertWritable();
    if (acks.length === 0) return;
    const delivered: Extract<Ack, { kind: 'delivered' }>[] = [];
    const parked: Extract<Ack, { kind: 'parked' }>[] = [];
    const sent: Extract<Ack, { kind: 'sent' }>[] = [];
    const removed: string[] = [];
    for (const a of latestAcks(acks)) {
      if (a.kind === 'delivered') delivered.push(a);
      else if (a.kind === 'parked') parked.push(a);
      else if (a.kind === 'sent') sent.push(a);
      else removed.push(a.key);
    }
    const source = (rows: Bind[][]) =>
      rows.map((r, i) => `SELECT ${r.map((_, c) => (i === 0 ? `CAST(? AS VARCHAR) AS C${c}` : 'CAST(? AS VARCHAR)')).join(', ')}`).join(' UNION ALL ');
    try {
      await this.transaction(async () => {
        for (let i = 0; i < delivered.length; i += ACK_ROWS) {
          const rows = delivered.slice(i, i + ACK_ROWS).map((a): Bind[] => [a.key, a.fp, a.destId ?? null]);
          await this.session.updateNow(
            `MERGE INTO ${this.state} d USING (${source(rows)}) s ON d.KEY = s.C0
             WHEN MATCHED THEN UPDATE SET FP = s.C1, DEST_ID = COALESCE(s.C2, d.DEST_ID), PARKED_FP = NULL, SENT_FP = NULL, UPDATED_AT = CURRENT_TIMESTAMP()
             WHEN NOT MATCHED THEN INSERT (KEY, FP, DEST_ID, PARKED_FP, SENT_FP, UPDATED_AT) VALUES (s.C0, s.C1, s.C2, NULL, NULL, CURRENT_TIMESTAMP())`,
            rows.flat(),
          );
        }
        for (let i = 0; i < parked.length; i += ACK_ROWS) {
          const rows = parked.slice(i, i + ACK_ROWS).map((a): Bind[] => [a.key, a.fp ?? PARKED_DELETE]);
          await this.session.updateNow(
            `MERGE INTO ${this.state} d USING (${source(rows)}) s ON d.KEY = s.C0
             WHEN MATCHED THEN UPDATE SET PARKED_FP = s.C1, UPDATED_AT = CURRENT_TIMESTAMP()
             WHEN NOT MATCHED THEN INSERT (KEY, FP, DEST_ID, PARKED_FP, SENT_FP, UPDATED_AT) VALUES (s.C0, NULL, NULL, s.C1, NULL, CURRENT_TIMESTAMP())`,
            rows.flat(),
          );
        }
        // Logged before the write: until acknowledged, the record may or may not be there.
        for (let i = 0; i < sent.length; i += ACK_ROWS) {
          const rows = sent.slice(i, i + ACK_ROWS).map((a): Bind[] => [a.key, a.fp]);
          await this.session.updateNow(
            `MERGE INTO ${this.state} d USING (${source(rows)}) s ON d.KEY = s.C0
             WHEN MATCHED THEN UPDATE SET SENT_FP = s.C1, UPDATED_AT = CURRENT_TIMESTAMP()
             WHEN NOT MATCHED THEN INSERT (KEY, FP, DEST_ID, PARKED_FP, SENT_FP, UPDATED_AT) VALUES (s.C0, NULL, NULL, NULL, s.C1, CURRENT_TIMESTAMP())`,
            rows.flat(),
          );
        }
        for (let i = 0; i < removed.length; i += ACK_ROWS) {
          const part = removed.slice(i, i + ACK_ROWS);
          await this.session.updateNow(`DELETE FROM ${this.state} WHERE KEY IN (${part.map(() => '?').join(', ')})`, part);
        }
      });
    } catch (err) {
      throw snowflakeError('OUTFLOW_LEDGER', `recording delivered state in ${this.state}`, err);
    }
  }

  async inDoubt(): Promise<{ key: string; fp: string }[]> {
    try {
      const rows = await this.session.query(`SELECT KEY, SENT_FP FROM ${this.stateRel} WHERE SENT_FP IS NOT NULL`);
      return rows.map((r) => ({ key: String(r['KEY']), fp: String(r['SENT_FP']) }));
    } catch (err) {
      throw snowflakeError('OUTFLOW_LEDGER', `reading writes in doubt in ${this.state}`, err);
    }
  }

  async deliveredCount(): Promise<number> {
    try {
      const rows = await this.session.query(`SELECT COUNT(*) AS N FROM ${this.stateRel} WHERE FP IS NOT NULL OR SENT_FP IS NOT NULL`);
      return Number(rows[0]!['N']);
    } catch (err) {
      throw snowflakeError('OUTFLOW_LEDGER', `counting delivered records in ${this.state}`, err);
    }
  }

  async tidy(): Promise<string[]> {
    this.assertWritable();
    const gone = await this.session.query(
      `SELECT d.KEY AS K FROM ${this.state} d LEFT JOIN OUTFLOW_SNAP s ON s.OUTFLOW_KEY = d.KEY WHERE d.FP IS NULL AND d.SENT_FP IS NULL AND s.OUTFLOW_KEY IS NULL`,
    );
    const back = await this.session.query(
      `SELECT d.KEY AS K FROM ${this.state} d JOIN OUTFLOW_SNAP s ON s.OUTFLOW_KEY = d.KEY WHERE d.PARKED_FP IS NOT NULL AND s.OUTFLOW_FP = d.FP`,
    );
    await this.transaction(async () => {
      await this.session.updateNow(`DELETE FROM ${this.state} WHERE FP IS NULL AND SENT_FP IS NULL AND KEY NOT IN (SELECT OUTFLOW_KEY FROM OUTFLOW_SNAP)`);
      await this.session.updateNow(
        `UPDATE ${this.state} SET PARKED_FP = NULL FROM OUTFLOW_SNAP
         WHERE OUTFLOW_SNAP.OUTFLOW_KEY = ${this.stateName}.KEY AND OUTFLOW_SNAP.OUTFLOW_FP = ${this.stateName}.FP AND ${this.stateName}.PARKED_FP IS NOT NULL`,
      );
    });
    return [...gone, ...back].map((r) => String(r['K']));
  }

  private transaction(fn: () => Promise<unknown>): Promise<void> {
    return this.session.exclusive(async () => {
      await this.session.queryNow('BEGIN');
      try {
        await fn();
        await this.session.queryNow('COMMIT');
      } catch (err) {
        await this.session.queryNow('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}

async function open(ctx: Ctx, model: Model, options: PushdownOptions): Promise<DiffStore> {
  const { sql, label } = modelSql(model);
  const db = ident(ctx.config.database.toUpperCase());
  const own = ctx.config.outflowSchema.toUpperCase();
  const id = createHash('sha256').update(options.sync).digest('hex').slice(0, 12).toUpperCase();
  const safe = options.sync.toUpperCase().replace(/[^A-Z0-9_]/g, '_').slice(0, 60);
  const stateName = `OUTFLOW_DIFF_${safe}_${id}`;
  const state = `${db}.${ident(own)}.${ident(stateName)}`;
  const meta = `${db}.${ident(own)}.${ident(`OUTFLOW_DIFF_META_${safe}_${id}`)}`;
  const session = await SnowflakeSession.open(ctx);
  try {
    const columns = (await session.describe(sql)).map((c) => c.name);
    const names = new Set(columns);
    const missingKey = model.primaryKey.filter((c) => !names.has(c));
    if (missingKey.length) throw new OutflowError('OUTFLOW_MAPPING', `${label} has no primary key column ${missingKey.join(', ')} (columns: ${columns.join(', ')})`);
    const missing = (options.columns ?? []).filter((c) => !names.has(c));
    if (missing.length) throw new OutflowError('OUTFLOW_MAPPING', `${label} has no column ${missing.join(', ')} (columns: ${columns.join(', ')})`);
    // The diff's own columns sit beside the model's: a model column of such a name would
    // collide with one or be dropped from the rows sent.
    const taken = columns.filter((c) => /^OUTFLOW_/i.test(c));
    if (taken.length) {
      throw new OutflowError(
        'OUTFLOW_MAPPING',
        `${label} has ${taken.length === 1 ? 'a column' : 'columns'} named ${taken.map((c) => `"${c}"`).join(', ')}: names starting with OUTFLOW_ (in any case) are reserved for the diff's own columns; rename ${taken.length === 1 ? 'it' : 'them'} in the model`,
      );
    }
    const fpCols = options.columns ?? columns;
    const keyExpr =
      model.primaryKey.length === 1
        ? `TO_VARCHAR(m.${ident(model.primaryKey[0]!)})`
        : `TO_JSON(ARRAY_CONSTRUCT(${model.primaryKey.map((c) => `TO_VARCHAR(m.${ident(c)})`).join(', ')}))`;
    const fpExpr = `MD5(TO_JSON(OBJECT_CONSTRUCT_KEEP_NULL(${fpCols.map((c) => `${str(c)}, m.${ident(c)}`).join(', ')})))`;
    const snapSql = `SELECT ${keyExpr} AS OUTFLOW_KEY, ${fpExpr} AS OUTFLOW_FP, m.* FROM (${sql}) m`;
    const present = await session.query(
      `SELECT COUNT(*) AS N FROM ${db}.INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?)`,
      [own, stateName, `OUTFLOW_DIFF_META_${safe}_${id}`],
    );
    let exists = Number(present[0]!['N']) === 2;
    if (!options.readOnly && !exists) {
      await session.query(`CREATE SCHEMA IF NOT EXISTS ${db}.${ident(own)}`);
      await session.query(
        `CREATE TABLE IF NOT EXISTS ${state} (KEY VARCHAR PRIMARY KEY, FP VARCHAR, DEST_ID VARCHAR, PARKED_FP VARCHAR, SENT_FP VARCHAR, UPDATED_AT TIMESTAMP_NTZ)`,
      );
      await session.query(`CREATE TABLE IF NOT EXISTS ${meta} (K VARCHAR PRIMARY KEY, V VARCHAR)`);
      exists = true;
    }
    return new SnowflakeDiffStore(session, state, meta, ident(stateName), snapSql, options.readOnly, exists, `sync "${options.sync}"`);
  } catch (err) {
    await session.close();
    throw snowflakeError('OUTFLOW_SOURCE', `preparing the diff of ${label} in Snowflake`, err);
  }
}

export const pushdown: PushdownDiff<SnowflakeConfig> = { open };
