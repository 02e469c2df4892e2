import type { Catalog, DestinationCatalog, Metrics } from '../contracts.js';
import type { LoadedConfig } from '../config/load.js';
import type { SyncConfig } from '../config/schema.js';
import { parseInterval } from '../config/interval.js';
import { MAX_TIMER_MS } from '../delivery/rate-budget.js';
import type { StateStore } from '../state/store.js';
import { followStream } from '../capture/reconcile.js';
import { OutflowError, describeError, isOutflowError } from '../errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { silentLogger, type Logger } from '../logger.js';
import { redact } from '../redact.js';
import { Connections, type ConnectionHandle, type ConnectionSpec } from './connections.js';
import { planRun } from './dry-run.js';
import { createMapper } from '../mapping/mapper.js';
import { assertSupported } from '../mapping/operations.js';
import { runOnce, type RunOptions, type RunSummary } from './run.js';
import { DEFAULT_LEASE_MS, SyncLease } from './lease.js';
import { modelOf, type LeasedScope, type RunScope } from './scope.js';

export interface EngineOptions {
  /** The connections by name, and the syncs. `fromLoadedConfig` turns a loaded file into this. */
  config: EngineConfig;
  /** The ledger, or how to open it on first use (so commands that need none create none). */
  ledger: Ledger | (() => Ledger);
  /** Delivered state for syncs without pushdown and for streams (e.g. `@outflow/state-duckdb`). */
  stateStore: StateStore;
  /** Folder for per-connection files (`ctx.stateDir`) and sandbox emulator data. */
  stateDir: string;
  logger?: Logger;
  /**
   * Receives every connector's metrics (`ctx.metrics`), labelled with the connection, and
   * the engine's own: the counters `rate_budget_requests` (requests started through a
   * connection's budget) and `rate_limited` (pauses the destination asked for), and the
   * gauge `stream_lag_ms` (labelled with the sync) while a stream runs. None by default.
   */
  metrics?: Metrics;
  /** How long a graceful stop lets writes in flight finish before cancelling them (ms). */
  graceMs?: number;
  /**
   * How long a sync's lease lasts without a heartbeat (ms; 60 s by default). A runner that
   * stops renewing (killed, paused, cut off) loses the sync after this long, and another
   * runner sharing the ledger may take it over; heartbeats come every third of it.
   */
  leaseMs?: number;
}

/** Options of {@link Engine.run}: a run's options, and a signal that stops this call alone. */
export interface EngineRunOptions extends RunOptions {
  /**
   * Stops this call as {@link Engine.stop} stops every call, without the grace period:
   * reading stops and no new batch starts; batches in flight settle and are recorded, the
   * run ends `aborted` and the lease is released (`outflow serve` pauses a sync this way).
   */
  signal?: AbortSignal;
}

export interface EngineConfig {
  connections: Readonly<Record<string, ConnectionSpec>>;
  syncs: readonly SyncConfig[];
}

/** The engine config of a loaded, validated `outflow.yaml`. */
export function fromLoadedConfig(loaded: LoadedConfig): EngineConfig {
  const connections: Record<string, ConnectionSpec> = {};
  for (const [name, conn] of Object.entries(loaded.config.connections)) {
    const connector = loaded.connectors.get(name);
    if (!connector) throw new OutflowError('OUTFLOW_CONNECTOR_NOT_FOUND', `connection "${name}" has no loaded connector`);
    connections[name] = {
      connector,
      config: { ...((conn.config ?? {}) as Record<string, unknown>) },
      ...(conn.sandbox ? { sandbox: true } : {}),
      ...(conn.maxWait === undefined ? {} : { maxWaitMs: parseInterval(conn.maxWait) }),
    };
  }
  return { connections, syncs: loaded.config.syncs };
}

/**
 * Outflow's engine: it owns the connections (each opened once, with one context and one
 * request budget shared by every sync that uses it, and closed at the end), runs diff and
 * stream syncs (reconciling stale streams), plans dry runs, and stops gracefully. The
 * `outflow` runner and the tests drive it the same way.
 */
