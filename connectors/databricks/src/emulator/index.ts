/**
 * A Databricks SQL warehouse emulator on 127.0.0.1: TCLIService (Thrift binary protocol
 * over HTTPS POST, as @databricks/sql speaks it) with a certificate made at start, bearer
 * token auth, sessions, asynchronous statements with status polling, column-based result
 * sets paged with FETCH_NEXT, and the metadata calls. SQL runs on an embedded DuckDB with
 * Delta behaviour Outflow relies on: three-part Unity Catalog names, table versions,
 * `DESCRIBE HISTORY`, the change data feed (`table_changes`) on tables with
 * `delta.enableChangeDataFeed = true`, log retention, and `information_schema`. Anything
 * else is refused with an error that names it, in Databricks' shape (`[ERROR_CLASS] …`,
 * with a SQLSTATE).
 */
import { isOutflowError, OutflowError, type EmulatorOptions, type RunningEmulator } from '@outflow/core';
import type { DatabricksConfig } from '../config.js';
import { DatabricksServer, type DatabricksFaults, type StatementLogEntry } from './server.js';
import type { Row } from './engine.js';

export type { DatabricksFaults, StatementLogEntry } from './server.js';
export type { Row } from './engine.js';
export { DatabricksSqlError } from './errors.js';

/** The token the emulator accepts unless told otherwise. */
export const SANDBOX_TOKEN = 'dapi-outflow-sandbox-token';
/** The warehouse's HTTP path. */
export const WAREHOUSE_PATH = '/sql/1.0/warehouses/outflow-sandbox';
/** The catalog and schema a session starts in, as a Unity Catalog workspace's defaults. */
export const DEFAULT_CATALOG = 'main';
export const DEFAULT_SCHEMA = 'default';

/** How long Delta keeps a table's versions, as the emulator applies it. */
export interface Retention {
  /**
   * How many of each table's newest versions stay available to `table_changes` and
   * `DESCRIBE HISTORY`; older ones are cleaned up after every commit, as Delta's log cleanup
   * does after `delta.logRetentionDuration`. Unlimited when absent.
   */
  versions?: number;
}

export interface DatabricksEmulatorOptions {
  /** The personal access token to accept; {@link SANDBOX_TOKEN} by default. */
  token?: string;
  /** A folder to keep the warehouse's data in (a DuckDB file), so it survives restarts; in memory when absent. */
  dir?: string;
  /** Port on 127.0.0.1; a free one when absent. */
  port?: number;
  faults?: DatabricksFaults;
  retention?: Retention;
}

/** A running emulator and what tests reach behind the wire protocol. */
export interface DatabricksEmulator {
  /** `127.0.0.1`: the certificate names it (and `localhost`). */
  host: string;
  port: number;
  /** The warehouse's HTTP path ({@link WAREHOUSE_PATH}). */
  path: string;
  token: string;
  /** The PEM certificate the server presents (self-signed): pass it as `customCaCert`. */
  caCert: string;
  /** `https://127.0.0.1:<port>`. */
  url: string;
  /**
   * Runs one statement as the warehouse's admin, in catalog `main`, schema `default`, with
   * the same SQL the wire protocol takes (CREATE TABLE … TBLPROPERTIES, INSERT, UPDATE,
   * DELETE, MERGE, ALTER TABLE … SET TBLPROPERTIES, table_changes, DESCRIBE HISTORY …):
   * every write commits a new table version. Answers the rows of a query (DML answers its
   * counts), BIGINT as bigint and DECIMAL, DATE and TIMESTAMP as their text; a refusal
   * throws a {@link DatabricksSqlError}.
   */
  sql(statement: string): Promise<Row[]>;
  /** Every statement a client executed over the wire, in order (not those run through {@link sql}). */
  readonly requests: readonly StatementLogEntry[];
  /** Replaces the active faults; `{}` clears them. */
  setFaults(faults: DatabricksFaults): void;
  /** Changes the retention; versions outside it are cleaned up at once. */
  setRetention(retention: Retention): Promise<void>;
  /** Sessions currently open. */
  readonly sessionCount: number;
  stop(): Promise<void>;
}

function checkRetention(retention: Retention | undefined): void {
  const versions = retention?.versions;
  if (versions !== undefined && (!Number.isInteger(versions) || versions < 1)) {
    throw new OutflowError('OUTFLOW_EMULATOR', `databricks emulator: retention.versions must be a whole number of versions, 1 or more (got ${String(versions)})`);
  }
}

/**
 * Starts the emulator on 127.0.0.1. Connect with
 * `new DBSQLClient().connect({ host, port, path, token, customCaCert: caCert })`.
 */
export async function startDatabricksEmulator(options: DatabricksEmulatorOptions = {}): Promise<DatabricksEmulator> {
  const token = options.token ?? SANDBOX_TOKEN;
  if (!/^\S+$/.test(token)) throw new OutflowError('OUTFLOW_EMULATOR', 'databricks emulator: `token` must be a non-empty string without spaces');
  checkRetention(options.retention);
  const server = await DatabricksServer.start({
    token,
    path: WAREHOUSE_PATH,
    catalog: DEFAULT_CATALOG,
    schema: DEFAULT_SCHEMA,
    ...(options.dir === undefined ? {} : { dir: options.dir }),
    ...(options.port === undefined ? {} : { port: options.port }),
    faults: options.faults ?? {},
    retention: options.retention ?? {},
  }).catch((err: unknown) => {
    if (isOutflowError(err) || options.dir === undefined) throw err;
    // Most often the folder is in use by another emulator (DuckDB locks its files).
    const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new OutflowError('OUTFLOW_EMULATOR', `databricks emulator could not open its data in ${options.dir}: ${reason}`, { cause: err });
  });
  return {
    host: server.host,
    port: server.port,
    path: WAREHOUSE_PATH,
    token,
    caCert: server.caCert,
    url: `https://${server.host}:${server.port}`,
    sql: (statement) => server.engine.admin(statement),
    requests: server.statements,
    setFaults: (faults) => server.setFaults(faults),
    setRetention: async (retention) => {
      checkRetention(retention);
      await server.engine.setRetention(retention);
    },
    get sessionCount() {
      return server.sessionCount;
    },
    stop: () => server.stop(),
  };
}

/**
 * The manifest's emulator: `outflow sandbox` and `sandbox: true` connections start it with
 * the contract's options (`dataDir` is kept across restarts); `config` points a connection at it.
 */
export async function start(options: EmulatorOptions = {}): Promise<RunningEmulator<DatabricksConfig> & DatabricksEmulator> {
  const emulator = await startDatabricksEmulator({
    ...(options.dataDir === undefined ? {} : { dir: options.dataDir }),
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.faults === undefined ? {} : { faults: options.faults as DatabricksFaults }),
  });
  const config: Partial<DatabricksConfig> = {
    host: emulator.host,
    port: emulator.port,
    httpPath: emulator.path,
    token: emulator.token,
    caCert: emulator.caCert,
    catalog: DEFAULT_CATALOG,
    schema: DEFAULT_SCHEMA,
  };
  return Object.assign(emulator, { config });
}
