import type { RowError, RunRecord } from '@outflow/core';

/**
 * What `outflow serve` is doing with a sync right now:
 * - `running`: a run of it is in progress in this process (a stream sync: its stream is open);
 * - `idle`: waiting for its next scheduled run;
 * - `paused`: a person paused it; no scheduled run starts until it is resumed;
 * - `failed`: its last run failed and no run is in progress (it still runs on schedule).
 */
export type SyncState = 'running' | 'idle' | 'paused' | 'failed';

/** One sync as the status page lists it. */
export interface SyncStatus {
  name: string;
  capture: 'diff' | 'stream';
  state: SyncState;
  /** The newest run in the ledger (by any runner sharing it), running or finished; absent before the first. */
  lastRun?: RunRecord;
  /** When the next scheduled run starts (ISO 8601, UTC); absent for stream syncs and paused syncs. */
  nextRunAt?: string;
  /**
   * Stream syncs: how far delivery is behind the source's commits, in milliseconds, as the
   * stream last reported it (`ChangeStream.health().lagMs`); absent when unknown or for diff syncs.
   */
  lagMs?: number;
  /** Row errors waiting for a change or a retry (`RowError.parked`). */
  parked: number;
  /** Row errors the next run sends again (retryable, under `delivery.maxRowAttempts`). */
  retrying: number;
  /**
   * The owner of the sync's lease when another runner sharing the ledger holds it (that
   * runner is the one running it); absent when this process holds it or no one does.
   */
  heldBy?: string;
}

/** What an action did, in a sentence the page shows after it. */
export interface ActionResult {
  message: string;
}

/**
 * The status page's window on `outflow serve`: everything the page shows it reads here, and
 * every button it has acts here. `outflow serve` implements it over its scheduler and the
 * ledger; the page never touches the engine or the ledger itself.
 *
 * Every method may be called concurrently with the others and with runs in progress. A sync
 * name the process does not know throws `OUTFLOW_SYNC_NOT_FOUND` (the page answers 404).
 * What the ledger returns is already redacted (run errors, row-error reasons); the page
 * escapes all of it and redacts once more, so a value is shown as text, never as markup.
 */
export interface ServeView {
  /** Every sync of the configuration, in the configuration's order. */
  syncs(): Promise<SyncStatus[]>;
  /** The sync's runs, newest first, at most `limit` (the ledger's `listRuns`). */
  runs(sync: string, limit: number): Promise<RunRecord[]>;
  /**
   * The sync's row errors that wait for a change or a retry (`parked: true`), at most
   * `limit`, with the destination's reason for each.
   */
  parked(sync: string, limit: number): Promise<RowError[]>;
  /**
   * Sends parked rows again, as `outflow retry` does: `keys` only, or every parked row of
   * the sync without them. A diff sync sends them with a run that starts now, or right after
   * the run in progress; a stream sync sends their current rows from the model before its
   * stream opens again. Resolves once the retry is started or queued, not when it is
   * delivered: the run shows in {@link runs}, and a delivered row leaves {@link parked}.
   * A paused sync is retried too (a person asked for it).
   */
  retry(sync: string, keys?: string[]): Promise<ActionResult>;
  /**
   * Starts a run of a diff sync now, or right after the run in progress (never two at once).
   * A stream sync is always running: it says so and does nothing.
   */
  trigger(sync: string): Promise<ActionResult>;
  /**
   * Stops scheduling the sync: no new run starts until {@link resume}. A run in progress
   * drains (batches in flight settle and are recorded); a stream closes the same way.
   */
  pause(sync: string): Promise<ActionResult>;
  /** Schedules a paused sync again (a stream sync reopens its stream); a sync not paused is left as it is. */
  resume(sync: string): Promise<ActionResult>;
}
