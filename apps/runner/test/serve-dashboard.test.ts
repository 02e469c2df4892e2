import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { startPostgres, type TestPostgres } from '@outflow/connector-postgres/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig } from './helpers.js';
import { startServe } from './serve-helpers.js';

// docs/production.md and what it ships are true to `outflow serve`: every metric of the
// doc's metrics table, and every metric and label the Grafana dashboard in
// docs/grafana/outflow.json queries, is found with those labels (and the documented type)
// in a real /metrics scrape of a runner serving a PostgreSQL stream and a scheduled diff
// into a webhook receiver that answers some requests 429 and rejects a record. The systemd
// unit and the Dockerfile in docs/deploy are shown in the doc as they are, and run
// `outflow serve` only with options its --help lists and its parser accepts.
const SECRET = 'dashboard-hook-secret-2a41';
const DOCS = join(import.meta.dirname, '..', '..', '..', 'docs');
const DASHBOARD = join(DOCS, 'grafana', 'outflow.json');
const PRODUCTION = join(DOCS, 'production.md');
const UNIT = join(DOCS, 'deploy', 'outflow.service');
const DOCKERFILE = join(DOCS, 'deploy', 'Dockerfile');
/** Labels Prometheus gives every series of a scraped target; the runner does not expose them. */
const TARGET_LABELS = new Set(['instance', 'job']);

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
}

let server: TestPostgres;
let receiver: WebhookEmulator;
let dir: string;

beforeAll(async () => {
  server = await startPostgres();
  receiver = await start({ secret: SECRET, faults: { status429Every: 4, rejectKeys: ['7'] } });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE dashboard_src');
  await admin.end();
  const u = new URL(server.url);
  u.pathname = '/dashboard_src';
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  await c.query("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 30) AS i");
  await c.end();
  dir = tempDir('outflow-dashboard-');
  writeConfig(
    dir,
    `version: 1
connections:
  src: { connector: postgres, config: { url: "${u.toString()}" } }
  hooks: { connector: webhook, config: { url: "${receiver.url}", secret: ${SECRET}, batchSize: 5 } }
syncs:
  - name: stream
    from: { connection: src, table: items, primaryKey: id }
    capture: stream
    to: { connection: hooks, object: streamed }
  - name: diff
    from: { connection: src, table: items, primaryKey: id }
    schedule: { every: 2s }
    to: { connection: hooks, object: diffed }
`,
  );
});

afterAll(async () => {
  await receiver?.stop();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Exposed {
  /** Each `# TYPE` line: metric name → type. */
  types: Map<string, string>;
  /** Each sample name (a histogram's `_bucket`, `_sum`, `_count` apart) → the label names its series carry. */
  labels: Map<string, Set<string>>;
}

/** What a Prometheus exposition holds: its metrics' types, and the labels of its samples. */
function exposition(text: string): Exposed {
  const types = new Map<string, string>();
  const labels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (!line || line.startsWith('#')) continue;
    const [, name, body] = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line)!;
    const set = labels.get(name!) ?? new Set<string>();
    for (const m of (body ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) set.add(m[1]!);
    labels.set(name!, set);
  }
  return { types, labels };
}

/** The label names of a metric's series (a histogram's from its `_count`), or undefined when none is exposed. */
function labelsOf(e: Exposed, metric: string): Set<string> | undefined {
  return e.labels.get(metric) ?? (e.types.get(metric) === 'histogram' ? e.labels.get(`${metric}_count`) : undefined);
}

/** The index of the `)` closing the `(` at `open`. */
function closing(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i;
  }
  return text.length;
}

/**
 * What in PromQL expressions the exposition does not have: a metric no series is exposed
 * for; a label matched in a selector (`m{label=…}`), grouped by (`by (label) (… m …)`) or
 * listed (`label_values(m, label)`) that the metric's series do not carry.
 */
