import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteLedger, type SqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import { createEngine, defineConnector, type AnyConnector, type Engine, type Ledger, type RunSummary } from '../src/index.js';
import { memoryDestination, memoryStream, syncConfig, tempDir } from './helpers.js';

// Two engines over one ledger are two runners: each has its own state folder, as runners on
// two machines would, and they share the ledger's leases and checkpoints.
const fast = { backoff: { baseMs: 1, maxMs: 5 } };
const cleanup: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function shared(): string {
  const dir = tempDir('outflow-lease-');
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function ledgerIn(dir: string): SqliteLedger {
  const l = openSqliteLedger(join(dir, 'ledger'));
  cleanup.push(() => l.close());
  return l;
}

function runner(dir: string, name: string, ledger: Ledger, connections: Record<string, AnyConnector>, leaseMs?: number): Engine {
  const stateDir = join(dir, name);
  const engine = createEngine({
    config: { connections: Object.fromEntries(Object.entries(connections).map(([n, connector]) => [n, { connector }])), syncs: [] },
    ledger,
    stateStore: duckdbStateStore({ dir: stateDir }),
    stateDir,
    ...(leaseMs === undefined ? {} : { leaseMs }),
  });
  cleanup.push(() => engine.close());
  return engine;
}

/** A destination whose writes wait while `hold` is set, then go to the memory destination. */
function gated(dest: ReturnType<typeof memoryDestination>) {
  let release: (() => void) | undefined;
  let held: Promise<void> | undefined;
  let waiting = 0;
  const inner = dest.connector.destination!;
  const connector = defineConnector({
    ...dest.connector,
    destination: {
      ...inner,
      async write(ctx, object, ops) {
        if (held) {
          waiting++;
          await held;
        }
        return inner.write(ctx, object, ops);
      },
    },
  });
  return {
    connector,
    get waiting() {
      return waiting;
    },
    hold() {
      held = new Promise<void>((r) => (release = r));
    },
    open() {
      held = undefined;
      release?.();
    },
  };
}

const change = (n: number) => ({ checkpoint: String(n), changes: [{ op: 'insert' as const, key: `k${n}`, after: { id: `k${n}`, n } }] });

describe('leases across runners sharing a ledger', () => {
  it('runs a sync in one runner at a time: the other is told who holds it', async () => {
    const dir = shared();
    const stream = memoryStream();
    const dest = memoryDestination();
    const connections = { src: stream.connector, dst: dest.connector };
    const a = runner(dir, 'a', ledgerIn(dir), connections);
    const b = runner(dir, 'b', ledgerIn(dir), connections);
    const sync = syncConfig({ capture: 'stream' });

    const running = a.run(sync, fast);
    stream.emit(change(1));
    await expect.poll(() => stream.commits.at(-1), { timeout: 5000 }).toBe('1');
    const seen: RunSummary[] = [];
    const refused = await b.run(sync, { ...fast, onRun: (s) => seen.push(s) });
    expect(refused).toMatchObject({ status: 'failed', error: { code: 'OUTFLOW_LOCKED' } });
    expect(refused.error!.message).toMatch(/sync "people" is held by another runner \(.*\/\d+\/.*, lease until .*\): it runs there/);
    expect(seen).toEqual([refused]);

    a.stop();
    expect(await running).toMatchObject({ status: 'succeeded', inserted: 1 });
    // Released on the way out: the other runner takes it at once and resumes at the checkpoint.
    stream.emit(change(2));
    const next = b.run(sync, fast);
    await expect.poll(() => stream.commits.at(-1), { timeout: 5000 }).toBe('2');
    b.stop();
    expect(await next).toMatchObject({ status: 'succeeded', inserted: 1 });
    expect(dest.calls.flat().map((o) => o.key)).toEqual(['k1', 'k2']);
  });

  it('stops a runner whose lease cannot be renewed before it expires, without waiting for a checkpoint', async () => {
    const dir = shared();
    const stream = memoryStream();
    const dest = memoryDestination();
    const connections = { src: stream.connector, dst: dest.connector };
    const ledger = ledgerIn(dir);
    // Once cut off from the ledger, renewals never answer.
    let cut = false;
    const cutOff: Ledger = Object.assign(Object.create(ledger) as Ledger, {
      renewLease: (...args: Parameters<Ledger['renewLease']>) => (cut ? new Promise<never>(() => undefined) : ledger.renewLease(...args)),
    });
    const a = runner(dir, 'a', cutOff, connections, 600);
    const sync = syncConfig({ capture: 'stream' });
    const running = a.run(sync, fast);
    stream.emit(change(1));
    await expect.poll(() => stream.commits.at(-1), { timeout: 5000 }).toBe('1');
    cut = true;
    const summary = await running;
    // The stream was idle after its first batch: only the lost lease ended the run.
    expect(summary).toMatchObject({ status: 'failed', inserted: 1, error: { code: 'OUTFLOW_LEASE_LOST' } });
    expect(summary.error!.message).toMatch(/could not be renewed within 600 ms/);
    expect(stream.commits).toEqual(['1']);
  });

  it('refuses the checkpoint of a runner deposed while a batch was in flight; it stops and the new holder resumes from the last checkpoint', async () => {
    const dir = shared();
    const stream = memoryStream();
    const dest = memoryDestination();
    const gate = gated(dest);
    const connections = { src: stream.connector, dst: gate.connector };
    const ledger = ledgerIn(dir);
    const a = runner(dir, 'a', ledger, connections);
    const sync = syncConfig({ capture: 'stream' });

    const running = a.run(sync, fast);
    stream.emit(change(1));
    await expect.poll(() => ledger.getCheckpoint('people'), { timeout: 5000 }).toBe('1');
    gate.hold();
    stream.emit(change(2));
    await expect.poll(() => gate.waiting, { timeout: 5000 }).toBe(1);

    // Runner A is as good as paused: another runner takes the sync over (here by hand, as if
    // A's lease had expired), then A's batch completes.
    const held = (await ledger.leaseHolder('people'))!;
    await ledger.releaseLease('people', held.owner);
    const other = (await ledger.acquireLease('people', 'runner-b', 60_000))!;
    expect(other.token).toBeGreaterThan(held.token);
    gate.open();
    const summary = await running;
    expect(summary).toMatchObject({ status: 'failed', error: { code: 'OUTFLOW_LEASE_LOST' } });
    expect(summary.error!.message).toMatch(/sync "people": another runner took the sync over .*runner-b/);
    expect(await ledger.getCheckpoint('people')).toBe('1');
    expect(stream.commits).toEqual(['1']);
    // Its run is left as it was: the new holder marks it aborted.
    expect((await ledger.listRuns({ sync: 'people' }))[0]).toMatchObject({ id: summary.runId, status: 'running' });

    // The new holder runs the sync and resumes from checkpoint 1: batch 2 is read again.
    await ledger.releaseLease('people', 'runner-b');
    const b = runner(dir, 'b', ledgerIn(dir), connections);
    const next = b.run(sync, fast);
    await expect.poll(() => ledger.getCheckpoint('people'), { timeout: 5000 }).toBe('2');
    b.stop();
    expect(await next).toMatchObject({ status: 'succeeded' });
    expect(dest.calls.flat().map((o) => o.key)).toEqual(['k1', 'k2', 'k2']);
    const runs = await ledger.listRuns({ sync: 'people' });
    expect(runs.find((r) => r.id === summary.runId)).toMatchObject({ status: 'aborted' });
  });
});
