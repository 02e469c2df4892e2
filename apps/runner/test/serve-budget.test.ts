import { rmSync } from 'node:fs';
import pg from 'pg';
import { start as startHubSpot, type HubSpotEmulator } from '@outflow/connector-hubspot/emulator';
import { startPostgres, type TestPostgres } from '@outflow/connector-postgres/testing';
import { PostgresLedger } from '@outflow/ledger-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, writeConfig } from './helpers.js';
import { startServe, type Served } from './serve-helpers.js';

// Two `outflow serve` processes share a PostgreSQL ledger and two syncs into one HubSpot
// portal on the free tier: 100 requests in any 10 s, which the emulator enforces as HubSpot
// does. Each sync sends one record per request, 150 requests, so both at once from two
// runners — each keeping its own budget of 100 per 10 s — would send 200 in the first
// window. Every sync into one connection runs in one runner at a time (the connection's
// lease), so HubSpot answers no request with 429.
const PER_RUN = 150;
const LEASE = '12s';

let server: TestPostgres;
let hubspot: HubSpotEmulator;
let dir: string;
let sourceUrl: string;

beforeAll(async () => {
  server = await startPostgres();
  hubspot = await startHubSpot({ limits: { perWindow: 100, windowMs: 10_000 } });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE budget_src');
  await admin.end();
  const u = new URL(server.url);
  u.pathname = '/budget_src';
  sourceUrl = u.toString();
  const src = new pg.Client({ connectionString: sourceUrl });
  await src.connect();
  for (const t of ['leads', 'trials']) {
    await src.query(`CREATE TABLE ${t} (id int PRIMARY KEY, email text NOT NULL, name text NOT NULL)`);
    await src.query(`INSERT INTO ${t} SELECT i, '${t}' || i || '@example.com', 'Name ' || i FROM generate_series(1, ${PER_RUN}) AS i`);
  }
  await src.end();
  dir = tempDir('outflow-budget-');
  const sync = (name: string) => `  - name: ${name}
    from: { connection: src, table: ${name}, primaryKey: id }
    to: { connection: crm, object: contacts, mode: upsert, matchKey: { email: email } }
    mappings: { email: email, firstname: name }
    delivery: { batchSize: 1 }
`;
  writeConfig(
    dir,
    `version: 1
ledger:
  postgres: { url: "\${env:LEDGER_URL}", schema: budget }
connections:
  src: { connector: postgres, config: { url: "${sourceUrl}" } }
  crm: { connector: hubspot, config: { accessToken: "\${env:HUBSPOT_TOKEN}", basePath: "${hubspot.url}", tier: free } }
syncs:
${sync('leads')}${sync('trials')}`,
  );
});

afterAll(async () => {
  await hubspot?.stop();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('runners sharing a PostgreSQL ledger and a rate-limited connection', () => {
  it('run the syncs into one HubSpot portal one runner at a time: no request is answered 429, every contact is created once', async () => {
    const env = { LEDGER_URL: server.url, HUBSPOT_TOKEN: hubspot.config.accessToken };
    const runners: Served[] = [];
    const ledger = new PostgresLedger({ url: server.url, schema: 'budget' });
    try {
      for (let i = 0; i < 2; i++) runners.push(await startServe(['--lease', LEASE], { cwd: dir, env }));
      // Each runner is asked for one of the syncs at the same moment.
      const asked = await Promise.all(
        (['leads', 'trials'] as const).map(async (sync, i) => {
          const res = await runners[i]!.post(`/syncs/${sync}/runs`);
          expect(res.status).toBe(202);
          return { runner: runners[i]!, sync, id: (res.body as { id: string }).id };
        }),
      );
      for (const { runner, sync, id } of asked) {
        await expect
          .poll(async () => ((await runner.get(`/syncs/${sync}/runs/${id}`)).body as { status: string }).status, { timeout: 120_000, interval: 500 })
          .toBe('succeeded');
      }

      // HubSpot's own counts: no 429, and the two runs made at least the 300 requests that needed coordinating.
      const stats = hubspot.stats();
      expect(stats.byStatus['429'] ?? 0, JSON.stringify(stats.rateLimited)).toBe(0);
      expect(stats.requests).toBeGreaterThanOrEqual(2 * PER_RUN);
      const created = new Map<string, number>();
      for (const w of stats.writes) {
        if (w.object === 'contacts' && w.op === 'create') created.set(String(w.properties?.['email']), (created.get(String(w.properties?.['email'])) ?? 0) + 1);
      }
      expect(created.size).toBe(2 * PER_RUN);
      expect([...created.values()].every((n) => n === 1)).toBe(true);
      // Both syncs ran, and the connection's lease is in the ledger beside theirs.
      expect((await ledger.listRuns({ limit: 10 })).map((r) => `${r.sync} ${r.status}`).sort()).toEqual(['leads succeeded', 'trials succeeded']);
      expect(await ledger.leaseHolder(':to:crm')).toBeDefined();
    } finally {
      for (const r of runners) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
      await Promise.all(runners.map((r) => r.done));
      await ledger.close();
    }
  }, 240_000);
});
