import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createEngine, createLogger, fromLoadedConfig, loadConfig, type Engine, type EngineOptions, type Ledger, type LoadedConfig, type Logger } from '@outflow/core';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';

/** Everything a command needs: the loaded config, and the engine over it. */
export interface Workspace {
  loaded: LoadedConfig;
  stateDir: string;
  logger: Logger;
  engine: Engine;
  /** Opens the ledger on first use (the engine opens it when a command needs it). */
  ledger(): Ledger;
  /** True when there is a ledger to read (a shared one always; the SQLite file once something ran). */
  hasLedger(): boolean;
  close(): Promise<void>;
}

export interface OpenOptions {
  configFile: string;
  logger?: Logger;
  /**
   * Change the working directory to the config file's folder, so relative paths in the
   * config (files, databases) are relative to the file. The CLI does; library callers may not.
   */
  chdir?: boolean;
  /** Engine options beyond the defaults (`outflow serve`: its metrics registry and lease length). */
  engine?: Pick<EngineOptions, 'metrics' | 'leaseMs'>;
}

/** The state folder of a loaded config (`state.dir`, relative to the config file). */
function stateDirOf(loaded: LoadedConfig): string {
  return resolve(loaded.dir, loaded.config.state?.dir ?? '.outflow');
}

/**
 * How to open the config's ledger: `ledger.postgres` when set (`@outflow/ledger-postgres`,
 * loaded only then), else the SQLite file in the state folder.
 */
async function ledgerOpener(loaded: LoadedConfig, stateDir: string): Promise<{ open: () => Ledger; shared: boolean }> {
  const postgres = loaded.config.ledger?.postgres;
  if (!postgres) return { open: () => openSqliteLedger(stateDir), shared: false };
  const { openPostgresLedger } = await import('@outflow/ledger-postgres');
  return { open: () => openPostgresLedger({ url: postgres.url, schema: postgres.schema }), shared: true };
}

/**
 * Loads and validates the config and sets up the engine with the embedded defaults: the
 * SQLite ledger (or the PostgreSQL one of `ledger.postgres`) and DuckDB delivered state under
 * the state folder. Nothing is written until a command needs the ledger or a connection, so a
 * config error leaves no trace on disk.
 */
export async function openWorkspace(options: OpenOptions): Promise<Workspace> {
  const loaded = await loadConfig(resolve(options.configFile));
  const stateDir = stateDirOf(loaded);
  if (options.chdir) process.chdir(loaded.dir);
  const logger = options.logger ?? createLogger();
  const opener = await ledgerOpener(loaded, stateDir);
  let ledger: Ledger | undefined;
  const getLedger = () => (ledger ??= opener.open());
  const engine = createEngine({
    config: fromLoadedConfig(loaded),
    ledger: getLedger,
    stateStore: duckdbStateStore({ dir: stateDir }),
    stateDir,
    logger,
    ...options.engine,
  });
  return {
    loaded,
    stateDir,
    logger,
    engine,
    ledger: getLedger,
    hasLedger: () => opener.shared || hasLedger(stateDir),
    async close() {
      await engine.close();
      if (ledger) await ledger.close();
    },
  };
}

/** True when the state folder holds a ledger (read-only commands then have history). */
export function hasLedger(stateDir: string): boolean {
  return existsSync(join(stateDir, 'ledger.db'));
}
