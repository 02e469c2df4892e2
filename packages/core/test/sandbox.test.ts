import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import { Type, createEngine, defineConnector, serveSandbox, type Engine, type RunningEmulator } from '../src/index.js';
import { tempDir } from './helpers.js';

/** A destination whose emulator answers "ok" and hands out its URL and a token numbered by start. */
function emulated() {
  const starts: (string | undefined)[] = [];
  const connector = defineConnector({
    name: 'emulated',
    version: '1.0.0',
    coreVersion: '^1.0.0',
    config: Type.Object({ url: Type.String(), token: Type.String() }),
    destination: {
      async check(ctx) {
        const r = await fetch(ctx.config.url);
        if (r.status !== 200) throw new Error(`status ${r.status}`);
      },
      async discover() {
        return { objects: [] };
      },
      capabilities: () => ({ operations: ['upsert'], maxBatchSize: 10, rateLimits: [], concurrency: 1, idempotency: 'match' }),
      async write(_ctx, _object, ops) {
        return ops.map(() => ({ ok: true as const }));
      },
    },
    emulator: async () => ({
      async start(options): Promise<RunningEmulator<{ url: string; token: string }>> {
        starts.push(options?.dataDir);
        const server = createServer((_req, res) => res.end('ok'));
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
        return {
          url,
          config: { url, token: `sandbox-token-${starts.length}` },
          stop: () => new Promise<void>((r) => server.close(() => r())),
        };
      },
    }),
  });
  return { connector, starts };
}

const engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
});

function engineOn(stateDir: string, connector: ReturnType<typeof emulated>['connector']): Engine {
  const engine = createEngine({
    config: { connections: { dst: { connector, sandbox: true } }, syncs: [] },
    ledger: () => openSqliteLedger(stateDir),
    stateStore: duckdbStateStore({ dir: stateDir }),
    stateDir,
  });
  engines.push(engine);
  return engine;
}

const endpointFile = (stateDir: string) => join(stateDir, 'sandbox', 'dst', 'endpoint.json');
const readEndpoint = (stateDir: string) => JSON.parse(readFileSync(endpointFile(stateDir), 'utf8')) as Record<string, unknown>;

describe('a sandbox connection', () => {
  it('starts an emulator of its own when no `outflow sandbox` runs, holds the folder while open, and gives it up on close', async () => {
    const dir = tempDir();
    const { connector, starts } = emulated();
    const engine = engineOn(dir, connector);
    const { ctx } = await engine.connection('dst');
    expect(starts).toEqual([join(dir, 'sandbox', 'dst')]);
    expect(ctx.config).toMatchObject({ token: 'sandbox-token-1' });
    expect(readEndpoint(dir)).toMatchObject({ holder: 'command', pid: process.pid, connector: 'emulated' });
    await engine.close();
    expect(existsSync(endpointFile(dir))).toBe(false);
  });

  it('uses the emulator a running `outflow sandbox` publishes, starting none, and leaves it running', async () => {
    const dir = tempDir();
    const { connector, starts } = emulated();
    const served = await serveSandbox({ connection: 'dst', connector, stateDir: dir });
    expect(readEndpoint(dir)).toMatchObject({ holder: 'sandbox', pid: process.pid, url: served.url, config: served.config });

    const engine = engineOn(dir, connector);
    const { ctx } = await engine.connection('dst');
    await engine.check('dst');
    expect(ctx.config).toEqual(served.config);
    expect(starts).toHaveLength(1);
    await engine.close();

    expect(readEndpoint(dir)).toMatchObject({ holder: 'sandbox', url: served.url });
    expect(await (await fetch(served.url)).text()).toBe('ok');
    await served.stop();
    expect(existsSync(endpointFile(dir))).toBe(false);
  });

  it('waits for an `outflow sandbox` that is still starting its emulator', async () => {
    const dir = tempDir();
    const { connector, starts } = emulated();
    mkdirSync(join(dir, 'sandbox', 'dst'), { recursive: true });
    const starting = { holder: 'sandbox', pid: process.pid, hostname: hostname(), connector: 'emulated', startedAt: new Date().toISOString() };
    writeFileSync(endpointFile(dir), JSON.stringify(starting));

    const opening = engineOn(dir, connector).connection('dst');
    await new Promise((r) => setTimeout(r, 300));
    const emulator = await (await connector.emulator!()).start({});
    writeFileSync(endpointFile(dir), JSON.stringify({ ...starting, url: emulator.url, config: emulator.config }));
    expect((await opening).ctx.config).toEqual(emulator.config);
    expect(starts).toHaveLength(1);
    await emulator.stop();
  });

  it('replaces an endpoint file left by a process that is gone', async () => {
    const dir = tempDir();
    const { connector, starts } = emulated();
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    mkdirSync(join(dir, 'sandbox', 'dst'), { recursive: true });
    const url = 'http://127.0.0.1:9';
    writeFileSync(
      endpointFile(dir),
      JSON.stringify({ holder: 'sandbox', pid: gone, hostname: hostname(), connector: 'emulated', startedAt: '2026-01-01T00:00:00Z', url, config: { url, token: 'old' } }),
    );
    const { ctx } = await engineOn(dir, connector).connection('dst');
    expect(starts).toHaveLength(1);
    expect(ctx.config).toMatchObject({ token: 'sandbox-token-1' });
    expect(readEndpoint(dir)).toMatchObject({ holder: 'command', pid: process.pid });
  });

  it('refuses a folder another command holds, and `outflow sandbox` refuses it too', async () => {
    const dir = tempDir();
    const { connector, starts } = emulated();
    await engineOn(dir, connector).connection('dst');
    await expect(engineOn(dir, connector).connection('dst')).rejects.toThrow(
      new RegExp(`the sandbox of connection "dst" is in use by another outflow command \\(pid ${process.pid}\\) running its own emulator`),
    );
    await expect(serveSandbox({ connection: 'dst', connector, stateDir: dir })).rejects.toMatchObject({ code: 'OUTFLOW_EMULATOR' });
    expect(starts).toHaveLength(1);
  });

  it('does not follow an endpoint file that points away from loopback', async () => {
    const dir = tempDir();
    const { connector, starts } = emulated();
    mkdirSync(join(dir, 'sandbox', 'dst'), { recursive: true });
    const url = 'http://192.0.2.1:8080';
    writeFileSync(
      endpointFile(dir),
      JSON.stringify({ holder: 'sandbox', pid: process.pid, hostname: hostname(), connector: 'emulated', startedAt: '2026-01-01T00:00:00Z', url, config: { url, token: 't' } }),
    );
    await expect(engineOn(dir, connector).connection('dst')).rejects.toThrow(/points connection "dst" away from loopback/);
    expect(starts).toEqual([]);
  });
});
