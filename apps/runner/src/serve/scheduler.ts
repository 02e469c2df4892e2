import { OutflowError, describeError, type Engine, type KeyValueStore, type Ledger, type Logger, type RowError, type RunRecord, type RunSummary, type SyncConfig } from '@outflow/core';
import { ConnectionLeases } from './connection-leases.js';
import type { ServeMetrics } from './metrics.js';
import { RunBook, type ServeRun } from './runs.js';
import type { Schedule } from './schedule.js';
import type { ActionResult, ServeView, SyncStatus } from './view.js';

/** The ledger's key-value scope of paused syncs; a connection name cannot contain ':'. */
const PAUSES_SCOPE = ':serve-paused';
/** The longest a stream sync waits before opening again after its run failed. */
const MAX_STREAM_BACKOFF_MS = 60_000;
/** The longest single timer; longer waits are taken in steps. */
const MAX_WAIT_MS = 2 ** 31 - 1;

export interface SchedulerOptions {
  engine: Engine;
  ledger(): Ledger;
  /** The syncs this process serves, in the configuration's order. */
  syncs: readonly SyncConfig[];
  /** Each diff sync's schedule; a diff sync without one runs only when asked. */
  schedules: ReadonlyMap<string, Schedule>;
  metrics: ServeMetrics;
  logger: Logger;
  /** The lease length: a sync held by another runner is tried again every third of it. */
  leaseMs: number;
  /** Called with the summary of every run this process made (not with runs refused because another runner holds the sync). */
  onRun?(summary: RunSummary): void;
}

/** One sync as this process serves it. */
interface Slot {
  sync: SyncConfig;
  stream: boolean;
  paused: boolean;
  /** The run in progress here: its own stop, and the requests it answers. */
  current?: { stop: AbortController; requests: ServeRun[] };
  /** Requests the next run answers (a diff sync runs them as one run, after the one in progress). */
  waiting: ServeRun[];
  /** Parked rows to send again with the next run: all, or these keys. */
  unpark?: true | string[];
  /** When the next scheduled run is due (ms since the epoch); absent when none is. */
  nextAt?: number;
  /** When the last run made here started. */
  lastStart: number;
  /** Something changed since the loop last looked (a request, a pause or resume, a stop). */
  poked: boolean;
  /** Ends the loop's current wait. */
  wake?(): void;
}

/**
 * The scheduler of `outflow serve`: one loop per sync. A diff sync runs on its schedule (an
 * interval counted from the last run's start by any runner sharing the ledger, or a cron
 * expression) and when asked; requests made while a run is in progress are answered by one
 * run right after it, so a sync never runs twice at once. A stream sync is always on: its
 * run is opened again after it ends, with a growing wait after failures. A sync held by
 * another runner (`OUTFLOW_LOCKED`) is left to it: a stream sync, or a requested run, tries
 * again every third of the lease, so a runner that dies is replaced within the lease's length.
 * So is a sync whose destination connection another runner holds ({@link ConnectionLeases}):
 * the syncs writing through one connection run in one runner at a time, within one budget.
 *
 * It is also the status page's {@link ServeView}.
 */
export class Scheduler implements ServeView {
  readonly book = new RunBook();
  private readonly slots = new Map<string, Slot>();
  private readonly connections: ConnectionLeases;
  private stopped = false;
  private loops: Promise<void>[] = [];
  private watch: NodeJS.Timeout | undefined;

  constructor(private readonly o: SchedulerOptions) {
    for (const sync of o.syncs) {
      this.slots.set(sync.name, { sync, stream: (sync.capture ?? 'diff') === 'stream', paused: false, waiting: [], lastStart: 0, poked: false });
    }
    this.connections = new ConnectionLeases({
      ledger: o.ledger,
      ttlMs: o.leaseMs,
      logger: o.logger,
      // Runs through a connection another runner took over stop (their batches in flight settle).
      onLost: (connection) => {
        for (const slot of this.slots.values()) if (slot.sync.to.connection === connection) slot.current?.stop.abort();
      },
    });
    o.metrics.attach({
      syncs: o.syncs.map((s) => s.name),
      ledger: o.ledger,
      isRunning: (s) => this.isRunning(s),
      isPaused: (s) => this.slots.get(s)?.paused === true,
    });
  }

