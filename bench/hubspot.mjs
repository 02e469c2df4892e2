#!/usr/bin/env node
// HubSpot throughput against the emulator at the professional tier (190 requests per 10 s):
// a diff sync run by the engine, from a model held in memory into HubSpot contacts. How
// close it comes to the ceiling of 19 requests/s × 100 inputs, end to end and in its
// delivery phase; how many requests HubSpot refuses with 429; how full the batches are;
// and two syncs sharing one HubSpot connection (one request budget) at once.
//   npm run bench -- hubspot          BENCH_SMOKE=1 node bench/hubspot.mjs (tiny, writes nothing)
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import hubspot from '@outflow/connector-hubspot';
import { start } from '@outflow/connector-hubspot/emulator';
import { memorySource } from '@outflow/testing';
import { benchEngine, smoke, writeResults } from './lib.mjs';

const PER_WINDOW = 190;
const WINDOW_MS = 10_000;
const BATCH = 100;
const ceilingRecordsPerSec = (PER_WINDOW / (WINDOW_MS / 1000)) * BATCH;
// The steady rate is measured from this long after HubSpot's first answer: by then the
// rolling window no longer carries the burst it let through at first.
const STEADY_AFTER_MS = WINDOW_MS + 500;
const READ_BATCH = 1_000;
const PLANS = ['free', 'starter', 'pro', 'enterprise'];

/** The model: `n` customers with ids from `from`, built before anything is timed. */
const customers = (n, from = 1) =>
  Array.from({ length: n }, (_, k) => {
    const id = from + k;
    return { id, email: `bench${id}@example.com`, first: `First${id}`, last: `Last${id}`, plan: PLANS[id % 4], ltv: id / 4 };
  });

const syncInto = (name, source) => ({
  name,
  from: { connection: source, table: 'customers', primaryKey: 'id' },
  capture: 'diff',
  to: { connection: 'crm', object: 'contacts', mode: 'upsert', deletes: 'ignore', matchKey: { email: 'email' } },
  mappings: { email: 'email', firstname: 'first', lastname: 'last', plan: 'plan', lifetime_value: 'ltv' },
});

/** When the emulator on `port` finished sending each answer to a batch write (any status). */
function answersOn(port) {
  const times = [];
  const onFinish = ({ server, request }) => {
    if (server?.address()?.port === port && request?.url?.includes('/batch/')) times.push(performance.now());
  };
  diagnostics.subscribe('http.server.response.finish', onFinish);
  return { times, stop: () => diagnostics.unsubscribe('http.server.response.finish', onFinish) };
}

/**
 * Runs `models` (record counts) as diff syncs at once, each from its own in-memory source,
 * all into one `crm` connection, through `engine.run()` with default settings.
 */
async function measure(label, models, { latencyMs = 0 } = {}) {
  const emu = await start({ limits: { perWindow: PER_WINDOW, windowMs: WINDOW_MS }, faults: { latencyMs } });
  const answers = answersOn(Number(new URL(emu.url).port));
  const syncs = [];
  const connections = { crm: { connector: hubspot, config: { ...emu.config, tier: 'professional', capacityPacks: 0, timeZone: 'UTC' } } };
  let from = 1;
  for (const [i, n] of models.entries()) {
    const rows = customers(n, from);
    from += n;
    connections[`src-${i}`] = { connector: memorySource(() => rows, READ_BATCH) };
    syncs.push(syncInto(`customers-${i}`, `src-${i}`));
  }
  const records = models.reduce((a, b) => a + b, 0);
  const { engine, close } = await benchEngine(connections);
  // Records settled (acknowledged and recorded) over time, all syncs together.
  const settledBySync = new Map();
  const samples = [];
  const onProgress = (p) => {
    if (p.phase !== 'delivering') return;
    settledBySync.set(p.sync, p.settled);
    let sum = 0;
    for (const v of settledBySync.values()) sum += v;
    samples.push([performance.now(), sum]);
  };
  let summaries, ended, stats, stored;
  const began = performance.now();
  try {
    summaries = await Promise.all(syncs.map((s) => engine.run(s, { onProgress })));
    ended = performance.now();
    stats = emu.stats();
    stored = emu.records('contacts').length;
  } finally {
    answers.stop();
    await close();
    await emu.stop();
  }
  const bad = summaries.filter((s, i) => s.status !== 'succeeded' || s.inserted !== models[i]);
  if (bad.length || stored !== records) {
    const why = bad.map((s) => `${s.sync}: ${s.status}, ${s.inserted} inserted ${s.error?.message ?? ''}`).join('; ');
    throw new Error(`${label}: ${stored} of ${records} records stored; ${why}`);
  }

  const seconds = (ended - began) / 1000;
  const [firstAnswer, lastAnswer] = [answers.times[0], answers.times.at(-1)];
  const deliverySeconds = (lastAnswer - firstAnswer) / 1000;
  const [lastT, lastSettled] = samples.at(-1);
  const steadyFrom = samples.find(([t]) => t >= firstAnswer + STEADY_AFTER_MS);
  const steady = steadyFrom && lastT - steadyFrom[0] > 5000 ? (lastSettled - steadyFrom[1]) / ((lastT - steadyFrom[0]) / 1000) : undefined;
  const requests = Object.values(stats.byStatus).reduce((a, b) => a + b, 0);
  const http429 = stats.byStatus['429'] ?? 0;
  const recordsPerSec = records / seconds;
  const deliveryRecordsPerSec = records / deliverySeconds;
  return {
    case: label,
    records,
    latencyMs,
    runSeconds: seconds,
    recordsPerSec,
    ratio: recordsPerSec / ceilingRecordsPerSec,
    firstAnswerSeconds: (firstAnswer - began) / 1000,
    deliverySeconds,
    deliveryRecordsPerSec,
    deliveryRatio: deliveryRecordsPerSec / ceilingRecordsPerSec,
    ceilingRecordsPerSec,
    steadyRecordsPerSec: steady,
    steadyRatio: steady === undefined ? undefined : steady / ceilingRecordsPerSec,
    requests,
    http429,
    http429Pct: (100 * http429) / requests,
    avgBatchFill: stats.batches.inputs / stats.batches.requests / BATCH,
  };
}

