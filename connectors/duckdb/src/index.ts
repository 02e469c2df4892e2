import {
  StatementType,
  type DuckDBConnection,
  type DuckDBPreparedStatement,
  type DuckDBResult,
} from '@duckdb/node-api';
import {
  OutflowError,
  defineConnector,
  describeError,
  type Catalog,
  type ColumnInfo,
  type ConnectorContext,
  type Model,
  type Row,
  type RowBatch,
  type TableInfo,
} from '@outflow/core';
import { configSchema, type DuckDBConfig } from './config.js';
import { modelQuery, type ModelQuery } from './model.js';
import { openDuckDB } from './open.js';
import { toValue } from './values.js';
import { pushdown } from './pushdown.js';

export { configSchema, type DuckDBConfig } from './config.js';
export { openDuckDB, type OpenDuckDB, type OpenOptions } from './open.js';
export { toValue } from './values.js';

/** How many rows {@link read} puts in one batch (the last batch may hold fewer). */
export const BATCH_SIZE = 10_000;

type Ctx = ConnectorContext<DuckDBConfig>;

function sourceError(query: ModelQuery, err: unknown): OutflowError {
  if (err instanceof OutflowError) return err;
  return new OutflowError('OUTFLOW_SOURCE', `DuckDB failed on ${query.label}: ${describeError(err)}`, {
    details: { model: query.label },
    cause: err,
  });
}

function abortedError(query: ModelQuery): OutflowError {
  return new OutflowError('OUTFLOW_ABORTED', `reading ${query.label} from DuckDB was stopped before it finished`, {
    details: { model: query.label },
  });
}

/**
 * Parses and binds the model's query, refusing anything but one SELECT statement, and
 * result columns that share a name (rows are objects keyed by column name).
 */
async function prepare(connection: DuckDBConnection, query: ModelQuery): Promise<DuckDBPreparedStatement> {
  let prepared: DuckDBPreparedStatement;
  try {
    const statements = await connection.extractStatements(query.sql);
    if (statements.count !== 1) {
      throw new OutflowError(
        'OUTFLOW_CONFIG_INVALID',
        `the DuckDB model ${query.label} must be exactly one statement, but it has ${statements.count}`,
        { details: { model: query.label } },
      );
    }
    prepared = await statements.prepare(0);
  } catch (err) {
    throw sourceError(query, err);
  }
  if (prepared.statementType !== StatementType.SELECT) {
    throw new OutflowError(
      'OUTFLOW_CONFIG_INVALID',
      `the DuckDB model ${query.label} must be a query (SELECT, WITH, VALUES …); Outflow never changes the source`,
      { details: { model: query.label } },
    );
  }
  const seen = new Set<string>();
  for (let i = 0; i < prepared.columnCount; i++) {
    const name = prepared.columnName(i);
    if (seen.has(name)) {
      throw new OutflowError(
        'OUTFLOW_CONFIG_INVALID',
        `the DuckDB model ${query.label} returns the column "${name}" more than once; give each column its own alias`,
        { details: { model: query.label, column: name } },
      );
    }
    seen.add(name);
  }
  return prepared;
}

async function check(ctx: Ctx): Promise<void> {
  const db = await openDuckDB(ctx.config, 'OUTFLOW_CHECK_FAILED');
  try {
    await db.connection.run('SELECT 1');
  } catch (err) {
    throw new OutflowError('OUTFLOW_CHECK_FAILED', `DuckDB database "${db.location}" cannot be queried: ${describeError(err)}`, {
      details: { path: db.location },
      cause: err,
    });
  } finally {
    db.close();
  }
}

const COLUMNS_SQL = `
  WITH relations AS (
    SELECT database_name, schema_name, table_name FROM duckdb_tables() WHERE NOT internal AND NOT temporary
    UNION ALL
    SELECT database_name, schema_name, view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary
  )
  SELECT c.schema_name, c.table_name, c.column_name, c.data_type, c.is_nullable
  FROM duckdb_columns() AS c JOIN relations USING (database_name, schema_name, table_name)
  WHERE c.database_name = current_database()
    AND c.schema_name NOT IN ('information_schema', 'pg_catalog')
  ORDER BY c.schema_name, c.table_name, c.column_index`;

const PRIMARY_KEYS_SQL = `
  SELECT schema_name, table_name, constraint_column_names
  FROM duckdb_constraints()
  WHERE constraint_type = 'PRIMARY KEY' AND database_name = current_database()`;

