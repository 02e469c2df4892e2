import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@hubspot/api-client';
import { start, type HubSpotEmulator, type HubSpotEmulatorOptions } from '@outflow/connector-hubspot/emulator';
import { afterEach, describe, expect, it } from 'vitest';

// These tests drive the emulator with the real SDK, exactly as the connector does, but
// without the connector: they pin down what the emulator answers.

const running: HubSpotEmulator[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const e of running.splice(0)) await e.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function emulator(options: HubSpotEmulatorOptions = {}): Promise<{ emu: HubSpotEmulator; client: Client }> {
  const emu = await start(options);
  running.push(emu);
  return { emu, client: new Client({ accessToken: emu.config.accessToken, basePath: emu.url, numberOfApiCallRetries: 0 }) };
}

/** The ApiException the SDK throws for a non-2xx answer. */
async function refusal(promise: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown>; headers: Record<string, string> }> {
  try {
    await promise;
  } catch (err) {
    return err as { code: number; body: Record<string, unknown>; headers: Record<string, string> };
  }
  throw new Error('the call succeeded, but a refusal was expected');
}

const upsert = (email: string, properties: Record<string, string> = {}, trace?: string) => ({
  idProperty: 'email',
  id: email,
  properties,
  ...(trace === undefined ? {} : { objectWriteTraceId: trace }),
});

