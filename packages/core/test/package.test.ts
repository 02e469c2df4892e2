/**
 * Packs @outflow/core and installs the tarball into an empty folder outside the repo, as a
 * connector author would, then checks what that author gets: no native modules, no build
 * leftovers, types that check a connector (and reject a wrong one), internals fenced off by
 * `exports`, and errors recognised across two copies of core.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, exec, guardedEnv, must, type ExecResult } from '../../../scripts/registry.mjs';

const coreDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = join(coreDir, '..', '..');
const repoCoreDist = join(coreDir, 'dist', 'index.js');

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeout = 240_000): Promise<ExecResult> {
  return exec(cmd, args, { cwd, env, timeout });
}

/**
 * npm talks to the registry, the one remote these tests may reach, so it runs without the
 * guard, and without the `npm_*` variables of the npm that started vitest (cleanEnv).
 */
const npmEnv = (): NodeJS.ProcessEnv => cleanEnv();

function node(args: string[], cwd: string): Promise<ExecResult> {
  return run(process.execPath, args, cwd, guardedEnv(), 60_000);
}

function walk(dir: string, visit: (path: string, name: string) => void): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, visit);
    else visit(path, entry.name);
  }
}

/** Every string target of an `exports` map. */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (exports === null || typeof exports !== 'object') return [];
  return Object.values(exports).flatMap(exportTargets);
}

function isPackageRoot(dir: string): boolean {
  const parts = dir.split(sep);
  return parts.at(-2) === 'node_modules' || (parts.at(-3) === 'node_modules' && parts.at(-2)!.startsWith('@'));
}

interface NpmTree {
  name?: string;
  dependencies?: Record<string, NpmTree>;
}

function treeNames(tree: NpmTree, into = new Set<string>()): Set<string> {
  for (const [name, child] of Object.entries(tree.dependencies ?? {})) {
    into.add(name);
    treeNames(child, into);
  }
  return into;
}

/** The connector a stranger writes from the README's example, type-checked as it stands there. */
function readmeExample(readme: string): string {
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const example = blocks.find((b) => b.includes('defineConnector('));
  if (example === undefined) throw new Error('the README has no ```ts block with a defineConnector example');
  return example;
}

