/**
 * One chaos scenario: a model and a destination, the real CLI started again and again while
 * the model changes at random, killed with SIGKILL at random moments (or by an armed
 * failpoint), then left to converge and compared with the model.
 *
 * Every decision — kill delays, failpoints, diff runs once or `--watch`, when the model
 * changes and how, stale streams — comes from the scenario's PRNG, drawn per cycle before
 * the cycle starts, so a seed replays the same schedule and the same changes. Only where
 * the CLI happens to be when the kill lands depends on the machine.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FailpointName } from '@outflow/core';
import { outflow, tempDir, within, type Exit, type Runner } from '../crash/cli.js';
import { sink as crashSink, syncYaml, type Rows, type Sink } from '../crash/systems.js';
import { hubspotSink, type HistorySink } from './hubspot.js';
import { openModel, RECONCILE_FAILPOINTS, type Change, type ModelKind } from './models.js';
import { mix, Prng } from './prng.js';
import { Workload, type WorkloadCounts } from './workload.js';

export type SinkSpec = 'webhook' | 'postgres' | 'postgres-append' | 'hubspot-contacts' | 'hubspot-items';

export interface ScenarioSpec {
  name: string;
  model: ModelKind;
  sink: SinkSpec;
  /** Only inserts: for an insert-only destination, which keeps each record's first version. */
  insertsOnly?: boolean;
  /** Chance per cycle that the stream's slot is dropped while the runner is down (PostgreSQL streams). */
  staleRate?: number;
}

export interface ScenarioOptions {
  seed: number;
  kills: number;
  /** Milliseconds for the killing phase; it ends at `kills` or here, whichever comes first. */
  budgetMs: number;
  failpointRate: number;
  rows: number;
}

/** What one cycle did, for the JSON report and for replaying it by hand. */
export interface Cycle {
  n: number;
  args: string;
  failpoint?: string;
  /** The stream's slot was dropped before this cycle (the run reconciles). */
  stale?: boolean;
  /** When the harness meant to stop the runner, and how. */
  plannedMs: number;
  stopWith: 'SIGKILL' | 'SIGTERM';
  /** What happened: killed by the harness, by the failpoint, stopped, or ended on its own (exit code). */
  outcome: 'killed' | 'failpoint' | 'stopped' | `exit ${number}`;
  ranMs: number;
  changes: number;
}

export interface ScenarioResult {
  scenario: string;
  source: string;
  capture: 'diff' | 'stream';
  destination: string;
  idempotency: string;
  /** The scenario's own seed, derived from the run's seed and its name. */
  scenarioSeed: number;
  batchSize: number;
  concurrency: number;
  runs: number;
  kills: number;
  failpointKills: number;
  sigterms: number;
  /** Runs that ended on their own with an exit code other than 0 (not killed). */
  failedRuns: number;
  changes: WorkloadCounts;
  converged: boolean;
  convergeRuns: number;
  rowsChecked: number;
  modelRows: number;
  lost: number;
  duplicated: number;
  mismatched: number;
  extra: number;
  parked: number;
  /** Row errors other than outcome unknown, left in the ledger after convergence. */
  rowErrors: number;
  /** Writes the destination logged during a diff run made after convergence (nothing should be left to send). */
  writesAtRest: number | null;
  seconds: number;
  examples: { lost: string[]; duplicated: string[]; mismatched: string[]; extra: string[]; parked: string[]; rowErrors: string[] };
  incidents: string[];
  /** The harness itself failed (a timeout, a system that would not start): the counts are incomplete. */
  harnessError?: string;
  cycles: Cycle[];
}

const tail = (s: string, n = 1500) => (s.length > n ? `…${s.slice(-n)}` : s);

/** A destination of the harness: a sink of the crash matrix, or HubSpot (hubspot.ts, which also tells an id's history), named for the report. */
interface ChaosSink {
  sink: Sink & Partial<Pick<HistorySink, 'history'>>;
  label: string;
  /** What the connector declares for the object (see its README). */
  idempotency: 'key' | 'match' | 'none';
}

