/**
 * The failpoint matrix: the real `outflow` CLI is killed with SIGKILL at each named crash
 * point (OUTFLOW_FAILPOINTS), for diff capture (embedded and pushed down into PostgreSQL)
 * and stream capture (PostgreSQL, Snowflake), into the webhook receiver, PostgreSQL and
 * HubSpot; then restarted. After the restart the destination must hold exactly the model,
 * and every record must have been created exactly once — counted in the destination's own
 * write log, where a second creation would show.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FailpointName } from '@outflow/core';
import { assertBuilt, eventually, killAll, outflow, tempDir, within, type Exit } from './cli.js';
import { postgresSink, sink, source, syncYaml, type Rows, type Sink, type SinkKind, type Source, type SourceKind } from './systems.js';

const ROWS = 200;
const BATCH = 40;
/** How long one step may take (a run to die, a restart to converge); generous for a loaded machine. */
const WAIT = 120_000;
/** A deliberately broken destination (plain INSERTs that claim to be idempotent). */
const NAIVE = fileURLToPath(new URL('./fixtures/naive-postgres.mjs', import.meta.url));

interface Cell {
  from: SourceKind;
  to: SinkKind | 'postgres-append';
  /** `name:hit`: the crash point and on which pass of it the process dies. */
  at: `${FailpointName}:${number}`;
  /** The stream's slot is dropped before the armed run, so it reconciles by a diff. */
  reconcile?: boolean;
}

const DIFFS: SourceKind[] = ['diff-embedded', 'diff-pushdown'];
const STREAMS: SourceKind[] = ['stream-postgres', 'stream-snowflake'];
const SINKS: SinkKind[] = ['webhook', 'postgres', 'hubspot'];

const cells: Cell[] = [
  // After the destination applied a write, before its acknowledgement is logged: every
  // capture into every destination.
  ...[...DIFFS, ...STREAMS].flatMap((from) => SINKS.map((to): Cell => ({ from, to, at: 'delivery.after-write:2' }))),
  ...DIFFS.map((from): Cell => ({ from, to: 'postgres-append', at: 'delivery.after-write:2' })),
  ...STREAMS.map((from): Cell => ({ from, to: 'webhook', at: 'delivery.after-write:9' })),
  // After the snapshot is read, before any state is written.
  { from: 'diff-embedded', to: 'webhook', at: 'diff.after-snapshot:1' },
  { from: 'diff-pushdown', to: 'postgres', at: 'diff.after-snapshot:1' },
  // Between the acknowledgement log and the fold into delivered state, and inside the fold.
  { from: 'diff-embedded', to: 'postgres', at: 'state.before-fold:1' },
  { from: 'diff-embedded', to: 'hubspot', at: 'state.inside-fold:1' },
  // Inside the pushdown store's acknowledgement transaction.
  { from: 'diff-pushdown', to: 'hubspot', at: 'state.inside-apply:3' },
  { from: 'diff-pushdown', to: 'postgres-append', at: 'state.inside-apply:4' },
  // Inside a checkpoint commit: saved in the ledger, not yet committed to the stream.
  { from: 'stream-postgres', to: 'webhook', at: 'stream.checkpoint-saved:3' },
  { from: 'stream-snowflake', to: 'postgres', at: 'stream.checkpoint-saved:3' },
  // The stream's own steps: the slot advance, the staging step, freeing staged rows.
  { from: 'stream-postgres', to: 'postgres', at: 'postgres.before-slot-advance:2' },
  { from: 'stream-snowflake', to: 'hubspot', at: 'snowflake.after-stage:1' },
  { from: 'stream-snowflake', to: 'webhook', at: 'snowflake.before-unstage:2' },
  // During a reconcile of a stale stream.
  { from: 'stream-postgres', to: 'webhook', at: 'reconcile.after-write:2', reconcile: true },
  { from: 'stream-postgres', to: 'postgres', at: 'reconcile.after-write:1', reconcile: true },
  { from: 'stream-postgres', to: 'hubspot', at: 'reconcile.after-diff:1', reconcile: true },
];

