import './home.js';
import { readFileSync } from 'node:fs';
import salesforce, { type SalesforceConfig } from '@outflow/connector-salesforce';
import { start, type SalesforceEmulator, type SalesforceEmulatorOptions } from '@outflow/connector-salesforce/emulator';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import { defineConnector, type ConnectorContext, type Engine, type Row, type SyncConfig } from '@outflow/core';
import { capturingLogger, createTestEngine, memorySource } from '@outflow/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { CUSTOMER } from './fixtures.js';

// The real engine (SQLite ledger, DuckDB state) delivers an in-memory model to the
// connector, which talks to the emulator through @salesforce/core. Creations are counted in
// the emulator's own write log.

const KEY = readFileSync(new URL('./fixtures/jwt-test-key.pem', import.meta.url), 'utf8');
const CERT = readFileSync(new URL('./fixtures/jwt-test-cert.pem', import.meta.url), 'utf8');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  emu: SalesforceEmulator;
  engine: Engine;
  ledger: ReturnType<typeof openSqliteLedger>;
  logs: string[];
  crm: ConnectorContext<SalesforceConfig>;
}

async function setup(
  rows: () => Row[],
  options: SalesforceEmulatorOptions = {},
  config: (emu: SalesforceEmulator) => Partial<SalesforceConfig> = () => ({}),
  connector = salesforce,
): Promise<Setup> {
  const emu = await start({ customObjects: [CUSTOMER], ...options });
  const { logger, lines: logs } = capturingLogger('info');
  const { engine, ledger, close } = createTestEngine({
    connections: { src: memorySource(rows), crm: { connector, config: { ...emu.config, timeoutMs: 1_000, ...config(emu) } } },
    ledger: openSqliteLedger,
    stateStore: (dir) => duckdbStateStore({ dir }),
    logger,
  });
  cleanups.push(async () => {
    await close();
    await emu.stop();
  });
  const crm = (await engine.connection('crm')).ctx as ConnectorContext<SalesforceConfig>;
  return { emu, engine, ledger, logs, crm };
}

const fast = { backoff: { baseMs: 5, maxMs: 100 } };

type Over = { mode?: SyncConfig['to']['mode']; deletes?: SyncConfig['to']['deletes']; maxAttempts?: number; batchSize?: number };

/** Customers into Customer__c, matched by its unique External ID. */
function customersSync(over: Over = {}): SyncConfig {
  const delivery = { ...(over.maxAttempts === undefined ? {} : { maxAttempts: over.maxAttempts }), ...(over.batchSize === undefined ? {} : { batchSize: over.batchSize }) };
  return {
    name: 'customers',
    from: { connection: 'src', table: 'customers', primaryKey: 'id' },
    capture: 'diff',
    to: { connection: 'crm', object: 'Customer__c', mode: over.mode ?? 'upsert', deletes: over.deletes ?? 'ignore', matchKey: { External_Id__c: 'ext' } },
    mappings: { Name: 'name', Plan__c: 'plan', Seats__c: 'seats', Active__c: 'active', Signed_Up__c: 'signed', Renews_At__c: 'renews' },
    ...(Object.keys(delivery).length === 0 ? {} : { delivery }),
  } as SyncConfig;
}

/** People into Contact, matched by Email (an idLookup field that is not unique). */
function contactsSync(over: Over = {}): SyncConfig {
  const delivery = { ...(over.maxAttempts === undefined ? {} : { maxAttempts: over.maxAttempts }), ...(over.batchSize === undefined ? {} : { batchSize: over.batchSize }) };
  return {
    name: 'contacts',
    from: { connection: 'src', table: 'people', primaryKey: 'id' },
    capture: 'diff',
    to: { connection: 'crm', object: 'Contact', mode: over.mode ?? 'insert', deletes: over.deletes ?? 'ignore', matchKey: { Email: 'email' } },
    mappings: { Email: 'email', LastName: 'last', FirstName: 'first' },
    ...(Object.keys(delivery).length === 0 ? {} : { delivery }),
  } as SyncConfig;
}

