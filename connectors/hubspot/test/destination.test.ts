import hubspot, { type HubSpotConfig } from '@outflow/connector-hubspot';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import { start, type HubSpotEmulator, type HubSpotEmulatorOptions } from '@outflow/connector-hubspot/emulator';
import { type ConnectorContext, type Engine, type Row, type SyncConfig } from '@outflow/core';
import { capturingLogger, createTestEngine, memorySource } from '@outflow/testing';
import { afterEach, describe, expect, it } from 'vitest';

// The real engine (with a SQLite ledger) delivers an in-memory model to the
// connector, which talks to the emulator through @hubspot/api-client.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  emu: HubSpotEmulator;
  env: { engine: Engine; ledger: ReturnType<typeof openSqliteLedger> };
  logs: string[];
  /** The engine's context of the HubSpot connection, for calls made directly in a test. */
  crm: ConnectorContext<HubSpotConfig>;
}

async function setup(rows: () => Row[], options: HubSpotEmulatorOptions = {}, config: Partial<HubSpotConfig> = {}): Promise<Setup> {
  const emu = await start(options);
  const { logger, lines: logs } = capturingLogger('debug');
  const { engine, ledger, close } = createTestEngine({
    connections: { src: memorySource(rows), crm: { connector: hubspot, config: { ...emu.config, tier: 'professional', ...config } } },
    ledger: openSqliteLedger,
    stateStore: (dir) => duckdbStateStore({ dir }),
    logger,
  });
  cleanups.push(async () => {
    await close();
    await emu.stop();
  });
  const crm = (await engine.connection('crm')).ctx as ConnectorContext<HubSpotConfig>;
  return { emu, env: { engine, ledger }, logs, crm };
}

const fast = { backoff: { baseMs: 5, maxMs: 200 } };

function sync(
  over: { mode?: SyncConfig['to']['mode']; deletes?: SyncConfig['to']['deletes']; maxAttempts?: number; batchSize?: number; matchKey?: false } = {},
): SyncConfig {
  const delivery = { ...(over.maxAttempts === undefined ? {} : { maxAttempts: over.maxAttempts }), ...(over.batchSize === undefined ? {} : { batchSize: over.batchSize }) };
  return {
    name: 'customers',
    from: { connection: 'src', table: 'customers', primaryKey: 'id' },
    capture: 'diff',
    to: {
      connection: 'crm',
      object: 'contacts',
      mode: over.mode ?? 'upsert',
      deletes: over.deletes ?? 'ignore',
      ...(over.matchKey === false ? {} : { matchKey: { email: 'email' } }),
    },
    mappings: { email: 'email', firstname: 'first', lastname: 'last', plan: 'plan', lifetime_value: 'ltv', signed_up_at: 'signed' },
    ...(Object.keys(delivery).length === 0 ? {} : { delivery }),
  } as SyncConfig;
}

/** How many times the emulator created a record of `object` whose `property` is `value`, from its own write log. */
const createsOf = (emu: HubSpotEmulator, object: string, property: string, value: string): number =>
  emu.stats().writes.filter((w) => w.op === 'create' && w.object === object && w.properties?.[property] === value).length;

const PLANS = ['free', 'starter', 'pro', 'enterprise'];
const customers = (n: number, from = 1): Row[] =>
  Array.from({ length: n }, (_, k) => {
    const id = from + k;
    return {
      id,
      email: `customer${id}@example.com`,
      first: `First${id}`,
      last: `Last${id}`,
      plan: PLANS[id % 4]!,
      ltv: id * 1.5,
      signed: `2023-01-${String((id % 28) + 1).padStart(2, '0')} 10:00:00`,
    };
  });