export interface Engine {
  /** Aborted once a stop begins: no new reads or batches start. */
  readonly stopping: AbortSignal;
  /** The sync of that name, or `OUTFLOW_SYNC_NOT_FOUND`. */
  sync(name: string): SyncConfig;
  /** Opens the connection on first use (sandbox emulator, `open` hook). */
  connection(name: string): Promise<ConnectionHandle>;
  /** Checks the connection in every role it has. Throws naming what failed. */
  check(name: string): Promise<void>;
  discover(name: string): Promise<{ tables?: Catalog['tables']; objects?: DestinationCatalog['objects'] }>;
  /**
   * Runs a sync: a diff sync once; a stream sync until {@link stop}, reconciling it by a
   * diff each time its stream goes stale. Never throws for a failed run: the summary says
   * so (for a stream, the last run's; `options.onRun` sees every run).
   *
   * The sync's lease is held for the whole call and renewed while it runs. A sync held by
   * another runner is not run: the summary fails with `OUTFLOW_LOCKED` naming the holder. A
   * run whose lease is lost (another runner took the sync over after it expired) stops
   * reading and starting batches at once and fails with `OUTFLOW_LEASE_LOST`.
   */
  run(sync: string | SyncConfig, options?: EngineRunOptions): Promise<RunSummary>;
  /**
   * A dry run of a diff sync: what a run would send. Sends nothing and records nothing —
   * no delivered state, no run; opening its connections opens the ledger (creating the
   * file if it is missing) and starts sandbox emulators.
   */
  plan(sync: string | SyncConfig, options?: RunOptions): Promise<RunSummary>;
  /**
   * Stops gracefully: reading stops and no new batch starts at once; batches in flight
   * settle and are recorded. After the grace period (or at once with `{ graceMs: 0 }`)
   * every context's signal aborts, cancelling calls still in flight.
   */
  stop(options?: { graceMs?: number }): void;
  /** Stops at once if running, then closes every connection and sandbox emulator. */
  close(): Promise<void>;
}

