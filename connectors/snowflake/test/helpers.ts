import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import type { AnyConnector, SyncConfig } from '@outflow/core';
import { createTestEngine } from '@outflow/testing';

export function tempDir(prefix = 'outflow-snowflake-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * The engine as the runner sets it up (a SQLite ledger whose key-value store backs each
 * connection, DuckDB state), stopped gracefully when `signal` aborts.
 */
export function environment(dir: string, connections: Record<string, { connector: AnyConnector; config: unknown }>, signal: AbortSignal) {
  return createTestEngine({ connections, dir, signal, ledger: openSqliteLedger, stateStore: (d) => duckdbStateStore({ dir: d }) });
}

export function streamSync(overrides: Partial<SyncConfig> = {}): SyncConfig {
  return {
    name: 'users',
    from: { connection: 'warehouse', table: 'USERS', primaryKey: 'ID' },
    capture: 'stream',
    to: { connection: 'hooks', object: 'users', mode: 'upsert', deletes: 'delete' },
    mappings: { email: 'EMAIL', name: 'NAME' },
    ...overrides,
  } as SyncConfig;
}

/** The operations the webhook emulator applied, in order, from its log: key → ['put:name', 'del']. */
export function appliedByKey(logFile: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as { t: 'put' | 'del'; key?: string; record?: { key: string; fields: Record<string, unknown> } };
    const key = e.t === 'put' ? e.record!.key : e.key!;
    out.set(key, [...(out.get(key) ?? []), e.t === 'put' ? `put:${String(e.record!.fields['name'])}` : 'del']);
  }
  return out;
}

/** Resolves once `predicate` holds, polling; fails after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
