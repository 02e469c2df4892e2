#!/usr/bin/env node
// `npm start`: generates the quickstart's customers (once) and runs its sync.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from '../examples/quickstart/generate.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'examples', 'quickstart');
const { file, created } = generate();
if (created) console.log(`Generated ${file}`);
const cli = join(root, 'apps', 'runner', 'dist', 'cli.js');
const run = spawnSync(process.execPath, [cli, 'run', '-c', join(dir, 'outflow.yaml'), ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, OUTFLOW_LOG_LEVEL: process.env.OUTFLOW_LOG_LEVEL ?? 'warn' },
});
if (run.status === 0) {
  console.log(`
Next:
  npx outflow errors -c examples/quickstart/outflow.yaml   # rows the destination rejected, with its reasons
  npx outflow status -c examples/quickstart/outflow.yaml   # run history
  edit a row of examples/quickstart/data/customers.csv, then npm start again: exactly one update goes out`);
}
process.exit(run.status ?? 1);
