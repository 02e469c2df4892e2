#!/usr/bin/env node
// Postgres logical-replication streaming: changes offered at 1k/s and 5k/s for 30 s, and as
// fast as one writer can commit, into the webhook emulator and into a Postgres table.
// Latency is source write → destination acknowledgement, per change, from a timestamp the
// load generator writes into each row (same machine clock). The load generator and the
// webhook receiver run in child processes, so CPU and RSS are the streaming process's own.
//   npm run bench -- stream [--seconds=30] [--targets=webhook,postgres] [--rates=1000,5000,0]
//   (rate 0: as fast as one writer commits)      BENCH_SMOKE=1: 2 s a case, writes nothing
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import postgres from '@outflow/connector-postgres';
import { startPostgres } from '@outflow/connector-postgres/testing';
import webhook from '@outflow/connector-webhook';
import { defineConnector } from '@outflow/core';
import { benchEngine, cpuSeconds, percentile, rssSampler, smoke, streamUntilSlotActive, writeResults } from './lib.mjs';

const self = fileURLToPath(import.meta.url);
const arg = (name, fallback) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};

// ---------------------------------------------------------------------------------------
// Child roles: the load generator and the webhook receiver
// ---------------------------------------------------------------------------------------

if (process.argv[2] === '--generator') {
  const [url, table, rateText, secondsText] = process.argv.slice(3);
  const rate = Number(rateText); // 0: as fast as possible
  const seconds = Number(secondsText);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  let nextId = 1;
  let offered = 0;
  const started = Date.now();
  const end = started + seconds * 1000;
  const write = async (n) => {
    const inserts = Math.ceil(n / 2);
    const updates = n - inserts;
    const now = Date.now();
    await c.query(`INSERT INTO ${table} (id, payload, v, written_ms) SELECT g, 'payload ' || g, 0, $2 FROM generate_series($1::bigint, $1::bigint + $3 - 1) g`, [
      nextId,
      now,
      inserts,
    ]);
    nextId += inserts;
    if (updates > 0 && nextId > updates * 2) {
      const ids = new Set();
      while (ids.size < updates) ids.add(1 + Math.floor(Math.random() * (nextId - 1)));
      await c.query(`UPDATE ${table} SET v = v + 1, written_ms = $1 WHERE id = ANY($2::bigint[])`, [Date.now(), [...ids]]);
      offered += updates;
    }
    offered += inserts;
  };
  while (Date.now() < end) {
    if (rate === 0) {
      await write(500);
      continue;
    }
    const due = Math.floor(((Date.now() - started) / 1000) * rate) - offered;
    if (due > 0) await write(Math.min(due, 1000));
    else await new Promise((r) => setTimeout(r, 2));
  }
  await c.end();
  process.stdout.write(JSON.stringify({ offered, seconds: (Date.now() - started) / 1000 }) + '\n');
  process.exit(0);
}

if (process.argv[2] === '--receiver') {
  const { start } = await import('@outflow/connector-webhook/emulator');
  const emu = await start();
  process.stdout.write(JSON.stringify(emu.config) + '\n');
  process.on('SIGTERM', () => void emu.stop().then(() => process.exit(0)));
  await new Promise(() => {});
}

function child(args) {
  const p = spawn(process.execPath, [self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const firstLine = new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
    });
    p.on('exit', (code) => (code ? reject(new Error(`${args[0]} exited with ${code}`)) : undefined));
  });
  return { p, firstLine };
}

// ---------------------------------------------------------------------------------------
// The streaming process
// ---------------------------------------------------------------------------------------

/** Wraps a destination to time every acknowledged change from its written_ms. */
function timed(inner, samples) {
  return defineConnector({
    ...inner,
    name: `${inner.name}-timed`,
    destination: {
      ...inner.destination,
      async write(ctx, object, ops) {
        const results = await inner.destination.write(ctx, object, ops);
        const now = Date.now();
        for (let i = 0; i < ops.length; i++) {
          const w = ops[i].fields?.written_ms;
          if (results[i].ok && typeof w === 'number') samples.push(now - w);
        }
        samples.acked += ops.length;
        samples.lastAck = now;
        return results;
      },
    },
  });
}

