import { randomBytes } from 'node:crypto';
import semver from 'semver';
import { describe } from 'vitest';
import {
  CORE_VERSION,
  secretPaths,
  type AnyConnector,
  type Capabilities,
  type Model,
  type OperationKind,
  type Stream,
  type TSchema,
} from '@outflow/core';
import { capabilityCheckList, WRONG_CONFIG_RECORDS } from './capabilities.js';
import { checkConfig } from './config.js';
import type { TestRecord } from './destination.js';
import { fail, openConnection, registerChecks, show, within, type BadConfig, type Check, type Connection } from './harness.js';
import { getAt, leakFailure, leaksOf, secretValues, setAt, urlPassword } from './secrets.js';

type Schema = Record<string, unknown>;

/** What the spec checks need: the connector and a started connection with a working config. */
export interface SpecHarness<C = unknown> extends Connection<C> {
  connector: AnyConnector;
}

export interface SpecOptions<C> {
  /** A config that passes schema validation (it need not reach a live system). */
  validConfig: C;
  /** Configs `check()` refuses; what the connector emits with them is searched for secrets. */
  badConfigs?: BadConfig[];
  skip?: string[];
}

const NAME = /^[a-z][a-z0-9-]*$/;

/** Calls `visit` for every schema reachable from `schema`, with a readable path. */
function walk(schema: unknown, path: string, visit: (s: Schema, path: string, isProperty: boolean) => void, isProperty = false): void {
  if (schema === null || typeof schema !== 'object') return;
  const s = schema as Schema;
  visit(s, path, isProperty);
  const props = s['properties'] as Record<string, unknown> | undefined;
  if (props) for (const [k, v] of Object.entries(props)) walk(v, path ? `${path}.${k}` : k, visit, true);
  const items = s['items'];
  if (Array.isArray(items)) items.forEach((v, i) => walk(v, `${path}[${i}]`, visit));
  else walk(items, `${path}[]`, visit);
  if (typeof s['additionalProperties'] === 'object') walk(s['additionalProperties'], `${path}.*`, visit);
  const pattern = s['patternProperties'] as Record<string, unknown> | undefined;
  if (pattern) for (const v of Object.values(pattern)) walk(v, `${path}.*`, visit);
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const list = s[key];
    if (Array.isArray(list)) list.forEach((v) => walk(v, path, visit));
  }
}

/**
 * Every required key without a default, in every object schema nested through
 * `properties`, as paths. A default fills a missing key, so only these can be missing.
 */
function requiredPaths(schema: Schema, parent: string[] = []): string[][] {
  const out: string[][] = [];
  const props = (schema['properties'] ?? {}) as Record<string, Schema>;
  for (const key of (schema['required'] as string[] | undefined) ?? []) {
    if (props[key]?.['default'] === undefined) out.push([...parent, key]);
  }
  for (const [k, v] of Object.entries(props)) out.push(...requiredPaths(v, [...parent, k]));
  return out;
}

/** A config property name that says it holds a secret: its last word is one, like `accessToken` or `privateKey`. */
export function namedLikeSecret(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  const last = words[words.length - 1];
  const before = words[words.length - 2];
  if (last === undefined) return false;
  if (['password', 'passwd', 'passphrase', 'secret', 'token', 'credential', 'credentials', 'apikey'].includes(last)) return true;
  return last === 'key' && before !== undefined && ['api', 'private', 'access', 'secret', 'signing', 'client', 'auth', 'encryption', 'master', 'ssh', 'shared', 'hmac'].includes(before);
}

/** Every string in `value` with its dot path. */
function strings(value: unknown, path: string[] = []): { path: string; value: string }[] {
  if (typeof value === 'string') return [{ path: path.join('.'), value }];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => strings(v, [...path, k]));
}

/**
 * A wrong value for a secret: random, or, for a URL (a connection string), the same URL with
 * a wrong password, so the connector gets as far as authenticating at the same host.
 */
function wrongSecret(working: unknown, minLength: number): string {
  const wrong = `wrong-${randomBytes(Math.max(8, minLength)).toString('hex')}`;
  if (typeof working === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(working)) {
    try {
      const url = new URL(working);
      if (url.username === '') url.username = 'outflow';
      url.password = wrong;
      return url.toString();
    } catch {
      // not a URL after all
    }
  }
  return wrong;
}

/** Secrets shorter than this cannot be told apart from other text the connector emits. */
const DISTINCTIVE = 8;
let wrongConfigRecords = 0;

/** What a role suite's harness adds that the secret checks use to call more methods. */
interface RoleParts {
  driver?: { model?: Model; object?: string; record?(i: number): TestRecord };
  stream?: Stream;
  capabilities?: Capabilities;
}

