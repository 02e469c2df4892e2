import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  OutflowError,
  createLogger,
  describeError,
  loadConfig,
  redact,
  unlimitedBudget,
  registerSecret,
  secretPaths,
  type AnyConnector,
  type ConnectionHandle,
  type ConnectorContext,
  type Ledger,
  type LoadedConfig,
  type Logger,
  type RunningEmulator,
} from '@outflow/core';
import { openSqliteLedger } from '@outflow/ledger-sqlite';

/** Everything a command needs: the loaded config, the ledger and ready connections. */
export interface Workspace {
  loaded: LoadedConfig;
  stateDir: string;
  logger: Logger;
  signal: AbortSignal;
  ledger(): Ledger;
  /** Opens connections (starting sandbox emulators) on first use. */
  connection(name: string): Promise<ConnectionHandle>;
  connections(names?: Iterable<string>): Promise<Map<string, ConnectionHandle>>;
  close(): Promise<void>;
}

export interface OpenOptions {
  configFile: string;
  logger?: Logger;
  signal?: AbortSignal;
  /**
   * Change the working directory to the config file's folder, so relative paths in the
   * config (files, databases) are relative to the file. The CLI does; library callers may not.
   */
  chdir?: boolean;
}

/** The state folder of a loaded config (`state.dir`, relative to the config file). */
function stateDirOf(loaded: LoadedConfig): string {
  return resolve(loaded.dir, loaded.config.state?.dir ?? '.outflow');
}

/**
 * Loads and validates the config. Nothing is written until a command asks for the ledger
 * or a connection, so a config error leaves no trace on disk.
 */
export async function openWorkspace(options: OpenOptions): Promise<Workspace> {
  const loaded = await loadConfig(resolve(options.configFile));
  const stateDir = stateDirOf(loaded);
  if (options.chdir) process.chdir(loaded.dir);
  const logger = options.logger ?? createLogger();
  const signal = options.signal ?? new AbortController().signal;
  let ledger: Ledger | undefined;
  const handles = new Map<string, Promise<ConnectionHandle>>();
  const emulators: RunningEmulator[] = [];

  const getLedger = () => {
    ledger ??= openSqliteLedger(stateDir);
    return ledger;
  };

  const open = async (name: string): Promise<ConnectionHandle> => {
    const conn = loaded.config.connections[name];
    const connector = loaded.connectors.get(name);
    if (!conn || !connector) {
      throw new OutflowError('OUTFLOW_CONFIG_INVALID', `no connection named "${name}" in ${loaded.file}`);
    }
    let config: Record<string, unknown> = { ...((conn.config ?? {}) as Record<string, unknown>) };
    if (conn.sandbox) {
      const running = await startSandbox(name, connector, stateDir);
      emulators.push(running);
      config = { ...config, ...(running.config as Record<string, unknown>) };
      for (const path of secretPaths(connector.config)) registerSecret(valueAt(config, path));
      logger.info({ connection: name, url: running.url }, `sandbox: ${connector.name} emulator started`);
    }
    const connDir = join(stateDir, 'connections', name.replace(/[^A-Za-z0-9_.-]/g, '_'));
    const kvStore = getLedger().kv(name);
    const ctx: ConnectorContext = {
      connection: name,
      config: Object.freeze(config),
      logger: logger.child({ connection: name }),
      // Connector calls are not cancelled by a graceful stop: a write in flight must finish
      // so that what the destination applied is also recorded. A second signal exits at once.
      signal: new AbortController().signal,
      rateBudget: unlimitedBudget(),
      metrics: { gauge() {}, count() {} },
      kv: kvStore,
      stateDir: connDir,
    };
    return { connector, ctx };
  };

  const connection = (name: string) => {
    let h = handles.get(name);
    if (!h) {
      h = open(name);
      handles.set(name, h);
    }
    return h;
  };

  return {
    loaded,
    stateDir,
    logger,
    signal,
    ledger: getLedger,
    connection,
    async connections(names) {
      const out = new Map<string, ConnectionHandle>();
      for (const name of names ?? Object.keys(loaded.config.connections)) out.set(name, await connection(name));
      return out;
    },
    async close() {
      for (const e of emulators.splice(0)) await e.stop().catch(() => undefined);
      if (ledger) await ledger.close();
    },
  };
}

async function startSandbox(name: string, connector: AnyConnector, stateDir: string): Promise<RunningEmulator> {
  if (!connector.emulator) {
    throw new OutflowError(
      'OUTFLOW_EMULATOR',
      `connection "${name}" sets sandbox: true, but connector "${connector.name}" has no emulator`,
    );
  }
  try {
    const emulator = await connector.emulator();
    const dataDir = join(stateDir, 'sandbox', name.replace(/[^A-Za-z0-9_.-]/g, '_'));
    mkdirSync(dataDir, { recursive: true });
    return await emulator.start({ dataDir });
  } catch (err) {
    throw new OutflowError('OUTFLOW_EMULATOR', `cannot start the sandbox for connection "${name}": ${redact(describeError(err))}`, {
      cause: err,
    });
  }
}

function valueAt(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** True when the state folder holds a ledger (read-only commands then have history). */
export function hasLedger(stateDir: string): boolean {
  return existsSync(join(stateDir, 'ledger.db'));
}
