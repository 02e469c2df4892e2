import { randomUUID } from 'node:crypto';
import type { RunCounts, RunSummary } from '@outflow/core';

/** Where a run asked of `outflow serve` is: waiting for its turn, running, or how it ended. */
export type ServeRunStatus = 'queued' | 'running' | 'succeeded' | 'partial' | 'failed' | 'aborted';

/** A run asked for through the API (`POST /syncs/{name}/runs`) or the status page, as `GET /syncs/{name}/runs/{id}` shows it. */
export interface ServeRun extends Partial<RunCounts> {
  /** This process's id for the request (a UUID); several requests made while a run waits share that run. */
  id: string;
  sync: string;
  status: ServeRunStatus;
  requestedAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** The run's id in the ledger (`outflow status`), once it started. */
  runId?: number;
  durationMs?: number;
  error?: { code: string; message: string };
}

/** How many finished runs are kept for polling, per process; the oldest are forgotten first. */
const KEPT = 1000;

/** The runs asked of this process, by id, for polling. */
export class RunBook {
  private readonly runs = new Map<string, ServeRun>();

  /** Records a new request for a run of `sync`. */
  request(sync: string): ServeRun {
    const run: ServeRun = { id: randomUUID(), sync, status: 'queued', requestedAt: new Date().toISOString() };
    this.runs.set(run.id, run);
    for (const [id, r] of this.runs) {
      if (this.runs.size <= KEPT) break;
      if (r.status !== 'queued' && r.status !== 'running') this.runs.delete(id);
    }
    return run;
  }

  get(sync: string, id: string): ServeRun | undefined {
    const run = this.runs.get(id);
    return run?.sync === sync ? run : undefined;
  }

  /** The requests started together as one run. */
  started(runs: readonly ServeRun[]): void {
    const at = new Date().toISOString();
    for (const r of runs) Object.assign(r, { status: 'running', startedAt: at });
  }

  /** The requests' run ended with `summary`. */
  finished(runs: readonly ServeRun[], summary: RunSummary): void {
    const { inserted, updated, deleted, rejected, skipped, durationMs } = summary;
    const at = new Date().toISOString();
    for (const r of runs) {
      Object.assign(r, { status: summary.status, finishedAt: at, inserted, updated, deleted, rejected, skipped, durationMs });
      if (summary.runId !== undefined) r.runId = summary.runId;
      if (summary.error) r.error = summary.error;
    }
  }
}
