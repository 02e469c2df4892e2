import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { loadConfig, type OutflowConfig, type RunSummary } from '@outflow/core';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { capturingLogger } from '@outflow/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { Alerts } from '../src/serve/alerts.js';
import { ALERT_SECRET, startReceiver, type Receiver } from './alerts.receiver.js';
import { openWorkspace, type Workspace } from '../src/workspace.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const tempDir = () => mkdtempSync(join(tmpdir(), 'outflow-alerts-'));
const kinds = (r: Receiver) => r.notices.map((n) => `${n.type} ${n.rule}`);

describe('alerts over real runs', () => {
  let emulator: WebhookEmulator;
  let ws: Workspace;

  /** Ten customers into a webhook receiver; runs fail when more than 30% of their records are rejected. */
  async function setup(receiver: Receiver): Promise<Alerts> {
    const dir = tempDir();
    mkdirSync(join(dir, 'data'));
    const csv = join(dir, 'data', 'customers.csv');
    writeFileSync(csv, ['id,email', ...Array.from({ length: 10 }, (_, i) => `${i + 1},user${i + 1}@example.com`)].join('\n') + '\n');
    emulator = await start({ secret: 'dest-secret' });
    cleanup.push(() => emulator.stop());
    writeFileSync(
      join(dir, 'outflow.yaml'),
      `version: 1
alerts:
  webhook: { url: "${receiver.url}", secret: ${ALERT_SECRET} }
  rules: { runFailed: true, rejectedPct: 10 }
connections:
  warehouse: { connector: duckdb }
  hooks: { connector: webhook, config: { url: "${emulator.url}", secret: dest-secret } }
syncs:
  - name: customers
    from: { connection: warehouse, file: ${JSON.stringify(csv)}, primaryKey: id }
    to: { connection: hooks, object: customers, mode: upsert }
    failWhen: { rejectedPct: 30 }
`,
    );
    const { logger } = capturingLogger();
    ws = await openWorkspace({ configFile: join(dir, 'outflow.yaml'), logger });
    cleanup.push(() => ws.close());
    const alerts = Alerts.from({ config: ws.loaded.config, ledger: ws.ledger(), logger })!;
    cleanup.push(() => alerts.close());
    return alerts;
  }

  it('alerts once per incident, however many runs fail, then sends one recovery; a new failure is a new incident', async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.stop());
    const alerts = await setup(receiver);
    const run = async (unpark?: true) => {
      const summary = await ws.engine.run('customers', unpark ? { unpark } : {});
      await alerts.runFinished(summary);
      return summary;
    };

    emulator.setFaults({ rejectKeys: ['1', '2', '3', '4', '5'] });
    expect((await run()).status).toBe('failed');
    expect(kinds(receiver).sort()).toEqual(['alert rejectedPct', 'alert runFailed']);
    const failed = receiver.notices.find((n) => n.rule === 'runFailed')!;
    expect(failed).toMatchObject({ sync: 'customers', type: 'alert' });
    expect(failed.message).toMatch(/^run \d+ of sync "customers" failed: OUTFLOW_TOO_MANY_REJECTED: /);
    expect(receiver.notices.find((n) => n.rule === 'rejectedPct')!.message).toContain('rejected 5 of 10 records (50%), more than rejectedPct 10');

    // Sent again while the receiver still rejects them: the same incidents, nothing new.
    expect((await run(true)).status).toBe('failed');
    expect((await run(true)).status).toBe('failed');
    expect(receiver.notices).toHaveLength(2);

    emulator.setFaults({});
    expect((await run(true)).status).toBe('succeeded');
    expect(kinds(receiver).slice(2).sort()).toEqual(['recovery rejectedPct', 'recovery runFailed']);
    for (const rule of ['runFailed', 'rejectedPct']) {
      const [alert, recovery] = receiver.notices.filter((n) => n.rule === rule);
      expect(recovery!.incident).toBe(alert!.incident);
      expect(recovery!.openedAt).toBe(alert!.openedAt);
    }
    expect((await run()).status).toBe('succeeded');
    expect(receiver.notices).toHaveLength(4);

    // Four rows change and one of them is rejected: 25%, within failWhen but above the alert's 10%.
    const rows = Array.from({ length: 10 }, (_, i) => `${i + 1},${i < 4 ? 'changed' : 'user'}${i + 1}@example.com`);
    writeFileSync(join(ws.loaded.dir, 'data', 'customers.csv'), ['id,email', ...rows].join('\n') + '\n');
    emulator.setFaults({ rejectKeys: ['1'] });
    expect(await run()).toMatchObject({ status: 'partial', updated: 3, rejected: 1 });
    const again = receiver.notices.slice(4);
    expect(again.map((n) => `${n.type} ${n.rule}`)).toEqual(['alert rejectedPct']);
    expect(again[0]!.incident).not.toBe(receiver.notices.find((n) => n.rule === 'rejectedPct')!.incident);
    expect(receiver.unsigned).toBe(0);
    expect(JSON.stringify(receiver.notices)).not.toContain(ALERT_SECRET);
  });
});

