#!/usr/bin/env node
// `outflow serve` in production shape: scheduled diff syncs (PostgreSQL tables → the webhook
// emulator) on one runner and on three runners sharing one PostgreSQL ledger, each sync on
// the shortest schedule serve accepts (`every: 1ms`), so its runs follow each other back to
// back. Measured over a window once every sync has delivered its rows: runs per minute and
// what a run costs (counted in the ledger), runner CPU, and the ledger's writes as
// PostgreSQL's own statistics count them.
//   npm run bench -- serve [--seconds=60] [--every=1ms]    BENCH_SMOKE=1: 5 syncs, 5 s a case
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startPostgres } from '@outflow/connector-postgres/testing';
import { start as startWebhook } from '@outflow/connector-webhook/emulator';
import { smoke, writeResults } from './lib.mjs';

const CLI = fileURLToPath(new URL('../apps/runner/dist/cli.js', import.meta.url));
const arg = (name, fallback) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};
const seconds = Number(arg('seconds', smoke ? '5' : '60'));
const every = arg('every', '1ms');
const SYNCS = smoke ? 5 : 50;
const ROWS = 100;
const SCHEMA = 'outflow';
const SECRET = 'bench-serve-hook-secret';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function dbUrl(base, db) {
  const u = new URL(base);
  u.pathname = `/${db}`;
  return u.toString();
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
const TICKS = 100; // USER_HZ: 100 on Linux
function processCpu(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/**
 * CPU seconds PostgreSQL has used: its postmaster's own and that of its children that ended
 * (reaped, so counted in the postmaster's cutime and cstime), and of its children alive now.
 */
function postgresCpu(postmaster) {
  const fieldsOf = (pid) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  };
  const own = fieldsOf(postmaster);
  let ticks = own[11] + own[12] + own[13] + own[14];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const f = fieldsOf(entry);
      if (f[1] === postmaster) ticks += f[11] + f[12];
    } catch {
      // it ended meanwhile: its time is in the postmaster's cutime from now on
    }
  }
  return ticks / TICKS;
}

/** The whole machine's busy and total CPU time, from /proc/stat. */
function machineCpu() {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const n = v.map(Number);
  const idle = n[3] + n[4];
  const total = n.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Starts `outflow serve --port 0` in `cwd`; resolves once it prints where it listens. */
function startServe(cwd, env) {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0'], {
    cwd,
    env: { ...process.env, ...env, OUTFLOW_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err = (err + d).slice(-20_000)));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const listening = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
      if (url) resolve(url);
    });
    void exited.then(({ code }) => reject(new Error(`outflow serve exited ${code} before listening:\n${err}`)));
  });
  return { child, listening, exited, stderr: () => err };
}

/** Runs ended, by status, as one runner's /metrics counts them. */
async function runsCounted(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) if (line.startsWith('outflow_runs_total{')) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  return n;
}

/** Rows the ledger's tables took (inserted + updated + deleted) and its database's commits, as PostgreSQL counts them. */
async function ledgerStats(db, sourceDb) {
  const t = await db.query(
    `SELECT coalesce(sum(n_tup_ins), 0)::bigint AS ins, coalesce(sum(n_tup_upd), 0)::bigint AS upd, coalesce(sum(n_tup_del), 0)::bigint AS del
       FROM pg_stat_user_tables WHERE schemaname = $1`,
    [SCHEMA],
  );
  const d = await db.query(`SELECT xact_commit::bigint AS commits, active_time FROM pg_stat_database WHERE datname = current_database()`);
  const src = await db.query(`SELECT active_time FROM pg_stat_database WHERE datname = $1`, [sourceDb]);
  return {
    tuples: Number(t.rows[0].ins) + Number(t.rows[0].upd) + Number(t.rows[0].del),
    commits: Number(d.rows[0].commits),
    ledgerActiveMs: Number(d.rows[0].active_time),
    sourceActiveMs: Number(src.rows[0].active_time),
  };
}