const PLANS = ['free', 'pro', 'enterprise'];
const customers = (n: number, from = 1): Row[] =>
  Array.from({ length: n }, (_, k) => {
    const id = from + k;
    return {
      id,
      ext: `cust-${id}`,
      name: `Customer ${id}`,
      plan: PLANS[id % 3]!,
      seats: id % 50,
      active: id % 2 === 0 ? 'true' : 0,
      signed: `2024-02-${String((id % 28) + 1).padStart(2, '0')}`,
      renews: `2025-03-01 09:30:00`,
    };
  });
const people = (n: number): Row[] => Array.from({ length: n }, (_, k) => ({ id: k + 1, email: `person${k + 1}@example.com`, first: `P${k + 1}`, last: `L${k + 1}` }));

/** Creations of Customer__c records holding `ext`, from the emulator's write log. */
const createsOf = (emu: SalesforceEmulator, object: string, field: string, value: string) =>
  emu.writes().filter((w) => w.op === 'create' && w.object === object && w.fields?.[field] === value).length;

describe('salesforce destination, driven by the engine', () => {
  it('upserts over sObject Collections with values in Salesforce types, then sends nothing, then exactly the change', async () => {
    let rows = customers(450);
    const { emu, engine } = await setup(() => rows);
    expect(await engine.run(customersSync(), fast)).toMatchObject({ status: 'succeeded', inserted: 450, rejected: 0 });
    expect(emu.records('Customer__c')).toHaveLength(450);
    expect(emu.records('Customer__c').find((r) => r['External_Id__c'] === 'cust-7')).toMatchObject({
      Name: 'Customer 7',
      Plan__c: 'pro',
      Seats__c: 7,
      Active__c: false,
      Signed_Up__c: '2024-02-08',
      Renews_At__c: '2025-03-01T09:30:00.000+0000',
    });
    // 450 records in 3 requests of at most 200, after one describe.
    expect(emu.requestStats().byKind).toMatchObject({ collections: 3, describe: 1 });
    expect(emu.writes().every((w) => w.via === 'collections')).toBe(true);

    expect(await engine.run(customersSync(), fast)).toMatchObject({ status: 'succeeded', inserted: 0, updated: 0 });
    expect(emu.requestStats().byKind['collections']).toBe(3);
    rows = rows.map((r) => (r['id'] === 9 ? { ...r, seats: 49 } : r));
    expect(await engine.run(customersSync(), fast)).toMatchObject({ status: 'succeeded', updated: 1 });
    expect(emu.records('Customer__c').find((r) => r['External_Id__c'] === 'cust-9')!['Seats__c']).toBe(49);
    expect(emu.writes().filter((w) => w.op === 'update')).toHaveLength(1);
  });

  it('takes a Bulk API 2.0 job from bulkThreshold records of one kind, and says so', async () => {
    let rows = customers(600);
    const { emu, engine, logs } = await setup(() => rows, {}, () => ({ bulkThreshold: 500 }));
    expect(await engine.run(customersSync(), fast)).toMatchObject({ status: 'succeeded', inserted: 600, rejected: 0 });
    expect(emu.bulkJobsProcessed).toBe(1);
    expect(emu.requestStats().byKind['collections'] ?? 0).toBe(0);
    expect(emu.writes().filter((w) => w.op === 'create' && w.via === 'bulk')).toHaveLength(600);
    expect(logs.join('')).toMatch(/Bulk API 2\.0 job 750\w+: upsert of 600 Customer__c/);
    // An update of a few goes over Collections again.
    rows = rows.map((r) => (Number(r['id']) <= 3 ? { ...r, name: `Renamed ${String(r['id'])}` } : r));
    expect(await engine.run(customersSync(), fast)).toMatchObject({ status: 'succeeded', updated: 3 });
    expect(emu.requestStats().byKind['collections']).toBe(1);
    expect(emu.bulkJobsProcessed).toBe(1);
  });

  for (const transport of ['collections', 'bulk'] as const) {
    const config = () => (transport === 'bulk' ? { bulkThreshold: 1 } : {});
    it(`insert, update, and mirror deletes of only what Outflow wrote, over ${transport}`, async () => {
      let rows = customers(8);
      const { emu, engine, crm } = await setup(() => rows, {}, config);
      const outsider = await salesforce.destination!.write(crm, 'Customer__c', [
        { kind: 'insert', key: 'outsider', fields: { Name: 'Not from the model', External_Id__c: 'outsider' }, idempotencyKey: 'seed-1' },
      ]);
      expect(outsider[0]).toMatchObject({ ok: true });
      expect(await engine.run(customersSync({ mode: 'insert' }), fast)).toMatchObject({ status: 'succeeded', inserted: 8 });
      rows = rows.map((r) => (r['id'] === 2 ? { ...r, name: 'Changed' } : r));
      expect(await engine.run(customersSync({ mode: 'update' }), fast)).toMatchObject({ status: 'succeeded', updated: 1 });
      expect(emu.records('Customer__c').find((r) => r['External_Id__c'] === 'cust-2')!['Name']).toBe('Changed');
      rows = rows.filter((r) => r['id'] !== 3 && r['id'] !== 5);
      expect(await engine.run(customersSync({ mode: 'mirror' }), fast)).toMatchObject({ status: 'succeeded', deleted: 2 });
      expect(emu.records('Customer__c').map((r) => r['External_Id__c']).sort()).toEqual(['cust-1', 'cust-2', 'cust-4', 'cust-6', 'cust-7', 'cust-8', 'outsider']);
      const via = new Set(emu.writes().slice(1).map((w) => w.via));
      expect([...via]).toEqual([transport]);
    });

    it(`parks each record Salesforce refuses with its statusCode and message, and delivers the rest, over ${transport}`, async () => {
      const rows = customers(6).map((r) => (r['id'] === 2 ? { ...r, plan: 'gold' } : r['id'] === 4 ? { ...r, name: 'x'.repeat(81) } : r));
      const { emu, engine, ledger } = await setup(() => rows, {}, config);
      const run = await engine.run(customersSync(), fast);
      expect(run).toMatchObject({ status: 'partial', inserted: 4, rejected: 2 });
      const errors = await ledger.listRowErrors({ sync: 'customers' });
      errors.sort((a, b) => a.key.localeCompare(b.key));
      expect(errors.map((e) => [e.key, e.retryable])).toEqual([
        ['2', false],
        ['4', false],
      ]);
      // The picklist value is refused before sending (describe says restricted); the length too.
      expect(errors[0]!.reason).toMatch(/Plan__c of Customer__c: "gold" is not one of its values/);
      expect(errors[1]!.reason).toMatch(/Name of Customer__c holds at most 80 characters/);
      expect(emu.records('Customer__c')).toHaveLength(4);
    });
  }

  it('parks a record Salesforce itself refuses, with statusCode, message and fields', async () => {
    const rows = [
      { id: 1, email: 'ok@example.com', first: 'A', last: 'B' },
      { id: 2, email: 'not an email', first: 'C', last: 'D' },
    ];
    const { engine, ledger } = await setup(() => rows);
    expect(await engine.run(contactsSync(), fast)).toMatchObject({ status: 'partial', inserted: 1, rejected: 1 });
    const [error] = await ledger.listRowErrors({ sync: 'contacts' });
    expect(error!.reason).toBe('Salesforce refused the record (INVALID_EMAIL_ADDRESS: Email: invalid email address: not an email (fields: Email))');
  });

  it('pauses once Outflow has used its share of the daily allocation, saying so, and sends nothing more', async () => {
    const rows = customers(2000);
    const { emu, engine } = await setup(() => rows, { dailyAllocation: 100 }, () => ({ dailyApiShare: 5 }));
    const run = await engine.run(customersSync({ batchSize: 200 }), fast);
    expect(run.status).toBe('failed');
    expect(run.error?.message).toMatch(/used its share of the org's daily API allocation \(5 of 100 requests in the last 24 hours\): dailyApiShare is 5%/);
    // The describe and four Collections requests reach 5 of 100; only the writes already in
    // flight then (up to the connector's concurrency of 4) are sent, and nothing after.
    const used = emu.apiUsage.used;
    expect(used).toBeGreaterThanOrEqual(5);
    expect(used).toBeLessThanOrEqual(5 + 3);
    expect(emu.records('Customer__c')).toHaveLength((used - 1) * 200);
  });

  it('backs off on REQUEST_LIMIT_EXCEEDED and pauses when the allocation itself is spent', async () => {
    let rows = customers(300);
    const { emu, engine } = await setup(() => rows, { faults: { status429Every: 3 } }, () => ({ dailyApiShare: 100 }));
    expect(await engine.run(customersSync({ maxAttempts: 20 }), fast)).toMatchObject({ status: 'succeeded', inserted: 300 });
    expect(emu.requestStats().byStatus['403']).toBeGreaterThan(0);
    // Other integrations spend the rest of the day's allocation: Salesforce refuses with
    // REQUEST_LIMIT_EXCEEDED, and the sync pauses instead of trying again and again.
    emu.setFaults({});
    emu.setAllocation(emu.apiUsage.allocation, emu.apiUsage.allocation);
    rows = rows.map((r) => ({ ...r, seats: 1 }));
    const run = await engine.run(customersSync(), fast);
    expect(run).toMatchObject({ status: 'failed', updated: 0 });
    expect(run.error?.message).toMatch(/daily API allocation is spent \(REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded\.\); the sync pauses/);
    const refused = emu.requestStats().byStatus['403'];
    expect(await engine.run(customersSync(), fast)).toMatchObject({ status: 'failed' });
    // Paused: the second run sent nothing.
    expect(emu.requestStats().byStatus['403']).toBe(refused);
  });

  it('signs in by the JWT bearer flow and, when the session expires, signs in again once', async () => {
    let rows = customers(3);
    const jwt = (emu: SalesforceEmulator) => ({ accessToken: undefined, jwt: { clientId: 'outflow-app', username: 'sync@acme.test', privateKey: KEY, loginUrl: emu.url } });
    const { emu, engine } = await setup(() => rows, { jwt: { clientId: 'outflow-app', certificate: CERT, usernames: ['sync@acme.test'] } }, jwt);
    expect(await engine.run(customersSync(), fast)).toMatchObject({ status: 'succeeded', inserted: 3 });
    expect(emu.requestStats().byKind['oauth']).toBe(1);
    emu.expireSessions();
    rows = customers(4);
    expect(await engine.run(customersSync(), fast)).toMatchObject({ status: 'succeeded', inserted: 1 });
    expect(emu.requestStats().byKind['oauth']).toBe(2);
  });

  it('fails clearly when an access token expires, and when a renewed session is refused too', async () => {
    const rows = customers(3);
    const { emu, engine } = await setup(() => rows);
    emu.expireSessions();
    const run = await engine.run(customersSync(), fast);
    expect(run.status).toBe('failed');
    expect(run.error?.message).toMatch(/INVALID_SESSION_ID.*an access token cannot be renewed: replace accessToken, or configure jwt/);

    // A JWT sign-in that Salesforce then refuses at once: one renewal, then a clear failure.
    const jwt = (e: SalesforceEmulator) => ({ accessToken: undefined, jwt: { clientId: 'outflow-app', username: 'sync@acme.test', privateKey: KEY, loginUrl: e.url } });
    const second = await setup(() => rows, { jwt: { clientId: 'outflow-app', certificate: CERT, usernames: ['sync@acme.test'] }, sessionTtlMs: 0 }, jwt);
    const refused = await second.engine.run(customersSync(), fast);
    expect(refused.status).toBe('failed');
    expect(refused.error?.message).toMatch(/INVALID_SESSION_ID.*a new session from the JWT bearer flow was refused as well/);
    expect(second.emu.requestStats().byKind['oauth']).toBe(2);
  });

  for (const transport of ['collections', 'bulk'] as const) {
    it(`survives 5xx, resets, timeouts and lost answers over ${transport} with nothing lost and nothing created twice`, async () => {
      const rows = customers(400);
      const faults = { errorRate: 0.1, resetRate: 0.05, lostAnswerRate: 0.2, lostAnswer: 'mixed' as const, seed: 11, bulkProcessingMs: 5 };
      const { emu, engine } = await setup(() => rows, { faults }, () => ({ timeoutMs: 300, ...(transport === 'bulk' ? { bulkThreshold: 50 } : {}) }));
      let run = await engine.run(customersSync({ batchSize: 100, maxAttempts: 40 }), fast);
      for (let i = 0; i < 5 && run.status !== 'succeeded'; i++) run = await engine.run(customersSync({ batchSize: 100, maxAttempts: 40 }), fast);
      expect(run.status).toBe('succeeded');
      expect(emu.requestStats().lostAnswers).toBeGreaterThan(0);
      expect(emu.records('Customer__c')).toHaveLength(400);
      for (const r of rows) expect(createsOf(emu, 'Customer__c', 'External_Id__c', String(r['ext']))).toBe(1);
      emu.setFaults({});
      expect(await engine.run(customersSync(), fast)).toMatchObject({ status: 'succeeded', inserted: 0, updated: 0 });
    });
  }

  it('inserts contacts whose answers are lost exactly once, looking each one up by email', async () => {
    const rows = people(150);
    const { emu, engine, ledger } = await setup(() => rows, { faults: { lostAnswerRate: 0.3, lostAnswer: 'mixed', seed: 5 } }, () => ({ timeoutMs: 1_500 }));
    let run = await engine.run(contactsSync({ batchSize: 10, maxAttempts: 40 }), fast);
    for (let i = 0; i < 5 && run.status !== 'succeeded'; i++) run = await engine.run(contactsSync({ batchSize: 10, maxAttempts: 40 }), fast);
    expect(run.status).toBe('succeeded');
    expect(await ledger.listRowErrors({ sync: 'contacts' })).toEqual([]);
    expect(emu.requestStats().lostAnswers).toBeGreaterThan(2);
    for (const r of rows) expect(createsOf(emu, 'Contact', 'Email', String(r['email']))).toBe(1);
  });

  it('parks contact inserts whose answer is lost as outcome unknown when there is no match key to look them up by, creating none twice', async () => {
    const rows = people(10);
    const { emu, engine, ledger } = await setup(() => rows, { faults: { loseAnswers: 1, lostAnswer: 'reset' } });
    const sync = { ...contactsSync({ maxAttempts: 5 }), to: { ...contactsSync().to, matchKey: undefined } } as SyncConfig;
    await engine.run(sync, fast);
    expect(emu.requestStats().lostAnswers).toBe(1);
    const errors = await ledger.listRowErrors({ sync: 'contacts' });
    expect(errors).toHaveLength(10);
    for (const e of errors) expect(e.reason).toMatch(/outcome unknown/);
    // Applied once by the request whose answer was lost, and never sent again.
    for (const r of rows) expect(createsOf(emu, 'Contact', 'Email', String(r['email']))).toBe(1);
    expect(await engine.run(sync, fast)).toMatchObject({ inserted: 0 });
    for (const r of rows) expect(createsOf(emu, 'Contact', 'Email', String(r['email']))).toBe(1);
  });

  it('catches a connector that claims re-sent Contact inserts are harmless: the write log shows contacts created twice', async () => {
    // The same connector, but declaring `match` where it is `none`: lost answers are re-sent blindly.
    const dishonest = defineConnector({
      ...salesforce,
      destination: {
        ...salesforce.destination!,
        lookup: undefined,
        async capabilities(ctx, object) {
          return { ...(await salesforce.destination!.capabilities(ctx, object)), idempotency: 'match' as const };
        },
        write: (ctx, object, ops) => salesforce.destination!.write(ctx, object, ops.map((op) => ({ ...op, match: undefined }))),
      },
    });
    const rows = people(60);
    const { emu, engine } = await setup(() => rows, { faults: { lostAnswerRate: 0.3, lostAnswer: 'reset', seed: 5 } }, () => ({ timeoutMs: 300 }), dishonest);
    await engine.run(contactsSync({ batchSize: 10, maxAttempts: 40 }), fast);
    const twice = rows.filter((r) => createsOf(emu, 'Contact', 'Email', String(r['email'])) > 1);
    expect(twice.length).toBeGreaterThan(0);
  });
});
