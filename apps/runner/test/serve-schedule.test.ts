import { isOutflowError, type SyncConfig } from '@outflow/core';
import { describe, expect, it } from 'vitest';
import { scheduleOf } from '../src/serve/schedule.js';

const sync = (schedule?: SyncConfig['schedule']): SyncConfig =>
  ({ name: 'customers', from: { connection: 'w', table: 't', primaryKey: 'id' }, to: { connection: 'h', object: 'o' }, ...(schedule ? { schedule } : {}) }) as SyncConfig;
const at = (iso: string) => Date.parse(iso);

describe('the schedule of a diff sync', () => {
  it('is absent without `schedule`', () => {
    expect(scheduleOf(sync(), 'outflow.yaml')).toBeUndefined();
  });

  it('counts an interval from the last run’s start, and runs at once when overdue', () => {
    const s = scheduleOf(sync({ every: '15m' }), 'outflow.yaml')!;
    expect(s.text).toBe('every 15m');
    expect(s.next(at('2026-01-01T10:00:00Z'), at('2026-01-01T10:01:00Z'))).toBe(at('2026-01-01T10:15:00Z'));
    expect(s.next(at('2026-01-01T10:00:00Z'), at('2026-01-01T11:00:00Z'))).toBe(at('2026-01-01T11:00:00Z'));
    // A run another runner started within the interval before the due time counts as that run.
    expect(s.ranFor(at('2026-01-01T10:15:00Z'), at('2026-01-01T10:05:00Z'))).toBe(true);
    expect(s.ranFor(at('2026-01-01T10:15:00Z'), at('2026-01-01T10:00:00Z'))).toBe(false);
  });

  it('reads a cron expression in UTC, or in the time zone given', () => {
    const hourly = scheduleOf(sync({ cron: '0 * * * *' }), 'outflow.yaml')!;
    expect(hourly.text).toBe('cron 0 * * * * (UTC)');
    expect(hourly.next(0, at('2026-01-01T10:15:00Z'))).toBe(at('2026-01-01T11:00:00Z'));
    expect(hourly.ranFor(at('2026-01-01T11:00:00Z'), at('2026-01-01T11:00:00.300Z'))).toBe(true);
    expect(hourly.ranFor(at('2026-01-01T11:00:00Z'), at('2026-01-01T10:00:00Z'))).toBe(false);
    const paris = scheduleOf(sync({ cron: '0 9 * * *', timezone: 'Europe/Paris' }), 'outflow.yaml')!;
    expect(paris.next(0, at('2026-01-15T00:00:00Z'))).toBe(at('2026-01-15T08:00:00Z'));
    expect(paris.next(0, at('2026-07-15T00:00:00Z'))).toBe(at('2026-07-15T07:00:00Z'));
  });

  it('refuses a cron expression or time zone it cannot read, naming the file and the sync', () => {
    for (const schedule of [{ cron: '61 * * * *' }, { cron: 'every day' }, { cron: '0 * * * *', timezone: 'Mars/Olympus' }]) {
      let err: unknown;
      try {
        scheduleOf(sync(schedule), '/p/outflow.yaml');
      } catch (e) {
        err = e;
      }
      expect(isOutflowError(err, 'OUTFLOW_CONFIG_INVALID')).toBe(true);
      expect((err as Error).message).toMatch(/^\/p\/outflow\.yaml: sync "customers" schedule: cannot read cron /);
    }
  });
});
