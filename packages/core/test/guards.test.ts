import { describe, expect, it } from 'vitest';
import type { Row } from '../src/index.js';
import { environment, memoryDestination, memorySource, memoryStream, syncConfig, tempDir } from './helpers.js';

const people = (n: number, name = (i: number) => `person ${i}`): Row[] =>
  Array.from({ length: n }, (_, i) => ({ id: i + 1, name: name(i + 1), email: `p${i + 1}@example.com` }));

const fast = { backoff: { baseMs: 1, maxMs: 2 } };

function setup(rows: () => Row[], dest = memoryDestination()) {
  const env = environment(tempDir(), { src: memorySource(rows, 50), dst: dest.connector });
  return { env, dest };
}

/** Operations the destination was sent for `key`, over every call so far. */
const sentFor = (dest: ReturnType<typeof memoryDestination>, key: string) => dest.calls.flat().filter((o) => o.key === key).length;

describe('delivery.maxRowAttempts', () => {
  it('sends a record failing with a retryable error again on the next runs, then parks it until it changes or is retried', async () => {
    let rows = people(5);
    const dest = memoryDestination();
    dest.faults.reject = new Map([['3', { reason: 'record locked, try later', retryable: true }]]);
    const { env } = setup(() => rows, dest);
    const cfg = syncConfig({ delivery: { maxAttempts: 1, maxRowAttempts: 3 } });

    for (let run = 1; run <= 3; run++) {
      const r = await env.engine.run(cfg, fast);
      expect(r).toMatchObject({ rejected: 1, parked: 1 });
      expect(sentFor(dest, '3')).toBe(run);
      const [e] = await env.ledger.listRowErrors({ sync: 'people' });
      expect(e).toMatchObject({ key: '3', retryable: true, attempts: run, parked: run === 3 });
    }
    expect(await env.ledger.countRowErrors('people', { parked: true })).toBe(1);

    // Out of attempts: unchanged, it is not sent again.
    expect(await env.engine.run(cfg, fast)).toMatchObject({ inserted: 0, rejected: 0, parked: 1 });
    expect(sentFor(dest, '3')).toBe(3);

    // A new version of the row is sent, with a fresh count of attempts.
    rows = rows.map((r) => (r['id'] === 3 ? { ...r, name: 'three' } : r));
    expect(await env.engine.run(cfg, fast)).toMatchObject({ rejected: 1 });
    expect(sentFor(dest, '3')).toBe(4);
    expect((await env.ledger.listRowErrors({ sync: 'people' }))[0]).toMatchObject({ attempts: 1, parked: false });

    // A person retries once the destination is fine again: it lands.
    dest.faults.reject = new Map();
    expect(await env.engine.run(cfg, { ...fast, unpark: true })).toMatchObject({ inserted: 1, rejected: 0, parked: 0 });
    expect(dest.records.get('3')!.fields['name']).toBe('three');
    await env.close();
  });

  it('a retry of a row out of attempts sends it once more, and it waits again if it still fails', async () => {
    const dest = memoryDestination();
    dest.faults.reject = new Map([['2', { reason: 'busy', retryable: true }]]);
    const { env } = setup(() => people(3), dest);
    const cfg = syncConfig({ delivery: { maxAttempts: 1, maxRowAttempts: 1 } });
    await env.engine.run(cfg, fast);
    expect((await env.ledger.listRowErrors({ sync: 'people' }))[0]).toMatchObject({ attempts: 1, parked: true });
    await env.engine.run(cfg, fast);
    expect(sentFor(dest, '2')).toBe(1);
    await env.engine.run(cfg, { ...fast, unpark: ['2'] });
    expect(sentFor(dest, '2')).toBe(2);
    await env.engine.run(cfg, fast);
    expect(sentFor(dest, '2')).toBe(2);
    expect((await env.ledger.listRowErrors({ sync: 'people' }))[0]).toMatchObject({ attempts: 2, parked: true });
    await env.close();
  });

  it('a stream parks a record that still fails after its tries at once: the stream moves on, and nothing would send it again', async () => {
    const stream = memoryStream();
    const dest = memoryDestination();
    dest.faults.reject = new Map([['b', { reason: 'busy', retryable: true }]]);
    const env = environment(tempDir(), { src: stream.connector, dst: dest.connector });
    const running = env.engine.run(syncConfig({ capture: 'stream', delivery: { maxAttempts: 2 } }), fast);
    stream.emit({
      checkpoint: '1',
      changes: [
        { op: 'insert', key: 'a', after: { id: 'a' } },
        { op: 'insert', key: 'b', after: { id: 'b' } },
      ],
    });
    await expect.poll(() => stream.commits.at(-1), { timeout: 5000 }).toBe('1');
    env.engine.stop();
    expect(await running).toMatchObject({ inserted: 1, rejected: 1 });
    expect(sentFor(dest, 'b')).toBe(2);
    expect(await env.ledger.listRowErrors({ sync: 'people' })).toMatchObject([{ key: 'b', retryable: true, attempts: 1, parked: true }]);
    await env.close();
  });
});

