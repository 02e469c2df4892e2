#!/usr/bin/env node
// `npm run chaos -- [--seed N] [--kills N] [--duration SECONDS] [--failpoint-rate P] [--rows N] [--scenarios a,b]`:
// turns the options into CHAOS_* environment variables (vitest refuses options it does not
// know) and runs the harness's own vitest config. The variables can also be set directly.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const OPTIONS = { seed: 'CHAOS_SEED', kills: 'CHAOS_KILLS', duration: 'CHAOS_DURATION', 'failpoint-rate': 'CHAOS_FAILPOINT_RATE', rows: 'CHAOS_ROWS', scenarios: 'CHAOS_SCENARIOS' };
const env = { ...process.env };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  const [flag, inline] = arg.split('=', 2);
  const name = flag.startsWith('--') ? OPTIONS[flag.slice(2)] : undefined;
  const value = inline ?? argv[i + 1];
  if (name === undefined || value === undefined) {
    console.error(`unknown or incomplete option "${arg}"; options: ${Object.keys(OPTIONS).map((o) => `--${o}`).join(', ')}`);
    process.exit(2);
  }
  if (inline === undefined) i++;
  env[name] = value;
}
const vitest = join(here, '..', '..', 'node_modules', 'vitest', 'vitest.mjs');
const r = spawnSync(process.execPath, [vitest, 'run', '--config', join(here, 'vitest.config.ts')], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