/**
 * Calls every method of the connector that a config can reach without changing data in the
 * source (check, discover, capabilities, the first batch of read, open → health → close of
 * the stream suite's model), through the connection's secret watch; with a wrong or bad
 * config (`wrong`), a destination also gets one write (and lookup) of a record. Failures of
 * the calls are expected and ignored; a secret any of them emits fails with `what`.
 */
async function exercise(h: SpecHarness, config: unknown, what: string, wrong: boolean): Promise<void> {
  const parts = h as SpecHarness & RoleParts;
  const ctx = h.context(config) as never;
  const { watch } = h;
  const model = parts.driver?.model;
  const calls: { method: string; run: () => Promise<unknown> }[] = [];
  const source = h.connector.source && watch.source(h.connector.source);
  if (source) {
    calls.push({ method: 'source.check()', run: () => source.check(ctx) });
    calls.push({ method: 'source.discover()', run: () => source.discover(ctx) });
    if (model !== undefined) {
      calls.push({
        method: 'source.read()',
        run: async () => {
          const it = source.read(ctx, model)[Symbol.asyncIterator]();
          try {
            await it.next();
          } finally {
            await it.return?.();
          }
        },
      });
    }
  }
  const stream = h.connector.stream && watch.stream(h.connector.stream);
  if (stream && model !== undefined && parts.stream !== undefined) {
    calls.push({
      method: 'stream.open()',
      run: async () => {
        const opened = await stream.open(ctx, model, null);
        try {
          await within(opened.health(), h.timeoutMs, `stream.health() ${what}`);
        } finally {
          await within(opened.close(), h.timeoutMs, `stream.close() ${what}`);
        }
      },
    });
  }
  const destination = h.connector.destination && watch.destination(h.connector.destination);
  if (destination) {
    calls.push({ method: 'destination.check()', run: () => destination.check(ctx) });
    let object = parts.driver?.object;
    calls.push({
      method: 'destination.discover()',
      run: async () => {
        const catalog = await destination.discover(ctx);
        object ??= catalog?.objects?.[0]?.name;
      },
    });
    calls.push({ method: 'destination.capabilities()', run: async () => object !== undefined && (await destination.capabilities(ctx, object)) });
    const record = parts.driver?.record;
    const kind: OperationKind | undefined = parts.capabilities?.operations.find((k) => k === 'upsert' || k === 'insert');
    if (wrong && record && kind && object !== undefined) {
      const rec = record.call(parts.driver, WRONG_CONFIG_RECORDS + (wrongConfigRecords++ % 100_000));
      const op = { kind, key: rec.key, fields: rec.fields, idempotencyKey: `acceptance-secrets:${randomBytes(8).toString('hex')}`, ...(rec.match ? { match: rec.match } : {}) };
      calls.push({ method: 'destination.write()', run: () => destination.write(ctx, object!, [op]) });
      if (destination.lookup) calls.push({ method: 'destination.lookup()', run: () => destination.lookup!(ctx, object!, [op]) });
    }
  }
  for (const call of calls) {
    try {
      await within(call.run(), h.timeoutMs, `${call.method} ${what}`);
    } catch (err) {
      const leaks = leaksOf(err);
      if (leaks !== undefined) throw leakFailure(leaks, what);
      // Any other failure is another check's business (or, with a failing config, expected).
    }
  }
  const late = h.watch.takeUnreported();
  if (late.length > 0) throw leakFailure(late, what);
}

