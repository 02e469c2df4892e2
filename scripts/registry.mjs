/**
 * A real npm registry for tests and local releases: Verdaccio on 127.0.0.1 with its own
 * storage and no uplink, so an install from it sees only what was put there.
 *
 *   const registry = await startRegistry();                        // { url, storage, token, stop }
 *   await publishWorkspaces(registry);                             // every non-private workspace package, packed by npm
 *   await mirrorDependencies(registry, ['@outflow/runner']);       // their third-party closure, from package-lock.json
 *   await exec('npm', ['install', '@outflow/runner'], { cwd, env: npmEnv(registry, { cache }) });
 *   await registry.stop();
 *
 * Nothing here runs a package's lifecycle scripts: workspace packages are packed with
 * `npm pack` (the tarball npm would publish) and every tarball is published through the
 * registry's HTTP API. Types: registry.d.mts.
 */
import { execFile, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import semver from 'semver';
import { workspacePackages as listWorkspaces } from './workspaces.mjs';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The built network guard; `guardedEnv` preloads it into the processes a test starts. */
export const networkGuard = join(repoRoot, 'packages', 'testing', 'dist', 'network-guard.js');

const USER = 'outflow';

/** Runs a command to its end; never throws (the exit code is in the result). */
export function exec(cmd, args, { cwd, env = process.env, timeout = 600_000 } = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, timeout, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr: err !== null && !stderr ? String(err) : stderr });
    });
  });
}

