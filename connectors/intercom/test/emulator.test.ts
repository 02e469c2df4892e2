import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntercomClient, IntercomError } from 'intercom-client';
import { start, type IntercomEmulator, type IntercomEmulatorOptions } from '@outflow/connector-intercom/emulator';
import { afterEach, describe, expect, it } from 'vitest';

// The emulator driven by intercom-client itself, without the connector: what it answers.
const running: IntercomEmulator[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const e of running.splice(0)) await e.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function emulator(options: IntercomEmulatorOptions = {}): Promise<{ emu: IntercomEmulator; client: IntercomClient }> {
  const emu = await start(options);
  running.push(emu);
  return { emu, client: new IntercomClient({ token: emu.config.token, baseUrl: emu.url, maxRetries: 0 }) };
}

/** The IntercomError of a refused call: its status, its error.list and its headers. */
async function refused(call: Promise<unknown>): Promise<{ status?: number; code: string; message: string; headers?: Headers }> {
  const err = await call.then(() => expect.fail('the call succeeded, a refusal was expected'), (e: unknown) => e);
  expect(err).toBeInstanceOf(IntercomError);
  const { statusCode, body, rawResponse } = err as IntercomError;
  expect(body).toMatchObject({ type: 'error.list', request_id: expect.any(String), errors: [{ code: expect.any(String), message: expect.any(String) }] });
  const first = (body as { errors: { code: string; message: string }[] }).errors[0]!;
  return { status: statusCode, ...first, headers: rawResponse?.headers };
}

const byEmail = (email: string) => ({ query: { field: 'email', operator: '=' as const, value: email } });

