/**
 * A Snowflake emulator on 127.0.0.1: an HTTP server speaking snowflake-sdk's wire protocol
 * (login, query-request with binds, chunked results, long-query polling, session renew,
 * heartbeat, telemetry, session delete), executing SQL on an embedded DuckDB with the
 * Snowflake behaviour Outflow relies on: per-session transactions, STREAMs with net-change
 * semantics, dynamic tables, INFORMATION_SCHEMA and SYSTEM$STREAM_HAS_DATA. Anything else
 * is refused with a Snowflake-shaped error that says it is unsupported here.
 */
import type { EmulatorOptions, RunningEmulator } from '@outflow/core';
import type { KitFaults } from '@outflow/core/emulator-kit';
import type { SnowflakeConfig } from './config.js';
import { EmulatorServer } from './emulator/server.js';

export { SnowflakeError } from './emulator/engine.js';

/** The account, user and password the emulator accepts unless told otherwise. */
export const SANDBOX_ACCOUNT = 'OUTFLOW';
export const SANDBOX_USER = 'OUTFLOW';
export const SANDBOX_PASSWORD = 'outflow-sandbox-password';
export const SANDBOX_DATABASE = 'ANALYTICS';

export interface SnowflakeEmulatorOptions extends EmulatorOptions {
  account?: string;
  username?: string;
  password?: string;
  /** A PEM public key registered for the user (key-pair authentication). */
  publicKey?: string;
  database?: string;
  schema?: string;
  /** Rows returned inline with a query response before the rest go to chunks (default 1000). */
  inlineRows?: number;
  /** Rows per result chunk (default 20,000). */
  chunkRows?: number;
  /** How long a query runs before the driver is told to poll for its result (default 5 s). */
  longQueryMs?: number;
  /** Latency applies to every request; resets, 503s (errorRate, failRequests) and 429s to query requests. */
  faults?: KitFaults;
}

/** A running emulator, with hooks tests use to reach behind the wire protocol. */
export interface SnowflakeEmulator extends RunningEmulator<SnowflakeConfig> {
  config: SnowflakeConfig & { password: string };
  /** Requests seen, by method and path. */
  readonly requests: { method: string; path: string }[];
  /** Runs one Snowflake SQL statement as the emulator's user in the default database and schema (no wire protocol), then records changes for streams; a query returns its rows. */
  sql(text: string): Promise<Record<string, unknown>[]>;
  /** Sets the data retention period streams go stale after (Snowflake's default: 14 days). */
  setRetention(ms: number): void;
  /** Refreshes every dynamic table now, as Snowflake would on its target lag. */
  refreshDynamicTables(): Promise<void>;
  /** Expires every session token: the next request gets 390112 and the driver renews. */
  expireSessions(): void;
  /** Adds a user with a password and/or a PEM public key. */
  addUser(name: string, user: { password?: string; publicKey?: string }): void;
  /** Sessions currently open. */
  readonly sessionCount: number;
}

/** Starts the emulator; `config` is a working connection config pointing at it. */
export async function start(options: SnowflakeEmulatorOptions = {}): Promise<SnowflakeEmulator> {
  const account = options.account ?? SANDBOX_ACCOUNT;
  const database = (options.database ?? SANDBOX_DATABASE).toUpperCase();
  const schema = (options.schema ?? 'PUBLIC').toUpperCase();
  const server = await EmulatorServer.start({
    port: options.port,
    account,
    database,
    schema,
    dataDir: options.dataDir,
    inlineRows: options.inlineRows ?? 1000,
    chunkRows: options.chunkRows ?? 20_000,
    longQueryMs: options.longQueryMs ?? 5000,
    faults: options.faults ?? {},
  });
  const username = options.username ?? SANDBOX_USER;
  const password = options.password ?? SANDBOX_PASSWORD;
  server.addUser(username, { password, ...(options.publicKey ? { publicKey: options.publicKey } : {}) });
  return {
    url: server.url,
    config: {
      account,
      username,
      password,
      database,
      schema,
      warehouse: 'COMPUTE_WH',
      outflowSchema: 'OUTFLOW',
      accessUrl: server.url,
    },
    requests: server.requests,
    sql: (text) => server.engine.sql(text),
    setRetention: (ms) => {
      server.engine.retentionMs = ms;
    },
    refreshDynamicTables: () => server.engine.refreshDynamicTables(),
    expireSessions: () => server.expireSessions(),
    addUser: (name, user) => server.addUser(name, user),
    get sessionCount() {
      return server.sessionCount;
    },
    stop: () => server.stop(),
  };
}
