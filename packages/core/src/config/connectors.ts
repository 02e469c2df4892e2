import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import semver from 'semver';
import type { AnyConnector } from '../contracts.js';
import { describeError, OutflowError } from '../errors.js';
import { CORE_VERSION } from '../version.js';

/** True when a `connector:` value is a file-system path rather than a package. */
export function isLocalConnectorSpec(spec: string): boolean {
  return spec === '.' || spec === '..' || /^\.\.?[\\/]/.test(spec) || isAbsolute(spec);
}

/**
 * The packages a `connector:` value may name, in the order they are tried: a bare name
 * `hubspot` is first the package `@outflow/connector-hubspot`, then a package of that very
 * name (`outflow-connector-intercom`); a scoped name or a name with a `/` is a package name
 * as written; a path (`./x`, `../x`, absolute) is returned unchanged.
 */
export function connectorPackages(spec: string): string[] {
  if (isLocalConnectorSpec(spec) || spec.startsWith('@') || spec.includes('/')) return [spec];
  return [`@outflow/connector-${spec}`, spec];
}

/**
 * Loads the connector named by `spec` (as written in outflow.yaml) and checks its manifest.
 * Each of {@link connectorPackages} is resolved from `fromDir` (the config file's folder)
 * and its parents' node_modules, as Node resolves an import there, then from core's own
 * location, so that connectors installed beside the runner are found too; the first found is
 * loaded. Paths are relative to `fromDir`. Throws `OUTFLOW_CONNECTOR_NOT_FOUND`,
 * `OUTFLOW_CONNECTOR_INVALID` or `OUTFLOW_CONNECTOR_VERSION`.
 */
export async function loadConnector(spec: string, fromDir: string): Promise<AnyConnector> {
  const local = isLocalConnectorSpec(spec);
  const candidates = connectorPackages(spec);
  let found: { entry: string; target: string } | undefined;
  if (local) {
    const entry = resolveLocal(resolve(fromDir, spec));
    if (entry !== undefined) found = { entry, target: spec };
  } else {
    for (const target of candidates) {
      const entry = resolvePackage(target, fromDir);
      if (entry !== undefined) {
        found = { entry, target };
        break;
      }
    }
  }

  if (found === undefined) {
    const details = { connector: spec, ...(local ? { path: resolve(fromDir, spec) } : { packages: candidates }) };
    // A name that already reads as a package name is suggested as it is.
    const suggest = candidates.length > 1 && !spec.includes('connector') ? candidates[0] : candidates.at(-1);
    const message = local
      ? `connector "${spec}" was not found at ${resolve(fromDir, spec)}`
      : `connector "${spec}" is not installed: looked for ${candidates.join(' and ')} in ${join(fromDir, 'node_modules')} and the folders above it, and beside @outflow/core. ` +
        `Run: npm install ${suggest}`;
    throw new OutflowError('OUTFLOW_CONNECTOR_NOT_FOUND', message, { details });
  }
  const { entry, target } = found;
  const label = local || target === spec ? `connector "${spec}"` : `connector "${spec}" (${target})`;
  const details = { connector: spec, ...(local ? { path: resolve(fromDir, spec) } : { package: target }) };

  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(entry).href)) as Record<string, unknown>;
  } catch (err) {
    throw new OutflowError('OUTFLOW_CONNECTOR_NOT_FOUND', `${label} could not be loaded from ${entry}: ${describeError(err)}`, {
      details,
      cause: err,
    });
  }

  const manifest = pickManifest(mod);
  const peer = corePeerRange(entry);
  const faults = manifestFaults(manifest, peer !== undefined);
  if (faults.length > 0) {
    throw new OutflowError(
      'OUTFLOW_CONNECTOR_INVALID',
      `${label} does not export a valid manifest: ${faults.join('; ')}. Export the result of defineConnector() as the module's default export.`,
      { details },
    );
  }
  const connector = manifest as AnyConnector;
  // The package's peer range on @outflow/core is what npm installs by; the manifest's
  // coreVersion stands in for connectors loaded from a path without a package.json.
  const range = peer ?? connector.coreVersion!;
  if (!semver.satisfies(CORE_VERSION, range, { includePrerelease: true })) {
    const major = semver.major(CORE_VERSION);
    const pkg = local ? spec : target;
    throw new OutflowError(
      'OUTFLOW_CONNECTOR_VERSION',
      `${label} ${connector.version} requires @outflow/core ${range}, but this runner has @outflow/core ${CORE_VERSION}. ` +
        `Install a version of ${pkg} built for core ${major}.x, or a runner whose core version is in ${range}.`,
      { details: { ...details, coreVersion: range, core: CORE_VERSION } },
    );
  }
  return connector;
}