async function openSink(spec: SinkSpec): Promise<ChaosSink> {
  switch (spec) {
    case 'webhook':
      return { sink: await crashSink('webhook'), label: 'webhook', idempotency: 'key' };
    case 'postgres':
      return { sink: await crashSink('postgres'), label: 'postgres (upsert)', idempotency: 'match' };
    case 'postgres-append':
      return { sink: await crashSink('postgres-append'), label: 'postgres (insert, no unique index)', idempotency: 'match' };
    case 'hubspot-contacts':
      return { sink: await hubspotSink('contacts'), label: 'hubspot contacts by email', idempotency: 'match' };
    case 'hubspot-items':
      return { sink: await hubspotSink('items'), label: 'hubspot items (no unique property)', idempotency: 'none' };
  }
}



interface RowError {
  key: string;
  op: string;
  reason: string;
  parked: boolean;
}

/** The ledger's row errors, as `outflow errors --json` lists them. */
async function rowErrors(dir: string, env: Record<string, string>): Promise<RowError[]> {
  const r = await within(outflow(dir, ['errors', 'items', '--json', '--limit', '1000000'], { env }).exited, 60_000, 'outflow errors');
  if (r.code !== 0) throw new Error(`outflow errors exited ${r.code}: ${tail(r.output)}`);
  const line = r.output.split('\n').find((l) => l.startsWith('['));
  return line === undefined ? [] : (JSON.parse(line) as RowError[]);
}

const isUnknown = (e: RowError) => /outcome unknown/.test(e.reason);

interface Comparison {
  lost: string[];
  extra: string[];
  mismatched: string[];
}

/** How the destination differs from the model, leaving out the keys in `skip` (parked as outcome unknown). */
function compare(held: Rows, model: Rows, skip: ReadonlySet<string>): Comparison {
  const base = (k: string) => k.split('#')[0]!;
  const lost = [...model.keys()].filter((k) => !held.has(k) && !skip.has(k));
  const extra = [...held.keys()].filter((k) => !model.has(k) && !skip.has(base(k)));
  const mismatched = [...model]
    .filter(([k, v]) => {
      const h = held.get(k);
      return h !== undefined && !skip.has(k) && (h.name !== v.name || h.score !== v.score);
    })
    .map(([k, v]) => `${k}: held ${JSON.stringify(held.get(k))}, model ${JSON.stringify(v)}`);
  return { lost, extra, mismatched };
}

const clean = (c: Comparison) => c.lost.length + c.extra.length + c.mismatched.length === 0;