const BROKEN_CONNECTOR = `import { Type, defineConnector } from '@outflow/core';

export default defineConnector({
  name: 'broken',
  version: '0.0.0',
  coreVersion: '^1.0.0',
  config: Type.Object({ url: Type.String({ description: 'Where to write.' }) }),
  destination: {
    async check(ctx) {
      if (ctx.config.hostname === '') throw new Error('no host');
    },
    async discover() {
      return { objects: [] };
    },
    capabilities: () => ({ operations: ['upsert'], maxBatchSize: 1, rateLimits: [], concurrency: 1, idempotency: 'match' }),
    async write() {
      return 'written';
    },
  },
});
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2023'],
    types: ['node'],
    strict: true,
    noEmit: true,
    skipLibCheck: false,
  },
  files: ['index.ts'],
};

let packDir: string;
let consumer: string;
let tarball: { filename: string; size: number; files: string[] };

beforeAll(async () => {
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  must(await run(process.execPath, [tsc, '-b', 'packages/core'], repoRoot, guardedEnv()), 'tsc -b packages/core');

  packDir = mkdtempSync(join(tmpdir(), 'outflow-pack-'));
  const packed = must(await run('npm', ['pack', '--json', '--pack-destination', packDir], coreDir, npmEnv()), 'npm pack');
  const [info] = JSON.parse(packed.stdout) as { filename: string; size: number; files: { path: string }[] }[];
  tarball = { filename: info!.filename, size: info!.size, files: info!.files.map((f) => f.path).sort() };

  consumer = mkdtempSync(join(tmpdir(), 'outflow-consumer-'));
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify(
      {
        name: 'acme-connector',
        version: '0.0.0',
        private: true,
        type: 'module',
        dependencies: { '@outflow/core': `file:${join(packDir, tarball.filename)}` },
        devDependencies: { typescript: '~5.9.3', '@types/node': '^20' },
      },
      null,
      2,
    ),
  );
  must(await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], consumer, npmEnv()), 'npm install');
}, 600_000);

afterAll(() => {
  for (const dir of [consumer, packDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the @outflow/core tarball', () => {
  it('ships compiled JS and declarations, README.md and LICENSE, and nothing else', () => {
    const files = tarball.files;
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']));
    expect(files.filter((f) => f.endsWith('.tsbuildinfo'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => !['package.json', 'README.md', 'LICENSE'].includes(f) && !/^dist\/.+\.(js|d\.ts)$/.test(f))).toEqual([]);
  });

  it('ships no build output left over from a source file that is gone', () => {
    // tsc -b never deletes outputs, so a moved or removed module stays in dist/ and npm
    // would publish it.
    const orphans = tarball.files
      .filter((f) => /^dist\/.+\.(js|d\.ts)$/.test(f))
      .filter((f) => !existsSync(join(coreDir, f.replace(/^dist\//, 'src/').replace(/\.(d\.ts|js)$/, '.ts'))));
    expect(orphans, 'stale files in packages/core/dist: delete the folder and build again').toEqual([]);
  });

  it('ships every file its exports map points at', () => {
    const pkg = JSON.parse(readFileSync(join(consumer, 'node_modules', '@outflow', 'core', 'package.json'), 'utf8')) as { exports: unknown };
    const targets = exportTargets(pkg.exports).map((t) => t.replace(/^\.\//, ''));
    expect(targets.length).toBeGreaterThan(0);
    expect(targets.filter((t) => !tarball.files.includes(t))).toEqual([]);
  });
});

describe('installing @outflow/core into an empty project', () => {
  it('pulls in no native module', async () => {
    const ls = await run('npm', ['ls', '--all', '--json'], consumer, npmEnv());
    const names = treeNames(JSON.parse(ls.stdout) as NpmTree);
    expect(names.has('@outflow/core')).toBe(true);
    expect([...names].filter((n) => n === 'better-sqlite3' || n.startsWith('@duckdb/'))).toEqual([]);

    const native: string[] = [];
    walk(join(consumer, 'node_modules'), (path, name) => {
      if (name === 'binding.gyp' || name.endsWith('.node')) native.push(relative(consumer, path));
      if (name === 'package.json' && isPackageRoot(dirname(path))) {
        const pkg = JSON.parse(readFileSync(path, 'utf8')) as { gypfile?: boolean; scripts?: Record<string, string> };
        if (pkg.gypfile === true) native.push(`${relative(consumer, path)} (gypfile)`);
        for (const hook of ['preinstall', 'install', 'postinstall']) {
          if (pkg.scripts?.[hook] !== undefined) native.push(`${relative(consumer, path)} (${hook} script)`);
        }
      }
    });
    expect(native).toEqual([]);
  });

  it('type-checks the README connector under strict NodeNext, and rejects a wrong one', async () => {
    const readme = readFileSync(join(consumer, 'node_modules', '@outflow', 'core', 'README.md'), 'utf8');
    writeFileSync(join(consumer, 'index.ts'), readmeExample(readme));
    writeFileSync(join(consumer, 'broken.ts'), BROKEN_CONNECTOR);
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
    writeFileSync(join(consumer, 'tsconfig.broken.json'), JSON.stringify({ extends: './tsconfig.json', files: ['broken.ts'] }, null, 2));
    const tsc = join(consumer, 'node_modules', 'typescript', 'bin', 'tsc');

    const good = await node([tsc, '-p', 'tsconfig.json'], consumer);
    expect(good.stdout + good.stderr).toBe('');
    expect(good.code).toBe(0);

    const bad = await node([tsc, '-p', 'tsconfig.broken.json'], consumer);
    expect(bad.code).not.toBe(0);
    const errors = bad.stdout.split('\n').flatMap((l) => /^(\S+)\(\d+,\d+\): error (TS\d+)/.exec(l)?.slice(1, 3).join(' ') ?? []);
    expect(errors).toEqual(['broken.ts TS2339', 'broken.ts TS2322']);
    expect(bad.stdout).toContain("Property 'hostname' does not exist on type 'Readonly<{ url: string; }>'");
    expect(bad.stdout).toContain("Type 'string' is not assignable to type 'RecordResult[]'");
  }, 120_000);

  it('exposes its entry points to plain node and fences off its internals', async () => {
    writeFileSync(
      join(consumer, 'probe.mjs'),
      `const out = {};