function queryProblems(exprs: string[], e: Exposed): string[] {
  const problems: string[] = [];
  const need = (metric: string, label: string, expr: string) => {
    const labels = labelsOf(e, metric);
    if (labels && !labels.has(label)) problems.push(`${metric} has no label "${label}" (in ${expr})`);
  };
  for (const expr of exprs) {
    for (const metric of expr.match(/\boutflow_[a-z0-9_]+/g) ?? []) {
      if (!labelsOf(e, metric)) problems.push(`${metric} is not exposed (in ${expr})`);
    }
    for (const m of expr.matchAll(/\b(outflow_[a-z0-9_]+)\{([^}]*)\}/g)) {
      for (const matcher of m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) need(m[1]!, matcher[1]!, expr);
    }
    for (const m of expr.matchAll(/\bby\s*\(([^)]*)\)\s*\(/g)) {
      const open = m.index + m[0].length - 1;
      const inner = expr.slice(open, closing(expr, open) + 1);
      for (const label of m[1]!.split(',').map((l) => l.trim()).filter((l) => l && !TARGET_LABELS.has(l))) {
        for (const metric of inner.match(/\boutflow_[a-z0-9_]+/g) ?? []) need(metric, label, expr);
      }
    }
    for (const m of expr.matchAll(/label_values\(\s*(outflow_[a-z0-9_]+)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)/g)) need(m[1]!, m[2]!, expr);
  }
  return problems;
}

interface Dashboard {
  title: string;
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { query?: unknown }[] };
}

/** Every PromQL expression of a dashboard: its panels' targets and its query variables. */
function dashboardQueries(d: Dashboard): string[] {
  return [
    ...d.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...d.templating.list.flatMap((v) => (typeof v.query === 'object' && v.query !== null ? [(v.query as { query: string }).query] : [])),
  ];
}

/** The rows of docs/production.md's metrics table: metric, type and label names. */
function documentedMetrics(): { metric: string; type: string; labels: string[] }[] {
  const doc = readFileSync(PRODUCTION, 'utf8');
  const section = doc.slice(doc.indexOf('\n## Metrics\n'), doc.indexOf('\n## ', doc.indexOf('\n## Metrics\n') + 1));
  return section
    .split('\n')
    .filter((l) => l.startsWith('| `outflow_'))
    .map((l) => {
      const [, metric, type, labels] = l.split('|').map((c) => c.trim());
      return { metric: metric!.replaceAll('`', ''), type: type!, labels: [...labels!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!) };
    });
}

/** What the exposition says differently from the doc's table: a metric missing, of another type, or with other labels. */
function tableProblems(rows: ReturnType<typeof documentedMetrics>, e: Exposed): string[] {
  const problems: string[] = [];
  for (const row of rows) {
    const type = e.types.get(row.metric);
    const labels = labelsOf(e, row.metric);
    if (!type || !labels) problems.push(`${row.metric} is not exposed`);
    else {
      if (type !== row.type) problems.push(`${row.metric} is a ${type}, documented as a ${row.type}`);
      const exposedLabels = [...labels].filter((l) => l !== 'le').sort();
      if (exposedLabels.join() !== [...row.labels].sort().join()) problems.push(`${row.metric} has labels ${exposedLabels.join(', ')}, documented ${row.labels.join(', ')}`);
    }
  }
  return problems;
}

describe('docs/production.md and the Grafana dashboard', () => {
  it('name only metrics and labels a real /metrics scrape exposes, of the documented types', async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
    expect(dashboard).toMatchObject({ title: 'Outflow', uid: expect.any(String), schemaVersion: expect.any(Number) });
    expect(dashboard.panels.every((p) => (p.targets ?? []).length > 0)).toBe(true);
    const exprs = dashboardQueries(dashboard);
    expect(new Set(exprs.flatMap((e) => e.match(/\boutflow_[a-z0-9_]+/g) ?? [])).size).toBeGreaterThan(10);
    const table = documentedMetrics();
    expect(table.length).toBeGreaterThanOrEqual(14);

    const served = await startServe([], { cwd: dir });
    try {
      // The stream reports its lag after its first health check (every 30 s); by then every
      // metric the dashboard and the doc name has been reported.
      let problems: string[] = [];
      await expect
        .poll(
          async () => {
            const e = exposition((await served.get('/metrics')).text);
            problems = [...tableProblems(table, e), ...queryProblems(exprs, e)];
            return problems;
          },
          { timeout: 90_000, interval: 1000 },
        )
        .toEqual([]);
      // The series carry data, not only their declarations.
      const text = (await served.get('/metrics')).text;
      for (const series of ['outflow_rate_limited_total{connection="hooks"}', 'outflow_rows_rejected_total{sync="diff"}', 'outflow_stream_lag_bytes{connection="src"']) {
        expect(text, series).toContain(series);
      }

      // The checks see a metric renamed, a label the metric lacks, and a doc row that is wrong.
      const e = exposition(text);
      expect(queryProblems(['sum(rate(outflow_runs_count{sync=~"$sync"}[5m]))'], e)).toEqual([expect.stringContaining('outflow_runs_count is not exposed')]);
      expect(queryProblems(['sum by (connection) (rate(outflow_runs_total[5m]))'], e)).toEqual([expect.stringContaining('outflow_runs_total has no label "connection"')]);
      expect(queryProblems(['max(outflow_parked_rows{op="insert"})'], e)).toEqual([expect.stringContaining('outflow_parked_rows has no label "op"')]);
      expect(tableProblems([{ metric: 'outflow_runs_total', type: 'gauge', labels: ['sync'] }], e)).toEqual([
        'outflow_runs_total is a counter, documented as a gauge',
        'outflow_runs_total has labels status, sync, documented sync',
      ]);
    } finally {
      served.child.kill('SIGTERM');
      await served.done;
    }
  }, 150_000);
});

