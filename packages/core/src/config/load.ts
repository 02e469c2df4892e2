import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import formats from 'ajv-formats';
import { isAlias, isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { AnyConnector } from '../contracts.js';
import { describeError, isOutflowError, OutflowError, type ErrorCode } from '../errors.js';
import { redact, registerSecret } from '../redact.js';
import { secretPaths } from '../schema.js';
import { loadConnector } from './connectors.js';
import { OutflowConfigSchema, type OutflowConfig, type SyncConfig } from './schema.js';
import { MAX_INTERVAL_MS, parseInterval } from './interval.js';
import { triggerProblems } from '../events/triggers.js';
import { MAX_PAUSE_MS } from '../delivery/rate-budget.js';
import { MAX_CONFIG_BYTES, MAX_DEPTH, configText, firstAlias, yamlProblems } from './yaml.js';

/** A JSON Schema document. */
export type JsonSchema = Record<string, unknown>;

/** One thing wrong with a configuration file, located at the closest YAML node. */
export interface ConfigProblem {
  file: string;
  /** 1-based line of the offending node (for a missing property: of its parent). */
  line: number;
  /** 1-based column. */
  column: number;
  /** JSON pointer into the config, e.g. `/syncs/0/to/mode`; `/` for the whole file. */
  path: string;
  /** What was expected; never contains a secret. */
  message: string;
  /** The error code for problems that have one of their own (a connector that will not load, a role it lacks). */
  code?: ErrorCode;
}

/** A configuration file, validated, with defaults applied, `${env:…}` resolved and connectors loaded. */
export interface LoadedConfig {
  /** The absolute path of the file. */
  file: string;
  /** The folder holding the file; relative paths in the config are relative to it. */
  dir: string;
  /** The validated config, deeply frozen. */
  config: OutflowConfig;
  /** The loaded connector of each connection, by connection name. */
  connectors: Map<string, AnyConnector>;
  /** The composed schema the file was validated against. */
  schema: JsonSchema;
}

export interface LoadConfigOptions {
  /** Where `${env:NAME}` is looked up; `process.env` by default. */
  env?: NodeJS.ProcessEnv;
  /** Loads a connector by its spec; {@link loadConnector} by default. */
  loadConnector?: typeof loadConnector;
}

/**
 * Composes core's config schema with each connector's config schema into one JSON Schema:
 * a connection whose `connector` is a given spec must have a `config` matching that
 * connector's schema. `connectors` is keyed by the spec as written in outflow.yaml.
 */
export function composeSchema(connectors: Map<string, AnyConnector>): JsonSchema {
  const schema = jsonClone(OutflowConfigSchema) as JsonSchema;
  const connections = (schema['properties'] as Record<string, JsonSchema>)['connections']!;
  const connection = Object.values(connections['patternProperties'] as Record<string, JsonSchema>)[0]!;
  const rules: JsonSchema[] = [];
  for (const [spec, connector] of connectors) {
    const config = jsonClone(connector.config) as JsonSchema;
    const required = Array.isArray(config['required']) && config['required'].length > 0;
    // A sandbox connection gets its address and credentials from the emulator, so nothing
    // in its config is required; what is given must still be valid.
    const { required: _dropped, ...sandboxConfig } = config;
    rules.push({
      if: { type: 'object', properties: { connector: { const: spec } }, required: ['connector'] },
      then: {
        if: { properties: { sandbox: { const: true } }, required: ['sandbox'] },
        then: { properties: { config: sandboxConfig } },
        else: { properties: { config }, ...(required ? { required: ['config'] } : {}) },
      },
    });
  }
  if (rules.length > 0) connection['allOf'] = rules;
  return { $schema: 'http://json-schema.org/draft-07/schema#', title: 'Outflow configuration (outflow.yaml)', ...schema };
}

/**
 * Reads, resolves and validates a configuration file and loads its connectors. Every
 * problem found (YAML aside, which stops at the first syntax error) is reported in one
 * `OUTFLOW_CONFIG_INVALID` error whose `details.problems` lists {@link ConfigProblem}s.
 * Secret values are registered for redaction before anything is reported.
 */
export async function loadConfig(file: string, options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const env = options.env ?? process.env;
  const load = options.loadConnector ?? loadConnector;
  const abs = resolve(file);
  const dir = dirname(abs);

  let bytes: Buffer;
  try {
    // A device or a pipe (-c /dev/zero) would be read forever: only a regular file is read.
    const info = await stat(abs);
    if (!info.isFile()) throw Object.assign(new Error('not a regular file'), { code: info.isDirectory() ? 'EISDIR' : 'ENOTREG' });
    if (info.size > MAX_CONFIG_BYTES) {
      throw new OutflowError('OUTFLOW_CONFIG_PARSE', `${file} is ${(info.size / 1024 / 1024).toFixed(1)} MB; a configuration file is at most ${MAX_CONFIG_BYTES / 1024 / 1024} MB`, {
        details: { file: abs },
      });
    }
    bytes = await readFile(abs);
  } catch (err) {
    if (isOutflowError(err)) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EISDIR'
          ? 'is a folder, not a file'
          : code === 'ENOTREG'
            ? 'is not a regular file (a device, a pipe or a socket)'
            : `could not be read (${describeError(err)})`;
    throw new OutflowError('OUTFLOW_CONFIG_NOT_FOUND', `configuration file ${file} ${why} (looked at ${abs})`, {
      details: { file: abs },
      cause: err,
    });
  }

  const decoded = configText(bytes);
  if ('problem' in decoded) {
    const { line, column, message } = decoded.problem;
    throw new OutflowError('OUTFLOW_CONFIG_PARSE', `${file} is not valid YAML:\n${file}:${line}:${column} ${message}`, {
      details: { file: abs, problems: [{ file, line, column, message }] },
    });
  }
  const text = decoded.text;

  // YAML 1.2 core schema; `<<` stays a plain key (and is refused below); warnings are problems, not console output.
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: false, logLevel: 'error' });
  // Unresolved tags are reported by yamlProblems(), with the path.
  const yamlErrors = [...doc.errors, ...doc.warnings.filter((w) => w.code !== 'TAG_RESOLVE_FAILED')];
  if (yamlErrors.length > 0) {
    const problems = yamlErrors.map((e) => ({ file, ...pos(lineCounter, e.pos[0]), message: yamlMessage(e) }));
    throw new OutflowError('OUTFLOW_CONFIG_PARSE', `${file} is not valid YAML:\n${capped(problems.map((p) => `${file}:${p.line}:${p.column} ${p.message}`))}`, {
      details: { file: abs, problems },
    });
  }
  const structural = yamlProblems(doc, text).map((p) => ({ file, ...pos(lineCounter, p.offset), path: pointer(p.segs), message: p.message }));
  if (structural.length > 0) throw invalid(file, abs, structural);

  const where = new Locator(doc, lineCounter, file);
  const problems: ConfigProblem[] = [];
  const report = (segs: readonly string[], message: string, code?: ErrorCode): void => {
    problems.push({ ...where.at(segs, false), path: pointer(segs), message, ...(code ? { code } : {}) });
  };

  const envProblemPaths = new Set<string>();
  resolveEnv(doc, env, (segs, message) => {
    envProblemPaths.add(pointer(segs));
    report(segs, message, 'OUTFLOW_ENV_MISSING');
  });

  let data: unknown;
  try {
    data = (doc.toJS() ?? null) as unknown;
  } catch (err) {
    // An alias expansion too large to be a configuration (a "billion laughs" file).
    const problem = { file, ...pos(lineCounter, firstAlias(doc)), path: '/', message: `the anchors and aliases of this file expand too far: ${describeError(err)}` };
    throw invalid(file, abs, [problem]);
  }
  if (!isRecord(data)) {
    const got = data === null ? 'nothing (the file is empty, or null)' : Array.isArray(data) ? 'a list' : `a ${typeof data} (${show(data)})`;
    throw invalid(file, abs, [{ ...where.at([], false), path: '/', message: `must hold a map of version: 1, connections and syncs, not ${got}` }]);
  }

  const connections = isRecord(data) && isRecord(data['connections']) ? data['connections'] : {};
  for (const conn of Object.values(connections)) {
    // Connector schemas can only apply their defaults to a config object that exists.
    if (isRecord(conn) && !('config' in conn)) conn['config'] = {};
  }

  const bySpec = new Map<string, AnyConnector>();
  const firstUse = new Map<string, string>();
  for (const [name, conn] of Object.entries(connections)) {
    const spec = isRecord(conn) ? conn['connector'] : undefined;
    if (typeof spec === 'string' && spec !== '' && !firstUse.has(spec)) firstUse.set(spec, name);
  }
  for (const [spec, name] of firstUse) {
    try {
      bySpec.set(spec, await load(spec, dir));
    } catch (err) {
      const segs = ['connections', name, 'connector'];
      if (isOutflowError(err)) report(segs, err.message, err.code);
      else report(segs, `connector "${spec}" could not be loaded: ${describeError(err)}`, 'OUTFLOW_CONNECTOR_NOT_FOUND');
    }
  }
  const byConnection = new Map<string, AnyConnector>();
  // Core's own secrets (the ledger's URL), then each connection's.
  const secretPointers: string[] = secretPaths(OutflowConfigSchema).map((path) => pointer(path.split('.')));
  for (const [name, conn] of Object.entries(connections)) {
    const connector = isRecord(conn) && typeof conn['connector'] === 'string' ? bySpec.get(conn['connector']) : undefined;
    if (connector === undefined) continue;
    byConnection.set(name, connector);
    for (const path of secretPaths(connector.config)) {
      secretPointers.push(pointer(['connections', name, 'config', ...path.split('.')]));
    }
  }

  const schema = composeSchema(bySpec);
  const validate = createAjv().compile(schema);
  validate(data);

  // Registered before any message is built, so that redact() catches a secret that
  // was pasted into some other field too.
  for (const p of secretPointers) registerSecret(getAt(data, fromPointer(p)));

  for (const issue of humanize(validate.errors ?? [], secretPointers)) {
    const segs = fromPointer(issue.path);
    if (envProblemPaths.has(pointer(segs))) continue;
    if (issue.key === undefined) report(segs, issue.message);
    else problems.push({ ...where.at([...segs, issue.key], true), path: pointer(segs), message: issue.message });
  }
  crossCheck(data, byConnection, report, dir);

  if (problems.length > 0) {
    const seen = new Set<string>();
    const unique = problems
      .map((p) => ({ ...p, message: redact(p.message) }))
      .filter((p) => {
        const id = `${p.path}\0${p.message}`;
        return seen.has(id) ? false : (seen.add(id), true);
      })
      .sort((a, b) => a.line - b.line || a.column - b.column || a.path.localeCompare(b.path));
    throw invalid(file, abs, unique);
  }

  return { file: abs, dir, config: deepFreeze(data as OutflowConfig), connectors: byConnection, schema };
}

