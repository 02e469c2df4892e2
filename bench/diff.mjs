#!/usr/bin/env node
// Diff at scale, timed as a user waits for it: from "the model is in place" to "every change
// is in JavaScript, ready to deliver". Outflow's embedded diff (a DuckDB model, delivered
// state in DuckDB) at 1M, 10M and 100M rows and 0.1 %, 1 % and 10 % change, changes spread
// uniformly over the keys and, as a second case, clustered in recent keys; a naive
// JavaScript diff timed the same way; the PostgreSQL pushed-down diff at 1M and 10M rows;
// and the ingest path from a JavaScript source into the embedded diff.
//
//   npm run bench -- diff                                    everything
//   npm run bench -- diff --sizes=1e6,1e7 --pushdown=1e6     some sizes
//   npm run bench -- diff --sizes=1e8 --changes=0.01 --dists=uniform --pushdown= --name=diff-100m
//   BENCH_TRACE_SQL=1: each measured run prints, on stderr, every statement of the store with
//   its time (DuckDB), or PostgreSQL's EXPLAIN ANALYZE of each statement over 200 ms (pushdown)
//
// Every case is a sequence of runs of the real store: the state as a full first sync left
// it; a warm-up run at the case's change rate (it delivers every change, so its
// acknowledgements are in the state's ack log and the store has learned the change rate);
// then the measured run on a model changed again at the same rate. Each run is its own
// child process, so its peak RSS is its own. Generated models are kept in bench/data/
// (git-ignored) and reused; each case works on a copy.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance, JsonDuckDBValueConverter } from '@duckdb/node-api';
import { smoke, writeResults } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const dataDir = join(here, 'data');
const arg = (name, dflt) => {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? dflt : found.slice(name.length + 3);
};
const list = (s) => (s === '' ? [] : s.split(','));
const sizes = list(arg('sizes', smoke ? '2e4' : '1e6,1e7,1e8')).map(Number);
const changes = list(arg('changes', '0.001,0.01,0.1')).map(Number);
const dists = list(arg('dists', 'uniform,clustered'));
// Clustered changes are measured at 1 % unless --clustered-changes says otherwise.
const clusteredChanges = list(arg('clustered-changes', '0.01')).map(Number);
const pushdownSizes = list(arg('pushdown', smoke ? '2e4' : '1e6,1e7')).map(Number);
const pushdownChanges = list(arg('pushdown-changes', '0.001,0.01')).map(Number);
const naiveMax = Number(arg('naive-max', '1e7'));
const ingestRows = Number(arg('ingest', smoke ? '2e4' : '2e6'));
// A partial run can write under another name, so it does not replace the full table.
const resultName = arg('name', 'diff');
const COLUMNS = ['email', 'name', 'score', 'updated_at', 'attrs'];

/** The model's row for key `id`, as SQL (DuckDB and PostgreSQL alike). */
const rowSql = (id, cast = '') => `${id} AS id,
    'user' || ${id} || '@example.com' AS email,
    'name ' || (${id} % 100003) AS name,
    ((${id} * 7919) % 100000) / 100.0${cast} AS score,
    TIMESTAMP '2024-01-01' + ((${id} * 37) % 31536000) * INTERVAL '1 second' AS updated_at,
    '{"plan":"' || (ARRAY['free','pro','team','enterprise'])[(${id} % 4) + 1] || '","seats":' || (${id} % 97) || ',"tags":["a' || (${id} % 13) || '"]}' AS attrs`;

if (process.argv[2] === '--child') {
  await child(JSON.parse(process.argv[3]));
  process.exit(0);
}

mkdirSync(dataDir, { recursive: true });
const cases = [];
for (const rows of sizes) {
  const base = await ensureModel(rows);
  for (const dist of dists) {
    for (const p of dist === 'clustered' ? clusteredChanges : changes) {
      cases.push(await embeddedCase(base, rows, p, dist));
      console.log(JSON.stringify(cases.at(-1)));
    }
  }
}
const pushdown = [];
if (pushdownSizes.length > 0) {
  for (const rows of pushdownSizes) {
    for (const p of pushdownChanges) {
      pushdown.push(runChild({ mode: 'pg', rows, p }));
      console.log(JSON.stringify(pushdown.at(-1)));
    }
  }
}
const ingest = ingestRows > 0 ? runChild({ mode: 'ingest', rows: ingestRows }) : null;

