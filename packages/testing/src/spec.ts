import { randomBytes } from 'node:crypto';
import semver from 'semver';
import { describe } from 'vitest';
import { CORE_VERSION, isOutflowError, redact, registerSecret, secretPaths, type AnyConnector, type TSchema } from '@outflow/core';
import { checkConfig } from './config.js';
import { fail, openConnection, registerChecks, show, within, type BadConfig, type Check, type Connection } from './harness.js';

type Schema = Record<string, unknown>;

/** What the spec checks need: the connector and a started connection with a working config. */
export interface SpecHarness<C = unknown> extends Connection<C> {
  connector: AnyConnector;
}

export interface SpecOptions<C> {
  /** A config that passes schema validation (it need not reach a live system). */
  validConfig: C;
  /** Configs `check()` refuses; errors they cause are searched for their secret values. */
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

function getAt(value: unknown, path: string[]): unknown {
  let v = value;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function setAt(value: unknown, path: string[], to: unknown): void {
  const parent = getAt(value, path.slice(0, -1)) as Record<string, unknown>;
  const last = path[path.length - 1]!;
  if (to === undefined) delete parent[last];
  else parent[last] = to;
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

/** Every string an error shows: message, stack head, JSON form and its causes. */
function errorText(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; depth < 6 && e !== undefined && e !== null; depth++) {
    if (e instanceof Error) {
      parts.push(e.message, String(e));
      if (isOutflowError(e)) parts.push(JSON.stringify(e.toJSON()));
      e = e.cause;
    } else {
      parts.push(typeof e === 'string' ? e : (JSON.stringify(e) ?? String(e)));
      break;
    }
  }
  return parts.join('\n');
}

function checksOf(connector: AnyConnector): { name: string; check: (ctx: never) => Promise<void> }[] {
  const roles: { name: string; check: (ctx: never) => Promise<void> }[] = [];
  if (connector.source) roles.push({ name: 'source', check: connector.source.check.bind(connector.source) as (ctx: never) => Promise<void> });
  if (connector.destination) {
    roles.push({ name: 'destination', check: connector.destination.check.bind(connector.destination) as (ctx: never) => Promise<void> });
  }
  return roles;
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

  /** Every secret in the working config is masked by `redact()` once registered. */
  async secretsRedacted(h: SpecHarness): Promise<void> {
    for (const path of secretPaths(h.connector.config)) {
      const value = getAt(h.config, path.split('.'));
      if (value === undefined) continue;
      if (typeof value !== 'string') fail(`secret "${path}" holds a ${typeof value}, not a string`);
      if (value.length < 4) fail(`secret "${path}" in the working config is shorter than 4 characters, too short to redact; use a realistic value`);
      registerSecret(value);
      const line = `connecting with ${value} failed`;
      if (redact(line).includes(value)) fail(`secret "${path}" is still visible after registerSecret()`);
    }
  },

  /**
   * Errors thrown by `check()` with a wrong secret, and with each bad config, never contain
   * a secret value.
   */
  async secretsNotInErrors(h: SpecHarness): Promise<void> {
    const schema = h.connector.config;
    const paths = secretPaths(schema);
    const attempts: { what: string; config: unknown }[] = [];
    for (const path of paths) {
      const config = structuredClone(h.config);
      if (getAt(config, path.split('.').slice(0, -1)) === undefined) continue;
      const property = getAt(schema, path.split('.').flatMap((k) => ['properties', k])) as Schema | undefined;
      const minLength = Number(property?.['minLength'] ?? 0);
      const wrong = `wrong-${randomBytes(Math.max(8, minLength)).toString('hex')}`;
      setAt(config, path.split('.'), wrong);
      attempts.push({ what: `a wrong "${path}"`, config });
    }
    for (const bad of h.badConfigs) attempts.push({ what: `bad config "${bad.name}"`, config: bad.config });
    const known = paths.map((p) => getAt(h.config, p.split('.'))).filter((v): v is string => typeof v === 'string' && v.length >= 4);
    for (const { what, config } of attempts) {
      const values = [...known, ...paths.map((p) => getAt(config, p.split('.'))).filter((v): v is string => typeof v === 'string' && v.length >= 4)];
      // The runner registers every config secret when it resolves the config; so does this check.
      values.forEach((v) => registerSecret(v));
      for (const role of checksOf(h.connector)) {
        let text: string | undefined;
        try {
          await within(role.check(h.context(config) as never), h.timeoutMs, `${role.name}.check() with ${what}`);
        } catch (err) {
          text = errorText(err);
        }
        const leaked = text === undefined ? undefined : values.find((v) => text.includes(v));
        if (leaked !== undefined) fail(`${role.name}.check() with ${what} threw an error that shows a secret value: ${redact(text!).slice(0, 300)}`);
      }
    }
  },
};

/** The spec checks that apply to `connector`, as registered by every acceptance suite. */
export function specCheckList(connector: AnyConnector): Check<SpecHarness<unknown>>[] {
  const schema = connector.config as unknown as Schema;
  const hasSecrets = secretPaths(connector.config).length > 0;
  const hasRequired = requiredPaths(schema).length > 0;
  const list: (Check<SpecHarness<unknown>> | false)[] = [
    { id: 'spec-manifest', title: 'manifest has a valid name, semver version and a coreVersion range including this core', run: specChecks.manifest },
    { id: 'spec-schema', title: 'config schema is closed, every property is described, secrets are strings', run: specChecks.schema },
    { id: 'spec-valid-config', title: 'the working config validates against the schema', run: specChecks.validConfig },
    hasRequired && { id: 'spec-required-keys', title: 'removing each required key fails validation naming it', run: specChecks.requiredKeys },
    { id: 'spec-unknown-key', title: 'an unknown config key fails validation', run: specChecks.unknownKey },
    hasSecrets && { id: 'spec-secrets-redacted', title: 'secrets are masked by redact() once registered', run: specChecks.secretsRedacted },
    checksOf(connector).length > 0 &&
      hasSecrets && {
        id: 'spec-secrets-not-in-errors',
        title: 'check() errors never show a secret value',
        run: specChecks.secretsNotInErrors,
      },
  ];
  return list.filter((c): c is Check<SpecHarness<unknown>> => c !== false);
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
      specCheckList(connector) as Check<SpecHarness<C>>[],
      options.skip,
    );
  });
}