/** The error listing a file's problems, each as `file:line:col /path: message` (the first 50 in the message). */
function invalid(file: string, abs: string, problems: ConfigProblem[]): OutflowError {
  const lines = problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.path}: ${p.message}`);
  return new OutflowError('OUTFLOW_CONFIG_INVALID', `${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${capped(lines)}`, {
    details: { file: abs, problems },
  });
}

function capped(lines: string[], max = 50): string {
  return lines.length <= max ? lines.join('\n') : `${lines.slice(0, max).join('\n')}\n… and ${lines.length - max} more`;
}

/** A YAML parse error in the reader's terms. */
function yamlMessage(e: { code: string; message: string }): string {
  if (e.code === 'MULTIPLE_DOCS') return 'the file holds more than one YAML document (a line "---" starts another); a configuration file holds exactly one';
  if (e.code === 'RESOURCE_EXHAUSTION' || /call stack/i.test(e.message)) return `the file is nested too deeply to read (a configuration needs far fewer than ${MAX_DEPTH} levels)`;
  if (e.code === 'BAD_DIRECTIVE') return `${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')} (only %YAML and %TAG directives exist)`;
  return e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

/** The primary key columns of a sync's model, as a list. */
export function primaryKeyOf(sync: Pick<SyncConfig, 'from'>): string[] {
  const pk = sync.from.primaryKey;
  return typeof pk === 'string' ? [pk] : [...pk];
}

/**
 * A stable hash (sha256, hex) of what decides what a sync delivers: its model (`from`),
 * its destination (`to`) and its mappings. Scheduling and delivery tuning do not change it,
 * nor does key order or writing a one-column primary key as a list.
 */
export function configHash(sync: SyncConfig): string {
  const subject = { from: { ...sync.from, primaryKey: primaryKeyOf(sync) }, to: sync.to, mappings: sync.mappings ?? null };
  return createHash('sha256').update(canonicalJson(subject)).digest('hex');
}

// ---------------------------------------------------------------------------------------
// ${env:NAME}
// ---------------------------------------------------------------------------------------

const ENV_REF = /(\$?)\$\{env:([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function resolveEnv(doc: Document, env: NodeJS.ProcessEnv, fail: (segs: string[], message: string) => void): void {
  const walk = (node: unknown, segs: string[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) walk(pair.value, [...segs, keyText(pair.key)]);
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...segs, String(i)]));
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
      node.value = node.value.replace(ENV_REF, (ref: string, escaped: string, body: string) => {
        if (escaped) return ref.slice(1);
        const split = body.indexOf(':-');
        const name = split < 0 ? body : body.slice(0, split);
        const fallback = split < 0 ? undefined : body.slice(split + 2);
        if (!ENV_NAME.test(name)) {
          fail(segs, `"${ref}" is not a valid environment reference; write \${env:NAME} or \${env:NAME:-default} (or $\${env:…} for a literal)`);
          return ref;
        }
        const value = env[name];
        if (fallback !== undefined && (value === undefined || value === '')) return fallback;
        if (value === undefined) {
          fail(segs, `environment variable ${name} is not set`);
          return ref;
        }
        return value;
      });
    }
  };
  walk(doc.contents, []);
}

// ---------------------------------------------------------------------------------------
// Turning ajv's errors into one clear line each
// ---------------------------------------------------------------------------------------

interface Issue {
  path: string;
  message: string;
  /** Where to point when that is not `path` itself: the key of an unknown property. */
  key?: string;
}

/** An ajv error, or a message already written for a collapsed group of them. */
type Err = ErrorObject & { text?: string };

function createAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, coerceTypes: false, verbose: true });
  formats.default(ajv);
  ajv.addKeyword('secret');
  return ajv;
}

