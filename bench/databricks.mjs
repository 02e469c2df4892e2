// Databricks connector: snapshot read throughput through @databricks/sql (Thrift over HTTPS,
// column-based result sets fetched chunk by chunk from the emulator), change data feed
// latency from a committed insert to the destination's acknowledgement, and a diff run
// pushed down into Databricks beside the same run diffed by the embedded state store.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import databricks, { BATCH_ROWS, POLL_MS } from '@outflow/connector-databricks';
import { startDatabricksEmulator } from '@outflow/connector-databricks/emulator';
import webhook from '@outflow/connector-webhook';
import { start as startWebhook } from '@outflow/connector-webhook/emulator';
import { benchEngine, cpuSeconds, percentile, rssSampler, smoke, writeResults } from './lib.mjs';

const SNAPSHOT_ROWS = Number(process.env.BENCH_DATABRICKS_ROWS ?? (smoke ? 5_000 : 100_000));
const STREAM_INSERTS = Number(process.env.BENCH_DATABRICKS_INSERTS ?? (smoke ? 5 : 50));
const DIFF_ROWS = Number(process.env.BENCH_DATABRICKS_DIFF_ROWS ?? (smoke ? 5_000 : 100_000));
/** One row in a hundred changes between the two runs. */
const DIFF_CHANGED = Math.max(1, Math.round(DIFF_ROWS / 100));

const configOf = (emu) => ({ host: emu.host, port: emu.port, httpPath: emu.path, token: emu.token, caCert: emu.caCert, schema: 'default' });

async function snapshot() {
  const emu = await startDatabricksEmulator();
  const env = await benchEngine({ warehouse: { connector: databricks, config: configOf(emu) } });
  try {
    await emu.sql('CREATE TABLE customers (id BIGINT, email STRING, name STRING, score BIGINT, active BOOLEAN)');
    for (let from = 1; from <= SNAPSHOT_ROWS; from += 5_000) {
      const values = [];
      for (let n = from; n < Math.min(from + 5_000, SNAPSHOT_ROWS + 1); n++) values.push(`(${n}, 'customer${n}@example.com', 'Customer ${n}', ${n % 97}, ${n % 3 !== 0})`);
      await emu.sql(`INSERT INTO customers VALUES ${values.join(', ')}`);
    }
    // The context the engine opens for the connection, as every sync reading it gets.
    const { ctx } = await env.engine.connection('warehouse');
    globalThis.gc?.();
    const rss = rssSampler();
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    let rows = 0;
    let batches = 0;
    for await (const batch of databricks.source.read(ctx, { table: 'customers', primaryKey: ['id'] })) {
      rows += batch.rows.length;
      batches++;
    }
    const seconds = (performance.now() - t0) / 1000;
    return {
      case: 'snapshot read',
      rows,
      batches,
      seconds: Number(seconds.toFixed(2)),
      rowsPerSec: Math.round(rows / seconds),
      cpuSeconds: Number(cpuSeconds(cpu).toFixed(2)),
      peakRssMb: Math.round(rss.stop()),
    };
  } finally {
    await env.close();
    await emu.stop();
  }
}