describe('failWhen', () => {
  it('fails the run when more than rejectedPct of its records were rejected, naming the numbers', async () => {
    const dest = memoryDestination({ maxBatchSize: 500 });
    dest.faults.reject = new Map(Array.from({ length: 12 }, (_, i) => [String(i * 16 + 1), { reason: 'invalid email' }] as const));
    const { env } = setup(() => people(200), dest);
    const r = await env.engine.run(syncConfig({ failWhen: { rejectedPct: 5 } }), fast);
    expect(r).toMatchObject({ status: 'failed', inserted: 188, rejected: 12, parked: 12, error: { code: 'OUTFLOW_TOO_MANY_REJECTED' } });
    expect(r.error!.message).toBe('sync "people": 12 of 200 records (6%) were rejected, more than failWhen.rejectedPct 5 (see `outflow errors`)');
    const [recorded] = await env.ledger.listRuns({ sync: 'people' });
    expect(recorded).toMatchObject({ status: 'failed', rejected: 12, error: expect.stringContaining('more than failWhen.rejectedPct 5') });

    // At the threshold, rejections park rows and the run is partial, as without failWhen.
    const ok = await env.engine.run(syncConfig({ name: 'people-6pct', failWhen: { rejectedPct: 6 } }), fast);
    expect(ok).toMatchObject({ status: 'partial', inserted: 188, rejected: 12 });
    await env.close();
  });

  it('stops a diff run early once its share of rejections is certain, without sending the rest', async () => {
    const dest = memoryDestination({ maxBatchSize: 4, concurrency: 1 });
    dest.faults.reject = new Map(people(200).map((r) => [String(r['id']), { reason: 'the mapping is wrong' }] as const));
    const { env } = setup(() => people(200), dest);
    const r = await env.engine.run(syncConfig({ failWhen: { rejectedPct: 5 } }), fast);
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('OUTFLOW_TOO_MANY_REJECTED');
    expect(r.error!.message).toMatch(/^sync "people": 1[1-9] of 200 changes of the run \(\d+(\.\d+)?%\) were rejected, more than failWhen\.rejectedPct 5; the run stopped without sending the rest/);
    // More than 10 (5% of 200) were needed to be certain; the batches in flight then settled.
    const sent = dest.calls.flat().length;
    expect(sent).toBeGreaterThan(10);
    expect(sent).toBeLessThanOrEqual(20);
    expect(r.rejected).toBe(sent);
    expect(await env.ledger.countRowErrors('people')).toBe(sent);
    await env.close();
  });

  it('fails the run once more records than failWhen.rejected were rejected', async () => {
    const dest = memoryDestination({ maxBatchSize: 1, concurrency: 1 });
    dest.faults.reject = new Map(['2', '4', '6', '8'].map((k) => [k, { reason: 'no' }] as const));
    const { env } = setup(() => people(10), dest);
    const r = await env.engine.run(syncConfig({ failWhen: { rejected: 2 } }), fast);
    expect(r).toMatchObject({ status: 'failed', rejected: 3, error: { code: 'OUTFLOW_TOO_MANY_REJECTED' } });
    expect(r.error!.message).toContain('3 records were rejected, more than failWhen.rejected 2');
    expect(dest.calls.flat().length).toBeLessThan(10);
    await env.close();
  });
});

describe('maxDeletes (the blast-radius guard)', () => {
  it('stops a run that would delete more than half of what Outflow owns before sending anything; plan shows it; --allow-deletes lets it through', async () => {
    let rows = people(10);
    const { env, dest } = setup(() => rows);
    const cfg = syncConfig({ to: { mode: 'mirror' } });
    await env.engine.run(cfg, fast);
    const callsBefore = dest.calls.length;

    rows = people(4, (i) => (i === 1 ? 'renamed' : `person ${i}`));
    const plan = await env.engine.plan(cfg);
    expect(plan.plan!.deletes).toEqual({ deletes: 6, owned: 10, pct: 60, maxPct: 50, exceeded: true });

    const stopped = await env.engine.run(cfg, fast);
    expect(stopped).toMatchObject({ status: 'failed', inserted: 0, updated: 0, deleted: 0, error: { code: 'OUTFLOW_DELETE_GUARD' } });
    expect(stopped.error!.message).toBe(
      'sync "people": this run would delete 6 of the 10 records Outflow owns in people (60%), more than maxDeletes.pct 50; nothing was sent. ' +
        'If the model really lost those rows, run once with `outflow run --allow-deletes`, or raise maxDeletes.pct in the config',
    );
    // Nothing reached the destination: not the deletes, not the update of row 1.
    expect(dest.calls.length).toBe(callsBefore);
    expect(dest.records.size).toBe(10);
    expect(dest.records.get('1')!.fields['name']).toBe('person 1');

    const allowed = await env.engine.run(cfg, { ...fast, allowDeletes: true });
    expect(allowed).toMatchObject({ status: 'succeeded', updated: 1, deleted: 6 });
    expect(dest.records.size).toBe(4);
    await env.close();
  });

  it('lets a run delete up to maxDeletes.pct, counts clears too, and leaves deletes: ignore alone', async () => {
    let rows = people(10);
    const { env, dest } = setup(() => rows);
    const clear = syncConfig({ mappings: { name: 'name' }, to: { deletes: 'clear' }, maxDeletes: { pct: 30 } });
    await env.engine.run(clear, fast);
    rows = people(7);
    expect(await env.engine.run(clear, fast)).toMatchObject({ status: 'succeeded', deleted: 3 });
    rows = people(4);
    const r = await env.engine.run(clear, fast);
    expect(r.error?.code).toBe('OUTFLOW_DELETE_GUARD');
    expect(r.error!.message).toContain('would clear 3 of the 7 records Outflow owns in people (42.9%), more than maxDeletes.pct 30');
    expect(dest.records.get('5')!.fields['name']).toBe('person 5');

    rows = [];
    const ignore = syncConfig({ to: { deletes: 'ignore' }, maxDeletes: { pct: 0 } });
    expect(await env.engine.run(ignore, fast)).toMatchObject({ status: 'succeeded', deleted: 0 });
    await env.close();
  });
});