function humanize(errors: readonly ErrorObject[], secretPointers: readonly string[]): Issue[] {
  let errs: Err[] = errors.filter((e) => e.keyword !== 'if');
  const groups = errs
    .filter((e) => (e.keyword === 'anyOf' || e.keyword === 'oneOf') && Array.isArray(e.schema))
    .sort((a, b) => b.schemaPath.length - a.schemaPath.length);
  for (const group of groups) {
    const prefix = `${group.schemaPath}/`;
    const members = errs.filter((e) => e !== group && e.schemaPath.startsWith(prefix));
    if (members.length === 0) continue;
    const replacement = collapse(group, members, prefix);
    errs = [...errs.filter((e) => e !== group && !members.includes(e)), ...replacement];
  }

  const isSecret = (e: Err): boolean =>
    (e.parentSchema as JsonSchema | undefined)?.['secret'] === true ||
    secretPointers.some((p) => e.instancePath === p || e.instancePath.startsWith(`${p}/`));

  return errs.map((e) => {
    const got = isSecret(e) || e.keyword === 'required' || e.keyword === 'additionalProperties' ? '' : ` (got ${show(e.data)})`;
    if (e.text !== undefined) return { path: e.instancePath, message: e.text + got };
    const s = (e.parentSchema ?? {}) as JsonSchema;
    const p = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'required':
        return { path: e.instancePath, message: `missing required property "${String(p['missingProperty'])}"` };
      case 'additionalProperties': {
        const prop = String(p['additionalProperty']);
        if (isRecord(s['patternProperties']) && !isRecord(s['properties'])) {
          const patterns = Object.keys(s['patternProperties']).join(' or ');
          return { path: e.instancePath, message: `"${prop}" is not an allowed name (must match ${patterns})`, key: prop };
        }
        const known = isRecord(s['properties']) ? Object.keys(s['properties']) : [];
        const guess = closest(prop, known);
        const hint = guess ? ` (did you mean "${guess}"?)` : known.length > 0 ? ` (expected one of ${known.join(', ')})` : '';
        return { path: e.instancePath, message: `unknown property "${prop}"${hint}`, key: prop };
      }
      case 'type':
      case 'const':
      case 'enum': {
        if ('const' in s) return { path: e.instancePath, message: `must be ${show(s['const'])}${got}` };
        if (Array.isArray(s['enum'])) return { path: e.instancePath, message: `must be one of ${s['enum'].map(listed).join(', ')}${got}` };
        return { path: e.instancePath, message: `must be ${typeNames(p['type'])}${got}` };
      }
      case 'pattern': {
        const d = typeof s['description'] === 'string' ? s['description'].replace(/\.$/, '') : '';
        const expected = /^an? /i.test(d) ? `must be ${d[0]!.toLowerCase()}${d.slice(1)}` : `must match ${String(p['pattern'])}${d ? ` (${d})` : ''}`;
        return { path: e.instancePath, message: expected + got };
      }
      case 'format':
        return { path: e.instancePath, message: `must be a valid ${String(p['format'])}${got}` };
      case 'minLength':
        return { path: e.instancePath, message: p['limit'] === 1 ? 'must not be empty' : `must be at least ${String(p['limit'])} characters long` };
      case 'maxLength':
        return { path: e.instancePath, message: `must be at most ${String(p['limit'])} characters long` };
      case 'minItems':
        return { path: e.instancePath, message: p['limit'] === 1 ? 'must not be empty' : `must have at least ${String(p['limit'])} items` };
      case 'maxItems':
        return { path: e.instancePath, message: `must have at most ${String(p['limit'])} items` };
      case 'minProperties':
      case 'maxProperties': {
        const exactlyOne = s['minProperties'] === 1 && s['maxProperties'] === 1;
        const message = exactlyOne
          ? 'must have exactly one entry'
          : `must have ${e.keyword === 'minProperties' ? 'at least' : 'at most'} ${String(p['limit'])} entries`;
        return { path: e.instancePath, message };
      }
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum': {
        const words = { minimum: 'at least', maximum: 'at most', exclusiveMinimum: 'greater than', exclusiveMaximum: 'less than' };
        return { path: e.instancePath, message: `must be ${words[e.keyword]} ${String(p['limit'])}${got}` };
      }
      default:
        return { path: e.instancePath, message: e.message ?? `fails the "${e.keyword}" rule` };
    }
  });
}