async function runCase({ server, admin, hook, postmaster, runners, syncs, n }) {
  const srcDb = `bench_src_${n}`;
  const ledgerDb = `bench_ledger_${n}`;
  await admin.query(`CREATE DATABASE ${srcDb}`);
  await admin.query(`CREATE DATABASE ${ledgerDb}`);
  const src = new pg.Client({ connectionString: dbUrl(server.url, srcDb) });
  await src.connect();
  const names = Array.from({ length: syncs }, (_, i) => `s${String(i + 1).padStart(2, '0')}`);
  for (const name of names) {
    await src.query(`CREATE TABLE ${name} (id int PRIMARY KEY, email text NOT NULL, score int NOT NULL)`);
    await src.query(`INSERT INTO ${name} SELECT i, 'user' || i || '@example.com', i % 97 FROM generate_series(1, ${ROWS}) AS i`);
  }
  await src.end();

  // One webhook connection per sync: the syncs writing through one connection run in one
  // runner at a time (its rate budget is per runner), so with a single connection every sync
  // would stay in whichever runner took it first.
  const dir = mkdtempSync(join(os.tmpdir(), 'outflow-bench-serve-'));
  const config = {
    version: 1,
    ledger: { postgres: { url: '${env:BENCH_LEDGER_URL}', schema: SCHEMA } },
    connections: {
      src: { connector: 'postgres', config: { url: '${env:BENCH_SOURCE_URL}' } },
      ...Object.fromEntries(names.map((name) => [`to_${name}`, { connector: 'webhook', config: { url: hook.config.url, secret: '${env:BENCH_HOOK_SECRET}' } }])),
    },
    syncs: names.map((name) => ({
      name,
      from: { connection: 'src', table: name, primaryKey: 'id' },
      schedule: { every },
      to: { connection: `to_${name}`, object: name, mode: 'upsert' },
    })),
  };
  writeFileSync(join(dir, 'outflow.yaml'), JSON.stringify(config, null, 2));
  const env = { BENCH_LEDGER_URL: dbUrl(server.url, ledgerDb), BENCH_SOURCE_URL: dbUrl(server.url, srcDb), BENCH_HOOK_SECRET: SECRET };

  const ledger = new pg.Client({ connectionString: dbUrl(server.url, ledgerDb) });
  await ledger.connect();
  // Every runner starts at once, so none has a head start on the leases.
  const served = Array.from({ length: runners }, () => startServe(dir, env));
  try {
    const urls = await Promise.all(served.map((s) => s.listening));
    // Warm-up: every sync delivered its rows (its first run) and made a run with nothing to send.
    const warmBy = Date.now() + 180_000;
    for (;;) {
      const r = await ledger
        .query(`SELECT count(*)::int AS n FROM (SELECT sync FROM ${SCHEMA}.runs WHERE finished_at IS NOT NULL GROUP BY sync HAVING count(*) >= 2) s`)
        .catch(() => ({ rows: [{ n: 0 }] })); // the ledger's tables do not exist until a runner made them
      if (r.rows[0].n === syncs) break;
      if (Date.now() > warmBy) throw new Error(`after 3 minutes only ${r.rows[0].n} of ${syncs} syncs had run twice:\n${served.map((s) => s.stderr()).join('\n')}`);
      await sleep(200);
    }

    const at = async () => ({
      pgNow: (await ledger.query('SELECT clock_timestamp() AS t')).rows[0].t,
      wall: performance.now(),
      stats: await ledgerStats(ledger, srcDb),
      cpu: served.map((s) => processCpu(s.child.pid)),
      pgCpu: postgresCpu(postmaster),
      machine: machineCpu(),
      self: process.cpuUsage(),
      runs: await Promise.all(urls.map(runsCounted)),
    });
    const a = await at();
    // What the backends working for the source database wait on, sampled through the window.
    const waits = new Map();
    let samples = 0;
    const sampler = setInterval(() => {
      admin
        .query(`SELECT coalesce(wait_event_type || ':' || wait_event, 'running') AS w, count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state = 'active' GROUP BY 1`, [srcDb])
        .then((r) => {
          samples++;
          for (const { w, n } of r.rows) waits.set(w, (waits.get(w) ?? 0) + n);
        })
        .catch(() => undefined);
    }, 250);
    await sleep(seconds * 1000);
    clearInterval(sampler);
    const b = await at();
    const windowS = (b.wall - a.wall) / 1000;

    const runs = (
      await ledger.query(
        `WITH r AS (
           SELECT sync, status, duration_ms, finished_at, inserted + updated + deleted + rejected AS sent,
                  finished_at - lag(finished_at) OVER (PARTITION BY sync ORDER BY id) AS cycle
             FROM ${SCHEMA}.runs WHERE finished_at IS NOT NULL)
         SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
                count(*) FILTER (WHERE status <> 'succeeded')::int AS other,
                count(*) FILTER (WHERE sent > 0)::int AS sent,
                count(DISTINCT sync)::int AS syncs,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS duration_p50,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS duration_p95,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM cycle) * 1000) AS cycle_p50,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM cycle) * 1000) AS cycle_p95
           FROM r WHERE finished_at > $1 AND finished_at <= $2`,
        [a.pgNow, b.pgNow],
      )
    ).rows[0];
    const pgWindowS = (b.pgNow - a.pgNow) / 1000;
    const completed = runs.succeeded;
    const cpu = b.cpu.reduce((s, v, i) => s + v - a.cpu[i], 0);
    const perRunner = b.runs.map((v, i) => v - a.runs[i]);
    const tuples = b.stats.tuples - a.stats.tuples;
    const machineBusy = (b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total);
    const selfCpu = (b.self.user + b.self.system - a.self.user - a.self.system) / 1e6;
    const commits = b.stats.commits - a.stats.commits;
    return {
      runners,
      syncs,
      windowS: Number(windowS.toFixed(1)),
      runsPerMin: Math.round((completed / pgWindowS) * 60),
      runsNotSucceeded: runs.other,
      runsThatSent: runs.sent,
      syncsThatRan: runs.syncs,
      runsByRunner: perRunner.join(' / '),
      runP50Ms: Math.round(runs.duration_p50),
      runP95Ms: Math.round(runs.duration_p95),
      cycleP50Ms: Math.round(runs.cycle_p50),
      cycleP95Ms: Math.round(runs.cycle_p95),
      runnerCpuMsPerRun: Math.round((cpu / Math.max(1, completed)) * 1000),
      runnerCpuCores: Number((cpu / windowS).toFixed(2)),
      postgresCpuMsPerRun: Math.round(((b.pgCpu - a.pgCpu) / Math.max(1, completed)) * 1000),
      postgresCpuCores: Number(((b.pgCpu - a.pgCpu) / windowS).toFixed(2)),
      machineBusyPct: Math.round(machineBusy * 100),
      otherCpuCores: Number(Math.max(0, machineBusy * os.cpus().length - (cpu + b.pgCpu - a.pgCpu) / windowS - selfCpu / windowS).toFixed(2)),
      ledgerRowWritesPerSec: Math.round(tuples / pgWindowS),
      ledgerRowWritesPerRun: Number((tuples / Math.max(1, completed)).toFixed(1)),
      ledgerCommitsPerSec: Math.round(commits / pgWindowS),
      sourceBackendsActive: [...waits]
        .sort((x, y) => y[1] - x[1])
        .slice(0, 4)
        .map(([w, n]) => `${w} ${(n / Math.max(1, samples)).toFixed(1)}`)
        .join(', ') || 'none seen',
      ledgerActiveMsPerRun: Number(((b.stats.ledgerActiveMs - a.stats.ledgerActiveMs) / Math.max(1, completed)).toFixed(1)),
      sourceActiveMsPerRun: Number(((b.stats.sourceActiveMs - a.stats.sourceActiveMs) / Math.max(1, completed)).toFixed(1)),
    };
  } finally {
    for (const s of served) s.child.kill('SIGTERM');
    const ended = await Promise.all(served.map((s) => s.exited));
    for (const [i, e] of ended.entries()) if (e.code !== 130) console.error(`runner ${i + 1} exited ${e.code ?? e.signal} (expected 130):\n${served[i].stderr()}`);
    await ledger.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

const server = await startPostgres();
const admin = new pg.Client({ connectionString: server.url });
await admin.connect();
const dataDir = (await admin.query('SHOW data_directory')).rows[0].data_directory;
const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
const hook = await startWebhook({ secret: SECRET });
const cases = [];
let n = 0;
try {
  for (const [runners, syncs] of [[1, 1], [1, SYNCS], [3, SYNCS]]) {
    const c = await runCase({ server, admin, hook, postmaster, runners, syncs, n: n++ });
    console.log(JSON.stringify(c));
    cases.push(c);
  }
} finally {
  await hook.stop();
  await admin.end();
  await server.stop();
}

const one = cases.find((c) => c.runners === 1 && c.syncs === SYNCS);
const three = cases.find((c) => c.runners === 3);
const ratio = Number((three.runsPerMin / one.runsPerMin).toFixed(2));
writeResults('serve', {
  cases,
  columns: [
    'runners',
    'syncs',
    'runsPerMin',
    'runsByRunner',
    'runP50Ms',
    'runP95Ms',
    'cycleP50Ms',
    'cycleP95Ms',
    'runnerCpuMsPerRun',
    'runnerCpuCores',
    'postgresCpuMsPerRun',
    'postgresCpuCores',
    'machineBusyPct',
    'otherCpuCores',
    'ledgerRowWritesPerSec',
    'ledgerRowWritesPerRun',
    'ledgerCommitsPerSec',
    'ledgerActiveMsPerRun',
    'sourceActiveMsPerRun',
    'runsNotSucceeded',
  ],
  notes: [
    `Runs per minute, ${SYNCS} syncs, 3 runners vs 1 (same run): ${ratio}× (${three.runsPerMin} vs ${one.runsPerMin}); why, in the last notes.`,
    `Each runner is a separate \`outflow serve\` process (the built apps/runner/dist/cli.js) serving every sync of one outflow.yaml, all sharing one PostgreSQL ledger (\`ledger: { postgres: { url, schema: ${SCHEMA} } }\`, in a database of its own). Runners of a case are started at the same moment. Each sync is a diff sync (PostgreSQL source, pushed down, the default) from its own ${ROWS}-row table to the webhook emulator (upsert), with \`schedule: { every: ${every} }\`, the shortest interval serve accepts: each run starts as soon as the one before it ended.`,
    `Each sync writes through a webhook connection of its own: syncs sharing a destination connection run in one runner at a time (the connection's rate budget is per runner), so with one connection for all, a single runner would run every sync.`,
    `Timed: a window of ${seconds} s that starts once every sync has finished two runs (the first delivered its ${ROWS} rows), so every run in the window is a run with nothing to send (runsThatSent in the JSON counts those that sent anything). Not timed: creating the tables, starting PostgreSQL and the runners, the warm-up, stopping.`,
    'runsPerMin: runs that ended succeeded in the window, counted in the ledger (runs.finished_at between two readings of the database clock). runsByRunner: runs each runner ended in the window, from its own /metrics (outflow_runs_total).',
    "runP50Ms/runP95Ms: the ledger's duration of a run (its row's started_at to finished_at: preparing the delivered state, the diff in PostgreSQL, the delivery and the run's ledger records; not taking the sync's and the connection's leases before it). cycleP50Ms/cycleP95Ms: the time from one run's end to the next run's end of the same sync — what a run with nothing to send costs end to end in a running `outflow serve`: scheduling, leases, connections, the diff, the ledger records. The 1-sync case is that cost alone; with 50 syncs it includes waiting for the 2 cores, the runner's 4 ledger connections and the source's advisory lock (below), shared by all runs.",
    'runnerCpuMsPerRun: CPU time (user + system, /proc/<pid>/stat) of the runner processes in the window divided by the runs; runnerCpuCores: that CPU time per second of the window. postgresCpuMsPerRun, postgresCpuCores: the same for the PostgreSQL server (its postmaster, the backends alive, and those that ended, through the postmaster\'s cutime/cstime): the source tables\' diffs and the ledger together. machineBusyPct: the whole machine (/proc/stat); otherCpuCores: what of it was neither the runners, PostgreSQL nor the benchmark process (with the webhook emulator): other work on the shared machine, which slows the figures above when it is not near 0.',
    `ledgerRowWritesPerSec: rows inserted, updated and deleted in the ledger's tables (schema ${SCHEMA}), from PostgreSQL's pg_stat_user_tables (n_tup_ins + n_tup_upd + n_tup_del deltas over the window); ledgerCommitsPerSec: transactions committed in the ledger's database (pg_stat_database.xact_commit), reads included. PostgreSQL publishes a connection's counts at most once a second (later when it is idle), so the window's edges are uncertain by about a second of writes.`,
    "ledgerActiveMsPerRun, sourceActiveMsPerRun: time PostgreSQL's backends spent executing statements (pg_stat_database.active_time) in the ledger's database and in the source tables' database (the pushed-down diff and the delivered state it keeps there), per run; waiting for a core included.",
    "sourceBackendsActive (JSON only): the source database's backends executing a statement, on average over the window (pg_stat_activity sampled every 250 ms), by what they waited on ('running': nothing, or the CPU).",
    `With ${SYNCS} syncs on one runner, the source database's backends busy with a statement were, on average: ${one.sourceBackendsActive}. (Lock:advisory would be the PostgreSQL source's pushed-down diff preparing its delivered state under one advisory lock per state schema: only a run that finds its state tables missing takes it.)`,
    `3 runners: runsByRunner (${three.runsByRunner}) shows where the connection leases went. A runner keeps a connection's lease while the syncs through it keep running, so each sync stays with the runner that ran it first; the others stand by and ask again a third of the lease later (taking a sync over within the lease when its runner is gone): ${three.ledgerCommitsPerSec} ledger commits/s against ${one.ledgerCommitsPerSec} with one runner, ${three.runnerCpuMsPerRun} ms of runner CPU per run against ${one.runnerCpuMsPerRun}. So more runners add availability, not throughput, for syncs that each write through their own connection: spreading connection leases over the live runners is planned.`,
    'PostgreSQL (one server for the source tables and the ledger, fsync off), the webhook emulator (in the benchmark process) and the runners share the 2 cores.',
  ],
});
