import type pg from 'pg';
import {
  OutflowError,
  describeError,
  isOutflowError,
  type Catalog,
  type ColumnInfo,
  type Model,
  type Row,
  type RowBatch,
  type Source,
  type TableInfo,
} from '@outflow/core';
import { DEFAULTS, type PostgresConfig } from './config.js';
import { connect, isTransient, modelSql, type Ctx } from './db.js';
import { pushdownDiff } from './pushdown.js';

function sourceError(ctx: Ctx, what: string, err: unknown): OutflowError {
  if (isOutflowError(err)) return err;
  return new OutflowError('OUTFLOW_SOURCE', `connection "${ctx.connection}": ${what} failed: ${describeError(err)}`, {
    retryable: isTransient(err),
    cause: err,
  });
}

/** Connects and runs one query, proving the server answers and the login works. */
export async function check(ctx: Ctx): Promise<void> {
  const client = await connect(ctx, 'OUTFLOW_CHECK_FAILED');
  try {
    await client.query('SELECT 1');
  } catch (err) {
    throw new OutflowError('OUTFLOW_CHECK_FAILED', `connection "${ctx.connection}": PostgreSQL did not answer a query: ${describeError(err)}`, { cause: err });
  } finally {
    await client.end().catch(() => undefined);
  }
}

const CATALOG_SQL = `
  SELECT n.nspname AS schema, c.relname AS name, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
         NOT a.attnotnull AS nullable,
         (SELECT array_position(i.indkey::int2[], a.attnum) FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS pk_pos
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
     AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
     AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname <> $1
     AND has_table_privilege(c.oid, 'SELECT')
   ORDER BY n.nspname, c.relname, a.attnum`;

/** Lists every readable table, view and materialized view with columns and primary keys. */
export async function discover(ctx: Ctx): Promise<Catalog> {
  const client = await connect(ctx);
  try {
    const r = await client.query<{ schema: string; name: string; column: string; type: string; nullable: boolean; pk_pos: number | null }>(
      CATALOG_SQL,
      [ctx.config.stateSchema ?? DEFAULTS.stateSchema],
    );
    const tables = new Map<string, TableInfo & { pk: [number, string][] }>();
    for (const row of r.rows) {
      const id = `${row.schema}.${row.name}`;
      let t = tables.get(id);
      if (!t) tables.set(id, (t = { schema: row.schema, name: row.name, columns: [], pk: [] }));
      t.columns.push({ name: row.column, type: row.type, nullable: row.nullable });
      if (row.pk_pos !== null) t.pk.push([row.pk_pos, row.column]);
    }
    return {
      tables: [...tables.values()].map(({ pk, ...t }) => ({
        ...t,
        name: t.schema === 'public' ? t.name : `${t.schema}.${t.name}`,
        ...(pk.length ? { primaryKey: pk.sort((a, b) => a[0] - b[0]).map(([, c]) => c) } : {}),
      })),
    };
  } catch (err) {
    throw sourceError(ctx, 'listing tables', err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The model's columns, described by the server without reading rows. */
export async function columns(ctx: Ctx, model: Model): Promise<ColumnInfo[]> {
  const client = await connect(ctx);
  try {
    const m = await modelSql(client, model, `connection "${ctx.connection}"`);
    if (m.table) return m.table.columns.map(({ name, type, nullable }) => ({ name, type, nullable: nullable ?? true }));
    const r = await client.query(`${m.sql} LIMIT 0`);
    const types = await client.query<{ oid: number; name: string }>(
      `SELECT oid::int AS oid, format_type(oid, NULL) AS name FROM pg_type WHERE oid = ANY($1::oid[])`,
      [r.fields.map((f) => f.dataTypeID)],
    );
    const names = new Map(types.rows.map((t) => [t.oid, t.name]));
    return r.fields.map((f) => ({ name: f.name, type: names.get(f.dataTypeID) ?? String(f.dataTypeID) }));
  } catch (err) {
    throw sourceError(ctx, `describing the model`, err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Streams rows from a server-side cursor opened with `query` in a read-only repeatable-read
 * transaction on `client`; `fetch` rows at a time, so memory holds one batch.
 */
export async function* cursorRows(
  client: pg.Client,
  query: string,
  params: unknown[],
  fetch: number,
  signal?: AbortSignal,
  /** Begins the transaction itself (e.g. with an imported snapshot) when given. */
  begin?: () => Promise<void>,
): AsyncGenerator<Row[]> {
  if (begin) await begin();
  else await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query(`DECLARE outflow_read NO SCROLL CURSOR FOR ${query}`, params);
    for (;;) {
      if (signal?.aborted) return;
      const r = await client.query<Row>(`FETCH ${fetch} FROM outflow_read`);
      if (r.rows.length === 0) break;
      yield r.rows;
      if (r.rows.length < fetch) break;
    }
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

/**
 * Reads the model as one consistent snapshot through a cursor. Stops with `OUTFLOW_ABORTED`
 * when `ctx.signal` aborts, so a stopped read is never mistaken for a complete one.
 */
export async function* read(ctx: Ctx, model: Model): AsyncGenerator<RowBatch> {
  const aborted = () => new OutflowError('OUTFLOW_ABORTED', `connection "${ctx.connection}": reading the model was stopped before it finished`);
  if (ctx.signal.aborted) throw aborted();
  const client = await connect(ctx);
  try {
    const m = await modelSql(client, model, `connection "${ctx.connection}"`).catch((err: unknown) => {
      throw sourceError(ctx, 'resolving the model', err);
    });
    const rows = cursorRows(client, m.sql, [], ctx.config.readBatchSize ?? DEFAULTS.readBatchSize, ctx.signal);
    for (;;) {
      let next: IteratorResult<Row[]>;
      try {
        next = await rows.next();
      } catch (err) {
        throw sourceError(ctx, `reading ${m.label}`, err);
      }
      if (ctx.signal.aborted) {
        await rows.return(undefined);
        throw aborted();
      }
      if (next.done) break;
      yield { rows: next.value };
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

export const source: Source<PostgresConfig> = { check, discover, read, columns, diff: pushdownDiff };
