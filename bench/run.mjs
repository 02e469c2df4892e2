#!/usr/bin/env node
// `npm run bench -- <name> [more names]`: runs bench/<name>.mjs (all of them without names).
// Each benchmark writes bench/results/<name>.json and a markdown table beside it.
// `--smoke` (or BENCH_SMOKE=1): nothing written, and tiny sizes (see smoke in lib.mjs).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && !['run.mjs', 'lib.mjs'].includes(f))
  .map((f) => f.slice(0, -4))
  .sort();
const [names, args] = (() => {
  const argv = process.argv.slice(2);
  const split = argv.indexOf('--');
  const picked = (split < 0 ? argv : argv.slice(0, split)).filter((a) => !a.startsWith('-'));
  return [picked.length ? picked : available, argv.filter((a) => a.startsWith('-') && a !== '--' && a !== '--smoke')];
})();
const smoke = process.argv.includes('--smoke') || process.env.BENCH_SMOKE === '1';
let failed = 0;
for (const name of names) {
  if (!available.includes(name)) {
    console.error(`no benchmark "${name}" (available: ${available.join(', ')})`);
    process.exit(2);
  }
  console.log(`\n== bench ${name}`);
  const r = spawnSync(process.execPath, ['--expose-gc', join(here, `${name}.mjs`), ...args], {
    stdio: 'inherit',
    env: { ...process.env, SNOWFLAKE_DISABLE_PLATFORM_DETECTION: 'true', ...(smoke ? { BENCH_SMOKE: '1' } : {}) },
  });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