export function createEngine(o: EngineOptions): Engine {
  const logger = o.logger ?? silentLogger();
  const stopping = new AbortController();
  const hard = new AbortController();
  let graceTimer: NodeJS.Timeout | undefined;
  let opened: Ledger | undefined = typeof o.ledger === 'function' ? undefined : o.ledger;
  const ledger = (): Ledger => (opened ??= (o.ledger as () => Ledger)());
  const connections = new Connections({
    specs: o.config.connections,
    ledger,
    stateDir: o.stateDir,
    logger,
    metrics: o.metrics ?? { gauge() {}, count() {} },
    signal: hard.signal,
  });

  const syncOf = (s: string | SyncConfig): SyncConfig => {
    if (typeof s !== 'string') return s;
    const found = o.config.syncs.find((x) => x.name === s);
    if (!found) {
      throw new OutflowError('OUTFLOW_SYNC_NOT_FOUND', `no sync named "${s}" (syncs: ${o.config.syncs.map((x) => x.name).join(', ') || 'none'})`);
    }
    return found;
  };

  /** What stops a run: the engine stopping, its lease lost, or the caller's own signal. */
  const stopOf = (options: EngineRunOptions, lease: SyncLease): AbortSignal =>
    AbortSignal.any([stopping.signal, lease.signal, ...(options.signal ? [options.signal] : [])]);

  function scopeOf(sync: SyncConfig, options: RunOptions): Promise<RunScope>;
  function scopeOf(sync: SyncConfig, options: EngineRunOptions, lease: SyncLease): Promise<LeasedScope>;
  async function scopeOf(sync: SyncConfig, options: EngineRunOptions, lease?: SyncLease): Promise<RunScope> {
    const from = await connections.get(sync.from.connection);
    const to = await connections.get(sync.to.connection);
    const destination = to.connector.destination;
    if (!destination) {
      throw new OutflowError('OUTFLOW_CONNECTOR_ROLE', `connection "${sync.to.connection}" (${to.connector.name}) is not a destination`);
    }
    const caps = await destination.capabilities(to.ctx, sync.to.object);
    assertSupported(sync, caps, `sync "${sync.name}"`);
    const budget = await connections.budget(sync.to.connection);
    for (const limit of caps.rateLimits) budget.addLimit(limit);
    return {
      sync,
      from,
      to,
      budget,
      model: modelOf(sync),
      mapper: createMapper(sync.mappings, sync.to.matchKey),
      caps,
      ledger: ledger(),
      logger,
      signal: lease ? stopOf(options, lease) : stopping.signal,
      ...(lease ? { lease } : {}),
      allowDeletes: options.allowDeletes === true,
      progress: (p) => options.onProgress?.({ sync: sync.name, ...p }),
    };
  }

  /** A failed summary for a run that could not start, or a stream loop that failed between runs. */
  const failed = (sync: SyncConfig, started: number, err: unknown): RunSummary => {
    const code = isOutflowError(err) ? err.code : 'OUTFLOW_INTERNAL';
    return {
      sync: sync.name,
      capture: sync.capture ?? 'diff',
      status: 'failed',
      inserted: 0,
      updated: 0,
      deleted: 0,
      rejected: 0,
      skipped: 0,
      durationMs: Date.now() - started,
      error: { code, message: redact(isOutflowError(err) ? err.message : describeError(err)) },
    };
  };

  /** One run under the lease; a failure before the run could start becomes a failed summary too. */
  const runOne = async (sync: SyncConfig, options: EngineRunOptions, lease: SyncLease): Promise<RunSummary> => {
    const started = Date.now();
    try {
      if (lease.lost) throw lease.lost;
      const scope = await scopeOf(sync, options, lease);
      return await runOnce(scope, o.stateStore, options);
    } catch (err) {
      return failed(sync, started, err);
    }
  };

  const engine: Engine = {
    stopping: stopping.signal,
    sync: syncOf,
    connection: (name) => connections.get(name),

    async check(name) {
      const { connector, ctx } = await connections.get(name);
      for (const role of [connector.source, connector.destination]) if (role) await role.check(ctx as never);
    },

    async discover(name) {
      const { connector, ctx } = await connections.get(name);
      const out: { tables?: Catalog['tables']; objects?: DestinationCatalog['objects'] } = {};
      if (connector.source) out.tables = (await connector.source.discover(ctx as never)).tables;
      if (connector.destination) out.objects = (await connector.destination.discover(ctx as never)).objects;
      return out;
    },

    async run(s, options = {}) {
      const sync = syncOf(s);
      const started = Date.now();
      // One lease for the whole call: a diff run, or a stream with its reconciles, so no other
      // runner slips in between a stale stream and its reconcile.
      let lease: SyncLease;
      try {
        lease = await SyncLease.take(ledger(), sync.name, logger, o.leaseMs ?? DEFAULT_LEASE_MS);
      } catch (err) {
        const summary = failed(sync, started, err);
        options.onRun?.(summary);
        return summary;
      }
      try {
        if ((sync.capture ?? 'diff') === 'stream') {
          // `retry` sends the parked rows once, in the first run; the runs after a reconcile do not.
          let runs = 0;
          const optionsOf = (reconcile?: boolean): EngineRunOptions => {
            const o = runs++ === 0 ? options : { ...options, unpark: false };
            return reconcile ? { ...o, reconcile } : o;
          };
          const loop = {
            runOnce: (x: SyncConfig, reconcile?: boolean) => runOne(x, optionsOf(reconcile), lease),
            ledger: ledger(),
            lease,
            logger,
            signal: stopOf(options, lease),
            ...(options.onRun ? { onRun: options.onRun } : {}),
          };
          try {
            return await followStream(loop, sync);
          } catch (err) {
            const summary = failed(sync, started, lease.lost ?? err);
            options.onRun?.(summary);
            return summary;
          }
        }
        const summary = await runOne(sync, options, lease);
        options.onRun?.(summary);
        return summary;
      } finally {
        await lease.release();
      }
    },

    async plan(s, options = {}) {
      const sync = syncOf(s);
      return planRun(await scopeOf(sync, options), o.stateStore, options);
    },

    stop(options = {}) {
      const graceMs = options.graceMs ?? o.graceMs ?? 30_000;
      if (!stopping.signal.aborted) stopping.abort();
      if (graceMs <= 0) {
        clearTimeout(graceTimer);
        hard.abort();
      } else if (!graceTimer && !hard.signal.aborted) {
        graceTimer = setTimeout(() => hard.abort(), Math.min(graceMs, MAX_TIMER_MS));
        graceTimer.unref();
      }
    },

    async close() {
      clearTimeout(graceTimer);
      if (!stopping.signal.aborted) stopping.abort();
      hard.abort();
      await connections.close();
    },
  };
  return engine;
}
