import { OutflowError, type Catalog, type ColumnInfo, type ConnectorContext, type Model, type RowBatch, type Source, type TableInfo } from '@outflow/core';
import { DatabricksSession, databricksError, ident, str, withSession } from './client.js';
import type { DatabricksConfig } from './config.js';

type Ctx = ConnectorContext<DatabricksConfig>;

/** Rows per batch yielded by {@link read}: one chunk fetched through the SDK. */
export const BATCH_ROWS = 10_000;

/** A table name split into its parts: `table`, `schema.table` or `catalog.schema.table`. */
export function tableParts(model: Model): string[] {
  const name = model.table;
  const parts = name?.split('.') ?? [];
  if (name === undefined || parts.length > 3 || parts.some((p) => p.trim() === '')) {
    throw new OutflowError('OUTFLOW_CONFIG_INVALID', `"${name ?? ''}" is not a Databricks table name (TABLE, SCHEMA.TABLE or CATALOG.SCHEMA.TABLE)`, {
      details: { table: name },
    });
  }
  return parts;
}

/**
 * What a model's table is, as `information_schema.tables` says (`MANAGED`, `EXTERNAL`, `VIEW`,
 * `MATERIALIZED_VIEW`, `STREAMING_TABLE` …); undefined for a query, or a name not listed there.
 */
export async function relationType(session: DatabricksSession, ctx: Ctx, model: Model): Promise<string | undefined> {
  if (model.table === undefined) return undefined;
  const parts = tableParts(model);
  const catalog = parts.length === 3 ? parts[0] : ctx.config.catalog;
  const schema = parts.length >= 2 ? parts[parts.length - 2]! : ctx.config.schema;
  const info = catalog === undefined ? 'information_schema' : `${ident(catalog)}.information_schema`;
  const rows = await session.query(
    `SELECT table_type FROM ${info}.tables WHERE lower(table_schema) = ${str(schema.toLowerCase())} AND lower(table_name) = ${str(parts[parts.length - 1]!.toLowerCase())}`,
  );
  return rows.length ? String(rows[0]!['table_type']) : undefined;
}

/** The SQL that reads a model (a table or view by name, or a query), and how to name it in messages. */
export function modelSql(model: Model): { sql: string; label: string } {
  if (model.table !== undefined) return { sql: `SELECT * FROM ${tableParts(model).map(ident).join('.')}`, label: `table ${model.table}` };
  if (model.sql !== undefined) {
    const sql = model.sql.trim().replace(/;\s*$/, '');
    return { sql, label: `query "${sql.length > 60 ? `${sql.slice(0, 57)}...` : sql}"` };
  }
  throw new OutflowError('OUTFLOW_CONFIG_INVALID', 'a Databricks model is a table, a view or a SQL query; files are not supported');
}

async function check(ctx: Ctx): Promise<void> {
  await withSession(ctx, 'OUTFLOW_CHECK_FAILED', 'checking the connection', async (session) => {
    await session.query('SELECT 1 AS ok');
  });
}

/**
 * The tables and views of the configured catalog (the session's current one when none is
 * configured) from its `information_schema`: columns with types and nullability, and primary
 * keys where a constraint declares them. A table's `schema` is `catalog.schema`.
 */
async function discover(ctx: Ctx): Promise<Catalog> {
  return withSession(ctx, 'OUTFLOW_SOURCE', 'listing tables from information_schema', async (session) => {
    const info = ctx.config.catalog === undefined ? 'information_schema' : `${ident(ctx.config.catalog)}.information_schema`;
    const columns = await session.query(
      `SELECT table_catalog, table_schema, table_name, column_name, data_type, is_nullable FROM ${info}.columns
       WHERE table_schema <> 'information_schema' ORDER BY table_schema, table_name, ordinal_position`,
    );
    const keys = await session.query(
      `SELECT k.table_schema, k.table_name, k.column_name, k.ordinal_position
       FROM ${info}.table_constraints c JOIN ${info}.key_column_usage k
         ON k.constraint_catalog = c.constraint_catalog AND k.constraint_schema = c.constraint_schema AND k.constraint_name = c.constraint_name
       WHERE c.constraint_type = 'PRIMARY KEY' ORDER BY k.table_schema, k.table_name, k.ordinal_position`,
    );
    const tables = new Map<string, TableInfo>();
    for (const c of columns) {
      const id = `${String(c['table_schema'])}.${String(c['table_name'])}`;
      let t = tables.get(id);
      if (t === undefined) {
        t = { schema: `${String(c['table_catalog'])}.${String(c['table_schema'])}`, name: String(c['table_name']), columns: [] };
        tables.set(id, t);
      }
      t.columns.push({ name: String(c['column_name']), type: String(c['data_type']), nullable: c['is_nullable'] === 'YES' });
    }
    for (const k of keys) {
      const t = tables.get(`${String(k['table_schema'])}.${String(k['table_name'])}`);
      if (t !== undefined) t.primaryKey = [...(t.primaryKey ?? []), String(k['column_name'])];
    }
    return { tables: [...tables.values()] };
  });
}

async function columns(ctx: Ctx, model: Model): Promise<ColumnInfo[]> {
  const { sql, label } = modelSql(model);
  return withSession(ctx, 'OUTFLOW_SOURCE', `describing ${label}`, (session) => session.describe(sql));
}

/**
 * Reads the model in batches of {@link BATCH_ROWS}, one chunk fetched at a time, so the
 * result is never held whole. Called once per run; a throw fails the run and no state
 * advances. A stream sync's reconciling diff reads the table as it is now: the changes
 * committed after the version its stream secured arrive again from the stream, and core
 * skips those it settled. Aborting `ctx.signal` ends the read with `OUTFLOW_ABORTED`.
 */
async function* read(ctx: Ctx, model: Model): AsyncGenerator<RowBatch> {
  const { sql, label } = modelSql(model);
  const aborted = () => new OutflowError('OUTFLOW_ABORTED', `reading ${label} from Databricks was stopped before it finished`, { retryable: true });
  if (ctx.signal.aborted) throw aborted();
  const session = await DatabricksSession.open(ctx);
  try {
    for await (const rows of session.stream(sql, BATCH_ROWS, ctx.signal)) {
      if (ctx.signal.aborted) throw aborted();
      yield { rows };
    }
    if (ctx.signal.aborted) throw aborted();
  } catch (err) {
    if (ctx.signal.aborted) throw aborted();
    throw databricksError('OUTFLOW_SOURCE', `reading ${label}`, err);
  } finally {
    await session.close();
  }
}

export const source: Source<DatabricksConfig> = { check, discover, read, columns };
