import { describeError, redact, type Logger, type RunSummary, type SyncConfig } from '@outflow/core';
import { ExitCode } from '../exit-codes.js';
import { summaryLine, type Out } from '../output.js';
import { openWorkspace, type Workspace } from '../workspace.js';
import { Alerts } from './alerts.js';
import { ServeMetrics } from './metrics.js';
import { scheduleOf, type Schedule } from './schedule.js';
import { Scheduler } from './scheduler.js';
import { apiHandler, closeServer, createApiServer, listen } from './server.js';

/** How often alert rules judged over time (`noSuccessFor`, `lagAbove`) are looked at. */
const ALERT_CHECK_MS = 15_000;
/** How long a runner that stopped checking stays the one judging `noSuccessFor` for all. */
const ALERT_WATCHER_LEASE_MS = 4 * ALERT_CHECK_MS;

export interface ServeOptions {
  configFile: string;
  /** Only these syncs (default: all). */
  names: string[];
  host: string;
  port: number;
  /** How long calls in flight may take to finish after a stop before they are cancelled. */
  graceMs: number;
  /** How long a sync's lease lasts without a heartbeat. */
  leaseMs: number;
  chdir: boolean;
}

export const SERVE_HELP = `
Diff syncs run on their schedule (schedule: { every: 15m } or { cron: "0 * * * *", timezone: Europe/Paris })
and when asked; a diff sync without a schedule runs only when asked. Stream syncs run continuously.

HTTP API (JSON; requests that change something need content-type: application/json):
  GET  /healthz                  liveness
  GET  /readyz                   readiness: 200 once the ledger answers, 503 while stopping
  GET  /metrics                  Prometheus metrics
  GET  /syncs                    every sync: state, last run, next run, lag, parked rows
  POST /syncs/{name}/runs        start a run of a diff sync (202 with its id)
  GET  /syncs/{name}/runs/{id}   that run: queued, running, succeeded, partial, failed or aborted
  POST /syncs/{name}/pause       no scheduled run starts, in every runner of the ledger; a run in progress drains
  POST /syncs/{name}/resume
  GET  /                         the status page

Alerts (alerts: { webhook: { url, secret }, rules: { runFailed, rejectedPct, lagAbove, noSuccessFor } },
or a sync's own alerts:) are sent to the webhook, signed like the webhook destination, once per
incident, with a recovery notice when it resolves; runners sharing a ledger send each one once.

Several runners may share a PostgreSQL ledger (ledger: { postgres: … }): each sync runs in one
of them at a time, and a runner that dies is replaced within --lease. See docs/production.md.

SIGINT/SIGTERM stop the schedules, drain the runs in progress (batches in flight settle; calls
still in flight after --grace are cancelled), release the leases and exit 130.
`;

/**
 * `outflow serve`: runs the syncs on their schedules (streams continuously) and answers the
 * HTTP API until `signal` aborts, then drains and returns 130.
 */
export async function serveCommand(o: ServeOptions, io: { out: Out; err: (s: string) => void; signal: AbortSignal; logger: Logger }): Promise<number> {
  const metrics = new ServeMetrics();
  const ws = await openWorkspace({ configFile: o.configFile, logger: io.logger, chdir: o.chdir, engine: { metrics: metrics.sink, leaseMs: o.leaseMs } });
  try {
    const syncs = served(ws, o.names);
    const schedules = new Map<string, Schedule>();
    for (const sync of syncs) {
      const schedule = scheduleOf(sync, ws.loaded.file);
      if (schedule) schedules.set(sync.name, schedule);
      else if ((sync.capture ?? 'diff') === 'diff') io.err(`${sync.name}: no schedule set; it runs only when asked (POST /syncs/${sync.name}/runs)\n`);
    }
    const alerts = Alerts.from({
      config: ws.loaded.config,
      syncs: syncs.map((s) => s.name),
      ledger: ws.ledger(),
      logger: io.logger,
      watcherLeaseMs: ALERT_WATCHER_LEASE_MS,
    });
    const streams = syncs.filter((s) => s.capture === 'stream').map((s) => s.name);
    // Rules judged over time: no success for a while, and the lag of each stream running here
    // (one that moved to another runner is judged there; its last lag here is stale).
    const watch = alerts
      ? setInterval(() => {
          alerts.checkQuiet().catch((err: unknown) => io.logger.warn({ err: describeError(err) }, 'could not judge the noSuccessFor alerts; trying again'));
          for (const s of streams) {
            const lag = metrics.lagMs(s);
            if (lag !== undefined && scheduler.isRunning(s)) void alerts.lag(s, lag);
          }
        }, ALERT_CHECK_MS)
      : undefined;
    const scheduler = new Scheduler({
      engine: ws.engine,
      ledger: () => ws.ledger(),
      syncs,
      schedules,
      metrics,
      logger: io.logger,
      leaseMs: o.leaseMs,
      onRun: (s) => {
        report(s, io.logger);
        void alerts?.runFinished(s);
      },
    });
    const stopping = () => io.signal.aborted;
    const server = createApiServer(
      apiHandler({
        scheduler,
        metrics,
        logger: io.logger,
        readiness: async () => {
          if (stopping()) return { ready: false, reason: 'stopping' };
          try {
            await ws.ledger().listRuns({ limit: 1 });
            return { ready: true };
          } catch (err) {
            return { ready: false, reason: `the ledger does not answer: ${redact(describeError(err))}` };
          }
        },
      }),
    );
    const url = await listen(server, o.host, o.port);
    io.out.write(`outflow serve: listening on ${url} (${syncs.length} sync${syncs.length === 1 ? '' : 's'})\n`);
    await scheduler.start();

    await new Promise<void>((resolve) => {
      if (io.signal.aborted) resolve();
      else io.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    // Stop scheduling, drain the runs in progress (each releases its lease), then stop answering.
    const drained = scheduler.stop();
    ws.engine.stop({ graceMs: o.graceMs });
    await drained;
    clearInterval(watch);
    await alerts?.close();
    await closeServer(server);
    return ExitCode.Interrupted;
  } finally {
    await ws.close();
  }
}

/** The syncs named (all by default), or `OUTFLOW_SYNC_NOT_FOUND`. */
function served(ws: Workspace, names: string[]): SyncConfig[] {
  if (!names.length) return [...ws.loaded.config.syncs];
  return names.map((n) => ws.engine.sync(n));
}

function report(s: RunSummary, logger: Logger): void {
  if (s.status === 'failed') logger.warn(summaryLine(s), 'sync failed');
  else logger.info(summaryLine(s), 'sync finished');
}
