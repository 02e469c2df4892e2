import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { start, type SnowflakeEmulator } from '@outflow/connector-snowflake/emulator';
import { LOG_FILE, start as startWebhook, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { appliedByKey, tempDir, until } from './helpers.js';
import { connect, destroy, exec } from './sdk.js';

// The built CLI and connector (npm test builds them first), run under the network guard.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = join(root, 'apps', 'runner', 'dist', 'cli.js');
const GUARD = join(root, 'packages', 'testing', 'dist', 'network-guard.js');
if (!existsSync(CLI) || !existsSync(join(root, 'connectors', 'snowflake', 'dist', 'index.js'))) {
  throw new Error('the runner or the Snowflake connector is not built: run `npm run build` first (npm test does)');
}

function runner(cwd: string, env: Record<string, string>): { child: ChildProcess; stderr: () => string; done: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  const child = spawn(process.execPath, [CLI, 'run', '--json'], {
    cwd,
    env: { ...process.env, NODE_OPTIONS: existsSync(GUARD) ? `--import ${GUARD}` : '', OUTFLOW_NETWORK_GUARD_EXIT: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  return { child, stderr: () => stderr, done: new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr }))) };
}

let sf: SnowflakeEmulator | undefined;
let hooks: WebhookEmulator | undefined;
afterEach(async () => {
  await hooks?.stop();
  await sf?.stop();
});

describe('crash safety of a Snowflake stream sync (the outflow CLI in a child process)', () => {
  it('SIGKILL after changes were consumed from the stream but before delivery loses nothing', async () => {
    const dir = tempDir();
    sf = await start();
    hooks = await startWebhook({ dataDir: join(dir, 'receiver') });
    const sql = await connect(sf.config);
    await exec(sql, 'create table users (id int primary key, email varchar, name varchar)');
    writeFileSync(
      join(dir, 'outflow.yaml'),
      `version: 1
connections:
  warehouse:
    connector: snowflake
    config: { account: ${sf.config.account}, username: ${sf.config.username}, password: "\${env:SF_PASSWORD}", database: ANALYTICS, warehouse: COMPUTE_WH, accessUrl: "${sf.url}" }
  hooks:
    connector: webhook
    config: { url: "${hooks.url}", secret: "\${env:HOOK_SECRET}" }
syncs:
  - name: users
    from: { connection: warehouse, table: USERS, primaryKey: ID }
    capture: stream
    to: { connection: hooks, object: users, mode: upsert, deletes: delete }
    mappings: { email: EMAIL, name: NAME }
`,
    );
    const env = { SF_PASSWORD: sf.config.password, HOOK_SECRET: hooks.config.secret };
    const staged = async () => {
      const t = await sf!.sql(`SELECT TABLE_NAME FROM ANALYTICS.INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'OUTFLOW' AND TABLE_NAME LIKE 'OUTFLOW_STAGE_%'`);
      if (t.length === 0) return 0;
      const n = await sf!.sql(`SELECT COUNT(*) AS N FROM ANALYTICS.OUTFLOW."${String(t[0]!['TABLE_NAME'])}"`);
      return Number(n[0]!['N']);
    };

    // The receiver is down: changes are consumed into staging but cannot be delivered.
    hooks.setFaults({ failRequests: 1_000_000 });
    const victim = runner(dir, env);
    // The new stream answers with the handshake; the (empty) table is delivered by a diff,
    // then the stream resumes.
    await until(() => victim.stderr().includes('resuming the Snowflake stream'), 'the stream to follow the table', 30_000);
    expect((await exec(sql, 'show streams in schema analytics.outflow')).length).toBe(1);
    await exec(sql, `insert into users select n, 'u' || n || '@x.io', 'n' || n from (select seq4() + 1 as n from table(generator(rowcount => 50)))`);
    await exec(sql, `update users set name = 'changed' where id <= 5`);
    await until(async () => (await staged()) === 50, 'the changes to be staged', 30_000);
    // Consumed: the stream's offset moved past the changes, which now live only in staging.
    const [stream] = await exec(sql, 'show streams in schema analytics.outflow');
    expect(await exec(sql, `select system$stream_has_data('ANALYTICS.OUTFLOW.${String(stream!['name'])}') as h`)).toEqual([{ H: false }]);
    expect(hooks.records('users')).toHaveLength(0);
    victim.child.kill('SIGKILL');
    expect((await victim.done).signal).toBe('SIGKILL');

    // More changes while the runner is down, then a restart with the receiver back.
    await exec(sql, `delete from users where id = 50`);
    await exec(sql, `insert into users values (51, 'late@x.io', 'late')`);
    hooks.setFaults({});
    const again = runner(dir, env);
    await until(() => hooks!.records('users').some((r) => r.key === '51') && !hooks!.records('users').some((r) => r.key === '50'), 'every change at the receiver', 30_000);
    await until(async () => (await staged()) === 0, 'the delivered rows to be freed from staging', 30_000);
    again.child.kill('SIGTERM');
    const ended = await again.done;
    expect(ended.stderr).not.toMatch(/network guard/);
    await destroy(sql);

    const records = new Map(hooks.records('users').map((r) => [r.key, r.fields]));
    expect(records.has('50')).toBe(false);
    expect(records.get('51')).toMatchObject({ name: 'late', email: 'late@x.io' });
    for (let id = 1; id <= 49; id++) expect(records.get(String(id))?.['name']).toBe(id <= 5 ? 'changed' : `n${id}`);
    const applied = appliedByKey(join(dir, 'receiver', LOG_FILE));
    expect(applied.get('50')).toEqual(['put:n50', 'del']);
  });
});
