/**
 * Loading connectors named in outflow.yaml: short names and package names, resolved from the
 * config folder's node_modules and the folders above it, and the checks on what is found.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectorPackages, loadConfig, loadConnector, type ConfigProblem } from '../src/config/index.js';
import { CORE_VERSION, OutflowError } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'outflow-connectors-'));
let counter = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The OutflowError a promise must reject with. */
async function rejection(promise: Promise<unknown>): Promise<OutflowError> {
  const err = await promise.then(
    () => expect.unreachable('the promise resolved'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutflowError);
  return err as OutflowError;
}

const manifest = (extra: string, name = 'fake') => `export default {
  name: '${name}', version: '0.3.0', coreVersion: '^1.0.0',
  config: { type: 'object', properties: { url: { type: 'string' } } },
  destination: { check() {}, discover() {}, capabilities() {}, write() {} },
  ${extra}
};
`;

/** A fresh project folder. */
function folder(): string {
  const dir = join(root, `project-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Installs a package named `name` into `dir/node_modules`, its entry holding `index`. */
function install(dir: string, name: string, index: string, peer?: string): string {
  const pkg = join(dir, 'node_modules', ...name.split('/'));
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({
      name,
      version: '0.3.0',
      type: 'module',
      exports: { '.': { import: './index.js' } },
      ...(peer ? { peerDependencies: { '@outflow/core': peer } } : {}),
    }),
  );
  writeFileSync(join(pkg, 'index.js'), index);
  return dir;
}

/** A project folder with `node_modules/@outflow/connector-fake` holding `index`. */
function project(index: string, peer?: string): string {
  return install(folder(), '@outflow/connector-fake', index, peer);
}

describe('connector names', () => {
  it('tries @outflow/connector-<name> and then the name itself for a bare name; takes package names and paths as written', () => {
    expect(connectorPackages('hubspot')).toEqual(['@outflow/connector-hubspot', 'hubspot']);
    expect(connectorPackages('outflow-connector-intercom')).toEqual(['@outflow/connector-outflow-connector-intercom', 'outflow-connector-intercom']);
    expect(connectorPackages('@acme/outflow-erp')).toEqual(['@acme/outflow-erp']);
    expect(connectorPackages('outflow-erp/connector')).toEqual(['outflow-erp/connector']);
    expect(connectorPackages('./my-connector')).toEqual(['./my-connector']);
    expect(connectorPackages('/opt/connectors/x')).toEqual(['/opt/connectors/x']);
  });

  it('loads @outflow/connector-<name> for a short name', async () => {
    const connector = await loadConnector('fake', project(manifest('')));
    expect(connector).toMatchObject({ name: 'fake', version: '0.3.0' });
    expect(connector.destination).toBeDefined();
  });

  it('loads an unscoped package by its own name', async () => {
    const dir = install(folder(), 'outflow-connector-intercom', manifest('', 'intercom'), '^1.0.0');
    expect((await loadConnector('outflow-connector-intercom', dir)).name).toBe('intercom');
  });

  it('loads a scoped package of another scope as written', async () => {
    const dir = install(folder(), '@acme/erp', manifest('', 'erp'));
    expect((await loadConnector('@acme/erp', dir)).name).toBe('erp');
  });

  it('prefers @outflow/connector-<name>, found anywhere up the tree, to a package named <name>', async () => {
    const top = install(folder(), '@outflow/connector-crm', manifest('', 'outflow-crm'));
    const configDir = join(top, 'config');
    install(configDir, 'crm', manifest('', 'someone-elses-crm'));
    expect((await loadConnector('crm', configDir)).name).toBe('outflow-crm');
    // With no @outflow/connector-crm anywhere, the name as given.
    expect((await loadConnector('crm', install(folder(), 'crm', manifest('', 'plain-crm')))).name).toBe('plain-crm');
  });

  it("resolves from the config folder's node_modules and every folder above it, the nearest first", async () => {
    const top = install(folder(), 'outflow-connector-acme', manifest('', 'acme-top'));
    const deep = join(top, 'configs', 'prod');
    mkdirSync(deep, { recursive: true });
    expect((await loadConnector('outflow-connector-acme', deep)).name).toBe('acme-top');
    install(join(top, 'configs'), 'outflow-connector-acme', manifest('', 'acme-nearer'));
    expect((await loadConnector('outflow-connector-acme', deep)).name).toBe('acme-nearer');
  });

  it('loads a named `connector` export from a local path', async () => {
    const dir = folder();
    mkdirSync(join(dir, 'my-connector'), { recursive: true });
    writeFileSync(join(dir, 'my-connector', 'package.json'), JSON.stringify({ type: 'module', main: 'main.js' }));
    writeFileSync(join(dir, 'my-connector', 'main.js'), manifest('').replace('export default', 'export const connector ='));
    const connector = await loadConnector('./my-connector', dir);
    expect(connector.name).toBe('fake');
  });
});

describe('connectors that cannot be loaded', () => {
  it('names the packages looked for, where, and the npm install command', async () => {
    const dir = project(manifest(''));
    const err = await rejection(loadConnector('nothing-here', dir));
    expect(err.code).toBe('OUTFLOW_CONNECTOR_NOT_FOUND');
    expect(err.message).toBe(
      `connector "nothing-here" is not installed: looked for @outflow/connector-nothing-here and nothing-here in ${join(dir, 'node_modules')} ` +
        'and the folders above it, and beside @outflow/core. Run: npm install @outflow/connector-nothing-here',
    );
    // A name that already reads as a package's is suggested as written.
    expect((await rejection(loadConnector('outflow-connector-nothing', dir))).message).toMatch(/Run: npm install outflow-connector-nothing$/);
    expect((await rejection(loadConnector('@acme/nothing', dir))).message).toMatch(/looked for @acme\/nothing in .* Run: npm install @acme\/nothing$/);
  });

  it('reports a missing local path', async () => {
    const err = await rejection(loadConnector('./absent', root));
    expect(err).toMatchObject({ code: 'OUTFLOW_CONNECTOR_NOT_FOUND', message: `connector "./absent" was not found at ${join(root, 'absent')}` });
  });

  it('refuses an installed connector built for another core, naming the required and the installed versions', async () => {
    const err = await rejection(loadConnector('fake', project(manifest('').replace("'^1.0.0'", "'^2.0.0'"))));
    expect(err.code).toBe('OUTFLOW_CONNECTOR_VERSION');
    expect(err.message).toContain(`connector "fake" (@outflow/connector-fake) 0.3.0 requires @outflow/core ^2.0.0, but this runner has @outflow/core ${CORE_VERSION}`);
    expect(err.details).toMatchObject({ package: '@outflow/connector-fake', coreVersion: '^2.0.0', core: CORE_VERSION });

    const unscoped = install(folder(), 'outflow-connector-old', manifest('', 'old'), '^0.9.0');
    const old = await rejection(loadConnector('outflow-connector-old', unscoped));
    expect(old.message).toContain(`connector "outflow-connector-old" 0.3.0 requires @outflow/core ^0.9.0, but this runner has @outflow/core ${CORE_VERSION}`);
  });

  it("checks a package's peer range on @outflow/core, which needs no coreVersion beside it", async () => {
    const noRange = manifest('').replace("coreVersion: '^1.0.0',", '');
    expect((await loadConnector('fake', project(noRange, '^1.0.0'))).name).toBe('fake');
    // The peer range is what npm installed by: it wins over a stale manifest field.
    const err = await rejection(loadConnector('fake', project(manifest(''), '^3.0.0')));
    expect(err.code).toBe('OUTFLOW_CONNECTOR_VERSION');
    expect(err.message).toContain(`requires @outflow/core ^3.0.0, but this runner has @outflow/core ${CORE_VERSION}`);
    expect((await rejection(loadConnector('fake', project(noRange)))).message).toContain('"coreVersion" must be a non-empty string');
  });

  it('refuses a package with no valid manifest', async () => {
    const err = await rejection(loadConnector('fake', project("export const helper = 1;\nexport default { name: 'fake', version: '0.3.0' };\n")));
    expect(err.code).toBe('OUTFLOW_CONNECTOR_INVALID');
    expect(err.message).toContain('"coreVersion" must be a non-empty string');
    expect(err.message).toContain('"config" must be a JSON Schema object');
    expect(err.message).toContain('it provides no source, stream or destination');
  });

  it('loads connectors for a config file without help', async () => {
    const dir = project(manifest(''));
    writeFileSync(
      join(dir, 'outflow.yaml'),
      'version: 1\nconnections:\n  out: { connector: fake, config: { url: 5 } }\n  other: { connector: absent-one }\nsyncs: []\n',
    );
    const err = await rejection(loadConfig(join(dir, 'outflow.yaml'), { env: {} }));
    const problems = err.details['problems'] as ConfigProblem[];
    expect(problems.map((p) => [p.line, p.path, p.code])).toEqual([
      [3, '/connections/out/config/url', undefined],
      [4, '/connections/other/connector', 'OUTFLOW_CONNECTOR_NOT_FOUND'],
    ]);
    expect(problems[0]!.message).toBe('must be a string (got 5)');
    expect(problems[1]!.message).toContain('npm install @outflow/connector-absent-one');
  });
});

it('reads its version from its package.json, which changesets bumps', () => {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
  expect(CORE_VERSION).toBe(pkg.version);
});
