import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveNames, run, VERSIONS, type CliIo } from '../src/index.js';
import { render } from '../src/render.js';

const repo = join(import.meta.dirname, '..', '..', '..');
let scratch: string;
// Made when the tests start, not when the file is only listed.
beforeAll(() => void (scratch = mkdtempSync(join(tmpdir(), 'create-outflow-connector-'))));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let n = 0;
/** A fresh folder under the scratch folder, outside any repository. */
const fresh = () => join(scratch, `case-${++n}`);

/** Runs the CLI in-process, as `create-outflow-connector <argv>` in `cwd`, never asking. */
async function cli(argv: string[], cwd: string = scratch): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), cwd, interactive: false };
  const code = await run(argv, io);
  return { code, out, err };
}

function files(dir: string, sub = ''): string[] {
  return readdirSync(join(dir, sub), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(dir, join(sub, e.name)) : [join(sub, e.name)]))
    .sort();
}

const read = (dir: string, path: string) => readFileSync(join(dir, path), 'utf8');
const json = (dir: string, path: string) => JSON.parse(read(dir, path)) as Record<string, any>;

describe('a standalone package, per role', () => {
  const common = [
    '.changeset/acme.md',
    '.changeset/config.json',
    '.gitignore',
    'README.md',
    'package.json',
    'src/client.ts',
    'src/config.ts',
    'src/emulator/api.ts',
    'src/emulator/index.ts',
    'src/index.ts',
    'tsconfig.build.json',
    'tsconfig.json',
    'vitest.config.ts',
  ];
  const cases: { roles: string[]; writes?: string; extra: string[] }[] = [
    { roles: ['destination'], extra: ['src/destination.ts', 'src/emulator/records.ts', 'test/destination.test.ts'] },
    // One request per record: the emulator gets tests of its own.
    { roles: ['destination'], writes: 'each', extra: ['src/destination.ts', 'src/emulator/records.ts', 'test/destination.test.ts', 'test/emulator.test.ts'] },
    {
      roles: ['destination', 'stream'],
      writes: 'each',
      extra: ['src/destination.ts', 'src/emulator/records.ts', 'src/emulator/tables.ts', 'src/source.ts', 'src/stream.ts', 'test/destination.test.ts', 'test/emulator.test.ts', 'test/source.test.ts', 'test/stream.test.ts'],
    },
    { roles: ['source'], extra: ['src/emulator/tables.ts', 'src/source.ts', 'test/source.test.ts'] },
    // A stream comes with the source its reconciling diff reads.
    { roles: ['stream'], extra: ['src/emulator/tables.ts', 'src/source.ts', 'src/stream.ts', 'test/source.test.ts', 'test/stream.test.ts'] },
    {
      roles: ['destination,source', 'stream'],
      extra: ['src/destination.ts', 'src/emulator/records.ts', 'src/emulator/tables.ts', 'src/source.ts', 'src/stream.ts', 'test/destination.test.ts', 'test/source.test.ts', 'test/stream.test.ts'],
    },
  ];

  for (const { roles, writes, extra } of cases) {
    const flags = [...roles.flatMap((r) => ['--role', r]), ...(writes === undefined ? [] : ['--writes', writes])];
    it(`${flags.join(' ')} writes the package, its skeletons, emulator, tests, README and changeset`, async () => {
      const dir = fresh();
      const { code, out, err } = await cli(['acme', '--dir', dir, ...flags]);
      expect(err).toBe('');
      expect(code).toBe(0);
      expect(files(dir)).toEqual([...common, ...extra].sort());
      expect(out).toContain('npm install');
      expect(out).toContain('npm test');

      // Every template token and #if directive rendered away.
      for (const file of files(dir)) {
        const text = read(dir, file);
        expect(text, file).not.toMatch(/__[A-Za-z]+__/);
        expect(text, file).not.toMatch(/#(if|endif)\b/);
      }

      const pkg = json(dir, 'package.json');
      expect(pkg['name']).toBe('outflow-connector-acme');
      expect(pkg['type']).toBe('module');
      expect(Object.keys(pkg['exports']['.'])).toEqual(['types', 'default']);
      expect(pkg['exports']['./emulator']).toEqual({ types: './dist/emulator/index.d.ts', default: './dist/emulator/index.js' });
      expect(pkg['files']).toEqual(['dist/**/*.js', 'dist/**/*.d.ts', 'README.md', 'LICENSE']);
      expect(pkg['engines']).toEqual({ node: '>=20' });
      expect(pkg['peerDependencies']).toEqual({ '@outflow/core': VERSIONS['@outflow/core'] });
      expect(pkg['devDependencies']).toEqual({ ...VERSIONS });
      expect(Object.keys(pkg['scripts'])).toEqual(expect.arrayContaining(['build', 'test', 'typecheck']));

      const index = read(dir, 'src/index.ts');
      const chosen = new Set([...roles.flatMap((r) => r.split(',')), ...(roles.some((r) => r.includes('stream')) ? ['source'] : [])]);
      for (const role of ['source', 'stream', 'destination']) {
        expect(index.includes(`import { ${role} } from './${role}.js';`), `${role} in src/index.ts`).toBe(chosen.has(role));
      }
      expect(index).toContain("name: 'acme'");
      // The credential is declared secret the way core marks it.
      expect(read(dir, 'src/config.ts')).toMatch(/token: Secret\(/);
      expect(read(dir, 'src/config.ts').includes('pageSize')).toBe(chosen.has('source'));
      expect(read(dir, 'vitest.config.ts')).toContain('@outflow/testing/vitest-setup');
      expect(read(dir, 'README.md')).toContain('connector: outflow-connector-acme');
      expect(read(dir, '.changeset/acme.md')).toMatch(/^---\n'outflow-connector-acme': minor\n---\n/);

      if (!chosen.has('destination')) return;
      // A per-record destination calls the API through core's budgetedFetch and writes with
      // writeEach; a batch one sends one request per batch. Reads keep their own send().
      const destination = read(dir, 'src/destination.ts');
      const client = read(dir, 'src/client.ts');
      expect(destination.includes('writeEach(ops')).toBe(writes === 'each');
      expect(destination).toContain(writes === 'each' ? "idempotency: 'match'" : "idempotency: 'key'");
      expect(destination).toContain("budget: 'connector'");
      expect(client.includes('budgetedFetch(ctx')).toBe(writes === 'each');
      expect(client.includes('export function send(')).toBe(writes !== 'each' || chosen.has('source'));
      expect(read(dir, 'src/emulator/records.ts').includes('new RecordTable')).toBe(writes === 'each');
      expect(read(dir, 'README.md').includes('One request per record')).toBe(writes === 'each');
    });
  }

  it('--writes is refused without a destination, and an unknown value is refused, with exit 2', async () => {
    expect(await cli(['acme', '--role', 'source', '--writes', 'each', '--dir', fresh()])).toMatchObject({ code: 2, err: expect.stringContaining('--writes is about a destination') });
    expect(await cli(['acme', '--writes', 'bulk', '--dir', fresh()])).toMatchObject({ code: 2, err: expect.stringContaining('unknown --writes "bulk"') });
  });
});

describe('templates', () => {
  it('keep a block when one alternative holds, each flag of it present or, with !, absent', () => {
    const text = ['a', '// #if each&!fetch', 'each only', '// #endif', '// #if each&fetch|batch', 'mixed or batch', '// #endif', '// #if !each', 'not each', '// #endif', 'z'].join('\n');
    expect(render(text, ['each'], {})).toBe('a\neach only\nz');
    expect(render(text, ['each', 'fetch'], {})).toBe('a\nmixed or batch\nz');
    expect(render(text, ['batch', 'fetch'], {})).toBe('a\nmixed or batch\nnot each\nz');
  });
});

describe('names', () => {
  it('makes outflow-connector-<name> of a short name and keeps a full or scoped one', () => {
    expect(resolveNames('acme-crm')).toMatchObject({ connector: 'acme-crm', packageName: 'outflow-connector-acme-crm', configName: 'outflow-connector-acme-crm', pascal: 'AcmeCrm' });
    expect(resolveNames('outflow-connector-acme')).toMatchObject({ connector: 'acme', packageName: 'outflow-connector-acme' });
    expect(resolveNames('@acme/outflow-connector-crm')).toMatchObject({ connector: 'crm', packageName: '@acme/outflow-connector-crm', configName: '@acme/outflow-connector-crm' });
    expect(resolveNames('acme', { monorepo: true })).toMatchObject({ packageName: '@outflow/connector-acme', configName: 'acme' });
  });

  it('writes a scoped package into a folder named without the scope', async () => {
    const { code } = await cli(['@acme/outflow-connector-crm'], scratch);
    expect(code).toBe(0);
    expect(json(join(scratch, 'outflow-connector-crm'), 'package.json')['name']).toBe('@acme/outflow-connector-crm');
  });

  for (const bad of ['Acme', '1acme', 'acme_crm', 'acme--crm', 'acme-', 'outflow-connector-Acme', '@Acme/crm', '@acme', 'acme crm']) {
    it(`refuses "${bad}" with exit 2, saying what a name may hold, and writes nothing`, async () => {
      const cwd = fresh();
      mkdirSync(cwd);
      const { code, out, err } = await cli([bad, '--yes'], cwd);
      expect(code).toBe(2);
      expect(out).toBe('');
      expect(err).toMatch(/is not a valid (connector|scoped package) name/);
      expect(readdirSync(cwd)).toEqual([]);
    });
  }
});

describe('the command line', () => {
  it('--help describes the name, every flag and the exit codes, and exits 0', async () => {
    const { code, out } = await cli(['--help']);
    expect(code).toBe(0);
    for (const word of ['npm create outflow-connector <name>', '--role', 'destination, source or stream', '--writes', 'batch', 'each', '--dir', '--yes', '--help', 'Exit codes']) expect(out).toContain(word);
  });

  it('refuses a missing name, an unknown role and an unknown flag with exit 2', async () => {
    expect(await cli(['--yes'])).toMatchObject({ code: 2, err: expect.stringContaining('a connector name is required') });
    expect(await cli(['acme', '--role', 'sink', '--dir', fresh()])).toMatchObject({ code: 2, err: expect.stringContaining('unknown role "sink"') });
    expect(await cli(['acme', '--force'])).toMatchObject({ code: 2, err: expect.stringContaining("Unknown option '--force'") });
  });

  it('refuses to write into a folder that is not empty, and leaves it as it was', async () => {
    const dir = fresh();
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const { code, err } = await cli(['acme', '--dir', dir, '--yes']);
    expect(code).toBe(2);
    expect(err).toContain('is not empty');
    expect(readdirSync(dir)).toEqual(['notes.txt']);
  });

  it('writes into an empty folder that exists', async () => {
    const dir = fresh();
    mkdirSync(dir);
    expect((await cli(['acme', '--dir', dir])).code).toBe(0);
    expect(existsSync(join(dir, 'src', 'destination.ts'))).toBe(true);
  });
});

describe('inside the Outflow repository', () => {
  /** A stand-in for the repository: its root package.json, LICENSE, core and testing. */
  function fakeRepo(): string {
    const root = fresh();
    for (const [path, text] of Object.entries({
      'package.json': JSON.stringify({ name: 'outflow-monorepo', private: true, workspaces: ['packages/*', 'connectors/*'] }),
      LICENSE: 'the licence',
      'packages/core/package.json': JSON.stringify({ name: '@outflow/core', version: '1.2.0' }),
      'packages/testing/package.json': JSON.stringify({ name: '@outflow/testing', version: '1.1.0' }),
      '.changeset/README.md': 'changesets',
    })) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    mkdirSync(join(root, 'connectors'));
    return root;
  }

  it('connectors/<name> becomes a workspace package with the repository tsconfig, licence and a root changeset', async () => {
    const root = fakeRepo();
    const { code, out } = await cli(['acme', '--dir', 'connectors/acme'], root);
    expect(code).toBe(0);
    const dir = join(root, 'connectors', 'acme');
    const pkg = json(dir, 'package.json');
    expect(pkg['name']).toBe('@outflow/connector-acme');
    expect(pkg['peerDependencies']).toEqual({ '@outflow/core': '^1.2.0' });
    expect(pkg['devDependencies']).toEqual({ '@outflow/core': '^1.2.0', '@outflow/testing': '^1.1.0' });
    expect(pkg['scripts']['test']).toBeUndefined();
    expect(json(dir, 'tsconfig.json')).toEqual({
      extends: '../../tsconfig.base.json',
      compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/.tsbuildinfo' },
      include: ['src'],
      references: [{ path: '../../packages/core' }],
    });
    expect(read(dir, 'LICENSE')).toBe('the licence');
    for (const standalone of ['vitest.config.ts', '.gitignore', 'tsconfig.build.json', '.changeset']) expect(existsSync(join(dir, standalone)), standalone).toBe(false);
    expect(read(root, '.changeset/connector-acme.md')).toMatch(/^---\n'@outflow\/connector-acme': minor\n---\n/);
    expect(read(dir, 'README.md')).toContain('connector: acme');
    expect(read(dir, 'README.md')).toContain('npx vitest run --project connector-acme');
    expect(out).toContain('npm install');
    expect(out).toContain('npx vitest run --project connector-acme');
  });

  it('writes to connectors/<name> by default when run inside the repository', async () => {
    const root = fakeRepo();
    mkdirSync(join(root, 'packages', 'core', 'src'));
    expect((await cli(['acme-crm', '--yes'], join(root, 'packages', 'core', 'src'))).code).toBe(0);
    expect(json(join(root, 'connectors', 'acme-crm'), 'package.json')['name']).toBe('@outflow/connector-acme-crm');
  });

  it('a connectors/ folder anywhere else gets a standalone package', async () => {
    const elsewhere = fresh();
    mkdirSync(join(elsewhere, 'connectors'), { recursive: true });
    writeFileSync(join(elsewhere, 'package.json'), JSON.stringify({ name: 'some-other-monorepo' }));
    expect((await cli(['acme', '--dir', 'connectors/acme'], elsewhere)).code).toBe(0);
    const dir = join(elsewhere, 'connectors', 'acme');
    expect(json(dir, 'package.json')['name']).toBe('outflow-connector-acme');
    expect(json(dir, 'tsconfig.json')['extends']).toBeUndefined();
    expect(existsSync(join(dir, 'vitest.config.ts'))).toBe(true);
  });
});

it("depends on the versions of Outflow and of the tools this repository uses", () => {
  const root = json(repo, 'package.json');
  for (const tool of ['vitest', 'typescript', '@types/node'] as const) expect(VERSIONS[tool], tool).toBe(root['devDependencies'][tool]);
  for (const [name, dir] of [['@outflow/core', 'packages/core'], ['@outflow/testing', 'packages/testing']] as const) {
    const version = json(join(repo, dir), 'package.json')['version'] as string;
    // The version as it is now: a generated emulator may use what the last release added.
    expect(VERSIONS[name], name).toBe(`^${version}`);
  }
});