async function streamLatency() {
  const emu = await startDatabricksEmulator();
  const hooks = await startWebhook();
  const acked = new Map();
  const destination = {
    ...webhook.destination,
    async write(ctx, object, ops) {
      const results = await webhook.destination.write(ctx, object, ops);
      const now = performance.now();
      results.forEach((r, i) => r.ok && !acked.has(ops[i].key) && acked.set(ops[i].key, now));
      return results;
    },
  };
  const { engine, ledger, close } = await benchEngine({
    warehouse: { connector: databricks, config: configOf(emu) },
    hooks: { connector: { ...webhook, destination }, config: hooks.config },
  });
  try {
    await emu.sql('CREATE TABLE events (id BIGINT, name STRING) TBLPROPERTIES (delta.enableChangeDataFeed = true)');
    const sync = {
      name: 'events',
      from: { connection: 'warehouse', table: 'events', primaryKey: 'id' },
      capture: 'stream',
      to: { connection: 'hooks', object: 'events', mode: 'upsert', deletes: 'ignore' },
    };
    let ended;
    const run = engine.run(sync).then((summary) => (ended = summary));
    // The first open secures the latest version and reconciles by a diff; then the feed is followed.
    while (!/^\d+$/.test((await ledger.getCheckpoint('events')) ?? '')) {
      if (ended) throw new Error(`the stream sync ended before it started streaming: ${ended.status} ${ended.error?.message ?? ''}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const committed = new Map();
    const cpu = process.cpuUsage();
    for (let i = 1; i <= STREAM_INSERTS; i++) {
      await emu.sql(`INSERT INTO events VALUES (${i}, 'event ${i}')`);
      committed.set(String(i), performance.now());
      // Spread inserts out so each is seen by an idle poller, as in a trickle of live changes.
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 900));
    }
    const deadline = Date.now() + 30_000;
    while (acked.size < STREAM_INSERTS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    engine.stop();
    await run;
    const latencies = [...committed].filter(([k]) => acked.has(k)).map(([k, t]) => acked.get(k) - t).sort((a, b) => a - b);
    return {
      case: 'change data feed: committed insert → destination ack',
      rows: latencies.length,
      p50Ms: Math.round(percentile(latencies, 50)),
      p99Ms: Math.round(percentile(latencies, 99)),
      maxMs: Math.round(latencies.at(-1)),
      pollMs: `${POLL_MS.min}–${POLL_MS.max}`,
      cpuSeconds: Number(cpuSeconds(cpu).toFixed(2)),
    };
  } finally {
    await close();
    await hooks.stop();
    await emu.stop();
  }
}

/**
 * A diff sync's second run after 1% of the rows changed, end to end (engine.run: snapshot,
 * diff, delivery to the webhook emulator, state written), once pushed down into Databricks
 * and once with `pushdown: false` (every row read through the driver into the embedded
 * DuckDB state store), on the same table and the same change.
 */
async function diffRuns() {
  const emu = await startDatabricksEmulator();
  const hooks = await startWebhook();
  // The first run of each sync (every row a create) is setup, not timed: its writes are
  // acknowledged without a request, so the timed run starts from a full delivered state.
  let setup = true;
  const destination = {
    ...webhook.destination,
    write: (ctx, object, ops) => (setup ? Promise.resolve(ops.map(() => ({ ok: true }))) : webhook.destination.write(ctx, object, ops)),
  };
  const { engine, close } = await benchEngine({
    warehouse: { connector: databricks, config: configOf(emu) },
    hooks: { connector: { ...webhook, destination }, config: hooks.config },
  });
  try {
    await emu.sql('CREATE TABLE accounts (id BIGINT, email STRING, name STRING, score BIGINT, active BOOLEAN)');
    for (let from = 1; from <= DIFF_ROWS; from += 5_000) {
      const values = [];
      for (let n = from; n < Math.min(from + 5_000, DIFF_ROWS + 1); n++) values.push(`(${n}, 'account${n}@example.com', 'Account ${n}', ${n % 97}, ${n % 3 !== 0})`);
      await emu.sql(`INSERT INTO accounts VALUES ${values.join(', ')}`);
    }
    const sync = (name, pushdown) => ({
      name,
      from: { connection: 'warehouse', table: 'accounts', primaryKey: 'id', ...(pushdown ? {} : { pushdown: false }) },
      capture: 'diff',
      to: { connection: 'hooks', object: name, mode: 'upsert', deletes: 'delete' },
      mappings: { email: 'email', name: 'name', score: 'score', active: 'active' },
    });
    const variants = [
      ['pushdown', sync('accounts-pushdown', true)],
      ['embedded', sync('accounts-embedded', false)],
    ];
    for (const [, s] of variants) {
      const first = await engine.run(s);
      if (first.status !== 'succeeded' || first.inserted !== DIFF_ROWS) throw new Error(`setup run of ${s.name}: ${first.status} ${first.inserted} ${first.error?.message ?? ''}`);
    }
    setup = false;
    await emu.sql(`UPDATE accounts SET score = score + 1000 WHERE id % 100 = 7`);
    const out = [];
    for (const [label, s] of variants) {
      globalThis.gc?.();
      const cpu = process.cpuUsage();
      const t0 = performance.now();
      const run = await engine.run(s);
      const seconds = (performance.now() - t0) / 1000;
      if (run.status !== 'succeeded' || run.updated !== DIFF_CHANGED) throw new Error(`${s.name}: ${run.status}, ${run.updated} updated, ${run.error?.message ?? ''}`);
      out.push({ label, rows: DIFF_ROWS, changed: run.updated, seconds, cpuSeconds: cpuSeconds(cpu) });
    }
    const embedded = out[1];
    return out.map((r) => ({
      case: `diff run, ${r.label === 'pushdown' ? 'pushed down into Databricks' : 'embedded state store (pushdown: false)'}`,
      rows: r.rows,
      changed: r.changed,
      seconds: Number(r.seconds.toFixed(2)),
      rowsPerSec: Math.round(r.rows / r.seconds),
      vsEmbedded: Number((r.seconds / embedded.seconds).toFixed(2)),
      cpuSeconds: Number(r.cpuSeconds.toFixed(2)),
    }));
  } finally {
    await close();
    await hooks.stop();
    await emu.stop();
  }
}

// Whether the machine was quiet: the 1-minute load average before the first case, against the cores.
const loadAtStart = os.loadavg()[0];
const cores = os.cpus().length;
const cases = [await snapshot(), await streamLatency(), ...(await diffRuns())];
writeResults('databricks', {
  cases,
  columns: ['case', 'rows', 'changed', 'batches', 'seconds', 'rowsPerSec', 'vsEmbedded', 'p50Ms', 'p99Ms', 'maxMs', 'pollMs', 'cpuSeconds', 'peakRssMb'],
  notes: [
    `Snapshot: ${SNAPSHOT_ROWS} rows of 5 columns read with source.read() through @databricks/sql (fetchChunk, ${BATCH_ROWS} rows per chunk), with the context createEngine opens for the connection; only the read loop is timed. The emulator (Thrift over HTTPS, SQL on DuckDB) runs in the same process, so its CPU is included.`,
    `Change data feed: a stream sync (table_changes → webhook emulator) run by createEngine + engine.run(); once it follows the feed, ${STREAM_INSERTS} single-row inserts spaced 100–1000 ms apart; latency is from the insert's commit returning to the webhook destination acknowledging the record. Polling (DESCRIBE HISTORY … LIMIT 1) backs off from ${POLL_MS.min} ms to ${POLL_MS.max} ms while idle; a new version is read with one table_changes query.`,
    `Diff: a diff sync of ${DIFF_ROWS} rows (5 columns, 4 mapped) into the webhook emulator; after a first run of each sync (untimed, its writes acknowledged without a request), ${DIFF_CHANGED} rows change and the second run is timed end to end with engine.run() — snapshot, diff, delivery of the changed rows, state written. Pushed down: the model is fingerprinted and compared with the delivered state by Databricks SQL in the emulator and only the changed rows are fetched; embedded (pushdown: false): every row is read through the driver and diffed in the DuckDB state store. rowsPerSec is model rows per second of the run; vsEmbedded is this run's time over the embedded run's, measured in the same process (below 1: faster). The emulator runs the Databricks SQL on DuckDB in the same process; on Databricks, the warehouse's compute and statement latency replace the emulator's.`,
    `${loadAtStart > cores / 2 ? 'Provisional: measured while the machine was busy with other work' : 'Measured on a quiet machine'} (1-minute load average ${loadAtStart.toFixed(2)} on ${cores} cores when the benchmark started). On Databricks, add the warehouse's own statement latency to every poll and statement.`,
  ],
});
