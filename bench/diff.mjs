#!/usr/bin/env node
// Diff at scale: Outflow's in-engine diff (DuckDB source, delivered state in DuckDB) on
// models of 1M, 10M and 100M rows at 0.1 %, 1 % and 10 % change, against one full read of
// the mapped columns (scanSeconds) and a naive JavaScript Map diff (where it fits in memory).
// Also the ingest path: rows per second from a JS async iterable into the embedded diff.
//
//   npm run bench -- diff                      all sizes
//   npm run bench -- diff --sizes=1e6,1e7      some sizes
//   npm run bench -- diff --sizes=1e8 --changes=0.01 --name=diff-100m   one case, its own file
//
// Each diff runs in its own child process so its peak RSS is the diff's alone, not the
// data generation's. Generated data is kept in bench/data/ (git-ignored) and reused.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { writeResults } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const dataDir = join(here, 'data');
const arg = (name, dflt) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
const sizes = arg('sizes', '1e6,1e7,1e8').split(',').map(Number);
const changes = arg('changes', '0.001,0.01,0.1').split(',').map(Number);
// A partial run can write under another name, so it does not replace the full table.
const resultName = arg('name', 'diff');
const COLUMNS = ['email', 'name', 'score', 'updated_at', 'attrs'];

if (process.argv[2] === '--child') {
  await child(JSON.parse(process.argv[3]));
  process.exit(0);
}

mkdirSync(dataDir, { recursive: true });
const cases = [];
for (const rows of sizes) {
  const model = await ensureModel(rows);
  const scanSeconds = await scan(model);
  for (const p of changes) {
    const state = await makeState(model, rows, p);
    const r = runChild({ mode: 'diff', model, state, rows, p });
    const naive = rows <= 10_000_000 ? runChild({ mode: 'naive', model, state, rows, p }) : null;
    cases.push({
      rows,
      changePct: p * 100,
      seconds: r.seconds,
      rowsPerSec: Math.round(rows / r.seconds),
      peakRssMb: r.peakRssMb,
      scanSeconds,
      vsScan: r.seconds / scanSeconds,
      naiveSeconds: naive ? naive.seconds : null,
      naivePeakRssMb: naive ? naive.peakRssMb : null,
      changesFound: r.changes,
      method: `${r.method}${r.blockSize ? ` B=${r.blockSize}` : ''}`,
      readOutSeconds: r.readOutSeconds,
    });
    console.log(JSON.stringify(cases.at(-1)));
    rmSync(state, { force: true });
    rmSync(`${state}.wal`, { force: true });
  }
}
const ingest = runChild({ mode: 'ingest', rows: 2_000_000 });

writeResults(resultName, {
  cases,
  columns: ['rows', 'changePct', 'seconds', 'rowsPerSec', 'peakRssMb', 'scanSeconds', 'vsScan', 'naiveSeconds', 'naivePeakRssMb', 'method', 'readOutSeconds'],
  notes: [
    `Model: id BIGINT, email, name, score DOUBLE, updated_at TIMESTAMP, attrs (JSON-ish text); the diff fingerprints the five non-key columns.`,
    `seconds: computing the diff (key-block checksums, the blocks that differ joined row by row, changed rows materialized with their columns); readOutSeconds: paging those changed rows out into JavaScript.`,
    `scanSeconds: SELECT sum(hash(<mapped columns>)) FROM model, one full read. Steady state: the previous run's change rate is known to the store (it picks the block size from it).`,
    `Changes are spread uniformly over the keys (the hardest case for key blocks): of the changed keys a third are updates, a third inserts, a third deletes.`,
    `naiveSeconds: the delivered state loaded into a JS Map, every model row read into JS and fingerprinted there; only up to 10M rows.`,
    `Ingest path: ${ingest.rowsPerSec.toLocaleString('en')} rows/s from a JS async iterable into the embedded diff, each row keyed and fingerprinted (core's fingerprint()) as the engine does (${ingest.rows.toLocaleString('en')} rows, 6 columns, peak RSS ${ingest.peakRssMb} MB); diff after ingest ${ingest.diffSeconds.toFixed(2)} s.`,
  ],
});

function runChild(job) {
  const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', JSON.stringify(job)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').at(-1));
}

async function ensureModel(rows) {
  const file = join(dataDir, `model-${rows}.duckdb`);
  if (existsSync(file)) return file;
  console.log(`generating a ${rows.toLocaleString('en')}-row model…`);
  const db = await DuckDBInstance.create(`${file}.tmp`, { threads: '2', memory_limit: '4GB' });
  const c = await db.connect();
  await c.run(`CREATE TABLE model AS SELECT i AS id,
      'user' || i || '@example.com' AS email,
      'name ' || (i % 100003) AS name,
      ((i * 7919) % 100000) / 100.0 AS score,
      TIMESTAMP '2024-01-01' + to_seconds((i * 37) % 31536000) AS updated_at,
      '{"plan":"' || ['free','pro','team','enterprise'][(i % 4) + 1] || '","seats":' || (i % 97) || ',"tags":["a' || (i % 13) || '"]}' AS attrs
    FROM range(${rows}) t(i)`);
  c.closeSync();
  db.closeSync();
  execFileSync('mv', [`${file}.tmp`, file]);
  return file;
}

