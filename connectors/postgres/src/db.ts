import pg from 'pg';
import { OutflowError, describeError, type ColumnInfo, type ConnectorContext, type ErrorCode, type Model } from '@outflow/core';
import type { PostgresConfig } from './config.js';
import { ident, pgTypes } from './values.js';

export type Ctx = ConnectorContext<PostgresConfig>;

/** SQLSTATE classes that mean the server cannot be reached or is going away: worth retrying. */
const TRANSIENT = /^(08|53|57P|40)/;

/** True when a `pg` error is about the connection or server load, not the statement. */
export function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && TRANSIENT.test(code)) return true;
  const msg = err instanceof Error ? err.message : '';
  return /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|Connection terminated|connection.*closed/i.test(msg) || typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

/**
 * A `pg` client config for the connection, with Outflow's type parsers. Throws
 * `OUTFLOW_CONFIG_INVALID` naming the connection when `pg` cannot read the connection string
 * (it would throw a bare "Invalid URL" from the client's or the pool's constructor); the
 * message never quotes the string, which holds the password.
 */
export function clientConfig(ctx: Ctx, extra: pg.ClientConfig = {}): pg.ClientConfig {
  const config = { connectionString: ctx.config.url, types: pgTypes, connectionTimeoutMillis: 15_000, application_name: 'outflow', ...extra };
  try {
    // Parses the string as every client and pool will, without connecting.
    new pg.Client(config);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new OutflowError(
      'OUTFLOW_CONFIG_INVALID',
      `connection "${ctx.connection}": url is not a valid PostgreSQL connection string${typeof code === 'string' ? ` (${code})` : ''}; check its host and port, and that special characters in the user name and password are percent-encoded`,
    );
  }
  return config;
}

/** Opens a client; a failure names the connection, never the connection string. */
export async function connect(ctx: Ctx, code: ErrorCode = 'OUTFLOW_SOURCE', extra: pg.ClientConfig = {}): Promise<pg.Client> {
  if (!/^postgres(ql)?:\/\//.test(String(ctx.config.url))) {
    throw new OutflowError(code, `connection "${ctx.connection}": url must be a postgres:// connection string`);
  }
  const client = new pg.Client(clientConfig(ctx, extra));
  client.on('error', (err) => ctx.logger.warn({ connection: ctx.connection, err: describeError(err) }, 'PostgreSQL connection error'));
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new OutflowError(code, `connection "${ctx.connection}": cannot connect to PostgreSQL: ${describeError(err)}`, {
      retryable: isTransient(err),
      cause: err,
    });
  }
  return client;
}

/** A table resolved in the catalog. */
export interface ResolvedTable {
  oid: number;
  schema: string;
  name: string;
  /** `"schema"."name"`, ready for SQL. */
  sql: string;
  columns: (ColumnInfo & { typeOid: number })[];
  primaryKey: string[];
}

/**
 * Finds a table by the name a user wrote (`customers`, `sales.orders`, `"Mixed"`), with
 * PostgreSQL's own rules (search_path, case folding of unquoted names).
 */
export async function resolveTable(client: pg.Client, name: string, where: string): Promise<ResolvedTable> {
  const r = await client.query<{ oid: number; schema: string; name: string }>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`,
    [name],
  );
  const row = r.rows[0];
  if (!row) throw new OutflowError('OUTFLOW_CONFIG_INVALID', `${where}: table "${name}" does not exist (or is not visible to this user)`);
  const cols = await client.query<{ name: string; type: string; oid: number; nullable: boolean }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.atttypid::int AS oid, NOT a.attnotnull AS nullable
       FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [row.oid],
  );
  const pk = await client.query<{ name: string }>(
    `SELECT a.attname AS name FROM pg_index i
       JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord`,
    [row.oid],
  );
  return {
    oid: row.oid,
    schema: row.schema,
    name: row.name,
    sql: `${ident(row.schema)}.${ident(row.name)}`,
    columns: cols.rows.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable, typeOid: c.oid })),
    primaryKey: pk.rows.map((p) => p.name),
  };
}

/** The SQL a model reads, and how to name it in messages. */
export async function modelSql(client: pg.Client, model: Model, where: string): Promise<{ sql: string; label: string; table?: ResolvedTable }> {
  if (model.table) {
    const table = await resolveTable(client, model.table, where);
    return { sql: `SELECT * FROM ${table.sql}`, label: `table ${table.schema}.${table.name}`, table };
  }
  if (model.sql) {
    const body = model.sql.trim().replace(/;\s*$/, '');
    return { sql: `SELECT * FROM (${body}) AS outflow_model`, label: `query "${body.slice(0, 60)}${body.length > 60 ? '…' : ''}"` };
  }
  throw new OutflowError('OUTFLOW_CONFIG_INVALID', `${where}: a PostgreSQL model needs a table or sql`);
}
