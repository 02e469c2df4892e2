import type { Progress, RunCounts, RunSummary } from '@outflow/core';

/** How often a stream's status line is written when no progress bar shows it. */
export const STREAM_STATUS_MS = 10_000;

export interface StreamStatusOptions {
  /** Where status lines go (standard error: standard output keeps the summaries, or JSON). */
  write(line: string): void;
  /** The sync's parked rows, as the ledger counts them. */
  parked(sync: string): Promise<number>;
  /** The sync's lag behind its source as its stream last reported it (ms), if it did. */
  lagMs(sync: string): number | undefined;
  everyMs?: number;
}

/**
 * The status of the streams `outflow run` follows, for when no progress bar shows it (not
 * on a terminal, or `--json`): a line when a stream opens, then one every
 * {@link STREAM_STATUS_MS} with what it delivered since it opened, its parked rows and its lag.
 */
export class StreamStatus {
  /** Per sync: counts of the runs that ended (a stream's reconciles are runs of their own), and of the run in progress. */
  private readonly delivered = new Map<string, { ended: number; current: number }>();

  constructor(private readonly o: StreamStatusOptions) {}

  /** Starts the sync's status lines; the returned function ends them. */
  follow(sync: string): () => void {
    this.delivered.set(sync, { ended: 0, current: 0 });
    const every = this.o.everyMs ?? STREAM_STATUS_MS;
    this.o.write(`${sync}: streaming; a status line every ${every / 1000}s\n`);
    const timer = setInterval(() => void this.report(sync), every);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** The engine's `onProgress` for the sync. */
  progress(p: Progress): void {
    const d = this.delivered.get(p.sync);
    if (d) d.current = changes(p.counts);
  }

  /** A run of the sync ended (the stream, or one of its reconciles). */
  ended(s: RunSummary): void {
    const d = this.delivered.get(s.sync);
    if (!d) return;
    d.ended += changes(s);
    d.current = 0;
  }

  private async report(sync: string): Promise<void> {
    const d = this.delivered.get(sync);
    if (!d) return;
    const parked = await this.o.parked(sync).catch(() => undefined);
    const lag = this.o.lagMs(sync);
    this.o.write(
      `${sync}: ${d.ended + d.current} delivered, ${parked === undefined ? 'parked rows unknown' : `${parked} parked`}, ${
        lag === undefined ? 'lag not measured yet' : `lag ${(lag / 1000).toFixed(1)}s`
      }\n`,
    );
  }
}

const changes = (c: RunCounts): number => c.inserted + c.updated + c.deleted;