async function scan(model) {
  const db = await DuckDBInstance.create(model, { threads: '2', access_mode: 'READ_ONLY' });
  const c = await db.connect();
  await c.run(`SELECT sum(hash(id)) FROM model`); // warm the file cache like the diff will find it
  const t = performance.now();
  await c.run(`SELECT sum(hash(${COLUMNS.join(', ')})) FROM model`);
  const s = (performance.now() - t) / 1000;
  c.closeSync();
  db.closeSync();
  return s;
}

/**
 * The delivered state as a previous run would have left it: a fraction `p` of keys differ
 * (updated, missing = inserted, or extra = deleted), the rest carry the model's fingerprint.
 */
async function makeState(model, rows, p) {
  const file = join(dataDir, `state-${rows}-${p}.duckdb`);
  rmSync(file, { force: true });
  const db = await DuckDBInstance.create(file, { threads: '2', memory_limit: '4GB' });
  const c = await db.connect();
  await c.run(`ATTACH '${model}' AS m (READ_ONLY)`);
  const per = Math.round(p * 1_000_000);
  // bucket in [0, 1e6): < per/3 updated, < 2per/3 missing (insert), the rest untouched.
  await c.run(`CREATE TABLE delivered AS
    SELECT id AS k, CASE WHEN hash(id) % 1000000 < ${Math.floor(per / 3)} THEN 1::UBIGINT ELSE hash(${COLUMNS.join(', ')}) END AS fp,
      NULL::VARCHAR AS dest_id, NULL::UBIGINT AS parked_fp, NULL::UBIGINT AS sent_fp
    FROM m.model WHERE NOT (hash(id) % 1000000 >= ${Math.floor(per / 3)} AND hash(id) % 1000000 < ${Math.floor((2 * per) / 3)})
    UNION ALL
    SELECT ${rows} + i AS k, 42::UBIGINT, NULL, NULL, NULL FROM range(${Math.round((rows * p) / 3)}) t(i)`);
  await c.run(`CREATE TABLE meta (k VARCHAR PRIMARY KEY, v VARCHAR)`);
  await c.run(`INSERT INTO meta VALUES ('key_kind', 'int'), ('change_fraction', '${p}'), ('mapping', 'bench')`);
  await c.run(`CREATE TABLE acks (seq BIGINT, k BIGINT, kind VARCHAR, fp UBIGINT, dest_id VARCHAR)`);
  c.closeSync();
  db.closeSync();
  return file;
}

function peakRssMb() {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

async function child(job) {
  if (job.mode === 'diff') return childDiff(job);
  if (job.mode === 'naive') return childNaive(job);
  return childIngest(job);
}

async function childDiff({ model, state }) {
  const { SqlDiffStore } = await import('@outflow/state-duckdb');
  const tempDir = join(dataDir, 'tmp');
  const store = await SqlDiffStore.open(
    { relation: 'SELECT * FROM model', key: { kind: 'int', column: 'id' }, fingerprint: COLUMNS },
    {
      stateFile: state,
      readOnly: false,
      tempDir,
      threads: 2,
      setup: async (conn) => {
        await conn.run(`ATTACH '${model}' AS wh (READ_ONLY)`);
        await conn.run('USE wh');
      },
    },
  );
  const t = performance.now();
  const counts = await store.computeChanges();
  const seconds = (performance.now() - t) / 1000;
  const t2 = performance.now();
  let n = 0;
  for await (const page of store.changes()) n += page.length;
  const readOutSeconds = (performance.now() - t2) / 1000;
  store.close();
  console.log(
    JSON.stringify({
      seconds,
      readOutSeconds,
      changes: counts.insert + counts.update + counts.delete,
      read: n,
      peakRssMb: peakRssMb(),
      method: store.stats.method,
      blockSize: store.stats.blockSize,
    }),
  );
}

async function childNaive({ model, state }) {
  const { createHash } = await import('node:crypto');
  const t = performance.now();
  const sdb = await DuckDBInstance.create(state, { access_mode: 'READ_ONLY', threads: '2' });
  const sc = await sdb.connect();
  const delivered = new Map();
  const sres = await sc.stream(`SELECT k, fp::VARCHAR FROM delivered`);
  for (;;) {
    const chunk = await sres.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    for (const [k, fp] of chunk.getRows()) delivered.set(Number(k), fp);
  }
  const mdb = await DuckDBInstance.create(model, { access_mode: 'READ_ONLY', threads: '2' });
  const mc = await mdb.connect();
  const res = await mc.stream(`SELECT id, email, name, score, updated_at::VARCHAR AS updated_at, attrs FROM model`);
  let changed = 0;
  const seen = new Set();
  for (;;) {
    const chunk = await res.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    for (const r of chunk.getRows()) {
      const id = Number(r[0]);
      const fp = createHash('sha1').update(`${r[1]}\u0000${r[2]}\u0000${r[3]}\u0000${r[4]}\u0000${r[5]}`).digest('hex');
      const old = delivered.get(id);
      if (old === undefined || old !== fp) changed++;
      seen.add(id);
    }
  }
  for (const k of delivered.keys()) if (!seen.has(k)) changed++;
  const seconds = (performance.now() - t) / 1000;
  console.log(JSON.stringify({ seconds, changed, peakRssMb: peakRssMb() }));
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
      const out = new Array(batch);
      for (let j = 0; j < batch; j++) {
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
  const ingestSeconds = (performance.now() - t) / 1000;
  const t2 = performance.now();
  await store.computeChanges();
  const diffSeconds = (performance.now() - t2) / 1000;
  await store.close();
  console.log(JSON.stringify({ rows, rowsPerSec: Math.round(rows / ingestSeconds), diffSeconds, peakRssMb: peakRssMb() }));
}