writeResults(resultName, {
  cases: [...cases, ...pushdown],
  columns: [
    'engine', 'rows', 'dist', 'changePct', 'seconds', 'vsScan', 'scanSeconds',
    'openSeconds', 'foldSeconds', 'computeSeconds', 'readOutSeconds',
    'acksFolded', 'changesFound', 'method', 'peakRssMb', 'naiveSeconds', 'naiveVsScan', 'naivePeakRssMb',
  ],
  notes: [
    'seconds: what a run waits for before its first write, end to end: openSeconds (open the delivered state and attach the model), foldSeconds (fold the previous run\'s acknowledgements into the state), computeSeconds (find the changed keys and materialize their rows), readOutSeconds (page every changed row into JavaScript, as DiffRow objects; the measured run counts each page and drops it, as a run drops a page once it is delivered). Delivery is not timed. vsScan = seconds / scanSeconds.',
    'scanSeconds: one full read of the mapped columns of the measured model in the same engine (DuckDB: SELECT sum(hash(email, name, score, updated_at, attrs)) FROM model; PostgreSQL: SELECT sum(hashtext(ROW(email, name, score, updated_at, attrs)::text)) FROM model), after one read of the key column to warm the file cache.',
    'Each case: the state as a full first sync left it (every row delivered; built in SQL, untimed); a warm-up run at the case\'s rate, changes in the model, a diff, and a sent + delivered acknowledgement applied for every change (acksFolded counts them; the warm-up process exits without folding, so the measured run folds them — in production the run that made them folds them as it closes, the same work at the other end); then the model changed again at the same rate, and the measured run. The store knows the change rate only from the warm-up run. The state as built holds no block checksums: the warm-up run computes and keeps them, as the first diff after a full sync does, at the block size of the default change rate (1 %: 16 keys); the measured run brings them up to date in its fold (in foldSeconds) and reads them, or, where its own block size differs by more than a factor of two (0.1 %: 64 keys), computes them again from the state (in computeSeconds), as the second run after a full sync does; later runs at that rate read them.',
    'Model: id BIGINT, email, name, score DOUBLE, updated_at TIMESTAMP, attrs (JSON-ish text). Keys are the even numbers below 2N. A change of rate p touches p·N keys: a third updated (score and name), a third deleted, a third inserted. uniform: each chosen by a hash of the key over the whole key space, inserts taking odd keys anywhere; clustered: updates and deletes among the 4/3·p·N most recent keys, inserts appended above the largest key.',
    `naiveSeconds (up to ${naiveMax.toLocaleString('en')} rows), timed the same way: load its delivered state (key → core fingerprint() of the row) from a DuckDB file into a JS Map, read every model row into JS as JSON values, fingerprint each with core's fingerprint(), compare, keep the changed rows. Its state is written whole by its own warm-up run from what that run delivered; that write is timed there and added to naiveSeconds, as the fold of the previous run's acknowledgements is for the diff. The naive and the embedded diff must find the same number of changes, or the benchmark fails.`,
    'pushdown (engine postgres): the PostgreSQL connector\'s pushed-down diff (source.diff.open → computeChanges → changes()) on a PostgreSQL 15 table on this machine, its delivered state in the outflow schema; the same runs (full first sync built in SQL, warm-up with its acknowledgements applied through the store, measured run). Its acknowledgements are written as they come (no fold).',
    ingest
      ? `Ingest path: ${ingest.rowsPerSec.toLocaleString('en')} rows/s from a JS async iterable into the embedded diff, each row keyed and fingerprinted (core's fingerprint()) as the engine does (${ingest.rows.toLocaleString('en')} rows, 6 columns, peak RSS ${ingest.peakRssMb} MB); diff after ingest ${ingest.diffSeconds.toFixed(2)} s.`
      : 'Ingest path: not run.',
  ],
});