/** Replaces the errors of a union's branches by the one line a reader needs. */
function collapse(group: Err, members: Err[], prefix: string): Err[] {
  const branches = group.schema as JsonSchema[];
  const text = (t: string): Err[] => [{ ...group, keyword: 'union', text: t }];
  const literals = branches.every((b) => 'const' in b || Array.isArray(b['enum']));
  if (literals) {
    const values = branches.flatMap((b) => ('const' in b ? [b['const']] : (b['enum'] as unknown[])));
    return text(`must be one of ${values.map(listed).join(', ')}`);
  }
  const byBranch = new Map<number, Err[]>();
  for (const m of members) {
    const i = Number(m.schemaPath.slice(prefix.length).split('/')[0]);
    byBranch.set(i, [...(byBranch.get(i) ?? []), m]);
  }
  // A branch whose type matches the value is the one the user meant; report its errors.
  for (const [, errs] of [...byBranch].sort((a, b) => a[0] - b[0])) {
    const wrongType = errs.some((e) => e.keyword === 'type' && e.instancePath === group.instancePath);
    if (!wrongType) return errs;
  }
  const types = branches.map((b) => (typeof b['type'] === 'string' ? typeNames(b['type']) : 'a value of another kind'));
  return text(`must be ${[...new Set(types)].join(' or ')}`);
}