/** A config with one stream sync and one diff sync, as loading would give it. */
function config(receiverUrl: string, rules: Record<string, unknown>, own?: Record<string, unknown>): OutflowConfig {
  const to = { connection: 'hooks', object: 'customers' };
  return {
    version: 1,
    alerts: { webhook: { url: receiverUrl, secret: ALERT_SECRET }, rules },
    connections: { pg: { connector: 'postgres' }, hooks: { connector: 'webhook' } },
    syncs: [
      { name: 'orders', capture: 'stream', from: { connection: 'pg', table: 'orders', primaryKey: 'id' }, to },
      { name: 'customers', capture: 'diff', from: { connection: 'pg', table: 'customers', primaryKey: 'id' }, to, ...(own ? { alerts: own } : {}) },
    ],
  } as unknown as OutflowConfig;
}

const summary = (sync: string, status: RunSummary['status'], counts: Partial<RunSummary> = {}): RunSummary => ({
  sync,
  capture: 'diff',
  status,
  durationMs: 1,
  inserted: 0,
  updated: 0,
  deleted: 0,
  rejected: 0,
  skipped: 0,
  ...counts,
});

describe('alert rules', () => {
  it('alerts on stream lag above lagAbove once, and recovers when it is back within it', async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.stop());
    const ledger = openSqliteLedger(tempDir());
    cleanup.push(() => ledger.close());
    const { logger } = capturingLogger();
    const alerts = Alerts.from({ config: config(receiver.url, { lagAbove: '30s' }), ledger, logger })!;

    await alerts.lag('orders', 5_000);
    await alerts.lag('orders', 45_000);
    await alerts.lag('orders', 90_000);
    await alerts.lag('customers', 90_000); // a diff sync has no lag rule
    expect(kinds(receiver)).toEqual(['alert lagAbove']);
    expect(receiver.notices[0]!.message).toBe('sync "orders" is 45s behind its source, more than lagAbove 30s');
    await alerts.lag('orders', 30_000);
    await alerts.lag('orders', 1_000);
    expect(kinds(receiver)).toEqual(['alert lagAbove', 'recovery lagAbove']);
  });

  it("alerts when no run succeeded for noSuccessFor, by the ledger's runs, and recovers with the next success", async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.stop());
    const ledger = openSqliteLedger(tempDir());
    cleanup.push(() => ledger.close());
    const { logger } = capturingLogger();
    let now = Date.now();
    // The customers sync has rules of its own in place of the shared ones.
    const alerts = Alerts.from({ config: config(receiver.url, { noSuccessFor: '1h' }, { noSuccessFor: '2h' }), ledger, logger, now: () => now })!;
    const id = await ledger.startRun('orders', 'stream');
    await ledger.finishRun(id, 'succeeded', { inserted: 1, updated: 0, deleted: 0, rejected: 0, skipped: 0 });

    await alerts.checkQuiet();
    expect(receiver.notices).toHaveLength(0);
    now += 90 * 60_000;
    await alerts.checkQuiet();
    await alerts.checkQuiet();
    expect(receiver.notices.map((n) => `${n.type} ${n.sync}`)).toEqual(['alert orders']);
    expect(receiver.notices[0]!.message).toMatch(/^no run of sync "orders" has succeeded since \d{4}-.*, for more than noSuccessFor 3600s$/);
    now += 60 * 60_000;
    await alerts.checkQuiet();
    expect(receiver.notices.map((n) => `${n.type} ${n.sync}`)).toEqual(['alert orders', 'alert customers']);

    await alerts.runFinished(summary('orders', 'failed'));
    await alerts.runFinished(summary('orders', 'partial', { inserted: 3, rejected: 1 }));
    await alerts.checkQuiet();
    expect(receiver.notices.map((n) => `${n.type} ${n.sync}`)).toEqual(['alert orders', 'alert customers', 'recovery orders']);
  });

  it('watches only the syncs the process serves', async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.stop());
    const ledger = openSqliteLedger(tempDir());
    cleanup.push(() => ledger.close());
    let now = Date.now();
    const alerts = Alerts.from({ config: config(receiver.url, { noSuccessFor: '1h' }), syncs: ['customers'], ledger, logger: capturingLogger().logger, now: () => now })!;
    now += 2 * 3600_000;
    await alerts.checkQuiet();
    expect(receiver.notices.map((n) => `${n.type} ${n.sync}`)).toEqual(['alert customers']);
    expect(receiver.notices[0]!.message).toBe('no run of sync "customers" has succeeded since it started being watched, for more than noSuccessFor 3600s');
  });

  it('keeps incidents in the ledger: a restarted process neither alerts again nor forgets the recovery', async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.stop());
    const dir = tempDir();
    const { logger } = capturingLogger();
    const cfg = config(receiver.url, { runFailed: true });

    const first = openSqliteLedger(dir);
    await Alerts.from({ config: cfg, ledger: first, logger })!.runFinished(summary('customers', 'failed'));
    await first.close();
    expect(kinds(receiver)).toEqual(['alert runFailed']);

    const ledger = openSqliteLedger(dir);
    cleanup.push(() => ledger.close());
    const restarted = Alerts.from({ config: cfg, ledger, logger })!;
    await restarted.runFinished(summary('customers', 'failed'));
    expect(kinds(receiver)).toEqual(['alert runFailed']);
    await restarted.runFinished(summary('customers', 'succeeded'));
    expect(kinds(receiver)).toEqual(['alert runFailed', 'recovery runFailed']);
    expect(receiver.notices[1]!.incident).toBe(receiver.notices[0]!.incident);
  });

  it('tries a refused alert again (429, 5xx); one never acknowledged is sent again while its incident lasts; logs hold no secret', async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.stop());
    const ledger = openSqliteLedger(tempDir());
    cleanup.push(() => ledger.close());
    const { logger, lines } = capturingLogger();
    // Registered as loading the config would: the URL and the secret are both secrets.
    await loadConfig(writeYaml(`alerts:\n  webhook: { url: "${receiver.url}", secret: ${ALERT_SECRET} }\n`));
    const alerts = Alerts.from({ config: config(receiver.url, { runFailed: true }), ledger, logger })!;

    receiver.failNext = [429, 503];
    await alerts.runFinished(summary('customers', 'failed'));
    expect(kinds(receiver)).toEqual(['alert runFailed']);

    receiver.failNext = [500, 500, 500, 500];
    await alerts.runFinished(summary('orders', 'failed'));
    expect(kinds(receiver)).toEqual(['alert runFailed']);
    expect(lines.join('')).toContain('the alert webhook (alerts.webhook.url) answered HTTP 500, 4 times');
    await alerts.runFinished(summary('orders', 'failed'));
    expect(receiver.notices.map((n) => n.sync)).toEqual(['customers', 'orders']);
    expect(receiver.unsigned).toBe(0);

    expect(lines.join('')).not.toContain(ALERT_SECRET);
    expect(lines.join('')).not.toContain(receiver.url);
  }, 30_000);
});

