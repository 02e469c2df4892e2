import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import type { AnyConnector, SyncConfig } from '@outflow/core';
import { createTestContext, createTestEngine } from '@outflow/testing';
import { configSchema, type DatabricksConfig } from '../src/index.js';
import { startDatabricksEmulator } from '../src/emulator/index.js';

export type Emulator = Awaited<ReturnType<typeof startDatabricksEmulator>>;

/** The connection config pointing at an emulator: its host, port and path, its token, and its certificate trusted. */
export function configOf(emulator: Emulator): DatabricksConfig {
  return { host: emulator.host, port: emulator.port, httpPath: emulator.path, token: emulator.token, caCert: emulator.caCert, schema: 'default' };
}

/** A connector context on `config`, validated against the connector's schema. */
export const contextOf = (config: DatabricksConfig) => createTestContext<DatabricksConfig>(config, { schema: configSchema });

export function tempDir(prefix = 'outflow-databricks-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * The engine as the runner sets it up (a SQLite ledger whose key-value store backs each
 * connection, DuckDB state), stopped gracefully when `signal` aborts.
 */
export function environment(dir: string, connections: Record<string, { connector: AnyConnector; config: unknown }>, signal: AbortSignal) {
  return createTestEngine({ connections, dir, signal, ledger: openSqliteLedger, stateStore: (d) => duckdbStateStore({ dir: d }) });
}

/** A stream sync of the `users` table into the webhook receiver's `users`. */
export function streamSync(overrides: Partial<SyncConfig> = {}): SyncConfig {
  return {
    name: 'users',
    from: { connection: 'warehouse', table: 'users', primaryKey: 'id' },
    capture: 'stream',
    to: { connection: 'hooks', object: 'users', mode: 'upsert', deletes: 'delete' },
    mappings: { email: 'email', name: 'name' },
    ...overrides,
  } as SyncConfig;
}

/** Resolves once `predicate` holds, polling; fails after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
