import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { start as startHubSpot, type HubSpotEmulator } from '@outflow/connector-hubspot/emulator';
import { RECEIVER_PATH, start as startReceiver } from '@outflow/connector-webhook/emulator';
import { startHostileServer, type HostileServer } from '@outflow/testing';
import { jsonLines, runCli, SANDBOX_CONFIG, startCli, tempDir, writeConfig, writeCustomers } from './helpers.js';

// The built CLI against local safety rules and a hostile HubSpot API on 127.0.0.1.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Every file and folder under `dir`, recursively, with its permission bits. */
function modesUnder(dir: string): { path: string; dir: boolean; mode: number }[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const st = statSync(path);
    const entry = { path, dir: st.isDirectory(), mode: st.mode & 0o777 };
    return st.isDirectory() ? [entry, ...modesUnder(path)] : [entry];
  });
}

describe('private state', () => {
  it('.outflow and everything in it is readable by the owner only; plan leaves no temp folder behind', async () => {
    const dir = tempDir();
    const tmp = tempDir('outflow-tmp-');
    writeCustomers(dir, 20);
    writeConfig(dir, SANDBOX_CONFIG);
    const env = { TMPDIR: tmp };
    expect((await runCli(['run'], { cwd: dir, env })).code).toBe(0);
    writeCustomers(dir, 25);
    const plan = await runCli(['plan', '--json'], { cwd: dir, env });
    expect(plan.code, plan.stderr).toBe(0);
    expect(jsonLines(plan.stdout)[0]).toMatchObject({ counts: { upsert: 5 } });

    expect(statSync(join(dir, '.outflow')).mode & 0o777).toBe(0o700);
    const entries = modesUnder(join(dir, '.outflow'));
    // The ledger, the delivered state and the sandbox receiver's log (row data) are all there.
    expect(entries.some((e) => e.path.endsWith('ledger.db'))).toBe(true);
    expect(entries.some((e) => e.path.endsWith('.duckdb'))).toBe(true);
    expect(entries.some((e) => e.path.includes('sandbox'))).toBe(true);
    for (const e of entries) expect(e.mode & 0o077, `${e.path} is ${e.mode.toString(8)}`).toBe(0);
    // The dry run spilled to a temp folder of its own and removed it.
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe('a hung call', () => {
  const config = (basePath: string) => `version: 1
connections:
  warehouse: { connector: duckdb }
  crm: { connector: hubspot, config: { accessToken: "\${env:HUBSPOT_TOKEN}", basePath: "${basePath}", tier: professional } }
syncs:
  - name: customers
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: crm, object: contacts, mode: upsert, matchKey: { email: email } }
    mappings: { email: email, firstname: name }
`;

  async function setup(): Promise<{ dir: string; emu: HubSpotEmulator; server: HostileServer; env: Record<string, string> }> {
    const emu = await startHubSpot();
    cleanups.push(() => emu.stop());
    // Property reads reach the emulator; every write is applied there, but its answer never comes back.
    const server = await startHostileServer((r) => ({ kind: 'forward', to: emu.url, answer: r.method !== 'POST' }));
    cleanups.push(() => server.close());
    const dir = tempDir();
    writeCustomers(dir, 250);
    writeConfig(dir, config(server.url));
    return { dir, emu, server, env: { HUBSPOT_TOKEN: emu.config.accessToken } };
  }

  it('to HubSpot: SIGTERM exits within the grace period, cancelling the call; the next run creates every contact exactly once', async () => {
    const { dir, emu, server, env } = await setup();
    const run = startCli(['run', '--json', '--grace', '1s'], { cwd: dir, env });
    // The writes in flight are applied at the emulator; their answers never come.
    await expect.poll(() => server.requests.filter((r) => r.method === 'POST').length, { timeout: 30_000, interval: 20 }).toBeGreaterThan(0);
    await expect.poll(() => emu.stats().writes.length, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
    const stoppedAt = Date.now();
    run.child.kill('SIGTERM');
    const r = await run.done;
    const took = Date.now() - stoppedAt;
    expect(r.code, r.stderr).toBe(130);
    // The default request timeout is 60 s: only cancelling the call ends the run this soon.
    expect(took).toBeLessThan(15_000);
    expect(jsonLines(r.stdout)[0]).toMatchObject({ status: 'aborted' });
    await expect.poll(() => server.requests.filter((q) => q.method === 'POST').every((q) => q.abandoned), { timeout: 5_000 }).toBe(true);

    server.mode = { kind: 'forward', to: emu.url };
    const next = await runCli(['run', '--json'], { cwd: dir, env });
    expect(next.code, next.stderr).toBe(0);
    expect(jsonLines(next.stdout)[0]).toMatchObject({ status: 'succeeded' });
    const creates = new Map<string, number>();
    for (const w of emu.stats().writes) {
      if (w.object === 'contacts' && w.op === 'create') creates.set(String(w.properties?.['email']), (creates.get(String(w.properties?.['email'])) ?? 0) + 1);
    }
    expect(creates.size).toBe(250);
    expect([...creates.values()].every((n) => n === 1)).toBe(true);
    expect(emu.records('contacts')).toHaveLength(250);
  });

  it('to a webhook receiver: SIGTERM exits within the grace period; the next run creates every record exactly once', async () => {
    const receiver = await startReceiver({ secret: 'hung-secret' });
    cleanups.push(() => receiver.stop());
    const server = await startHostileServer({ kind: 'forward', to: new URL(receiver.url).origin, answer: false });
    cleanups.push(() => server.close());
    const dir = tempDir();
    writeCustomers(dir, 300);
    writeConfig(
      dir,
      `version: 1
connections:
  warehouse: { connector: duckdb }
  hooks: { connector: webhook, config: { url: "${server.url}${RECEIVER_PATH}", secret: hung-secret, timeoutMs: 60000, batchSize: 50 } }
syncs:
  - name: customers
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: hooks, object: customers }
`,
    );
    const run = startCli(['run', '--json', '--grace', '1s'], { cwd: dir });
    await expect.poll(() => receiver.records('customers').length, { timeout: 30_000, interval: 20 }).toBeGreaterThan(0);
    const stoppedAt = Date.now();
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    // timeoutMs is 60 s: only cancelling the calls ends the run this soon.
    expect(Date.now() - stoppedAt).toBeLessThan(15_000);
    await expect.poll(() => server.requests.every((q) => q.abandoned), { timeout: 5_000 }).toBe(true);

    server.mode = { kind: 'forward', to: new URL(receiver.url).origin };
    const next = await runCli(['run', '--json'], { cwd: dir });
    expect(jsonLines(next.stdout)[0], next.stderr).toMatchObject({ status: 'succeeded' });
    const counts = receiver.createdCounts()['customers']!;
    expect(Object.keys(counts)).toHaveLength(300);
    expect(Object.values(counts).every((n) => n === 1)).toBe(true);
  });
});

describe('a 1.5 GB error body', () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const guard = join(here, '..', '..', '..', 'packages', 'testing', 'dist', 'network-guard.js');
  const rss = join(here, 'fixtures', 'max-rss.mjs');
  const LIMIT = 1024 * 1024;

  /** Peak RSS (bytes) of one `outflow run` against `server`, as the child process measured it. */
  async function peakRss(dir: string, env: Record<string, string>): Promise<number> {
    const imports = [...(existsSync(guard) ? [guard] : []), rss].map((f) => `--import ${f}`).join(' ');
    const r = await runCli(['run', '--json'], { cwd: dir, env: { ...env, NODE_OPTIONS: imports } });
    expect(r.code, r.stderr).toBe(1);
    const kb = /max-rss-kb=(\d+)/.exec(r.stderr);
    expect(kb, r.stderr).not.toBeNull();
    return Number(kb![1]) * 1024;
  }

  const cases = [
    {
      connector: 'webhook',
      connection: (url: string) => `{ connector: webhook, config: { url: "${url}", secret: s3cret-value, maxResponseBytes: ${LIMIT} } }`,
      extra: '',
    },
    {
      connector: 'hubspot',
      connection: (url: string) =>
        `{ connector: hubspot, config: { accessToken: "\${env:HUBSPOT_TOKEN}", basePath: "${url}", maxResponseBytes: ${LIMIT} } }`,
      extra: ', matchKey: { email: email }',
    },
  ];

  for (const c of cases) {
    it(`keeps the ${c.connector} run's peak memory within maxResponseBytes plus 32 MB of a run against a small error`, async () => {
      const emu = await startHubSpot();
      cleanups.push(() => emu.stop());
      let bytes = 200;
      // HubSpot's property reads reach the emulator; every write is answered 500 with `bytes` of body.
      const server = await startHostileServer((r) =>
        r.method === 'POST' ? { kind: 'huge-body', bytes, status: 500 } : { kind: 'forward', to: emu.url },
      );
      cleanups.push(() => server.close());
      const dir = tempDir();
      writeCustomers(dir, 50);
      writeConfig(
        dir,
        `version: 1
connections:
  warehouse: { connector: duckdb }
  dest: ${c.connection(server.url)}
syncs:
  - name: customers
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: dest, object: contacts, mode: upsert${c.extra} }
    mappings: { email: email, firstname: name }
    delivery: { maxAttempts: 2, batchSize: 50 }
`,
      );
      const env = { HUBSPOT_TOKEN: emu.config.accessToken };
      // Peak RSS varies by a few MB from run to run (when the GC runs): the median of three.
      const median = async () => {
        const runs = [await peakRss(dir, env), await peakRss(dir, env), await peakRss(dir, env)];
        return runs.sort((a, b) => a - b)[1]!;
      };
      const small = await median();
      const sentBefore = server.bytesSent;
      bytes = 1.5 * 1024 ** 3;
      const huge = await median();
      // The server streamed far less than the body: each client stopped reading and closed.
      expect(server.bytesSent - sentBefore).toBeLessThan(3 * 64 * 1024 * 1024);
      const grew = huge - small;
      console.log(`${c.connector}: peak RSS ${(small / 2 ** 20).toFixed(1)} MB with a 200-byte error body, ${(huge / 2 ** 20).toFixed(1)} MB with a 1.5 GB one (+${(grew / 2 ** 20).toFixed(1)} MB; limit ${LIMIT / 2 ** 20} MB)`);
      // Peak RSS of a loaded machine moves by ten MB or so between runs; reading the body whole
      // would add hundreds of MB at least (766 MB and 3.2 GB were measured before bodies were bounded).
      expect(grew).toBeLessThan(LIMIT + 32 * 1024 * 1024);
    });
  }
});
