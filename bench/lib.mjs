// Shared helpers for benchmarks: result files, a markdown table, CPU and RSS sampling.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

export const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');

/** Writes results/<name>.json (with machine facts) and results/<name>.md (a table of `rows`). */
export function writeResults(name, { cases, columns, notes = [] }) {
  mkdirSync(resultsDir, { recursive: true });
  const machine = { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, totalMemGb: Math.round(os.totalmem() / 2 ** 30) };
  const json = { name, measuredAt: new Date().toISOString(), machine, notes, cases };
  writeFileSync(join(resultsDir, `${name}.json`), JSON.stringify(json, null, 2) + '\n');
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
  writeFileSync(join(resultsDir, `${name}.md`), md);
  console.log(md);
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
