import type { ChildProcess } from 'node:child_process';
import { expect } from 'vitest';
import { startCli, type CliResult } from './helpers.js';

/** A running `outflow serve` child process and its API. */
export interface Served {
  child: ChildProcess;
  /** `http://127.0.0.1:<port>`, as the process printed it. */
  url: string;
  done: Promise<CliResult>;
  output(): string;
  get(path: string): Promise<{ status: number; body: unknown; text: string }>;
  /** POSTs with `content-type: application/json` (what the API requires of changes). */
  post(path: string, body?: unknown): Promise<{ status: number; body: unknown; text: string }>;
}

/** Starts `outflow serve --port 0 <args>` in `cwd` and waits until it listens. */
export async function startServe(args: string[], options: { cwd: string; env?: Record<string, string> }): Promise<Served> {
  const cli = startCli(['serve', '--port', '0', ...args], options);
  let stderr = '';
  cli.child.stderr!.on('data', (d) => (stderr += d));
  let url = '';
  await expect
    .poll(
      () => {
        url = /listening on (http:\/\/\S+)/.exec(cli.output())?.[1] ?? '';
        if (!url && cli.child.exitCode !== null) throw new Error(`outflow serve exited ${cli.child.exitCode}:\n${stderr}`);
        return url;
      },
      { timeout: 60_000, interval: 100 },
    )
    .not.toBe('');
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, {
      method,
      ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: /metrics
    }
    return { status: res.status, body: parsed, text };
  };
  return {
    child: cli.child,
    url,
    done: cli.done,
    output: () => `${cli.output()}\n${stderr}`,
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body),
  };
}

/** The value of one series in a Prometheus exposition, or undefined when absent. */
export function metric(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
