import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { redact, type Ledger, type Metrics, type Progress, type RunSummary } from '@outflow/core';

/** Run durations in seconds: from a quick diff to a stream that ran for a day. */
const DURATION_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];

/** What the per-sync gauges read when scraped: `outflow serve`'s scheduler. */
export interface MetricsSource {
  syncs: readonly string[];
  ledger(): Ledger;
  isRunning(sync: string): boolean;
  isPaused(sync: string): boolean;
}

/** What a run reported last (counts and reads only grow within a run). */
interface Seen {
  read: number;
  changed: number;
  inserted: number;
  updated: number;
  deleted: number;
  rejected: number;
}

const none = (): Seen => ({ read: 0, changed: 0, inserted: 0, updated: 0, deleted: 0, rejected: 0 });

/**
 * The Prometheus registry of `outflow serve`: per-sync rows and runs from the engine's
 * progress and run summaries, parked rows read from the ledger when scraped, and every
 * connection's metrics (`sink`, handed to the engine) under `outflow_<name>`.
 */
export class ServeMetrics {
  readonly registry = new Registry();
  /** The engine's `metrics` option: connector and engine metrics, labelled by connection. */
  readonly sink: Metrics;
  private readonly connections: ConnectionMetrics;
  private readonly seen = new Map<string, Seen>();
  private readonly rowsRead: Counter<'sync'>;
  private readonly rowsChanged: Counter<'sync'>;
  private readonly rowsDelivered: Counter<'sync' | 'op'>;
  private readonly rowsRejected: Counter<'sync'>;
  private readonly runs: Counter<'sync' | 'status'>;
  private readonly duration: Histogram<'sync' | 'capture' | 'status'>;
  private readonly lastSuccess: Gauge<'sync'>;
  private readonly running: Gauge<'sync'>;
  private readonly paused: Gauge<'sync'>;

  private source: MetricsSource | undefined;

