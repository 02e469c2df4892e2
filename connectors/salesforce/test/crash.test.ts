/**
 * The real `outflow` CLI (built, in a child process under the network guard) killed with
 * SIGKILL between a Bulk API 2.0 job's upload and its results, then run again. The
 * emulator runs in this process and outlives the CLI, as Salesforce would. Counted in the
 * emulator's own write log: every record is written exactly once — created, never updated
 * by a second upload of the same batch — and none is lost.
 */
import './home.js';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FailpointName } from '@outflow/core';
import { start, type SalesforceEmulator } from '@outflow/connector-salesforce/emulator';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { killAll, outflow, ROOT, tempDir, within } from '../../../tests/crash/cli.js';
import { CUSTOMER } from './fixtures.js';

const ROWS = 120;
/** How long one CLI run may take on a loaded machine. */
const WAIT = 120_000;

beforeAll(() => {
  const needed = ['apps/runner/dist/cli.js', 'connectors/salesforce/dist/index.js', 'connectors/duckdb/dist/index.js', 'packages/testing/dist/network-guard.js'];
  const missing = needed.filter((f) => !existsSync(join(ROOT, f)));
  if (missing.length > 0) throw new Error(`not built: ${missing.join(', ')}; run \`npm run build\` first (npm test does)`);
});
afterAll(() => killAll());

const emulators: SalesforceEmulator[] = [];
afterEach(async () => {
  for (const e of emulators.splice(0)) await e.stop();
});

type Target = 'customers' | 'contacts';

/**
 * A folder with the model as CSV and an outflow.yaml syncing it, in Bulk jobs of 60 one at
 * a time: `customers` upserts Customer__c by its unique External ID; `contacts` inserts
 * Contact with no match key — a destination that cannot dedupe, where a record in doubt
 * can be neither re-sent nor looked up.
 */
function project(emu: SalesforceEmulator, target: Target): string {
  const dir = tempDir('sf-crash');
  const lines = ['id,ext,name'];
  for (let i = 1; i <= ROWS; i++) lines.push(`${i},cust-${i}@example.com,Customer ${i}`);
  writeFileSync(join(dir, 'model.csv'), `${lines.join('\n')}\n`);
  const to =
    target === 'customers'
      ? `{ connection: dst, object: Customer__c, mode: upsert, matchKey: { External_Id__c: ext } }\n    mappings: { Name: name }`
      : `{ connection: dst, object: Contact, mode: insert }\n    mappings: { LastName: name, Email: ext }`;
  writeFileSync(
    join(dir, 'outflow.yaml'),
    `version: 1
connections:
  src: { connector: duckdb }
  dst: { connector: salesforce, config: { instanceUrl: "${emu.url}", accessToken: "\${env:SF_TOKEN}", bulkThreshold: 50, timeoutMs: 5000 } }
syncs:
  - name: items
    from: { connection: src, file: model.csv, primaryKey: id }
    to: ${to}
    delivery: { batchSize: 60, concurrency: 1 }
`,
  );
  return dir;
}

async function run(dir: string, emu: SalesforceEmulator, failpoints?: `${FailpointName}:${number}`) {
  const cli = outflow(dir, ['run', 'items'], { env: { SF_TOKEN: emu.config.accessToken, HOME: dir, SF_DISABLE_LOG_FILE: 'true' }, ...(failpoints === undefined ? {} : { failpoints }) });
  return within(cli.exited, WAIT, `outflow run${failpoints === undefined ? '' : ` with ${failpoints}`}`, cli.output);
}

async function emulator(): Promise<SalesforceEmulator> {
  const emu = await start({ customObjects: [CUSTOMER], faults: { bulkProcessingMs: 5 } });
  emulators.push(emu);
  return emu;
}

const objectOf = (target: Target) => (target === 'customers' ? 'Customer__c' : 'Contact');
/** The model's value each record carries: Customer__c's External ID, or the contact's email. */
const valueOf = (target: Target, fields: Record<string, unknown> | undefined) => String(fields?.[target === 'customers' ? 'External_Id__c' : 'Email'] ?? '');

