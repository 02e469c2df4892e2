import type { AnyConnector } from '@outflow/core';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import { createTestEngine } from '@outflow/testing';

/** Gauges seen, by name (latest value). */
export type Gauges = Map<string, number>;

/** The engine as the runner sets it up: a SQLite ledger and DuckDB state in a temp folder. */
export function engineEnv(connections: Record<string, { connector: AnyConnector; config: unknown }>) {
  const gauges: Gauges = new Map();
  const { engine, ledger } = createTestEngine({
    connections,
    ledger: openSqliteLedger,
    stateStore: (dir) => duckdbStateStore({ dir }),
    metrics: { gauge: (n, v) => void gauges.set(n, v), count() {} },
  });
  return { engine, ledger, gauges };
}