export async function runScenario(spec: ScenarioSpec, options: ScenarioOptions, log: (line: string) => void): Promise<ScenarioResult> {
  const started = Date.now();
  const scenarioSeed = mix(options.seed, spec.name);
  const root = new Prng(scenarioSeed);
  const plan = root.fork('plan');
  const workload = new Workload(root.fork('workload'), spec.insertsOnly ?? false);
  const batchSize = plan.pick([5, 10, 25, 50]);
  const concurrency = plan.int(1, 4);

  const model = await openModel(spec.model);
  const chaosSink = await openSink(spec.sink);
  const dst = chaosSink.sink;
  const result: ScenarioResult = {
    scenario: spec.name,
    source: spec.model,
    capture: model.capture,
    destination: chaosSink.label,
    idempotency: chaosSink.idempotency,
    scenarioSeed,
    batchSize,
    concurrency,
    runs: 0,
    kills: 0,
    failpointKills: 0,
    sigterms: 0,
    failedRuns: 0,
    changes: workload.counts,
    converged: false,
    convergeRuns: 0,
    rowsChecked: 0,
    modelRows: 0,
    lost: 0,
    duplicated: 0,
    mismatched: 0,
    extra: 0,
    parked: 0,
    rowErrors: 0,
    writesAtRest: null,
    seconds: 0,
    examples: { lost: [], duplicated: [], mismatched: [], extra: [], parked: [], rowErrors: [] },
    incidents: [],
    cycles: [],
  };
  const env = { ...model.env, ...dst.env };
  const dir = tempDir('chaos');
  const runners = new Set<Runner>();
  const start = (args: string[], failpoints?: string) => {
    result.runs++;
    const r = outflow(dir, args, { env, ...(failpoints ? { failpoints } : {}) });
    runners.add(r);
    void r.exited.then(() => runners.delete(r));
    return r;
  };
  const change = async (changes: Change[]) => {
    if (changes.length === 0) return;
    await model.apply(changes);
    workload.applied(changes);
  };

  try {
    writeFileSync(join(dir, 'outflow.yaml'), syncYaml(model, dst, { batchSize, concurrency, scheduleMs: 300 }));
    await model.create(workload.seed(options.rows));
    log(`${spec.name}: seed ${scenarioSeed}, ${options.rows} rows, batch ${batchSize} × ${concurrency}, state in ${dir}`);

    // The killing phase.
    const deadline = started + options.budgetMs;
    for (let n = 1; result.kills + result.failpointKills < options.kills && Date.now() < deadline && n <= options.kills * 3; n++) {
      // Everything this cycle does is drawn now, before anything runs.
      const stale = model.dropStream !== undefined && n > 1 && plan.chance(spec.staleRate ?? 0);
      const pool: FailpointName[] = [...model.failpoints, ...(stale ? RECONCILE_FAILPOINTS : [])];
      const point = plan.chance(options.failpointRate) ? plan.pick(pool) : undefined;
      const failpoint = point === undefined ? undefined : `${point}:${plan.int(1, point === 'delivery.after-write' ? 6 : 3)}`;
      const args = model.capture === 'diff' && plan.chance(0.6) ? ['run', '--json', '--watch'] : ['run', '--json'];
      const roll = plan.next();
      let plannedMs = roll < 0.15 ? plan.int(200, 1500) : roll < 0.75 ? plan.int(1500, 5000) : plan.int(5000, 8000);
      if (failpoint) plannedMs += 3000;
      const stopWith = plan.chance(0.08) ? 'SIGTERM' : 'SIGKILL';
      const rounds: { at: number; changes: number }[] = [];
      for (let at = plan.int(50, 600); at < plannedMs; at += plan.int(100, 800)) rounds.push({ at, changes: plan.int(1, 12) });
      const after = plan.int(0, 2);

      if (stale) await model.dropStream!();
      const runner = start(args, failpoint);
      const t0 = Date.now();
      let done = false;
      let changed = 0;
      const feeding = (async () => {
        for (const r of rounds) {
          const wait = t0 + r.at - Date.now();
          if (wait > 0 && !done) await sleep(wait);
          const c = workload.round(r.changes);
          await change(c);
          changed += c.length;
        }
      })();
      const ended = await Promise.race([runner.exited, sleep(plannedMs).then(() => undefined)]);
      if (ended === undefined) runner.child.kill(stopWith);
      const exit: Exit = await within(runner.exited, 60_000, `${spec.name}: the runner to end after ${stopWith}`, runner.output);
      const ranMs = Date.now() - t0;
      done = true;
      await feeding;
      for (let i = 0; i < after; i++) {
        const c = workload.round();
        await change(c);
        changed += c.length;
      }

      let outcome: Cycle['outcome'];
      if (exit.signal === 'SIGKILL') {
        if (point !== undefined && exit.output.includes(`failpoint ${point} reached`)) {
          outcome = 'failpoint';
          result.failpointKills++;
        } else {
          outcome = 'killed';
          result.kills++;
        }
      } else if (ended === undefined && stopWith === 'SIGTERM') {
        outcome = 'stopped';
        result.sigterms++;
        if (exit.code !== 130 && exit.code !== 0 && exit.code !== null) result.incidents.push(`cycle ${n}: stopped with SIGTERM, exit ${exit.code}: ${tail(exit.output)}`);
      } else {
        outcome = `exit ${exit.code ?? -1}`;
        if (exit.code !== 0) {
          result.failedRuns++;
          result.incidents.push(`cycle ${n} (${args.join(' ')}${failpoint ? `, ${failpoint}` : ''}): exit ${exit.code ?? exit.signal}: ${tail(exit.output)}`);
        }
      }
      if (/network guard/.test(exit.output)) result.incidents.push(`cycle ${n}: the network guard tripped: ${tail(exit.output)}`);
      result.cycles.push({ n, args: args.join(' '), ...(failpoint ? { failpoint } : {}), ...(stale ? { stale } : {}), plannedMs, stopWith, outcome, ranMs, changes: changed });
    }
    log(`${spec.name}: ${result.runs} runs, ${result.kills} kills + ${result.failpointKills} at failpoints, ${result.sigterms} SIGTERMs; converging`);

    // Convergence: no more changes, no more kills.
    let parked = new Set<string>();
    let errors: RowError[] = [];
    const refresh = async () => {
      errors = await rowErrors(dir, env);
      parked = new Set(errors.filter(isUnknown).map((e) => e.key));
    };
    const modelRows = await model.rows();
    if (model.capture === 'diff') {
      for (let i = 0; i < 6 && !result.converged; i++) {
        const before = await dst.writes();
        const r = await within(start(['run', '--json']).exited, 240_000, `${spec.name}: a converging run`);
        result.convergeRuns++;
        if (r.code !== 0) result.incidents.push(`converging run ${i + 1}: exit ${r.code}: ${tail(r.output)}`);
        await refresh();
        result.converged = r.code === 0 && clean(compare(await dst.held(), modelRows, parked));
        // A run that wrote nothing and left a difference: more runs will not change it.
        if (!result.converged && r.code === 0 && (await dst.writes()) === before) break;
      }
      // Nothing is left to send: one more run writes nothing.
      const before = await dst.writes();
      const r = await within(start(['run', '--json']).exited, 240_000, `${spec.name}: the run at rest`);
      if (r.code !== 0) result.incidents.push(`run at rest: exit ${r.code}: ${tail(r.output)}`);
      result.writesAtRest = (await dst.writes()) - before;
    } else {
      // Until the destination matches; or it has written nothing for 20 s (a stream that
      // caught up and still differs will not fix it), at most 150 s.
      const stream = start(['run', '--json']);
      result.convergeRuns = 1;
      const end = Date.now() + 150_000;
      let lastRefresh = 0;
      let writes = await dst.writes();
      let lastWrite = Date.now();
      while (Date.now() < end && Date.now() - lastWrite < 20_000 && stream.child.exitCode === null) {
        if (clean(compare(await dst.held(), modelRows, parked))) {
          result.converged = true;
          break;
        }
        const now = await dst.writes();
        if (now !== writes) [writes, lastWrite] = [now, Date.now()];
        if (Date.now() - lastRefresh > 5000) {
          await refresh();
          lastRefresh = Date.now();
        } else {
          await sleep(300);
        }
      }
      const ended = await within(stream.stop(), 60_000, `${spec.name}: the converging stream to stop`, stream.output).catch(async (err: unknown) => {
        stream.child.kill('SIGKILL');
        result.incidents.push(String(err));
        return stream.exited;
      });
      if (!result.converged || (ended.code !== 130 && ended.code !== 0)) result.incidents.push(`converging stream: exit ${ended.code ?? ended.signal}: ${tail(ended.output)}`);
      await refresh();
    }

    // The check.
    const held = await dst.held();
    const creates = await dst.creates();
    const diff = compare(held, modelRows, parked);
    const twice = [...creates].filter(([, n]) => n > 1);
    const others = errors.filter((e) => !isUnknown(e));
    // What the destination's log and the ledger say about an id: the start of a reduction.
    const explain = async (key: string): Promise<string> => {
      const id = key.split('#')[0]!;
      const history = dst.history ? ` — write log: ${(await dst.history(id)).join(', ') || 'nothing'}` : '';
      const error = errors.find((e) => e.key === id);
      return `${key}${history}${error ? ` — ledger: ${error.op} ${error.parked ? 'parked' : 'to retry'}: ${error.reason}` : ''}`;
    };
    const explainAll = (keys: string[]) => Promise.all(keys.slice(0, 12).map(explain));
    Object.assign(result, {
      modelRows: modelRows.size,
      rowsChecked: new Set([...modelRows.keys(), ...held.keys()]).size,
      lost: diff.lost.length,
      extra: diff.extra.length,
      mismatched: diff.mismatched.length,
      duplicated: twice.length,
      parked: parked.size,
      rowErrors: others.length,
      examples: {
        lost: await explainAll(diff.lost),
        extra: await explainAll(diff.extra),
        mismatched: diff.mismatched.slice(0, 12),
        duplicated: await explainAll(twice.map(([k]) => k)),
        parked: [...parked].slice(0, 20),
        rowErrors: others.slice(0, 12).map((e) => `${e.key} ${e.op}: ${e.reason}${e.parked ? ' (parked)' : ''}`),
      },
    });
  } catch (err) {
    // Recorded, not thrown: the report still gets what this scenario did up to here.
    result.harnessError = err instanceof Error ? (err.stack ?? err.message) : String(err);
  } finally {
    for (const r of runners) r.child.kill('SIGKILL');
    await Promise.all([...runners].map((r) => r.exited));
    result.seconds = Math.round((Date.now() - started) / 100) / 10;
    await dst.close().catch(() => undefined);
    await model.close().catch(() => undefined);
  }
  return result;
}
