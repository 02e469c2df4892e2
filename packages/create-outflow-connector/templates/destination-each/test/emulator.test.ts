import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, __Name__Api } from '../src/client.js';
import { start, type __Name__Emulator, type __Name__EmulatorOptions } from '../src/emulator/index.js';

// The emulator on its own, through the API client: what it answers and what it refuses.
// Once it speaks __Name__'s API, drive it with __Name__'s official SDK here instead.
const running: __Name__Emulator[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const e of running.splice(0)) await e.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function emulator(options: __Name__EmulatorOptions = {}): Promise<{ emu: __Name__Emulator; api: __Name__Api }> {
  const emu = await start(options);
  running.push(emu);
  return { emu, api: new __Name__Api({ ...emu.config, fetch }) };
}

/** The status and error body of a refused request. */
async function refused(request: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  const err = await request.then(() => expect.fail('the request succeeded, a refusal was expected'), (e: unknown) => e);
  expect(err).toBeInstanceOf(ApiError);
  const { status, body } = err as ApiError;
  return { status, ...(body as { error: { code: string; message: string } }).error };
}

const contact = (i: number) => ({ external_id: `c${i}`, email: `c${i}@example.com`, name: `Contact ${i}` });

describe('the __name__ emulator', () => {
  it('creates, reads, updates and deletes a record, logging each write', async () => {
    const { emu, api } = await emulator();
    const created = await api.create('contacts', contact(1));
    expect(created).toEqual({ id: expect.any(String), properties: contact(1) });
    expect(await api.get('contacts', created.id)).toEqual(created);
    // null clears a property; the others are kept.
    const updated = await api.update('contacts', created.id, { name: null, email: 'new@example.com' });
    expect(updated.properties).toEqual({ external_id: 'c1', email: 'new@example.com' });
    await api.delete('contacts', created.id);
    expect(await refused(api.get('contacts', created.id))).toMatchObject({ status: 404, code: 'not_found' });
    expect(emu.records.writes().map((w) => w.op)).toEqual(['create', 'update', 'delete']);
  });

  it('refuses a second record holding a unique value with 409 conflict, and frees the value when the holder is deleted', async () => {
    const { emu, api } = await emulator();
    const first = await api.create('contacts', contact(1));
    expect(await refused(api.create('contacts', { ...contact(2), email: 'c1@example.com' }))).toMatchObject({ status: 409, code: 'conflict', message: expect.stringContaining(first.id) });
    const second = await api.create('contacts', contact(2));
    expect(await refused(api.update('contacts', second.id, { external_id: 'c1' }))).toMatchObject({ status: 409, code: 'conflict' });
    await api.delete('contacts', first.id);
    await api.update('contacts', second.id, { external_id: 'c1' });
    expect(emu.records.list('contacts').map((r) => r.properties['external_id'])).toEqual(['c1']);
  });

  it('refuses an unknown property, a value of another type, an invalid email, a missing record and an unknown object', async () => {
    const { emu, api } = await emulator();
    expect(await refused(api.create('contacts', { ...contact(1), plan: 'pro' }))).toMatchObject({ status: 400, code: 'unknown_property' });
    expect(await refused(api.create('contacts', { ...contact(1), name: 42 }))).toMatchObject({ status: 400, code: 'invalid_property' });
    expect(await refused(api.create('contacts', { ...contact(1), email: 'not an email' }))).toMatchObject({ status: 400, code: 'invalid_property' });
    expect(await refused(api.update('contacts', 'rec_404', { name: 'x' }))).toMatchObject({ status: 404, code: 'not_found' });
    expect(await refused(api.delete('contacts', 'rec_404'))).toMatchObject({ status: 404, code: 'not_found' });
    expect(await refused(api.create('deals', {}))).toMatchObject({ status: 404, code: 'object_not_found' });
    expect(emu.records.writes()).toEqual([]);
  });

  it('searches by equal values, a page at a time, and refuses a cursor it did not give', async () => {
    const { api } = await emulator();
    for (let i = 0; i < 5; i++) await api.create('contacts', { ...contact(i), name: i % 2 === 0 ? 'even' : 'odd' });
    expect((await api.search('contacts', { email: 'c3@example.com' }, 10)).results.map((r) => r.properties['external_id'])).toEqual(['c3']);
    const first = await api.search('contacts', { name: 'even' }, 2);
    expect(first.results.map((r) => r.properties['external_id'])).toEqual(['c0', 'c2']);
    const second = await api.search('contacts', { name: 'even' }, 2, first.paging!.next.after);
    expect(second.results.map((r) => r.properties['external_id'])).toEqual(['c4']);
    expect(second.paging).toBeUndefined();
    expect(await refused(api.search('contacts', { name: 'even' }, 2, 'not-a-cursor'))).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(await refused(api.search('contacts', {}, 1000))).toMatchObject({ status: 400, code: 'invalid_request' });
  });

  it('refuses a wrong token with 401 and writes nothing', async () => {
    const { emu } = await emulator();
    const wrong = new __Name__Api({ ...emu.config, token: 'not-the-token', fetch });
    expect(await refused(wrong.create('contacts', contact(1)))).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(emu.records.list('contacts')).toEqual([]);
  });

  it('keeps its records in dataDir across a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), '__name__-emulator-'));
    dirs.push(dataDir);
    const { emu, api } = await emulator({ dataDir });
    const created = await api.create('contacts', contact(1));
    await emu.stop();
    const again = await emulator({ dataDir });
    expect(await again.api.get('contacts', created.id)).toEqual(created);
    // A new record gets a new id, not one the log holds already.
    expect((await again.api.create('contacts', contact(2))).id).not.toBe(created.id);
  });
});
