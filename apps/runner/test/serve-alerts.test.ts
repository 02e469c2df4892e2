import { startPostgres, type TestPostgres } from '@outflow/connector-postgres/testing';
import type { OutflowConfig } from '@outflow/core';
import { PostgresLedger } from '@outflow/ledger-postgres';
import { capturingLogger } from '@outflow/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Alerts } from '../src/serve/alerts.js';
import { ALERT_SECRET, startReceiver } from './alerts.receiver.js';

// Runners sharing a PostgreSQL ledger all watch the clock; each `noSuccessFor` incident must
// still reach the receiver once, whichever runners judge it and however their checks interleave.
let server: TestPostgres;

beforeAll(async () => {
  server = await startPostgres();
});

afterAll(async () => {
  await server?.stop();
});

function config(receiverUrl: string): OutflowConfig {
  const to = { connection: 'hooks', object: 'customers' };
  return {
    version: 1,
    alerts: { webhook: { url: receiverUrl, secret: ALERT_SECRET }, rules: { noSuccessFor: '1h' } },
    connections: { pg: { connector: 'postgres' }, hooks: { connector: 'webhook' } },
    syncs: [
      { name: 'orders', capture: 'diff', from: { connection: 'pg', table: 'orders', primaryKey: 'id' }, to },
      { name: 'customers', capture: 'diff', from: { connection: 'pg', table: 'customers', primaryKey: 'id' }, to },
    ],
  } as unknown as OutflowConfig;
}

describe('alerts of runners sharing a PostgreSQL ledger', () => {
  it('send each noSuccessFor incident once, from the runner holding the watch; another takes the watch over when it stops', async () => {
    const receiver = await startReceiver();
    const ledgers = [0, 1, 2].map(() => new PostgresLedger({ url: server.url, schema: 'alerts_shared' }));
    let now = Date.now();
    const runners = ledgers.map((ledger) => Alerts.from({ config: config(receiver.url), ledger, logger: capturingLogger().logger, now: () => now })!);
    const succeed = async (ledger: PostgresLedger, sync: string) => {
      const runId = await ledger.startRun(sync, 'diff');
      await ledger.finishRun(runId, 'succeeded', { inserted: 1, updated: 0, deleted: 0, rejected: 0, skipped: 0 });
      return { sync, capture: 'diff' as const, status: 'succeeded' as const, durationMs: 1, inserted: 1, updated: 0, deleted: 0, rejected: 0, skipped: 0, runId };
    };
    try {
      // The first runner to check becomes the one watching.
      await runners[0]!.checkQuiet();
      const watcher = (await ledgers[0]!.leaseHolder(':alerts-watcher'))?.owner;
      expect(watcher).toMatch(new RegExp(`/${process.pid}/`));
      now += 2 * 3600_000;
      // Every runner checks at once, twice: each incident opens and is sent once.
      await Promise.all(runners.flatMap((a) => [a.checkQuiet(), a.checkQuiet()]));
      await Promise.all(runners.map((a) => a.checkQuiet()));
      expect(receiver.notices.map((n) => `${n.type} ${n.sync}`).sort()).toEqual(['alert customers', 'alert orders']);

      // A run of orders succeeds on another runner: that runner sends the recovery.
      await runners[1]!.runFinished(await succeed(ledgers[1]!, 'orders'));
      expect(receiver.notices.filter((n) => n.type === 'recovery').map((n) => n.sync)).toEqual(['orders']);

      // The watching runner stops; the others take the watch over, and a new incident is sent once.
      await runners[0]!.close();
      now += 2 * 3600_000;
      await Promise.all(runners.slice(1).flatMap((a) => [a.checkQuiet(), a.checkQuiet()]));
      expect((await ledgers[1]!.leaseHolder(':alerts-watcher'))?.owner).not.toBe(watcher);
      expect(receiver.notices.map((n) => `${n.type} ${n.sync}`)).toHaveLength(4);
      expect(receiver.notices.slice(3).map((n) => `${n.type} ${n.sync}`)).toEqual(['alert orders']);
      expect(new Set(receiver.notices.map((n) => n.incident)).size).toBe(3);
    } finally {
      for (const a of runners.slice(1)) await a.close();
      for (const l of ledgers) await l.close();
      await receiver.stop();
    }
  });
});
