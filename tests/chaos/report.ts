/** bench/results/chaos.json and chaos.md: per scenario and in total, with what was checked and how. */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../crash/cli.js';
import type { ChaosOptions } from './options.js';
import type { ScenarioResult } from './scenario.js';

export const RESULTS_DIR = join(ROOT, 'bench', 'results');

export const NOTES = [
  'Each scenario seeds a model (PostgreSQL table, Snowflake emulator table or DuckDB file; ids, a name, a score, an email derived from the id), writes an outflow.yaml and starts the real CLI (apps/runner/dist/cli.js, under the network guard) again and again. Diff syncs run once (40 %) or with `--watch` (every 300 ms), stream syncs follow their stream. While each run goes, the model gets random inserts, updates and deletes (one transaction per round where the system has them); after a random delay (0.2–8 s, 3 s more when a failpoint is armed) the harness kills the CLI with SIGKILL (8 % of stops are a SIGTERM drain instead, not counted as kills). In about 30 % of the runs one crash point of packages/core/src/failpoints.ts that the capture passes is armed (OUTFLOW_FAILPOINTS=name:n, n random), which SIGKILLs the process itself; in the PostgreSQL stream scenarios the replication slot is sometimes dropped while the runner is down, so the next run reconciles by a diff (and the reconcile crash points can be armed).',
  'Every decision (delays, failpoints, once or --watch, stale streams, the changes themselves) comes from a PRNG seeded per scenario from the run seed and the scenario name, drawn before each cycle starts: `npm run chaos -- --seed N --scenarios <name>` replays a scenario\'s schedule and changes. Only where the CLI is when a kill lands depends on the machine.',
  'Convergence: no more changes or kills; a diff sync runs once (again, up to 6 times, while the destination differs and the last run wrote something), then once more, which must write nothing (writesAtRest, counted in the destination\'s write log); a stream sync runs until the destination matches (or until it wrote nothing for 20 s, at most 150 s) and is stopped with SIGTERM.',
  'The check compares the destination with the model as the source holds it at the end: lost = model rows missing at the destination; mismatched = rows whose name or score differ; extra = destination records of no model row (a second record of one id counts here too). For the insert-only PostgreSQL table (insert mode, no unique index) the workload only inserts, so the model is the expected content.',
  'duplicated = ids created more than once, counted in the destination\'s own write log, never through a keyed map or a unique index: the webhook receiver\'s log of applied writes (`writes()`, puts that created a record), a trigger on the PostgreSQL table logging every INSERT, the HubSpot emulator\'s log of applied writes (`stats().writes`, op create, keyed by the created values: the email for contacts, item_id for items).',
  'HubSpot contacts are upserted by email: email is unique in HubSpot (the emulator, like HubSpot, refuses a second contact with an email another holds), so the connector declares idempotency `match` and the engine sends writes in doubt again; a duplicate there can only be a contact created again after its delete. HubSpot `items` is a custom object with no unique property, where a re-sent create makes a second record that the write log shows: the connector declares `none` and has no lookup, so after a crash the engine parks the writes it cannot know the outcome of as "outcome unknown" (see `outflow errors`) instead of sending them again.',
  'parked = keys the ledger lists as parked with "outcome unknown" after convergence (`outflow errors --json`). They are reported on their own and left out of lost, mismatched and extra (such a record may or may not be at the destination: that is what unknown means, and `outflow retry` is for a person who checked), but never out of duplicated. rowErrors = any other row errors left in the ledger.',
  'kills = SIGKILLs sent by the harness that landed on a running CLI; failpoint kills = runs that died at their armed crash point. Runs = every CLI start, including converging runs.',
  'Examples in chaos.json (and under Findings below) give, per id, the destination\'s write log for it (HubSpot) and its row error in the ledger. Findings reduced to deterministic cases are scripts in tests/chaos/repro/ (see tests/chaos/README.md), each exiting 1 while its bug reproduces.',
];

type Totals = Pick<ScenarioResult, 'runs' | 'kills' | 'failpointKills' | 'sigterms' | 'failedRuns' | 'rowsChecked' | 'lost' | 'duplicated' | 'mismatched' | 'extra' | 'parked' | 'rowErrors' | 'seconds'>;

