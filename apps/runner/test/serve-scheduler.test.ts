import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { createLogger } from '@outflow/core';
import { afterEach, describe, expect, it } from 'vitest';
import { ServeMetrics } from '../src/serve/metrics.js';
import type { ServeRun } from '../src/serve/runs.js';
import { Scheduler } from '../src/serve/scheduler.js';
import { openWorkspace } from '../src/workspace.js';

// The scheduler of `outflow serve` in this process, over a real engine: a CSV model read by
// DuckDB, delivered to a webhook receiver whose own log counts the writes.
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function serving(rows: number): Promise<{ scheduler: Scheduler; receiver: WebhookEmulator }> {
  const receiver = await start({ secret: 'scheduler-test-secret' });
  cleanup.push(() => receiver.stop());
  const dir = mkdtempSync(join(tmpdir(), 'outflow-scheduler-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'data'));
  const csv = ['id,name', ...Array.from({ length: rows }, (_, i) => `${i + 1},name ${i + 1}`)].join('\n');
  writeFileSync(join(dir, 'data', 'items.csv'), csv + '\n');
  writeFileSync(
    join(dir, 'outflow.yaml'),
    `version: 1
connections:
  warehouse: { connector: duckdb }
  hooks: { connector: webhook, config: { url: "${receiver.url}", secret: scheduler-test-secret } }
syncs:
  - name: items
    from: { connection: warehouse, file: "${join(dir, 'data', 'items.csv')}", primaryKey: id }
    to: { connection: hooks, object: items }
`,
  );
  const metrics = new ServeMetrics();
  const logger = createLogger({ level: 'silent' });
  const ws = await openWorkspace({ configFile: join(dir, 'outflow.yaml'), logger, engine: { metrics: metrics.sink } });
  cleanup.push(() => ws.close());
  const scheduler = new Scheduler({ engine: ws.engine, ledger: () => ws.ledger(), syncs: ws.loaded.config.syncs, schedules: new Map(), metrics, logger, leaseMs: 3_000 });
  await scheduler.start();
  cleanup.push(async () => {
    const stopped = scheduler.stop();
    ws.engine.stop({ graceMs: 0 });
    await stopped;
  });
  return { scheduler, receiver };
}

const ended = (run: ServeRun) => expect.poll(() => run.status, { timeout: 30_000, interval: 50 }).toMatch(/^(succeeded|partial|failed|aborted)$/);

describe('the scheduler of outflow serve', () => {
  it('answers requests made while a run waits with one run, never two at once', async () => {
    const { scheduler, receiver } = await serving(50);
    const first = scheduler.requestRun('items');
    await ended(first);
    expect(first).toMatchObject({ status: 'succeeded', inserted: 50, runId: 1 });

    // Asked together: one run answers both.
    const second = scheduler.requestRun('items');
    const third = scheduler.requestRun('items');
    await ended(second);
    await ended(third);
    expect(second.id).not.toBe(third.id);
    expect(second.runId).toBe(2);
    expect(third.runId).toBe(2);
    expect(receiver.writes('items')).toHaveLength(50);
  });

  it('still runs what a person asks for while paused, and names the syncs it serves when asked for another', async () => {
    const { scheduler } = await serving(5);
    await scheduler.pause('items');
    const [paused] = await scheduler.syncs();
    expect(paused).toMatchObject({ name: 'items', state: 'paused', capture: 'diff' });
    expect(paused!.nextRunAt).toBeUndefined();
    const asked = scheduler.requestRun('items');
    await ended(asked);
    expect(asked.status).toBe('succeeded');
    expect(await scheduler.resume('items')).toEqual({ message: 'items resumed.' });
    expect(await scheduler.trigger('nope').catch((e: Error) => e.message)).toBe('no sync named "nope" is served here (syncs: items)');
  });
});
