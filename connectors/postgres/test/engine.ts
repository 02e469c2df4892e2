import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, unlimitedBudget, type AnyConnector, type ConnectionHandle, type ConnectorContext, type SyncEnvironment } from '@outflow/core';
import { openSqliteLedger, type SqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';

/** Gauges seen, by name (latest value). */
export type Gauges = Map<string, number>;

/** An engine environment as the runner builds it: a SQLite ledger, contexts with its kv store. */
export function engineEnv(connections: Record<string, { connector: AnyConnector; config: unknown }>): {
  env: SyncEnvironment;
  ledger: SqliteLedger;
  controller: AbortController;
  gauges: Gauges;
} {
  const stateDir = mkdtempSync(join(tmpdir(), 'outflow-pg-e2e-'));
  const ledger = openSqliteLedger(stateDir);
  const controller = new AbortController();
  const gauges: Gauges = new Map();
  const handles = new Map<string, ConnectionHandle>();
  for (const [name, { connector, config }] of Object.entries(connections)) {
    const ctx: ConnectorContext = {
      connection: name,
      config: Object.freeze({ ...(config as object) }),
      logger: silentLogger(),
      signal: controller.signal,
      rateBudget: unlimitedBudget(controller.signal),
      metrics: { gauge: (n, v) => void gauges.set(n, v), count() {} },
      kv: ledger.kv(name),
      stateDir: join(stateDir, 'connections', name),
    };
    handles.set(name, { connector, ctx });
  }
  return { env: { ledger, stateStore: duckdbStateStore({ dir: stateDir }), connections: handles, logger: silentLogger(), signal: controller.signal }, ledger, controller, gauges };
}