describe('hubspot emulator, through @hubspot/api-client', () => {
  it('refuses a missing or wrong bearer token with 401 in HubSpot error shape', async () => {
    const { emu } = await emulator();
    const wrong = new Client({ accessToken: 'pat-na1-wrong', basePath: emu.url, numberOfApiCallRetries: 0 });
    const e = await refusal(wrong.crm.objects.basicApi.getPage('contacts'));
    expect(e.code).toBe(401);
    expect(e.body).toMatchObject({ status: 'error', category: 'INVALID_AUTHENTICATION', message: expect.any(String), correlationId: expect.any(String) });
    const anonymous = await fetch(`${emu.url}/crm/v3/objects/contacts`);
    expect(anonymous.status).toBe(401);
    expect(emu.records('contacts')).toEqual([]);
  });

  it('accepts 100 inputs in a batch and refuses 101 with 400 VALIDATION_ERROR, writing nothing', async () => {
    const { emu, client } = await emulator();
    const inputs = (n: number, from: number) => Array.from({ length: n }, (_, i) => upsert(`p${from + i}@example.com`));
    const ok = await client.crm.objects.batchApi.upsertWithHttpInfo('contacts', { inputs: inputs(100, 0) });
    expect(ok.httpStatusCode).toBe(200);
    expect(ok.data.results).toHaveLength(100);
    const e = await refusal(client.crm.objects.batchApi.upsert('contacts', { inputs: inputs(101, 1000) }));
    expect(e.code).toBe(400);
    expect(e.body).toMatchObject({ status: 'error', category: 'VALIDATION_ERROR' });
    expect(emu.records('contacts')).toHaveLength(100);
  });

  it('refuses a batch with an invalid value as a whole: 400 VALIDATION_ERROR, a detail per value naming its property, nothing applied', async () => {
    const { emu, client } = await emulator();
    await client.crm.objects.batchApi.create('contacts', { inputs: [{ properties: { email: 'kept@example.com', firstname: 'Kept' }, associations: [] }] });
    const kept = emu.find('contacts', 'email', 'kept@example.com')!;
    const before = emu.stats().writes.length;
    const details = [
      { message: 'Email address not-an-email is invalid', code: 'INVALID_EMAIL', context: { propertyName: ['email'] } },
      { message: 'Property "favourite_colour" does not exist', code: 'PROPERTY_DOESNT_EXIST', context: { propertyName: ['favourite_colour'] } },
      { message: 'champion was not one of the allowed options: [subscriber, lead, marketingqualifiedlead, salesqualifiedlead, opportunity, customer, evangelist, other]', code: 'INVALID_OPTION', context: { propertyName: ['lifecyclestage'] } },
      { message: '"a lot" is not a valid number', code: 'INVALID_INTEGER', context: { propertyName: ['lifetime_value'] } },
    ];
    const expected = {
      status: 'error',
      category: 'VALIDATION_ERROR',
      correlationId: expect.any(String),
      message: `Property values were not valid: ${JSON.stringify(details.map((d) => ({ isValid: false, message: d.message, error: d.code, name: d.context.propertyName[0] })))}`,
      errors: details,
    };
    const created = await refusal(
      client.crm.objects.batchApi.create('contacts', {
        inputs: [
          { properties: { email: 'good@example.com' }, associations: [] },
          { properties: { email: 'not-an-email' }, associations: [] },
          { properties: { email: 'ghost@example.com', favourite_colour: 'blue' }, associations: [] },
          { properties: { email: 'stage@example.com', lifecyclestage: 'champion', lifetime_value: 'a lot' }, associations: [] },
        ],
      }),
    );
    expect(created.code).toBe(400);
    expect(created.body).toEqual(expected);
    const updated = await refusal(
      client.crm.objects.batchApi.update('contacts', {
        inputs: [
          { id: kept.id, properties: { firstname: 'Changed' } },
          { id: kept.id.concat('0'), properties: { email: 'not-an-email', favourite_colour: 'blue', lifecyclestage: 'champion', lifetime_value: 'a lot' } },
        ],
      }),
    );
    expect(updated.code).toBe(400);
    expect(updated.body).toEqual(expected);
    const upserted = await refusal(
      client.crm.objects.batchApi.upsert('contacts', {
        inputs: [
          upsert('good@example.com', { firstname: 'Good' }),
          upsert('not-an-email'),
          upsert('ghost@example.com', { favourite_colour: 'blue' }),
          upsert('stage@example.com', { lifecyclestage: 'champion', lifetime_value: 'a lot' }),
        ],
      }),
    );
    expect(upserted.code).toBe(400);
    expect(upserted.body).toEqual(expected);
    expect(emu.records('contacts').map((r) => [r.properties['email'], r.properties['firstname']])).toEqual([['kept@example.com', 'Kept']]);
    expect(emu.stats().writes).toHaveLength(before);
  });

  it('refuses the same id twice in a batch update or upsert as a whole: 400 VALIDATION_ERROR with context.ids', async () => {
    const { emu, client } = await emulator();
    const [a] = (await client.crm.objects.batchApi.create('contacts', { inputs: [{ properties: { email: 'a@example.com' }, associations: [] }] })).results;
    const twice = await refusal(
      client.crm.objects.batchApi.update('contacts', {
        inputs: [
          { id: a!.id, properties: { firstname: 'One' } },
          { id: a!.id, properties: { firstname: 'Two' } },
        ],
      }),
    );
    expect(twice.code).toBe(400);
    expect(twice.body).toEqual({
      status: 'error',
      category: 'VALIDATION_ERROR',
      correlationId: expect.any(String),
      message: `Duplicate IDs found in batch input: [${a!.id}]. IDs must be unique`,
      context: { ids: [a!.id] },
    });
    const byEmail = await refusal(client.crm.objects.batchApi.upsert('contacts', { inputs: [upsert('b@example.com'), upsert('B@example.com')] }));
    expect(byEmail.code).toBe(400);
    expect(byEmail.body).toMatchObject({ category: 'VALIDATION_ERROR', context: { ids: ['B@example.com'] } });
    expect(emu.records('contacts').map((r) => [r.properties['email'], r.properties['firstname']])).toEqual([['a@example.com', undefined]]);
  });

  it('refuses a batch create as a whole with 409 CONFLICT when a unique value exists, naming only the first record; nothing is created', async () => {
    const { emu, client } = await emulator();
    const seeded = await client.crm.objects.batchApi.create('contacts', {
      inputs: ['one@example.com', 'two@example.com'].map((email) => ({ properties: { email }, associations: [] })),
    });
    const [one, two] = seeded.results.map((r) => r.id);
    const creates = () => emu.stats().writes.filter((w) => w.op === 'create').length;
    expect(creates()).toBe(2);
    const conflict = await refusal(
      client.crm.objects.batchApi.create('contacts', {
        inputs: ['new@example.com', 'TWO@example.com', 'one@example.com'].map((email) => ({ properties: { email }, associations: [] })),
      }),
    );
    expect(conflict.code).toBe(409);
    // HubSpot's whole body: no context, no per-input errors, only the first conflicting record named.
    expect(conflict.body).toEqual({ status: 'error', category: 'CONFLICT', correlationId: expect.any(String), message: `Contact already exists. Existing ID: ${two}` });

    const twiceInBatch = await refusal(
      client.crm.objects.batchApi.create('contacts', {
        inputs: ['same@example.com', 'other@example.com', 'Same@example.com'].map((email) => ({ properties: { email }, associations: [] })),
      }),
    );
    expect(twiceInBatch.code).toBe(409);
    expect(twiceInBatch.body).toEqual({ status: 'error', category: 'CONFLICT', correlationId: expect.any(String), message: 'Contact already exists' });
    expect(emu.records('contacts').map((r) => r.id)).toEqual([one, two]);
    expect(creates()).toBe(2);
  });

  it('answers a 207 whose every error carries the fields HubSpot’s StandardError requires', async () => {
    const { emu, client } = await emulator();
    await client.crm.objects.batchApi.create('contacts', {
      inputs: ['x@example.com', 'y@example.com'].map((email) => ({ properties: { email }, associations: [] })),
    });
    const y = emu.find('contacts', 'email', 'y@example.com')!;
    const updated = await client.crm.objects.batchApi.updateWithHttpInfo('contacts', {
      inputs: [
        { id: '999999', properties: { firstname: 'Nobody' }, objectWriteTraceId: 'gone' },
        { id: y.id, properties: { email: 'x@example.com' }, objectWriteTraceId: 'clash' },
      ],
    });
    expect(updated.httpStatusCode).toBe(207);
    const errors = (updated.data as { errors?: Record<string, unknown>[] }).errors!;
    expect(errors).toEqual([
      {
        status: 'error',
        category: 'OBJECT_NOT_FOUND',
        message: 'Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.',
        context: { ids: ['999999'], objectWriteTraceId: ['gone'] },
        errors: [],
        links: {},
      },
      {
        status: 'error',
        category: 'CONFLICT',
        message: `A contact with email "x@example.com" already exists. Existing ID: ${emu.find('contacts', 'email', 'x@example.com')!.id}`,
        context: { ids: [y.id], objectWriteTraceId: ['clash'] },
        errors: [{ message: expect.stringContaining('already exists'), code: 'CONFLICT' }],
        links: {},
      },
    ]);
    const read = await client.crm.objects.batchApi.readWithHttpInfo('contacts', { inputs: [{ id: '424242' }], properties: [], propertiesWithHistory: [] });
    expect(read.httpStatusCode).toBe(207);
    expect((read.data as { errors?: unknown[] }).errors![0]).toMatchObject({ status: 'error', category: 'OBJECT_NOT_FOUND', context: { ids: ['424242'] }, errors: [], links: {} });
  });

  it('upserts by a unique property: the same email (any case) is the same record', async () => {
    const { emu, client } = await emulator();
    const first = await client.crm.objects.batchApi.upsert('contacts', { inputs: [upsert('Ada@Example.com', { firstname: 'Ada' })] });
    const second = await client.crm.objects.batchApi.upsert('contacts', { inputs: [upsert('ada@example.com', { lastname: 'Lovelace' })] });
    const [a, b] = [first.results[0]!, second.results[0]!] as { id: string; _new: boolean }[];
    expect(a._new).toBe(true);
    expect(b._new).toBe(false);
    expect(b.id).toBe(a.id);
    expect(emu.records('contacts')).toHaveLength(1);
    expect(emu.get('contacts', a.id)!.properties).toMatchObject({ firstname: 'Ada', lastname: 'Lovelace' });

    const dup = await refusal(client.crm.objects.batchApi.create('contacts', { inputs: [{ properties: { email: 'ada@example.com' }, associations: [] }] }));
    expect(dup.code).toBe(409);
    expect(dup.body).toMatchObject({ category: 'CONFLICT', message: `Contact already exists. Existing ID: ${a.id}` });

    const byDomain = await refusal(
      client.crm.objects.batchApi.upsert('companies', { inputs: [{ idProperty: 'domain', id: 'example.com', properties: { name: 'Example' } }] }),
    );
    expect(byDomain.code).toBe(400);
    expect(byDomain.body).toMatchObject({ category: 'VALIDATION_ERROR', message: 'Unable to perform update/upsert by non-unique 0-2 property' });
    expect(emu.records('companies')).toEqual([]);
  });

  it('updates by id or by unique value, archives, and reads back by idProperty', async () => {
    const { emu, client } = await emulator();
    const created = await client.crm.objects.batchApi.create('contacts', {
      inputs: [0, 1, 2].map((i) => ({ properties: { email: `u${i}@example.com`, firstname: `U${i}` }, associations: [] })),
    });
    const ids = created.results.map((r) => r.id);
    const updated = await client.crm.objects.batchApi.updateWithHttpInfo('contacts', {
      inputs: [
        { id: ids[0]!, properties: { firstname: 'Zero' } },
        { id: 'u1@example.com', idProperty: 'email', properties: { firstname: 'One' } },
        { id: '999999', properties: { firstname: 'Nobody' } },
      ],
    });
    expect(updated.httpStatusCode).toBe(207);
    expect((updated.data as { errors?: { category: string; context: Record<string, string[]> }[] }).errors).toMatchObject([
      { category: 'OBJECT_NOT_FOUND', context: { ids: ['999999'] } },
    ]);
    expect(emu.get('contacts', ids[0]!)!.properties['firstname']).toBe('Zero');
    expect(emu.get('contacts', ids[1]!)!.properties['firstname']).toBe('One');

    const archived = await client.crm.objects.batchApi.archiveWithHttpInfo('contacts', { inputs: [{ id: ids[2]! }] });
    expect(archived.httpStatusCode).toBe(204);
    const read = await client.crm.objects.batchApi.readWithHttpInfo('contacts', {
      idProperty: 'email',
      inputs: [{ id: 'u0@example.com' }, { id: 'u2@example.com' }],
      properties: ['email', 'firstname'],
      propertiesWithHistory: [],
    });
    expect(read.httpStatusCode).toBe(207);
    expect(read.data.results.map((r) => r.properties)).toEqual([{ email: 'u0@example.com', firstname: 'Zero' }]);
  });

  it('lists records in pages with an after cursor, each record once', async () => {
    const { client } = await emulator();
    for (let b = 0; b < 3; b++) {
      await client.crm.objects.batchApi.upsert('contacts', { inputs: Array.from({ length: 9 }, (_, i) => upsert(`page${b * 9 + i}@example.com`)) });
    }
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await client.crm.objects.basicApi.getPage('contacts', 10, after, ['email']);
      seen.push(...page.results.map((r) => r.properties['email']!));
      after = page.paging?.next?.after;
      pages++;
    } while (after !== undefined);
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(27);
    expect(seen).toHaveLength(27);
  });

  it('searches with filters and refuses a fifth search within a second with 429', async () => {
    const { client } = await emulator();
    await client.crm.objects.batchApi.upsert('contacts', {
      inputs: [upsert('s1@example.com', { lifecyclestage: 'lead' }), upsert('s2@example.com', { lifecyclestage: 'customer' })],
    });
    const search = () =>
      client.crm.objects.searchApi.doSearch('contacts', {
        filterGroups: [{ filters: [{ propertyName: 'lifecyclestage', operator: 'EQ' as never, value: 'customer' }] }],
        properties: ['email'],
        limit: 10,
        after: '0',
        sorts: [],
      });
    const found = await search();
    expect(found.total).toBe(1);
    expect(found.results[0]!.properties['email']).toBe('s2@example.com');
    await Promise.all([search(), search(), search()]);
    const e = await refusal(search());
    expect(e.code).toBe(429);
    expect(e.body).toMatchObject({ errorType: 'RATE_LIMIT', policyName: 'SECONDLY' });
  });

  it('keeps a rolling ten-second limit: 429 TEN_SECONDLY_ROLLING with rate-limit headers on every answer', async () => {
    const { client } = await emulator({ limits: { perWindow: 3, windowMs: 60_000, daily: 1000 } });
    const first = await client.crm.objects.basicApi.getPageWithHttpInfo('contacts');
    expect(first.headers).toMatchObject({
      'x-hubspot-ratelimit-max': '3',
      'x-hubspot-ratelimit-remaining': '2',
      'x-hubspot-ratelimit-interval-milliseconds': '60000',
      'x-hubspot-ratelimit-daily': '1000',
      'x-hubspot-ratelimit-daily-remaining': '999',
    });
    expect(first.headers['x-hubspot-ratelimit-secondly']).toBeDefined();
    await client.crm.objects.basicApi.getPage('contacts');
    await client.crm.objects.basicApi.getPage('contacts');
    const e = await refusal(client.crm.objects.basicApi.getPage('contacts'));
    expect(e.code).toBe(429);
    expect(e.body).toMatchObject({ status: 'error', errorType: 'RATE_LIMIT', policyName: 'TEN_SECONDLY_ROLLING', correlationId: expect.any(String) });
    expect(e.headers).toMatchObject({ 'x-hubspot-ratelimit-remaining': '0', 'x-hubspot-ratelimit-max': '3' });
    expect(Number(e.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('keeps a daily limit: 429 DAILY once it is spent, until it resets', async () => {
    const { emu, client } = await emulator({ limits: { daily: 2, dailyResetMs: 400 } });
    await client.crm.objects.basicApi.getPage('contacts');
    const second = await client.crm.objects.basicApi.getPageWithHttpInfo('contacts');
    expect(second.headers['x-hubspot-ratelimit-daily-remaining']).toBe('0');
    const e = await refusal(client.crm.objects.batchApi.upsert('contacts', { inputs: [upsert('late@example.com')] }));
    expect(e.code).toBe(429);
    expect(e.body).toMatchObject({ policyName: 'DAILY', message: 'You have reached your daily limit.' });
    expect(emu.records('contacts')).toEqual([]);
    await new Promise((r) => setTimeout(r, 450));
    await client.crm.objects.batchApi.upsert('contacts', { inputs: [upsert('late@example.com')] });
    expect(emu.records('contacts')).toHaveLength(1);
    expect(emu.stats().rateLimited['DAILY']).toBe(1);
  });

  it('lists, gets and creates properties with types, options, uniqueness and read-only flags', async () => {
    const { client } = await emulator();
    const all = await client.crm.properties.coreApi.getAll('contacts');
    const byName = new Map(all.results.map((p) => [p.name, p]));
    expect(byName.get('email')).toMatchObject({ type: 'string', hasUniqueValue: true });
    expect(byName.get('hs_object_id')!.modificationMetadata!.readOnlyValue).toBe(true);
    expect(byName.get('createdate')).toMatchObject({ type: 'datetime' });
    expect(byName.get('lifecyclestage')!.options.map((o) => o.value)).toContain('customer');

    const made = await client.crm.properties.coreApi.create('contacts', {
      name: 'customer_code',
      label: 'Customer code',
      type: 'string' as never,
      fieldType: 'text' as never,
      groupName: 'contactinformation',
      hasUniqueValue: true,
    });
    expect(made).toMatchObject({ name: 'customer_code', hasUniqueValue: true });
    const again = await refusal(
      client.crm.properties.coreApi.create('contacts', { name: 'customer_code', label: 'Again', type: 'string' as never, fieldType: 'text' as never, groupName: 'g' }),
    );
    expect(again.code).toBe(409);
    expect((await refusal(client.crm.properties.coreApi.getByName('contacts', 'nope'))).code).toBe(404);

    const byCode = await client.crm.objects.batchApi.upsert('contacts', { inputs: [{ idProperty: 'customer_code', id: 'C-1', properties: {} }] });
    expect(byCode.results[0]!.properties['customer_code']).toBe('C-1');
  });

  it('serves custom objects by name, p_ name and objectTypeId', async () => {
    const { emu, client } = await emulator({
      customObjects: [{ name: 'pets', properties: [{ name: 'pet_id', type: 'string', hasUniqueValue: true }, { name: 'species', type: 'enumeration', options: ['cat', 'dog'] }] }],
    });
    const schemas = await client.crm.schemas.coreApi.getAll();
    expect(schemas.results.map((s) => [s.name, s.objectTypeId, s.fullyQualifiedName])).toEqual([['pets', '2-1', 'p_pets']]);
    const fish = await refusal(
      client.crm.objects.batchApi.upsert('p_pets', {
        inputs: [{ idProperty: 'pet_id', id: 'rex', properties: { species: 'dog' } }, { idProperty: 'pet_id', id: 'nemo', properties: { species: 'fish' } }],
      }),
    );
    expect(fish.code).toBe(400);
    expect(fish.body).toMatchObject({ category: 'VALIDATION_ERROR', errors: [{ code: 'INVALID_OPTION', context: { propertyName: ['species'] } }] });
    expect(emu.records('pets')).toEqual([]);
    await client.crm.objects.batchApi.upsert('p_pets', { inputs: [{ idProperty: 'pet_id', id: 'rex', properties: { species: 'dog' } }] });
    expect(emu.records('2-1').map((r) => r.properties['pet_id'])).toEqual(['rex']);
    const again = await refusal(client.crm.objects.batchApi.create('pets', { inputs: [{ properties: { pet_id: 'rex' }, associations: [] }] }));
    expect(again.body).toMatchObject({ category: 'CONFLICT', message: `Object already exists. Existing ID: ${emu.records('pets')[0]!.id}` });
  });

  it('persists records and properties to its data folder and continues from them', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hubspot-emu-'));
    dirs.push(dataDir);
    const one = await emulator({ dataDir });
    await one.client.crm.properties.coreApi.create('contacts', { name: 'tier', label: 'Tier', type: 'enumeration' as never, fieldType: 'select' as never, groupName: 'g', options: [{ label: 'Gold', value: 'gold', hidden: false }] });
    await one.client.crm.objects.batchApi.upsert('contacts', { inputs: [upsert('keep@example.com', { tier: 'gold' }), upsert('gone@example.com')] });
    const gone = one.emu.find('contacts', 'email', 'gone@example.com')!;
    await one.client.crm.objects.batchApi.archive('contacts', { inputs: [{ id: gone.id }] });
    await one.emu.stop();

    const two = await emulator({ dataDir });
    expect(two.emu.records('contacts').map((r) => [r.properties['email'], r.properties['tier']])).toEqual([['keep@example.com', 'gold']]);
    const next = await two.client.crm.objects.batchApi.upsert('contacts', { inputs: [upsert('new@example.com')] });
    expect(Number(next.results[0]!.id)).toBeGreaterThan(Number(gone.id));
    const same = await two.client.crm.objects.batchApi.upsert('contacts', { inputs: [upsert('KEEP@example.com', { tier: 'gold' })] });
    expect((same.results[0] as { _new: boolean })._new).toBe(false);
  });

  it('answers an unknown path 404, a wrong method 405 and an oversized body 413, in HubSpot error shape', async () => {
    const { emu } = await emulator();
    const auth = { authorization: `Bearer ${emu.config.accessToken}`, 'content-type': 'application/json' };
    const unknown = await fetch(`${emu.url}/crm/v4/nothing`, { headers: auth });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ status: 'error', category: 'OBJECT_NOT_FOUND', correlationId: expect.any(String) });
    const wrong = await fetch(`${emu.url}/crm/v3/objects/contacts`, { method: 'PUT', headers: auth, body: '{}' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, POST');
    expect(await wrong.json()).toMatchObject({ status: 'error', message: expect.stringContaining('PUT') });
    const big = await fetch(`${emu.url}/crm/v3/objects/contacts/batch/upsert`, { method: 'POST', headers: auth, body: Buffer.alloc(21 * 1024 * 1024, 32) });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ status: 'error', category: 'VALIDATION_ERROR' });
    const malformed = await fetch(`${emu.url}/crm/v3/objects/contacts/batch/upsert`, { method: 'POST', headers: auth, body: '{"inputs": [' });
    expect(malformed.status).toBe(400);
  });

  it('injects the same random faults for the same seed', async () => {
    const statuses = async (seed: number) => {
      const { emu } = await emulator({ faults: { errorRate: 0.5, seed } });
      const seen: number[] = [];
      for (let i = 0; i < 16; i++) {
        seen.push((await fetch(`${emu.url}/crm/v3/objects/contacts`, { headers: { authorization: `Bearer ${emu.config.accessToken}` } })).status);
      }
      return seen;
    };
    const first = await statuses(3);
    expect(first).toContain(502);
    expect(first).toContain(200);
    expect(await statuses(3)).toEqual(first);
  });

  it('misbehaves on request: 503s, 5xx and connection resets', async () => {
    const { emu, client } = await emulator({ faults: { failRequests: 1 } });
    expect((await refusal(client.crm.objects.basicApi.getPage('contacts'))).code).toBe(503);
    await client.crm.objects.basicApi.getPage('contacts');
    emu.setFaults({ errorRate: 1 });
    expect((await refusal(client.crm.objects.basicApi.getPage('contacts'))).code).toBe(502);
    emu.setFaults({ resetRate: 1 });
    const reset = await refusal(client.crm.objects.basicApi.getPage('contacts'));
    expect(String((reset as unknown as Error).message)).toMatch(/socket hang up|ECONNRESET/);
  });

  it('applies a write and then loses its answer: a reset, a request never answered, or a 502', async () => {
    const { emu, client } = await emulator({ faults: { loseAnswers: 1 } });
    const createOne = (email: string) => client.crm.objects.batchApi.create('contacts', { inputs: [{ properties: { email }, associations: [] }] });
    const createsOf = (email: string) => emu.stats().writes.filter((w) => w.op === 'create' && w.properties?.['email'] === email).length;
    // Reads keep their answers: only a write that was applied loses it.
    await client.crm.objects.basicApi.getPage('contacts');
    const reset = await refusal(createOne('reset@example.com'));
    expect(String((reset as unknown as Error).message)).toMatch(/socket hang up|ECONNRESET/);
    expect(emu.find('contacts', 'email', 'reset@example.com')).toBeDefined();
    expect(createsOf('reset@example.com')).toBe(1);
    // A refused write applies nothing, so it is answered as usual.
    emu.setFaults({ loseAnswers: 1, lostAnswer: 'error' });
    expect((await refusal(createOne('reset@example.com'))).code).toBe(409);
    const error = await refusal(createOne('error@example.com'));
    expect(error.code).toBe(502);
    expect(error.body).toMatchObject({ category: 'INTERNAL_ERROR' });
    expect(createsOf('error@example.com')).toBe(1);

    emu.setFaults({ loseAnswers: 1, lostAnswer: 'timeout' });
    const held = createOne('held@example.com').then(
      () => 'answered',
      () => 'failed',
    );
    const waited = await Promise.race([held, new Promise((r) => setTimeout(() => r('no answer'), 500))]);
    expect(waited).toBe('no answer');
    expect(createsOf('held@example.com')).toBe(1);
    expect(emu.stats().lostAnswers).toBe(3);
    // The held request ends when the emulator stops.
    await emu.stop();
    expect(await held).toBe('failed');
  });
});
