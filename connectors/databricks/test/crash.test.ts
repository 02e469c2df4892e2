import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { start as startWebhook, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { startDatabricksEmulator } from '../src/emulator/index.js';
import { tempDir, until, type Emulator } from './helpers.js';

// The built CLI and connector (npm test builds them first), run under the network guard.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = join(root, 'apps', 'runner', 'dist', 'cli.js');
const GUARD = join(root, 'packages', 'testing', 'dist', 'network-guard.js');
if (!existsSync(CLI) || !existsSync(join(root, 'connectors', 'databricks', 'dist', 'index.js'))) {
  throw new Error('the runner or the Databricks connector is not built: run `npm run build` first (npm test does)');
}

/** `outflow run` of the folder's outflow.yaml in a child process, with `failpoint` armed. */
function runner(cwd: string, env: Record<string, string>, failpoint?: string): { child: ChildProcess; done: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  const child = spawn(process.execPath, [CLI, 'run', '--json'], {
    cwd,
    env: { ...process.env, NODE_OPTIONS: `--import ${GUARD}`, OUTFLOW_NETWORK_GUARD_EXIT: '1', OUTFLOW_FAILPOINTS: failpoint ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  return { child, done: new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr }))) };
}

let dbx: Emulator | undefined;
let hooks: WebhookEmulator | undefined;
afterEach(async () => {
  await hooks?.stop();
  await dbx?.stop();
});

/** Round `round` of changes to the model: inserts, updates and deletes each time. */
async function changeRound(round: number): Promise<void> {
  const base = round * 10;
  const values = Array.from({ length: 10 }, (_, i) => `(${base + i + 1}, 'u${base + i + 1}@x.io', 'r${round}')`);
  await dbx!.sql(`INSERT INTO users VALUES ${values.join(', ')}`);
  // Only this round's rows: a later round never hides an update lost here.
  await dbx!.sql(`UPDATE users SET name = 'changed${round}' WHERE id > ${base} AND id % 3 = 0`);
  // One row of the previous round, and one just inserted (so a replay crosses its delete);
  // few enough that a reconcile stays within the delete guard.
  await dbx!.sql(`DELETE FROM users WHERE id IN (${base - 7}, ${base + 10})`);
}

describe('crash safety of a Databricks change data feed sync (the outflow CLI in a child process)', () => {
  for (const failpoint of ['reconcile.after-write', 'delivery.after-write:4', 'stream.checkpoint-saved:6']) {
    it(`SIGKILL at ${failpoint} loses nothing and creates nothing twice, counted at the receiver`, async () => {
      const dir = tempDir();
      dbx = await startDatabricksEmulator();
      hooks = await startWebhook({ dataDir: join(dir, 'receiver') });
      await dbx.sql('CREATE TABLE users (id BIGINT, email STRING, name STRING) TBLPROPERTIES (delta.enableChangeDataFeed = true)');
      await changeRound(0);
      writeFileSync(
        join(dir, 'outflow.yaml'),
        `version: 1
connections:
  warehouse:
    connector: databricks
    config: { host: ${dbx.host}, port: ${dbx.port}, httpPath: "${dbx.path}", token: "\${env:DBX_TOKEN}", caCert: "\${env:DBX_CA}" }
  hooks:
    connector: webhook
    config: { url: "${hooks.url}", secret: "\${env:HOOK_SECRET}" }
syncs:
  - name: users
    from: { connection: warehouse, table: users, primaryKey: id }
    capture: stream
    to: { connection: hooks, object: users, mode: upsert, deletes: delete }
    mappings: { email: email, name: name }
`,
      );
      const env = { DBX_TOKEN: dbx.token, DBX_CA: dbx.caCert, HOOK_SECRET: hooks.config.secret };

      const victim = runner(dir, env, failpoint);
      let ended: { signal: string | null; stderr: string } | undefined;
      void victim.done.then((e) => (ended = e));
      // Rounds of changes, each streamed before the next, until the failpoint kills the runner.
      for (let round = 1; round <= 6 && ended === undefined; round++) {
        await changeRound(round);
        const inserted = String(round * 10 + 1);
        await until(() => ended !== undefined || hooks!.records('users').some((r) => r.key === inserted), `round ${round} at the receiver`, 30_000);
      }
      await until(() => ended !== undefined, `the runner to reach ${failpoint}`, 30_000).finally(() => victim.child.kill('SIGKILL'));
      expect(ended?.signal).toBe('SIGKILL');
      expect(ended?.stderr).toContain(`failpoint ${failpoint.split(':')[0]!} reached`);

      await changeRound(7);
      const again = runner(dir, env);
      const model = async () => new Map((await dbx!.sql('SELECT id, name FROM users')).map((r) => [String(r['id']), String(r['name'])]));
      const received = () => new Map(hooks!.records('users').map((r) => [r.key, String(r.fields['name'])]));
      const want = await model();
      await until(() => JSON.stringify([...received()].sort()) === JSON.stringify([...want].sort()), 'the receiver to equal the model', 30_000).catch(async (err: Error) => {
        again.child.kill('SIGKILL');
        const got = received();
        const diff = [...new Set([...got.keys(), ...want.keys()])].filter((k) => got.get(k) !== want.get(k)).map((k) => `${k}: ${got.get(k)} vs ${want.get(k)}`);
        throw new Error(`${err.message} (${diff.join('; ')}); the runner said: ${(await again.done).stderr.slice(-3000)}`);
      });
      again.child.kill('SIGTERM');
      expect((await again.done).stderr).not.toMatch(/network guard/);

      const created = new Map<string, number>();
      for (const w of hooks.writes('users')) if (w.t === 'put' && w.created) created.set(w.key, (created.get(w.key) ?? 0) + 1);
      // Every key is inserted once in the model, so the receiver creates it once.
      expect([...created].filter(([, n]) => n > 1)).toEqual([]);
      expect(Object.fromEntries(received())).toEqual(Object.fromEntries(want));
    });
  }
});

