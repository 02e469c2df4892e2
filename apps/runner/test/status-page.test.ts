import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFixture, SCRIPT_EMAIL, SECRET, type Fixture } from './status-page.fixture.js';

let f: Fixture;
beforeAll(async () => {
  f = await openFixture();
});
afterAll(() => f?.close());

const get = (path: string) => fetch(f.base + path, { redirect: 'manual' });
const post = (path: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(f.base + path, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: f.base, ...headers },
    body: new URLSearchParams(form).toString(),
  });

describe('status page over HTTP', () => {
  it('lists every sync with its state, last run and parked rows', async () => {
    const res = await get('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const page = await res.text();
    expect(page).toContain('<a href="/syncs/customers">customers</a>');
    expect(page).toMatch(/<span class="status-partial">partial<\/span>/);
    expect(page).toContain('<a href="/syncs/customers#parked">2</a>');
  });

  it("shows a reason holding markup as text, and never the connection's secret", async () => {
    const page = await (await get('/syncs/customers')).text();
    expect(page).toContain('rejected by receiver (test fault)');
    expect(page).toContain(`email &quot;${SCRIPT_EMAIL.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')}&quot; is not a valid email address`);
    expect(page).not.toContain('<script');
    expect(page).not.toContain(SECRET);
  });

  it('answers 404 for a sync that does not exist, 405 for a wrong method, and leaves other paths to the server', async () => {
    const missing = await get('/syncs/nope');
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain('No sync named &quot;nope&quot;.');
    expect((await post('/syncs/nope/trigger', {})).status).toBe(404);
    const wrong = await get('/syncs/customers/retry');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect((await post('/syncs/customers', {})).status).toBe(405);
    expect((await get('/metrics')).status).toBe(404);
    expect(await (await get('/metrics')).text()).toBe('not found\n');
  });

  it('acts on a form post and redirects to a page showing what it did, once', async () => {
    const res = await post('/syncs/customers/pause', { back: '/' });
    expect(res.status).toBe(303);
    const location = res.headers.get('location')!;
    expect(location).toMatch(/^\/\?notice=[0-9a-f-]{36}$/);
    const page = await (await get(location)).text();
    expect(page).toContain('<p class="notice" role="status">customers is paused.</p>');
    expect(page).toContain('<td class="state-paused">paused</td>');
    expect(page).toContain('action="/syncs/customers/resume"');
    expect(await (await get(location)).text()).not.toContain('class="notice"');

    const resumed = await post('/syncs/customers/resume', {});
    expect(resumed.headers.get('location')).toMatch(/^\/syncs\/customers\?notice=/);
    expect(await (await get('/')).text()).toContain('action="/syncs/customers/pause"');
  });

  it('refuses actions posted from another site, and bodies that are not forms', async () => {
    const before = await f.ws.ledger().listRuns({ sync: 'customers' });
    expect((await post('/syncs/customers/trigger', {}, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await post('/syncs/customers/trigger', {}, { origin: 'null' })).status).toBe(403);
    expect((await post('/syncs/customers/trigger', {}, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    const json = await fetch(f.base + '/syncs/customers/trigger', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(json.status).toBe(415);
    expect(await json.text()).toContain('application/x-www-form-urlencoded');
    const huge = await post('/syncs/customers/retry', { key: 'x'.repeat(100_000) });
    expect(huge.status).toBe(413);
    await f.view.settled();
    expect(await f.ws.ledger().listRuns({ sync: 'customers' })).toHaveLength(before.length);
  });
});
