#!/usr/bin/env node
/**
 * `npm run release:local`: a release rehearsed against a local npm registry. Applies the
 * pending changesets (`changeset version`: versions, ranges between our packages,
 * changelogs), builds, and publishes every non-private package with `changeset publish`.
 *
 * The registry is `OUTFLOW_REGISTRY` when set (a running one; nothing else is put there),
 * else a Verdaccio started here with no uplink, into which the third-party packages ours
 * need are mirrored, so that `npm install --registry <url> @outflow/runner` works from it
 * alone; it keeps running until Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec, mirrorDependencies, must, npmEnv, registryAt, repoRoot, startRegistry, publishablePackages } from './registry.mjs';

const changesetBin = join(repoRoot, 'node_modules', '@changesets', 'cli', 'bin.js');

/** The changeset files waiting in `root`/.changeset. */
export function pendingChangesets(root = repoRoot) {
  return readdirSync(join(root, '.changeset')).filter((f) => f.endsWith('.md') && f !== 'README.md');
}

/**
 * Versions (when changesets are pending) and publishes the workspace packages of `root` to
 * `registry` with the changesets CLI. Does not build: dist/ is published as it is. Returns
 * `{ versioned, published }` (the changeset files applied; changeset publish's output).
 */
export async function release(registry, { root = repoRoot } = {}) {
  const cache = mkdtempSync(join(tmpdir(), 'outflow-release-cache-'));
  try {
    const env = npmEnv(registry, { cache });
    const versioned = pendingChangesets(root);
    if (versioned.length > 0) must(await exec(process.execPath, [changesetBin, 'version'], { cwd: root, env }), 'changeset version');
    const published = must(await exec(process.execPath, [changesetBin, 'publish', '--no-git-tag'], { cwd: root, env }), 'changeset publish');
    return { versioned, published: published.stdout + published.stderr };
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}

async function main() {
  const given = process.env.OUTFLOW_REGISTRY;
  const registry = given ? await registryAt(given) : await startRegistry();
  try {
    const pending = pendingChangesets();
    if (pending.length > 0) {
      console.log(`Applying ${pending.length} changeset(s): changeset version`);
      must(await exec(process.execPath, [changesetBin, 'version'], { cwd: repoRoot }), 'changeset version');
    } else console.log('No changesets pending: publishing the versions as they are');
    console.log('Building: npm run build');
    const build = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('npm run build failed');

    const { published } = await release(registry);
    console.log(published.trim());
    if (!given) {
      const roots = publishablePackages().map((p) => p.name);
      const started = Date.now();
      const mirror = await mirrorDependencies(registry, roots);
      console.log(`Mirrored ${mirror.packages.length} third-party packages (${(mirror.bytes / 1e6).toFixed(1)} MB) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    if (pending.length > 0) console.log('\nThe versions changed: run npm install to bring package-lock.json in step, and commit the changelogs.');
  } catch (err) {
    await registry.stop();
    throw err;
  }

  console.log(`\nRegistry: ${registry.url}\n  npm install --registry ${registry.url} @outflow/runner @outflow/connector-hubspot`);
  if (given) return;
  console.log('Keeping it running; Ctrl-C stops it.');
  const stop = () => registry.stop().then(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  setInterval(() => {}, 1 << 30);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