export function totals(results: ScenarioResult[]): Totals {
  const keys = ['runs', 'kills', 'failpointKills', 'sigterms', 'failedRuns', 'rowsChecked', 'lost', 'duplicated', 'mismatched', 'extra', 'parked', 'rowErrors', 'seconds'] as const;
  const t = Object.fromEntries(keys.map((k) => [k, 0])) as Totals;
  for (const r of results) for (const k of keys) t[k] += r[k];
  t.seconds = Math.round(t.seconds * 10) / 10;
  return t;
}

export function writeReport(options: ChaosOptions, results: ScenarioResult[], wallSeconds: number): { json: string; md: string } {
  const machine = { node: process.version, cores: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', totalMemGb: Math.round(os.totalmem() / 2 ** 30) };
  const total = totals(results);
  const measuredAt = new Date().toISOString();
  const reproduce = `npm run chaos -- --seed ${options.seed} --kills ${options.kills} --duration ${options.durationSec}`;
  const json = {
    name: 'chaos',
    measuredAt,
    seed: options.seed,
    reproduce,
    options: { kills: options.kills, durationSec: options.durationSec, failpointRate: options.failpointRate, rows: options.rows, concurrency: options.concurrency },
    machine,
    wallSeconds,
    notes: NOTES,
    total,
    scenarios: results,
  };
  const row = (r: Totals & { name: string; capture: string; destination: string; converged: string; writesAtRest: string }) =>
    `| ${r.name} | ${r.capture} | ${r.destination} | ${r.runs} | ${r.kills + r.failpointKills} (${r.failpointKills}) | ${r.rowsChecked} | ${r.lost} | ${r.duplicated} | ${r.mismatched} | ${r.extra} | ${r.parked} | ${r.rowErrors} | ${r.converged} | ${r.writesAtRest} | ${r.seconds} |`;
  const md = [
    '# chaos',
    '',
    `Measured ${measuredAt} on Node ${machine.node}, ${machine.cores} cores (${machine.cpuModel}); seed ${options.seed}, ${options.scenarios.length} scenarios ${options.concurrency} at a time, ${Math.round(wallSeconds)} s in all (seconds per scenario overlap). Reproduce: \`${reproduce}\` (one scenario: add \`--scenarios <name>\`).`,
    '',
    '| scenario | capture | destination (idempotency) | runs | kills (at failpoints) | rows checked | lost | duplicated | mismatched | extra | parked | row errors | converged | writes at rest | seconds |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...results.map((r) =>
      row({
        ...r,
        name: `${r.scenario} (seed ${r.scenarioSeed})${r.harnessError ? ' — harness failed' : ''}`,
        destination: `${r.destination} (${r.idempotency}), batch ${r.batchSize}×${r.concurrency}`,
        converged: r.converged ? 'yes' : 'NO',
        writesAtRest: r.writesAtRest === null ? '—' : String(r.writesAtRest),
      }),
    ),
    row({ ...total, name: '**total**', capture: '', destination: '', converged: results.every((r) => r.converged) ? 'yes' : 'NO', writesAtRest: '' }),
    '',
    ...NOTES.map((n) => `- ${n}`),
    '',
    ...incidents(results),
  ].join('\n');
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'chaos.json'), JSON.stringify(json, null, 2) + '\n');
  writeFileSync(join(RESULTS_DIR, 'chaos.md'), md);
  return { json: join(RESULTS_DIR, 'chaos.json'), md };
}

/** What went wrong, per scenario, with examples: the start of a reduction. */
function incidents(results: ScenarioResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    const bad = r.lost + r.duplicated + r.mismatched + r.extra + r.rowErrors > 0 || !r.converged || r.harnessError !== undefined || (r.writesAtRest ?? 0) > 0;
    if (!bad && r.failedRuns === 0) continue;
    out.push(`## ${r.scenario} (seed ${r.scenarioSeed})`, '');
    if (r.harnessError) out.push(`- harness error: ${r.harnessError.split('\n')[0]}`);
    for (const [what, list] of Object.entries(r.examples)) if (list.length && what !== 'parked') out.push(`- ${what}: ${list.slice(0, 8).join('; ')}`);
    if (r.failedRuns) out.push(`- ${r.failedRuns} runs ended on their own with a non-zero exit; first: ${(r.incidents[0] ?? '').split('\n')[0]}`);
    out.push('');
  }
  return out.length ? ['## Findings', '', ...out] : [];
}
