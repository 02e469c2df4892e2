/** The real `outflow` CLI in a child process, under the network guard, for crash tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'apps', 'runner', 'dist', 'cli.js');
const GUARD = join(ROOT, 'packages', 'testing', 'dist', 'network-guard.js');

/** Fails early, with what to do, when the CLI or the connectors it loads are not built. */
export function assertBuilt(): void {
  const needed = [CLI, GUARD, ...['postgres', 'snowflake', 'webhook', 'hubspot'].map((c) => join(ROOT, 'connectors', c, 'dist', 'index.js'))];
  const missing = needed.filter((f) => !existsSync(f));
  if (missing.length) throw new Error(`not built: ${missing.join(', ')}; run \`npm run build\` first (npm test does)`);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `outflow-${prefix}-`));
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

export interface Runner {
  child: ChildProcess;
  /** Everything the CLI printed so far, stdout and stderr. */
  output(): string;
  exited: Promise<Exit>;
  /** Stops a stream run as a person would (SIGTERM) and waits for it to end. */
  stop(): Promise<Exit>;
}

const running = new Set<ChildProcess>();

/** Starts `outflow <args>` in `cwd`; `failpoints` arms crash points (OUTFLOW_FAILPOINTS). */
export function outflow(cwd: string, args: string[], options: { env?: Record<string, string>; failpoints?: string } = {}): Runner {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd,
    env: {
      ...process.env,
      NODE_OPTIONS: `--import ${GUARD}`,
      OUTFLOW_NETWORK_GUARD_EXIT: '1',
      OUTFLOW_LOG_LEVEL: 'warn',
      OUTFLOW_FAILPOINTS: options.failpoints ?? '',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, output });
    }),
  );
  return {
    child,
    output: () => output,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Kills every CLI still running (after a failed test). */
export function killAll(): void {
  for (const c of running) c.kill('SIGKILL');
}

/** Polls `check` until it holds; fails naming `what` (and what `detail` says) when it never does. */
export async function eventually(check: () => Promise<boolean> | boolean, what: string, ms = 45_000, detail?: () => string | Promise<string>): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${detail ? `\n${await detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits for `p`, failing after `ms` with `what`. */
export async function within<T>(p: Promise<T>, ms: number, what: string, detail?: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}${detail ? `\n${detail()}` : ''}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
