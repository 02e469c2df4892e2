import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { jsonLines, runCli, startCli, tempDir, writeConfig, writeCustomers } from './helpers.js';

let emulator: WebhookEmulator | undefined;
afterEach(async () => {
  await emulator?.stop();
  emulator = undefined;
});

async function setup(extra = '') {
  const dir = tempDir();
  writeCustomers(dir, 20, (r, id) => (id === 5 ? [r[0]!, 'bad-email', r[2]!, r[3]!] : r));
  emulator = await start({ secret: 'cmd-secret', dataDir: join(dir, 'receiver') });
  writeConfig(
    dir,
    `version: 1
connections:
  warehouse: { connector: duckdb }
  hooks: { connector: webhook, config: { url: "${emulator.url}", secret: cmd-secret } }
syncs:
  - name: customers
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: hooks, object: customers }
${extra}`,
  );
  return dir;
}

describe('outflow commands', () => {
  it('schema prints the composed JSON Schema with each connector’s config', async () => {
    const dir = await setup();
    const r = await runCli(['schema'], { cwd: dir });
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as Record<string, unknown>;
    const text = JSON.stringify(schema);
    expect(text).toContain('"const":"webhook"');
    expect(text).toContain('"secret":true');
    expect(text).toContain('"const":"duckdb"');
  });

  it('discover lists a source’s columns and a destination’s objects', async () => {
    const dir = await setup();
    const src = await runCli(['discover', 'warehouse', '--json'], { cwd: dir });
    expect(src.code).toBe(0);
    expect(JSON.parse(src.stdout)).toHaveProperty('tables');
    const dst = await runCli(['discover', 'hooks', '--json'], { cwd: dir });
    expect((JSON.parse(dst.stdout) as { objects: unknown[] }).objects.length).toBeGreaterThan(0);
  });

  it('status and errors say so when nothing has run, without creating state', async () => {
    const dir = await setup();
    expect((await runCli(['status'], { cwd: dir })).stdout).toContain('No runs yet');
    expect((await runCli(['errors'], { cwd: dir })).stdout).toContain('No row errors');
    expect((await runCli(['status', '--json'], { cwd: dir })).stdout.trim()).toBe('[]');
  });

  it('an unknown sync name is a usage error (exit 2)', async () => {
    const dir = await setup();
    const r = await runCli(['run', 'nope'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('OUTFLOW_SYNC_NOT_FOUND');
    expect(r.stderr).toContain('customers');
  });

  it('retry sends a parked row again once the destination accepts it', async () => {
    const dir = await setup();
    emulator!.setFaults({ rejectKeys: ['7'] });
    const first = jsonLines((await runCli(['run', '--json'], { cwd: dir })).stdout)[0]!;
    expect(first).toMatchObject({ inserted: 18, rejected: 2, parked: 2 });
    emulator!.setFaults({});
    const again = jsonLines((await runCli(['run', '--json'], { cwd: dir })).stdout)[0]!;
    expect(again).toMatchObject({ inserted: 0, rejected: 0, parked: 2 });
    const retried = jsonLines((await runCli(['retry', '--json'], { cwd: dir })).stdout)[0]!;
    // Key 7 lands now; key 5's email is still invalid, so it is refused again and stays parked.
    expect(retried).toMatchObject({ inserted: 1, rejected: 1, parked: 1 });
    expect(emulator!.records('customers').map((r) => r.key)).toContain('7');
    const errors = JSON.parse((await runCli(['errors', '--json'], { cwd: dir })).stdout) as { key: string; attempts: number }[];
    expect(errors).toMatchObject([{ key: '5', attempts: 2 }]);
  });

  it('run --watch repeats a diff sync on its schedule until SIGTERM', async () => {
    const dir = await setup('    schedule: { every: 1s }\n');
    const watch = startCli(['run', '--watch', '--json'], { cwd: dir });
    await expect.poll(() => jsonLines(watch.output()).length, { timeout: 20_000, interval: 100 }).toBeGreaterThanOrEqual(3);
    watch.child.kill('SIGTERM');
    const r = await watch.done;
    expect([0, 130]).toContain(r.code);
    const runs = jsonLines(r.stdout);
    expect(runs[0]).toMatchObject({ inserted: 19 });
    expect(runs[1]).toMatchObject({ inserted: 0, updated: 0 });
  });
});
