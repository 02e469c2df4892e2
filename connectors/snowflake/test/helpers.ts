import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import { silentLogger, unlimitedBudget, type AnyConnector, type ConnectionHandle, type SyncConfig, type SyncEnvironment } from '@outflow/core';

export function tempDir(prefix = 'outflow-snowflake-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A sync environment with a SQLite ledger whose key-value store backs each connection, as the runner wires it. */
export function environment(
  dir: string,
  connections: Record<string, { connector: AnyConnector; config: unknown }>,
  signal: AbortSignal,
): SyncEnvironment & { close(): Promise<void> } {
  const ledger = openSqliteLedger(dir);
  const map = new Map<string, ConnectionHandle>();
  for (const [name, { connector, config }] of Object.entries(connections)) {
    const stateDir = join(dir, 'connections', name);
    mkdirSync(stateDir, { recursive: true });
    map.set(name, {
      connector,
      ctx: { connection: name, config: Object.freeze(config), logger: silentLogger(), signal, rateBudget: unlimitedBudget(signal), metrics: { gauge() {}, count() {} }, kv: ledger.kv(name), stateDir },
    });
  }
  return { ledger, stateStore: duckdbStateStore({ dir }), connections: map, logger: silentLogger(), signal, close: () => ledger.close() };
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