beforeAll(() => assertBuilt());
afterAll(() => killAll());

/** What the destination must hold: the model, or for an append-only table the model's ids as first inserted. */
function expected(model: Rows, appendOnly: boolean, firstSeen: Rows): Rows {
  if (!appendOnly) return model;
  return new Map([...firstSeen].filter(([id]) => model.has(id)));
}

/** How `held` differs from `want`, briefly: for a test's failure message. */
function difference(held: Rows, want: Rows): string {
  const missing = [...want.keys()].filter((k) => !held.has(k));
  const extra = [...held.keys()].filter((k) => !want.has(k));
  const differ = [...want].filter(([k, v]) => held.has(k) && (held.get(k)!.name !== v.name || held.get(k)!.score !== v.score)).map(([k, v]) => `${k}: held ${JSON.stringify(held.get(k))}, model ${JSON.stringify(v)}`);
  return `held ${held.size}, model ${want.size}; missing ${JSON.stringify(missing.slice(0, 10))} (${missing.length}); extra ${JSON.stringify(extra.slice(0, 10))} (${extra.length}); differing ${JSON.stringify(differ.slice(0, 5))} (${differ.length})`;
}

function sameRows(a: Rows, b: Rows): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || w.name !== v.name || w.score !== v.score) return false;
  }
  return true;
}

interface Outcome {
  held: Rows;
  model: Rows;
  /** Records created per id, from the destination's own write log. */
  creates: Map<string, number>;
  /** What the run after the restart printed. */
  log: string;
  /** Writes the destination logged before and after one more diff run (diff captures only). */
  idle?: { before: number; after: number; code: number | null; output: string };
}

/**
 * Seeds the model, runs the CLI armed at `cell.at` until it dies there (changing the model
 * meanwhile for streams), changes the model again, restarts it without crash points and
 * lets it converge; then reads the destination and its write log.
 */
async function crashAndRestart(cell: Cell, src: Source, dst: Sink): Promise<Outcome> {
  const [point] = cell.at.split(':') as [FailpointName];
  const appendOnly = cell.to === 'postgres-append';
  const dir = tempDir('crash');
  writeFileSync(join(dir, 'outflow.yaml'), syncYaml(src, dst, { batchSize: BATCH, concurrency: 2 }));
  const env = { ...src.env, ...dst.env };
  await src.seed(ROWS);
  // The rows each id was first inserted with: what an insert-only table keeps.
  const firstSeen = new Map(await src.rows());
  const remember = async () => {
    for (const [id, item] of await src.rows()) if (!firstSeen.has(id)) firstSeen.set(id, item);
  };
  let round = 0;
  // A stream resumed after a crash replays the changes after its last checkpoint: with
  // updates and deletes in every round, a replayed update of a record deleted later in that
  // window would create it again unless the replay is skipped by position.
  const changeRound = async () => {
    await src.change(++round, appendOnly ? 'inserts' : 'all');
    await remember();
  };

  if (cell.reconcile) {
    // Stream until the destination has the model, stop, then lose the stream's slot.
    const first = outflow(dir, ['run', '--json'], { env });
    await eventually(async () => sameRows(await dst.held(), await src.rows()), 'the first stream to deliver the model', WAIT, async () => `${difference(await dst.held(), await src.rows())}\n${first.output().slice(-3000)}`);
    await first.stop();
    await src.dropStream!();
    await src.change(++round, 'all');
    await remember();
  }

  // The armed run: it must die at the crash point.
  const victim = outflow(dir, ['run', '--json'], { env, failpoints: cell.at });
  let died: Exit;
  if (src.capture === 'stream' && !cell.reconcile) {
    // Keep changing the model until the stream passes the crash point.
    const feeding = (async () => {
      while (victim.child.exitCode === null && victim.child.signalCode === null) {
        await new Promise((r) => setTimeout(r, 400));
        if (victim.child.signalCode === null) await changeRound();
      }
    })();
    died = await within(victim.exited, WAIT, `the runner to die at ${cell.at}`, victim.output);
    await feeding;
  } else {
    died = await within(victim.exited, WAIT, `the runner to die at ${cell.at}`, victim.output);
  }
  expect(died.output).toContain(`failpoint ${point} reached`);
  expect(died.signal).toBe('SIGKILL');

  // More changes while nothing runs, then a restart without crash points.
  await changeRound();
  const want = async () => expected(await src.rows(), appendOnly, firstSeen);
  let log: string;
  if (src.capture === 'diff') {
    const second = await within(outflow(dir, ['run', '--json'], { env }).exited, WAIT, 'the second run');
    log = second.output;
    expect(second.code, second.output).toBe(0);
  } else {
    const second = outflow(dir, ['run', '--json'], { env });
    // A resumed stream replays what came after its checkpoint, so the destination can match
    // the model for a moment mid-replay: it must hold the model for two seconds running.
    let since = 0;
    const settled = async () => {
      if (!sameRows(await dst.held(), await want())) since = 0;
      else since ||= Date.now();
      return since > 0 && Date.now() - since >= 2000;
    };
    await eventually(settled, 'the restarted stream to deliver the model', WAIT, async () => `${difference(await dst.held(), await want())}\n${second.output().slice(-3000)}`);
    const ended = await second.stop();
    log = ended.output;
    expect(ended.output).not.toMatch(/network guard/);
  }
  const outcome: Outcome = { held: await dst.held(), model: await want(), creates: await dst.creates(), log };
  if (src.capture === 'diff') {
    const before = await dst.writes();
    const third = await within(outflow(dir, ['run', '--json'], { env }).exited, WAIT, 'the third run');
    outcome.idle = { before, after: await dst.writes(), code: third.code, output: third.output };
  }
  return outcome;
}