const [small, large, half] = smoke ? [500, 1_000, 500] : [10_000, 100_000, 50_000];
const cases = [];
for (const [label, models, options] of [
  ['one sync', [small], {}],
  ['one sync', [large], {}],
  ['one sync', [large], { latencyMs: 250 }],
  ['two syncs, one connection', [half, half], {}],
]) {
  console.log(`${label}: ${models.join(' + ')} records (latency ${options.latencyMs ?? 0} ms)…`);
  const c = await measure(label, models, options);
  console.log(JSON.stringify(c));
  cases.push(c);
}
const shared = cases.at(-1);
if (shared.http429 > 0) {
  console.error(`two syncs on one connection drew ${shared.http429} 429s: the shared request budget let them exceed the portal's limit`);
  process.exitCode = 1;
}

writeResults('hubspot', {
  cases,
  columns: [
    'case',
    'records',
    'latencyMs',
    'runSeconds',
    'recordsPerSec',
    'ratio',
    'firstAnswerSeconds',
    'deliverySeconds',
    'deliveryRecordsPerSec',
    'deliveryRatio',
    'steadyRecordsPerSec',
    'steadyRatio',
    'http429',
    'http429Pct',
    'avgBatchFill',
    'requests',
  ],
  notes: [
    `Professional tier: 190 requests per rolling 10 s, 100 inputs per batch upsert; ceiling = 19 requests/s × 100 = ${ceilingRecordsPerSec} records/s. Every ratio is a rate of the same run divided by that ceiling.`,
    `Each case is a first diff run of a sync (upsert contacts by email, five mapped fields) run by createEngine + engine.run() with default settings (the connector's batch of 100, 8 writes in flight, its declared limits, default retries and backoff), from a model held in memory (@outflow/testing memorySource, read in batches of ${READ_BATCH}) into the HubSpot emulator, which runs in the same process.`,
    'runSeconds / recordsPerSec / ratio: what a user waits for, from calling engine.run() to its summary: opening the connections and the delivered state of the sync (its DuckDB file), reading the model into it (keying and fingerprinting each row), diffing, delivering and recording every acknowledgement, closing the run. Not timed: building the rows in memory, starting the emulator, creating the engine and opening its ledger, closing the engine.',
    'firstAnswerSeconds: from engine.run() to the first answer HubSpot sent to a batch write, i.e. mostly reading and diffing the model (the property list is read before, when the run asks the connector for its capabilities).',
    "deliverySeconds / deliveryRecordsPerSec / deliveryRatio: the delivery phase alone, from HubSpot's first answer to a batch write to its last (answer times taken from Node's http.server.response.finish diagnostics channel).",
    "Both ratios include the first window, which HubSpot's rolling limit lets through at once (190 requests); a run shorter than one window therefore exceeds the sustained ceiling.",
    `steadyRecordsPerSec / steadyRatio: records settled (acknowledged and recorded, from the engine's onProgress) from ${STEADY_AFTER_MS / 1000} s after HubSpot's first answer to the last record, i.e. the sustained rate; the connector declares HubSpot's 190 per 10 s exactly, and the budget counts each request from its answer, so each request's latency is given up once per window. Delivery comes in bursts, one a window (its 190 requests as fast as 8 writes in flight go, then a wait for the window to roll), so a stretch that ends mid-window reads somewhat high or low. Blank when that stretch is under 5 s.`,
    'requests counts every HTTP request the emulator answered (the property list read included); http429 / http429Pct: how many, and what share, it answered 429.',
    'latencyMs is added by the emulator to every request, closer to what HubSpot answers in.',
    `"two syncs, one connection": two syncs, each from its own in-memory model of ${half} records, into one hubspot connection (so one request budget shared by both), started together with Promise.all; records, rates and ratios are the two combined, runSeconds lasts until both have finished. http429 must be 0 there: a 429 means the shared budget let the pair exceed the portal's limit.`,
  ],
});
