import { describe, expect, it } from 'vitest';
import { Type, defineConnector, type ConnectorContext, type Operation } from '../src/index.js';
import { environment, memoryDestination, memorySource, syncConfig, tempDir } from './helpers.js';

/** A destination that records its lifecycle and keeps one request per write within a limit. */
function lifecycleDestination(options: { perSecond?: number; holdWrites?: boolean } = {}) {
  const events: string[] = [];
  const contexts = new Set<ConnectorContext>();
  const inFlight: { ops: Operation[]; signal: AbortSignal }[] = [];
  const starts: number[] = [];
  const connector = defineConnector({
    name: 'lifecycle',
    version: '1.0.0',
    coreVersion: '^1.0.0',
    config: Type.Object({}),
    async open(ctx) {
      events.push(`open ${ctx.connection}`);
      contexts.add(ctx);
    },
    async close(ctx) {
      events.push(`close ${ctx.connection}`);
      contexts.add(ctx);
    },
    destination: {
      async check() {},
      async discover() {
        return { objects: [] };
      },
      capabilities: () => ({
        operations: ['upsert'],
        maxBatchSize: 1,
        rateLimits: options.perSecond ? [{ requests: options.perSecond, perMs: 1000 }] : [],
        concurrency: 4,
        idempotency: 'match',
      }),
      async write(ctx, _object, ops) {
        contexts.add(ctx);
        starts.push(Date.now());
        if (options.holdWrites) {
          const held = { ops, signal: ctx.signal };
          inFlight.push(held);
          // A long call that gives up when the engine stops for good.
          await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
          throw new Error('cancelled');
        }
        return ops.map(() => ({ ok: true as const }));
      },
    },
  });
  return { connector, events, contexts, inFlight, starts };
}

const rows = (n: number, from = 1) => () => Array.from({ length: n }, (_, i) => ({ id: from + i, name: `n${from + i}` }));

describe('the engine', () => {
  it('opens a connection once for every sync that uses it, hands each call the same context, and closes it once', async () => {
    const dest = lifecycleDestination();
    const env = environment(tempDir(), { a: memorySource(rows(5)), b: memorySource(rows(5, 100)), dst: dest.connector });
    const one = syncConfig({ name: 'one', from: { connection: 'a', table: 't', primaryKey: 'id' } });
    const two = syncConfig({ name: 'two', from: { connection: 'b', table: 't', primaryKey: 'id' } });
    const [s1, s2] = await Promise.all([env.engine.run(one), env.engine.run(two)]);
    expect([s1.inserted, s2.inserted]).toEqual([5, 5]);
    expect(dest.events).toEqual(['open dst']);
    await env.close();
    expect(dest.events).toEqual(['open dst', 'close dst']);
    expect(dest.contexts.size).toBe(1);
  });

  it('keeps two syncs on one connection within one shared request budget', async () => {
    const dest = lifecycleDestination({ perSecond: 5 });
    const env = environment(tempDir(), { a: memorySource(rows(8)), b: memorySource(rows(8, 100)), dst: dest.connector });
    const one = syncConfig({ name: 'one', from: { connection: 'a', table: 't', primaryKey: 'id' } });
    const two = syncConfig({ name: 'two', from: { connection: 'b', table: 't', primaryKey: 'id' } });
    await Promise.all([env.engine.run(one), env.engine.run(two)]);
    expect(dest.starts).toHaveLength(16);
    // No window of one second holds more than 5 writes of the two syncs together.
    for (const t of dest.starts) expect(dest.starts.filter((s) => s >= t && s < t + 1000).length).toBeLessThanOrEqual(5);
    await env.close();
  });

  it('stops gracefully, then aborts the signal every connector call was given once the grace period is over', async () => {
    const dest = lifecycleDestination({ holdWrites: true });
    const env = environment(tempDir(), { src: memorySource(rows(3)), dst: dest.connector });
    const run = env.engine.run(syncConfig({ delivery: { maxAttempts: 1 } }));
    await expect.poll(() => dest.inFlight.length).toBeGreaterThan(0);
    env.engine.stop({ graceMs: 200 });
    expect(dest.inFlight[0]!.signal.aborted).toBe(false);
    const summary = await run;
    expect(summary.status).toBe('aborted');
    expect(dest.inFlight.every((w) => w.signal.aborted)).toBe(true);
    await env.close();
  });

  it('fails a run whose connection cannot be opened with a coded error naming it', async () => {
    const broken = defineConnector({
      ...memoryDestination().connector,
      name: 'broken',
      async open() {
        throw new Error('the token was refused');
      },
    });
    const env = environment(tempDir(), { src: memorySource(rows(1)), dst: broken });
    expect(await env.engine.run(syncConfig())).toMatchObject({
      status: 'failed',
      error: { code: 'OUTFLOW_CHECK_FAILED', message: expect.stringContaining('connection "dst" (broken) could not be opened: the token was refused') },
    });
    await env.close();
  });
});
