import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, type ConfigProblem, type LoadConfigOptions } from '../src/config/index.js';
import { defineConnector, OutflowError, Type, type AnyConnector } from '../src/index.js';

const warehouse = defineConnector({
  name: 'fake-warehouse',
  version: '1.0.0',
  coreVersion: '^1.0.0',
  config: Type.Object({}, { additionalProperties: false }),
  source: { check: async () => {}, discover: async () => ({ tables: [] }), read: async function* () {} },
});
const chat = defineConnector({
  name: 'fake-chat',
  version: '1.0.0',
  coreVersion: '^1.0.0',
  config: Type.Object({}, { additionalProperties: false }),
  destination: {
    check: async () => {},
    discover: async () => ({ objects: [] }),
    capabilities: () => ({ operations: ['event'], maxBatchSize: 1, rateLimits: [], concurrency: 1, idempotency: 'none' }),
    write: async (_ctx, _object, ops) => ops.map(() => ({ ok: true as const })),
  },
});
const fakes: Record<string, AnyConnector> = { 'fake-warehouse': warehouse, 'fake-chat': chat };
const loadConnector: LoadConfigOptions['loadConnector'] = async (spec) => fakes[spec]!;

const dir = mkdtempSync(join(tmpdir(), 'outflow-events-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function configWith(to: string, extra = ''): string {
  return `version: 1
connections:
  pg: { connector: fake-warehouse }
  slack: { connector: fake-chat }
syncs:
  - name: big-orders
    from: { connection: pg, table: orders, primaryKey: id }
${extra}    to:
      connection: slack
      object: "#alerts"
      mode: event
${to}`;
}

async function problems(text: string): Promise<{ file: string; problems: ConfigProblem[]; message: string }> {
  const file = join(dir, `outflow-${++n}.yaml`);
  writeFileSync(file, text);
  const err = await loadConfig(file, { env: {}, loadConnector }).then(
    () => expect.unreachable('the config loaded'),
    (e: unknown) => e as OutflowError,
  );
  expect(err).toBeInstanceOf(OutflowError);
  expect(err.code).toBe('OUTFLOW_CONFIG_INVALID');
  return { file, problems: err.details['problems'] as ConfigProblem[], message: err.message };
}

describe('event mode in outflow.yaml', () => {
  it('loads triggers with conditions, named fields, objects and payload templates', async () => {
    const file = join(dir, 'good.yaml');
    writeFileSync(
      file,
      configWith(`      triggers:
        - name: big-order
          on: insert
          when: "amount > 1000"
          payload: { text: "Order {{ after.id }}: {{ after.amount }}" }
        - name: paid
          on: update
          fields: [status]
          when: "status == 'paid'"
          object: track
          payload: { event: Order Completed, properties: { total: "{{ after.amount }}" } }
`),
    );
    const loaded = await loadConfig(file, { env: {}, loadConnector });
    expect(loaded.config.syncs[0]!.to.triggers!.map((t) => t.name)).toEqual(['big-order', 'paid']);
  });

  it('reports a broken template at the file, line and column of the template, with where inside it', async () => {
    const { file, message } = await problems(
      configWith(`      triggers:
        - name: big-order
          on: insert
          payload:
            text: "Order {{ after.id | upcase | nope }}"
`),
    );
    expect(message).toContain(
      `${file}:16:19 /syncs/0/to/triggers/0/payload/text: the template does not parse (line 1, column 7 of the template): undefined filter: nope`,
    );
  });

  it('reports a condition that does not parse, and a variable outside the change, each at its own line', async () => {
    const { file, problems: found } = await problems(
      configWith(`      triggers:
        - name: hot
          on: update
          when: "score >> 80"
          payload: { text: "{{ env.HOME }}" }
`),
    );
    expect(found.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`)).toEqual([
      '15:17 /syncs/0/to/triggers/0/when: the condition "score >> 80" does not parse at character 8: ">" where a field or a value was expected',
      '16:28 /syncs/0/to/triggers/0/payload/text: "env.HOME" is not something a payload can read; templates read after, before, key, trigger, change (e.g. {{ after.env }})',
    ]);
    expect(found.every((p) => p.file === file)).toBe(true);
  });

  it('refuses what event mode cannot do: mappings, a match key, deletes, fields off update, a duplicate name, no triggers', async () => {
    const withTriggers = await problems(
      configWith(
        `      matchKey: { email: EMAIL }
      deletes: delete
      triggers:
        - { name: a, on: insert, fields: [x], payload: { t: x } }
        - { name: a, on: delete, payload: { t: x } }
`,
        '    mappings: { email: EMAIL }\n',
      ),
    );
    expect(withTriggers.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      '/syncs/0/mappings: mode event builds each event from its trigger\'s payload; remove mappings',
      '/syncs/0/to/matchKey: mode event sends events, not records: there is no record to match; remove matchKey',
      '/syncs/0/to/deletes: mode event deletes nothing; a row leaving the model fires the on: delete triggers. Remove deletes',
      '/syncs/0/to/triggers/0/fields: fields applies to on: update only (this trigger is on: insert); remove it',
      '/syncs/0/to/triggers/1/name: duplicate trigger name "a" (also to/triggers/0); names must be unique in a sync',
    ]);
    const none = await problems(configWith(''));
    expect(none.problems.map((p) => `${p.path}: ${p.message}`)).toEqual(['/syncs/0/to/mode: mode event needs triggers: say which changes become events, and their payload']);
  });
});