describe('crash safety of a Databricks diff sync pushed down into Databricks (the outflow CLI in a child process)', () => {
  for (const failpoint of ['delivery.after-write:1', 'state.inside-apply:2', 'diff.after-snapshot']) {
    it(`SIGKILL at ${failpoint} loses nothing and creates nothing twice, counted at the receiver`, async () => {
      const dir = tempDir();
      dbx = await startDatabricksEmulator();
      hooks = await startWebhook({ dataDir: join(dir, 'receiver') });
      await dbx.sql('CREATE TABLE users (id BIGINT, email STRING, name STRING)');
      await changeRound(0);
      await changeRound(1);
      writeFileSync(
        join(dir, 'outflow.yaml'),
        `version: 1
connections:
  warehouse:
    connector: databricks
    config: { host: ${dbx.host}, port: ${dbx.port}, httpPath: "${dbx.path}", token: "\${env:DBX_TOKEN}", caCert: "\${env:DBX_CA}" }
  hooks:
    connector: webhook
    config: { url: "${hooks.url}", secret: "\${env:HOOK_SECRET}" }
syncs:
  - name: users
    from: { connection: warehouse, table: users, primaryKey: id }
    capture: diff
    to: { connection: hooks, object: users, mode: upsert, deletes: delete }
    mappings: { email: email, name: name }
`,
      );
      const env = { DBX_TOKEN: dbx.token, DBX_CA: dbx.caCert, HOOK_SECRET: hooks.config.secret };

      const victim = runner(dir, env, failpoint);
      const ended = await victim.done;
      expect(ended.signal).toBe('SIGKILL');
      expect(ended.stderr).toContain(`failpoint ${failpoint.split(':')[0]!} reached`);

      // The model changes before the next run, which resumes from the state in Databricks.
      await changeRound(2);
      const again = await runner(dir, env).done;
      expect(again.code, again.stderr.slice(-3000)).toBe(0);
      expect(again.stderr).not.toMatch(/network guard/);

      const model = new Map((await dbx.sql('SELECT id, name FROM users')).map((r) => [String(r['id']), String(r['name'])]));
      const received = new Map(hooks.records('users').map((r) => [r.key, String(r.fields['name'])]));
      expect(Object.fromEntries(received)).toEqual(Object.fromEntries(model));
      const created = new Map<string, number>();
      for (const w of hooks.writes('users')) if (w.t === 'put' && w.created) created.set(w.key, (created.get(w.key) ?? 0) + 1);
      expect([...created].filter(([, n]) => n > 1)).toEqual([]);
      // The delivered state lives in Databricks: a third run finds nothing to send.
      expect((await dbx.sql('SHOW TABLES IN outflow_state')).map((r) => String(r['tableName'])).filter((t) => t.startsWith('outflow_diff_users_'))).toHaveLength(1);
      const writes = hooks.writes('users').length;
      expect((await runner(dir, env).done).code).toBe(0);
      expect(hooks.writes('users').length).toBe(writes);
    });
  }
});
