#!/usr/bin/env node
// The alerts example end to end: an orders table in PostgreSQL, `outflow run` streaming it
// into the Slack, Segment and Braze sandboxes, orders written and paid, and what arrived at
// each emulator, with the time from commit to arrival.
//
//   node examples/alerts/run.mjs [--dir <folder>] [--json]
//
// DATABASE_URL (a database without an `orders` table, on a server with wal_level=logical):
// used when set; the table, replication slots and publications the example creates are
// dropped at the end. Otherwise a throwaway PostgreSQL is started and removed at the end.
// --dir: the working folder, new or empty (outflow.yaml, .outflow/ with the sandboxes' logs, runner.log),
// kept afterwards; by default a temporary one, removed. --json: one JSON report on stdout.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { streamName } from '@outflow/connector-postgres';
import { startPostgres } from '@outflow/connector-postgres/testing';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = join(here, '..', '..', 'apps', 'runner', 'dist', 'cli.js');
const SYNCS = { slack: 'large-orders-to-slack', segment: 'paid-orders-to-segment', braze: 'paid-order-emails' };
const THRESHOLD = 1000;

const argv = process.argv.slice(2);
const json = argv.includes('--json');
const dirArg = argv.includes('--dir') ? argv[argv.indexOf('--dir') + 1] : undefined;
const say = (line = '') => {
  if (!json) process.stdout.write(line + '\n');
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Something the example cannot go on with, said in one line. */
class Problem extends Error {}

if (dirArg && existsSync(join(resolve(dirArg), '.outflow'))) {
  console.error(`${resolve(dirArg)} already holds a .outflow folder from an earlier run: give --dir an empty or new folder`);
  process.exit(2);
}
if (!existsSync(CLI)) {
  console.error(`${CLI} is missing: run \`npm run build\` at the repository root first`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------
// PostgreSQL, the working folder, the seed
// ---------------------------------------------------------------------------------------

let server;
let url = process.env.DATABASE_URL;
if (!url) {
  const pg15 = '/usr/lib/postgresql/15/bin';
  server = await startPostgres(existsSync(pg15) ? { binDir: pg15 } : {});
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE shop');
  await admin.end();
  const u = new URL(server.url);
  u.pathname = '/shop';
  url = u.toString();
  say(`PostgreSQL: a throwaway server (wal_level=logical) on ${u.host}, database shop`);
} else {
  say(`PostgreSQL: DATABASE_URL`);
}

const db = new pg.Client({ connectionString: url });
await db.connect();
const dir = dirArg ? resolve(dirArg) : mkdtempSync(join(tmpdir(), 'outflow-alerts-'));
let runner;
let created = false;
let exitCode = 0;

try {
  const { rows: wal } = await db.query('SHOW wal_level');
  if (wal[0].wal_level !== 'logical') throw new Problem(`the server's wal_level is ${wal[0].wal_level}: logical replication needs wal_level=logical (set it and restart PostgreSQL)`);
  const { rows: existing } = await db.query("SELECT to_regclass('orders') IS NOT NULL AS taken");
  if (existing[0].taken) throw new Problem('the database already has an orders table: point DATABASE_URL at an empty database (e.g. createdb outflow_alerts)');
  await db.query(readFileSync(join(here, 'seed.sql'), 'utf8'));
  created = true;
  const { rows: database } = await db.query('SELECT current_database() AS name');
  const slots = Object.values(SYNCS).map((sync) => streamName(database[0].name, 'shop', 'public', 'orders', sync));

  mkdirSync(dir, { recursive: true });
  copyFileSync(join(here, 'outflow.yaml'), join(dir, 'outflow.yaml'));
  const env = { ...process.env, DATABASE_URL: url, OUTFLOW_LOG_LEVEL: process.env.OUTFLOW_LOG_LEVEL ?? 'warn' };
  say(`Working folder: ${dir}${dirArg ? '' : ' (removed at the end)'}`);
  say('Seeded 10 orders (seed.sql).');

  // -------------------------------------------------------------------------------------
  // outflow validate, then outflow run in the background
  // -------------------------------------------------------------------------------------

  const validate = spawnSync(process.execPath, [CLI, 'validate'], { cwd: dir, env, encoding: 'utf8' });
  say(`\n$ outflow validate\n${(validate.stdout + validate.stderr).trim()}`);
  if (validate.status !== 0) throw new Problem(`outflow validate exited with ${validate.status}`);

  say('\n$ outflow run   (in the background; its log goes to runner.log)');
  runner = startRunner(dir, env);
  await waitFor('the three replication slots to be streaming', 60_000, async () => {
    if (runner.exited) throw new Problem(`outflow run exited with ${runner.exited.code} before streaming:\n${runner.stderr.trim()}`);
    const { rows } = await db.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = ANY($1) AND active_pid IS NOT NULL', [slots]);
    return rows[0].n === slots.length;
  });

  // -------------------------------------------------------------------------------------
  // The orders: each change its own transaction, its commit time taken when COMMIT returns
  // -------------------------------------------------------------------------------------

  const orders = new Map(); // id → { amount, insertedAt, paidAt, editedWhilePaid }
  const commit = async (sql, params) => {
    const r = await db.query(sql, params);
    return { rows: r.rows, at: Date.now() };
  };
  // 30 new orders, 200 ms apart; every sixth (the 3rd, 9th, …) is above the threshold:
  // Slack gets one alert about every 1.2 s, within its one message a second per channel.
  for (let i = 0; i < 30; i++) {
    const amount = i % 6 === 2 ? THRESHOLD + 150 + i * 10 : 25 + ((i * 37) % 900);
    const { rows, at } = await commit("INSERT INTO orders (customer_id, email, amount) VALUES ($1, $2, $3) RETURNING id", [`cust-${100 + i}`, `buyer${100 + i}@example.com`, amount]);
    orders.set(rows[0].id, { amount, insertedAt: at });
    await sleep(200);
  }
  say('Inserted 30 orders, 5 of them above 1,000 EUR.');
  // 20 of them paid, and two of the seeded pending orders (ids 1 and 3).
  const toPay = [...[...orders.keys()].filter((_, i) => i % 3 !== 1), 1, 3];
  for (const id of toPay) {
    const { rows, at } = await commit("UPDATE orders SET status = 'paid' WHERE id = $1 RETURNING amount", [id]);
    const order = orders.get(id) ?? { amount: rows[0].amount };
    orders.set(id, { ...order, paidAt: at });
    await sleep(50);
  }
  say(`Paid ${toPay.length} orders (2 of them seeded).`);
  // Edits that cross nothing: paid orders edited while still paid (and a seeded paid one),
  // pending orders edited. None of them may send anything.
  const paidAgain = [...toPay.slice(0, 8), 2];
  for (const id of paidAgain) {
    await commit("UPDATE orders SET note = 'gift wrapped' WHERE id = $1", [id]);
    if (orders.has(id)) orders.get(id).editedWhilePaid = true;
    else orders.set(id, { amount: (await db.query('SELECT amount FROM orders WHERE id = $1', [id])).rows[0].amount, editedWhilePaid: true, seededPaid: true });
  }
  const pendingEdited = [...orders.keys()].filter((id) => orders.get(id).paidAt === undefined && !orders.get(id).seededPaid).slice(0, 3);
  for (const id of pendingEdited) await commit("UPDATE orders SET note = 'called the customer' WHERE id = $1", [id]);
  say(`Edited ${paidAgain.length} paid orders while they stayed paid, and ${pendingEdited.length} pending ones.`);

  // -------------------------------------------------------------------------------------
  // What arrived, read from each emulator's own log in .outflow/sandbox/<connection>/
  // -------------------------------------------------------------------------------------

  const large = [...orders].filter(([, o]) => o.insertedAt !== undefined && o.amount > THRESHOLD).map(([id]) => id);
  const paid = [...orders].filter(([, o]) => o.paidAt !== undefined).map(([id]) => id);
  const expected = { slack: large.length, segment: paid.length, braze: paid.length };
  await waitFor('every event to arrive', 120_000, () => {
    if (runner.exited) throw new Problem(`outflow run exited with ${runner.exited.code}:\n${runner.stderr.trim()}`);
    const got = arrived(dir);
    return got.slack.length >= expected.slack && got.segment.length >= expected.segment && got.braze.length >= expected.braze;
  });
  // A late second event would land now: give the streams a moment, then stop the runner,
  // which finishes the batches in flight first.
  await sleep(2_000);
  runner.child.kill('SIGTERM');
  const exited = await runner.done;
  say(`\nSIGTERM → outflow run exited with ${exited.code}${exited.code === 130 ? ' (stopped by a signal, after finishing what was in flight)' : ''}`);
  for (const line of runner.stdout.trim().split('\n').filter(Boolean)) say(`  ${line}`);

  const got = arrived(dir);
  const latency = (events, sentFor) => {
    const ms = events.flatMap((e) => {
      const t = sentFor(e.order);
      return t === undefined ? [] : [e.at - t];
    });
    ms.sort((a, b) => a - b);
    return { p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms.at(-1) };
  };
  const report = {
    dir,
    runnerExit: exited.code,
    runnerStdout: runner.stdout,
    orders: [...orders].map(([id, o]) => ({ id, amount: o.amount, paid: o.paidAt !== undefined, editedWhilePaid: o.editedWhilePaid === true })),
    destinations: {
      slack: { expected: expected.slack, arrived: got.slack.length, orders: got.slack.map((e) => e.order), latencyMs: latency(got.slack, (id) => orders.get(id)?.insertedAt) },
      segment: { expected: expected.segment, arrived: got.segment.length, orders: got.segment.map((e) => e.order), latencyMs: latency(got.segment, (id) => orders.get(id)?.paidAt) },
      braze: { expected: expected.braze, arrived: got.braze.length, orders: got.braze.map((e) => e.order), latencyMs: latency(got.braze, (id) => orders.get(id)?.paidAt) },
    },
  };
  const problems = check(report, large, paid);
  if (exited.code !== 130) problems.push(`outflow run exited with ${exited.code}, not 130 (stopped by SIGTERM after a clean drain)`);
  report.problems = problems;

  say('\nWhat arrived at each sandbox (counted in its own log), and the time from COMMIT returning to the emulator receiving the event:');
  const rows = [
    ['destination', 'trigger', 'events', 'expected', 'p50 ms', 'p99 ms', 'max ms'],
    ...[
      ['slack', 'Slack #alerts', `large-order (amount > ${THRESHOLD}, on insert)`],
      ['segment', 'Segment track', 'order-completed (becomes paid)'],
      ['braze', 'Braze campaign', 'order-confirmation (becomes paid)'],
    ].map(([k, name, trigger]) => {
      const d = report.destinations[k];
      return [name, trigger, String(d.arrived), String(d.expected), fmt(d.latencyMs.p50), fmt(d.latencyMs.p99), fmt(d.latencyMs.max)];
    }),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) say('  ' + r.map((v, c) => (c >= 2 ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join('  '));
  say(problems.length ? `\nProblems:\n${problems.map((p) => `  - ${p}`).join('\n')}` : '\nEach large order alerted once, each paid order tracked and emailed once; edits of paid orders sent nothing.');
  if (json) process.stdout.write(JSON.stringify(report) + '\n');
  exitCode = problems.length ? 1 : 0;
} catch (err) {
  exitCode = 1;
  console.error(err instanceof Problem ? `alerts example: ${err.message}` : err);
  if (runner) console.error(`(the runner's log: ${join(dir, 'runner.log')})`);
} finally {
  if (runner && !runner.exited) {
    runner.child.kill('SIGKILL');
    await runner.done;
  }
  if (created && !server) await dropWhatWeMade(db).catch((err) => console.error(`could not remove the example's table, slots and publications: ${err.message}`));
  await db.end();
  await server?.stop();
  if (!dirArg) rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);

// ---------------------------------------------------------------------------------------

/** `outflow run` as a child process, its stderr (status lines, warnings) kept in runner.log. */
function startRunner(cwd, env) {
  const r = { stdout: '', stderr: '', exited: undefined };
  r.child = spawn(process.execPath, [CLI, 'run'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  r.child.stdout.on('data', (d) => (r.stdout += d));
  r.child.stderr.on('data', (d) => {
    r.stderr += d;
    writeFileSync(join(cwd, 'runner.log'), r.stderr);
  });
  r.done = new Promise((done) => r.child.on('close', (code, signal) => done((r.exited = { code, signal }))));
  return r;
}

async function waitFor(what, ms, ready) {
  const deadline = Date.now() + ms;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Problem(`gave up waiting ${ms / 1000}s for ${what}`);
    await sleep(25);
  }
}

/** JSON-lines entries of a sandbox log (none yet when the file is missing). */
function lines(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

/**
 * Each event the emulators took, with its order and when the emulator received it: a Slack
 * message's `ts` (the time Slack posted it), a Segment call's `receivedAt`, a Braze send's `at`.
 */
function arrived(folder) {
  const sandbox = (connection, file) => lines(join(folder, '.outflow', 'sandbox', connection, file));
  return {
    slack: sandbox('slack', 'slack-messages.jsonl').map((m) => ({ order: Number(/#(\d+)/.exec(m.text)?.[1]), at: Number(m.ts) * 1000 })),
    segment: sandbox('segment', 'segment-emulator.jsonl')
      .filter((c) => c.type === 'track' && c.event === 'Order Completed')
      .map((c) => ({ order: Number(c.properties.order_id), at: Date.parse(c.receivedAt) })),
    braze: sandbox('braze', 'braze-sends.jsonl')
      .filter((s) => s.kind === 'campaign')
      .map((s) => ({ order: Number(s.recipient.trigger_properties.order_id), at: s.at, sent: s.sent })),
  };
}

/** What a user would call wrong: a missing, extra or repeated event. */
function check(report, large, paid) {
  const problems = [];
  const same = (name, got, want) => {
    const sorted = (xs) => [...xs].sort((a, b) => a - b).join(',');
    if (sorted(got) !== sorted(want)) problems.push(`${name}: events for orders [${sorted(got)}], expected one each for [${sorted(want)}]`);
  };
  same('Slack', report.destinations.slack.orders, large);
  same('Segment', report.destinations.segment.orders, paid);
  same('Braze', report.destinations.braze.orders, paid);
  return problems;
}

function percentile(sorted, p) {
  if (!sorted.length) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function fmt(ms) {
  return ms === undefined || Number.isNaN(ms) ? '—' : String(Math.round(ms));
}

/** Drops the orders table and the replication slots and publications of the example's syncs. */
async function dropWhatWeMade(client) {
  const { rows } = await client.query('SELECT current_database() AS name');
  for (const sync of Object.values(SYNCS)) {
    const name = streamName(rows[0].name, 'shop', 'public', 'orders', sync);
    await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [name]);
    await client.query(`DROP PUBLICATION IF EXISTS "${name}"`);
  }
  await client.query('DROP TABLE IF EXISTS orders');
}
