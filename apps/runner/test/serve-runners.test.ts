import { rmSync } from 'node:fs';
import pg from 'pg';
import { start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { startPostgres, type TestPostgres } from '@outflow/connector-postgres/testing';
import { PostgresLedger } from '@outflow/ledger-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, writeConfig } from './helpers.js';
import { metric, startServe, type Served } from './serve-helpers.js';

// Three `outflow serve` processes of one project share a PostgreSQL ledger and one state
// folder (three runners on one machine), serving six syncs: three streams and three diffs,
// a stream and a diff into each of three webhook connections. The syncs of one connection
// run in one runner at a time (the connection's lease). The runner holding a stream is killed
// with SIGKILL while rows keep being inserted, updated and deleted; every sync it ran goes on
// in another runner within the lease (and one retry, a third of it), each receiver object
// ends equal to the model, and the receiver's own log shows every record created once and,
// for the streams, every change applied once. (With a state folder per runner, as on three
// machines, a stream's new runner sends no delete for records the old one delivered, and
// the receiver keeps them: docs/production.md, "What fails over".)
const SECRET = 'runners-hook-secret-0d9e4a';
const LEASE = '4s';
const LEASE_MS = 4000;
const PAIRS = ['a', 'b', 'c'] as const;
const SYNCS = PAIRS.flatMap((p) => [`stream_${p}`, `diff_${p}`]);

let server: TestPostgres;
let receiver: WebhookEmulator;
let ledgerUrl: string;
let sourceUrl: string;
let dir: string;

beforeAll(async () => {
  server = await startPostgres();
  receiver = await start({ secret: SECRET });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE serve_src');
  await admin.end();
  ledgerUrl = server.url;
  const u = new URL(server.url);
  u.pathname = '/serve_src';
  sourceUrl = u.toString();
  await withSource((c) => c.query("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 200) AS i"));
  dir = tempDir('outflow-runners-');
  writeConfig(
    dir,
    `version: 1
ledger:
  postgres: { url: "\${env:LEDGER_URL}", schema: runners }
connections:
  src: { connector: postgres, config: { url: "${sourceUrl}" } }
${PAIRS.map((p) => `  hooks_${p}: { connector: webhook, config: { url: "${receiver.url}", secret: "\${env:HOOK_SECRET}" } }\n`).join('')}syncs:
${PAIRS.map(
  (p) => `  - name: stream_${p}
    from: { connection: src, table: items, primaryKey: id }
    capture: stream
    to: { connection: hooks_${p}, object: stream_${p}, deletes: delete }
  - name: diff_${p}
    from: { connection: src, table: items, primaryKey: id }
    schedule: { every: 1s }
    to: { connection: hooks_${p}, object: diff_${p}, deletes: delete }
`,
).join('')}`,
  );
});

afterAll(async () => {
  await receiver?.stop();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function withSource<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: sourceUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Records the receiver created per key of `object`, and every write it applied, from its own log. */
function delivered(object: string): { created: Map<string, number>; writes: number } {
  const created = new Map<string, number>();
  const writes = receiver.writes(object);
  for (const w of writes) if (w.t === 'put' && w.created) created.set(w.key, (created.get(w.key) ?? 0) + 1);
  return { created, writes: writes.length };
}

/** The pid in a lease owner (`host/pid/uuid`). */
const pidOf = (owner: string | undefined) => Number(owner?.split('/')[1]);

describe('several outflow serve processes sharing a PostgreSQL ledger', () => {
  it('run each sync in one of them; when a runner is killed under load the others take its syncs over within the lease and every row arrives once', async () => {
    const env = { LEDGER_URL: ledgerUrl, HOOK_SECRET: SECRET };
    const ledger = new PostgresLedger({ url: ledgerUrl, schema: 'runners' });
    const runners: Served[] = [];
    let inserting: Promise<void> | undefined;
    let stop = false;
    const streams = SYNCS.filter((s) => s.startsWith('stream_'));
    try {
      for (let i = 0; i < 3; i++) runners.push(await startServe(['--lease', LEASE], { cwd: dir, env }));
      for (const object of SYNCS) await expect.poll(() => delivered(object).created.size, { timeout: 120_000, interval: 250 }).toBe(200);
      // The syncs of one connection are in one runner.
      const holders = async () => new Map(await Promise.all(SYNCS.map(async (s) => [s, pidOf((await ledger.leaseHolder(s))?.owner)] as const)));
      for (const p of PAIRS) {
        expect(pidOf((await ledger.leaseHolder(`:to:hooks_${p}`))?.owner), `connection hooks_${p}`).toBe((await holders()).get(`stream_${p}`));
      }

      // Rows keep arriving while the runner holding stream_a (and so diff_a) is killed.
      let next = 201;
      let updates = 0;
      let deletes = 0;
      inserting = (async () => {
        while (!stop) {
          const from = next;
          next += 10;
          await withSource(async (c) => {
            await c.query("INSERT INTO items SELECT i, 'item ' || i FROM generate_series($1::int, $2::int) AS i", [from, from + 9]);
            // Three rows delivered a while ago change, and an older one, never changed, leaves the model.
            await c.query("UPDATE items SET name = name || '+' WHERE id BETWEEN $1::int AND $2::int", [from - 100, from - 98]);
            await c.query('DELETE FROM items WHERE id = $1::int', [from - 195]);
          });
          updates += 3;
          deletes += 1;
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      for (const object of streams) await expect.poll(() => delivered(object).created.size, { timeout: 60_000, interval: 100 }).toBeGreaterThan(300);
      const before = await holders();
      const victim = runners.find((r) => r.child.pid === before.get('stream_a'));
      expect(victim, 'the lease holder of stream_a is one of the three runners').toBeDefined();
      const killedAt = Date.now();
      victim!.child.kill('SIGKILL');
      expect((await victim!.done).signal).toBe('SIGKILL');

      // Every sync goes on — those it ran, in another runner: each stream is held by a survivor,
      // each diff runs again; all within the lease and one retry (a third of it), with 2 s for a busy machine.
      const survivors = runners.filter((r) => r !== victim);
      const continued = new Map<string, number>();
      await expect
        .poll(
          async () => {
            for (const s of SYNCS) {
              if (continued.has(s)) continue;
              const holder = pidOf((await ledger.leaseHolder(s))?.owner);
              const goesOn = s.startsWith('stream_')
                ? survivors.some((r) => r.child.pid === holder)
                : (await ledger.listRuns({ sync: s, limit: 1 })).some((r) => Date.parse(r.startedAt) > killedAt);
              if (goesOn) continued.set(s, Date.now() - killedAt);
            }
            return continued.size;
          },
          { timeout: 60_000, interval: 100 },
        )
        .toBe(SYNCS.length);
      const bound = LEASE_MS + LEASE_MS / 3 + 2000;
      expect([...continued].filter(([, ms]) => ms > bound), `syncs that went on later than ${bound} ms after the kill`).toEqual([]);
      // The victim's syncs did move: its connections are held by survivors now.
      expect(SYNCS.filter((s) => before.get(s) === victim!.child.pid).length).toBeGreaterThan(0);
      const atTakeover = next;
      await expect.poll(() => next, { timeout: 30_000, interval: 100 }).toBeGreaterThan(atTakeover + 100);
      stop = true;
      await inserting;
      const total = next - 1;

      const model = await withSource(async (c) => (await c.query<{ id: number; name: string }>('SELECT id, name FROM items')).rows);
      for (const object of SYNCS) {
        await expect
          .poll(() => new Map(receiver.records(object).map((r) => [r.key, r.fields['name']])), { timeout: 90_000, interval: 250 })
          .toEqual(new Map(model.map((r) => [String(r.id), r.name])));
        const { created, writes } = delivered(object);
        expect([...created.entries()].filter(([, n]) => n !== 1), `${object}: keys created more than once`).toEqual([]);
        if (object.startsWith('stream_')) {
          // A stream applies every change once: each row inserted is created, even one deleted since.
          expect(created.size, `${object}: records created`).toBe(total);
          expect(writes, `${object}: writes applied`).toBe(total + updates + deletes);
        } else {
          // A diff sees the net change: a row inserted and deleted between two runs is never sent.
          expect(created.size, `${object}: records created`).toBeLessThanOrEqual(total);
          expect(writes, `${object}: writes applied`).toBeLessThanOrEqual(total + updates + deletes);
        }
      }
      // The runner that now holds stream_a says so on its API; the other sees it held there.
      const owner = (await ledger.leaseHolder('stream_a'))?.owner;
      const streamOf = async (r: Served) =>
        ((await r.get('/syncs')).body as { syncs: { name: string; state: string; heldBy?: string }[] }).syncs.find((s) => s.name === 'stream_a');
      const holding = survivors.find((r) => r.child.pid === pidOf(owner))!;
      const other = survivors.find((r) => r !== holding)!;
      expect(await streamOf(holding)).toMatchObject({ state: 'running' });
      expect(await streamOf(other)).toMatchObject({ heldBy: owner });
      // A stream sync always runs: there is no run of it to ask for.
      const asked = await other.post('/syncs/stream_a/runs');
      expect(asked.status).toBe(409);
      expect(JSON.stringify(asked.body)).toContain('sync \\"stream_a\\" is a stream sync: it runs continuously');
      // Its metrics carry the stream's lag, as the PostgreSQL stream reports it, and the rows it read.
      await expect
        .poll(async () => (await holding.get('/metrics')).text, { timeout: 30_000, interval: 250 })
        .toMatch(/^outflow_stream_lag_bytes\{connection="src",slot="[^"]+"\} \d+$/m);
      const text = (await holding.get('/metrics')).text;
      expect(metric(text, 'outflow_rows_read_total{sync="stream_a"}')).toBeGreaterThan(0);
      expect(metric(text, 'outflow_sync_running{sync="stream_a"}')).toBe(1);

      // A pause made through either runner holds in both: the stream closes and no runner takes it.
      expect((await other.post('/syncs/stream_a/pause')).status).toBe(200);
      await expect.poll(async () => (await streamOf(holding))?.state, { timeout: 30_000, interval: 250 }).toBe('paused');
      await expect.poll(() => ledger.leaseHolder('stream_a'), { timeout: 30_000, interval: 250 }).toBeUndefined();
      expect((await holding.post('/syncs/stream_a/resume')).body).toEqual({ message: 'stream_a resumed.' });
      await withSource((c) => c.query("INSERT INTO items VALUES ($1, 'after the pause')", [next]));
      await expect.poll(() => receiver.records('stream_a').find((r) => r.key === String(next))?.fields['name'], { timeout: 60_000, interval: 250 }).toBe('after the pause');

      // SIGTERM drains both survivors: they exit as \`run\` does and release their syncs' leases.
      for (const r of survivors) r.child.kill('SIGTERM');
      expect((await Promise.all(survivors.map((r) => r.done))).map((e) => e.code)).toEqual([130, 130]);
      for (const s of SYNCS) expect(await ledger.leaseHolder(s), s).toBeUndefined();
    } finally {
      stop = true;
      await inserting;
      for (const r of runners) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
      await Promise.all(runners.map((r) => r.done));
      await ledger.close();
    }
  }, 400_000);
});
