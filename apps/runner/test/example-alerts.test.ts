import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Send } from '@outflow/connector-braze/emulator';
import { startPostgres, type TestPostgres } from '@outflow/connector-postgres/testing';
import type { Call } from '@outflow/connector-segment/emulator';
import type { Message } from '@outflow/connector-slack/emulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

// examples/alerts end to end, as a user runs it: `node examples/alerts/run.mjs` seeds an
// orders table, runs `outflow validate` and `outflow run` (three stream syncs into the Slack,
// Segment and Braze sandboxes), writes and pays orders, and stops the runner with SIGTERM.
// What arrived is counted here in each emulator's own log on disk, not in a keyed store.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SCRIPT = join(root, 'examples', 'alerts', 'run.mjs');
const GUARD = join(root, 'packages', 'testing', 'dist', 'network-guard.js');

interface Report {
  runnerExit: number | null;
  runnerStdout: string;
  orders: { id: number; amount: number; paid: boolean; editedWhilePaid: boolean }[];
  problems: string[];
}

let server: TestPostgres;
let url: string;
let dir: string;

beforeAll(async () => {
  server = await startPostgres();
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE example_alerts');
  await admin.end();
  const u = new URL(server.url);
  u.pathname = '/example_alerts';
  url = u.toString();
  dir = tempDir('outflow-example-alerts-');
});

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function runExample(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [SCRIPT, '--dir', dir, '--json'], {
    env: { ...process.env, DATABASE_URL: url, NODE_OPTIONS: existsSync(GUARD) ? `--import ${GUARD}` : '', OUTFLOW_NETWORK_GUARD_EXIT: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

function logOf<T>(connection: string, file: string): T[] {
  const path = join(dir, '.outflow', 'sandbox', connection, file);
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

const sorted = (ids: number[]) => [...ids].sort((a, b) => a - b);

describe('examples/alerts', () => {
  it('alerts Slack for each large new order only, and tracks and emails each paid order once, even when it is edited again while paid', async () => {
    const run = await runExample();
    const last = run.stdout.trim().split('\n').at(-1) ?? '';
    expect(last.startsWith('{'), `the example printed no report (exit ${run.code}):\n${run.stderr}`).toBe(true);
    const report = JSON.parse(last) as Report;

    // The runner was stopped by SIGTERM after a clean drain, each stream recorded as such.
    expect(report.runnerExit).toBe(130);
    for (const sync of ['large-orders-to-slack', 'paid-orders-to-segment', 'paid-order-emails']) {
      expect(report.runnerStdout).toMatch(new RegExp(`^■ ${sync}: \\d+ created, 0 updated, 0 deleted, \\d+ skipped in \\d+\\.\\ds \\(stopped, succeeded\\)$`, 'm'));
    }

    const orders = new Map(report.orders.map((o) => [o.id, o]));
    const large = report.orders.filter((o) => o.amount > 1000).map((o) => o.id);
    const paid = report.orders.filter((o) => o.paid).map((o) => o.id);
    // The scenario has what the checks below need: small and large orders, paid orders
    // edited again while still paid, and orders never paid.
    expect(large.length).toBeGreaterThan(0);
    expect(report.orders.filter((o) => o.amount <= 1000).length).toBeGreaterThan(0);
    expect(report.orders.filter((o) => o.paid && o.editedWhilePaid).length).toBeGreaterThan(0);
    expect(report.orders.filter((o) => !o.paid).length).toBeGreaterThan(0);

    // Slack: one message per large order, in #alerts, none for the others.
    const messages = logOf<Message>('slack', 'slack-messages.jsonl');
    const alerted = messages.map((m) => Number(/#(\d+)/.exec(m.text)?.[1]));
    expect(messages.every((m) => m.channel === 'C0ALERTS')).toBe(true);
    expect(alerted.every((id) => (orders.get(id)?.amount ?? 0) > 1000)).toBe(true);
    expect(sorted(alerted)).toEqual(sorted(large));

    // Segment: the calls it accepted, in order: one Order Completed per paid order.
    const calls = logOf<Call>('segment', 'segment-emulator.jsonl');
    const tracked = calls.filter((c) => c.type === 'track' && c.event === 'Order Completed');
    expect(tracked).toHaveLength(calls.length);
    expect(sorted(tracked.map((c) => Number((c['properties'] as { order_id: string }).order_id)))).toEqual(sorted(paid));
    for (const c of tracked) expect(c).toMatchObject({ userId: expect.stringMatching(/^cust-/), properties: { currency: 'EUR' } });

    // Braze: every recipient of every accepted campaign send: one confirmation per paid order.
    const sends = logOf<Send>('braze', 'braze-sends.jsonl');
    expect(sends.every((s) => s.kind === 'campaign' && s.id === 'sandbox-campaign' && s.sent)).toBe(true);
    expect(sorted(sends.map((s) => Number((s.recipient['trigger_properties'] as { order_id: string }).order_id)))).toEqual(sorted(paid));

    // The example's own check agrees, and it says so by its exit code.
    expect(report.problems).toEqual([]);
    expect(run.code, run.stderr).toBe(0);

    // The example leaves no replication slot (which would hold WAL), publication or table behind.
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      expect((await c.query("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'outflow%'")).rows).toEqual([]);
      expect((await c.query('SELECT pubname FROM pg_publication')).rows).toEqual([]);
      expect((await c.query("SELECT to_regclass('orders') AS t")).rows).toEqual([{ t: null }]);
    } finally {
      await c.end();
    }
  }, 240_000);
});
