import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { client, createDatabase, eventually } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = join(root, 'apps', 'runner', 'dist', 'cli.js');
const GUARD = join(root, 'packages', 'testing', 'dist', 'network-guard.js');
const BUILT = join(root, 'connectors', 'postgres', 'dist', 'index.js');

type Order = { id: number; status: string; amount: string; rev: number };

let db: pg.Client;
let dest: pg.Client;
let url: string;
let destUrl: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  for (const file of [CLI, BUILT]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: build first (\`npm run build\`, or \`npx tsc -b apps/runner connectors/postgres\`)`);
  }
  url = await createDatabase('crash_src');
  destUrl = await createDatabase('crash_dst');
  db = await client(url);
  dest = await client(destUrl);
  await db.query('CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric(12,2), rev int NOT NULL)');
  await db.query(`INSERT INTO orders SELECT i, 'new', i * 1.25, 0 FROM generate_series(1, 2000) AS i`);
  await dest.query('CREATE TABLE orders_copy (id int PRIMARY KEY, status text, amount numeric(12,2), rev int)');
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await db?.end();
  await dest?.end();
});

function startRunner(dir: string): { child: ChildProcess; exited: Promise<void>; output: () => string } {
  const child = spawn(process.execPath, [CLI, 'run', '--json'], {
    cwd: dir,
    env: { ...process.env, NODE_OPTIONS: existsSync(GUARD) ? `--import ${GUARD}` : '', OUTFLOW_NETWORK_GUARD_EXIT: '1', OUTFLOW_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return { child, exited, output: () => output };
}

/** Keeps changing the source in small transactions until stopped: inserts, updates and deletes. */
function load(): { stop(): Promise<number> } {
  let running = true;
  let txns = 0;
  const done = (async () => {
    let next = 10_000;
    while (running) {
      const id = 1 + Math.floor(Math.random() * 2000);
      await db.query('BEGIN');
      await db.query(`UPDATE orders SET rev = rev + 1, status = 'paid' WHERE id BETWEEN $1 AND $1 + 9`, [id]);
      await db.query(`INSERT INTO orders VALUES ($1, 'new', 9.99, 0), ($1 + 1, 'new', 1.00, 0)`, [next]);
      await db.query(`DELETE FROM orders WHERE id = $1`, [next - 7]);
      await db.query('COMMIT');
      next += 2;
      txns++;
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return txns;
    },
  };
}

async function rows(c: pg.Client, table: string): Promise<Order[]> {
  return (await c.query<Order>(`SELECT id, status, amount, rev FROM ${table} ORDER BY id`)).rows;
}

it('loses nothing and duplicates nothing when the runner is killed with SIGKILL while streaming under load', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'outflow-pg-crash-'));
  writeFileSync(
    join(dir, 'outflow.yaml'),
    `version: 1
connections:
  src: { connector: postgres, config: { url: "${url}" } }
  dst: { connector: postgres, config: { url: "${destUrl}" } }
syncs:
  - name: orders-copy
    from: { connection: src, table: orders, primaryKey: id }
    capture: stream
    to: { connection: dst, object: orders_copy, mode: upsert, deletes: delete }
`,
  );
  const first = startRunner(dir);
  await eventually(async () => (await rows(dest, 'orders_copy')).length >= 2000, `the backfill (runner output: ${first.output().slice(-500)})`, 60_000);
  const generator = load();
  // Let the stream carry changes under load, then kill the runner without warning.
  const seen = (await dest.query<{ n: string }>('SELECT count(*) AS n FROM orders_copy WHERE rev > 0')).rows[0]!.n;
  await eventually(async () => Number((await dest.query<{ n: string }>('SELECT count(*) AS n FROM orders_copy WHERE rev > 0')).rows[0]!.n) > Number(seen) + 50, 'changes under load');
  first.child.kill('SIGKILL');
  await first.exited;
  // The load goes on while nothing streams; then a new runner resumes from the ledger.
  await new Promise((r) => setTimeout(r, 300));
  const second = startRunner(dir);
  await new Promise((r) => setTimeout(r, 1000));
  const txns = await generator.stop();
  expect(txns).toBeGreaterThan(20);
  const want = await rows(db, 'orders');
  await eventually(async () => JSON.stringify(await rows(dest, 'orders_copy')) === JSON.stringify(want), `the copy to equal the source (runner output: ${second.output().slice(-800)})`, 60_000);
  second.child.kill('SIGTERM');
  await second.exited;
  const got = await rows(dest, 'orders_copy');
  expect(got.length).toBe(want.length);
  expect(new Set(got.map((r) => r.id)).size).toBe(got.length);
  expect(got).toEqual(want);
});