function typeNames(type: unknown): string {
  const names = String(type).split(',');
  const one = (t: string): string =>
    ({ string: 'a string', number: 'a number', integer: 'an integer', boolean: 'true or false', object: 'an object', array: 'a list', null: 'null' })[t] ?? t;
  return names.map(one).join(' or ');
}

function listed(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (isRecord(value)) return 'an object';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}…"` : text;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.min(3, Math.ceil(word.length / 3) + 1);
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : distance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

// ---------------------------------------------------------------------------------------
// Checks that span several parts of the file
// ---------------------------------------------------------------------------------------

type Report = (segs: readonly string[], message: string, code?: ErrorCode) => void;

function crossCheck(data: unknown, byConnection: Map<string, AnyConnector>, report: Report, dir: string): void {
  if (!isRecord(data)) return;
  const state = data['state'];
  if (isRecord(state) && typeof state['dir'] === 'string' && state['dir'] !== '') {
    const problem = folderProblem(resolve(dir, state['dir']));
    if (problem) report(['state', 'dir'], problem);
  }
  const connections = isRecord(data['connections']) ? data['connections'] : {};
  const syncs = Array.isArray(data['syncs']) ? data['syncs'] : [];
  const names = new Map<string, number>();
  for (const [name, conn] of Object.entries(connections)) {
    const maxWait = isRecord(conn) ? conn['maxWait'] : undefined;
    if (typeof maxWait === 'string' && /^[0-9]+(ms|s|m|h|d)$/.test(maxWait) && parseInterval(maxWait) > MAX_PAUSE_MS) {
      report(['connections', name, 'maxWait'], `must be at most 1d (got "${maxWait}")`);
    }
  }

  const checkConnection = (segs: string[], name: unknown, role: 'source' | 'stream' | 'destination'): void => {
    if (typeof name !== 'string') return;
    if (!Object.hasOwn(connections, name)) {
      const known = Object.keys(connections);
      const guess = closest(name, known);
      const hint = guess ? `did you mean "${guess}"?` : known.length > 0 ? `connections: ${known.join(', ')}` : 'no connections are defined';
      report(segs, `no connection named "${name}" (${hint})`);
      return;
    }
    const connector = byConnection.get(name);
    if (connector === undefined || connector[role] !== undefined) return;
    const spec = String((connections[name] as Record<string, unknown>)['connector']);
    const what = {
      source: 'cannot be read from: its connector provides no source',
      stream: `cannot be streamed from: its connector provides no stream${connector.source ? '; use capture: diff' : ''}`,
      destination: 'cannot be written to: its connector provides no destination',
    }[role];
    report(segs, `connection "${name}" (connector "${spec}") ${what}`, 'OUTFLOW_CONNECTOR_ROLE');
  };

  syncs.forEach((sync: unknown, i) => {
    if (!isRecord(sync)) return;
    const at = ['syncs', String(i)];
    const name = sync['name'];
    if (typeof name === 'string') {
      const first = names.get(name);
      if (first === undefined) names.set(name, i);
      else report([...at, 'name'], `duplicate sync name "${name}" (also used by /syncs/${first}); sync names must be unique`);
    }
    const capture = sync['capture'] === 'stream' ? 'stream' : 'diff';
    const from = sync['from'];
    if (isRecord(from)) {
      const given = ['table', 'sql', 'file'].filter((k) => from[k] !== undefined);
      if (given.length === 0) report([...at, 'from'], 'must name what to read: one of table, sql or file');
      else if (given.length > 1) report([...at, 'from'], `must name only one of table, sql or file (found ${given.join(' and ')})`);
      checkConnection([...at, 'from', 'connection'], from['connection'], capture === 'stream' ? 'stream' : 'source');
    }
    const to = sync['to'];
    if (isRecord(to)) {
      checkConnection([...at, 'to', 'connection'], to['connection'], 'destination');
      if (to['mode'] === 'mirror' && (to['deletes'] === 'delete' || to['deletes'] === 'clear')) {
        report(
          [...at, 'to', 'deletes'],
          `mode mirror always deletes the records Outflow wrote that leave the model, so deletes cannot be "${to['deletes']}"; remove deletes, or use mode upsert with deletes: ${to['deletes']}`,
        );
      }
    }
    if (isRecord(to) && (to['mode'] === 'event' || to['triggers'] !== undefined) && validShape(sync)) {
      for (const problem of triggerProblems(sync as unknown as SyncConfig)) report([...at, ...problem.path], problem.message);
    }
    if (sync['schedule'] !== undefined && capture === 'stream') {
      report([...at, 'schedule'], 'a schedule applies only to capture: diff; a stream sync runs continuously, so remove schedule');
    }
    const every = isRecord(sync['schedule']) ? sync['schedule']['every'] : undefined;
    if (typeof every === 'string' && /^[0-9]+(ms|s|m|h|d)$/.test(every)) {
      const ms = parseInterval(every);
      if (ms === 0 || ms > MAX_INTERVAL_MS) report([...at, 'schedule', 'every'], `must be more than 0 and at most 24d (got "${every}")`);
    }
  });
  checkAlerts(data, syncs, report);
}

