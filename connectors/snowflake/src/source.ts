import { OutflowError, type Catalog, type ColumnInfo, type ConnectorContext, type Model, type ReadOptions, type RowBatch, type Source, type TableInfo } from '@outflow/core';
import { SnowflakeSession, ident, snowflakeError, str, tableParts } from './client.js';
import type { SnowflakeConfig } from './config.js';
import { tableAtStreamOffset } from './stream.js';

type Ctx = ConnectorContext<SnowflakeConfig>;

/** Rows per batch yielded by {@link read}. */
export const BATCH_SIZE = 10_000;

/** The SQL that reads a model, and how to name it in messages. */
export function modelSql(model: Model): { sql: string; label: string } {
  if (model.table !== undefined) {
    const parts = tableParts(model.table);
    if (!parts) {
      throw new OutflowError('OUTFLOW_CONFIG_INVALID', `"${model.table}" is not a Snowflake table name (TABLE, SCHEMA.TABLE or DB.SCHEMA.TABLE)`, {
        details: { table: model.table },
      });
    }
    return { sql: `SELECT * FROM ${parts.map(ident).join('.')}`, label: `table ${model.table}` };
  }
  if (model.sql !== undefined) {
    const sql = model.sql.trim().replace(/;\s*$/, '');
    return { sql, label: `query "${sql.length > 60 ? `${sql.slice(0, 57)}...` : sql}"` };
  }
  throw new OutflowError('OUTFLOW_CONFIG_INVALID', 'a Snowflake model is a table or a SQL query; files are not supported');
}

async function check(ctx: Ctx): Promise<void> {
  const session = await SnowflakeSession.open(ctx, 'OUTFLOW_CHECK_FAILED');
  try {
    const [row] = await session.query('SELECT CURRENT_DATABASE() AS DB, CURRENT_SCHEMA() AS SCH');
    if (!row?.['DB']) {
      throw new OutflowError('OUTFLOW_CHECK_FAILED', `Snowflake: database ${ctx.config.database} does not exist or the role cannot use it`, {
        details: { database: ctx.config.database },
      });
    }
    if (!row['SCH']) {
      throw new OutflowError('OUTFLOW_CHECK_FAILED', `Snowflake: schema ${ctx.config.database}.${ctx.config.schema} does not exist or the role cannot use it`, {
        details: { schema: ctx.config.schema },
      });
    }
  } catch (err) {
    throw snowflakeError('OUTFLOW_CHECK_FAILED', 'checking the connection', err);
  } finally {
    await session.close();
  }
}

async function discover(ctx: Ctx): Promise<Catalog> {
  const session = await SnowflakeSession.open(ctx);
  const db = ident(ctx.config.database.toUpperCase());
  try {
    const columns = await session.query(
      `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, IS_NULLABLE FROM ${db}.INFORMATION_SCHEMA.COLUMNS
       WHERE TABLE_SCHEMA <> 'INFORMATION_SCHEMA' AND TABLE_SCHEMA <> ${str(ctx.config.outflowSchema.toUpperCase())}
       ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
    );
    const keys = await session.query(`SHOW PRIMARY KEYS IN DATABASE ${db}`);
    const tables = new Map<string, TableInfo>();
    for (const c of columns) {
      const id = `${String(c['TABLE_SCHEMA'])}.${String(c['TABLE_NAME'])}`;
      let t = tables.get(id);
      if (!t) {
        t = { schema: String(c['TABLE_SCHEMA']), name: String(c['TABLE_NAME']), columns: [] };
        tables.set(id, t);
      }
      t.columns.push({ name: String(c['COLUMN_NAME']), type: String(c['DATA_TYPE']), nullable: c['IS_NULLABLE'] === 'YES' });
    }
    const pk = new Map<string, { column: string; seq: number }[]>();
    for (const k of keys) {
      const id = `${String(k['schema_name'])}.${String(k['table_name'])}`;
      pk.set(id, [...(pk.get(id) ?? []), { column: String(k['column_name']), seq: Number(k['key_sequence']) }]);
    }
    for (const [id, cols] of pk) {
      const t = tables.get(id);
      if (t) t.primaryKey = cols.sort((a, b) => a.seq - b.seq).map((c) => c.column);
    }
    return { tables: [...tables.values()] };
  } catch (err) {
    throw snowflakeError('OUTFLOW_SOURCE', `listing the tables of database ${ctx.config.database}`, err);
  } finally {
    await session.close();
  }
}

async function columns(ctx: Ctx, model: Model): Promise<ColumnInfo[]> {
  const { sql, label } = modelSql(model);
  const session = await SnowflakeSession.open(ctx);
  try {
    return await session.describe(sql);
  } catch (err) {
    throw snowflakeError('OUTFLOW_SOURCE', `describing ${label}`, err);
  } finally {
    await session.close();
  }
}

/**
 * Streams the model: the driver fetches the result's chunks as rows are consumed, so the
 * whole result is never held. Aborting `ctx.signal` ends the read with `OUTFLOW_ABORTED`.
 */
async function* read(ctx: Ctx, model: Model, options?: ReadOptions): AsyncGenerator<RowBatch> {
  const { sql: now, label } = modelSql(model);
  const aborted = () => new OutflowError('OUTFLOW_ABORTED', `reading ${label} from Snowflake was stopped before it finished`);
  if (ctx.signal.aborted) throw aborted();
  const session = await SnowflakeSession.open(ctx);
  try {
    // A stream's reconciling diff reads the table as of the offset of the STREAM that waits
    // for it, so the diff and the STREAM meet exactly.
    const then = options?.reconcile && options.sync !== undefined ? await tableAtStreamOffset(ctx, session, model, options.sync) : undefined;
    if (then !== undefined) ctx.logger.info({ table: model.table }, 'reading the table as of the offset of its new stream');
    const sql = then ?? now;
    for await (const rows of session.stream(sql, BATCH_SIZE, ctx.signal)) {
      if (ctx.signal.aborted) throw aborted();
      yield { rows };
    }
    if (ctx.signal.aborted) throw aborted();
  } catch (err) {
    if (ctx.signal.aborted) throw aborted();
    throw snowflakeError('OUTFLOW_SOURCE', `reading ${label}`, err);
  } finally {
    await session.close();
  }
}

export const source: Omit<Source<SnowflakeConfig>, 'diff'> = { check, discover, read, columns };
