import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { jsonLines, runCli, tempDir, writeConfig, writeCustomers } from './helpers.js';

let emulator: WebhookEmulator | undefined;
afterEach(async () => {
  await emulator?.stop();
  emulator = undefined;
});

async function setup(sync: string) {
  const dir = tempDir();
  emulator = await start({ secret: 'guard-secret', dataDir: join(dir, 'receiver') });
  writeConfig(
    dir,
    `version: 1
connections:
  warehouse: { connector: duckdb }
  hooks: { connector: webhook, config: { url: "${emulator.url}", secret: guard-secret, batchSize: 500 } }
syncs:
  - name: customers
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: hooks, object: customers, mode: upsert, deletes: delete }
${sync}`,
  );
  return dir;
}

describe('failWhen', () => {
  it('fails a run with more rejections than rejectedPct (exit 1), saying why; status and errors show the rows waiting', async () => {
    const dir = await setup('    failWhen: { rejectedPct: 5 }\n');
    writeCustomers(dir, 200, (r, id) => (id % 17 === 1 ? [r[0]!, 'not-an-email', r[2]!, r[3]!] : r));

    const run = await runCli(['run'], { cwd: dir });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('✗ customers: 188 created, 0 updated, 0 deleted, 12 rejected');
    expect(run.stdout).toContain('OUTFLOW_TOO_MANY_REJECTED: sync "customers": 12 of 200 records (6%) were rejected, more than failWhen.rejectedPct 5');

    const status = await runCli(['status'], { cwd: dir });
    expect(status.stdout).toMatch(/customers\s+failed/);
    expect(status.stdout).toContain('customers: 12 rows wait for a change or `outflow retry` (see `outflow errors`)');

    const errors = await runCli(['errors'], { cwd: dir });
    expect(errors.stdout).toMatch(/waits for/);
    expect(errors.stdout).toMatch(/is not a valid email address.*a change or retry/);
    expect(errors.stdout).toContain('12 rows parked: each waits until its row changes, or until you send it again with: outflow retry');
    const listed = JSON.parse((await runCli(['errors', '--json'], { cwd: dir })).stdout) as { parked: boolean }[];
    expect(listed).toHaveLength(12);
    expect(listed.every((e) => e.parked)).toBe(true);

    // The parked rows are not sent again while unchanged, so the next run has nothing to reject.
    const next = jsonLines((await runCli(['run', '--json'], { cwd: dir })).stdout)[0]!;
    expect(next).toMatchObject({ status: 'succeeded', inserted: 0, rejected: 0, parked: 12 });
  });
});

describe('maxDeletes', () => {
  it('plan shows the share of deletes; run stops before sending anything (exit 1); --allow-deletes lets it through', async () => {
    const dir = await setup('');
    writeCustomers(dir, 100);
    expect(jsonLines((await runCli(['run', '--json'], { cwd: dir })).stdout)[0]).toMatchObject({ inserted: 100 });

    // The model loses 70 of its 100 rows (an upstream job failed half-way), and row 3 changes.
    writeCustomers(dir, 30, (r, id) => (id === 3 ? [r[0]!, r[1]!, 'Renamed', r[3]!] : r));
    const plan = await runCli(['plan'], { cwd: dir });
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('customers: 0 to create, 1 to update, 70 to delete');
    expect(plan.stdout).toContain(
      'deletes 70 of the 100 records Outflow owns (70%); maxDeletes.pct 50: a run would stop before sending anything (run it with --allow-deletes to let it through)',
    );
    const planned = jsonLines((await runCli(['plan', '--json'], { cwd: dir })).stdout)[0]!;
    expect(planned['deletes']).toEqual({ deletes: 70, owned: 100, pct: 70, maxPct: 50, exceeded: true });

    const requests = emulator!.requests;
    const stopped = await runCli(['run'], { cwd: dir });
    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toContain(
      'OUTFLOW_DELETE_GUARD: sync "customers": this run would delete 70 of the 100 records Outflow owns in customers (70%), more than maxDeletes.pct 50; nothing was sent.',
    );
    expect(stopped.stdout).toContain('`outflow run --allow-deletes`');
    expect(emulator!.requests).toBe(requests);
    expect(emulator!.records('customers')).toHaveLength(100);
    expect(emulator!.records('customers').find((r) => r.key === '3')!.fields['name']).toBe('User 3');

    const allowed = await runCli(['run', '--allow-deletes', '--json'], { cwd: dir });
    expect(allowed.code).toBe(0);
    expect(jsonLines(allowed.stdout)[0]).toMatchObject({ status: 'succeeded', updated: 1, deleted: 70 });
    expect(emulator!.records('customers')).toHaveLength(30);
  });

  it('documents the flags in --help', async () => {
    const dir = await setup('');
    const help = await runCli(['run', '--help'], { cwd: dir });
    expect(help.stdout).toContain('--allow-deletes');
    expect(help.stdout).toContain('maxDeletes.pct');
    expect((await runCli(['retry', '--help'], { cwd: dir })).stdout).toMatch(/a stream\s+sync sends their\s+current rows from the model/);
  });
});