  constructor() {
    const registers = [this.registry];
    const source = () => this.source;
    const each = (fn: (o: MetricsSource, sync: string) => void) => {
      const o = this.source;
      if (o) for (const s of o.syncs) fn(o, s);
    };
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) => new Counter<L>({ name, help, labelNames, registers });
    this.rowsRead = counter('outflow_rows_read_total', 'Rows a sync read: model rows of a diff run, changes of a stream.', ['sync']);
    this.rowsChanged = counter('outflow_rows_changed_total', 'Changes a sync found to deliver (inserts, updates and deletes).', ['sync']);
    this.rowsDelivered = counter('outflow_rows_delivered_total', 'Records the destination acknowledged, by operation (insert, update, delete).', ['sync', 'op']);
    this.rowsRejected = counter('outflow_rows_rejected_total', 'Records the destination rejected (parked with a reason).', ['sync']);
    this.runs = counter('outflow_runs_total', 'Runs that ended, by status (succeeded, partial, failed, aborted).', ['sync', 'status']);
    this.duration = new Histogram({
      name: 'outflow_run_duration_seconds',
      help: 'How long runs took, from start to end (a stream run lasts until it stops or goes stale).',
      labelNames: ['sync', 'capture', 'status'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.lastSuccess = new Gauge({
      name: 'outflow_last_success_timestamp_seconds',
      help: 'When a run of the sync last ended succeeded or partial in this runner (Unix time).',
      labelNames: ['sync'],
      registers,
    });
    this.running = new Gauge({
      name: 'outflow_sync_running',
      help: '1 while this runner runs the sync (holds its lease), else 0.',
      labelNames: ['sync'],
      registers,
      collect() {
        each((o, s) => this.set({ sync: s }, o.isRunning(s) ? 1 : 0));
      },
    });
    this.paused = new Gauge({
      name: 'outflow_sync_paused',
      help: '1 while the sync is paused in this runner, else 0.',
      labelNames: ['sync'],
      registers,
      collect() {
        each((o, s) => this.set({ sync: s }, o.isPaused(s) ? 1 : 0));
      },
    });
    new Gauge({
      name: 'outflow_parked_rows',
      help: 'Rows parked with errors, waiting for a change or `outflow retry` (read from the ledger when scraped).',
      labelNames: ['sync'],
      registers,
      collect: async function (this: Gauge<'sync'>) {
        const o = source();
        if (!o) return;
        const ledger = o.ledger();
        for (const s of o.syncs) this.set({ sync: s }, await ledger.countRowErrors(s, { parked: true }));
      },
    });
    this.connections = new ConnectionMetrics(this.registry);
    this.sink = this.connections;
  }

  /** Where the per-sync gauges read from when scraped; until then they are empty. */
  attach(source: MetricsSource): void {
    this.source = source;
  }

  /** The stream lag a sync's stream last reported, in milliseconds (the gauge `stream_lag_ms`). */
  lagMs(sync: string): number | undefined {
    return this.connections.latest('gauge', 'stream_lag_ms', { sync });
  }

  /** The engine's `onProgress`: adds what the run read and settled since its last report. */
  progress(p: Progress): void {
    const seen = this.seen.get(p.sync) ?? none();
    this.seen.set(p.sync, seen);
    const changed = p.phase === 'streaming' ? p.read : (p.total ?? 0);
    this.advance(p.sync, seen, { read: p.read, changed, ...p.counts });
  }

  /** The engine's `onRun`: the run's final counts, its duration and status. */
  run(s: RunSummary): void {
    const seen = this.seen.get(s.sync) ?? none();
    this.seen.delete(s.sync);
    this.advance(s.sync, seen, { read: seen.read, changed: Math.max(seen.changed, s.inserted + s.updated + s.deleted + s.rejected), ...s });
    this.runs.inc({ sync: s.sync, status: s.status });
    this.duration.observe({ sync: s.sync, capture: s.capture, status: s.status }, s.durationMs / 1000);
    if (s.status === 'succeeded' || s.status === 'partial') this.lastSuccess.set({ sync: s.sync }, Date.now() / 1000);
  }

  /** The exposition text and its content type. */
  async text(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  private advance(sync: string, seen: Seen, now: Seen): void {
    const add = (c: Counter<'sync'>, key: keyof Seen) => {
      if (now[key] > seen[key]) c.inc({ sync }, now[key] - seen[key]);
    };
    add(this.rowsRead, 'read');
    add(this.rowsChanged, 'changed');
    add(this.rowsRejected, 'rejected');
    for (const [key, op] of [['inserted', 'insert'], ['updated', 'update'], ['deleted', 'delete']] as const) {
      if (now[key] > seen[key]) this.rowsDelivered.inc({ sync, op }, now[key] - seen[key]);
    }
    for (const key of Object.keys(seen) as (keyof Seen)[]) seen[key] = Math.max(seen[key], now[key]);
  }
}

/** One family of connection metrics: its kind, label names so far, and values by label set. */
interface Family {
  kind: 'gauge' | 'counter';
  name: string;
  labelNames: string[];
  values: Map<string, { labels: Record<string, string>; value: number }>;
}

/**
 * Connection metrics (`ctx.metrics`) in the registry: a gauge `x` as `outflow_x`, a counter
 * as `outflow_x_total`; a name taken by one of serve's own metrics gets `outflow_connector_`
 * instead. Connectors label freely, so a family's label names are the union of those seen,
 * the missing ones empty; label values are redacted. Invalid characters in names become `_`.
 */
class ConnectionMetrics implements Metrics {
  private readonly families = new Map<string, Family>();

  constructor(private readonly registry: Registry) {}

  /** The value of a family's series whose labels include `match`, if there is one. */
  latest(kind: Family['kind'], name: string, match: Record<string, string>): number | undefined {
    const family = this.families.get(`${kind}:${name}`);
    if (!family) return undefined;
    for (const { labels, value } of family.values.values()) {
      if (Object.entries(match).every(([k, v]) => labels[k] === v)) return value;
    }
    return undefined;
  }

  gauge(name: string, value: number, labels: Record<string, string> = {}): void {
    if (Number.isFinite(value)) this.record('gauge', name, labels, () => value);
  }

  count(name: string, delta = 1, labels: Record<string, string> = {}): void {
    if (Number.isFinite(delta) && delta >= 0) this.record('counter', name, labels, (old) => old + delta);
  }

  private record(kind: Family['kind'], raw: string, rawLabels: Record<string, string>, next: (old: number) => number): void {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(rawLabels)) labels[labelName(k)] = redact(String(v));
    const family = this.family(kind, raw, Object.keys(labels));
    const id = JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
    const entry = family.values.get(id);
    family.values.set(id, { labels, value: next(entry?.value ?? 0) });
  }

  private family(kind: Family['kind'], raw: string, labelNames: string[]): Family {
    const key = `${kind}:${raw}`;
    let family = this.families.get(key);
    if (family && labelNames.every((l) => family!.labelNames.includes(l))) return family;
    if (family) {
      this.registry.removeSingleMetric(family.name);
      family.labelNames = [...new Set([...family.labelNames, ...labelNames])];
    } else {
      const base = raw.replace(/[^a-zA-Z0-9_]/g, '_') + (kind === 'counter' && !raw.endsWith('_total') ? '_total' : '');
      const name = this.registry.getSingleMetric(`outflow_${base}`) ? `outflow_connector_${base}` : `outflow_${base}`;
      family = { kind, name, labelNames, values: new Map() };
      this.families.set(key, family);
    }
    this.register(family);
    return family;
  }

  /** Registers the family's metric; its values are copied in when the registry is scraped. */
  private register(f: Family): void {
    const help = `${f.kind === 'gauge' ? 'Gauge' : 'Counter'} reported by connections (ctx.metrics), labelled with the connection.`;
    const fill = (set: (labels: Record<string, string>, value: number) => void) => {
      for (const { labels, value } of f.values.values()) {
        set(Object.fromEntries(f.labelNames.map((l) => [l, labels[l] ?? ''])), value);
      }
    };
    const common = { name: f.name, help, labelNames: f.labelNames, registers: [this.registry] };
    if (f.kind === 'gauge') {
      new Gauge({ ...common, collect() { this.reset(); fill((l, v) => this.set(l, v)); } });
    } else {
      new Counter({ ...common, collect() { this.reset(); fill((l, v) => this.inc(l, v)); } });
    }
  }
}

/** A Prometheus label name: letters, digits and `_`, not starting with a digit or `__`. */
function labelName(raw: string): string {
  const clean = raw.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]|^__/.test(clean) ? `l_${clean}` : clean;
}
