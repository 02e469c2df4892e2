import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger, silentLogger, unlimitedBudget, type ConnectorContext, type KeyValueStore, type Logger, type Metrics, type TSchema } from '@outflow/core';
import { validateConfig } from './config.js';

/** A metric sample recorded by {@link RecordingMetrics}. */
export interface MetricSample {
  name: string;
  value: number;
  labels: Record<string, string>;
}

/** Metrics that keep every sample in memory so a test can inspect what a connector reported. */
export class RecordingMetrics implements Metrics {
  /** Every `gauge()` call, in order. */
  readonly gauges: MetricSample[] = [];
  /** Every `count()` call, in order (`value` is the delta). */
  readonly counts: MetricSample[] = [];

  gauge(name: string, value: number, labels: Record<string, string> = {}): void {
    this.gauges.push({ name, value, labels });
  }

  count(name: string, delta = 1, labels: Record<string, string> = {}): void {
    this.counts.push({ name, value: delta, labels });
  }

  /** The sum of every delta counted under `name`. */
  total(name: string): number {
    return this.counts.filter((s) => s.name === name).reduce((sum, s) => sum + s.value, 0);
  }

  /** The last value set for gauge `name`, or undefined when it was never set. */
  lastGauge(name: string): number | undefined {
    return this.gauges.findLast((s) => s.name === name)?.value;
  }
}

/** A {@link KeyValueStore} held in a Map; `entries` shows what a connector stored. */
export class MemoryKeyValueStore implements KeyValueStore {
  readonly entries = new Map<string, string>();

  async get(key: string): Promise<string | undefined> {
    return this.entries.get(key);
  }

  async set(key: string, value: string): Promise<void> {
    this.entries.set(key, value);
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }
}

export interface TestContextOptions {
  /** The connection name; `test` by default. */
  connection?: string;
  /** When given, the config is validated against it (with defaults applied) and a mismatch throws. */
  schema?: TSchema | Record<string, unknown>;
  /** The logger; a silent one by default. */
  logger?: Logger;
}

/** A {@link ConnectorContext} for tests, with handles to inspect and control it. */
export interface TestContext<C = unknown> extends ConnectorContext<C> {
  /** Aborts `signal`, as the runner does when a run stops. */
  readonly controller: AbortController;
  readonly metrics: RecordingMetrics;
  readonly kv: MemoryKeyValueStore;
  /** Removes `stateDir`. Call it once the test is done with the context. */
  dispose(): Promise<void>;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Builds a context the way the runner would for a connection: a frozen copy of `config`, a
 * silent logger, an abortable signal, recording metrics, an in-memory key-value store and
 * a fresh temporary `stateDir`.
 */
export function createTestContext<C>(config: C, options: TestContextOptions = {}): TestContext<C> {
  const resolved = options.schema === undefined ? structuredClone(config) : validateConfig<C>(options.schema, config);
  const controller = new AbortController();
  const stateDir = mkdtempSync(path.join(tmpdir(), 'outflow-test-'));
  return {
    connection: options.connection ?? 'test',
    config: deepFreeze(resolved),
    logger: options.logger ?? silentLogger(),
    signal: controller.signal,
    rateBudget: unlimitedBudget(controller.signal),
    metrics: new RecordingMetrics(),
    kv: new MemoryKeyValueStore(),
    stateDir,
    controller,
    dispose: () => rm(stateDir, { recursive: true, force: true }),
  };
}

/**
 * A logger whose JSON lines are kept in `lines`, for tests that check what a run logged
 * (e.g. which transport a connector chose). Secrets are redacted as in any logger.
 */
export function capturingLogger(level: 'debug' | 'info' | 'warn' = 'info'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}
