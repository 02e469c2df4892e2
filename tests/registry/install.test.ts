/**
 * Outflow as a user gets it from npm. Every workspace package is packed by npm and published
 * to a fresh local registry (Verdaccio, no uplink) with the third-party packages they need;
 * then, in an empty folder outside the repository, the user installs the runner and two
 * connectors from that registry alone, writes an outflow.yaml and runs it, and a runner
 * installed globally runs the same project with the connectors installed in it.
 *
 * npm runs without the network guard (its proxy refuses every address but the registry's);
 * everything else runs under it.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildWorkspaces,
  exec,
  guardedEnv,
  mirrorDependencies,
  must,
  npmEnv,
  publishWorkspaces,
  startRegistry,
  tarEntries,
  publishablePackages,
  type PublishedPackage,
  type Registry,
} from '../../scripts/registry.mjs';

const CUSTOMERS = 40;
const USER_PACKAGES = ['@outflow/runner', '@outflow/connector-duckdb', '@outflow/connector-hubspot'];

const OUTFLOW_YAML = `version: 1
connections:
  warehouse:
    connector: duckdb
  crm:
    connector: hubspot
    sandbox: true
    config:
      tier: professional
syncs:
  - name: customers-to-hubspot
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to: { connection: crm, object: contacts, mode: upsert, matchKey: { email: email }, deletes: delete }
    mappings: { email: email, firstname: first_name, lastname: last_name }
`;

/** A connector as a stranger publishes it: plain JS, no build, core as a peer. */
const ACME_CONNECTOR = `export default {
  name: 'acme-destination',
  version: '1.0.0',
  config: { type: 'object', properties: {}, additionalProperties: false },
  destination: {
    async check() {},
    async discover() { return { objects: [{ name: 'things' }] }; },
    capabilities: () => ({ operations: ['upsert'], maxBatchSize: 10, rateLimits: [], concurrency: 1, idempotency: 'match' }),
    async write(_ctx, _object, ops) { return ops.map(() => ({ ok: true })); },
  },
};
`;

function customersCsv(rename: Record<number, string> = {}): string {
  const lines = ['id,email,first_name,last_name'];
  for (let id = 1; id <= CUSTOMERS; id++) lines.push(`${id},customer${id}@example.com,${rename[id] ?? `First${id}`},Last${id}`);
  return lines.join('\n') + '\n';
}

interface LogEntry {
  t: string;
  o?: string;
  r?: { id: string; properties: Record<string, string> };
  id?: string;
}

/** The HubSpot emulator's own record of the sandbox portal: contacts by email, and its write log. */
function portal(project: string) {
  const file = join(project, '.outflow', 'sandbox', 'crm', 'hubspot-emulator.jsonl');
  const entries = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as LogEntry)
    : [];
  const contacts = new Map<string, Record<string, string>>();
  for (const e of entries) {
    if (e.t === 'put' && e.o === 'contacts') contacts.set(e.r!.id, e.r!.properties);
    if (e.t === 'del' && e.o === 'contacts') contacts.delete(e.id!);
  }
  const byEmail = new Map([...contacts.values()].map((p) => [p['email']!, p]));
  return { byEmail, writes: entries.filter((e) => e.o === 'contacts').length };
}

interface PackageJson {
  license?: string;
  type?: string;
  types?: string;
  engines?: { node?: string };
  exports?: unknown;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

let registry: Registry;
let published: PublishedPackage[];
let mirror: { packages: string[]; bytes: number; fetched: string[] };
const temp: string[] = [];
const timings: Record<string, number> = {};

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temp.push(dir);
  return dir;
}

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await work();
  } finally {
    timings[label] = Math.round((Date.now() - started) / 100) / 10;
  }
}

beforeAll(async () => {
  const build = await timed('build', () => buildWorkspaces());
  if (build.code !== 0) console.warn(`tsc -b failed; publishing dist/ as it is\n${build.stdout}`);
  registry = await timed('start registry', () => startRegistry());
  published = await timed('publish workspaces', () => publishWorkspaces(registry));
  mirror = await timed('mirror dependencies', () => mirrorDependencies(registry, USER_PACKAGES));
}, 15 * 60_000);

afterAll(async () => {
  await registry?.stop();
  for (const dir of temp) rmSync(dir, { recursive: true, force: true });
  const mb = mirror ? ` mirror: ${mirror.packages.length} packages, ${(mirror.bytes / 1e6).toFixed(1)} MB, ${mirror.fetched.length} fetched from npm;` : '';
  console.log(`registry test:${mb} seconds: ${JSON.stringify(timings)}`);
});

