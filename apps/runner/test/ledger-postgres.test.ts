import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '@outflow/connector-postgres/testing';
import { PostgresLedger } from '@outflow/ledger-postgres';
import { jsonLines, runCli, startCli, tempDir, writeConfig } from './helpers.js';

// Two `outflow run` processes of one config, sharing a PostgreSQL ledger: the runners of
// two machines. The password is in the ledger's URL (trust authentication ignores it) so
// the test can look for it in everything the runners print.
const PASSWORD = 'ledger-pw-5b7f1c2e';

let server: TestPostgres;
let ledgerUrl: string;
let sourceUrl: string;
let dir: string;

beforeAll(async () => {
  server = await startPostgres();
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE runner_src');
  await admin.end();
  const u = new URL(server.url);
  u.password = PASSWORD;
  ledgerUrl = u.toString();
  u.password = '';
  u.pathname = '/runner_src';
  sourceUrl = u.toString();
  const src = new pg.Client({ connectionString: sourceUrl });
  await src.connect();
  await src.query('CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)');
  await src.query("INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 20) AS i");
  await src.end();
  dir = tempDir();
  writeConfig(
    dir,
    `version: 1
ledger:
  postgres: { url: "\${env:OUTFLOW_LEDGER_URL}", schema: runners }
connections:
  src: { connector: postgres, config: { url: "${sourceUrl}" } }
  hooks: { connector: webhook, sandbox: true }
syncs:
  - name: items
    from: { connection: src, table: items, primaryKey: id }
    capture: stream
    to: { connection: hooks, object: items }
`,
  );
});

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('outflow run with a PostgreSQL ledger', () => {
  it('runs a sync in one of two runners; the other says it is held elsewhere and exits 1', async () => {
    const env = { OUTFLOW_LEDGER_URL: ledgerUrl };
    const ledger = new PostgresLedger({ url: ledgerUrl, schema: 'runners' });
    try {
      const first = startCli(['run', '--json'], { cwd: dir, env });
      // Running once its snapshot's checkpoint is saved.
      await expect.poll(() => ledger.getCheckpoint('items'), { timeout: 60_000, interval: 250 }).toBeDefined();
      const holder = await ledger.leaseHolder('items');
      expect(holder?.owner).toMatch(new RegExp(`/${first.child.pid}/`));

      const second = await runCli(['run', '--json'], { cwd: dir, env });
      expect(second.code).toBe(1);
      const [line] = jsonLines(second.stdout);
      expect(line).toMatchObject({ sync: 'items', status: 'failed', error: { code: 'OUTFLOW_LOCKED' } });
      expect((line!['error'] as { message: string }).message).toMatch(
        new RegExp(`sync "items" is held by another runner \\(.*/${first.child.pid}/.*, lease until .*\\): it runs there`),
      );
      // The second runner recorded no run and left the first one's alone.
      expect((await ledger.listRuns({ sync: 'items' })).map((r) => r.status)).toEqual(['running']);

      first.child.kill('SIGTERM');
      const stopped = await first.done;
      expect(stopped.code).toBe(130);
      expect(jsonLines(stopped.stdout)).toMatchObject([{ sync: 'items', status: 'succeeded', inserted: 20 }]);
      expect(await ledger.leaseHolder('items')).toBeUndefined();

      // The history is in PostgreSQL, read by any runner; no SQLite ledger was made.
      const status = await runCli(['status', '--json'], { cwd: dir, env });
      expect(status.code).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject([{ sync: 'items', status: 'succeeded', inserted: 20 }]);
      expect(existsSync(join(dir, '.outflow', 'ledger.db'))).toBe(false);
      for (const out of [stopped.stdout, stopped.stderr, second.stdout, second.stderr, status.stdout, status.stderr]) expect(out).not.toContain(PASSWORD);
    } finally {
      await ledger.close();
    }
  });

  it('names the ledger server, without the password, when it cannot be reached', async () => {
    const u = new URL(ledgerUrl);
    u.port = '1';
    const result = await runCli(['run', '--json'], { cwd: dir, env: { OUTFLOW_LEDGER_URL: u.toString() } });
    expect(result.code).toBe(1);
    const [line] = jsonLines(result.stdout);
    expect(line).toMatchObject({ sync: 'items', status: 'failed', error: { code: 'OUTFLOW_LEDGER' } });
    expect((line!['error'] as { message: string }).message).toContain(`postgres://postgres@127.0.0.1:1/postgres`);
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);
  });
});