describe('intercom emulator, through intercom-client', () => {
  it('refuses a wrong token with 401 unauthorized and no rate-limit headers, writing nothing', async () => {
    const { emu } = await emulator();
    const wrong = new IntercomClient({ token: 'not-the-token', baseUrl: emu.url, maxRetries: 0 });
    const e = await refused(wrong.contacts.create({ email: 'a@example.com' }));
    expect(e).toMatchObject({ status: 401, code: 'unauthorized', message: 'Access Token Invalid' });
    expect(e.headers?.get('x-ratelimit-limit')).toBeNull();
    expect(emu.records.writes()).toEqual([]);
  });

  it('creates, reads, updates, archives, unarchives and deletes a contact, each write in its log', async () => {
    const { emu, client } = await emulator();
    const created = await client.contacts.create({ external_id: 'u1', email: 'ada@example.com', name: 'Ada', custom_attributes: { plan: 'pro', team_mates: 3 } });
    expect(created).toMatchObject({ type: 'contact', role: 'user', external_id: 'u1', email: 'ada@example.com', custom_attributes: { plan: 'pro', team_mates: 3 } });
    expect(created.id).toMatch(/^[0-9a-f]{24}$/);
    expect(await client.contacts.find({ contact_id: created.id })).toMatchObject({ name: 'Ada' });
    const updated = await client.contacts.update({ contact_id: created.id, name: 'Ada L.', custom_attributes: { plan: null } });
    expect(updated).toMatchObject({ name: 'Ada L.', email: 'ada@example.com', custom_attributes: { plan: null, team_mates: 3 } });

    expect(await client.contacts.archive({ contact_id: created.id })).toEqual({ type: 'contact', id: created.id, external_id: 'u1', archived: true });
    expect(await refused(client.contacts.find({ contact_id: created.id }))).toMatchObject({ status: 404, code: 'not_found' });
    expect(await refused(client.contacts.update({ contact_id: created.id, name: 'x' }))).toMatchObject({ status: 404, code: 'not_found' });
    expect((await client.contacts.search(byEmail('ada@example.com'))).data).toEqual([]);
    // The archived contact still holds its external_id and email: a new one is refused, naming it.
    expect(await refused(client.contacts.create({ external_id: 'u1' }))).toMatchObject({
      status: 409,
      code: 'conflict',
      message: `An archived contact matching those details already exists with id=${created.id}`,
    });
    expect(await client.contacts.unarchive({ contact_id: created.id })).toMatchObject({ archived: false });
    expect(await client.contacts.delete({ contact_id: created.id })).toEqual({ type: 'contact', id: created.id, external_id: 'u1', deleted: true });
    expect(await refused(client.contacts.delete({ contact_id: created.id }))).toMatchObject({ status: 404, code: 'not_found', message: 'Contact Not Found' });
    expect(emu.records.writes().map((w) => w.op)).toEqual(['create', 'update', 'archive', 'unarchive', 'delete']);
    expect(emu.records.contacts()).toEqual([]);
  });

  it('refuses a second user with the same email or external_id with 409 naming the existing id; leads may share an email', async () => {
    const { emu, client } = await emulator();
    const first = await client.contacts.create({ external_id: 'u1', email: 'Ada@example.com' });
    const conflict = { status: 409, code: 'conflict', message: `A contact matching those details already exists with id=${first.id}` };
    expect(await refused(client.contacts.create({ email: 'ada@EXAMPLE.com' }))).toMatchObject(conflict);
    expect(await refused(client.contacts.create({ external_id: 'u1', email: 'other@example.com' }))).toMatchObject(conflict);
    const second = await client.contacts.create({ email: 'bob@example.com' });
    expect(await refused(client.contacts.update({ contact_id: second.id, external_id: 'u1' }))).toMatchObject(conflict);
    await client.contacts.create({ role: 'lead', email: 'ada@example.com' });
    await client.contacts.create({ role: 'lead', email: 'ada@example.com' });
    expect(emu.records.contacts().map((c) => c.role)).toEqual(['user', 'user', 'lead', 'lead']);
  });

  it('refuses invalid input in error.list form and applies nothing', async () => {
    const { emu, client } = await emulator();
    const cases: [Promise<unknown>, number, string, string][] = [
      [client.contacts.create({ email: 'a@example.com', custom_attributes: { favourite_colour: 'blue' } }), 400, 'parameter_not_found', "Custom attribute 'favourite_colour' does not exist"],
      [client.contacts.create({ email: 'a@example.com', custom_attributes: { plan: 'platinum' } }), 400, 'parameter_invalid', "'platinum' is not an allowed value of the list attribute 'plan'"],
      [client.contacts.create({ email: 'a@example.com', custom_attributes: { team_mates: 'three' } }), 400, 'parameter_invalid', "Custom attribute 'team_mates' must be of type integer"],
      [client.contacts.create({ role: 'user', name: 'Nobody' }), 400, 'parameter_not_found', 'A user requires an email or an external_id'],
      [client.contacts.create({ role: 'visitor', email: 'a@example.com' }), 400, 'parameter_invalid', 'role must be one of user, lead'],
      [client.contacts.create({ email: 'a@example.com', signed_up_at: '2024-01-01' as unknown as number }), 400, 'type_mismatch', 'signed_up_at must be of type date'],
    ];
    for (const [call, status, code, message] of cases) expect(await refused(call)).toEqual({ status, code, message, headers: expect.anything() });
    const versioned = new IntercomClient({ token: emu.config.token, baseUrl: emu.url, maxRetries: 0, headers: { 'Intercom-Version': '9.9' } });
    expect(await refused(versioned.contacts.create({ email: 'a@example.com' }))).toMatchObject({ status: 400, code: 'intercom_version_invalid' });
    expect(emu.records.writes()).toEqual([]);
  });

  it('searches with AND / OR, typed operators and cursor pages, and refuses what Intercom refuses', async () => {
    const { client } = await emulator();
    for (let i = 0; i < 7; i++) await client.contacts.create({ external_id: `u${i}`, email: `p${i}@${i % 2 ? 'odd' : 'even'}.example.com`, custom_attributes: { team_mates: i } });
    const found = await client.contacts.search({
      query: {
        operator: 'AND',
        value: [
          { operator: 'OR', value: [{ field: 'email', operator: '$', value: 'odd.example.com' }] },
          { operator: 'OR', value: [{ field: 'custom_attributes.team_mates', operator: '>', value: 4 }, { field: 'external_id', operator: 'IN', value: ['u1'] }] },
        ],
      },
    });
    expect(found.data.map((c) => c.external_id)).toEqual(['u1', 'u5']);
    const pages = await client.contacts.search({ query: { field: 'email', operator: '~', value: 'example' }, pagination: { per_page: 3 } });
    expect(pages.response).toMatchObject({ type: 'list', total_count: 7, pages: { type: 'pages', page: 1, per_page: 3, total_pages: 3, next: { page: 2, starting_after: expect.any(String) } } });
    const all: string[] = [];
    for await (const c of pages) all.push(c.external_id!);
    expect(all).toEqual(['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6']);

    const leaf = { field: 'external_id', operator: '=' as const, value: 'u1' };
    const refusals = [
      client.contacts.search({ query: leaf, pagination: { per_page: 151 } }),
      client.contacts.search({ query: { operator: 'AND', value: [{ operator: 'OR', value: [{ operator: 'AND', value: [leaf] }] }] } }),
      client.contacts.search({ query: { operator: 'OR', value: Array.from({ length: 16 }, () => leaf) } }),
      client.contacts.search({ query: { field: 'email', operator: '>', value: 'a' } }),
      client.contacts.search({ query: { field: 'shoe_size', operator: '=', value: '9' } }),
    ];
    for (const call of refusals) expect(await refused(call)).toMatchObject({ status: 400, code: 'parameter_invalid' });
  });

  it('lists the contact data attributes, standard and custom', async () => {
    const { client } = await emulator();
    const list = await client.dataAttributes.list({ model: 'contact' });
    expect(list.data?.find((a) => a.name === 'plan')).toMatchObject({ full_name: 'custom_attributes.plan', data_type: 'string', custom: true, options: ['free', 'starter', 'pro', 'enterprise'] });
    expect(list.data?.find((a) => a.name === 'created_at')).toMatchObject({ full_name: 'created_at', custom: false, api_writable: false });
  });

  it('counts requests in fixed windows with X-RateLimit-* headers and answers 429 rate_limit_exceeded once spent', async () => {
    const windowMs = 3_600_000;
    // Start away from a window's edge, so the burst falls in one window.
    while (windowMs - (Date.now() % windowMs) < 2_000) await new Promise((r) => setTimeout(r, 100));
    const { client } = await emulator({ limits: { requests: 3, perMs: windowMs } });
    const reset = String(Math.ceil((Math.floor(Date.now() / windowMs) + 1) * (windowMs / 1000)));
    for (const remaining of ['2', '1', '0']) {
      const { rawResponse } = await client.dataAttributes.list({}).withRawResponse();
      expect([rawResponse.headers.get('x-ratelimit-limit'), rawResponse.headers.get('x-ratelimit-remaining'), rawResponse.headers.get('x-ratelimit-reset')]).toEqual(['3', remaining, reset]);
    }
    const e = await refused(client.contacts.create({ email: 'a@example.com' }));
    expect(e).toMatchObject({ status: 429, code: 'rate_limit_exceeded', message: 'Exceeded rate limit of 3 in 10_seconds' });
    expect([e.headers?.get('x-ratelimit-remaining'), e.headers?.get('x-ratelimit-reset')]).toEqual(['0', reset]);
  });

  it('applies a write whose answer is then lost, and keeps its contacts and write log across a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'intercom-emu-'));
    dirs.push(dataDir);
    const { emu, client } = await emulator({ dataDir, faults: { loseAnswers: 1 } });
    await expect(client.contacts.create({ external_id: 'u1', email: 'a@example.com' })).rejects.toThrow();
    expect(emu.stats().lostAnswers).toBe(1);
    await emu.stop();
    const again = await emulator({ dataDir, token: emu.config.token });
    expect(again.emu.records.contacts().map((c) => c['external_id'])).toEqual(['u1']);
    expect(again.emu.records.writes().map((w) => w.op)).toEqual(['create']);
    expect(await refused(again.client.contacts.create({ external_id: 'u1' }))).toMatchObject({ status: 409 });
  });
});
