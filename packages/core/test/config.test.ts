import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import formats from 'ajv-formats';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  composeSchema,
  configHash,
  loadConfig,
  primaryKeyOf,
  type ConfigProblem,
  type LoadConfigOptions,
} from '../src/config/index.js';
import { clearSecrets, defineConnector, OutflowError, redact, Secret, Type, type AnyConnector } from '../src/index.js';

const files = defineConnector({
  name: 'fake-files',
  version: '1.0.0',
  coreVersion: '^1.0.0',
  config: Type.Object(
    {
      path: Type.String({ minLength: 1, description: 'The folder the files are read from.' }),
      delimiter: Type.String({ default: ',', description: 'The CSV field delimiter.' }),
    },
    { additionalProperties: false },
  ),
  source: {
    check: async () => {},
    discover: async () => ({ tables: [] }),
    read: async function* () {},
  },
});

const crm = defineConnector({
  name: 'fake-crm',
  version: '1.0.0',
  coreVersion: '^1.0.0',
  config: Type.Object(
    {
      accessToken: Secret({ pattern: '^tok-', description: 'A private app token, starting with tok-.' }),
      tier: Type.Union([Type.Literal('free'), Type.Literal('pro')], { default: 'free', description: 'The account tier.' }),
      baseUrl: Type.Optional(Type.String({ format: 'uri', description: 'The API base URL.' })),
    },
    { additionalProperties: false },
  ),
  destination: {
    check: async () => {},
    discover: async () => ({ objects: [] }),
    capabilities: () => ({ operations: ['upsert'], maxBatchSize: 10, rateLimits: [], concurrency: 1, idempotency: 'match' }),
    write: async (_ctx, _object, ops) => ops.map(() => ({ ok: true as const })),
  },
});

const fakes: Record<string, AnyConnector> = { 'fake-files': files, 'fake-crm': crm };
const fakeLoader: LoadConfigOptions['loadConnector'] = async (spec) => {
  const connector = fakes[spec];
  if (connector === undefined) {
    throw new OutflowError('OUTFLOW_CONNECTOR_NOT_FOUND', `connector "${spec}" is not installed`);
  }
  return connector;
};

const root = mkdtempSync(join(tmpdir(), 'outflow-config-'));
let counter = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => clearSecrets());