describe('hubspot destination, driven by the engine', () => {
  it('says re-sending is harmless only on objects with a unique property', async () => {
    const { crm } = await setup(() => []);
    const destination = hubspot.destination!;
    // Contacts are upserted by email, and HubSpot refuses a second contact with one; a
    // re-sent create of a deal would make a second deal.
    expect((await destination.capabilities(crm, 'contacts')).idempotency).toBe('match');
    expect((await destination.capabilities(crm, 'deals')).idempotency).toBe('none');
  });

  it('upserts every row by email with values in HubSpot formats, then sends nothing, then exactly the change', async () => {
    let rows = customers(250);
    const { emu, env } = await setup(() => rows);
    const first = await env.engine.run(sync(), fast);
    expect(first).toMatchObject({ status: 'succeeded', inserted: 250, rejected: 0 });
    expect(emu.records('contacts')).toHaveLength(250);
    expect(emu.find('contacts', 'email', 'customer7@example.com')!.properties).toMatchObject({
      firstname: 'First7',
      plan: 'enterprise',
      lifetime_value: '10.5',
      signed_up_at: '2023-01-08T10:00:00.000Z',
    });
    expect(emu.stats().batches).toEqual({ requests: 3, inputs: 250 });

    const second = await env.engine.run(sync(), fast);
    expect(second).toMatchObject({ status: 'succeeded', inserted: 0, updated: 0 });
    expect(emu.stats().batches.requests).toBe(3);

    rows = rows.map((r) => (r['id'] === 42 ? { ...r, last: 'Renamed' } : r));
    const third = await env.engine.run(sync(), fast);
    expect(third).toMatchObject({ status: 'succeeded', inserted: 0, updated: 1 });
    expect(emu.stats().batches).toEqual({ requests: 4, inputs: 251 });
    expect(emu.find('contacts', 'email', 'customer42@example.com')!.properties['lastname']).toBe('Renamed');
    expect(emu.records('contacts')).toHaveLength(250);
  });

  it('parks the records HubSpot refuses in a whole-batch 400, and records it would refuse, each with its reason, and delivers the rest', async () => {
    let rows = customers(20).map((r) => {
      if (r['id'] === 3) return { ...r, email: 'not-an-email' };
      if (r['id'] === 5) return { ...r, plan: 'platinum' };
      if (r['id'] === 8) return { ...r, ltv: 'a lot' };
      return r;
    });
    const { emu, env } = await setup(() => rows);
    const run = await env.engine.run(sync(), fast);
    expect(run).toMatchObject({ status: 'partial', inserted: 17, rejected: 3, parked: 3 });
    const errors = new Map((await env.ledger.listRowErrors({ sync: 'customers' })).map((e) => [e.key, e]));
    expect(errors.get('3')).toMatchObject({ retryable: false, reason: expect.stringContaining('Email address not-an-email is invalid') });
    expect(errors.get('3')!.reason).toContain('VALIDATION_ERROR');
    expect(errors.get('5')!.reason).toContain('"platinum" is not one of its options (free, starter, pro, enterprise)');
    expect(errors.get('8')!.reason).toContain('lifetime_value');
    expect(emu.records('contacts')).toHaveLength(17);
    expect(emu.find('contacts', 'email', 'customer5@example.com')).toBeUndefined();
    // HubSpot refused the first upsert of 18 as a whole; the connector halved it until the
    // refusal was pinned on the bad address, so each good contact was created once.
    expect(emu.stats().byStatus['400']).toBeGreaterThan(0);
    for (const r of rows.filter((r) => r['id'] !== 3 && r['id'] !== 5 && r['id'] !== 8)) {
      expect(createsOf(emu, 'contacts', 'email', String(r['email']))).toBe(1);
    }

    // The same in an update by id: the contact whose new address HubSpot refuses is parked,
    // the other change in the batch lands.
    rows = rows.map((r) => (r['id'] === 4 ? { ...r, email: 'still@not' } : r['id'] === 6 ? { ...r, last: 'Renamed' } : r));
    const second = await env.engine.run(sync(), fast);
    expect(second).toMatchObject({ status: 'partial', updated: 1, rejected: 1 });
    expect((await env.ledger.listRowErrors({ sync: 'customers' })).find((e) => e.key === '4')!.reason).toContain('Email address still@not is invalid');
    expect(emu.find('contacts', 'email', 'customer6@example.com')!.properties['lastname']).toBe('Renamed');
    expect(emu.find('contacts', 'email', 'customer4@example.com')).toBeDefined();
  });

  it('on a batch create HubSpot refuses with 409, updates the contact whose email exists by its id and creates the rest, each once', async () => {
    const rows = customers(12);
    const { emu, env, crm } = await setup(() => rows);
    // Two contacts someone else created in HubSpot, with the model's emails.
    await hubspot.destination!.write(crm, 'contacts', [
      { kind: 'insert', key: 'x', fields: { email: 'customer4@example.com', firstname: 'Theirs' }, idempotencyKey: 'seed-x' },
      { kind: 'insert', key: 'y', fields: { email: 'CUSTOMER9@example.com', firstname: 'Theirs' }, idempotencyKey: 'seed-y' },
    ]);
    const theirs = [emu.find('contacts', 'email', 'customer4@example.com')!.id, emu.find('contacts', 'email', 'customer9@example.com')!.id];
    // Without a match key every upsert is a batch create.
    const run = await env.engine.run(sync({ matchKey: false }), fast);
    expect(run).toMatchObject({ status: 'succeeded', inserted: 12, rejected: 0 });
    expect(emu.stats().byStatus['409']).toBe(1);
    expect(emu.records('contacts')).toHaveLength(12);
    for (const r of rows) expect(createsOf(emu, 'contacts', 'email', String(r['email']))).toBe(r['id'] === 4 ? 1 : r['id'] === 9 ? 0 : 1);
    expect(createsOf(emu, 'contacts', 'email', 'CUSTOMER9@example.com')).toBe(1);
    expect(emu.get('contacts', theirs[0]!)!.properties).toMatchObject({ firstname: 'First4', lastname: 'Last4' });
    expect(emu.get('contacts', theirs[1]!)!.properties).toMatchObject({ firstname: 'First9', lastname: 'Last9' });
    // The engine learned their ids: a change goes to the same records, nothing is created.
    rows[3] = { ...rows[3]!, last: 'Changed' };
    expect(await env.engine.run(sync({ matchKey: false }), fast)).toMatchObject({ status: 'succeeded', updated: 1 });
    expect(emu.get('contacts', theirs[0]!)!.properties['lastname']).toBe('Changed');
    expect(emu.stats().writes.filter((w) => w.op === 'create')).toHaveLength(12);
  });

  it('insert mode recognises a contact it created before and refuses one that holds other values, delivering the rest', async () => {
    const rows = customers(6);
    const { emu, env, crm } = await setup(() => rows);
    const write = (ops: Parameters<NonNullable<typeof hubspot.destination>['write']>[2]) => hubspot.destination!.write(crm, 'contacts', ops);
    // customer2 exists exactly as this sync would write it (an earlier create whose answer
    // was lost); customer5 exists with another first name.
    const [first] = await write([
      { kind: 'insert', key: '2', match: { email: 'customer2@example.com' }, fields: { email: 'customer2@example.com', firstname: 'First2', lastname: 'Last2', plan: 'pro', lifetime_value: 3, signed_up_at: '2023-01-03 10:00:00' }, idempotencyKey: 'i-2' },
    ]);
    await write([{ kind: 'insert', key: 'z', fields: { email: 'customer5@example.com', firstname: 'Someone' }, idempotencyKey: 'i-z' }]);
    const run = await env.engine.run(sync({ mode: 'insert' }), fast);
    expect(run).toMatchObject({ status: 'partial', inserted: 5, rejected: 1 });
    const errors = await env.ledger.listRowErrors({ sync: 'customers' });
    expect(errors.map((e) => [e.key, e.retryable])).toEqual([['5', false]]);
    expect(errors[0]!.reason).toContain('CONFLICT');
    expect(emu.find('contacts', 'email', 'customer5@example.com')!.properties['firstname']).toBe('Someone');
    expect(emu.find('contacts', 'email', 'customer2@example.com')!.id).toBe((first as { destinationId: string }).destinationId);
    for (const r of rows) expect(createsOf(emu, 'contacts', 'email', String(r['email']))).toBe(1);
    expect(emu.records('contacts')).toHaveLength(6);
  });

  it('insert mode creates records and never updates them', async () => {
    let rows = customers(5);
    const { emu, env } = await setup(() => rows);
    expect(await env.engine.run(sync({ mode: 'insert' }), fast)).toMatchObject({ status: 'succeeded', inserted: 5 });
    rows = rows.map((r) => (r['id'] === 2 ? { ...r, first: 'Changed' } : r));
    expect(await env.engine.run(sync({ mode: 'insert' }), fast)).toMatchObject({ status: 'succeeded', inserted: 0, updated: 0, skipped: 1 });
    expect(emu.find('contacts', 'email', 'customer2@example.com')!.properties['firstname']).toBe('First2');
    expect(emu.stats().batches).toEqual({ requests: 1, inputs: 5 });
  });

  it('update mode changes existing contacts by email and refuses the ones HubSpot does not have', async () => {
    const rows = customers(3);
    const { emu, env, crm } = await setup(() => rows);
    await hubspot.destination!.write(crm, 'contacts', [
      { kind: 'insert', key: 'x', fields: { email: 'customer1@example.com', firstname: 'Old' }, idempotencyKey: 'seed-1' },
    ]);
    const run = await env.engine.run(sync({ mode: 'update' }), fast);
    // The engine counts by what changed in the model: three rows new to Outflow.
    expect(run).toMatchObject({ status: 'partial', inserted: 1, rejected: 2 });
    expect(emu.find('contacts', 'email', 'customer1@example.com')!.properties['firstname']).toBe('First1');
    const errors = await env.ledger.listRowErrors({ sync: 'customers' });
    expect(errors.map((e) => e.reason)).toEqual([expect.stringContaining('OBJECT_NOT_FOUND'), expect.stringContaining('OBJECT_NOT_FOUND')]);
    expect(emu.records('contacts')).toHaveLength(1);
  });

  it('mirror deletes archive only the records Outflow wrote', async () => {
    let rows = customers(6);
    const { emu, env, crm } = await setup(() => rows);
    const outsider = await hubspot.destination!.write(crm, 'contacts', [
      { kind: 'insert', key: 'outsider', fields: { email: 'outsider@example.com' }, idempotencyKey: 'seed-2' },
    ]);
    expect(outsider[0]).toMatchObject({ ok: true });
    expect(await env.engine.run(sync({ mode: 'mirror' }), fast)).toMatchObject({ status: 'succeeded', inserted: 6 });
    rows = rows.filter((r) => r['id'] !== 2 && r['id'] !== 4);
    expect(await env.engine.run(sync({ mode: 'mirror' }), fast)).toMatchObject({ status: 'succeeded', deleted: 2 });
    expect(emu.records('contacts').map((r) => r.properties['email']).sort()).toEqual(
      ['customer1@example.com', 'customer3@example.com', 'customer5@example.com', 'customer6@example.com', 'outsider@example.com'].sort(),
    );
  });

  it('deletes a record known only by its unique value, looking its id up first', async () => {
    const { emu, crm } = await setup(() => []);
    const write = (ops: Parameters<NonNullable<typeof hubspot.destination>['write']>[2]) => hubspot.destination!.write(crm, 'contacts', ops);
    await write([{ kind: 'upsert', key: 'a', match: { email: 'A@example.com' }, fields: { firstname: 'A' }, idempotencyKey: 'u-a' }]);
    const results = await write([
      { kind: 'delete', key: 'a', match: { email: 'a@example.com' }, idempotencyKey: 'd-a' },
      { kind: 'delete', key: 'b', match: { email: 'never@example.com' }, idempotencyKey: 'd-b' },
    ]);
    expect(results).toEqual([{ ok: true }, { ok: true }]);
    expect(emu.records('contacts')).toEqual([]);
  });

  it('survives 429 storms, 5xx and connection resets with nothing lost and nothing doubled', async () => {
    const rows = customers(1200);
    const { emu, env } = await setup(() => rows, { faults: { status429Every: 3, errorRate: 0.15, resetRate: 0.05, seed: 42 } });
    const run = await env.engine.run(sync({ maxAttempts: 30 }), fast);
    expect(run).toMatchObject({ status: 'succeeded', inserted: 1200, rejected: 0 });
    const records = emu.records('contacts');
    expect(records).toHaveLength(1200);
    expect(new Set(records.map((r) => r.properties['email'])).size).toBe(1200);
    expect(emu.find('contacts', 'email', 'customer1199@example.com')!.properties['lastname']).toBe('Last1199');
    const stats = emu.stats();
    expect(stats.rateLimited['TEN_SECONDLY_ROLLING']).toBeGreaterThan(0);
    expect(stats.byStatus['502']).toBeGreaterThan(0);
    expect(await env.engine.run(sync(), fast)).toMatchObject({ status: 'succeeded', inserted: 0, updated: 0 });
  });

  it('creates each contact exactly once when HubSpot applies creates and their answers are lost', async () => {
    const rows = customers(300);
    const { emu, env } = await setup(() => rows, { faults: { lostAnswerRate: 0.3, lostAnswer: 'mixed', seed: 7 } }, { timeoutMs: 300 });
    const run = await env.engine.run(sync({ mode: 'insert', batchSize: 20, maxAttempts: 30 }), fast);
    expect(run).toMatchObject({ status: 'succeeded', inserted: 300, rejected: 0 });
    const stats = emu.stats();
    expect(stats.lostAnswers).toBeGreaterThan(2);
    expect(stats.byStatus['409']).toBeGreaterThan(0);
    // Counted from the emulator's own log of creates: a record created twice would show.
    const creates = stats.writes.filter((w) => w.op === 'create');
    expect(creates).toHaveLength(300);
    for (const r of rows) expect(createsOf(emu, 'contacts', 'email', String(r['email']))).toBe(1);
    expect(await env.engine.run(sync({ mode: 'insert' }), fast)).toMatchObject({ status: 'succeeded', inserted: 0, rejected: 0 });
  });

  it('parks as "outcome unknown" the deals whose create was applied but whose answer was lost, never creating one twice', async () => {
    const deals = Array.from({ length: 10 }, (_, k) => ({ id: k + 1, name: `Deal ${k + 1}`, amount: (k + 1) * 100 }));
    const { emu, env, crm } = await setup(() => deals, { faults: { loseAnswers: 1 } });
    expect((await hubspot.destination!.capabilities(crm, 'deals')).idempotency).toBe('none');
    const run = await env.engine.run(
      {
        name: 'deals',
        from: { connection: 'src', table: 'deals', primaryKey: 'id' },
        capture: 'diff',
        to: { connection: 'crm', object: 'deals', mode: 'insert', deletes: 'ignore' },
        mappings: { dealname: 'name', amount: 'amount' },
        delivery: { batchSize: 5, concurrency: 1 },
      } as SyncConfig,
      fast,
    );
    expect(run).toMatchObject({ status: 'partial', inserted: 5, rejected: 5 });
    expect(emu.stats().lostAnswers).toBe(1);
    const errors = await env.ledger.listRowErrors({ sync: 'deals' });
    expect(errors).toHaveLength(5);
    for (const e of errors) expect(e.reason).toContain('outcome unknown');
    // The lost batch was applied once and never sent again: ten deals, each created once.
    expect(emu.records('deals')).toHaveLength(10);
    for (const d of deals) expect(createsOf(emu, 'deals', 'dealname', d.name)).toBe(1);
  });

  it('slows to the limit HubSpot reports in its headers when it is below the configured tier', async () => {
    const rows = customers(1500);
    const { emu, env, logs } = await setup(() => rows, { limits: { perWindow: 4, windowMs: 400 } });
    const run = await env.engine.run(sync({ maxAttempts: 30 }), fast);
    expect(run).toMatchObject({ status: 'succeeded', inserted: 1500 });
    expect(emu.records('contacts')).toHaveLength(1500);
    expect(logs.join('')).toContain('HubSpot reports a limit of 4 requests per 400 ms');
  });

  it('pauses when the daily limit is spent, says so, and resumes where it stopped when it resets', async () => {
    const rows = customers(500);
    const { emu, env, logs } = await setup(() => rows, { limits: { daily: 3, dailyResetMs: 1500 } });
    const run = await env.engine.run(sync({ maxAttempts: 10 }), fast);
    expect(run).toMatchObject({ status: 'succeeded', inserted: 500, rejected: 0 });
    expect(emu.records('contacts')).toHaveLength(500);
    expect(emu.stats().rateLimited['DAILY']).toBeGreaterThan(0);
    expect(logs.join('')).toMatch(/daily API limit is spent: the sync is paused until \d{4}-\d{2}-\d{2}T/);
    // Every batch landed once: the pause did not resend what HubSpot had already applied.
    expect(emu.stats().batches.inputs).toBe(500);
  });
});