/** One embedded case: copy the model, warm up, change it again, measure the diff and the naive diff. */
async function embeddedCase(base, rows, p, dist) {
  const model = join(dataDir, `case-model.duckdb`);
  const state = join(dataDir, `case-state.duckdb`);
  const naiveState = join(dataDir, `case-naive.duckdb`);
  for (const f of [model, state, naiveState]) for (const s of ['', '.wal']) rmSync(f + s, { force: true });
  copyFileSync(base, model);
  await firstSyncState(model, state);
  const naive = rows <= naiveMax;
  await mutate(model, rows, p, dist, 1);
  const warm = runChild({ mode: 'warmup', model, state });
  const naiveWarm = naive ? runChild({ mode: 'naive-warmup', model, state: naiveState }) : null;
  await mutate(model, rows, p, dist, 2);
  const scanSeconds = await scan(model);
  const r = runChild({ mode: 'measure', model, state });
  const n = naive ? runChild({ mode: 'naive', model, state: naiveState }) : null;
  if (n && n.changes !== r.changes) throw new Error(`the naive diff found ${n.changes} changes, the embedded diff ${r.changes} (${rows} rows, ${p}, ${dist})`);
  for (const f of [model, state, naiveState]) for (const s of ['', '.wal']) rmSync(f + s, { force: true });
  return {
    engine: 'duckdb',
    rows,
    dist,
    changePct: p * 100,
    seconds: r.seconds,
    vsScan: r.seconds / scanSeconds,
    scanSeconds,
    openSeconds: r.openSeconds,
    foldSeconds: r.foldSeconds,
    computeSeconds: r.computeSeconds,
    readOutSeconds: r.readOutSeconds,
    acksFolded: warm.acks,
    changesFound: r.changes,
    method: `${r.method}${r.blockSize ? ` B=${r.blockSize}` : ''}`,
    peakRssMb: r.peakRssMb,
    naiveSeconds: n ? n.seconds + naiveWarm.saveSeconds : null,
    naiveVsScan: n ? (n.seconds + naiveWarm.saveSeconds) / scanSeconds : null,
    naivePeakRssMb: n ? Math.max(n.peakRssMb, naiveWarm.peakRssMb) : null,
  };
}

function runChild(job) {
  const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', JSON.stringify(job)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').at(-1));
}

