#!/usr/bin/env node
// Salesforce throughput against the emulator: a diff sync run by the engine, from a model
// held in memory into a custom object upserted by its unique External ID, over sObject
// Collections (200 records a request) and over Bulk API 2.0 jobs (chosen automatically from
// `bulkThreshold` operations of one kind). API requests are counted as Salesforce counts
// them: the emulator's daily usage (Sforce-Limit-Info).
//   npm run bench -- salesforce          BENCH_SMOKE=1 node bench/salesforce.mjs (tiny, writes nothing)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import salesforce from '@outflow/connector-salesforce';
import { start } from '@outflow/connector-salesforce/emulator';
import { memorySource } from '@outflow/testing';
import { benchEngine, smoke, writeResults } from './lib.mjs';

// @salesforce/core writes ~/.sf and ~/.sfdx: a scratch HOME, as in the tests.
process.env.HOME = mkdtempSync(join(tmpdir(), 'outflow-bench-sf-'));
process.env.SF_DISABLE_LOG_FILE = 'true';

const READ_BATCH = 5_000;
const PLANS = ['free', 'pro', 'enterprise'];
const CUSTOMER = {
  name: 'Customer__c',
  fields: [
    { name: 'External_Id__c', type: 'string', length: 40, externalId: true, unique: true },
    { name: 'Plan__c', type: 'picklist', picklistValues: PLANS, restrictedPicklist: true },
    { name: 'Seats__c', type: 'int' },
    { name: 'Signed_Up__c', type: 'date' },
  ],
};

const customers = (n) =>
  Array.from({ length: n }, (_, k) => ({ id: k + 1, ext: `c-${k + 1}`, name: `Customer ${k + 1}`, plan: PLANS[k % 3], seats: k % 500, signed: `2024-01-${String((k % 28) + 1).padStart(2, '0')}` }));

const sync = {
  name: 'customers',
  from: { connection: 'src', table: 'customers', primaryKey: 'id' },
  capture: 'diff',
  to: { connection: 'crm', object: 'Customer__c', mode: 'upsert', deletes: 'ignore', matchKey: { External_Id__c: 'ext' } },
  mappings: { Name: 'name', Plan__c: 'plan', Seats__c: 'seats', Signed_Up__c: 'signed' },
};

/** One first diff run of `records` rows; `bulkThreshold` as the user would set it (undefined: the default). */
async function measure(records, bulkThreshold) {
  const emu = await start({ customObjects: [CUSTOMER], dailyAllocation: 10_000_000, faults: { bulkProcessingMs: 50 } });
  const rows = customers(records);
  const config = { ...emu.config, dailyApiShare: 100, ...(bulkThreshold === undefined ? {} : { bulkThreshold }) };
  const { engine, close } = await benchEngine({ src: { connector: memorySource(() => rows, READ_BATCH) }, crm: { connector: salesforce, config } });
  let summary, seconds, stored, writes, stats, used, jobs;
  try {
    const began = performance.now();
    summary = await engine.run(sync);
    seconds = (performance.now() - began) / 1000;
    stored = emu.records('Customer__c').length;
    writes = emu.writes();
    stats = emu.requestStats();
    used = emu.apiUsage.used;
    jobs = emu.bulkJobsProcessed;
  } finally {
    await close();
    await emu.stop();
  }
  if (summary.status !== 'succeeded' || stored !== records) throw new Error(`${records} records: ${summary.status}, ${stored} stored ${summary.error?.message ?? ''}`);
  const via = new Set(writes.map((w) => w.via));
  const transport = via.size === 1 ? [...via][0] : [...via].sort().join('+');
  const byKind = stats.byKind;
  return {
    records,
    bulkThreshold: bulkThreshold === undefined ? 'default (2000)' : bulkThreshold === Number.MAX_SAFE_INTEGER ? 'never (Collections only)' : bulkThreshold,
    transport,
    runSeconds: seconds,
    recordsPerSec: records / seconds,
    apiCallsUsed: used,
    recordsPerApiCall: records / used,
    writeRequests: (byKind.collections ?? 0) + (byKind.bulk ?? 0),
    bulkJobs: jobs,
    describeRequests: byKind.describe ?? 0,
  };
}

const [small, large] = smoke ? [500, 3_000] : [10_000, 200_000];
const cases = [];
for (const [records, threshold] of [
  [small, Number.MAX_SAFE_INTEGER],
  [small, undefined],
  [large, Number.MAX_SAFE_INTEGER],
  [large, undefined],
]) {
  console.log(`${records} records, bulkThreshold ${threshold ?? 'default'}…`);
  const c = await measure(records, threshold);
  console.log(JSON.stringify(c));
  cases.push(c);
}
const collections = cases.filter((c) => c.transport === 'collections');
if (collections.some((c) => c.recordsPerApiCall < 195)) {
  console.error('sObject Collections used fewer than 195 records per API call');
  process.exitCode = 1;
}
if (cases.some((c) => c.bulkThreshold !== 'default (2000)' ? false : c.transport !== 'bulk')) {
  console.error('Bulk API 2.0 was not chosen above the threshold');
  process.exitCode = 1;
}

writeResults('salesforce', {
  cases,
  columns: ['records', 'bulkThreshold', 'transport', 'runSeconds', 'recordsPerSec', 'apiCallsUsed', 'recordsPerApiCall', 'writeRequests', 'bulkJobs', 'describeRequests'],
  notes: [
    'Each case is a first diff run of a sync (upsert Customer__c by its unique External ID, four mapped fields) run by createEngine + engine.run() with default settings (writes of up to 10,000 operations, 4 in flight), from a model held in memory into the Salesforce emulator in the same process, through @salesforce/core.',
    'bulkThreshold: never (set to Number.MAX_SAFE_INTEGER) forces sObject Collections (200 records a request); the default (2,000 operations of one kind in one write) picks Bulk API 2.0 for these runs, whose writes hold 10,000 operations.',
    "apiCallsUsed: the emulator's count of API requests against the daily allocation (what Sforce-Limit-Info reports): writes, describe, Bulk job creation, upload, close, state polls and the three result reads. recordsPerApiCall = records / apiCallsUsed.",
    'The emulator processes a Bulk job step in 50 ms (bulkProcessingMs), far faster than Salesforce, which takes seconds to minutes: Bulk recordsPerSec here is an upper bound, its API calls are not.',
  ],
});