  /**
   * Starts every sync's loop, once the pauses in the ledger are read; from then on they are
   * read again every third of the lease, so a pause made through another runner stops a run
   * here within that time.
   */
  async start(): Promise<void> {
    await this.refreshPauses();
    this.loops = [...this.slots.values()].map((slot) => this.loop(slot));
    this.watch = setInterval(() => {
      this.refreshPauses().catch((err: unknown) => this.o.logger.warn({ err: describeError(err) }, 'could not read the paused syncs; trying again'));
    }, this.retryMs());
    this.watch.unref();
  }

  /**
   * Stops scheduling: no run starts from now on, and each loop ends when its run in progress
   * ends (stop the engine to drain those). Resolves when every loop has ended.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watch);
    for (const slot of this.slots.values()) this.poke(slot);
    await Promise.all(this.loops);
  }

  /** Asks for a run of a diff sync: now, or right after the run in progress. A stream sync fails with `OUTFLOW_MODE_UNSUPPORTED`. */
  requestRun(name: string): ServeRun {
    const slot = this.slot(name);
    if (slot.stream) {
      throw new OutflowError('OUTFLOW_MODE_UNSUPPORTED', `sync "${name}" is a stream sync: it runs continuously, so there is no run to start`);
    }
    const run = this.book.request(name);
    slot.waiting.push(run);
    this.poke(slot);
    return run;
  }

  /** Whether a run of the sync is in progress in this process. */
  isRunning(name: string): boolean {
    return this.slots.get(name)?.current !== undefined;
  }

  /** Throws `OUTFLOW_SYNC_NOT_FOUND` unless this process serves the sync. */
  assertServed(name: string): void {
    this.slot(name);
  }

  // --- ServeView ---------------------------------------------------------------------

  async syncs(): Promise<SyncStatus[]> {
    const ledger = this.o.ledger();
    return Promise.all(
      [...this.slots.values()].map(async (slot): Promise<SyncStatus> => {
        const name = slot.sync.name;
        const [[lastRun], parked, retrying, holder] = await Promise.all([
          ledger.listRuns({ sync: name, limit: 1 }),
          ledger.countRowErrors(name, { parked: true }),
          ledger.countRowErrors(name, { parked: false }),
          slot.current ? undefined : ledger.leaseHolder(name),
        ]);
        const state = slot.paused ? 'paused' : slot.current ? 'running' : lastRun?.status === 'failed' ? 'failed' : 'idle';
        const lagMs = slot.stream ? this.o.metrics.lagMs(name) : undefined;
        return {
          name,
          capture: slot.stream ? 'stream' : 'diff',
          state,
          parked,
          retrying,
          ...(lastRun ? { lastRun } : {}),
          ...(slot.nextAt !== undefined && !slot.paused && !slot.stream ? { nextRunAt: new Date(slot.nextAt).toISOString() } : {}),
          ...(lagMs === undefined ? {} : { lagMs }),
          ...(holder && !holder.expired ? { heldBy: holder.owner } : {}),
        };
      }),
    );
  }

  async runs(sync: string, limit: number): Promise<RunRecord[]> {
    this.slot(sync);
    return this.o.ledger().listRuns({ sync, limit });
  }

  async parked(sync: string, limit: number): Promise<RowError[]> {
    this.slot(sync);
    const ledger = this.o.ledger();
    // Row errors are listed parked or not; ask for enough to find `limit` parked ones.
    const again = await ledger.countRowErrors(sync, { parked: false });
    const rows = await ledger.listRowErrors({ sync, limit: limit + again });
    return rows.filter((r) => r.parked).slice(0, limit);
  }

  async retry(sync: string, keys?: string[]): Promise<ActionResult> {
    const slot = this.slot(sync);
    const what = keys ? `${keys.length} parked row${keys.length === 1 ? '' : 's'}` : 'the parked rows';
    if (slot.stream) {
      const holder = slot.current ? undefined : await this.o.ledger().leaseHolder(sync);
      if (holder && !holder.expired) return { message: `${sync} is running on another runner (${holder.owner}): retry it there.` };
    }
    slot.unpark = keys === undefined || slot.unpark === true ? true : [...new Set([...(slot.unpark ?? []), ...keys])];
    if (slot.stream) {
      // A stream sends them when it opens: this one closes (its batches in flight settle) and opens again.
      if (slot.paused) return { message: `${sync} is paused: ${what} are sent when it is resumed.` };
      slot.current?.stop.abort();
      this.poke(slot);
      return { message: `${sync}: sending ${what} again, then following the stream.` };
    }
    const run = this.requestRun(sync);
    return { message: `${sync}: sending ${what} again with run ${run.id}.` };
  }

