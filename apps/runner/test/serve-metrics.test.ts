import { registerSecret, type Progress } from '@outflow/core';
import { describe, expect, it } from 'vitest';
import { ServeMetrics } from '../src/serve/metrics.js';
import { metric } from './serve-helpers.js';

const counts = (inserted = 0) => ({ inserted, updated: 0, deleted: 0, rejected: 0, skipped: 0 });
const progress = (read: number, inserted = 0): Progress => ({ sync: 'a', phase: 'reading', read, settled: 0, counts: counts(inserted) });

describe('the metrics of outflow serve', () => {
  it('counts rows per sync from progress reports, run after run', async () => {
    const m = new ServeMetrics();
    m.progress(progress(10));
    m.progress(progress(25, 3));
    m.progress({ ...progress(0, 3), phase: 'delivering', total: 7 });
    m.run({ sync: 'a', capture: 'diff', status: 'succeeded', durationMs: 1500, runId: 1, ...counts(7) });
    // A new run's reports start again from zero.
    m.progress(progress(4));
    const text = (await m.text()).body;
    expect(metric(text, 'outflow_rows_read_total{sync="a"}')).toBe(29);
    expect(metric(text, 'outflow_rows_changed_total{sync="a"}')).toBe(7);
    expect(metric(text, 'outflow_rows_delivered_total{sync="a",op="insert"}')).toBe(7);
    expect(metric(text, 'outflow_runs_total{sync="a",status="succeeded"}')).toBe(1);
    expect(metric(text, 'outflow_run_duration_seconds_sum{sync="a",capture="diff",status="succeeded"}')).toBe(1.5);
  });

  it('publishes connection metrics under outflow_<name>, with the union of their labels, redacted', async () => {
    const m = new ServeMetrics();
    const secret = 'tok-9f8e7d6c5b4a';
    registerSecret(secret);
    m.sink.gauge('stream_lag_bytes', 2048, { connection: 'src', slot: 'outflow_items' });
    m.sink.gauge('stream_lag_ms', 40, { connection: 'src', slot: 'outflow_items' });
    m.sink.gauge('stream_lag_ms', 75, { connection: 'src', sync: 'items' });
    m.sink.count('hubspot.calls', 2, { connection: 'crm', token: secret });
    m.sink.count('hubspot.calls', 1, { connection: 'crm', token: secret });
    // A name serve already uses is kept apart.
    m.sink.count('rows_read', 5, { connection: 'src' });
    const text = (await m.text()).body;
    expect(metric(text, 'outflow_stream_lag_bytes{connection="src",slot="outflow_items"}')).toBe(2048);
    expect(metric(text, 'outflow_stream_lag_ms{connection="src",slot="outflow_items",sync=""}')).toBe(40);
    expect(metric(text, 'outflow_stream_lag_ms{connection="src",slot="",sync="items"}')).toBe(75);
    expect(m.lagMs('items')).toBe(75);
    expect(text).toContain('outflow_hubspot_calls_total{connection="crm",token="');
    expect(text).not.toContain(secret);
    expect(text).toMatch(/^outflow_hubspot_calls_total\{[^}]*\} 3$/m);
    expect(metric(text, 'outflow_connector_rows_read_total{connection="src"}')).toBe(5);
    expect(metric(text, 'outflow_rows_read_total{sync="a"}')).toBeUndefined();
  });
});
