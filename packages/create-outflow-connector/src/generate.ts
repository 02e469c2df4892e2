import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveNames, resolveRoles, resolveWrites, UsageError, type Names, type Role, type Writes } from './names.js';
import { render } from './render.js';
import { NODE_ENGINE, VERSIONS } from './versions.js';

/** Shipped beside dist/ and src/ alike. */
const TEMPLATES = fileURLToPath(new URL('../templates/', import.meta.url));
const MONOREPO_NAME = 'outflow-monorepo';

export interface GenerateOptions {
  /** The connector or package name, as typed. */
  name: string;
  /** destination, source, stream; several allowed (default: destination). */
  roles?: readonly string[];
  /**
   * How the destination writes: `batch` (the default), many operations in one request; or
   * `each`, one request per record, for an API with no batch write. Refused without a destination.
   */
  writes?: string;
  /** Where to write; see {@link defaultDir}. */
  dir?: string;
  /** What relative paths are resolved against; `process.cwd()` by default. */
  cwd?: string;
}

export interface Generated {
  dir: string;
  names: Names;
  roles: Role[];
  /** How the destination writes; undefined without one. */
  writes?: Writes;
  /** The Outflow repository the package was written into as a workspace package, if any. */
  monorepo?: string;
  /** Every file written, relative to the repository root in a monorepo, else to `dir`. */
  files: string[];
}

/** A folder's package.json name, or undefined. */
function packageNameAt(dir: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name;
  } catch {
    return undefined;
  }
}

/** The Outflow repository `dir` is inside, searching upwards, if any. */
export function findMonorepo(dir: string): string | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (packageNameAt(d) === MONOREPO_NAME) return d;
    if (dirname(d) === d) return undefined;
  }
}

/**
 * The repository root when `dir` is a workspace package folder of the Outflow monorepo:
 * directly under its `connectors/`. Anywhere else (another repository's connectors/, a
 * temporary folder) the package is a standalone one.
 */
export function monorepoFor(dir: string): string | undefined {
  const parent = dirname(resolve(dir));
  if (basename(parent) !== 'connectors') return undefined;
  const root = dirname(parent);
  return packageNameAt(root) === MONOREPO_NAME ? root : undefined;
}

/** `connectors/<name>` inside the Outflow repository, `./<package name without scope>` elsewhere. */
export function defaultDir(names: Names, cwd: string): string {
  const repo = findMonorepo(cwd);
  if (repo !== undefined) return join(repo, 'connectors', names.connector);
  return resolve(cwd, names.packageName.replace(/^@[^/]+\//, ''));
}

function ensureEmpty(dir: string): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new UsageError(`${dir} exists and is not a folder`);
  if (readdirSync(dir).length > 0) throw new UsageError(`${dir} is not empty: choose another --dir, or empty it first (nothing was written)`);
}

function walk(root: string, sub = ''): string[] {
  const dir = join(root, sub);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(root, join(sub, e.name)) : [join(sub, e.name)]));
}

function versionOf(repo: string, dir: string): string {
  return `^${(JSON.parse(readFileSync(join(repo, dir, 'package.json'), 'utf8')) as { version: string }).version}`;
}

function packageJson(names: Names, roles: Role[], repo: string | undefined): unknown {
  const what = roles.join(', ').replace(/, ([^,]*)$/, ' and $1');
  const core = repo === undefined ? VERSIONS['@outflow/core'] : versionOf(repo, 'packages/core');
  const testing = repo === undefined ? VERSIONS['@outflow/testing'] : versionOf(repo, 'packages/testing');
  const entry = (path: string) => ({ types: `./dist/${path}.d.ts`, default: `./dist/${path}.js` });
  return {
    name: names.packageName,
    version: '0.0.0',
    description: `An Outflow connector for ${names.pascal}: ${what}, with an emulator of its API.`,
    license: 'Apache-2.0',
    keywords: ['outflow', 'outflow-connector', 'reverse-etl'],
    type: 'module',
    engines: { node: NODE_ENGINE },
    exports: { '.': entry('index'), './emulator': entry('emulator/index') },
    types: './dist/index.d.ts',
    files: ['dist/**/*.js', 'dist/**/*.d.ts', 'README.md', 'LICENSE'],
    scripts:
      repo === undefined
        ? { build: 'tsc -p tsconfig.build.json', typecheck: 'tsc -p tsconfig.json', test: 'vitest run', prepack: 'npm run build' }
        : { build: 'tsc -b', typecheck: 'tsc -p tsconfig.json --noEmit --composite false --incremental false --declaration false --declarationMap false' },
    peerDependencies: { '@outflow/core': core },
    devDependencies:
      repo === undefined
        ? { '@outflow/core': core, '@outflow/testing': testing, '@types/node': VERSIONS['@types/node'], typescript: VERSIONS.typescript, vitest: VERSIONS.vitest }
        : { '@outflow/core': core, '@outflow/testing': testing },
    publishConfig: { access: 'public' },
  };
}

const COMPILER_OPTIONS = {
  target: 'ES2022',
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  lib: ['ES2023'],
  types: ['node'],
  strict: true,
  skipLibCheck: true,
  isolatedModules: true,
  verbatimModuleSyntax: true,
  forceConsistentCasingInFileNames: true,
};

