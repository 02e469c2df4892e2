/**
 * The harness's options, from the environment (tests/chaos/run.mjs turns `--seed 7` into
 * CHAOS_SEED=7, so both `npm run chaos -- --seed 7` and `CHAOS_SEED=7 npm run chaos` work).
 */
import { randomInt } from 'node:crypto';
import type { ScenarioSpec } from './scenario.js';

/** Every scenario, in the order they run. */
export const SCENARIOS: ScenarioSpec[] = [
  { name: 'pg-pushdown→postgres', model: 'pg-pushdown', sink: 'postgres' },
  { name: 'pg-stream→postgres-append', model: 'pg-stream', sink: 'postgres-append', insertsOnly: true },
  { name: 'pg-embedded→webhook', model: 'pg-embedded', sink: 'webhook' },
  { name: 'pg-stream→webhook', model: 'pg-stream', sink: 'webhook', staleRate: 0.1 },
  { name: 'snowflake-stream→webhook', model: 'snowflake-stream', sink: 'webhook' },
  { name: 'pg-pushdown→hubspot-contacts', model: 'pg-pushdown', sink: 'hubspot-contacts' },
  { name: 'pg-embedded→hubspot-items', model: 'pg-embedded', sink: 'hubspot-items' },
  { name: 'pg-stream→hubspot-contacts', model: 'pg-stream', sink: 'hubspot-contacts', staleRate: 0.05 },
  { name: 'pg-stream→hubspot-items', model: 'pg-stream', sink: 'hubspot-items', staleRate: 0.05 },
  { name: 'duckdb→hubspot-contacts', model: 'duckdb', sink: 'hubspot-contacts' },
  { name: 'duckdb→hubspot-items', model: 'duckdb', sink: 'hubspot-items' },
];

export interface ChaosOptions {
  seed: number;
  /** Kills wanted in total, spread evenly over the scenarios. */
  kills: number;
  /** Seconds of wall time for the killing phases; each scenario gets its share (times the concurrency). */
  durationSec: number;
  failpointRate: number;
  rows: number;
  /** Scenarios run at once (vitest's maxConcurrency in tests/chaos/vitest.config.ts reads the same variable). */
  concurrency: number;
  scenarios: ScenarioSpec[];
}

/** CHAOS_CONCURRENCY, 2 by default: the CLI mostly waits on I/O, so two scenarios share 2 cores well. */
export function concurrency(): number {
  return number('CHAOS_CONCURRENCY', 2, (n) => Number.isInteger(n) && n >= 1);
}

function number(name: string, fallback: number, valid: (n: number) => boolean): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || !valid(n)) throw new Error(`${name}=${raw} is not a valid value`);
  return n;
}

export function chaosOptions(): ChaosOptions {
  const wanted = (process.env['CHAOS_SCENARIOS'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = wanted.filter((w) => !SCENARIOS.some((s) => s.name === w || s.name.includes(w)));
  if (unknown.length) throw new Error(`CHAOS_SCENARIOS names ${unknown.join(', ')}; scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  return {
    seed: number('CHAOS_SEED', randomInt(1, 2 ** 31 - 1), (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32),
    kills: number('CHAOS_KILLS', 200, (n) => Number.isInteger(n) && n >= 1),
    durationSec: number('CHAOS_DURATION', 600, (n) => n > 0),
    failpointRate: number('CHAOS_FAILPOINT_RATE', 0.3, (n) => n >= 0 && n <= 1),
    rows: number('CHAOS_ROWS', 300, (n) => Number.isInteger(n) && n >= 1),
    concurrency: concurrency(),
    scenarios: wanted.length ? SCENARIOS.filter((s) => wanted.some((w) => s.name === w || s.name.includes(w))) : SCENARIOS,
  };
}
