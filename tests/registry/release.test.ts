/**
 * A release, as `npm run release:local` makes it, on a copy of the workspace (the repository
 * is left as it is): `changeset version` applies the pending changesets, `changeset publish`
 * publishes every package with npm to a fresh local registry, and every range between our
 * packages admits the version that was published.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import semver from 'semver';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildWorkspaces, repoRoot, startRegistry, publishablePackages, type Registry } from '../../scripts/registry.mjs';
import { pendingChangesets, release } from '../../scripts/release-local.mjs';

interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const packages = publishablePackages();
let registry: Registry;
let copy: string;
let pending: string[];
let output: string;

/** What a release reads and writes: the root manifest, the changesets, each package's manifest, docs and build. */
function copyWorkspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'outflow-release-'));
  for (const f of ['package.json', '.changeset']) cpSync(join(repoRoot, f), join(dir, f), { recursive: true });
  for (const p of packages) {
    const to = join(dir, relative(repoRoot, p.dir));
    mkdirSync(to, { recursive: true });
    for (const f of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist', 'bin', 'templates']) {
      if (existsSync(join(p.dir, f))) cpSync(join(p.dir, f), join(to, f), { recursive: true });
    }
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

const read = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Manifest;

beforeAll(async () => {
  const build = await buildWorkspaces();
  if (build.code !== 0) console.warn(`tsc -b failed; publishing dist/ as it is\n${build.stdout}`);
  copy = copyWorkspace();
  pending = pendingChangesets(copy);
  registry = await startRegistry();
  output = (await release(registry, { root: copy })).published;
}, 10 * 60_000);

afterAll(async () => {
  await registry?.stop();
  if (copy) rmSync(copy, { recursive: true, force: true });
});

/** The packages the pending changesets bump by a major version. */
function askedForMajor(): Set<string> {
  const names = new Set<string>();
  for (const file of pending) {
    const front = /^---\n([\s\S]*?)\n---/.exec(readFileSync(join(repoRoot, '.changeset', file), 'utf8'))?.[1] ?? '';
    for (const m of front.matchAll(/^['"]?([^'":]+)['"]?:\s*major\s*$/gm)) names.add(m[1]!);
  }
  return names;
}

it('applies every pending changeset and writes the changelogs, leaving the repository as it was', () => {
  expect(pendingChangesets(copy)).toEqual([]);
  expect(pendingChangesets(repoRoot)).toEqual(pending);
  const majors = askedForMajor();
  for (const p of packages) {
    const before = read(join(p.dir, 'package.json')).version;
    const after = read(join(copy, relative(repoRoot, p.dir), 'package.json')).version;
    expect(semver.gte(after, before), p.name).toBe(true);
    // A peer dependency's minor release leaves its dependents' majors alone (their peer
    // ranges still admit it); only a changeset asks for a major.
    if (!majors.has(p.name)) expect(semver.major(after), `${p.name} ${before} → ${after}`).toBe(semver.major(before));
    if (after !== before) expect(readFileSync(join(copy, relative(repoRoot, p.dir), 'CHANGELOG.md'), 'utf8'), p.name).toContain(`## ${after}\n`);
  }
});

it('publishes every package at its new version with changeset publish, and every range between our packages admits it', async () => {
  expect(output).toContain('packages published successfully');
  const manifests = new Map<string, Manifest>();
  for (const p of packages) {
    const version = read(join(copy, relative(repoRoot, p.dir), 'package.json')).version;
    const res = await fetch(`${registry.url}/${p.name.replace('/', '%2f')}`);
    expect(res.status, p.name).toBe(200);
    const doc = (await res.json()) as { 'dist-tags': Record<string, string>; versions: Record<string, Manifest> };
    expect(doc['dist-tags']['latest'], p.name).toBe(version);
    manifests.set(p.name, doc.versions[version]!);
  }
  const faults: string[] = [];
  for (const m of manifests.values()) {
    for (const field of ['dependencies', 'peerDependencies', 'devDependencies'] as const) {
      for (const [dep, range] of Object.entries(m[field] ?? {})) {
        const target = manifests.get(dep);
        if (target !== undefined && !semver.satisfies(target.version, range)) faults.push(`${m.name} ${field} ${dep}@${range} excludes ${target.version}`);
      }
    }
  }
  expect(faults).toEqual([]);
});