/** Ids the write log shows created more than once. */
const createdTwice = (creates: Map<string, number>) => [...creates].filter(([, n]) => n > 1);

describe.concurrent('the CLI killed at each crash point converges after a restart, every record created once', () => {
  for (const cell of cells) {
    it(`${cell.from} → ${cell.to}, killed at ${cell.at}`, { timeout: 4 * WAIT }, async () => {
      const src = await source(cell.from);
      const dst = await sink(cell.to);
      try {
        const { held, model, creates, log, idle } = await crashAndRestart(cell, src, dst);
        expect(difference(held, model), log).toBe(difference(model, model));
        expect(sameRows(held, model)).toBe(true);
        // Counted in the destination's write log: no id created twice, every id created.
        const twice = createdTwice(creates);
        expect(twice, `records created more than once: ${JSON.stringify(twice.slice(0, 10))}`).toEqual([]);
        for (const id of model.keys()) expect(creates.get(id), `id ${id} was never created`).toBe(1);
        if (idle) {
          // Nothing is left to send: a further run writes nothing.
          expect(idle.code, idle.output).toBe(0);
          expect(idle.after).toBe(idle.before);
        }
      } finally {
        await src.close();
        await dst.close();
      }
    });
  }
});

describe('the matrix\'s duplicate count', () => {
  it('catches a destination that claims to recognise a re-sent insert and does not', { timeout: 4 * WAIT }, async () => {
    const cell: Cell = { from: 'diff-embedded', to: 'postgres-append', at: 'delivery.after-write:2' };
    const src = await source(cell.from);
    const dst = await postgresSink(false, NAIVE);
    try {
      const { held, model, creates } = await crashAndRestart(cell, src, dst);
      // The batch applied before the crash was applied again after it: its rows are in the
      // table twice, and the write log counts two creates for each.
      expect(held.size).toBeGreaterThan(model.size);
      expect(createdTwice(creates).length).toBeGreaterThanOrEqual(BATCH);
    } finally {
      await src.close();
      await dst.close();
    }
  });
});
