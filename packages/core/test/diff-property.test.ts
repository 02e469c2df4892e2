import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Row } from '../src/index.js';
import { environment, memoryDestination, memorySource, syncConfig, tempDir } from './helpers.js';

/**
 * Property: whatever the model does between runs, and whatever goes wrong during runs
 * (records rejected for good or for a while, whole batches failing, a process dying after
 * the destination applied a batch), once the failures stop and parked rows are retried the
 * destination equals the model, and no record was created more often than its key entered
 * the model.
 */

const edit = fc.oneof(
  fc.record({ kind: fc.constant('upsert' as const), id: fc.integer({ min: 1, max: 40 }), v: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ kind: fc.constant('delete' as const), id: fc.integer({ min: 1, max: 40 }) }),
);
const trouble = fc.record({
  reject: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 3 }),
  retryableReject: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 3 }),
  failCall: fc.option(fc.integer({ min: 1, max: 6 }), { nil: null }),
  crashCall: fc.option(fc.integer({ min: 1, max: 6 }), { nil: null }),
});
const step = fc.record({ edits: fc.array(edit, { maxLength: 12 }), trouble });

/** A run that does not finish is a failure of the property, not a hung test. */
function withTimeout<T>(p: Promise<T>, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`a run did not finish within ${ms} ms`)), ms))),
  ]);
}

describe('diff sync under failures (property)', () => {
  it('converges to the model with nothing lost and nothing created twice', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 5 }), async (steps) => {
        const model = new Map<number, Row>();
        const entries = new Map<string, number>(); // times each key entered the model
        const dest = memoryDestination({ maxBatchSize: 4, concurrency: 2 });
        const env = environment(tempDir('outflow-prop-'), {
          src: memorySource(() => [...model.values()], 5),
          dst: dest.connector,
        });
        // The model may lose most of its rows between runs: the deletes guard is off.
        const cfg = syncConfig({ to: { mode: 'mirror' }, delivery: { maxAttempts: 2 }, maxDeletes: { pct: 100 } });
        const run = () => withTimeout(env.engine.run(cfg, { backoff: { baseMs: 1, maxMs: 2 } }));
        try {
          for (const { edits, trouble: t } of steps) {
            for (const e of edits) {
              if (e.kind === 'upsert') {
                if (!model.has(e.id)) entries.set(String(e.id), (entries.get(String(e.id)) ?? 0) + 1);
                model.set(e.id, { id: e.id, v: e.v });
              } else model.delete(e.id);
            }
            dest.faults.reject = new Map<string, { reason: string; retryable?: boolean }>([
              ...t.reject.map((k) => [String(k), { reason: 'refused', retryable: false }] as const),
              ...t.retryableReject.map((k) => [String(k), { reason: 'busy', retryable: true }] as const),
            ]);
            const base = dest.calls.length;
            dest.faults.failCalls = t.failCall ? new Map([[base + t.failCall, { retryable: true }]]) : new Map();
            dest.faults.crashAfterApplyOnCall = t.crashCall ? base + t.crashCall : undefined;
            await run();
          }
          dest.faults.reject = new Map();
          dest.faults.failCalls = new Map();
          dest.faults.crashAfterApplyOnCall = undefined;
          await withTimeout(env.engine.run(cfg, { backoff: { baseMs: 1, maxMs: 2 }, unpark: true }));
          const final = await run();
          expect(final).toMatchObject({ status: 'succeeded', inserted: 0, updated: 0, deleted: 0, rejected: 0, parked: 0 });

          const want = new Map([...model].map(([id, row]) => [String(id), row['v']]));
          const have = new Map([...dest.records].map(([k, r]) => [k, r.fields['v']]));
          expect(have).toEqual(want);
          for (const [key, n] of dest.creations) expect(n, `key ${key}`).toBeLessThanOrEqual(entries.get(key) ?? 0);
        } finally {
          await env.close();
        }
      }),
      { numRuns: Number(process.env["OUTFLOW_PROPERTY_RUNS"] ?? 30), seed: Number(process.env['OUTFLOW_PROPERTY_SEED'] ?? 20261124) },
    );
  });
});
