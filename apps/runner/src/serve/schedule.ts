import { Cron } from 'croner';
import { OutflowError, parseInterval, type SyncConfig } from '@outflow/core';

/** When a diff sync runs next: from an interval (`every`) or a cron expression (`cron`). */
export interface Schedule {
  /** How the config says it, e.g. `every 15m` or `cron 0 * * * * (UTC)`. */
  readonly text: string;
  /**
   * The next time a run is due after a run that started at `lastStart` and ended at
   * `now` (both ms since the epoch): an interval counts from the last start (a run longer
   * than the interval is followed at once by the next); a cron expression gives its next
   * time after `now`. Null when a cron expression has no time left.
   */
  next(lastStart: number, now: number): number | null;
  /**
   * Whether a run that started at `lastStart` already counts as the run due at `due` (made
   * by another runner sharing the ledger): one within the interval before it, or for a
   * cron expression one that started at most a second before it.
   */
  ranFor(due: number, lastStart: number): boolean;
}

/** How early a run may start and still count as a cron expression's run (clocks differ a little). */
const SAME_SLOT_MS = 1_000;

/**
 * The schedule of a diff sync, or undefined when it has none. A cron expression that cannot
 * be read fails with `OUTFLOW_CONFIG_INVALID` naming the sync, the file and what is wrong,
 * so a bad schedule stops `outflow serve` before it starts anything.
 */
export function scheduleOf(sync: SyncConfig, file: string): Schedule | undefined {
  const s = sync.schedule;
  if (!s) return undefined;
  if ('every' in s) {
    const every = parseInterval(s.every);
    return {
      text: `every ${s.every}`,
      next: (lastStart, now) => Math.max(now, lastStart + every),
      ranFor: (due, lastStart) => lastStart > due - every,
    };
  }
  const timezone = s.timezone ?? 'UTC';
  let cron: Cron;
  try {
    cron = new Cron(s.cron, { timezone, paused: true });
    cron.nextRun();
  } catch (err) {
    throw new OutflowError(
      'OUTFLOW_CONFIG_INVALID',
      `${file}: sync "${sync.name}" schedule: cannot read cron "${s.cron}" (timezone ${timezone}): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return {
    text: `cron ${s.cron} (${timezone})`,
    next: (_lastStart, now) => cron.nextRun(new Date(now))?.getTime() ?? null,
    ranFor: (due, lastStart) => lastStart >= due - SAME_SLOT_MS,
  };
}