  async trigger(sync: string): Promise<ActionResult> {
    const slot = this.slot(sync);
    if (slot.stream) return { message: `${sync} is a stream sync: it runs continuously.` };
    const run = this.requestRun(sync);
    return { message: `${sync}: run ${run.id} ${slot.current ? 'starts after the run in progress' : 'started'}.` };
  }

  async pause(sync: string): Promise<ActionResult> {
    const slot = this.slot(sync);
    if (slot.paused) return { message: `${sync} is already paused.` };
    await this.pauses().set(sync, new Date().toISOString());
    const running = slot.current !== undefined;
    this.apply(slot, true);
    return { message: `${sync} paused${running ? ': its run in progress is finishing the batches in flight' : ''}.` };
  }

  async resume(sync: string): Promise<ActionResult> {
    const slot = this.slot(sync);
    if (!slot.paused) return { message: `${sync} is not paused.` };
    await this.pauses().delete(sync);
    this.apply(slot, false);
    return { message: `${sync} resumed.` };
  }

  // --- Pauses, kept in the ledger ----------------------------------------------------

  /** Paused syncs by name (the value: when), shared by every runner of the ledger and kept across restarts. */
  private pauses(): KeyValueStore {
    return this.o.ledger().kv(PAUSES_SCOPE);
  }

  /** Reads which syncs are paused, so a pause or resume made through any runner applies here. */
  private async refreshPauses(): Promise<void> {
    const pauses = this.pauses();
    for (const slot of this.slots.values()) this.apply(slot, (await pauses.get(slot.sync.name)) !== undefined);
  }

  /** Pauses (its run in progress drains) or resumes a sync in this process. */
  private apply(slot: Slot, paused: boolean): void {
    if (slot.paused === paused) return;
    slot.paused = paused;
    if (paused) slot.current?.stop.abort();
    this.poke(slot);
    this.o.logger.info({ sync: slot.sync.name }, paused ? 'sync paused' : 'sync resumed');
  }

  // --- The loops -----------------------------------------------------------------------

  private slot(name: string): Slot {
    const slot = this.slots.get(name);
    if (!slot) {
      throw new OutflowError('OUTFLOW_SYNC_NOT_FOUND', `no sync named "${name}" is served here (syncs: ${[...this.slots.keys()].join(', ') || 'none'})`);
    }
    return slot;
  }

