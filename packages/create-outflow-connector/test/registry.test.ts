/**
 * The scaffold as an outside author meets it: create-outflow-connector, @outflow/core and
 * @outflow/testing are published to a fresh local registry (with the third-party packages
 * they need), and in an empty folder outside the repository `npm create outflow-connector`
 * writes a connector whose `npm install && npm test` passes, from that registry only.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec, guardedEnv, mirrorDependencies, must, npmEnv, publishWorkspaces, repoRoot, startRegistry, type Registry } from '../../../scripts/registry.mjs';

const MINUTES = 60_000;
const OUTFLOW = ['@outflow/core', '@outflow/testing'];

let registry: Registry | undefined;
let work: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  // Up to date already under `npm test`; a run of this project alone builds what it publishes.
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  must(await exec(process.execPath, [tsc, '-b', 'packages/core', 'packages/testing', 'packages/create-outflow-connector'], { cwd: repoRoot }), 'tsc -b');
  registry = await startRegistry();
  await publishWorkspaces(registry, { packages: [...OUTFLOW, 'create-outflow-connector'] });
  // What a generated package installs: Outflow's packages and the tools in its devDependencies.
  await mirrorDependencies(registry, [...OUTFLOW, 'vitest', 'typescript', '@types/node']);
  work = mkdtempSync(join(tmpdir(), 'outflow-scaffold-'));
  // npm_config_yes: `npm create` installs the initializer without asking.
  env = guardedEnv({ ...npmEnv(registry, { cache: join(work, '.npm-cache') }), npm_config_yes: 'true' });
}, 10 * MINUTES);

afterAll(async () => {
  await registry?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

/** Runs a command as the author would, in `cwd`; fails the test with its output unless it exits 0. */
async function step(cwd: string, cmd: string, args: string[]): Promise<string> {
  const result = must(await exec(cmd, args, { cwd, env, timeout: 10 * MINUTES }), `${cmd} ${args.join(' ')} in ${cwd}`);
  return result.stdout;
}

/** The counts of vitest's summary line: `Tests  35 passed | 1 skipped (36)`. */
function summary(output: string): { passed: number; failed: number } {
  const line = /Tests\s+(.*)\(\d+\)/.exec(stripVTControlCharacters(output))?.[1] ?? '';
  const count = (what: string) => Number(new RegExp(`(\\d+) ${what}`).exec(line)?.[1] ?? 0);
  return { passed: count('passed'), failed: count('failed') };
}

describe('npm create outflow-connector, from a local registry', () => {
  it('writes a destination whose npm install && npm test pass, and which builds and packs', { timeout: 15 * MINUTES }, async () => {
    const created = await step(work, 'npm', ['create', 'outflow-connector', 'acme', '--', '--role', 'destination', '--yes']);
    expect(created).toContain('Wrote outflow-connector-acme (destination)');
    const dir = join(work, 'outflow-connector-acme');
    await step(dir, 'npm', ['install']);
    // Installed from the local registry: the lockfile names no other.
    const lock = readFileSync(join(dir, 'package-lock.json'), 'utf8');
    for (const [, url] of lock.matchAll(/"resolved": "([^"]+)"/g)) expect(url!.startsWith(registry!.url)).toBe(true);

    const tested = await step(dir, 'npm', ['test']);
    expect(tested).toContain('test/destination.test.ts');
    // Every check ran: only capabilities-undeclared skips itself (all four operations are declared).
    expect(summary(tested)).toEqual({ passed: 35, failed: 0 });

    await step(dir, 'npm', ['run', 'typecheck']);
    await step(dir, 'npm', ['run', 'build']);
    const packed = JSON.parse(await step(dir, 'npm', ['pack', '--dry-run', '--json', '--ignore-scripts'])) as { files: { path: string }[] }[];
    const files = packed[0]!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'dist/emulator/index.js', 'dist/destination.js', 'README.md', 'package.json']));
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
  });

  it('writes a destination with one request per record whose npm install && npm test pass', { timeout: 15 * MINUTES }, async () => {
    const created = await step(work, 'npm', ['create', 'outflow-connector', 'acme-each', '--', '--role', 'destination', '--writes', 'each', '--yes']);
    expect(created).toContain('Wrote outflow-connector-acme-each (destination, one request per record)');
    const dir = join(work, 'outflow-connector-acme-each');
    await step(dir, 'npm', ['install']);
    const tested = await step(dir, 'npm', ['test']);
    expect(tested).toContain('test/destination.test.ts');
    expect(tested).toContain('test/emulator.test.ts');
    // The acceptance suite's 35 checks and the emulator's own 6 tests.
    expect(summary(tested)).toEqual({ passed: 41, failed: 0 });
    await step(dir, 'npm', ['run', 'typecheck']);
  });

  it('writes a source with a stream whose npm install && npm test pass', { timeout: 15 * MINUTES }, async () => {
    await step(work, 'npm', ['create', 'outflow-connector', '@acme/outflow-connector-shop', '--', '--role', 'stream', '--dir', 'shop', '--yes']);
    const dir = join(work, 'shop');
    await step(dir, 'npm', ['install']);
    const tested = await step(dir, 'npm', ['test']);
    expect(tested).toContain('test/source.test.ts');
    expect(tested).toContain('test/stream.test.ts');
    expect(summary(tested)).toMatchObject({ failed: 0 });
    expect(summary(tested).passed).toBeGreaterThanOrEqual(25);
  });
});
