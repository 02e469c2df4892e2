import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { jsonLines, runCli, startCli, tempDir, writeConfig, writeCustomers } from './helpers.js';

const sandboxConfig = (extra = '') => `version: 1
connections:
  warehouse:
    connector: duckdb
  hooks:
    connector: webhook
    sandbox: true
syncs:
  - name: customers
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: hooks, object: customers, mode: upsert, deletes: delete }
    mappings: { email: email, name: name, score: score }
${extra}`;

let emulator: WebhookEmulator | undefined;
afterEach(async () => {
  await emulator?.stop();
  emulator = undefined;
});

/** Every file under a folder, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('outflow run on a sandbox', () => {
  it('delivers the valid rows, parks the invalid ones with reasons, then sends 0 changes, then exactly one edit', async () => {
    const dir = tempDir();
    writeCustomers(dir, 500, (r, id) => (id === 7 || id === 300 ? [r[0]!, 'not-an-email', r[2]!, r[3]!] : r));
    writeConfig(dir, sandboxConfig());

    const first = await runCli(['run', '--json'], { cwd: dir });
    expect(first.code).toBe(0);
    const [summary] = jsonLines(first.stdout);
    expect(summary).toMatchObject({ sync: 'customers', status: 'partial', inserted: 498, updated: 0, deleted: 0, rejected: 2 });
    expect(typeof summary!['durationMs']).toBe('number');

    const errors = await runCli(['errors', '--json'], { cwd: dir });
    const rows = JSON.parse(errors.stdout) as { key: string; reason: string }[];
    expect(rows.map((r) => r.key).sort()).toEqual(['300', '7']);
    expect(rows[0]!.reason).toContain('is not a valid email address');

    const second = await runCli(['run', '--json'], { cwd: dir });
    expect(jsonLines(second.stdout)[0]).toMatchObject({ inserted: 0, updated: 0, deleted: 0, rejected: 0, parked: 2 });

    writeCustomers(dir, 500, (r, id) =>
      id === 7 || id === 300 ? [r[0]!, 'not-an-email', r[2]!, r[3]!] : id === 42 ? [r[0]!, r[1]!, 'Renamed', r[3]!] : r,
    );
    const plan = await runCli(['plan', '--json'], { cwd: dir });
    expect(plan.code).toBe(0);
    const planned = jsonLines(plan.stdout)[0] as { changes: { kind: string; key: string; fields: Record<string, unknown> }[] };
    expect(planned.changes).toEqual([{ kind: 'upsert', key: '42', fields: { email: 'user42@example.com', name: 'Renamed', score: 42 } }]);

    const third = await runCli(['run', '--json'], { cwd: dir });
    expect(jsonLines(third.stdout)[0]).toMatchObject({ inserted: 0, updated: 1, deleted: 0 });

    const status = await runCli(['status', '--json'], { cwd: dir });
    expect((JSON.parse(status.stdout) as unknown[]).length).toBe(3);
  });

  it('a malformed config: every problem with file, line, path and expectation; exit 2; nothing written', async () => {
    const dir = tempDir();
    writeCustomers(dir, 3);
    writeConfig(
      dir,
      `version: 1
connections:
  warehouse:
    connector: duckdb
    config: { readOnly: maybe }
  hooks:
    connector: webhook
    config:
      url: http://127.0.0.1:9/hook
syncs:
  - name: customers
    from: { connection: warehouse, tabel: customers, primaryKey: id }
    to: { connection: hooks, object: customers, mode: upsrt }
`,
    );
    for (const command of [['validate'], ['run'], ['plan']]) {
      const r = await runCli(command, { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('OUTFLOW_CONFIG_INVALID');
      expect(r.stderr).toMatch(/outflow\.yaml:5:\d+ \/connections\/warehouse\/config\/readOnly: must be true or false \(got "maybe"\)/);
      expect(r.stderr).toMatch(/outflow\.yaml:(8|9):\d+ \/connections\/hooks\/config: missing required property "secret"/);
      expect(r.stderr).toMatch(/outflow\.yaml:12:\d+ \/syncs\/0\/from: unknown property "tabel"/);
      expect(r.stderr).toMatch(/outflow\.yaml:13:\d+ \/syncs\/0\/to\/mode: must be one of upsert, update, insert, mirror, event \(got "upsrt"\)/);
      expect(existsSync(join(dir, '.outflow'))).toBe(false);
    }
  });

  it('an unknown connector gets the npm install hint and exit 2', async () => {
    const dir = tempDir();
    writeConfig(dir, sandboxConfig().replace('connector: webhook', 'connector: zendesk'));
    const r = await runCli(['validate'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('npm install @outflow/connector-zendesk');
    expect(existsSync(join(dir, '.outflow'))).toBe(false);
  });
});

describe('crash safety', () => {
  it('SIGKILL mid-delivery, then a restart: every row arrives, none is created twice', async () => {
    const dir = tempDir();
    const n = 3000;
    writeCustomers(dir, n);
    emulator = await start({ dataDir: join(dir, 'receiver'), secret: 'kill-test-secret', faults: { latencyMs: 15 } });
    writeConfig(
      dir,
      `version: 1
connections:
  warehouse: { connector: duckdb }
  hooks:
    connector: webhook
    config: { url: "${emulator.url}", secret: "\${env:HOOK_SECRET}", batchSize: 50, concurrency: 2, requestsPerSecond: 1000 }
syncs:
  - name: customers
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: hooks, object: customers, mode: insert }
`,
    );
    const env = { HOOK_SECRET: 'kill-test-secret' };
    const victim = startCli(['run', '--json'], { cwd: dir, env });
    await expect.poll(() => emulator!.records('customers').length, { timeout: 30_000, interval: 20 }).toBeGreaterThan(600);
    victim.child.kill('SIGKILL');
    const killed = await victim.done;
    expect(killed.signal).toBe('SIGKILL');
    const landed = emulator.records('customers').length;
    expect(landed).toBeLessThan(n);

    const again = await runCli(['run', '--json'], { cwd: dir, env });
    expect(again.code, again.stderr).toBe(0);
    const summary = jsonLines(again.stdout)[0]!;
    expect(summary['status']).toBe('succeeded');
    // The killed run's 'running' entry is closed as aborted when the next run starts.
    const status = JSON.parse((await runCli(['status', '--json'], { cwd: dir, env })).stdout) as { status: string }[];
    expect(status.map((r) => r.status)).toEqual(['succeeded', 'aborted']);

    const records = emulator.records('customers');
    expect(records.length).toBe(n);
    expect(new Set(records.map((r) => r.key)).size).toBe(n);
    const counts = emulator.createdCounts()['customers']!;
    expect(Object.values(counts).every((c) => c === 1)).toBe(true);
    expect(Object.keys(counts).length).toBe(n);
    // Inserts re-sent after the kill carry their original idempotency keys: nothing else moved.
    const third = await runCli(['run', '--json'], { cwd: dir, env });
    expect(jsonLines(third.stdout)[0]).toMatchObject({ inserted: 0, updated: 0, rejected: 0 });
  });

  it('SIGTERM drains the batches in flight, records the run as aborted and exits 130; the next run completes', async () => {
    const dir = tempDir();
    writeCustomers(dir, 2000);
    emulator = await start({ secret: 'term-secret', faults: { latencyMs: 20 } });
    writeConfig(
      dir,
      `version: 1
connections:
  warehouse: { connector: duckdb }
  hooks: { connector: webhook, config: { url: "${emulator.url}", secret: term-secret, batchSize: 20, concurrency: 1 } }
syncs:
  - name: customers
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: hooks, object: customers }
`,
    );
    const run = startCli(['run', '--json'], { cwd: dir });
    await expect.poll(() => emulator!.records('customers').length, { timeout: 30_000, interval: 20 }).toBeGreaterThan(100);
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code).toBe(130);
    const s = jsonLines(r.stdout)[0]!;
    expect(s['status']).toBe('aborted');
    // What the receiver holds is exactly what the ledger counted as delivered.
    expect(emulator.records('customers').length).toBe(s['inserted']);
    const next = await runCli(['run', '--json'], { cwd: dir });
    expect(jsonLines(next.stdout)[0]).toMatchObject({ status: 'succeeded', inserted: 2000 - (s['inserted'] as number) });
  });
});

describe('secrets', () => {
  it('never appear in logs, errors, plan output, the ledger or the diff state', async () => {
    const dir = tempDir();
    const secret = 'sk_live_5ecret-Value-0123456789';
    writeCustomers(dir, 50);
    emulator = await start({ secret, dataDir: join(dir, 'receiver') });
    const config = (s: string) => `version: 1
connections:
  warehouse: { connector: duckdb }
  hooks: { connector: webhook, config: { url: "${emulator!.url}", secret: "\${env:HOOK_SECRET}" } }
syncs:
  - name: customers
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: hooks, object: customers }
    mappings: { email: email, token: ${s} }
`;
    // The secret also flows through the model, so it is sent as data: the redactor must
    // still keep it out of everything Outflow itself writes.
    writeCustomers(dir, 50, (r) => [r[0]!, r[1]!, secret, r[3]!]);
    writeConfig(dir, config('name'));
    const env = { HOOK_SECRET: secret, OUTFLOW_LOG_LEVEL: 'debug' };
    const outputs = [
      await runCli(['check'], { cwd: dir, env }),
      await runCli(['plan'], { cwd: dir, env }),
      await runCli(['plan', '--json'], { cwd: dir, env }),
      await runCli(['run'], { cwd: dir, env }),
      await runCli(['run', '--json'], { cwd: dir, env }),
      await runCli(['status'], { cwd: dir, env }),
      await runCli(['errors'], { cwd: dir, env }),
      // A wrong secret: the receiver refuses, and the error is reported.
      await runCli(['check'], { cwd: dir, env: { ...env, HOOK_SECRET: `${secret}-wrong` } }),
      await runCli(['run'], { cwd: dir, env: { ...env, HOOK_SECRET: `${secret}-wrong` } }),
    ];
    expect(outputs[0]!.code).toBe(0);
    expect(outputs[7]!.code).toBe(1);
    expect(outputs[7]!.stdout + outputs[7]!.stderr).toMatch(/401|signature|refused/i);
    for (const o of outputs) {
      expect(o.stdout + o.stderr).not.toContain(secret);
      expect(o.stdout + o.stderr).not.toContain('5ecret-Value');
    }
    expect(outputs[2]!.stdout).toContain('[REDACTED]');
    const files = filesUnder(join(dir, '.outflow'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(readFileSync(f).includes(secret), f).toBe(false);
  });
});
