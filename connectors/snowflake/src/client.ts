import { OutflowError, describeError, redact, type ColumnInfo, type ConnectorContext, type ErrorCode, type Row, type Value } from '@outflow/core';
import type { SnowflakeConfig } from './config.js';

// snowflake-sdk probes cloud metadata addresses when it is loaded unless this is set first.
process.env['SNOWFLAKE_DISABLE_PLATFORM_DETECTION'] ??= 'true';

type Sdk = typeof import('snowflake-sdk');
type SdkConnection = import('snowflake-sdk').Connection;
type SdkColumn = import('snowflake-sdk').Column;
type SdkStatement = import('snowflake-sdk').RowStatement;

let sdk: Promise<Sdk> | undefined;
let plainHttp = false;

/** Loads snowflake-sdk on first use, with its logging turned off. */
async function loadSdk(insecure: boolean): Promise<Sdk> {
  sdk ??= import('snowflake-sdk').then((m) => {
    const s = ((m as { default?: Sdk }).default ?? m) as Sdk;
    // Failures reach the caller as coded errors; the driver's own log would only repeat them.
    s.configure({ logLevel: 'OFF' as never });
    return s;
  });
  const s = await sdk;
  // OCSP checks only apply to TLS; a plain-HTTP endpoint (the emulator) has nothing to check.
  if (insecure && !plainHttp) {
    plainHttp = true;
    s.configure({ disableOCSPChecks: true });
  }
  return s;
}

type Ctx = ConnectorContext<SnowflakeConfig>;

/** Error codes of a failed login (bad account, user, password or key). */
const AUTH_CODES = new Set(['390100', '390144', '390201', '390190', '390101', '390102', '390103', '394304', '390318']);

interface SdkError {
  code?: string | number;
  sqlState?: string;
  message?: string;
}

/** Turns a driver error into an OutflowError naming what failed, never a secret. */
export function snowflakeError(code: ErrorCode, what: string, err: unknown): OutflowError {
  if (err instanceof OutflowError) return err;
  const e = (err ?? {}) as SdkError;
  const sfCode = e.code === undefined ? undefined : String(e.code);
  const detail = redact(describeError(err)).replace(/\s+/g, ' ').trim();
  const network = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|socket hang up|Network error/i.test(detail);
  return new OutflowError(code, `Snowflake: ${what} failed${sfCode ? ` (${sfCode}${e.sqlState ? `/${e.sqlState}` : ''})` : ''}: ${detail}`, {
    retryable: network,
    details: { ...(sfCode ? { snowflakeCode: sfCode } : {}), ...(e.sqlState ? { sqlState: e.sqlState } : {}) },
    cause: err,
  });
}

/** Whether a driver error means the stream can no longer be read (stale or gone). */
export function isStaleError(err: unknown): boolean {
  const e = (err ?? {}) as SdkError;
  return /stale/i.test(e.message ?? '') || String(e.code) === '091901';
}

/** Converts one column's driver values to Outflow values. */
type Convert = (v: unknown) => Value;

function numberOf(text: string): Value {
  if (!/^[-+]?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(text)) return text;
  const n = Number(text);
  if (!Number.isFinite(n)) return text;
  if (/^[-+]?\d+$/.test(text)) return Number.isSafeInteger(n) ? n : text;
  const [, frac = ''] = text.split('.');
  return n.toFixed(frac.replace(/[eE].*$/, '').length) === text.replace(/^\+/, '') ? n : text;
}

function converter(col: SdkColumn): Convert {
  const type = col.getType();
  switch (type) {
    case 'fixed':
    case 'real':
      return (v) => (typeof v === 'string' ? numberOf(v) : (v as number));
    case 'date':
      return (v) => (v instanceof Date ? new Date(v.getTime()).toISOString().slice(0, 10) : String(v));
    case 'timestamp_ntz':
      return (v) => (v instanceof Date ? new Date(v.getTime()).toISOString().slice(0, -1) : String(v));
    case 'timestamp_ltz':
    case 'timestamp_tz':
      return (v) => (v instanceof Date ? new Date(v.getTime()).toISOString() : String(v));
    case 'binary':
      return (v) => (Buffer.isBuffer(v) ? v.toString('hex').toUpperCase() : String(v));
    case 'variant':
    case 'object':
    case 'array':
      return (v) => (typeof v === 'string' ? safeJson(v) : (v as Value));
    default:
      return (v) => v as Value;
  }
}

function safeJson(text: string): Value {
  try {
    return JSON.parse(text) as Value;
  } catch {
    return text;
  }
}

/** Turns driver rows into Outflow rows, by the statement's columns. */
export class RowConverter {
  readonly names: string[];
  private readonly converters: Convert[];

  constructor(columns: SdkColumn[]) {
    this.names = columns.map((c) => c.getName());
    this.converters = columns.map(converter);
  }

  row(raw: Record<string, unknown>): Row {
    const out: Row = {};
    for (let i = 0; i < this.names.length; i++) {
      const name = this.names[i]!;
      const v = raw[name];
      out[name] = v === null || v === undefined ? null : this.converters[i]!(v);
    }
    return out;
  }
}

export type Bind = string | number | boolean | null;

