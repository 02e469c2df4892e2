import cliProgress from 'cli-progress';
import type { Metrics, Progress, RunSummary } from '@outflow/core';

export interface Out {
  write(text: string): void;
}

/**
 * Collects what destinations report through the `transport_records` counter (label
 * `transport`: how records were sent, e.g. Salesforce's `collections` or `bulk`), per
 * connection, for the run summaries, and each stream's latest `stream_lag_ms`, for its
 * status lines. Other metrics are not kept.
 */
export class TransportTally implements Metrics {
  private readonly byConnection = new Map<string, Record<string, number>>();
  private readonly lag = new Map<string, number>();

  gauge(name: string, value: number, labels: Record<string, string> = {}): void {
    if (name === 'stream_lag_ms' && labels['sync'] !== undefined) this.lag.set(labels['sync'], value);
  }

  /** The sync's lag as its stream last reported it (ms). */
  lagMs(sync: string): number | undefined {
    return this.lag.get(sync);
  }

  count(name: string, delta = 1, labels: Record<string, string> = {}): void {
    const { connection, transport } = labels;
    if (name !== 'transport_records' || connection === undefined || transport === undefined) return;
    const tally = this.byConnection.get(connection) ?? {};
    tally[transport] = (tally[transport] ?? 0) + delta;
    this.byConnection.set(connection, tally);
  }

  /** Records sent through `connection` by transport since the last call (syncs sharing it at once are counted together). */
  take(connection: string): Record<string, number> | undefined {
    const tally = this.byConnection.get(connection);
    this.byConnection.delete(connection);
    return tally;
  }
}

/** A run's summary as one log or JSON line: status, counts, duration, ledger run id, error, and the transports its records went by. */
export function summaryLine(s: RunSummary, transport?: Record<string, number>): Record<string, unknown> {
  return {
    sync: s.sync,
    status: s.status,
    capture: s.capture,
    inserted: s.inserted,
    updated: s.updated,
    deleted: s.deleted,
    rejected: s.rejected,
    skipped: s.skipped,
    parked: s.parked ?? 0,
    durationMs: s.durationMs,
    ...(s.runId === undefined ? {} : { runId: s.runId }),
    ...(s.error ? { error: s.error } : {}),
    ...(transport ? { transport } : {}),
  };
}

/** Prints rows as an aligned plain-text table. */
export function printTable(out: Out, head: string[], rows: string[][]): void {
  const clip = (s: string) => (s.length > 80 ? `${s.slice(0, 77)}...` : s);
  const cells = [head, ...rows.map((r) => r.map(clip))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('  ').trimEnd();
  out.write(line(head) + '\n');
  out.write(widths.map((w) => '─'.repeat(w)).join('  ') + '\n');
  for (const r of cells.slice(1)) out.write(line(r) + '\n');
}

/** A progress bar on a terminal: rows read, then changes settled out of the total. */
export function createProgress(stream: NodeJS.WritableStream) {
  const bar = new cliProgress.SingleBar(
    {
      stream: stream as NodeJS.WritableStream & { isTTY: boolean },
      format: '{sync} {phase} |{bar}| {value}/{total} {detail}',
      hideCursor: true,
      clearOnComplete: true,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = '';
  return {
    update(p: Progress) {
      if (started !== p.sync) {
        if (started) bar.stop();
        bar.start(1, 0, { sync: p.sync, phase: p.phase, detail: '' });
        started = p.sync;
      }
      const detail = `created ${p.counts.inserted} · updated ${p.counts.updated} · deleted ${p.counts.deleted} · rejected ${p.counts.rejected}`;
      if (p.phase === 'reading') bar.update(0, { phase: `reading (${p.read} rows)`, detail: '' });
      else if (p.total !== undefined) {
        bar.setTotal(Math.max(1, p.total));
        bar.update(p.settled, { phase: p.phase, detail });
      } else bar.update(p.settled, { phase: p.phase, detail });
    },
    finish(sync: string) {
      if (started === sync) {
        bar.stop();
        started = '';
      }
    },
  };
}