async function discover(ctx: Ctx): Promise<Catalog> {
  const db = await openDuckDB(ctx.config);
  try {
    const columns = (await db.connection.runAndReadAll(COLUMNS_SQL)).getRowObjectsJS();
    const keys = (await db.connection.runAndReadAll(PRIMARY_KEYS_SQL)).getRowObjectsJS();
    const tables = new Map<string, TableInfo>();
    const id = (schema: unknown, table: unknown) => JSON.stringify([schema, table]);
    for (const c of columns) {
      const key = id(c['schema_name'], c['table_name']);
      let table = tables.get(key);
      if (!table) {
        table = { schema: String(c['schema_name']), name: String(c['table_name']), columns: [] };
        tables.set(key, table);
      }
      table.columns.push({ name: String(c['column_name']), type: String(c['data_type']), nullable: c['is_nullable'] === true });
    }
    for (const k of keys) {
      const table = tables.get(id(k['schema_name'], k['table_name']));
      if (table) table.primaryKey = (k['constraint_column_names'] as unknown[]).map(String);
    }
    return { tables: [...tables.values()] };
  } catch (err) {
    throw new OutflowError('OUTFLOW_SOURCE', `DuckDB database "${db.location}" could not be listed: ${describeError(err)}`, {
      details: { path: db.location },
      cause: err,
    });
  } finally {
    db.close();
  }
}

async function columns(ctx: Ctx, model: Model): Promise<ColumnInfo[]> {
  const query = modelQuery(model);
  const db = await openDuckDB(ctx.config);
  try {
    await prepare(db.connection, query);
    const described = (await db.connection.runAndReadAll(query.describe)).getRowObjectsJS();
    return described.map((c) => ({
      name: String(c['column_name']),
      type: String(c['column_type']),
      nullable: c['null'] !== 'NO',
    }));
  } catch (err) {
    throw sourceError(query, err);
  } finally {
    db.close();
  }
}

/**
 * Streams the model from a DuckDB streaming result in batches of {@link BATCH_SIZE} rows.
 * The database is opened for this call alone and closed when the iteration ends, fails,
 * is abandoned by the consumer, or `ctx.signal` aborts (which throws `OUTFLOW_ABORTED`,
 * so a stopped read is never mistaken for a complete snapshot).
 */
async function* read(ctx: Ctx, model: Model): AsyncGenerator<RowBatch> {
  const query = modelQuery(model);
  if (ctx.signal.aborted) throw abortedError(query);
  const db = await openDuckDB(ctx.config);
  const interrupt = () => db.connection.interrupt();
  ctx.signal.addEventListener('abort', interrupt, { once: true });
  let result: DuckDBResult | undefined;
  let finished = false;
  let total = 0;
  try {
    const prepared = await prepare(db.connection, query);
    result = await prepared.stream().catch((err: unknown) => {
      throw ctx.signal.aborted ? abortedError(query) : sourceError(query, err);
    });
    const names = result.columnNames();
    let rows: Row[] = [];
    for (;;) {
      if (ctx.signal.aborted) throw abortedError(query);
      let chunk;
      try {
        chunk = await result.fetchChunk();
      } catch (err) {
        throw ctx.signal.aborted ? abortedError(query) : sourceError(query, err);
      }
      if (!chunk || chunk.rowCount === 0) break;
      let values;
      try {
        values = chunk.convertColumns(toValue);
      } catch (err) {
        throw sourceError(query, err);
      }
      for (let r = 0; r < chunk.rowCount; r++) {
        const row: Row = {};
        for (let c = 0; c < names.length; c++) row[names[c]!] = values[c]![r] ?? null;
        rows.push(row);
      }
      while (rows.length >= BATCH_SIZE) {
        const batch = rows.slice(0, BATCH_SIZE);
        rows = rows.slice(BATCH_SIZE);
        total += batch.length;
        yield { rows: batch };
      }
    }
    finished = true;
    // An interrupted stream ends as if it were complete, so only the signal tells them apart.
    if (ctx.signal.aborted) throw abortedError(query);
    if (rows.length > 0) {
      total += rows.length;
      yield { rows };
    }
    ctx.logger.debug({ model: query.label, rows: total }, 'read DuckDB model');
  } finally {
    ctx.signal.removeEventListener('abort', interrupt);
    if (result && !finished) await abandon(db.connection, result);
    db.close();
  }
}

/**
 * Ends a streaming result that will not be read to the end. Until it ends, the result keeps
 * the database instance, and so its file lock, alive even after the connection closes; and
 * when the garbage collector finally closes that file, the process loses its lock on every
 * other open instance of it too.
 */
async function abandon(connection: DuckDBConnection, result: DuckDBResult): Promise<void> {
  connection.interrupt();
  try {
    // After an interrupt the stream ends once DuckDB's small read-ahead buffer (about 1 MB)
    // is drained. The bound guards against a DuckDB that ignores the interrupt, where
    // leaving the result to the garbage collector is the lesser harm.
    for (let i = 0; i < 1_000; i++) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) return;
    }
  } catch {
    // An interrupted or failed stream is ended either way.
  }
}

/** The DuckDB source: tables, views, SQL queries, and CSV or Parquet files read through DuckDB. */
export default defineConnector({
  name: 'duckdb',
  version: '1.0.0',
  description: 'Reads DuckDB tables, views and SQL queries, and CSV or Parquet files through DuckDB.',
  config: configSchema,
  source: { check, discover, columns, read, diff: pushdown },
});