/** The long options a `--help` output lists under "Options:", with whether each takes a value. */
function helpOptions(help: string): Map<string, boolean> {
  const options = new Map<string, boolean>();
  const section = help.slice(help.indexOf('Options:'));
  for (const m of section.matchAll(/^ {2}(?:-[a-zA-Z], )?(--[a-z][a-z-]*)( <[^>]+>)?/gm)) options.set(m[1]!, m[2] !== undefined);
  return options;
}

/** The flags in `args` that `options` does not list, or that lack the value they take. */
function unknownFlags(args: string[], options: Map<string, boolean>): string[] {
  const wrong: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-')) continue;
    if (!options.has(a)) wrong.push(`${a} is not an option`);
    else if (options.get(a)) {
      if (args[i + 1] === undefined || args[i + 1]!.startsWith('-')) wrong.push(`${a} lacks its value`);
      i++;
    }
  }
  return wrong;
}

describe('the deployment files in docs/deploy', () => {
  const unit = readFileSync(UNIT, 'utf8');
  const dockerfile = readFileSync(DOCKERFILE, 'utf8');
  /** The arguments after the `outflow` program: of the unit's ExecStart, and of the Dockerfile's ENTRYPOINT and CMD. */
  const commands = {
    unit: /^ExecStart=\S+ \S+\/bin\/outflow\.js (.*)$/m.exec(unit)![1]!.trim().split(/\s+/),
    dockerfile: [
      ...(JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[]).slice(2),
      ...(JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[]),
    ],
  };

  it('are shown in docs/production.md as they are', () => {
    const doc = readFileSync(PRODUCTION, 'utf8');
    expect(doc).toContain(`\`\`\`ini\n${unit}\`\`\``);
    expect(doc).toContain(`\`\`\`dockerfile\n${dockerfile}\`\`\``);
    expect(dockerfile).toMatch(/^FROM node:20-slim$/m);
  });

  it('start `outflow serve` with options its --help lists and its parser accepts', async () => {
    const cwd = tempDir('outflow-deploy-');
    try {
      const global = helpOptions((await runCli(['--help'], { cwd })).stdout);
      const serve = helpOptions((await runCli(['serve', '--help'], { cwd })).stdout);
      expect(serve.has('--lease') && serve.has('--port') && global.has('--config')).toBe(true);
      for (const [file, args] of Object.entries(commands)) {
        const at = args.indexOf('serve');
        expect(at, file).toBeGreaterThanOrEqual(0);
        expect([...unknownFlags(args.slice(0, at), global), ...unknownFlags(args.slice(at + 1), serve)], file).toEqual([]);
        // With a config file that is not there, the options are parsed and then the file is
        // looked for: the error names the file, not an option.
        const missing = join(cwd, 'absent', 'outflow.yaml');
        const run = await runCli(args.map((a, i) => (args[i - 1] === '--config' ? missing : a)), { cwd });
        expect(run.code, `${file}: ${run.stderr}`).toBe(2);
        expect(run.stderr, file).toContain(`OUTFLOW_CONFIG_NOT_FOUND: configuration file ${missing}`);
        expect(run.stderr, file).not.toMatch(/unknown option|is invalid|missing required argument|Usage:/);
      }
      // The check reads flags: one serve does not have is refused.
      expect(unknownFlags(['--listen', '0.0.0.0:8730'], serve)).toEqual(['--listen is not an option']);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
