import { DBSQLClient, LogLevel, thrift } from '@databricks/sql';
import { OutflowError, describeError, type ColumnInfo, type ConnectorContext, type ErrorCode, type Row, type Value } from '@outflow/core';
import type { DatabricksConfig } from './config.js';

type Ctx = ConnectorContext<DatabricksConfig>;
type SdkSession = Awaited<ReturnType<DBSQLClient['openSession']>>;

/**
 * Failures that may pass when tried later: the network, a 429 or 5xx answer (a warehouse
 * throttling or starting), and the driver giving up its own retries of those.
 */
const TRANSIENT = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|socket hang up|network|timed? ?out|retry count exceeded|retry timeout exceeded|bad HTTP status code: (429|5\d\d)/i;

/** The SDK's error shapes: `StatusError` (a Thrift status), `OperationStateError` (a failed statement). */
interface SdkError {
  message?: string;
  sqlState?: string;
  response?: { errorMessage?: string; sqlState?: string };
}

/**
 * An SDK failure as an OutflowError naming what was being done. Transient failures are
 * retryable; SQL errors (a missing table, a refused statement) and refused credentials are not. The message carries
 * the warehouse's own text (its error class and SQLSTATE), never a credential.
 */
export function databricksError(code: ErrorCode, what: string, err: unknown): OutflowError {
  if (err instanceof OutflowError) return err;
  const e = (err ?? {}) as SdkError;
  const sqlState = e.response?.sqlState ?? e.sqlState;
  const text = errorText(err).replace(/\s+/g, ' ').trim().slice(0, 600);
  return new OutflowError(code, `Databricks: ${what} failed${sqlState ? ` (SQLSTATE ${sqlState})` : ''}: ${text}`, {
    retryable: TRANSIENT.test(text),
    details: sqlState ? { sqlState } : {},
    cause: err,
  });
}

/**
 * The warehouse's message of an SDK failure, for telling error classes apart. (The SDK's
 * `StatusError` is not an `Error` instance, so its message is read as a property.)
 */
export function errorText(err: unknown): string {
  const e = (err ?? {}) as SdkError;
  return e.response?.errorMessage ?? (typeof e.message === 'string' ? e.message : describeError(err));
}

/** A SQL identifier in backticks (a backtick inside is doubled). */
export function ident(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** A SQL string literal. */
export function str(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The SDK's log lines go to the connection's redacting logger, quietly. */
function sdkLogger(ctx: Ctx) {
  return {
    log(level: LogLevel, message: string) {
      if (level === LogLevel.error || level === LogLevel.warn) ctx.logger.warn({ sdk: '@databricks/sql' }, message);
      else ctx.logger.debug({ sdk: '@databricks/sql' }, message);
    },
  };
}

/** How the SDK authenticates: a personal access token, or OAuth machine-to-machine. */
function authOptions(ctx: Ctx) {
  const { token, clientId, clientSecret } = ctx.config;
  if (token !== undefined && clientId === undefined && clientSecret === undefined) return { authType: 'access-token' as const, token };
  if (token === undefined && clientId !== undefined && clientSecret !== undefined) {
    return { authType: 'databricks-oauth' as const, oauthClientId: clientId, oauthClientSecret: clientSecret };
  }
  throw new OutflowError('OUTFLOW_CONFIG_INVALID', `connection ${ctx.connection}: give either \`token\` (a personal access token), or \`clientId\` and \`clientSecret\` (OAuth machine-to-machine), not both`, {
    details: { connection: ctx.connection },
  });
}

/** Converts a value the SDK decoded into an Outflow value. */
function valueOf(v: unknown): Value {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(valueOf);
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, valueOf(x)]));
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return v as Value;
}

function rowOf(r: object): Row {
  const row: Row = {};
  for (const [k, v] of Object.entries(r)) row[k] = valueOf(v);
  return row;
}

/**
 * One SQL session on a warehouse through the official SDK (`@databricks/sql`), with
 * telemetry off and the server's certificate always verified (against `caCert` too, when
 * given). A session runs one statement at a time.
 */
export class DatabricksSession {
  private constructor(
    private readonly client: DBSQLClient,
    private readonly session: SdkSession,
  ) {}

  /** Connects and opens a session in the configured catalog and schema. */
  static async open(ctx: Ctx, code: ErrorCode = 'OUTFLOW_SOURCE'): Promise<DatabricksSession> {
    const auth = authOptions(ctx);
    const { host, port, httpPath, caCert, catalog, schema } = ctx.config;
    const client = new DBSQLClient({ logger: sdkLogger(ctx) });
    try {
      await client.connect({ host, port, path: httpPath, telemetryEnabled: false, ...(caCert === undefined ? {} : { customCaCert: caCert }), ...auth });
      const session = await client.openSession({ ...(catalog === undefined ? {} : { initialCatalog: catalog }), initialSchema: schema });
      return new DatabricksSession(client, session);
    } catch (err) {
      await client.close().catch(() => undefined);
      throw databricksError(code, `connecting to ${host}:${port}${httpPath}`, err);
    }
  }

  /** Runs a statement and returns every row: for small answers only (metadata, history). */
  async query(sql: string): Promise<Row[]> {
    const op = await this.session.executeStatement(sql);
    try {
      return (await op.fetchAll()).map(rowOf);
    } finally {
      await op.close().catch(() => undefined);
    }
  }

  /**
   * Runs a statement and yields its rows `rows` at a time, fetching the next chunk only
   * when the previous one was taken, so the result is never held whole. The operation is
   * closed when the iteration ends, early too.
   */
  async *stream(sql: string, rows: number, signal?: AbortSignal): AsyncGenerator<Row[]> {
    const op = await this.session.executeStatement(sql, { maxRows: rows });
    try {
      while (signal?.aborted !== true) {
        const chunk = await op.fetchChunk({ maxRows: rows, disableBuffering: true });
        if (chunk.length > 0) yield chunk.map(rowOf);
        if (!(await op.hasMoreRows())) return;
      }
    } finally {
      await op.close().catch(() => undefined);
    }
  }

  /** The columns a query answers with, without reading its rows. */
  async describe(sql: string): Promise<ColumnInfo[]> {
    const op = await this.session.executeStatement(`SELECT * FROM (${sql}) AS outflow_model LIMIT 0`);
    try {
      const schema = await op.getSchema();
      return (schema?.columns ?? [])
        .slice()
        .sort((a, b) => a.position - b.position)
        .map((c) => ({ name: c.columnName, type: typeName(c.typeDesc.types[0]?.primitiveEntry?.type) }));
    } finally {
      await op.close().catch(() => undefined);
    }
  }

  /** Closes the session and the connection; never throws. */
  async close(): Promise<void> {
    await this.session.close().catch(() => undefined);
    await this.client.close().catch(() => undefined);
  }
}

/** A Thrift type id as Databricks names the type (`BIGINT_TYPE` → `BIGINT`), from the SDK's own table. */
function typeName(id: number | undefined): string {
  const name = id === undefined ? undefined : (thrift.TCLIService_types.TTypeId as unknown as Record<number, string>)[id];
  return name?.replace(/_TYPE$/, '').replace(/_/g, ' ') ?? 'UNKNOWN';
}

/** Runs `body` with a session, closed afterwards; failures are reported as `what` failing. */
export async function withSession<T>(ctx: Ctx, code: ErrorCode, what: string, body: (session: DatabricksSession) => Promise<T>): Promise<T> {
  const session = await DatabricksSession.open(ctx, code);
  try {
    return await body(session);
  } catch (err) {
    throw databricksError(code, what, err);
  } finally {
    await session.close();
  }
}
