import cliProgress from 'cli-progress';
import type { Progress } from '@outflow/core';

export interface Out {
  write(text: string): void;
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
