import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine, type AnyConnector, type Engine } from '@outflow/core';
import { openSqliteLedger, type SqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';

/** Gauges seen, by name (latest value). */
export type Gauges = Map<string, number>;

/** The engine as the runner sets it up: a SQLite ledger and DuckDB state in a temp folder. */
export function engineEnv(connections: Record<string, { connector: AnyConnector; config: unknown }>): {
  engine: Engine;
  ledger: SqliteLedger;
  gauges: Gauges;
} {
  const stateDir = mkdtempSync(join(tmpdir(), 'outflow-pg-e2e-'));
  const ledger = openSqliteLedger(stateDir);
  const gauges: Gauges = new Map();
  const specs = Object.fromEntries(
    Object.entries(connections).map(([name, { connector, config }]) => [name, { connector, config: { ...(config as object) } }]),
  );
  const engine = createEngine({
    config: { connections: specs, syncs: [] },
    ledger,
    stateStore: duckdbStateStore({ dir: stateDir }),
    stateDir,
    metrics: { gauge: (n, v) => void gauges.set(n, v), count() {} },
  });
  return { engine, ledger, gauges };
}
