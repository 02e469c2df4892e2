#!/usr/bin/env node
// The monorepo's packages, found from the workspaces' package.json files, so that a package
// added under packages/, connectors/ or apps/ needs no hand edits to the build and test
// configuration:
//   - vitest.config.ts imports workspacePackages() for its aliases (package entry points
//     to src/) and its test projects (one per package with a test/ folder);
//   - `node scripts/workspaces.mjs --write` (run by `npm run build` and `npm run typecheck`)
//     rewrites the references of tsconfig.json and the paths of tsconfig.test.json;
//   - `node scripts/workspaces.mjs --check` exits 1 when either file is out of date.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * @typedef {object} WorkspacePackage
 * @property {string} name     the package name, e.g. `@outflow/connector-hubspot`
 * @property {string} dir      its folder relative to the repository root, e.g. `connectors/hubspot`
 * @property {string} project  its vitest project name: `connector-<folder>` under connectors/, else the folder name
 * @property {Record<string, string>} entries  each exported specifier mapped to its TypeScript source, relative to the root
 * @property {boolean} hasTests  whether it has a test/ folder
 * @property {boolean} typescript  whether it builds with tsc (has a tsconfig.json)
 */

/** @returns {WorkspacePackage[]} every workspace package, in folder order */
export function workspacePackages(root = repoRoot) {
  const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const found = [];
  for (const pattern of rootPkg.workspaces ?? []) {
    if (!pattern.endsWith('/*')) throw new Error(`scripts/workspaces.mjs: unsupported workspaces pattern ${pattern}`);
    const parent = pattern.slice(0, -2);
    if (!existsSync(join(root, parent))) continue;
    for (const entry of readdirSync(join(root, parent), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const dir = `${parent}/${entry.name}`;
      const pkgFile = join(root, dir, 'package.json');
      if (!existsSync(pkgFile)) continue;
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
      found.push({
        name: pkg.name,
        dir,
        project: parent === 'connectors' ? `connector-${entry.name}` : entry.name,
        entries: sourceEntries(root, dir, pkg.exports),
        hasTests: existsSync(join(root, dir, 'test')),
        typescript: existsSync(join(root, dir, 'tsconfig.json')),
      });
    }
  }
  return found;
}

/** Maps `exports` targets under dist/ (`./dist/x/index.js`) to their sources (`src/x/index.ts`). */
function sourceEntries(root, dir, exportsField) {
  const entries = {};
  if (exportsField === undefined || exportsField === null) return entries;
  const map = typeof exportsField === 'string' || !Object.keys(exportsField).some((k) => k.startsWith('.')) ? { '.': exportsField } : exportsField;
  for (const [subpath, target] of Object.entries(map)) {
    if (subpath.includes('*')) continue;
    const js = runtimeTarget(target);
    const match = js === undefined ? null : /^\.\/dist\/(.+)\.js$/.exec(js);
    if (match === null) continue;
    const source = `${dir}/src/${match[1]}.ts`;
    if (!existsSync(join(root, source))) continue;
    entries[subpath === '.' ? '' : subpath.slice(1)] = source;
  }
  return entries;
}

function runtimeTarget(target) {
  if (typeof target === 'string') return target;
  if (target === null || typeof target !== 'object') return undefined;
  for (const condition of ['import', 'node', 'default']) {
    if (condition in target) {
      const found = runtimeTarget(target[condition]);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Every exported specifier (`@outflow/core/emulator-kit`) with its source path relative to the root. */
export function sourceAliases(packages = workspacePackages()) {
  const aliases = [];
  for (const pkg of packages) {
    for (const [sub, source] of Object.entries(pkg.entries)) aliases.push([`${pkg.name}${sub}`, source]);
  }
  // Longest first, so `@outflow/core/emulator-kit` wins over its prefix `@outflow/core`.
  return aliases.sort((a, b) => b[0].length - a[0].length || a[0].localeCompare(b[0]));
}

function expectedTsconfig(packages) {
  return {
    files: [],
    references: packages.filter((p) => p.typescript).map((p) => ({ path: p.dir })),
  };
}

function expectedTestPaths(packages) {
  const paths = {};
  for (const [specifier, source] of sourceAliases(packages).sort((a, b) => a[0].localeCompare(b[0]))) paths[specifier] = [`./${source}`];
  return paths;
}

function generated(root) {
  const packages = workspacePackages(root);
  const tsconfigFile = join(root, 'tsconfig.json');
  const testFile = join(root, 'tsconfig.test.json');
  const tsconfig = `${JSON.stringify({ ...JSON.parse(readFileSync(tsconfigFile, 'utf8')), ...expectedTsconfig(packages) }, null, 2)}\n`
    // One reference per line, as written by hand.
    .replace(/\{\n\s+"path": ("[^"]*")\n\s+\}/g, '{ "path": $1 }');
  const testConfig = JSON.parse(readFileSync(testFile, 'utf8'));
  testConfig.compilerOptions = { ...testConfig.compilerOptions, paths: expectedTestPaths(packages) };
  return [
    [tsconfigFile, tsconfig],
    [testFile, `${JSON.stringify(testConfig, null, 2)}\n`],
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const mode = process.argv[2];
  if (mode !== '--write' && mode !== '--check') {
    console.error('usage: node scripts/workspaces.mjs --write | --check');
    process.exit(2);
  }
  const stale = [];
  for (const [file, text] of generated(repoRoot)) {
    if (readFileSync(file, 'utf8') === text) continue;
    stale.push(relative(repoRoot, file));
    if (mode === '--write') writeFileSync(file, text);
  }
  if (mode === '--check' && stale.length > 0) {
    console.error(`${stale.join(' and ')} out of date with the workspace packages: run node scripts/workspaces.mjs --write`);
    process.exit(1);
  }
  if (mode === '--write' && stale.length > 0) console.log(`scripts/workspaces.mjs: updated ${stale.join(', ')}`);
}
