import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { jsonLines, runCli, startCli, tempDir, writeConfig, writeCustomers } from './helpers.js';

const CONFIG = `version: 1
connections:
  warehouse: { connector: duckdb }
  crm: { connector: hubspot, sandbox: true }
  hooks: { connector: webhook, sandbox: true }
syncs:
  - name: contacts
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: crm, object: contacts, mode: upsert, matchKey: { email: email } }
    mappings: { firstname: name }
  - name: customers
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: hooks, object: customers, mode: upsert }
    mappings: { email: email, name: name }
`;

type Sandbox = ReturnType<typeof startCli>;
const running = new Set<Sandbox>();
afterEach(async () => {
  for (const s of running) {
    s.child.kill('SIGKILL');
    await s.done;
  }
  running.clear();
});

/** Starts `outflow sandbox` and waits until it has printed its connections. */
async function startSandbox(dir: string, names: string[] = []) {
  const s = startCli(['sandbox', ...names], { cwd: dir });
  running.add(s);
  const deadline = Date.now() + 30_000;
  while (!s.output().includes('Ctrl-C to stop')) {
    if (s.child.exitCode !== null || Date.now() > deadline) {
      const r = await s.done;
      throw new Error(`outflow sandbox did not start (exit ${r.code}): ${r.stdout}${r.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const text = s.output();
  const block = text.slice(text.indexOf('connections:\n'), text.indexOf('\nData in'));
  const { connections } = parseYaml(block) as { connections: Record<string, { connector: string; config: Record<string, string> }> };
  return {
    ...s,
    text,
    block,
    connections,
    async stop(signal: NodeJS.Signals = 'SIGINT') {
      s.child.kill(signal);
      const r = await s.done;
      running.delete(s);
      return r;
    },
  };
}

const hubspotRecords = async (basePath: string) =>
  ((await (await fetch(`${basePath}/_emulator/records?object=contacts`)).json()) as { records: { properties: Record<string, string> }[] }).records;
const receiverState = async (url: string) =>
  (await (await fetch(`${new URL(url).origin}/_outflow/records?object=customers`)).json()) as { records: { key: string }[]; requests: number };

describe('outflow sandbox', () => {
  it('prints each URL and a pasteable connection block; check passes through it; run, check and plan with the same sandbox: true config use it', async () => {
    const dir = tempDir();
    writeCustomers(dir, 5);
    writeConfig(dir, CONFIG);
    const sandbox = await startSandbox(dir);

    const { crm, hooks } = sandbox.connections;
    expect(crm).toEqual({ connector: 'hubspot', config: { accessToken: expect.any(String), basePath: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) } });
    expect(hooks).toEqual({ connector: 'webhook', config: { url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\//), secret: expect.any(String) } });
    expect(sandbox.text).toContain(`crm (hubspot)    ${crm!.config['basePath']}\n`);
    expect(sandbox.text).toContain(`hooks (webhook)  ${hooks!.config['url']}\n`);
    // Both emulators answer at the printed addresses, empty so far.
    expect(await hubspotRecords(crm!.config['basePath']!)).toEqual([]);
    expect((await receiverState(hooks!.config['url']!)).records).toEqual([]);

    // A client pointed at the printed block (no sandbox flag) checks out.
    const client = tempDir();
    writeConfig(client, `version: 1\n${sandbox.block}\nsyncs: []\n`);
    const direct = await runCli(['check'], { cwd: client });
    expect(direct.stdout, direct.stderr).toBe('✓ crm (hubspot)\n✓ hooks (webhook)\n');
    expect(direct.code).toBe(0);

    // The same sandbox: true config uses the running emulators instead of starting its own.
    const requestsBefore = (await receiverState(hooks!.config['url']!)).requests;
    const check = await runCli(['check'], { cwd: dir });
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toContain('✓ crm (hubspot)\n✓ hooks (webhook)\n');
    expect(check.stderr).toContain('sandbox: using the hubspot emulator of `outflow sandbox`');
    expect(check.stderr).not.toContain('emulator started');
    expect((await receiverState(hooks!.config['url']!)).requests).toBeGreaterThan(requestsBefore);

    const run = await runCli(['run', '--json'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    expect(jsonLines(run.stdout)).toMatchObject([
      { sync: 'contacts', inserted: 5 },
      { sync: 'customers', inserted: 5 },
    ]);
    expect(run.stderr).not.toContain('emulator started');
    // What the run wrote is in the sandbox process's emulators.
    expect((await hubspotRecords(crm!.config['basePath']!)).map((r) => r.properties['email']).sort()).toEqual(
      [1, 2, 3, 4, 5].map((i) => `user${i}@example.com`),
    );
    expect((await receiverState(hooks!.config['url']!)).records.map((r) => r.key).sort()).toEqual(['1', '2', '3', '4', '5']);

    writeCustomers(dir, 6);
    const plan = await runCli(['plan', '--json'], { cwd: dir });
    expect(plan.code, plan.stderr).toBe(0);
    expect(jsonLines(plan.stdout)).toMatchObject([{ counts: { upsert: 1 } }, { counts: { upsert: 1 } }]);

    // A second `outflow sandbox` on the same folders refuses, naming the one that holds them.
    const second = await runCli(['sandbox'], { cwd: dir });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`error OUTFLOW_EMULATOR: the sandbox of connection "crm" is in use by \`outflow sandbox\` (pid ${sandbox.child.pid}`);
    expect(second.stdout).toBe('');

    const endpoints = ['crm', 'hooks'].map((c) => join(dir, '.outflow', 'sandbox', c, 'endpoint.json'));
    for (const f of endpoints) expect(JSON.parse(readFileSync(f, 'utf8'))).toMatchObject({ holder: 'sandbox', pid: sandbox.child.pid });
    const stopped = await sandbox.stop('SIGINT');
    expect(stopped.code).toBe(130);
    expect(stopped.stdout).toMatch(/Sandbox stopped\.\n$/);
    for (const f of endpoints) expect(existsSync(f)).toBe(false);
    // Secrets the sandbox logs never hold: the emulator's credentials went to standard output only.
    expect(stopped.stderr).not.toContain(crm!.config['accessToken']);
    expect(stopped.stderr).not.toContain(hooks!.config['secret']);

    // The data stays in the folder: a sandbox started again serves the records, and stops on SIGTERM.
    const again = await startSandbox(dir, ['crm']);
    expect(Object.keys(again.connections)).toEqual(['crm']);
    expect(await hubspotRecords(again.connections['crm']!.config['basePath']!)).toHaveLength(5);
    expect((await again.stop('SIGTERM')).code).toBe(130);
  });

  it('replaces an endpoint file left by a process that is gone', async () => {
    const dir = tempDir();
    writeConfig(dir, CONFIG);
    // A pid that existed and is gone now, and a port nothing listens on.
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    const url = 'http://127.0.0.1:9/hooks/outflow';
    const stale = { holder: 'sandbox', pid: gone, hostname: hostname(), connector: 'webhook', startedAt: '2026-01-01T00:00:00.000Z', url, config: { url, secret: 'x' } };
    mkdirSync(join(dir, '.outflow', 'sandbox', 'hooks'), { recursive: true });
    const file = join(dir, '.outflow', 'sandbox', 'hooks', 'endpoint.json');
    writeFileSync(file, JSON.stringify(stale));

    const sandbox = await startSandbox(dir, ['hooks']);
    const now = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(now).toMatchObject({ holder: 'sandbox', pid: sandbox.child.pid, url: sandbox.connections['hooks']!.config['url'] });
    expect((await sandbox.stop()).code).toBe(130);
    expect(existsSync(file)).toBe(false);
  });

  it('refuses, exit 2, a connection without an emulator, an unknown one, and a config with no sandbox connection', async () => {
    const dir = tempDir();
    writeConfig(dir, CONFIG);
    const noEmulator = await runCli(['sandbox', 'warehouse'], { cwd: dir });
    expect(noEmulator.code).toBe(2);
    expect(noEmulator.stderr).toContain('connection "warehouse" uses connector "duckdb", which has no emulator (connections with one: crm, hooks)');
    const unknown = await runCli(['sandbox', 'nope'], { cwd: dir });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no connection named "nope"');
    writeConfig(
      dir,
      `version: 1
connections:
  warehouse: { connector: duckdb }
  hooks: { connector: webhook, config: { url: "http://127.0.0.1:9/x", secret: "s3cr3t-value" } }
syncs: []
`,
    );
    const none = await runCli(['sandbox'], { cwd: dir });
    expect(none.code, none.stderr).toBe(2);
    expect(none.stderr).toContain('sets sandbox: true; name the connections whose emulators to start');
    expect(existsSync(join(dir, '.outflow', 'sandbox'))).toBe(false);
  });

  it('--help says what it starts, where the data lives and how it stops', async () => {
    const r = await runCli(['sandbox', '--help'], { cwd: tempDir() });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: outflow sandbox [options] [connections...]');
    expect(r.stdout).toContain('default: every connection with sandbox: true');
    expect(r.stdout).toContain('.outflow/sandbox/<connection>/');
    expect(r.stdout).toContain('exit code 130');
    const top = await runCli(['--help'], { cwd: tempDir() });
    expect(top.stdout).toMatch(/sandbox \[connections\.\.\.\]\s+Start the emulators/);
  });
});