/** The spec checks, as plain async functions over a {@link SpecHarness}. */
export const specChecks = {
  /** Name, version, core version range and roles of the manifest. */
  async manifest(h: SpecHarness): Promise<void> {
    const c = h.connector;
    if (typeof c.name !== 'string' || !NAME.test(c.name)) fail(`manifest name ${show(c.name)} must match ${NAME}`);
    if (semver.valid(c.version) === null) fail(`manifest version ${show(c.version)} of "${c.name}" is not a semver version`);
    // Optional: a published connector's range is its peer dependency on @outflow/core.
    if (c.coreVersion !== undefined) {
      if (semver.validRange(c.coreVersion) === null) fail(`manifest coreVersion ${show(c.coreVersion)} of "${c.name}" is not a semver range`);
      if (!semver.satisfies(CORE_VERSION, c.coreVersion)) {
        fail(`manifest coreVersion "${c.coreVersion}" of "${c.name}" does not include this core (${CORE_VERSION})`);
      }
    }
    if (!c.source && !c.stream && !c.destination) fail(`connector "${c.name}" provides no source, stream or destination`);
    const methods: [string, unknown, string[]][] = [
      ['source', c.source, ['check', 'discover', 'read']],
      ['stream', c.stream, ['open']],
      ['destination', c.destination, ['check', 'discover', 'capabilities', 'write']],
    ];
    for (const [role, impl, names] of methods) {
      if (impl === undefined) continue;
      for (const m of names) {
        if (typeof (impl as Record<string, unknown>)[m] !== 'function') fail(`connector "${c.name}" ${role}.${m} is not a function`);
      }
    }
    if (c.emulator !== undefined && typeof c.emulator !== 'function') fail(`connector "${c.name}" emulator must be a function that imports it lazily`);
  },

  /** The config schema: closed objects, every property described, secrets are strings. */
  async schema(h: SpecHarness): Promise<void> {
    const root = h.connector.config as unknown as Schema;
    if (root === null || typeof root !== 'object' || root['type'] !== 'object') fail(`config schema of "${h.connector.name}" must be an object schema`);
    const problems: string[] = [];
    walk(root, '', (s, path, isProperty) => {
      const where = path === '' ? 'the config' : `property "${path}"`;
      if (s['type'] === 'object' && s['properties'] !== undefined && s['additionalProperties'] !== false) {
        problems.push(`${where} must set additionalProperties: false`);
      }
      if (isProperty && (typeof s['description'] !== 'string' || s['description'].trim() === '')) {
        problems.push(`${where} has no description`);
      }
      if (s['secret'] === true && s['type'] !== 'string') problems.push(`${where} is marked secret but is not a string`);
    });
    if (problems.length > 0) fail(`config schema of "${h.connector.name}": ${problems.join('; ')}`);
  },

  /** The driver's working config validates against the schema. */
  async validConfig(h: SpecHarness): Promise<void> {
    const { problems } = checkConfig(h.connector.config as TSchema, h.config);
    if (problems.length > 0) {
      fail(`the working config does not validate: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`);
    }
  },

  /** Removing any required key (one at a time) fails validation with an error naming it. */
  async requiredKeys(h: SpecHarness): Promise<void> {
    let tried = 0;
    for (const path of requiredPaths(h.connector.config as unknown as Schema)) {
      if (getAt(h.config, path) === undefined) continue;
      tried++;
      const config = structuredClone(h.config);
      setAt(config, path, undefined);
      const { problems } = checkConfig(h.connector.config as TSchema, config);
      const key = path[path.length - 1]!;
      const named = problems.some((p) => p.keyword === 'required' && p.params['missingProperty'] === key);
      if (!named) {
        fail(`removing required key "${path.join('.')}" ${problems.length === 0 ? 'still validates' : `gave errors not naming it: ${show(problems)}`}`);
      }
    }
    if (tried === 0) fail('the working config holds none of the required keys, so none could be removed');
  },

  /** A key the schema does not know fails validation. */
  async unknownKey(h: SpecHarness): Promise<void> {
    const config = { ...(h.config as Record<string, unknown>), outflowAcceptanceUnknownKey: true };
    const { problems } = checkConfig(h.connector.config as TSchema, config);
    if (!problems.some((p) => p.keyword === 'additionalProperties')) fail('a config with an unknown key still validates');
  },

  /**
   * What the connector treats as secret is marked secret: every property named like one
   * (`password`, `accessToken`, `privateKey` …) and every value that is a URL with a password
   * is marked `secret: true`, and the working config's secrets are strings.
   */
  async secretsDeclared(h: SpecHarness): Promise<void> {
    const schema = h.connector.config;
    const secret = new Set(secretPaths(schema));
    const problems: string[] = [];
    walk(schema, '', (s, path, isProperty) => {
      const name = /([^.[\]*]+)(\[\d*\])*$/.exec(path)?.[1];
      if (isProperty && s['secret'] !== true && name !== undefined && namedLikeSecret(name)) {
        problems.push(`property "${path}" is named like a secret but is not marked secret: true (declare it with Secret())`);
      }
    });
    for (const { path, value } of strings(h.config)) {
      if (!secret.has(path) && urlPassword(value) !== undefined) problems.push(`property "${path}" holds a URL with a password but is not marked secret: true`);
    }
    for (const path of secret) {
      const value = getAt(h.config, path.split('.'));
      if (value !== undefined && typeof value !== 'string') problems.push(`secret "${path}" holds a ${typeof value}, not a string`);
    }
    if (problems.length > 0) fail(`config schema of "${h.connector.name}": ${problems.join('; ')}`);
  },

  /**
   * Nothing the connector emits with the working config carries a secret: its logs (every
   * level), metric names and labels, ctx.kv entries, errors (message, JSON form, causes) and
   * results of check, discover, capabilities, the first batch of read, and (in the stream
   * suite) open, health and close. The working config's secrets must be distinctive for a
   * leak to be told apart.
   */
  async secretsRedacted(h: SpecHarness): Promise<void> {
    const values = secretValues(h.connector.config, h.config);
    const secret = new Set(secretPaths(h.connector.config));
    const others = strings(h.config).filter((s) => !secret.has(s.path));
    for (const { path, value } of values) {
      if (value.length < DISTINCTIVE) {
        fail(`secret "${path}" in the working config has ${value.length} characters; give one of ${DISTINCTIVE} or more, so that a leak can be told apart from other text`);
      }
      const shared = others.find((o) => o.value.includes(value));
      if (shared !== undefined) fail(`secret "${path}" in the working config also appears in "${shared.path}"; give a distinctive value, so that a leak can be told apart`);
    }
    await exercise(h, h.config, 'with the working config', false);
  },

  /**
   * With a wrong value for each secret, and with each bad config, nothing the connector emits
   * carries a secret (the wrong value, the working one, or a bad config's): the errors and
   * logs of every method the secret checks call, and of a write (and lookup) of a destination.
   */
  async secretsNotInErrors(h: SpecHarness): Promise<void> {
    const schema = h.connector.config;
    const attempts: { what: string; config: unknown }[] = [];
    for (const path of secretPaths(schema)) {
      const config = structuredClone(h.config);
      if (getAt(config, path.split('.').slice(0, -1)) === undefined) continue;
      const property = getAt(schema, path.split('.').flatMap((k) => ['properties', k])) as Schema | undefined;
      const minLength = Number(property?.['minLength'] ?? 0);
      setAt(config, path.split('.'), wrongSecret(getAt(config, path.split('.')), minLength));
      attempts.push({ what: `with a wrong "${path}"`, config });
    }
    for (const bad of h.badConfigs) attempts.push({ what: `with bad config "${bad.name}"`, config: bad.config });
    for (const { what, config } of attempts) await exercise(h, config, what, true);
  },
};