describe('every workspace package, as npm packs it', () => {
  it('is published: each non-private workspace package', () => {
    expect(published.map((p) => p.name).sort()).toEqual(publishablePackages().map((p) => p.name).sort());
    expect(published.length).toBeGreaterThanOrEqual(10);
  });

  it('ships compiled JS and declarations, a README and a LICENSE; no sources, source maps, build info or stale output', () => {
    const faults: string[] = [];
    for (const p of published) {
      const files = new Set(p.files);
      for (const f of ['package.json', 'README.md', 'LICENSE']) if (!files.has(f)) faults.push(`${p.name}: no ${f}`);
      for (const f of p.files) {
        if (f.endsWith('.map') || f.endsWith('.tsbuildinfo') || /^(src|test)\//.test(f)) faults.push(`${p.name}: ships ${f}`);
        // tsc -b never deletes the output of a module that moved or is gone.
        const m = /^dist\/(.+)\.(?:d\.ts|js)$/.exec(f);
        if (m && !['.ts', '.tsx', '.mts'].some((ext) => existsSync(join(p.dir, 'src', m[1]! + ext)))) faults.push(`${p.name}: ${f} has no source (stale build output)`);
      }
      for (const e of tarEntries(p.tarball)) {
        if (/\.(js|d\.ts)$/.test(e.path) && e.data.includes('sourceMappingURL')) faults.push(`${p.name}: ${e.path} points at a source map`);
      }
    }
    expect(faults).toEqual([]);
  });

  it('declares its licence, engines, types first in every export, and core as a peer wherever it imports it', () => {
    const faults: string[] = [];
    for (const p of published) {
      const entries = tarEntries(p.tarball);
      const pkg = JSON.parse(entries.find((e) => /^[^/]+\/package\.json$/.test(e.path))!.data.toString('utf8')) as PackageJson;
      if (pkg.license !== 'Apache-2.0') faults.push(`${p.name}: license ${pkg.license}`);
      if (pkg.engines?.node !== '>=20') faults.push(`${p.name}: engines.node ${pkg.engines?.node}`);
      if (pkg.type !== 'module') faults.push(`${p.name}: not "type": "module"`);
      const conditions = (t: unknown): string[][] =>
        t !== null && typeof t === 'object' ? [Object.keys(t).filter((k) => !k.startsWith('.')), ...Object.values(t).flatMap(conditions)] : [];
      for (const keys of conditions(pkg.exports)) {
        if (keys.length > 0 && keys[0] !== 'types') faults.push(`${p.name}: an exports entry lists ${keys.join(', ')} (types must come first)`);
      }
      if (pkg.exports !== undefined && typeof pkg.types !== 'string') faults.push(`${p.name}: no "types"`);
      const importsCore = entries.some((e) => e.path.endsWith('.js') && /from ['"]@outflow\/core(\/[\w-]+)?['"]/.test(e.data.toString('utf8')));
      const host = p.name === '@outflow/runner';
      if (importsCore && !host && pkg.peerDependencies?.['@outflow/core'] === undefined) faults.push(`${p.name}: imports @outflow/core without a peer dependency on it`);
      if (importsCore && !host && pkg.dependencies?.['@outflow/core'] !== undefined) faults.push(`${p.name}: depends on its own copy of @outflow/core`);
    }
    expect(faults).toEqual([]);
  });

  it('exports the vitest setup file of @outflow/testing', () => {
    const testing = published.find((p) => p.name === '@outflow/testing')!;
    const pkg = JSON.parse(tarEntries(testing.tarball).find((e) => e.path === 'package/package.json')!.data.toString('utf8')) as { exports: Record<string, unknown> };
    expect(pkg.exports['./vitest-setup']).toEqual({ types: './dist/vitest-setup.d.ts', default: './dist/vitest-setup.js' });
    expect(testing.files).toContain('dist/vitest-setup.js');
  });
});

describe('a user installing from the registry', () => {
  let project: string;
  let globalPrefix: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    project = tempDir('outflow-user-');
    globalPrefix = tempDir('outflow-global-');
    env = npmEnv(registry, { cache: tempDir('outflow-npm-cache-') });
    must(await exec('npm', ['init', '-y'], { cwd: project, env }), 'npm init -y');
    // better-sqlite3 compiles from source in both installs: run them side by side.
    const [local, global] = await Promise.all([
      timed('npm install (project)', () => exec('npm', ['install', ...USER_PACKAGES], { cwd: project, env })),
      timed('npm install -g', () => exec('npm', ['install', '-g', '@outflow/runner', '--prefix', globalPrefix], { cwd: globalPrefix, env })),
    ]);
    must(local, `npm install ${USER_PACKAGES.join(' ')}`);
    must(global, 'npm install -g @outflow/runner');
  }, 15 * 60_000);

  it('installs the packages from the registry', () => {
    const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
    for (const name of [...USER_PACKAGES, '@outflow/core', '@outflow/ledger-sqlite', '@outflow/state-duckdb']) {
      expect(lock.packages[`node_modules/${name}`]?.version, name).toBe(published.find((p) => p.name === name)!.version);
    }
    expect(existsSync(join(project, 'node_modules', '.bin', 'outflow'))).toBe(true);
  });

  it('runs a sync with `npx outflow run`: the rows reach the HubSpot sandbox, and a second run sends 0 changes', async () => {
    writeFileSync(join(project, 'outflow.yaml'), OUTFLOW_YAML);
    mkdirSync(join(project, 'data'), { recursive: true });
    writeFileSync(join(project, 'data', 'customers.csv'), customersCsv());
    const run = guardedEnv(env);

    const first = await timed('first run', () => exec('npx', ['outflow', 'run'], { cwd: project, env: run }));
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`✓ customers-to-hubspot: ${CUSTOMERS} created, 0 updated, 0 deleted in [\\d.]+s \\(succeeded\\)`));
    const after = portal(project);
    expect(after.byEmail.size).toBe(CUSTOMERS);
    for (let id = 1; id <= CUSTOMERS; id++) {
      expect(after.byEmail.get(`customer${id}@example.com`)).toMatchObject({ firstname: `First${id}`, lastname: `Last${id}` });
    }

    const second = await timed('second run', () => exec('npx', ['outflow', 'run'], { cwd: project, env: run }));
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toMatch(/✓ customers-to-hubspot: 0 changes in [\d.]+s \(succeeded\)/);
    expect(portal(project).writes).toBe(after.writes);
  });

  it('runs the same project with a globally installed runner, which loads the connectors installed in the project', async () => {
    // The global runner brings DuckDB but not HubSpot: only the project has it.
    expect(existsSync(join(globalPrefix, 'lib', 'node_modules', '@outflow', 'runner'))).toBe(true);
    expect(existsSync(join(globalPrefix, 'lib', 'node_modules', '@outflow', 'connector-hubspot'))).toBe(false);
    writeFileSync(join(project, 'data', 'customers.csv'), customersCsv({ 7: 'Seventh' }));
    const before = portal(project);

    const r = await timed('global run', () => exec(join(globalPrefix, 'bin', 'outflow'), ['run'], { cwd: project, env: guardedEnv(env) }));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/✓ customers-to-hubspot: 0 created, 1 updated, 0 deleted/);
    const after = portal(project);
    expect(after.writes).toBe(before.writes + 1);
    expect(after.byEmail.get('customer7@example.com')).toMatchObject({ firstname: 'Seventh' });
  });

  it('loads a third-party connector by its unscoped package name, published with npm and installed in the project', async () => {
    const pkg = tempDir('outflow-connector-acme-');
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({
        name: 'outflow-connector-acme',
        version: '1.0.0',
        license: 'MIT',
        type: 'module',
        exports: { '.': './index.js' },
        peerDependencies: { '@outflow/core': '^1.0.0' },
      }),
    );
    writeFileSync(join(pkg, 'index.js'), ACME_CONNECTOR);
    must(await exec('npm', ['publish'], { cwd: pkg, env }), 'npm publish outflow-connector-acme');
    must(await exec('npm', ['install', 'outflow-connector-acme'], { cwd: project, env }), 'npm install outflow-connector-acme');
    writeFileSync(join(project, 'outflow.yaml'), OUTFLOW_YAML.replace('connections:\n', 'connections:\n  acme:\n    connector: outflow-connector-acme\n'));

    const r = await exec(join(globalPrefix, 'bin', 'outflow'), ['check', 'acme', 'crm'], { cwd: project, env: guardedEnv(env) });
    expect(r.stdout + r.stderr).toContain('✓ acme (acme-destination)');
    expect(r.stdout + r.stderr).toContain('✓ crm (hubspot)');
    expect(r.code).toBe(0);
  });

  it('names the packages looked for and the install command for a connector the project lacks', async () => {
    const dir = tempDir('outflow-user-missing-');
    writeFileSync(join(dir, 'outflow.yaml'), OUTFLOW_YAML.replace('connector: hubspot', 'connector: outflow-connector-absent'));
    const r = await exec(join(globalPrefix, 'bin', 'outflow'), ['validate'], { cwd: dir, env: guardedEnv(env) });
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toContain('connector "outflow-connector-absent" is not installed');
    expect(r.stdout + r.stderr).toContain('Run: npm install outflow-connector-absent');
  });
});