function pickManifest(mod: Record<string, unknown>): unknown {
  let candidate = mod['default'] ?? mod['connector'];
  // A CommonJS module imported from ESM arrives as { default: module.exports }.
  if (isRecord(candidate) && !('name' in candidate) && isRecord(candidate['default'])) candidate = candidate['default'];
  return candidate;
}

/**
 * The `peerDependencies["@outflow/core"]` range of the package a connector entry file belongs
 * to (the nearest package.json above it), if it declares one.
 */
function corePeerRange(entry: string): string | undefined {
  for (let dir = dirname(entry); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { peerDependencies?: Record<string, unknown> };
        const range = pkg.peerDependencies?.['@outflow/core'];
        return typeof range === 'string' && semver.validRange(range) !== null ? range : undefined;
      } catch {
        return undefined;
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

function manifestFaults(m: unknown, hasPeerRange: boolean): string[] {
  if (!isRecord(m)) return ['no default export (or named `connector` export) holding a manifest object'];
  const faults: string[] = [];
  for (const key of ['name', 'version', ...(hasPeerRange ? [] : ['coreVersion'])]) {
    if (typeof m[key] !== 'string' || m[key] === '') {
      faults.push(key === 'coreVersion' ? `"coreVersion" must be a non-empty string (or the package must declare a peer dependency on @outflow/core)` : `"${key}" must be a non-empty string`);
    }
  }
  if (typeof m['coreVersion'] === 'string' && m['coreVersion'] !== '' && semver.validRange(m['coreVersion']) === null) {
    faults.push(`"coreVersion" ${JSON.stringify(m['coreVersion'])} is not a semver range`);
  }
  if (!isRecord(m['config'])) faults.push('"config" must be a JSON Schema object');
  if (!isRecord(m['source']) && !isRecord(m['stream']) && !isRecord(m['destination'])) {
    faults.push('it provides no source, stream or destination');
  }
  return faults;
}

function resolvePackage(name: string, fromDir: string): string | undefined {
  const bases = [join(fromDir, 'noop.js'), fileURLToPath(import.meta.url)];
  for (const base of bases) {
    try {
      return createRequire(base).resolve(name);
    } catch (err) {
      // require.resolve ignores the "import" condition, so an ESM-only exports map is
      // followed by hand.
      if ((err as NodeJS.ErrnoException).code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') {
        const dir = findPackageDir(name, dirname(base));
        const entry = dir === undefined ? undefined : packageEntry(dir);
        if (entry !== undefined) return entry;
      }
    }
  }
  return undefined;
}

function resolveLocal(path: string): string | undefined {
  if (existsSync(path) && statSync(path).isDirectory()) {
    const entry = packageEntry(path);
    if (entry !== undefined) return entry;
  }
  try {
    return createRequire(join(dirname(path), 'noop.js')).resolve(path);
  } catch {
    return undefined;
  }
}

function findPackageDir(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The ESM entry of a package folder: its exports map ("import", "node", "default"), then main, then index.js. */
function packageEntry(dir: string): string | undefined {
  const pkgFile = join(dir, 'package.json');
  let pkg: Record<string, unknown> = {};
  if (existsSync(pkgFile)) {
    try {
      pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }
  const exportsField = pkg['exports'];
  const root = isRecord(exportsField) && Object.keys(exportsField).some((k) => k.startsWith('.')) ? exportsField['.'] : exportsField;
  const target = pickExport(root) ?? (typeof pkg['main'] === 'string' ? pkg['main'] : undefined);
  for (const file of target === undefined ? ['index.js', 'index.mjs'] : [target, `${target}.js`, join(target, 'index.js')]) {
    const full = resolve(dir, file);
    if (existsSync(full) && statSync(full).isFile()) return full;
  }
  return undefined;
}

function pickExport(target: unknown): string | undefined {
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) {
    for (const t of target) {
      const found = pickExport(t);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (isRecord(target)) {
    for (const [condition, value] of Object.entries(target)) {
      if (condition === 'import' || condition === 'node' || condition === 'default') {
        const found = pickExport(value);
        if (found !== undefined) return found;
      }
    }
  }
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
