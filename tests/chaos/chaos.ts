/**
 * `npm run chaos`: random workloads and random SIGKILLs across the connectors, each scenario
 * checked for lost, duplicated and mismatched records once it converged. Not part of
 * `npm test` (its own vitest config, tests/chaos/vitest.config.ts); writes
 * bench/results/chaos.json and chaos.md. See tests/chaos/README.md.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, killAll, ROOT } from '../crash/cli.js';
import { chaosOptions } from './options.js';
import { writeReport } from './report.js';
import { runScenario, type ScenarioResult } from './scenario.js';

const options = chaosOptions();
const results: ScenarioResult[] = [];
const started = Date.now();
const perScenario = {
  kills: Math.ceil(options.kills / options.scenarios.length),
  budgetMs: (options.durationSec * 1000 * Math.min(options.concurrency, options.scenarios.length)) / options.scenarios.length,
};
const log = (line: string) => process.stdout.write(`[chaos] ${line}\n`);

beforeAll(() => {
  assertBuilt();
  const duckdb = join(ROOT, 'connectors', 'duckdb', 'dist', 'index.js');
  if (!existsSync(duckdb)) throw new Error(`not built: ${duckdb}; run \`npm run build\` first`);
  log(
    `seed ${options.seed} (replay: npm run chaos -- --seed ${options.seed}); ${options.scenarios.length} scenarios, ${Math.min(options.concurrency, options.scenarios.length)} at a time, ${perScenario.kills} kills or ${Math.round(perScenario.budgetMs / 1000)} s each`,
  );
});

afterAll(() => {
  killAll();
  if (results.length === 0) return;
  const order = options.scenarios.map((s) => s.name);
  results.sort((a, b) => order.indexOf(a.scenario) - order.indexOf(b.scenario));
  const { json, md } = writeReport(options, results, (Date.now() - started) / 1000);
  log(`results: ${json}\n${md}`);
});

describe.concurrent('chaos: random changes and SIGKILLs, then the destination equals the model, nothing created twice', () => {
  for (const spec of options.scenarios) {
    it(spec.name, { timeout: perScenario.budgetMs + 20 * 60_000 }, async () => {
      const r = await runScenario(spec, { seed: options.seed, rows: options.rows, failpointRate: options.failpointRate, ...perScenario }, log);
      results.push(r);
      log(
        `${spec.name}: ${r.kills + r.failpointKills} kills, ${r.rowsChecked} rows checked: lost ${r.lost}, duplicated ${r.duplicated}, mismatched ${r.mismatched}, extra ${r.extra}, parked ${r.parked}, row errors ${r.rowErrors}, converged ${r.converged}, ${r.seconds} s`,
      );
      expect(r.harnessError, r.harnessError).toBeUndefined();
      expect({ lost: r.examples.lost, duplicated: r.examples.duplicated, mismatched: r.examples.mismatched, extra: r.examples.extra }).toEqual({
        lost: [],
        duplicated: [],
        mismatched: [],
        extra: [],
      });
      expect(r.converged, r.incidents.slice(-1)[0]).toBe(true);
    });
  }
});