/**
 * The spec checks that apply to `connector`, as registered by every acceptance suite. `suite`
 * names the suite they run in: the capability checks are listed for the destination suite
 * (and, left out, for a connector with a destination, each then skipping itself on a harness
 * that is not a destination suite's).
 */
export function specCheckList(connector: AnyConnector, suite?: 'spec' | 'source' | 'stream' | 'destination'): Check<SpecHarness<unknown>>[] {
  const schema = connector.config as unknown as Schema;
  const hasSecrets = secretPaths(connector.config).length > 0;
  const hasRequired = requiredPaths(schema).length > 0;
  const list: (Check<SpecHarness<unknown>> | false)[] = [
    { id: 'spec-manifest', title: 'manifest has a valid name, semver version and a coreVersion range including this core', run: specChecks.manifest },
    { id: 'spec-schema', title: 'config schema is closed, every property is described, secrets are strings', run: specChecks.schema },
    { id: 'spec-valid-config', title: 'the working config validates against the schema', run: specChecks.validConfig },
    hasRequired && { id: 'spec-required-keys', title: 'removing each required key fails validation naming it', run: specChecks.requiredKeys },
    { id: 'spec-unknown-key', title: 'an unknown config key fails validation', run: specChecks.unknownKey },
    {
      id: 'spec-secrets-declared',
      title: 'every property named like a secret, and every URL with a password, is marked secret',
      run: specChecks.secretsDeclared,
    },
    hasSecrets && {
      id: 'spec-secrets-redacted',
      title: 'with the working config, nothing the connector logs, reports, stores or throws shows a secret',
      run: specChecks.secretsRedacted,
    },
    hasSecrets && {
      id: 'spec-secrets-not-in-errors',
      title: 'with a wrong secret and with each bad config, no error, log line or metric shows a secret',
      run: specChecks.secretsNotInErrors,
    },
  ];
  const capabilities = connector.destination !== undefined && (suite === undefined || suite === 'destination') ? capabilityCheckList<SpecHarness<unknown>>() : [];
  return [...list.filter((c): c is Check<SpecHarness<unknown>> => c !== false), ...capabilities];
}

/**
 * Registers the spec checks for `connector` as vitest tests: manifest metadata, the config
 * schema, validation of `validConfig` and of it with each required key removed, and secrets.
 * Every role suite runs these too, so call it directly only for a connector without one.
 */
export function specAcceptance<C>(connector: AnyConnector, options: SpecOptions<C>): void {
  describe(`spec acceptance: ${connector.name}`, () => {
    registerChecks<SpecHarness<C>>(
      async () => ({
        connector,
        ...(await openConnection<C>(connector, { config: options.validConfig, ...(options.badConfigs ? { badConfigs: options.badConfigs } : {}) })),
      }),
      specCheckList(connector, 'spec') as Check<SpecHarness<C>>[],
      options.skip,
    );
  });
}