  private async loop(slot: Slot): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!(slot.stream ? await this.streamTurn(slot) : await this.diffTurn(slot))) continue;
        const summary = await this.runNow(slot);
        // Held by another runner, which makes the scheduled runs: look again a third of the
        // lease later, not at every due time (a schedule of seconds would poll the ledger
        // that often), which still notices a runner gone within its lease.
        if (summary === 'skipped' || summary === 'locked') {
          await this.wait(slot, this.retryMs());
          continue;
        }
        failures = summary.status === 'failed' ? failures + 1 : 0;
        if (slot.stream && failures > 0 && !slot.paused) await this.wait(slot, Math.min(MAX_STREAM_BACKOFF_MS, 500 * 2 ** failures));
      } catch (err) {
        // The ledger could not be read: try again after a while rather than end the loop.
        this.o.logger.warn({ sync: slot.sync.name, err: describeError(err) }, 'scheduling failed; trying again');
        await this.wait(slot, this.retryMs());
      }
    }
  }

  /** A stream sync runs unless paused. Resolves true to run now, false to look again. */
  private async streamTurn(slot: Slot): Promise<boolean> {
    if (!slot.paused) return true;
    await this.wait(slot, Infinity);
    return false;
  }

  /**
   * A diff sync runs when asked, or when its schedule is due and no run that started since
   * (here or in another runner sharing the ledger) already counts as that one. Resolves true
   * to run now, false to look again.
   */
  private async diffTurn(slot: Slot): Promise<boolean> {
    if (slot.waiting.length || slot.unpark) return true;
    const schedule = this.o.schedules.get(slot.sync.name);
    if (slot.paused || !schedule) {
      delete slot.nextAt;
      await this.wait(slot, Infinity);
      return false;
    }
    const last = Math.max(slot.lastStart, await this.lastStartInLedger(slot.sync.name));
    if (slot.nextAt === undefined) {
      const next = schedule.next(last, Date.now());
      if (next === null) {
        await this.wait(slot, Infinity);
        return false;
      }
      slot.nextAt = next;
    }
    const now = Date.now();
    if (slot.nextAt > now) {
      await this.wait(slot, slot.nextAt - now);
      return false;
    }
    const due = slot.nextAt;
    delete slot.nextAt;
    return !schedule.ranFor(due, last);
  }

  /**
   * Runs the sync now with what it waits for, under its destination connection's lease;
   * 'locked' when another runner holds the sync or that connection and something here waits
   * for a run (which then waits on), 'skipped' when only the schedule did (another runner
   * makes the scheduled run).
   */
  private async runNow(slot: Slot): Promise<RunSummary | 'locked' | 'skipped'> {
    const requests = slot.waiting.splice(0);
    const unpark = slot.unpark;
    delete slot.unpark;
    slot.lastStart = Date.now();
    const release = await this.connections.hold(slot.sync.to.connection).catch((err: unknown) => {
      this.requeue(slot, requests, unpark);
      throw err;
    });
    if (!release) return this.requeue(slot, requests, unpark) ? 'locked' : 'skipped';
    const stop = new AbortController();
    slot.current = { stop, requests };
    this.book.started(requests);
    let summary: RunSummary;
    try {
      summary = await this.o.engine.run(slot.sync, {
        signal: stop.signal,
        ...(unpark ? { unpark } : {}),
        onProgress: (p) => this.o.metrics.progress(p),
        onRun: (s) => {
          if (isLocked(s)) return;
          this.o.metrics.run(s);
          this.o.onRun?.(s);
        },
      });
    } finally {
      slot.current = undefined;
      release();
    }
    if (isLocked(summary)) return this.requeue(slot, requests, unpark) ? 'locked' : 'skipped';
    this.book.finished(requests, summary);
    return summary;
  }

  /** Puts back what a run that could not start was to answer; true when something waits for a run. */
  private requeue(slot: Slot, requests: ServeRun[], unpark: Slot['unpark']): boolean {
    for (const r of requests) r.status = 'queued';
    slot.waiting.unshift(...requests);
    if (unpark) slot.unpark = unpark === true || slot.unpark === true ? true : [...new Set([...unpark, ...(slot.unpark ?? [])])];
    return slot.waiting.length > 0 || slot.unpark !== undefined || slot.stream;
  }

  private async lastStartInLedger(sync: string): Promise<number> {
    const [last] = await this.o.ledger().listRuns({ sync, limit: 1 });
    return last ? Date.parse(last.startedAt) : 0;
  }

  /** How often a sync held elsewhere is tried again, and the pauses read: every third of the lease. */
  private retryMs(): number {
    return Math.max(250, Math.floor(this.o.leaseMs / 3));
  }

  /** Tells the sync's loop to look again, ending its wait (or the next one, when it is busy). */
  private poke(slot: Slot): void {
    slot.poked = true;
    slot.wake?.();
  }

  /** Waits `ms` (Infinity: until poked), unless the sync was poked since the loop last looked or the scheduler stops. */
  private wait(slot: Slot, ms: number): Promise<void> {
    if (this.stopped || slot.poked) {
      slot.poked = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(done, Math.min(ms, MAX_WAIT_MS)) : undefined;
      function done() {
        clearTimeout(timer);
        delete slot.wake;
        slot.poked = false;
        resolve();
      }
      slot.wake = done;
    });
  }
}

/** The run did not start: another runner holds the sync. */
function isLocked(s: RunSummary): boolean {
  return s.status === 'failed' && s.runId === undefined && s.error?.code === 'OUTFLOW_LOCKED';
}
