import { rmSync } from 'node:fs';
import pg from 'pg';
import { start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { startPostgres, type TestPostgres } from '@outflow/connector-postgres/testing';
import { PostgresLedger } from '@outflow/ledger-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, tempDir, writeConfig } from './helpers.js';

// `outflow run` of a PostgreSQL stream as a new user tries it, its output piped (not a
// terminal): it says how the stream is doing while it runs, and a SIGTERM after a clean
// drain is recorded as the stream's normal end, not as a run that failed or was aborted.
const SECRET = 'stream-run-secret-61c0';

let server: TestPostgres;
let receiver: WebhookEmulator;
let dir: string;
let sourceUrl: string;

beforeAll(async () => {
  server = await startPostgres();
  receiver = await start({ secret: SECRET });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE stream_run_src');
  await admin.end();
  const u = new URL(server.url);
  u.pathname = '/stream_run_src';
  sourceUrl = u.toString();
  const c = new pg.Client({ connectionString: sourceUrl });
  await c.connect();
  await c.query("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 50) AS i");
  await c.end();
  dir = tempDir('outflow-stream-run-');
  writeConfig(
    dir,
    `version: 1
ledger:
  postgres: { url: "\${env:LEDGER_URL}", schema: stream_run }
connections:
  src: { connector: postgres, config: { url: "${sourceUrl}" } }
  hooks: { connector: webhook, config: { url: "${receiver.url}", secret: ${SECRET} } }
syncs:
  - name: items
    from: { connection: src, table: items, primaryKey: id }
    capture: stream
    to: { connection: hooks, object: items, deletes: delete }
`,
  );
});

afterAll(async () => {
  await receiver?.stop();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('outflow run of a stream, not on a terminal', () => {
  it('writes a status line periodically (delivered, parked, lag), and a SIGTERM after a clean drain is recorded as a normal end', async () => {
    const run = startCli(['run'], { cwd: dir, env: { LEDGER_URL: server.url } });
    let stderr = '';
    run.child.stderr!.on('data', (d) => (stderr += d));
    const ledger = new PostgresLedger({ url: server.url, schema: 'stream_run' });
    try {
      await expect.poll(() => stderr, { timeout: 60_000, interval: 100 }).toContain('items: streaming; a status line every 10s');
      await expect.poll(() => receiver.records('items').length, { timeout: 60_000, interval: 100 }).toBe(50);
      const c = new pg.Client({ connectionString: sourceUrl });
      await c.connect();
      await c.query("INSERT INTO items SELECT i, 'item ' || i FROM generate_series(51, 60) AS i");
      await c.end();
      await expect.poll(() => receiver.records('items').length, { timeout: 60_000, interval: 100 }).toBe(60);
      // Every ten seconds a status line tells what was delivered, what is parked and the lag,
      // once the stream measured it (its health is looked at every 30 s).
      await expect.poll(() => stderr, { timeout: 30_000, interval: 250 }).toMatch(/^items: 60 delivered, 0 parked, lag (not measured yet|\d+\.\ds)$/m);
      await expect.poll(() => stderr, { timeout: 60_000, interval: 250 }).toMatch(/^items: 60 delivered, 0 parked, lag \d+\.\ds$/m);

      run.child.kill('SIGTERM');
      const r = await run.done;
      expect(r.code, stderr).toBe(130);
      expect(r.stdout).toMatch(/^■ items: 60 created, 0 updated, 0 deleted in \d+\.\ds \(stopped, succeeded\)$/m);
      const [last] = await ledger.listRuns({ sync: 'items', limit: 1 });
      expect(last).toMatchObject({ status: 'succeeded', inserted: 60 });
      expect(last?.error).toBeUndefined();
      expect(stderr).not.toMatch(/stopped by a signal before it finished/);
    } finally {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await run.done;
      await ledger.close();
    }
  }, 180_000);
});
