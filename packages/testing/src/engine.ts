import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createEngine, type AnyConnector, type Engine, type Ledger, type Logger, type Metrics, type StateStore } from '@outflow/core';

export interface TestEngineOptions<L extends Ledger = Ledger> {
  /**
   * The connections by name: a connector, or a connector with its (validated) config and
   * the longest wait it may be asked for (`maxWait` in outflow.yaml, in ms).
   */
  connections: Record<string, AnyConnector | { connector: AnyConnector; config?: unknown; maxWaitMs?: number }>;
  /** Opens the ledger in the engine's folder, e.g. `openSqliteLedger` from `@outflow/ledger-sqlite`. */
  ledger(dir: string): L;
  /** Opens the delivered state in the engine's folder, e.g. `(dir) => duckdbStateStore({ dir })`. */
  stateStore(dir: string): StateStore;
  /** The folder for the ledger, state and connection files; a fresh temp folder by default. */
  dir?: string;
  logger?: Logger;
  metrics?: Metrics;
  /** Stops the engine gracefully when it aborts. */
  signal?: AbortSignal;
}

export interface TestEngine<L extends Ledger = Ledger> {
  engine: Engine;
  ledger: L;
  dir: string;
  /** Closes the engine and the ledger; removes the folder when the engine made it. */
  close(): Promise<void>;
}

/**
 * The engine as the runner sets it up, for tests that drive syncs end to end: every
 * connection of `connections`, a ledger and a delivered-state store in one folder.
 */
export function createTestEngine<L extends Ledger>(options: TestEngineOptions<L>): TestEngine<L> {
  const made = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'outflow-engine-'));
  const ledger = options.ledger(dir);
  const connections = Object.fromEntries(
    Object.entries(options.connections).map(([name, c]) =>
      'connector' in c
        ? [
            name,
            {
              connector: c.connector,
              config: { ...((c.config ?? {}) as Record<string, unknown>) },
              ...(c.maxWaitMs === undefined ? {} : { maxWaitMs: c.maxWaitMs }),
            },
          ]
        : [name, { connector: c }],
    ),
  );
  const engine = createEngine({
    config: { connections, syncs: [] },
    ledger,
    stateStore: options.stateStore(dir),
    stateDir: dir,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
  options.signal?.addEventListener('abort', () => engine.stop(), { once: true });
  return {
    engine,
    ledger,
    dir,
    async close() {
      await engine.close();
      await ledger.close();
      if (made) await rm(dir, { recursive: true, force: true });
    },
  };
}