/** Alert rules: intervals in range, `lagAbove` only on stream syncs, a sync's rules only with `alerts.webhook`. */
function checkAlerts(data: Record<string, unknown>, syncs: unknown[], report: Report): void {
  const checkRules = (rules: unknown, at: string[]): void => {
    if (!isRecord(rules)) return;
    for (const name of ['lagAbove', 'noSuccessFor']) {
      const v = rules[name];
      if (typeof v === 'string' && /^[0-9]+(ms|s|m|h|d)$/.test(v) && (parseInterval(v) === 0 || parseInterval(v) > MAX_INTERVAL_MS)) {
        report([...at, name], `must be more than 0 and at most 24d (got "${v}")`);
      }
    }
  };
  const alerts = data['alerts'];
  if (isRecord(alerts)) checkRules(alerts['rules'], ['alerts', 'rules']);
  syncs.forEach((sync: unknown, i) => {
    if (!isRecord(sync) || sync['alerts'] === undefined) return;
    const at = ['syncs', String(i), 'alerts'];
    if (!isRecord(alerts)) report(at, 'alert rules need a receiver: add `alerts: { webhook: { url, secret } }` at the top of the file');
    checkRules(sync['alerts'], at);
    if (isRecord(sync['alerts']) && sync['alerts']['lagAbove'] !== undefined && sync['capture'] !== 'stream') {
      report([...at, 'lagAbove'], 'lagAbove applies only to capture: stream (a diff sync has no stream lag); remove it');
    }
  });
}

