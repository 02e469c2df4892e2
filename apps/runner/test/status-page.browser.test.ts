/**
 * The status page of a real `outflow serve` (its command, in this process) in a real
 * browser: headless Chromium (Debian's `chromium` package) driven by playwright-core, with
 * JavaScript off. Screenshots are kept in apps/runner/test-output/status-page/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@outflow/core';
import { serveCommand } from '../src/serve/command.js';
import { ALERT_SECRET, startReceiver, type Receiver } from './alerts.receiver.js';
import { SCRIPT_EMAIL, SECRET, writeProject, type Project } from './status-page.fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-output', 'status-page');

/**
 * Debian's chromium, installed with apt-get when it is missing and this runs as root;
 * otherwise the test fails saying what to install (it never skips).
 */
function ensureChromium(): string {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  const aptGet = ['/usr/bin/apt-get', '/bin/apt-get'].find((p) => existsSync(p));
  if (process.getuid?.() !== 0 || aptGet === undefined) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium) to run the status page's browser test`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync(aptGet, ['install', '-y', '--no-install-recommends', 'chromium'], { stdio: 'inherit', env });
  } catch {
    execFileSync(aptGet, ['update'], { stdio: 'inherit', env });
    execFileSync(aptGet, ['install', '-y', '--no-install-recommends', 'chromium'], { stdio: 'inherit', env });
  }
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium, but ${CHROMIUM} is still missing`);
  return CHROMIUM;
}

let project: Project;
let receiver: Receiver;
let base: string;
let stop: () => Promise<number>;
let browser: Browser;
let page: Page;
const dialogs: string[] = [];

beforeAll(async () => {
  const executablePath = ensureChromium();
  mkdirSync(SHOTS, { recursive: true });
  console.log(`status page screenshots: ${SHOTS}`);
  receiver = await startReceiver();
  project = await writeProject(`alerts:
  webhook: { url: "${receiver.url}", secret: ${ALERT_SECRET} }
  rules: { rejectedPct: 10 }
`);
  const stopping = new AbortController();
  let listening: (url: string) => void;
  const heard = new Promise<string>((resolve) => (listening = resolve));
  const served = serveCommand(
    { configFile: project.configFile, names: [], host: '127.0.0.1', port: 0, graceMs: 10_000, leaseMs: 60_000, chdir: false },
    {
      out: { write: (s) => void (/listening on (\S+)/.test(s) && listening(/listening on (\S+)/.exec(s)![1]!)) },
      err: () => undefined,
      signal: stopping.signal,
      logger: createLogger({ level: 'silent' }),
    },
  );
  const ended = served.then((code) => Promise.reject(new Error(`outflow serve ended (exit ${code}) before it listened`)));
  base = await Promise.race([heard, ended]);
  stop = () => (stopping.abort(), served);
  browser = await chromium.launch({
    executablePath,
    // Only loopback: every host name but 127.0.0.1 resolves to nothing.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
  });
  page = await browser.newPage({ javaScriptEnabled: false });
  page.on('dialog', (d) => void (dialogs.push(d.message()), d.dismiss()));
}, 600_000);

afterAll(async () => {
  await browser?.close();
  if (stop) expect(await stop()).toBe(130);
  await project?.emulator.stop();
  await receiver?.stop();
});

const cells = (row: string) => page.locator(`${row} td`).allTextContents();
const parkedKeys = async () => (await page.locator('tr[data-key]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')))).sort();
/** Reloads the page until `read` gives what is expected (the user's refresh). */
const reloadUntil = <T>(read: () => Promise<T>, expected: T) =>
  expect.poll(async () => (await page.reload(), read()), { timeout: 60_000, interval: 250 }).toEqual(expected);
const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

describe('status page in a browser', () => {
  it('runs a sync, follows it to its parked rows, retries one once the cause is fixed, and sees it delivered', async () => {
    await page.goto(base + '/');
    const row = 'tr[data-sync="customers"]';
    expect((await cells(row)).slice(0, 5)).toEqual(['customers', 'diff', 'idle', 'never', '—']);
    await shot('1-overview');

    await page.locator(row).getByRole('button', { name: 'Run now' }).click();
    expect(new URL(page.url()).pathname).toBe('/');
    expect(await page.getByRole('status').textContent()).toMatch(/^customers: run \S+ started\.$/);
    await reloadUntil(async () => (await cells(row))[3]!.split(' ')[0], 'partial');
    expect((await cells(row))[6]).toBe('2');
    await shot('2-ran');

    await page.getByRole('link', { name: 'customers' }).click();
    expect(new URL(page.url()).pathname).toBe('/syncs/customers');
    expect(await parkedKeys()).toEqual(['3', '5']);
    expect(await page.locator('tr[data-key="3"] .reason').textContent()).toBe('rejected by receiver (test fault)');
    // The receiver's reason quotes the email, markup and all: shown as text, never run.
    expect(await page.locator('tr[data-key="5"] .reason').textContent()).toBe(`email "${SCRIPT_EMAIL}" is not a valid email address`);
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.title()).toBe('customers · outflow serve');
    expect(await page.locator('tr[data-run]').count()).toBe(1);
    await shot('3-parked');

    // The cause is fixed at the receiver; row 3 is sent again from the page.
    project.emulator.setFaults({});
    await page.locator('tr[data-key="3"]').getByRole('button', { name: 'Retry' }).click();
    expect(new URL(page.url()).pathname).toBe('/syncs/customers');
    expect(await page.getByRole('status').textContent()).toMatch(/^customers: sending 1 parked row again with run \S+\.$/);
    await reloadUntil(parkedKeys, ['5']);
    await reloadUntil(async () => (await cells('tr[data-run]:first-child')).slice(1, 10), ['succeeded', 'diff', expect.any(String), expect.any(String), '1', '0', '0', '0', '0']);
    expect(await page.locator('tr[data-run]').count()).toBe(2);
    await shot('4-delivered');

    // Delivered once, counted in the receiver's own write log.
    expect(project.emulator.writes('customers').filter((w) => w.key === '3')).toEqual([expect.objectContaining({ t: 'put', created: true })]);
    expect(project.emulator.records('customers').map((r) => r.key).sort()).toEqual(['1', '2', '3', '4', '6']);
    expect(dialogs).toEqual([]);
    expect(await page.content()).not.toContain(SECRET);

    await page.getByRole('link', { name: '← all syncs' }).click();
    expect((await cells(row))[6]).toBe('1');

    // The first run rejected 2 of 6 records, above the alert rule's 10%; the retry run rejected none.
    await expect.poll(() => receiver.notices.map((n) => `${n.type} ${n.rule}`), { timeout: 30_000 }).toEqual(['alert rejectedPct', 'recovery rejectedPct']);
    expect(receiver.notices[0]!.message).toMatch(/rejected 2 of 6 records \(33\.33%\), more than rejectedPct 10$/);
    expect(receiver.unsigned).toBe(0);
  }, 240_000);
});
