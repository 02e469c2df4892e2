// Shared helpers for benchmarks: result files, a markdown table, CPU and RSS sampling, and
// an engine wired as the runner wires one.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

export const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');

/**
 * `BENCH_SMOKE=1` (or `npm run bench -- <name> --smoke`): {@link writeResults} prints its
 * table without writing results/, and hubspot, snowflake and stream run tiny sizes to prove
 * they still work (diff keeps its sizes: pass it small `--sizes=`).
 */
export const smoke = process.env.BENCH_SMOKE === '1';

/**
 * Writes results/<name>.json (with machine facts) and results/<name>.md (a table of `rows`);
 * in a smoke run, only prints the table.
 */
export function writeResults(name, { cases, columns, notes = [] }) {
  const machine = { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, totalMemGb: Math.round(os.totalmem() / 2 ** 30) };
  const json = { name, measuredAt: new Date().toISOString(), machine, notes, cases };
  const cols = columns ?? Object.keys(cases[0] ?? {});
  const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 3 : 1)) : v === undefined || v === null ? '—' : String(v));
  const md = [
    `# ${name} benchmark`,
    '',
    `Measured ${json.measuredAt} on Node ${machine.node}, ${machine.cpus} cores (${machine.cpuModel}).`,
    '',
    `| ${cols.join(' | ')} |`,
    `| ${cols.map(() => '---').join(' | ')} |`,
    ...cases.map((c) => `| ${cols.map((k) => fmt(c[k])).join(' | ')} |`),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
  if (smoke) {
    console.log(`${md}\n(smoke run: sizes too small to mean anything; results/${name}.* not written)`);
    return;
  }
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${name}.json`), JSON.stringify(json, null, 2) + '\n');
  writeFileSync(join(resultsDir, `${name}.md`), md);
  console.log(md);
}

/**
 * An engine as the runner wires one: a SQLite ledger and the embedded DuckDB delivered state
 * in a fresh temp folder, removed by `close()`. `connections` maps names to
 * `{ connector, config }`. (Imported lazily, so benchmarks that need no engine load none.)
 */
export async function benchEngine(connections, options = {}) {
  const [{ createEngine }, { openSqliteLedger }, { duckdbStateStore }] = await Promise.all([
    import('@outflow/core'),
    import('@outflow/ledger-sqlite'),
    import('@outflow/state-duckdb'),
  ]);
  const dir = mkdtempSync(join(os.tmpdir(), 'outflow-bench-'));
  const ledger = openSqliteLedger(dir);
  const engine = createEngine({ config: { connections, syncs: [] }, ledger, stateStore: duckdbStateStore({ dir }), stateDir: dir, ...options });
  return {
    engine,
    ledger,
    async close() {
      await engine.close();
      await ledger.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Samples this process's RSS every `ms`; returns { stop(): peakMb }. */
export function rssSampler(ms = 50) {
  let peak = process.memoryUsage.rss();
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), ms);
  return {
    stop() {
      clearInterval(t);
      peak = Math.max(peak, process.memoryUsage.rss());
      return peak / 2 ** 20;
    },
  };
}

/** CPU seconds (user + system) used by this process since `since` (a process.cpuUsage()). */
export function cpuSeconds(since) {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/**
 * Runs a PostgreSQL stream sync and resolves once its replication slot (named like
 * `slotLike`) is active, with the run's promise as `running`; fails if the run ends before that.
 */
export async function streamUntilSlotActive(engine, admin, sync, slotLike) {
  let ended;
  const running = engine.run(sync).then((summary) => (ended = summary));
  for (;;) {
    if (ended) throw new Error(`the stream sync ended before its slot was active: ${ended.status} ${ended.error?.message ?? ''}`);
    const r = await admin.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name LIKE $1 AND active_pid IS NOT NULL`, [slotLike]);
    if (r.rows.length) return { running };
    await new Promise((res) => setTimeout(res, 20));
  }
}