try {
  await import('@outflow/core/dist/errors.js');
  out.deep = 'imported';
} catch (err) {
  out.deep = err.code;
}
const core = await import('@outflow/core');
out.resolved = import.meta.resolve('@outflow/core');
out.types = Object.fromEntries(['defineConnector', 'OutflowError', 'isOutflowError', 'Type'].map((n) => [n, typeof core[n]]));
const manifest = core.defineConnector({
  name: 'probe', version: '0.0.0', coreVersion: '^1.0.0', config: core.Type.Object({}),
  destination: { check: async () => {}, discover: async () => ({ objects: [] }), capabilities: () => ({}), write: async (_c, _o, ops) => ops.map(() => ({ ok: true })) },
});
out.frozen = Object.isFrozen(manifest);
const kit = await import('@outflow/core/emulator-kit');
out.kit = typeof kit.listenOnLoopback;
console.log(JSON.stringify(out));
`,
    );
    const r = must(await node(['probe.mjs'], consumer), 'node probe.mjs');
    const out = JSON.parse(r.stdout) as { deep: string; resolved: string; types: Record<string, string>; frozen: boolean; kit: string };
    expect(existsSync(join(consumer, 'node_modules', '@outflow', 'core', 'dist', 'errors.js'))).toBe(true);
    expect(out.deep).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
    expect(fileURLToPath(out.resolved).startsWith(join(consumer, 'node_modules', '@outflow', 'core') + sep)).toBe(true);
    expect(out.types).toEqual({ defineConnector: 'function', OutflowError: 'function', isOutflowError: 'function', Type: 'object' });
    expect(out.frozen).toBe(true);
    expect(out.kit).toBe('function');
  });

  it("recognises errors from the repo's own core, and the repo's core recognises its errors", async () => {
    writeFileSync(
      join(consumer, 'two-copies.mjs'),
      `import { pathToFileURL } from 'node:url';
const installed = await import('@outflow/core');
const repo = await import(pathToFileURL(process.argv[2]).href);
const fromInstalled = new installed.OutflowError('OUTFLOW_LEDGER', 'ledger is locked', { retryable: true });
const fromRepo = repo.destinationError('acme answered 503', { retryable: true, status: 503 });
console.log(JSON.stringify({
  distinct: installed.OutflowError !== repo.OutflowError,
  repoSees: repo.isOutflowError(fromInstalled, 'OUTFLOW_LEDGER'),
  repoSeesWrongCode: repo.isOutflowError(fromInstalled, 'OUTFLOW_DESTINATION'),
  installedSees: installed.isOutflowError(fromRepo, 'OUTFLOW_DESTINATION'),
  codes: [fromInstalled.code, fromRepo.code],
  described: repo.describeError(fromInstalled),
  instanceofRepo: fromInstalled instanceof repo.OutflowError,
  instanceofInstalled: fromRepo instanceof installed.OutflowError,
  plainError: [repo.isOutflowError(new Error('x')), new Error('x') instanceof installed.OutflowError],
}));
`,
    );
    const r = must(await node(['two-copies.mjs', repoCoreDist], consumer), 'node two-copies.mjs');
    expect(JSON.parse(r.stdout)).toEqual({
      distinct: true,
      repoSees: true,
      repoSeesWrongCode: false,
      installedSees: true,
      codes: ['OUTFLOW_LEDGER', 'OUTFLOW_DESTINATION'],
      described: 'OUTFLOW_LEDGER: ledger is locked',
      instanceofRepo: true,
      instanceofInstalled: true,
      plainError: [false, false],
    });
  });
});