const CONNECTIONS = `connections:
  warehouse: { connector: duckdb }
  hooks: { connector: webhook, config: { url: "http://127.0.0.1:9/hooks", secret: dest-secret } }
`;

function writeYaml(extra: string): string {
  const dir = tempDir();
  const file = join(dir, 'outflow.yaml');
  writeFileSync(
    file,
    `version: 1
${extra}${CONNECTIONS}syncs:
  - name: customers
    from: { connection: warehouse, file: customers.csv, primaryKey: id }
    to: { connection: hooks, object: customers }
`,
  );
  return file;
}

describe('alerts configuration', () => {
  const problems = async (yaml: string): Promise<string> => {
    const file = join(tempDir(), 'outflow.yaml');
    writeFileSync(file, yaml);
    try {
      await loadConfig(file);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('the config loaded');
  };

  it('names where and what for each mistake, without showing secrets', async () => {
    const message = await problems(`version: 1
alerts:
  webhook: { url: "ftp://hooks.example.com/t0ps3cret", secret: "" }
  rules: { rejectedPct: 150, noSuccessFor: 0s, lagAbove: soon, onFire: true }
${CONNECTIONS}syncs:
  - name: customers
    from: { connection: warehouse, file: customers.csv, primaryKey: id }
    to: { connection: hooks, object: customers }
    alerts: { lagAbove: 30s }
`);
    expect(message).toMatch(/outflow\.yaml:3:\d+ \/alerts\/webhook\/url: /);
    expect(message).toMatch(/outflow\.yaml:3:\d+ \/alerts\/webhook\/secret: /);
    expect(message).toMatch(/outflow\.yaml:4:\d+ \/alerts\/rules\/rejectedPct: must be at most 100 \(got 150\)/);
    expect(message).toMatch(/outflow\.yaml:4:\d+ \/alerts\/rules\/noSuccessFor: must be more than 0 and at most 24d \(got "0s"\)/);
    expect(message).toMatch(/\/alerts\/rules\/lagAbove: must match .* \(got "soon"\)/);
    expect(message).toMatch(/\/alerts\/rules: unknown property "onFire" \(expected one of runFailed, rejectedPct, lagAbove, noSuccessFor\)/);
    expect(message).toMatch(/has 7 problems/);
    expect(message).toMatch(/outflow\.yaml:12:\d+ \/syncs\/0\/alerts\/lagAbove: lagAbove applies only to capture: stream/);
    expect(message).not.toContain('t0ps3cret');
  });

  it("refuses a sync's alert rules without a receiver", async () => {
    const message = await problems(writeYamlText('    alerts: { runFailed: true }\n'));
    expect(message).toMatch(/\/syncs\/0\/alerts: alert rules need a receiver: add `alerts: \{ webhook: \{ url, secret \} \}` at the top of the file/);
  });
});

function writeYamlText(syncExtra: string): string {
  return `version: 1
${CONNECTIONS}syncs:
  - name: customers
    from: { connection: warehouse, file: customers.csv, primaryKey: id }
    to: { connection: hooks, object: customers }
${syncExtra}`;
}