function tsconfigs(repo: string | undefined): Record<string, unknown> {
  if (repo !== undefined) {
    return {
      'tsconfig.json': {
        extends: '../../tsconfig.base.json',
        compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/.tsbuildinfo' },
        include: ['src'],
        references: [{ path: '../../packages/core' }],
      },
    };
  }
  return {
    // The editor's and `npm run typecheck`'s view: sources and tests, nothing emitted.
    'tsconfig.json': { compilerOptions: { ...COMPILER_OPTIONS, noEmit: true }, include: ['src', 'test', 'vitest.config.ts'] },
    'tsconfig.build.json': { extends: './tsconfig.json', compilerOptions: { noEmit: false, declaration: true, rootDir: 'src', outDir: 'dist' }, include: ['src'] },
  };
}

function changeset(names: Names, roles: Role[]): string {
  return `---\n'${names.packageName}': minor\n---\n\nNew connector for ${names.pascal} (${roles.join(', ')}), scaffolded with create-outflow-connector.\n`;
}

/** Config for `npx @changesets/cli version` and `publish` in a package of its own. */
const CHANGESET_CONFIG = {
  $schema: 'https://unpkg.com/@changesets/config@3.1.1/schema.json',
  changelog: '@changesets/cli/changelog',
  commit: false,
  access: 'public',
  baseBranch: 'main',
};

/**
 * Writes a new connector package: nothing is written when the name, the roles or the
 * folder are refused ({@link UsageError}).
 */
export function generate(options: GenerateOptions): Generated {
  const cwd = options.cwd ?? process.cwd();
  const roles = resolveRoles(options.roles ?? []);
  const writes = roles.includes('destination') ? resolveWrites(options.writes) : undefined;
  if (writes === undefined && options.writes !== undefined) throw new UsageError('--writes is about a destination: add --role destination, or leave --writes out');
  const draft = resolveNames(options.name);
  const dir = options.dir === undefined ? defaultDir(draft, cwd) : resolve(cwd, options.dir);
  const repo = monorepoFor(dir);
  const names = repo === undefined ? draft : resolveNames(options.name, { monorepo: true });
  ensureEmpty(dir);
  const changesetFile = repo === undefined ? undefined : join(repo, '.changeset', `connector-${names.connector}.md`);
  if (changesetFile !== undefined && existsSync(changesetFile)) throw new UsageError(`${changesetFile} exists already (nothing was written)`);

  const written: string[] = [];
  const write = (path: string, text: string) => {
    const file = join(dir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    written.push(file);
  };
  const tokens = {
    __Name__: names.pascal,
    __name__: names.connector,
    __NAME__: names.env,
    __package__: names.packageName,
    __connector__: names.configName,
    __description__: describe(names, roles),
  };
  // `fetch`: a role sends its requests through client.ts's send() (a source, a stream, a
  // batch destination); a per-record destination calls the API through call() instead.
  const fetches = roles.some((r) => r !== 'destination') || writes === 'batch';
  const flags = [...roles, repo === undefined ? 'standalone' : 'monorepo', ...(writes === undefined ? [] : [writes]), ...(fetches ? ['fetch'] : [])];
  const parts = ['base', ...roles.flatMap((r) => (r === 'destination' ? [r, `destination-${writes}`] : [r]))];
  for (const part of parts) {
    for (const path of walk(join(TEMPLATES, part))) {
      if (repo !== undefined && (path === 'vitest.config.ts' || path === 'gitignore')) continue;
      const target = path === 'gitignore' ? '.gitignore' : path;
      write(target, render(readFileSync(join(TEMPLATES, part, path), 'utf8'), flags, tokens));
    }
  }
  write('package.json', `${JSON.stringify(packageJson(names, roles, repo), null, 2)}\n`);
  for (const [path, config] of Object.entries(tsconfigs(repo))) write(path, `${JSON.stringify(config, null, 2)}\n`);
  if (repo === undefined || changesetFile === undefined) {
    write('.changeset/config.json', `${JSON.stringify(CHANGESET_CONFIG, null, 2)}\n`);
    write(`.changeset/${names.connector}.md`, changeset(names, roles));
  } else {
    // The repository's changesets folder: released with the other packages.
    writeFileSync(changesetFile, changeset(names, roles));
    written.push(changesetFile);
    copyFileSync(join(repo, 'LICENSE'), join(dir, 'LICENSE'));
    written.push(join(dir, 'LICENSE'));
  }
  return { dir, names, roles, ...(writes === undefined ? {} : { writes }), ...(repo === undefined ? {} : { monorepo: repo }), files: written.map((f) => relative(repo ?? dir, f)).sort() };
}

function describe(names: Names, roles: Role[]): string {
  const parts = roles.map((r) => ({ source: 'reads tables', stream: 'follows their changes', destination: 'writes records' })[r]);
  return `${parts.join(', ').replace(/, ([^,]*)$/, ' and $1').replace(/^./, (c) => c.toUpperCase())} through the ${names.pascal} API.`;
}