/** Writes `text` as outflow.yaml in a fresh folder and returns its path. */
function writeConfig(text: string): string {
  const dir = join(root, `case-${++counter}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'outflow.yaml');
  writeFileSync(file, text);
  return file;
}

function load(text: string, env: NodeJS.ProcessEnv = {}) {
  const file = writeConfig(text);
  return { file, loaded: loadConfig(file, { env, loadConnector: fakeLoader }) };
}

/** The OutflowError a promise must reject with. */
async function rejection(promise: Promise<unknown>): Promise<OutflowError> {
  const err = await promise.then(
    () => expect.unreachable('the promise resolved'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutflowError);
  return err as OutflowError;
}

/** Loads a config that must fail, and returns the error and its problems. */
async function failing(text: string, env: NodeJS.ProcessEnv = {}) {
  const { file, loaded } = load(text, env);
  const err = await rejection(loaded);
  return { file, err, problems: (err.details['problems'] ?? []) as ConfigProblem[] };
}

const GOOD = `version: 1
connections:
  files:
    connector: fake-files
    config:
      path: ./data
  crm:
    connector: fake-crm
    config:
      accessToken: tok-abcdefgh
syncs:
  - name: users-to-crm
    from: { connection: files, table: users, primaryKey: id }
    to:
      connection: crm
      object: contacts
      matchKey: { email: EMAIL }
    mappings: { email: EMAIL, firstname: FIRST_NAME }
`;

describe('loadConfig', () => {
  it('loads a valid file with core and connector defaults applied, frozen', async () => {
    const { file, loaded } = load(GOOD);
    const { config, connectors, dir, file: abs } = await loaded;
    expect(abs).toBe(file);
    expect(dir).toBe(join(file, '..'));
    const sync = config.syncs[0]!;
    expect(sync.to.mode).toBe('upsert');
    expect(sync.to.deletes).toBe('ignore');
    expect(sync.capture).toBe('diff');
    expect(config.connections['crm']!.config).toEqual({ accessToken: 'tok-abcdefgh', tier: 'free' });
    expect(config.connections['files']!.config).toEqual({ path: './data', delimiter: ',' });
    expect(connectors.get('crm')).toBe(crm);
    expect(connectors.get('files')).toBe(files);
    expect(Object.isFrozen(sync.to)).toBe(true);
    expect(() => {
      (sync.to as { mode: string }).mode = 'mirror';
    }).toThrow(TypeError);
  });

  it('applies connector defaults when a connection has no config at all', async () => {
    const text = GOOD.replace('    config:\n      path: ./data\n', '    config: { path: ./data }\n').replace(
      / {2}crm:\n[\s\S]*?syncs:/,
      '  crm:\n    connector: fake-crm\n    config: { accessToken: tok-abcdefgh }\n  plain:\n    connector: fake-files\n    config: { path: x }\nsyncs:',
    );
    const { config } = await load(text).loaded;
    expect(config.connections['plain']!.config).toEqual({ path: 'x', delimiter: ',' });
  });

  it('resolves ${env:…} references: whole values, embedded, defaults and escapes', async () => {
    const text = GOOD.replace('path: ./data', 'path: ${env:DATA_ROOT}/exports/${env:DATASET}')
      .replace('accessToken: tok-abcdefgh', 'accessToken: ${env:CRM_TOKEN}\n      baseUrl: ${env:CRM_URL:-https://crm.example.test/v3}')
      .replace('object: contacts', () => 'object: $${env:NOT_RESOLVED}');
    const { config } = await load(text, { DATA_ROOT: '/srv/data', DATASET: 'users', CRM_TOKEN: 'tok-from-env-1234' }).loaded;
    expect(config.connections['files']!.config).toMatchObject({ path: '/srv/data/exports/users' });
    expect(config.connections['crm']!.config).toMatchObject({
      accessToken: 'tok-from-env-1234',
      baseUrl: 'https://crm.example.test/v3',
    });
    expect(config.syncs[0]!.to.object).toBe('${env:NOT_RESOLVED}');
    expect(redact('Authorization: Bearer tok-from-env-1234')).toBe('Authorization: Bearer [REDACTED]');
  });

  it('reports an unset environment variable at its line', async () => {
    const text = GOOD.replace('accessToken: tok-abcdefgh', 'accessToken: ${env:CRM_TOKEN}');
    const { file, err, problems } = await failing(text);
    expect(err.code).toBe('OUTFLOW_CONFIG_INVALID');
    expect(err.message).toContain(`${file}:10:20 /connections/crm/config/accessToken: environment variable CRM_TOKEN is not set`);
    // The unresolved reference is not also reported as failing the token's pattern.
    expect(problems).toHaveLength(1);
  });

  it('reports every mistake in a file, each with its line, path and what was expected', async () => {
    const text = [
      'version: 1', // 1
      'connections:', // 2
      '  files:', // 3
      '    connector: fake-files', // 4
      '    config: {}', // 5
      '  crm:', // 6
      '    connector: fake-crm', // 7
      '    config:', // 8
      '      accessToken: tok-abcdefgh', // 9
      '      tier: gold', // 10
      'syncs:', // 11
      '  - name: first', // 12
      '    from:', // 13
      '      connection: files', // 14
      '      tabel: users', // 15
      '      primaryKey: id', // 16
      '    to:', // 17
      '      connection: crm', // 18
      '      object: contacts', // 19
      '      mode: upsrt', // 20
      '    schedule: { every: 15 minutes }', // 21
      '  - name: first', // 22
      '    from: { connection: warehouse, table: t, primaryKey: [] }', // 23
      '    to: { connection: files, object: x }', // 24
      '',
    ].join('\n');
    const { file, err, problems } = await failing(text);
    expect(err.code).toBe('OUTFLOW_CONFIG_INVALID');
    const lines = err.message.split('\n').slice(1);
    expect(lines).toEqual([
      `${file}:5:13 /connections/files/config: missing required property "path"`,
      `${file}:10:13 /connections/crm/config/tier: must be one of free, pro (got "gold")`,
      `${file}:14:7 /syncs/0/from: must name what to read: one of table, sql or file`,
      `${file}:15:7 /syncs/0/from: unknown property "tabel" (did you mean "table"?)`,
      `${file}:20:13 /syncs/0/to/mode: must be one of upsert, update, insert, mirror, event (got "upsrt")`,
      `${file}:21:24 /syncs/0/schedule/every: must be an interval such as 30s, 15m, 6h or 1d (got "15 minutes")`,
      `${file}:22:11 /syncs/1/name: duplicate sync name "first" (also used by /syncs/0); sync names must be unique`,
      `${file}:23:25 /syncs/1/from/connection: no connection named "warehouse" (connections: files, crm)`,
      `${file}:23:58 /syncs/1/from/primaryKey: must not be empty`,
      `${file}:24:23 /syncs/1/to/connection: connection "files" (connector "fake-files") cannot be written to: its connector provides no destination`,
    ]);
    expect(err.message.split('\n')[0]).toBe(`${file} has 10 problems:`);
    expect(problems).toHaveLength(10);
    expect(problems[4]).toEqual({
      file,
      line: 20,
      column: 13,
      path: '/syncs/0/to/mode',
      message: 'must be one of upsert, update, insert, mirror, event (got "upsrt")',
    });
    expect(problems.find((p) => p.line === 24)?.code).toBe('OUTFLOW_CONNECTOR_ROLE');
  });

  it('reports a missing required connector key, a wrong type and an unknown top-level property', async () => {
    const text = GOOD.replace('      accessToken: tok-abcdefgh\n', '      tier: pro\n')
      .replace('primaryKey: id', 'primaryKey: 42')
      .concat('extras: true\n');
    const { file, err } = await failing(text);
    expect(err.message).toContain(`${file}:10:7 /connections/crm/config: missing required property "accessToken"`);
    expect(err.message).toContain(`${file}:13:58 /syncs/0/from/primaryKey: must be a string or a list (got 42)`);
    expect(err.message).toContain(`${file}:19:1 /: unknown property "extras" (expected one of version, state, ledger, alerts, connections, syncs)`);
  });

  it('refuses a stream sync on a connector with no stream, a schedule on it, and mirror with deletes', async () => {
    const text = GOOD.replace('    from: {', '    capture: stream\n    schedule: { every: 5m }\n    from: {').replace(
      '      object: contacts',
      '      object: contacts\n      mode: mirror\n      deletes: clear',
    );
    const { file, problems } = await failing(text);
    expect(problems.map((p) => `${p.line} ${p.path} ${p.code ?? ''}`)).toEqual([
      '14 /syncs/0/schedule ',
      '15 /syncs/0/from/connection OUTFLOW_CONNECTOR_ROLE',
      '20 /syncs/0/to/deletes ',
    ]);
    expect(problems[1]!.message).toBe(
      'connection "files" (connector "fake-files") cannot be streamed from: its connector provides no stream; use capture: diff',
    );
    expect(problems[2]!.message).toContain('mode mirror always deletes the records Outflow wrote');
    expect(problems[0]!.file).toBe(file);
  });

  it("gives a connection's maxWait its default, and refuses one a timer cannot wait", async () => {
    const { config } = await load(GOOD).loaded;
    expect(config.connections['crm']!.maxWait).toBe('5m');
    const { file, problems } = await failing(GOOD.replace('    connector: fake-crm\n', '    connector: fake-crm\n    maxWait: 2d\n'));
    expect(problems.map((p) => `${p.file}:${p.line} ${p.path} ${p.message}`)).toEqual([`${file}:9 /connections/crm/maxWait must be at most 1d (got "2d")`]);
  });

  it('reports a connector that cannot be loaded at its connector line', async () => {
    const text = GOOD.replace('connector: fake-crm', 'connector: hubspot');
    const { file, err, problems } = await failing(text);
    expect(err.message).toContain(`${file}:8:16 /connections/crm/connector: connector "hubspot" is not installed`);
    expect(problems[0]!.code).toBe('OUTFLOW_CONNECTOR_NOT_FOUND');
  });

  it('reports a YAML syntax error with its line and column', async () => {
    const file = writeConfig('version: 1\nconnections:\n  crm: { connector: fake-crm\nsyncs: []\n');
    const err = await rejection(loadConfig(file, { env: {}, loadConnector: fakeLoader }));
    expect(err.code).toBe('OUTFLOW_CONFIG_PARSE');
    expect(err.message).toContain(
      `${file}:4:1 Flow map in block collection must be sufficiently indented and end with a }`,
    );
  });

  it('reports a missing file', async () => {
    const err = await rejection(loadConfig(join(root, 'nope', 'outflow.yaml')));
    expect(err.code).toBe('OUTFLOW_CONFIG_NOT_FOUND');
  });

  it('never prints a secret, even a wrongly typed or malformed one, and masks it after loading', async () => {
    const secret = 'sk-live-0123456789';
    const malformed = GOOD.replace('accessToken: tok-abcdefgh', `accessToken: ${secret}\n      tier: ${secret}`);
    const first = await failing(malformed);
    expect(first.problems.map((p) => p.path)).toEqual(['/connections/crm/config/accessToken', '/connections/crm/config/tier']);
    expect(first.err.message).toContain('/connections/crm/config/accessToken: must be a private app token, starting with tok-');
    expect(first.err.message).toContain('tier: must be one of free, pro (got "[REDACTED]")');
    expect(first.err.message).not.toContain(secret);
    expect(JSON.stringify(first.err)).not.toContain(secret);

    const wrongType = await failing(GOOD.replace('accessToken: tok-abcdefgh', 'accessToken: 98765432109'));
    expect(wrongType.err.message.split('\n')[1]).toBe(`${wrongType.file}:10:20 /connections/crm/config/accessToken: must be a string`);
    expect(wrongType.err.message).not.toContain('98765432109');

    await load(GOOD).loaded;
    expect(redact('token=tok-abcdefgh')).toBe('token=[REDACTED]');
  });

  it('rejects a connection name that is not a plain name', async () => {
    const { file, err } = await failing(GOOD.replace('  files:', '  my files:').replace('connection: files', 'connection: my files'));
    expect(err.message).toContain(`${file}:3:3 /connections: "my files" is not an allowed name`);
  });
});

describe('composeSchema', () => {
  it('is valid JSON Schema that validates connector config by connector', async () => {
    const schema = composeSchema(new Map<string, AnyConnector>([['fake-files', files], ['fake-crm', crm]]));
    const ajv = new Ajv({ allErrors: true });
    formats.default(ajv);
    ajv.addKeyword('secret');
    expect(ajv.validateSchema(schema)).toBe(true);
    const validate = ajv.compile(schema);

    const { config } = await load(GOOD).loaded;
    const plain = JSON.parse(JSON.stringify(config)) as { connections: Record<string, { config: Record<string, unknown> }> };
    expect(validate(plain)).toBe(true);
    delete plain.connections['crm']!.config['accessToken'];
    expect(validate(plain)).toBe(false);
    expect(validate.errors).toContainEqual(
      expect.objectContaining({ instancePath: '/connections/crm/config', params: { missingProperty: 'accessToken' } }),
    );
  });
});

describe('configHash and primaryKeyOf', () => {
  it('changes with what is delivered and nothing else', async () => {
    const base = (await load(GOOD).loaded).config.syncs[0]!;
    const same = (await load(GOOD.replace('primaryKey: id', 'primaryKey: [id]').replace('{ email: EMAIL, firstname: FIRST_NAME }', '{ firstname: FIRST_NAME, email: EMAIL }').concat('    delivery: { batchSize: 5 }\n')).loaded).config.syncs[0]!;
    const remapped = (await load(GOOD.replace('firstname: FIRST_NAME', 'firstname: GIVEN_NAME')).loaded).config.syncs[0]!;
    expect(configHash(base)).toMatch(/^[0-9a-f]{64}$/);
    expect(configHash(same)).toBe(configHash(base));
    expect(configHash(remapped)).not.toBe(configHash(base));
    expect(primaryKeyOf(base)).toEqual(['id']);
    expect(primaryKeyOf(same)).toEqual(['id']);
  });
});