describe('several syncs into one HubSpot portal', () => {
  const WINDOW_MS = 10_000; // the professional tier: 190 requests per rolling 10 s
  const requests = (emu: HubSpotEmulator) => Object.values(emu.stats().byStatus).reduce((a, b) => a + b, 0);
  const twoSyncs = (crmOf: (name: string) => string) =>
    (['a', 'b'] as const).map(
      (name) =>
        ({
          name: `customers-${name}`,
          from: { connection: `src-${name}`, table: 'customers', primaryKey: 'id' },
          capture: 'diff',
          to: { connection: crmOf(name), object: 'contacts', mode: 'upsert', deletes: 'ignore', matchKey: { email: 'email' } },
          mappings: { email: 'email', firstname: 'first' },
          // Small batches: the limit counts requests, and ten records a request keep the
          // test's own CPU (two syncs, the emulator) far below what the limit allows.
          delivery: { batchSize: 10 },
        }) as SyncConfig,
    );

  async function portal(connections: Record<string, { connector: typeof hubspot | ReturnType<typeof memorySource>; config?: Record<string, unknown> }>) {
    const { engine, close } = createTestEngine({ connections, ledger: openSqliteLedger, stateStore: (dir) => duckdbStateStore({ dir }) });
    cleanups.push(close);
    return engine;
  }

  it('share one request budget: at the tier limit together, and never a 429', { timeout: 90_000 }, async () => {
    const emu = await start({ limits: { perWindow: 190, windowMs: 10_000 } });
    cleanups.push(() => emu.stop());
    // 2 × 2,500 upserts are 500 requests: more than two windows' worth, so both syncs have
    // work waiting for the whole of the first two windows.
    const engine = await portal({
      'src-a': { connector: memorySource(() => customers(2_500, 1), 500) },
      'src-b': { connector: memorySource(() => customers(2_500, 100_001), 500) },
      crm: { connector: hubspot, config: { ...emu.config, tier: 'professional' } },
    });
    const runs = twoSyncs(() => 'crm').map((s) => engine.run(s, fast));
    // Reading and diffing come first; the windows count from HubSpot's first answer.
    await expect.poll(() => requests(emu), { timeout: 30_000, interval: 20 }).toBeGreaterThan(0);
    const started = Date.now();
    // Just before the third window opens: how many requests did HubSpot answer in two windows?
    await new Promise((r) => setTimeout(r, 2 * WINDOW_MS - 150 - (Date.now() - started)));
    const inTwoWindows = requests(emu);
    const summaries = await Promise.all(runs);

    expect(summaries.map((s) => [s.status, s.inserted])).toEqual([
      ['succeeded', 2_500],
      ['succeeded', 2_500],
    ]);
    expect(emu.records('contacts')).toHaveLength(5_000);
    expect(emu.stats().byStatus['429'] ?? 0).toBe(0);
    // The ceiling is 190 requests per window; together the syncs used at least 95 % of it.
    expect(inTwoWindows).toBeGreaterThanOrEqual(Math.ceil(0.95 * 2 * 190));
    expect(inTwoWindows).toBeLessThanOrEqual(2 * 190);
  });

  it('as two connections to the same portal, each with a budget of its own, they trip HubSpot’s limit', async () => {
    // The same two syncs, but through two connections: each keeps the tier limit alone.
    const emu = await start({ limits: { perWindow: 190, windowMs: 10_000 } });
    cleanups.push(() => emu.stop());
    const engine = await portal({
      'src-a': { connector: memorySource(() => customers(2_500, 1), 500) },
      'src-b': { connector: memorySource(() => customers(2_500, 100_001), 500) },
      'crm-a': { connector: hubspot, config: { ...emu.config, tier: 'professional' } },
      'crm-b': { connector: hubspot, config: { ...emu.config, tier: 'professional' } },
    });
    const runs = twoSyncs((name) => `crm-${name}`).map((s) => engine.run(s, fast));
    await expect.poll(() => emu.stats().byStatus['429'] ?? 0, { timeout: 30_000 }).toBeGreaterThan(0);
    engine.stop({ graceMs: 0 });
    await Promise.all(runs);
  });
});