async function withDb(file, fn, options = {}) {
  const db = await DuckDBInstance.create(file, { threads: '2', memory_limit: '4GB', ...options });
  const c = await db.connect();
  try {
    return await fn(c);
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

async function ensureModel(rows) {
  const file = join(dataDir, `model-even-${rows}.duckdb`);
  if (existsSync(file)) return file;
  console.log(`generating a ${rows.toLocaleString('en')}-row model…`);
  rmSync(`${file}.tmp`, { force: true });
  await withDb(`${file}.tmp`, (c) => c.run(`CREATE TABLE model AS SELECT ${rowSql('(2 * i)')} FROM range(${rows}) t(i)`));
  renameSync(`${file}.tmp`, file);
  return file;
}

/** The delivered state a full first sync of the model leaves: every row delivered with its fingerprint. */
async function firstSyncState(model, state) {
  await withDb(state, async (c) => {
    await c.run(`ATTACH '${model}' AS m (READ_ONLY)`);
    await c.run(`CREATE TABLE delivered AS
      SELECT id AS k, hash(${COLUMNS.join(', ')}) AS fp, NULL::VARCHAR AS dest_id, NULL::UBIGINT AS parked_fp,
        NULL::UBIGINT AS sent_fp, NULL::VARCHAR AS sent_match
      FROM m.model`);
    await c.run(`CREATE TABLE meta (k VARCHAR PRIMARY KEY, v VARCHAR)`);
    await c.run(`INSERT INTO meta VALUES ('key_kind', 'int')`);
  });
}

/** SQL statements that change a fraction `p` of the model's keys (version `v` picks which). */
function changeSql(rows, p, dist, v, engine = 'duckdb') {
  const third = Math.max(1, Math.round((rows * p) / 3));
  const threshold = Math.max(1, Math.round((p / 3) * 1_000_000));
  const h = (expr, seed) => (engine === 'duckdb' ? `(hash(${expr}, ${seed}) % 1000000)` : `(abs(hashint8extended(${expr}, ${seed})) % 1000000)`);
  const update = `UPDATE model SET score = score + 1, name = name || '*'`;
  if (dist === 'uniform') {
    return [
      `${update} WHERE ${h('id', v * 10 + 1)} < ${threshold}`,
      `DELETE FROM model WHERE ${h('id', v * 10 + 2)} < ${threshold}`,
      `INSERT INTO model SELECT ${rowSql('(2 * j + 1)', engine === 'duckdb' ? '' : '::float8')}
         FROM (SELECT j FROM ${engine === 'duckdb' ? `range(${rows}) t(j)` : `generate_series(0::bigint, ${rows - 1}) t(j)`}
               WHERE ${h('j', v * 10 + 3)} < ${threshold}) s
         WHERE NOT EXISTS (SELECT 1 FROM model x WHERE x.id = 2 * s.j + 1)`,
    ];
  }
  const window = Math.round((4 * third));
  const lo = `(SELECT id FROM model ORDER BY id DESC LIMIT 1 OFFSET ${window - 1})`;
  const mod4 = (seed) => (engine === 'duckdb' ? `hash(id, ${seed}) % 4` : `abs(hashint8extended(id, ${seed})) % 4`);
  return [
    `CREATE TEMP TABLE bounds AS SELECT ${lo} AS lo, (SELECT max(id) FROM model) AS hi`,
    `${update} WHERE id >= (SELECT lo FROM bounds) AND ${mod4(v * 10 + 1)} = 0`,
    `DELETE FROM model WHERE id >= (SELECT lo FROM bounds) AND ${mod4(v * 10 + 1)} = 1`,
    `INSERT INTO model SELECT ${rowSql('((SELECT hi FROM bounds) + 1 + j)', engine === 'duckdb' ? '' : '::float8')}
       FROM ${engine === 'duckdb' ? `range(${third}) t(j)` : `generate_series(0::bigint, ${third - 1}) t(j)`}`,
    `DROP TABLE bounds`,
  ];
}

async function mutate(model, rows, p, dist, v) {
  await withDb(model, async (c) => {
    for (const sql of changeSql(rows, p, dist, v)) await c.run(sql);
    await c.run('CHECKPOINT');
  });
}

async function scan(model) {
  return withDb(
    model,
    async (c) => {
      await c.run(`SELECT sum(hash(id)) FROM model`); // warm the file cache as the diff will find it
      const t = performance.now();
      await c.run(`SELECT sum(hash(${COLUMNS.join(', ')})) FROM model`);
      return (performance.now() - t) / 1000;
    },
    { access_mode: 'READ_ONLY' },
  );
}

function peakRssMb() {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

function seconds(t) {
  return (performance.now() - t) / 1000;
}

async function child(job) {
  if (job.mode === 'warmup' || job.mode === 'measure') return childDiff(job);
  if (job.mode === 'naive-warmup' || job.mode === 'naive') return childNaive(job);
  if (job.mode === 'pg') return childPushdown(job);
  return childIngest(job);
}

/** The acknowledgements the engine writes for a delivered change: sent before the write, then delivered (or deleted). */
function acksFor(changes) {
  const acks = [];
  for (const c of changes) {
    if (c.op === 'delete') acks.push({ key: c.key, kind: 'deleted' });
    else acks.push({ key: c.key, kind: 'sent', fp: c.fp }, { key: c.key, kind: 'delivered', fp: c.fp, destId: null });
  }
  return acks;
}

/** Prints each statement run on `conn` with its time, on stderr (BENCH_TRACE_SQL). */
function traceStatements(conn) {
  for (const name of ['run', 'runAndReadAll']) {
    const inner = conn[name].bind(conn);
    conn[name] = async (sql, ...rest) => {
      const t = performance.now();
      try {
        return await inner(sql, ...rest);
      } finally {
        const ms = performance.now() - t;
        if (ms >= 5) process.stderr.write(`[sql ${ms.toFixed(0).padStart(6)} ms] ${sql.replace(/\s+/g, ' ').slice(0, 160)}\n`);
      }
    };
  }
}

async function childDiff({ mode, model, state }) {
  const { SqlDiffStore } = await import('@outflow/state-duckdb');
  const t0 = performance.now();
  const store = await SqlDiffStore.open(
    { relation: 'SELECT * FROM model', key: { kind: 'int', column: 'id' }, fingerprint: COLUMNS },
    {
      stateFile: state,
      readOnly: false,
      tempDir: join(dataDir, 'tmp'),
      threads: 2,
      setup: async (conn) => {
        await conn.run(`ATTACH '${model}' AS wh (READ_ONLY)`);
        await conn.run('USE wh');
        if (process.env.BENCH_TRACE_SQL && mode === 'measure') traceStatements(conn);
      },
    },
  );
  const openSeconds = seconds(t0);
  const t1 = performance.now();
  await store.fold();
  const foldSeconds = seconds(t1);
  const t2 = performance.now();
  const counts = await store.computeChanges();
  const computeSeconds = seconds(t2);
  const t3 = performance.now();
  // The warm-up keeps the rows to acknowledge them; the measured run drops each page once
  // counted, as a run drops a page once delivered.
  const rows = [];
  let read = 0;
  for await (const page of store.changes()) {
    read += page.length;
    if (mode === 'warmup') for (const c of page) rows.push(c);
  }
  const readOutSeconds = seconds(t3);
  const total = seconds(t0);
  let acks = 0;
  if (mode === 'warmup') {
    const all = acksFor(rows);
    for (let i = 0; i < all.length; i += 5000) await store.apply(all.slice(i, i + 5000));
    acks = all.length;
    // Exit without folding: the measured run folds these acknowledgements (see the notes).
  } else {
    await store.close();
  }
  console.log(
    JSON.stringify({
      seconds: total,
      openSeconds,
      foldSeconds,
      computeSeconds,
      readOutSeconds,
      changes: counts.insert + counts.update + counts.delete,
      read,
      acks,
      peakRssMb: peakRssMb(),
      method: store.stats.method,
      blockSize: store.stats.blockSize,
    }),
  );
}

/** The naive diff: state in a JS Map, every model row read and fingerprinted in JS. */
async function childNaive({ mode, model, state }) {
  const { fingerprint } = await import('@outflow/core');
  const t0 = performance.now();
  const delivered = new Map();
  if (mode === 'naive') {
    await withDb(
      state,
      async (c) => {
        const res = await c.stream(`SELECT k, fp FROM naive`);
        for (;;) {
          const chunk = await res.fetchChunk();
          if (!chunk || chunk.rowCount === 0) break;
          for (const [k, fp] of chunk.getRows()) delivered.set(Number(k), fp);
        }
      },
      { access_mode: 'READ_ONLY' },
    );
  } else {
    // The warm-up starts from the first full sync: every row of the base model, as it is before this run's changes.
    await withDb(
      model,
      async (c) => {
        const res = await c.stream(`SELECT id FROM model`);
        for (;;) {
          const chunk = await res.fetchChunk();
          if (!chunk || chunk.rowCount === 0) break;
          for (const [id] of chunk.getRows()) delivered.set(Number(id), null);
        }
      },
      { access_mode: 'READ_ONLY' },
    );
  }
  const changed = [];
  const seen = new Set();
  const fps = new Map();
  await withDb(
    model,
    async (c) => {
      const res = await c.stream(`SELECT id, ${COLUMNS.join(', ')} FROM model`);
      const names = res.columnNames();
      for (;;) {
        const chunk = await res.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        for (const values of chunk.convertRows(JsonDuckDBValueConverter)) {
          const row = {};
          for (let i = 0; i < names.length; i++) row[names[i]] = values[i];
          const id = Number(row.id);
          const fp = fingerprint(row, undefined);
          seen.add(id);
          if (mode === 'naive-warmup') fps.set(id, fp);
          else if (delivered.get(id) !== fp) changed.push(row);
        }
      }
    },
    { access_mode: 'READ_ONLY' },
  );
  let deletes = 0;
  for (const k of delivered.keys()) if (!seen.has(k)) deletes++;
  const total = seconds(t0);
  let saveSeconds = 0;
  if (mode === 'naive-warmup') {
    // What it delivered becomes its state: written whole, as the naive approach must.
    const t = performance.now();
    rmSync(state, { force: true });
    await withDb(state, async (c) => {
      await c.run(`CREATE TABLE naive (k BIGINT, fp VARCHAR)`);
      const appender = await c.createAppender('naive');
      for (const [k, fp] of fps) {
        appender.appendBigInt(BigInt(k));
        appender.appendVarchar(fp);
        appender.endRow();
      }
      appender.closeSync();
    });
    saveSeconds = seconds(t);
  }
  const changes = mode === 'naive' ? changed.length + deletes : null;
  console.log(JSON.stringify({ seconds: total, saveSeconds, changes, peakRssMb: peakRssMb() }));
}

/** The PostgreSQL pushed-down diff: a table of `rows` rows, a warm-up, then the measured run. */
/** Every session opened from now on logs EXPLAIN ANALYZE of its statements over 200 ms. */
async function logSlowPlans(pg, url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  for (const set of ["session_preload_libraries = 'auto_explain'", "auto_explain.log_min_duration = '200ms'", 'auto_explain.log_analyze = on', 'auto_explain.log_buffers = on']) {
    await c.query(`ALTER DATABASE postgres SET ${set}`);
  }
  await c.end();
}

/** print() writes what the server logged since this call. */
async function explainSlowStatements(client) {
  const dataDirectory = (await client.query('SHOW data_directory')).rows[0].data_directory;
  const { readFileSync, statSync } = await import('node:fs');
  const log = join(dirname(dataDirectory), 'log');
  const from = statSync(log).size;
  return { print: () => process.stderr.write(readFileSync(log).subarray(from).toString('utf8')) };
}

async function childPushdown({ rows, p }) {
  const [{ default: postgres }, { startPostgres }, { benchEngine }, pgmod] = await Promise.all([
    import('@outflow/connector-postgres'),
    import('@outflow/connector-postgres/testing'),
    import('./lib.mjs'),
    import('pg'),
  ]);
  const server = await startPostgres();
  if (process.env.BENCH_TRACE_SQL) await logSlowPlans(pgmod.default, server.url);
  const env = await benchEngine({ pg: { connector: postgres, config: { url: server.url } } });
  const client = new pgmod.default.Client({ connectionString: server.url });
  await client.connect();
  try {
    await client.query(`CREATE TABLE model AS SELECT ${rowSql('(2 * i)::bigint', '::float8')} FROM generate_series(0::bigint, ${rows - 1}) t(i)`);
    await client.query(`ALTER TABLE model ADD PRIMARY KEY (id)`);
    const { ctx } = await env.engine.connection('pg');
    const model = { table: 'model', primaryKey: ['id'] };
    const options = { sync: 'bench', columns: COLUMNS, readOnly: false };
    // The full first sync, built in SQL: the store creates its schema, then every row is delivered.
    let store = await postgres.source.diff.open(ctx, model, options);
    await store.close();
    const table = (await client.query(`SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_name LIKE 'delivered_bench_%'`)).rows[0].t;
    // The fingerprint the store computes (connectors/postgres/src/pushdown.ts).
    await client.query(`INSERT INTO ${table} (key, fp) SELECT m.id::text, to_hex(hashtextextended(ROW(${COLUMNS.map((c) => `m.${c}`).join(', ')})::text, 0)) FROM model m`);
    await client.query(`VACUUM ANALYZE ${table}`);
    const change = async (v) => {
      for (const sql of changeSql(rows, p, 'uniform', v, 'postgres')) await client.query(sql);
      await client.query('VACUUM ANALYZE model');
    };
    const runOnce = async (warm) => {
      const t0 = performance.now();
      store = await postgres.source.diff.open(ctx, model, options);
      const openSeconds = seconds(t0);
      const t2 = performance.now();
      const counts = await store.computeChanges();
      const computeSeconds = seconds(t2);
      const t3 = performance.now();
      const changed = [];
      for await (const page of store.changes()) if (warm) for (const c of page) changed.push(c);
      const readOutSeconds = seconds(t3);
      const total = seconds(t0);
      const acks = warm ? acksFor(changed) : [];
      for (let i = 0; i < acks.length; i += 5000) await store.apply(acks.slice(i, i + 5000));
      await store.close();
      return { total, openSeconds, computeSeconds, readOutSeconds, changes: counts.insert + counts.update + counts.delete, acks: acks.length };
    };
    await change(1);
    const warm = await runOnce(true);
    await change(2);
    await client.query(`SELECT sum(hashtext(id::text)) FROM model`);
    const ts = performance.now();
    await client.query(`SELECT sum(hashtext(ROW(${COLUMNS.join(', ')})::text)) FROM model`);
    const scanSeconds = seconds(ts);
    // BENCH_TRACE_SQL: the plans of the measured run's slow statements, from the server's log.
    const traced = process.env.BENCH_TRACE_SQL ? await explainSlowStatements(client) : undefined;
    const r = await runOnce(false);
    traced?.print();
    console.log(
      JSON.stringify({
        engine: 'postgres',
        rows,
        dist: 'uniform',
        changePct: p * 100,
        seconds: r.total,
        vsScan: r.total / scanSeconds,
        scanSeconds,
        openSeconds: r.openSeconds,
        foldSeconds: null,
        computeSeconds: r.computeSeconds,
        readOutSeconds: r.readOutSeconds,
        acksFolded: warm.acks,
        changesFound: r.changes,
        method: 'pushdown',
        peakRssMb: peakRssMb(),
      }),
    );
  } finally {
    await client.end();
    await env.close();
    await server.stop();
  }
}

async function childIngest({ rows }) {
  const { EmbeddedDiffStore } = await import('@outflow/state-duckdb');
  const { fingerprint, keyOf } = await import('@outflow/core');
  const dir = join(dataDir, 'ingest');
  rmSync(dir, { recursive: true, force: true });
  const store = await EmbeddedDiffStore.open({ stateFile: join(dir, 'state.duckdb'), readOnly: false, tempDir: join(dir, 'tmp') });
  async function* source() {
    const batch = 10_000;
    for (let start = 0; start < rows; start += batch) {
      const out = new Array(Math.min(batch, rows - start));
      for (let j = 0; j < out.length; j++) {
        const i = start + j;
        out[j] = {
          id: i,
          email: `user${i}@example.com`,
          name: `name ${i % 100003}`,
          score: ((i * 7919) % 100000) / 100,
          updated_at: '2024-01-01T00:00:00.000Z',
          attrs: { plan: 'pro', seats: i % 97 },
        };
      }
      yield out;
    }
  }
  const t = performance.now();
  let started = false;
  for await (const batch of source()) {
    if (!started) {
      await store.ingest.begin(Object.keys(batch[0]), batch.slice(0, 1000));
      started = true;
    }
    // Each row keyed and fingerprinted as the engine does for a sync without mappings
    // (packages/core/src/capture/diff.ts): every column is delivered, no match key.
    await store.ingest.add(
      batch.map((row) => keyOf(row, ['id'])),
      batch,
      batch.map((row) => fingerprint(row, undefined)),
    );
  }
  await store.ingest.end();
  const ingestSeconds = seconds(t);
  const t2 = performance.now();
  await store.computeChanges();
  const diffSeconds = seconds(t2);
  await store.close();
  console.log(JSON.stringify({ rows, rowsPerSec: Math.round(rows / ingestSeconds), diffSeconds, peakRssMb: peakRssMb() }));
}