/** Throws with the command's output unless it exited with 0; returns the result. */
export function must(result, what) {
  if (result.code !== 0) throw new Error(`${what} exited with ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result;
}

/**
 * The environment without what the npm that started this process put there (`npm_*`: it
 * names the repository as the local prefix and would send an install into it) and without
 * the network guard's preload.
 */
export function cleanEnv(base = process.env) {
  const env = {};
  for (const [k, v] of Object.entries(base)) {
    if (k === 'NODE_OPTIONS' || k === 'OUTFLOW_NETWORK_GUARD_EXIT' || k.toLowerCase().startsWith('npm_')) continue;
    env[k] = v;
  }
  return env;
}

/**
 * The environment of a user's npm that knows only `registry`: no other registry, a cache of
 * its own (`cache`, a folder), the registry's token for publishing, and a proxy that refuses
 * every other address. The machine's ~/.npmrc still applies (its `nodedir` lets native
 * modules build offline).
 */
export function npmEnv(registry, { cache }) {
  const host = registry.url.replace(/^https?:/, '');
  return {
    ...cleanEnv(),
    npm_config_registry: `${registry.url}/`,
    npm_config_cache: cache,
    [`npm_config_${host}/:_authToken`]: registry.token,
    // Anything but the registry goes to a closed port: an install cannot quietly reach
    // another registry or a download site.
    npm_config_proxy: 'http://127.0.0.1:9',
    npm_config_https_proxy: 'http://127.0.0.1:9',
    npm_config_noproxy: new URL(registry.url).hostname,
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };
}

/** `env` with the network guard preloaded: any connection beyond loopback ends the process (exit 86). */
export function guardedEnv(env = cleanEnv()) {
  if (!existsSync(networkGuard)) throw new Error(`${networkGuard} is missing: build @outflow/testing first (npx tsc -b packages/testing)`);
  return { ...env, NODE_OPTIONS: `--import ${networkGuard}`, OUTFLOW_NETWORK_GUARD_EXIT: '1' };
}

/**
 * Starts Verdaccio on 127.0.0.1 on a free port, with no uplink and publishing open to the
 * user whose token it returns. `storage` (created if absent) keeps the packages and outlives
 * `stop()`; by default a temporary folder that `stop()` removes. The server runs in a child
 * process under the network guard, and ends with this process.
 */
export async function startRegistry({ storage } = {}) {
  const base = mkdtempSync(join(tmpdir(), 'outflow-registry-'));
  const store = storage ?? join(base, 'storage');
  mkdirSync(store, { recursive: true });
  writeFileSync(
    join(base, 'config.yaml'),
    [
      `storage: ${JSON.stringify(store)}`,
      `auth: { htpasswd: { file: ${JSON.stringify(join(base, 'htpasswd'))}, max_users: 10 } }`,
      'uplinks: {}',
      "packages: { '**': { access: $all, publish: $authenticated, unpublish: $authenticated } }",
      'publish: { allow_offline: true }',
      'max_body_size: 1gb',
      'web: { enable: false }',
      // Longer than any pause between our requests: a client reusing a connection the
      // server has just closed fails with "other side closed".
      'server: { keepAliveTimeout: 120 }',
      'log: { type: stdout, format: json, level: warn }',
      '',
    ].join('\n'),
  );

  const child = fork(join(repoRoot, 'scripts', 'registry-server.mjs'), [base], {
    cwd: base,
    env: existsSync(networkGuard) ? guardedEnv() : cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Verdaccio did not start within 60 s\n${output}`)), 60_000);
    child.once('message', (m) => (clearTimeout(timer), resolve(m.url)));
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`Verdaccio exited with ${code}\n${output}`))));
  });
  child.removeAllListeners('exit');
  child.unref();
  child.channel?.unref();
  child.stdout.unref?.();
  child.stderr.unref?.();

  const token = await login(url);
  let stopped;
  return {
    url,
    storage: store,
    token,
    log: () => output,
    stop() {
      stopped ??= new Promise((resolve) => {
        const done = () => {
          rmSync(base, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.ref();
        child.once('exit', done);
        child.kill('SIGTERM');
      });
      return stopped;
    },
  };
}

/**
 * A registry that is already running at `url` (a Verdaccio started by hand, say): signs up or
 * logs in the user `outflow` to get a publishing token. `stop()` leaves it running.
 */
export async function registryAt(url) {
  const base = url.replace(/\/+$/, '');
  return { url: base, storage: undefined, token: await login(base), log: () => '', stop: async () => {} };
}

async function login(url) {
  const res = await fetch(`${url}/-/user/org.couchdb.user:${USER}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: USER, password: 'outflow-local' }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || typeof body.token !== 'string') throw new Error(`could not sign up or log in to ${url} as ${USER}: ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

/**
 * Builds the workspace packages (`tsc -b`, all of them by default) under the network guard,
 * and returns tsc's result without throwing: a package that does not compile still has its
 * last dist/ (publishWorkspaces refuses one whose files are missing), and the type errors
 * are the typecheck's to report. Test files run side by side; a lock keeps two builds from
 * writing the same dist/ at once.
 */
export async function buildWorkspaces(dirs = publishablePackages().map((p) => p.dir)) {
  const lock = join(tmpdir(), 'outflow-build.lock');
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const holder = Number(readFileSafe(join(lock, 'pid')));
      if (holder > 0 && !alive(holder)) rmSync(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    return await exec(process.execPath, [tsc, '-b', ...dirs], { cwd: repoRoot, env: guardedEnv() });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function readFileSafe(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** The non-private workspace packages: `{ name, version, dir }` for each, `dir` absolute. */
export function publishablePackages() {
  return listWorkspaces(repoRoot)
    .map((p) => ({ dir: join(repoRoot, p.dir), pkg: JSON.parse(readFileSync(join(repoRoot, p.dir, 'package.json'), 'utf8')) }))
    .filter(({ pkg }) => pkg.private !== true)
    .map(({ dir, pkg }) => ({ name: pkg.name, version: pkg.version, dir }));
}

/**
 * Packs the non-private workspace packages with `npm pack` (or those named in `packages`),
 * checks that each tarball holds every file its `exports`, `types` and `bin` point at, and
 * publishes them. Returns `[{ name, version, dir, files, tarball }]` (`tarball`: the bytes).
 * Build first: this publishes dist/ as it is.
 */
export async function publishWorkspaces(registry, { packages } = {}) {
  const all = publishablePackages();
  const chosen = packages === undefined ? all : all.filter((p) => packages.includes(p.name));
  const unknown = (packages ?? []).filter((n) => !all.some((p) => p.name === n));
  if (unknown.length > 0) throw new Error(`not a publishable workspace package: ${unknown.join(', ')}`);

  const dest = mkdtempSync(join(tmpdir(), 'outflow-pack-'));
  try {
    const args = ['pack', '--json', '--pack-destination', dest, ...chosen.flatMap((p) => ['-w', relative(repoRoot, p.dir)])];
    const packed = JSON.parse(must(await exec('npm', args, { cwd: repoRoot, env: cleanEnv() }), 'npm pack').stdout);
    const published = [];
    for (const info of packed) {
      const bytes = readFileSync(join(dest, info.filename));
      const manifest = tarballManifest(bytes);
      const files = info.files.map((f) => f.path);
      const missing = declaredFiles(manifest).filter((f) => !files.includes(f));
      if (missing.length > 0) {
        throw new Error(`${manifest.name}: the tarball lacks ${missing.join(', ')}, which package.json points at (is it built? does "files" include it?)`);
      }
      await publishTarball(registry, manifest, bytes);
      published.push({ name: manifest.name, version: manifest.version, dir: chosen.find((p) => p.name === manifest.name)?.dir, files, tarball: bytes });
    }
    return published;
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
}

/** The files a package.json points at: every `exports` target, `types`, `main`, every `bin`. */
export function declaredFiles(pkg) {
  const targets = [];
  const walk = (t) => {
    if (typeof t === 'string') targets.push(t);
    else if (t !== null && typeof t === 'object') Object.values(t).forEach(walk);
  };
  walk(pkg.exports);
  for (const f of [pkg.types, pkg.main]) if (typeof f === 'string') targets.push(f);
  walk(typeof pkg.bin === 'string' ? [pkg.bin] : pkg.bin);
  return [...new Set(targets.filter((t) => !t.includes('*')).map((t) => t.replace(/^\.\//, '')))];
}

/**
 * Publishes into the registry every third-party package that the named `roots` (workspace
 * packages, or the repository's own dependencies) need on this platform: their dependency,
 * optional dependency and required peer closure, resolved in package-lock.json. Tarballs come
 * from npm's cache (checked against the lockfile's integrity), else from `npm pack
 * name@version` against the public registry. Returns `{ packages, bytes, fetched }`.
 */
export async function mirrorDependencies(registry, roots) {
  const wanted = dependencyClosure(roots);
  const fetched = [];
  const tarballs = new Map();
  const missing = [];
  for (const p of wanted) {
    const bytes = fromCache(p.integrity);
    if (bytes === undefined) missing.push(p);
    else tarballs.set(p.spec, bytes);
  }
  if (missing.length > 0) {
    const dest = mkdtempSync(join(tmpdir(), 'outflow-fetch-'));
    try {
      const specs = missing.map((p) => p.spec);
      const out = JSON.parse(must(await exec('npm', ['pack', '--json', '--pack-destination', dest, ...specs], { cwd: dest, env: cleanEnv() }), 'npm pack').stdout);
      for (const [i, info] of out.entries()) {
        const bytes = readFileSync(join(dest, info.filename));
        if (!matchesIntegrity(bytes, missing[i].integrity)) throw new Error(`${missing[i].spec} from the registry does not match package-lock.json's integrity`);
        tarballs.set(missing[i].spec, bytes);
        fetched.push(missing[i].spec);
      }
    } finally {
      rmSync(dest, { recursive: true, force: true });
    }
  }

  // One package's versions in ascending order, so `latest` ends at the highest; different
  // packages in parallel.
  const byName = new Map();
  for (const p of wanted) byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
  let bytes = 0;
  const queue = [...byName.values()];
  const worker = async () => {
    for (let versions = queue.shift(); versions !== undefined; versions = queue.shift()) {
      for (const p of versions.sort((a, b) => semver.compare(a.version, b.version))) {
        const tgz = tarballs.get(p.spec);
        bytes += tgz.length;
        await publishTarball(registry, tarballManifest(tgz), tgz);
      }
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  return { packages: wanted.map((p) => p.spec), bytes, fetched };
}

/**
 * `[{ name, version, integrity, spec }]`: the third-party packages `roots` need on this
 * platform, resolved in package-lock.json the way Node resolves them (the nearest
 * node_modules up the tree). Workspace packages are followed but not listed.
 */
export function dependencyClosure(roots) {
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')).packages;
  const libc = process.report?.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
  const fits = (list, value) => {
    if (!Array.isArray(list)) return true;
    if (list.includes(`!${value}`)) return false;
    const allowed = list.filter((x) => !x.startsWith('!'));
    return allowed.length === 0 || allowed.includes(value);
  };
  const resolve = (from, name) => {
    for (let loc = from; ; loc = parentLocation(loc)) {
      const key = `${loc === '' ? '' : `${loc}/`}node_modules/${name}`;
      if (lock[key] !== undefined) return key;
      if (loc === '') return undefined;
    }
  };

  // Workspace packages are read from their package.json, which may be ahead of the lockfile.
  const workspaces = new Map(publishablePackages().map((p) => [p.name, relative(repoRoot, p.dir)]));
  const manifestAt = (loc) => JSON.parse(readFileSync(join(repoRoot, loc, 'package.json'), 'utf8'));
  const seen = new Set();
  const found = new Map();
  const follow = (loc, entry) => {
    const optionalPeers = entry.peerDependenciesMeta ?? {};
    for (const dep of Object.keys(entry.dependencies ?? {})) edge(loc, dep, true);
    for (const dep of Object.keys(entry.optionalDependencies ?? {})) edge(loc, dep, false);
    for (const dep of Object.keys(entry.peerDependencies ?? {})) {
      if (optionalPeers[dep]?.optional !== true) edge(loc, dep, true);
    }
  };
  const edge = (from, name, required) => {
    const workspace = workspaces.get(name);
    const key = workspace ?? resolve(from, name);
    if (key === undefined) {
      if (required) throw new Error(`package-lock.json resolves no ${name} for ${from || 'the repository'}: run npm install`);
      return;
    }
    if (seen.has(key)) return;
    seen.add(key);
    if (workspace !== undefined) return follow(key, manifestAt(key));
    const entry = lock[key];
    if (entry.link) return follow(entry.resolved, manifestAt(entry.resolved));
    if (entry.inBundle) return;
    if (!fits(entry.os, process.platform) || !fits(entry.cpu, process.arch) || !fits(entry.libc, libc)) return;
    const pkg = entry.name ?? key.replace(/^.*node_modules\//, '');
    if (typeof entry.integrity !== 'string') throw new Error(`${key} has no integrity in package-lock.json`);
    found.set(`${pkg}@${entry.version}`, { name: pkg, version: entry.version, integrity: entry.integrity, spec: `${pkg}@${entry.version}` });
    follow(key, entry);
  };
  for (const root of roots) edge('', root, true);
  return [...found.values()].sort((a, b) => a.spec.localeCompare(b.spec));
}

function parentLocation(loc) {
  const i = loc.lastIndexOf('node_modules/');
  return i <= 0 ? '' : loc.slice(0, i - 1);
}

function fromCache(integrity) {
  const [alg, b64] = integrity.split(/\s+/)[0].split('-');
  const hex = Buffer.from(b64, 'base64').toString('hex');
  const file = join(process.env.npm_config_cache ?? join(homedir(), '.npm'), '_cacache', 'content-v2', alg, hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
  if (!existsSync(file)) return undefined;
  const bytes = readFileSync(file);
  return matchesIntegrity(bytes, integrity) ? bytes : undefined;
}

function matchesIntegrity(bytes, integrity) {
  return integrity.split(/\s+/).some((sri) => {
    const [alg, b64] = sri.split('-');
    return createHash(alg).update(bytes).digest('base64') === b64;
  });
}

/** The regular files of a .tgz: `[{ path, data }]`, paths as stored (`package/…`). */
export function tarEntries(tgz) {
  const tar = gunzipSync(tgz);
  const entries = [];
  let longName;
  for (let off = 0; off + 512 <= tar.length; ) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start, len) => header.subarray(start, start + len).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    const data = tar.subarray(off + 512, off + 512 + size);
    const path = longName ?? (field(345, 155) ? `${field(345, 155)}/${field(0, 100)}` : field(0, 100));
    longName = undefined;
    if (type === 'L') longName = data.toString('utf8').replace(/\0.*$/s, '');
    else if (type === 'x') longName = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))?.[1];
    else if (type === '0' || type === '') entries.push({ path, data });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}

/** The package.json inside a .tgz. */
export function tarballManifest(tgz) {
  const entry = tarEntries(tgz).find((e) => /^[^/]+\/package\.json$/.test(e.path));
  if (entry === undefined) throw new Error('the tarball holds no package.json');
  return JSON.parse(entry.data.toString('utf8'));
}

/** Publishes one tarball through the registry's HTTP API (what `npm publish` sends), tagged `latest`. */
export async function publishTarball(registry, manifest, tgz) {
  const { name, version } = manifest;
  const filename = `${name}-${version}.tgz`;
  const doc = {
    _id: name,
    name,
    description: manifest.description,
    'dist-tags': { latest: version },
    versions: {
      [version]: {
        ...manifest,
        _id: `${name}@${version}`,
        dist: {
          shasum: createHash('sha1').update(tgz).digest('hex'),
          integrity: `sha512-${createHash('sha512').update(tgz).digest('base64')}`,
          tarball: `${registry.url}/${name}/-/${basename(filename)}`,
        },
      },
    },
    access: null,
    _attachments: { [filename]: { content_type: 'application/octet-stream', data: tgz.toString('base64'), length: tgz.length } },
  };
  const body = JSON.stringify(doc);
  const put = () =>
    fetch(`${registry.url}/${name.replace('/', '%2f')}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${registry.token}` },
      body,
    });
  let res;
  try {
    res = await put();
  } catch {
    // A connection lost before the answer: once more; a 409 then says the first one landed.
    res = await put();
    if (res.status === 409) return;
  }
  if (!res.ok) throw new Error(`publishing ${name}@${version} failed: ${res.status} ${await res.text()}`);
}