/** One logged-in Snowflake session. Statements run one at a time, in call order. */
export class SnowflakeSession {
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly conn: SdkConnection,
    readonly config: SnowflakeConfig,
  ) {}

  /** Logs in; throws `code` (OUTFLOW_CHECK_FAILED in check, else OUTFLOW_SOURCE) when it cannot. */
  static async open(ctx: Ctx, code: ErrorCode = 'OUTFLOW_SOURCE'): Promise<SnowflakeSession> {
    const c = ctx.config;
    if ((c.password === undefined) === (c.privateKey === undefined)) {
      throw new OutflowError('OUTFLOW_CONFIG_INVALID', `connection "${ctx.connection}": give exactly one of password or privateKey`, {
        details: { connection: ctx.connection },
      });
    }
    const s = await loadSdk(c.accessUrl?.startsWith('http://') ?? false);
    const conn = s.createConnection({
      account: c.account,
      username: c.username,
      ...(c.privateKey ? { authenticator: 'SNOWFLAKE_JWT', privateKey: c.privateKey } : { password: c.password! }),
      database: c.database,
      schema: c.schema,
      ...(c.warehouse ? { warehouse: c.warehouse } : {}),
      ...(c.role ? { role: c.role } : {}),
      ...(c.accessUrl ? { accessUrl: c.accessUrl } : {}),
      application: 'Outflow',
      clientSessionKeepAlive: true,
      sfRetryMaxLoginRetries: 2,
    } as import('snowflake-sdk').ConnectionOptions);
    try {
      await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      const e = (err ?? {}) as SdkError;
      const auth = AUTH_CODES.has(String(e.code));
      throw snowflakeError(code, `logging in to account ${c.account} as ${c.username}${auth ? ' (check the credentials)' : ''}`, err);
    }
    return new SnowflakeSession(conn, c);
  }

  /** Runs `fn` with no other statement of this session in between (e.g. a transaction). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private run(sqlText: string, binds: Bind[] | undefined, streamResult: boolean): Promise<{ stmt: SdkStatement; rows: Record<string, unknown>[] | undefined }> {
    return new Promise((resolve, reject) => {
      this.conn.execute({
        sqlText,
        ...(binds && binds.length ? { binds: binds as never } : {}),
        fetchAsString: ['Number'],
        streamResult,
        complete: (err, stmt, rows) => (err ? reject(err) : resolve({ stmt, rows: rows as Record<string, unknown>[] | undefined })),
      });
    });
  }

  /** Runs a statement that returns few rows and converts them. Not serialized: use inside {@link exclusive} or alone. */
  async queryNow(sqlText: string, binds?: Bind[]): Promise<Row[]> {
    const { stmt, rows } = await this.run(sqlText, binds, false);
    const conv = new RowConverter(stmt.getColumns() ?? []);
    return (rows ?? []).map((r) => conv.row(r));
  }

  /** Runs a statement that returns few rows, after the session's earlier statements. */
  query(sqlText: string, binds?: Bind[]): Promise<Row[]> {
    return this.exclusive(() => this.queryNow(sqlText, binds));
  }

  /** Runs DML and returns how many rows it changed. Not serialized (see {@link queryNow}). */
  async updateNow(sqlText: string, binds?: Bind[]): Promise<number> {
    const { stmt } = await this.run(sqlText, binds, false);
    return Math.max(0, stmt.getNumUpdatedRows() ?? 0);
  }

  /** The columns a query returns, without reading its rows. */
  async describe(sqlText: string): Promise<ColumnInfo[]> {
    const { stmt } = await this.exclusive(() => this.run(`SELECT * FROM (${sqlText}) LIMIT 0`, undefined, false));
    return (stmt.getColumns() ?? []).map((c) => ({ name: c.getName(), type: c.getType().toUpperCase(), nullable: c.isNullable() }));
  }

  /**
   * Streams a query's rows in batches (the driver downloads result chunks as they are
   * consumed), never holding the whole result. Stops when `signal` aborts.
   */
  async *stream(sqlText: string, batchSize: number, signal: AbortSignal): AsyncGenerator<Row[]> {
    const { stmt } = await this.run(sqlText, undefined, true);
    const conv = new RowConverter(stmt.getColumns() ?? []);
    const rows = stmt.streamRows();
    const stop = () => rows.destroy();
    signal.addEventListener('abort', stop, { once: true });
    let batch: Row[] = [];
    try {
      for await (const raw of rows as AsyncIterable<Record<string, unknown>>) {
        batch.push(conv.row(raw));
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length && !signal.aborted) yield batch;
    } finally {
      signal.removeEventListener('abort', stop);
      rows.destroy();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => this.conn.destroy(() => resolve()));
  }
}

/** Quotes an identifier for Snowflake. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A SQL string literal. */
export function str(s: string): string {
  return `'${s.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

const NAME_PART = /^(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")$/;

/** Splits a model table name (`T`, `S.T`, `DB.S.T`, parts optionally quoted) into parts; null if it is not one. */
export function tableParts(table: string): string[] | null {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of table.trim()) {
    if (ch === '"') quoted = !quoted;
    if (ch === '.' && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  if (parts.length > 3 || parts.some((p) => !NAME_PART.test(p))) return null;
  return parts.map((p) => (p.startsWith('"') ? p.slice(1, -1).replaceAll('""', '"') : p.toUpperCase()));
}