/** Creations per record of the model, from the emulator's own write log. */
function createsPerRecord(emu: SalesforceEmulator, target: Target): Map<string, number> {
  const out = new Map<string, number>();
  for (const w of emu.writes().filter((x) => x.op === 'create' && x.object === objectOf(target))) out.set(valueOf(target, w.fields), (out.get(valueOf(target, w.fields)) ?? 0) + 1);
  return out;
}

const model = () => Array.from({ length: ROWS }, (_, i) => `cust-${i + 1}@example.com`).sort();

/** Records the Bulk jobs of the emulator processed, all jobs together: each record once means nothing was uploaded twice. */
const processed = (emu: SalesforceEmulator) => emu.bulkJobs().reduce((n, j) => n + j.numberRecordsProcessed, 0);

async function rowErrors(dir: string): Promise<string[]> {
  const ledger = openSqliteLedger(join(dir, '.outflow'));
  try {
    return (await ledger.listRowErrors({ sync: 'items' })).map((e) => e.reason);
  } finally {
    await ledger.close();
  }
}

const cells: { target: Target; at: `${FailpointName}:${number}`; what: string }[] = [
  { target: 'customers', at: 'salesforce.bulk-closed:1', what: 'the restart reads the results of the job the kill left' },
  { target: 'contacts', at: 'salesforce.bulk-closed:1', what: 'the restart reads the results of the job the kill left, so no contact is parked as outcome unknown' },
  { target: 'customers', at: 'salesforce.bulk-uploaded:1', what: 'the restart aborts the job left open, which applied nothing, and sends its records again' },
];

describe('the CLI killed between a Bulk API job and its results', () => {
  for (const { target, at, what } of cells) {
    it(`${target}, killed at ${at}: ${what}; every record created once, none lost, none uploaded twice`, async () => {
      const emu = await emulator();
      const dir = project(emu, target);
      const killed = await run(dir, emu, at);
      expect(killed.signal, killed.output).toBe('SIGKILL');
      expect(killed.output).toContain(`failpoint ${at.split(':')[0]} reached`);

      const again = await run(dir, emu);
      expect(again.code, again.output).toBe(0);
      // The summary says how the records went: the 60 a closed job holds were told by it, not sent.
      expect(again.output).toContain(`sent by bulk: ${at.startsWith('salesforce.bulk-closed') ? 60 : 120} records`);
      expect(await rowErrors(dir)).toEqual([]);
      const creates = createsPerRecord(emu, target);
      expect([...creates.keys()].sort()).toEqual(model());
      expect([...creates.values()].every((n) => n === 1)).toBe(true);
      expect(emu.records(objectOf(target)).map((r) => valueOf(target, r)).sort()).toEqual(model());
      expect(processed(emu)).toBe(ROWS);
      if (at.startsWith('salesforce.bulk-uploaded')) expect(emu.bulkJobs().filter((j) => j.state === 'Aborted')).toHaveLength(1);
    });
  }

  it('catches a connector that forgets its job: the batch is uploaded again, and contacts are parked as outcome unknown', async () => {
    for (const target of ['customers', 'contacts'] as const) {
      const emu = await emulator();
      const dir = project(emu, target);
      expect((await run(dir, emu, 'salesforce.bulk-closed:1')).signal).toBe('SIGKILL');
      // What a connector keeping no job would leave behind: nothing.
      const ledger = openSqliteLedger(join(dir, '.outflow'));
      await ledger.kv('dst').delete('bulk-jobs');
      await ledger.close();

      await run(dir, emu);
      if (target === 'customers') expect(processed(emu)).toBeGreaterThan(ROWS);
      else expect((await rowErrors(dir)).filter((r) => /outcome unknown/.test(r))).toHaveLength(60);
    }
  });
});