/** Whether a sync's triggers have the schema's shape, so they can be compiled (else ajv has said what is wrong). */
function validShape(sync: Record<string, unknown>): boolean {
  const to = sync['to'];
  if (!isRecord(to)) return false;
  const triggers = to['triggers'];
  if (triggers === undefined) return true;
  return (
    Array.isArray(triggers) &&
    triggers.every(
      (t) =>
        isRecord(t) &&
        typeof t['name'] === 'string' &&
        ['insert', 'update', 'delete'].includes(t['on'] as string) &&
        isRecord(t['payload']) &&
        (t['when'] === undefined || typeof t['when'] === 'string') &&
        (t['fields'] === undefined || (Array.isArray(t['fields']) && t['fields'].every((f) => typeof f === 'string'))),
    )
  );
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

/** Why `path` cannot be the state folder (it, or a folder above it, is a file), if it cannot. */
function folderProblem(path: string): string | undefined {
  for (let p = path; ; p = dirname(p)) {
    let info: ReturnType<typeof statSync> | undefined;
    try {
      info = statSync(p);
    } catch {
      info = undefined;
    }
    if (info !== undefined) {
      if (info.isDirectory()) return undefined;
      return p === path ? `${path} is a file, not a folder` : `${path} cannot be a folder: ${p} is a file`;
    }
    if (dirname(p) === p) return undefined;
  }
}

/** Finds the line and column of the closest YAML node that exists for a JSON path. */
class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly file: string,
  ) {}

  at(segs: readonly string[], onKey: boolean): { file: string; line: number; column: number } {
    let node: unknown = this.doc.contents;
    let offset = rangeStart(node) ?? 0;
    for (let i = 0; i < segs.length; i++) {
      if (isAlias(node)) node = node.resolve(this.doc);
      let next: unknown;
      let key: unknown;
      if (isMap(node)) {
        const pair = node.items.find((p) => keyText(p.key) === segs[i]);
        if (pair === undefined) break;
        [key, next] = [pair.key, pair.value];
      } else if (isSeq(node)) {
        next = node.items[Number(segs[i])];
        if (next === undefined) break;
      } else {
        break;
      }
      if (onKey && i === segs.length - 1 && key !== undefined) {
        offset = rangeStart(key) ?? offset;
        break;
      }
      node = next;
      offset = rangeStart(next) ?? rangeStart(key) ?? offset;
    }
    return { file: this.file, ...pos(this.lines, offset) };
  }
}

function pos(lines: LineCounter, offset: number): { line: number; column: number } {
  const { line, col } = lines.linePos(offset);
  return { line, column: col };
}

function rangeStart(node: unknown): number | undefined {
  return isNode(node) && node.range ? node.range[0] : undefined;
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

function pointer(segs: readonly string[]): string {
  return segs.length === 0 ? '/' : segs.map((s) => `/${s.replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

function fromPointer(p: string): string[] {
  return p === '' || p === '/' ? [] : p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function getAt(value: unknown, segs: readonly string[]): unknown {
  let cur = value;
  for (const s of segs) {
    if (Array.isArray(cur)) cur = cur[Number(s)];
    else if (isRecord(cur)) cur = cur[s];
    else return undefined;
  }
  return cur;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function jsonClone(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isRecord(value)) {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
