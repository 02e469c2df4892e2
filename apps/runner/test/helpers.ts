import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = join(root, 'apps', 'runner', 'dist', 'cli.js');
const GUARD = join(root, 'packages', 'testing', 'dist', 'network-guard.js');

if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);

export function tempDir(prefix = 'outflow-runner-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the built CLI in a child process, under the network guard. */
export function startCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): { child: ChildProcess; done: Promise<CliResult>; output(): string } {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: {
      ...process.env,
      NODE_OPTIONS: existsSync(GUARD) ? `--import ${GUARD}` : '',
      OUTFLOW_NETWORK_GUARD_EXIT: '1',
      OUTFLOW_LOG_LEVEL: 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, output: () => stdout };
}

export function runCli(args: string[], options: { cwd: string; env?: Record<string, string> }): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Writes a CSV of `n` customers into `dir/data/customers.csv`; `edit` changes rows. */
export function writeCustomers(dir: string, n: number, edit: (row: string[], id: number) => string[] = (r) => r): string {
  const lines = ['id,email,name,score'];
  for (let id = 1; id <= n; id++) {
    lines.push(edit([String(id), `user${id}@example.com`, `User ${id}`, String(id % 97)], id).join(','));
  }
  mkdirSync(join(dir, 'data'), { recursive: true });
  const file = join(dir, 'data', 'customers.csv');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** data/customers.csv (see {@link writeCustomers}) synced into a sandboxed webhook. */
export const SANDBOX_CONFIG = `version: 1
connections:
  warehouse: { connector: duckdb }
  hooks: { connector: webhook, sandbox: true }
syncs:
  - name: customers
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: hooks, object: customers }
`;

export function writeConfig(dir: string, yaml: string): string {
  const file = join(dir, 'outflow.yaml');
  writeFileSync(file, yaml);
  return file;
}

/** Parses the JSON lines a `run --json` printed. */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
