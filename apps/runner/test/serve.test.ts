import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir, writeConfig, writeCustomers } from './helpers.js';
import { metric, startServe, type Served } from './serve-helpers.js';

// `outflow serve` as a user runs it: the built CLI in a child process, its HTTP API, and a
// webhook receiver in this process whose own log counts what was written.
const SECRET = 'serve-hook-secret-6c1f0b';

let receiver: WebhookEmulator;
const dirs: string[] = [];

beforeAll(async () => {
  receiver = await start({ secret: SECRET });
});

afterAll(async () => {
  await receiver?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A folder with `n` customers and an outflow.yaml syncing them to the receiver as `object`. */
function project(n: number, object: string, schedule = ''): string {
  const dir = tempDir('outflow-serve-');
  dirs.push(dir);
  writeCustomers(dir, n);
  writeConfig(
    dir,
    `version: 1
connections:
  warehouse: { connector: duckdb }
  hooks: { connector: webhook, config: { url: "${receiver.url}", secret: "\${env:HOOK_SECRET}" } }
syncs:
  - name: customers
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
${schedule}    to: { connection: hooks, object: ${object} }
`,
  );
  return dir;
}

const env = { HOOK_SECRET: SECRET };

/** How many records the receiver created per key of `object`, from its own write log. */
function created(object: string): Map<string, number> {
  const n = new Map<string, number>();
  for (const w of receiver.writes(object)) if (w.t === 'put' && w.created) n.set(w.key, (n.get(w.key) ?? 0) + 1);
  return n;
}

interface RunView {
  id: string;
  status: string;
  runId?: number;
  inserted?: number;
  updated?: number;
}

async function finished(served: Served, id: string): Promise<RunView> {
  let run: RunView | undefined;
  await expect
    .poll(
      async () => {
        run = (await served.get(`/syncs/customers/runs/${id}`)).body as RunView;
        return run.status;
      },
      { timeout: 60_000, interval: 200 },
    )
    .toMatch(/^(succeeded|partial|failed|aborted)$/);
  return run!;
}

describe('outflow serve', () => {
  it('runs a diff sync when asked: POST gives a run id, polling it shows the run and its counts', async () => {
    const dir = project(25, 'asked');
    const served = await startServe([], { cwd: dir, env });
    try {
      expect((await served.get('/healthz')).status).toBe(200);
      await expect.poll(async () => (await served.get('/readyz')).status, { timeout: 30_000 }).toBe(200);
      // No schedule: nothing runs until asked.
      expect(served.output()).toContain('customers: no schedule set; it runs only when asked');

      const asked = await served.post('/syncs/customers/runs');
      expect(asked.status).toBe(202);
      const { id } = asked.body as RunView;
      const run = await finished(served, id);
      expect(run).toMatchObject({ status: 'succeeded', inserted: 25, runId: 1 });
      const counts = created('asked');
      expect(counts.size).toBe(25);
      expect([...counts.values()].every((c) => c === 1)).toBe(true);

      // A second run sends nothing: every row was delivered once.
      const again = await finished(served, ((await served.post('/syncs/customers/runs')).body as RunView).id);
      expect(again).toMatchObject({ status: 'succeeded', inserted: 0, updated: 0, runId: 2 });
      expect(receiver.writes('asked')).toHaveLength(25);

      const metrics = (await served.get('/metrics')).text;
      expect(metric(metrics, 'outflow_rows_delivered_total{sync="customers",op="insert"}')).toBe(25);
      expect(metric(metrics, 'outflow_runs_total{sync="customers",status="succeeded"}')).toBe(2);
      expect(metric(metrics, 'outflow_run_duration_seconds_count{sync="customers",capture="diff",status="succeeded"}')).toBe(2);
      expect(metric(metrics, 'outflow_parked_rows{sync="customers"}')).toBe(0);
      expect(metric(metrics, 'outflow_last_success_timestamp_seconds{sync="customers"}')).toBeGreaterThan(0);
      // The webhook destination draws one request per write from its connection's budget.
      expect(metric(metrics, 'outflow_rate_budget_requests_total{connection="hooks"}')).toBeGreaterThan(0);
      for (const text of [metrics, served.output(), JSON.stringify((await served.get('/syncs')).body)]) expect(text).not.toContain(SECRET);
    } finally {
      served.child.kill('SIGTERM');
      expect((await served.done).code).toBe(130);
    }
  });

  it('answers what it cannot do with a status and a reason', async () => {
    const dir = project(3, 'refused');
    const served = await startServe([], { cwd: dir, env });
    try {
      const unknown = await served.post('/syncs/nope/runs');
      expect(unknown.status).toBe(404);
      expect(JSON.stringify(unknown.body)).toContain('no sync named \\"nope\\" is served here (syncs: customers)');
      // A change without a JSON content type (what a page on another site could send) is refused.
      const plain = await fetch(`${served.url}/syncs/customers/runs`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } });
      expect(plain.status).toBe(415);
      expect((await served.get('/syncs/customers/runs/no-such-id')).status).toBe(404);
      // The status page is mounted beside the API, and a form posted to an action is its.
      const page = await served.get('/');
      expect(page.status).toBe(200);
      expect(page.text).toContain('customers');
      const form = await fetch(`${served.url}/syncs/customers/pause`, {
        method: 'POST',
        body: 'back=/',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        redirect: 'manual',
      });
      expect(form.status).toBe(303);
      expect((await served.get('/syncs')).body).toMatchObject({ syncs: [{ name: 'customers', state: 'paused' }] });
      // Nothing ran.
      expect(receiver.writes('refused')).toHaveLength(0);
    } finally {
      served.child.kill('SIGTERM');
      await served.done;
    }
  });

  it('runs a diff sync on its interval; a paused sync starts no run until resumed', async () => {
    const dir = project(10, 'scheduled', '    schedule: { every: 1s }\n');
    const served = await startServe([], { cwd: dir, env });
    const lastRunId = async () => {
      const [sync] = ((await served.get('/syncs')).body as { syncs: { lastRun?: { id: number; status: string }; state: string; nextRunAt?: string }[] }).syncs;
      return sync!.lastRun?.status === 'running' ? 0 : (sync!.lastRun?.id ?? 0);
    };
    try {
      // Two runs nobody asked for: the schedule works.
      await expect.poll(lastRunId, { timeout: 60_000, interval: 200 }).toBeGreaterThanOrEqual(2);
      expect(created('scheduled').size).toBe(10);

      expect((await served.post('/syncs/customers/pause')).body).toMatchObject({ message: expect.stringMatching(/^customers paused/) });
      await expect.poll(async () => (await served.get('/syncs')).body, { timeout: 30_000 }).toMatchObject({ syncs: [{ state: 'paused' }] });
      const paused = (await served.get('/syncs')).body as { syncs: { nextRunAt?: string }[] };
      expect(paused.syncs[0]!.nextRunAt).toBeUndefined();
      expect(metric((await served.get('/metrics')).text, 'outflow_sync_paused{sync="customers"}')).toBe(1);
      const before = await lastRunId();

      expect((await served.post('/syncs/customers/resume')).body).toEqual({ message: 'customers resumed.' });
      await expect.poll(lastRunId, { timeout: 60_000, interval: 200 }).toBeGreaterThan(before);
      // Every scheduled run after the first sent nothing again.
      expect([...created('scheduled').values()].every((c) => c === 1)).toBe(true);
    } finally {
      served.child.kill('SIGTERM');
      expect((await served.done).code).toBe(130);
    }
    // SIGTERM drained and recorded every run: none is left running.
    const ledger = openSqliteLedger(join(dir, '.outflow'));
    try {
      const runs = await ledger.listRuns({ sync: 'customers' });
      expect(runs.length).toBeGreaterThanOrEqual(3);
      expect(runs.filter((r) => r.status === 'running')).toEqual([]);
      expect(await ledger.leaseHolder('customers')).toBeUndefined();
    } finally {
      await ledger.close();
    }
  });

  it('refuses a cron expression it cannot read before starting anything (exit 2)', async () => {
    const dir = project(3, 'bad-cron', '    schedule: { cron: "61 * * * *" }\n');
    const r = await runCli(['serve', '--port', '0'], { cwd: dir, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/outflow\.yaml: sync "customers" schedule: cannot read cron "61 \* \* \* \*" \(timezone UTC\)/);
    expect(r.stdout).not.toContain('listening');
  });
});