async function runCase({ server, admin, target, rate, seconds, receiver, n }) {
  const table = `events_${n}`;
  await admin.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, payload text, v int, written_ms bigint)`);
  if (target === 'postgres') await admin.query(`CREATE TABLE ${table}_copy (id bigint PRIMARY KEY, payload text, v int, written_ms bigint)`);
  const samples = Object.assign([], { acked: 0, lastAck: 0 });
  const dest =
    target === 'postgres'
      ? { connector: timed(postgres, samples), config: { url: server.url, writeBatchSize: 1000, writeConcurrency: 2 } }
      : { connector: timed(webhook, samples), config: { ...receiver, batchSize: 1000, requestsPerSecond: 10_000, concurrency: 4 } };
  const { engine, close } = await benchEngine({ src: { connector: postgres, config: { url: server.url } }, dst: dest });
  const sync = {
    name: `bench-${n}`,
    from: { connection: 'src', table, primaryKey: 'id' },
    capture: 'stream',
    to: { connection: 'dst', object: target === 'postgres' ? `${table}_copy` : 'events', mode: 'upsert', deletes: 'ignore' },
  };
  const { running } = await streamUntilSlotActive(engine, admin, sync, `outflow_bench_${n}_${table}_%`);
  globalThis.gc?.();
  const rss = rssSampler();
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  // Unthrottled, one writer commits far more than can be delivered; 10 s keep the drain short.
  const gen = child(['--generator', server.url, table, String(rate), String(rate === 0 ? Math.min(seconds, 10) : seconds)]);
  const { offered } = await gen.firstLine;
  const offeredSeconds = (Date.now() - t0) / 1000;
  const drainBy = Date.now() + 60_000;
  // RSS while the backlog left when the load stopped drains: it should stay flat.
  const drainRss = [process.memoryUsage.rss()];
  let lastSample = Date.now();
  while (samples.acked < offered && Date.now() < drainBy) {
    await new Promise((res) => setTimeout(res, 20));
    if (Date.now() - lastSample >= 250) {
      drainRss.push(process.memoryUsage.rss());
      lastSample = Date.now();
    }
  }
  drainRss.push(process.memoryUsage.rss());
  const cpu = cpuSeconds(cpu0);
  const peakRssMb = rss.stop();
  engine.stop();
  await running;
  await close();
  const sorted = [...samples].sort((a, b) => a - b);
  const span = (samples.lastAck - t0) / 1000;
  return {
    target,
    offered: rate === 0 ? 'max' : `${rate}/s`,
    offeredPerSec: Math.round(offered / offeredSeconds),
    deliveredPerSec: Math.round(samples.acked / span),
    changes: offered,
    delivered: samples.acked,
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    cpuSecondsPerKChanges: Number(((cpu / Math.max(1, samples.acked)) * 1000).toFixed(3)),
    changesPerCpuSecond: Math.round(samples.acked / cpu),
    peakRssMb: Math.round(peakRssMb),
    drainRssMb: `${Math.round(Math.min(...drainRss) / 2 ** 20)}–${Math.round(Math.max(...drainRss) / 2 ** 20)}`,
    drainSeconds: Number(((Date.now() - t0) / 1000 - offeredSeconds).toFixed(1)),
  };
}

const seconds = Number(arg('seconds', smoke ? '2' : '30'));
const server = await startPostgres();
const admin = new pg.Client({ connectionString: server.url });
await admin.connect();
const receiver = child(['--receiver']);
const receiverConfig = await receiver.firstLine;
const cases = [];
let n = 0;
try {
  for (const target of arg('targets', 'webhook,postgres').split(',')) {
    for (const rate of arg('rates', '1000,5000,0').split(',').map(Number)) {
      const c = await runCase({ server, admin, target, rate, seconds, receiver: receiverConfig, n: n++ });
      console.log(JSON.stringify(c));
      cases.push(c);
    }
  }
} finally {
  receiver.p.kill('SIGTERM');
  await admin.end();
  await server.stop();
}

// A subset of the cases is printed above and not written over the full results.
if (process.argv.some((a) => a.startsWith('--targets=') || a.startsWith('--rates='))) process.exit(0);

writeResults('stream', {
  cases,
  columns: ['target', 'offered', 'offeredPerSec', 'deliveredPerSec', 'p50Ms', 'p95Ms', 'p99Ms', 'cpuSecondsPerKChanges', 'changesPerCpuSecond', 'peakRssMb', 'drainRssMb', 'drainSeconds'],
  notes: [
    'Each case is a stream sync (PostgreSQL logical replication → the destination, upsert) run by createEngine + engine.run(); timing starts once its replication slot is active, so starting the engine and creating the slot are not timed.',
    `Each case offers changes for ${seconds} s (half inserts, half updates, committed ~every 10 ms at the fixed rates; 500-change transactions back to back for at most 10 s for "max"), then waits for the stream to drain. "max" shows the most the stream delivers with a backlog: deliveredPerSec is the sustainable rate, its latencies are queueing behind that backlog.`,
    'Latency: from the load generator writing the row (its written_ms column) to the destination acknowledging the write that carried it.',
    'The PostgreSQL server (fsync off), the load generator and the webhook receiver share the machine with the streaming process; CPU and RSS are the streaming process alone.',
    'deliveredPerSec counts changes acknowledged from the start of the load to the last acknowledgement (the drain included).',
    'drainRssMb: the streaming process\'s RSS (min–max, sampled every 250 ms) while the backlog left when the load stopped drained; drainSeconds: how long that took.',
  ],
});
