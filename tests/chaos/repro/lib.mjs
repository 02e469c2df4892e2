// Shared by the reproductions: the built CLI in a child process under the network guard,
// as tests/crash/cli.ts starts it (these scripts run with plain node, after `npm run build`).
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = join(ROOT, 'apps', 'runner', 'dist', 'cli.js');
const GUARD = join(ROOT, 'packages', 'testing', 'dist', 'network-guard.js');

/** A temp folder holding `yaml` as outflow.yaml. */
export function workspace(yaml) {
  const dir = mkdtempSync(join(tmpdir(), 'outflow-repro-'));
  writeFileSync(join(dir, 'outflow.yaml'), yaml);
  return dir;
}

/**
 * The outflow.yaml of a stream sync from the Snowflake emulator's ANALYTICS.PUBLIC.ITEMS
 * (ID, NAME) into the HubSpot emulator's custom object `items`; `delivery` is a YAML flow map.
 */
export function snowflakeToHubSpotItems(sf, hubspot, delivery) {
  return `version: 1
connections:
  src: { connector: snowflake, config: { account: ${sf.config.account}, username: ${sf.config.username}, password: "${sf.config.password}", database: ANALYTICS, warehouse: COMPUTE_WH, accessUrl: "${sf.url}" } }
  dst: { connector: hubspot, config: { accessToken: "${hubspot.config.accessToken}", basePath: "${hubspot.url}" } }
syncs:
  - name: items
    from: { connection: src, table: ITEMS, primaryKey: ID }
    capture: stream
    to: { connection: dst, object: items, mode: upsert, deletes: delete }
    mappings: { item_id: ID, item_name: NAME }
${delivery ? `    delivery: ${delivery}\n` : ''}`;
}

/** Starts `outflow <args>` in `dir`; `output()` is everything it printed, `exited` its end. */
export function outflow(dir, args, env = {}) {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: dir,
    env: { ...process.env, NODE_OPTIONS: `--import ${GUARD}`, OUTFLOW_NETWORK_GUARD_EXIT: '1', OUTFLOW_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, output })));
  return { child, output: () => output, exited };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function until(check, ms = 60_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) return false;
    await sleep(50);
  }
  return true;
}

/** Prints the verdict and exits 1 while the bug reproduces, 0 once it is gone. */
export function verdict(reproduced, what) {
  console.log(`${reproduced ? 'REPRODUCED' : 'not reproduced (fixed?)'}: ${what}`);
  process.exit(reproduced ? 1 : 0);
}
