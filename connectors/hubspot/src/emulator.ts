/**
 * A HubSpot CRM v3 server on 127.0.0.1 that answers the way HubSpot documents: objects
 * (batch create / read / update / upsert / archive, get, list, search), properties and
 * custom object schemas, bearer-token auth, batch and rate limits with HubSpot's headers and
 * 429 bodies, per-input validation errors as 207 multi-status, and unique-property upserts.
 * It can misbehave on request (latency, 5xx, connection resets) and keeps its records in a
 * JSON-lines log in `dataDir`.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { closeServer, jsonLinesLog, listenOnLoopback, type EmulatorOptions, type Faults, type RunningEmulator } from '@outflow/core';
import {
  defineProperty,
  modifiedProperty,
  SANDBOX_CONTACT_PROPERTIES,
  STANDARD_OBJECTS,
  type PropertyDefinition,
  type PropertySpec,
  type PropertyType,
} from './emulator-schema.js';

export { defineProperty, type PropertyDefinition, type PropertySpec, type PropertyType } from './emulator-schema.js';

/** The private-app token the emulator accepts unless told otherwise. */
export const SANDBOX_TOKEN = 'pat-sandbox-outflow-0000';
/** `GET` this path (with `?object=`) for the records of an object type as JSON; no auth. */
export const RECORDS_PATH = '/_emulator/records';
/** The JSON-lines log kept in `dataDir`. */
export const LOG_FILE = 'hubspot-emulator.jsonl';
/** The most inputs one batch request may carry. */
export const MAX_BATCH_INPUTS = 100;

const MAX_BODY_BYTES = 20 * 1024 * 1024;
const SEARCH_MAX_LIMIT = 200;
const LIST_MAX_LIMIT = 100;
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
const STANDARD_IDS: Record<string, string> = { contacts: '0-1', companies: '0-2', deals: '0-3', tickets: '0-5' };

/** Rate limits the emulator enforces; HubSpot's Professional tier by default. */
export interface HubSpotLimits {
  /** Requests allowed in any rolling window of `windowMs` (TEN_SECONDLY_ROLLING); 190 by default. */
  perWindow?: number;
  /** The rolling window, in milliseconds; 10 000 by default. */
  windowMs?: number;
  /** Requests allowed per day (DAILY); 625 000 by default. */
  daily?: number;
  /**
   * When the daily count resets: every this many milliseconds from start when set (for
   * tests), otherwise at midnight UTC.
   */
  dailyResetMs?: number;
  /** Search requests allowed per second; 4 by default. */
  searchPerSecond?: number;
}

/** Ways to make the emulator misbehave, on top of the generic {@link Faults}. */
export interface HubSpotFaults extends Faults {
  /** The next N API requests are answered 503. */
  failRequests?: number;
  /** Every Nth API request is answered 429 TEN_SECONDLY_ROLLING, whatever the counts say. */
  status429Every?: number;
  /** Seed of the random faults (errorRate, resetRate), so a test sees the same faults every run. */
  seed?: number;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same fault sequence. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A custom object type to create at start, as `POST /crm-object-schemas/v3/schemas` would. */
export interface CustomObjectSpec {
  /** The object's name, e.g. `pets`; it is also reachable as `p_pets` and by its objectTypeId. */
  name: string;
  properties: PropertySpec[];
  primaryDisplayProperty?: string;
}

export interface HubSpotEmulatorOptions extends EmulatorOptions {
  /** The private-app access token to accept; {@link SANDBOX_TOKEN} by default. */
  accessToken?: string;
  limits?: HubSpotLimits;
  faults?: HubSpotFaults;
  customObjects?: CustomObjectSpec[];
}

/** A record held by the emulator. */
export interface StoredRecord {
  id: string;
  properties: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

/** Counters since start, for tests and benchmarks. */
export interface EmulatorStats {
  /** Every request received, inspection requests excluded. */
  requests: number;
  /** Responses by HTTP status. */
  byStatus: Record<string, number>;
  /** 429 responses by policyName. */
  rateLimited: Record<string, number>;
  /** Batch write requests (create, update, upsert, archive) accepted, and their inputs. */
  batches: { requests: number; inputs: number };
}

interface ObjectStore {
  name: string;
  objectTypeId: string;
  custom: boolean;
  primaryDisplayProperty: string;
  props: Map<string, PropertyDefinition>;
  records: Map<string, StoredRecord>;
  /** unique property → normalised value → record id */
  unique: Map<string, Map<string, string>>;
}

type LogEntry =
  | { t: 'put'; o: string; r: StoredRecord }
  | { t: 'del'; o: string; id: string }
  | { t: 'prop'; o: string; d: PropertyDefinition }
  | { t: 'schema'; name: string; objectTypeId: string; primaryDisplayProperty: string };

/** One batch error in HubSpot's StandardError shape. */
interface StandardError {
  status: 'error';
  category: string;
  message: string;
  context: Record<string, string[]>;
  errors: { message: string; code?: string; context?: Record<string, string[]> }[];
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly category: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function readBody(req: http.IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function nextMidnightUtc(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

function normalise(property: string, value: string): string {
  return property === 'email' ? value.toLowerCase() : value;
}

function propertyProblem(message: string, code: string, name: string): { message: string; code: string; name: string } {
  return { message, code, name };
}

/**
 * Checks one property value as HubSpot would and returns the value as stored, or a problem.
 * Values arrive as strings (the SDK sends strings); numbers and booleans are accepted too.
 */
function checkValue(
  objectType: string,
  def: PropertyDefinition,
  raw: unknown,
): { value: string } | { problem: { message: string; code: string; name: string } } {
  const name = def.name;
  if (raw === null || raw === undefined || raw === '') return { value: '' };
  if (typeof raw === 'object') {
    return { problem: propertyProblem(`${JSON.stringify(raw)} is not a valid value for ${name}`, 'INVALID_PROPERTY_VALUE', name) };
  }
  const value = String(raw);
  switch (def.type) {
    case 'number':
      if (!/^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value.trim())) {
        return { problem: propertyProblem(`${JSON.stringify(value)} is not a valid number`, 'INVALID_INTEGER', name) };
      }
      return { value: value.trim() };
    case 'bool':
      if (value !== 'true' && value !== 'false') {
        return { problem: propertyProblem(`${JSON.stringify(value)} is not a valid boolean; use true or false`, 'INVALID_BOOLEAN', name) };
      }
      return { value };
    case 'date': {
      if (/^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(Date.parse(`${value}T00:00:00Z`))) return { value };
      if (/^\d+$/.test(value) && Number(value) % 86_400_000 === 0) return { value: new Date(Number(value)).toISOString().slice(0, 10) };
      return {
        problem: propertyProblem(
          `${JSON.stringify(value)} is not a valid date; a date property takes YYYY-MM-DD or a timestamp at midnight UTC in milliseconds`,
          'INVALID_DATE',
          name,
        ),
      };
    }
    case 'datetime': {
      const ms = /^\d+$/.test(value) ? Number(value) : /^\d{4}-\d{2}-\d{2}(T.*)?$/.test(value) ? Date.parse(value) : NaN;
      if (Number.isNaN(ms)) {
        return {
          problem: propertyProblem(
            `${JSON.stringify(value)} is not a valid datetime; use an ISO 8601 timestamp or milliseconds since the epoch`,
            'INVALID_DATETIME',
            name,
          ),
        };
      }
      return { value: new Date(ms).toISOString() };
    }
    case 'enumeration': {
      const allowed = def.options.map((o) => o.value);
      const values = def.fieldType === 'checkbox' ? value.split(';') : [value];
      const bad = values.find((v) => !allowed.includes(v));
      if (bad !== undefined) {
        return {
          problem: propertyProblem(`${bad} was not one of the allowed options: [${allowed.join(', ')}]`, 'INVALID_OPTION', name),
        };
      }
      return { value };
    }
    default:
      if (objectType === 'contacts' && name === 'email' && !EMAIL.test(value)) {
        return { problem: propertyProblem(`Email address ${value} is invalid`, 'INVALID_EMAIL', name) };
      }
      if (value.length > 65_536) return { problem: propertyProblem(`${name} is longer than 65536 characters`, 'INVALID_LENGTH', name) };
      return { value };
  }
}

function validationError(problems: { message: string; code: string; name: string }[], context: Record<string, string[]>): StandardError {
  return {
    status: 'error',
    category: 'VALIDATION_ERROR',
    message: `Property values were not valid: ${JSON.stringify(
      problems.map((p) => ({ isValid: false, message: p.message, error: p.code, name: p.name })),
    )}`,
    context,
    errors: problems.map((p) => ({ message: p.message, code: p.code, context: { propertyName: [p.name] } })),
  };
}

function batchError(category: string, message: string, context: Record<string, string[]>, code?: string): StandardError {
  return { status: 'error', category, message, context, errors: code === undefined ? [] : [{ message, code }] };
}

/** A running HubSpot emulator and its inspection API. */
export class HubSpotEmulator implements RunningEmulator<{ accessToken: string; basePath: string }> {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Points a hubspot connection at this emulator. */
  readonly config: { accessToken: string; basePath: string };
  private random: () => number = Math.random;

  private readonly server: http.Server;
  private readonly token: string;
  private readonly logPath: string | undefined;
  private faults: HubSpotFaults;
  private failRemaining: number;
  private limits: Required<Omit<HubSpotLimits, 'dailyResetMs'>> & { dailyResetMs?: number };
  private readonly objects = new Map<string, ObjectStore>();
  private nextId = 1;
  private nextCustomId = 1;
  private hits: number[] = [];
  private hitHead = 0;
  private searchHits: number[] = [];
  private dailyUsed = 0;
  private dailyResetAt: number;
  private apiRequests = 0;
  private readonly counters: EmulatorStats = { requests: 0, byStatus: {}, rateLimited: {}, batches: { requests: 0, inputs: 0 } };
  private pending: LogEntry[] = [];
  private stopped = false;

  private constructor(server: http.Server, port: number, options: HubSpotEmulatorOptions, logPath: string | undefined) {
    this.server = server;
    this.token = options.accessToken ?? SANDBOX_TOKEN;
    this.logPath = logPath;
    this.faults = { ...options.faults };
    this.random = seeded(this.faults.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.failRemaining = this.faults.failRequests ?? 0;
    this.limits = { perWindow: 190, windowMs: 10_000, daily: 625_000, searchPerSecond: 4, ...options.limits };
    this.dailyResetAt = this.nextDailyReset(Date.now());
    this.url = `http://127.0.0.1:${port}`;
    this.config = { accessToken: this.token, basePath: this.url };
    for (const [name, specs] of Object.entries(STANDARD_OBJECTS)) {
      const all = name === 'contacts' ? [...specs, ...SANDBOX_CONTACT_PROPERTIES] : specs;
      this.addObject(name, STANDARD_IDS[name]!, false, name === 'contacts' ? 'email' : 'hs_object_id', all);
    }
  }

  /** Starts an emulator; with `dataDir`, replays the log kept there first. */
  static async start(options: HubSpotEmulatorOptions = {}): Promise<HubSpotEmulator> {
    const logPath = jsonLinesLog.fileIn(options.dataDir, LOG_FILE);
    const ref: { emulator?: HubSpotEmulator } = {};
    const server = http.createServer((req, res) => {
      ref.emulator!.handle(req, res).catch((err: unknown) => {
        ref.emulator!.reply(res, 500, {
          status: 'error',
          message: `emulator failure: ${err instanceof Error ? err.message : String(err)}`,
          correlationId: randomUUID(),
          category: 'INTERNAL_ERROR',
        });
      });
    });
    // Longer than any client's idle keep-alive, so a reused socket is never closed under it.
    server.keepAliveTimeout = 65_000;
    const port = await listenOnLoopback(server, options.port, 'hubspot');
    const emulator = new HubSpotEmulator(server, port, options, logPath);
    ref.emulator = emulator;
    try {
      emulator.replay();
      for (const custom of options.customObjects ?? []) {
        if (!emulator.objects.has(custom.name)) emulator.createSchema(custom.name, custom.properties, custom.primaryDisplayProperty);
      }
      emulator.flushLog();
    } catch (err) {
      await emulator.stop();
      throw err;
    }
    return emulator;
  }

  /** Replaces the active faults (pass `{}` to clear them); `failRequests` restarts its count. */
  setFaults(faults: HubSpotFaults): void {
    this.faults = { ...faults };
    if (faults.seed !== undefined) this.random = seeded(faults.seed);
    this.failRemaining = faults.failRequests ?? 0;
  }

  /** Changes rate limits from now on; counts so far are kept. */
  setLimits(limits: HubSpotLimits): void {
    this.limits = { ...this.limits, ...limits };
    if (limits.dailyResetMs !== undefined) this.dailyResetAt = this.nextDailyReset(Date.now());
  }

  /** The current records of an object type, in id order. */
  records(objectType: string): StoredRecord[] {
    const store = this.objects.get(objectType);
    return store === undefined ? [] : [...store.records.values()].map((r) => structuredClone(r));
  }

  /** The record of `objectType` whose `property` equals `value` (emails compare case-insensitively). */
  find(objectType: string, property: string, value: string): StoredRecord | undefined {
    const store = this.objects.get(objectType);
    if (store === undefined) return undefined;
    const id = store.unique.get(property)?.get(normalise(property, value));
    if (id !== undefined) return structuredClone(store.records.get(id));
    for (const r of store.records.values()) if (r.properties[property] === value) return structuredClone(r);
    return undefined;
  }

  /** The record with this id, if it exists. */
  get(objectType: string, id: string): StoredRecord | undefined {
    const r = this.objects.get(objectType)?.records.get(id);
    return r === undefined ? undefined : structuredClone(r);
  }

  /** The property definitions of an object type. */
  properties(objectType: string): PropertyDefinition[] {
    return [...(this.objects.get(objectType)?.props.values() ?? [])].map((d) => structuredClone(d));
  }

  /** Counters since start. */
  stats(): EmulatorStats {
    return structuredClone(this.counters);
  }

  /** Requests counted against the daily limit since its last reset. */
  get dailyUsage(): number {
    this.rollDaily(Date.now());
    return this.dailyUsed;
  }

  /** Closes the server and every open connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await closeServer(this.server);
  }

  /** Writes one JSON response; `reply` is also used for failures of the handler itself. */
  reply(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    this.counters.byStatus[status] = (this.counters.byStatus[status] ?? 0) + 1;
    if (res.destroyed || res.headersSent) return;
    if (body === undefined) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json;charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
  }

  // ---------------------------------------------------------------------------------------
  // Request handling
  // ---------------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === RECORDS_PATH) {
      const object = url.searchParams.get('object') ?? 'contacts';
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object, records: this.records(object) }));
      return;
    }
    const raw = await readBody(req);
    this.counters.requests++;
    const correlationId = randomUUID();
    const error = (status: number, category: string, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
      this.reply(res, status, { status: 'error', message, correlationId, category, ...extra }, headers);

    const auth = req.headers['authorization'];
    if (typeof auth !== 'string' || !auth.startsWith('Bearer ')) {
      return error(401, 'INVALID_AUTHENTICATION', 'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview');
    }
    if (auth.slice('Bearer '.length) !== this.token) {
      return error(401, 'INVALID_AUTHENTICATION', 'The OAuth token used to make this call expired or is not valid.');
    }

    const now = Date.now();
    const isSearch = req.method === 'POST' && /^\/crm\/v3\/objects\/[^/]+\/search$/.test(url.pathname);
    const limited = this.admit(now, isSearch);
    const headers = this.rateHeaders(now);
    if (limited !== null) {
      this.counters.rateLimited[limited.policy] = (this.counters.rateLimited[limited.policy] ?? 0) + 1;
      return error(429, 'RATE_LIMITS', limited.message, { errorType: 'RATE_LIMIT', policyName: limited.policy, requestId: randomUUID() }, {
        ...headers,
        'retry-after': String(Math.max(1, Math.ceil(limited.retryAfterMs / 1000))),
      });
    }

    const n = ++this.apiRequests;
    const faults = this.faults;
    if (faults.latencyMs) await sleep(faults.latencyMs);
    if (this.stopped) return;
    if (faults.resetRate && this.random() < faults.resetRate) {
      req.socket.destroy();
      return;
    }
    if (this.failRemaining > 0) {
      this.failRemaining--;
      return error(503, 'SERVICE_UNAVAILABLE', 'The service is temporarily unavailable (test fault).', {}, headers);
    }
    if (faults.status429Every && n % faults.status429Every === 0) {
      this.counters.rateLimited['TEN_SECONDLY_ROLLING'] = (this.counters.rateLimited['TEN_SECONDLY_ROLLING'] ?? 0) + 1;
      return error(
        429,
        'RATE_LIMITS',
        'You have reached your ten_secondly_rolling limit. (test fault)',
        { errorType: 'RATE_LIMIT', policyName: 'TEN_SECONDLY_ROLLING', requestId: randomUUID() },
        { ...headers, 'retry-after': '1' },
      );
    }
    if (faults.errorRate && this.random() < faults.errorRate) {
      return error(502, 'INTERNAL_ERROR', 'Bad gateway (test fault).', {}, headers);
    }
    if (raw === null) return error(413, 'VALIDATION_ERROR', `The request body is larger than ${MAX_BODY_BYTES} bytes.`, {}, headers);

    let body: unknown = undefined;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return error(400, 'VALIDATION_ERROR', 'Invalid input JSON on line 1: the body is not valid JSON.', {}, headers);
      }
    }
    try {
      const answer = this.route(req.method ?? 'GET', url, body);
      this.flushLog();
      this.reply(res, answer.status, answer.body, headers);
    } catch (err) {
      this.flushLog();
      if (err instanceof HttpError) return error(err.status, err.category, err.message, err.extra, headers);
      throw err;
    }
  }

  /** Counts a request against the limits, or says which limit refuses it. */
  private admit(now: number, isSearch: boolean): { policy: string; message: string; retryAfterMs: number } | null {
    this.rollDaily(now);
    const { perWindow, windowMs, daily, searchPerSecond } = this.limits;
    if (this.dailyUsed >= daily) {
      return { policy: 'DAILY', message: 'You have reached your daily limit.', retryAfterMs: this.dailyResetAt - now };
    }
    this.trim(now);
    const inWindow = this.hits.length - this.hitHead;
    if (inWindow >= perWindow) {
      const oldest = this.hits[this.hits.length - perWindow]!;
      return {
        policy: 'TEN_SECONDLY_ROLLING',
        message: 'You have reached your ten_secondly_rolling limit.',
        retryAfterMs: oldest + windowMs - now,
      };
    }
    if (isSearch) {
      this.searchHits = this.searchHits.filter((t) => t > now - 1000);
      if (this.searchHits.length >= searchPerSecond) {
        return { policy: 'SECONDLY', message: 'You have reached your secondly limit.', retryAfterMs: this.searchHits[0]! + 1000 - now };
      }
      this.searchHits.push(now);
    }
    this.hits.push(now);
    this.dailyUsed++;
    return null;
  }

  private trim(now: number): void {
    const cutoff = now - this.limits.windowMs;
    while (this.hitHead < this.hits.length && this.hits[this.hitHead]! <= cutoff) this.hitHead++;
    if (this.hitHead > 4096) {
      this.hits = this.hits.slice(this.hitHead);
      this.hitHead = 0;
    }
  }

  private nextDailyReset(now: number): number {
    return this.limits.dailyResetMs !== undefined ? now + this.limits.dailyResetMs : nextMidnightUtc(now);
  }

  private rollDaily(now: number): void {
    if (now < this.dailyResetAt) return;
    this.dailyUsed = 0;
    this.dailyResetAt = this.nextDailyReset(now);
  }

  private rateHeaders(now: number): Record<string, string> {
    this.trim(now);
    const { perWindow, windowMs, daily } = this.limits;
    const inWindow = this.hits.length - this.hitHead;
    const secondly = Math.max(1, Math.floor((perWindow * 1000) / windowMs));
    let lastSecond = 0;
    for (let i = this.hits.length - 1; i >= this.hitHead && this.hits[i]! > now - 1000; i--) lastSecond++;
    return {
      'x-hubspot-ratelimit-daily': String(daily),
      'x-hubspot-ratelimit-daily-remaining': String(Math.max(0, daily - this.dailyUsed)),
      'x-hubspot-ratelimit-interval-milliseconds': String(windowMs),
      'x-hubspot-ratelimit-max': String(perWindow),
      'x-hubspot-ratelimit-remaining': String(Math.max(0, perWindow - inWindow)),
      'x-hubspot-ratelimit-secondly': String(secondly),
      'x-hubspot-ratelimit-secondly-remaining': String(Math.max(0, secondly - lastSecond)),
    };
  }

  private route(method: string, url: URL, body: unknown): { status: number; body: unknown } {
    const parts = url.pathname.split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
    const q = url.searchParams;
    if (parts[0] === 'crm' && parts[1] === 'v3' && parts[2] === 'objects' && parts[3] !== undefined) {
      const store = this.store(parts[3]);
      const rest = parts.slice(4);
      if (rest[0] === 'batch' && rest.length === 2 && method === 'POST') return this.batch(store, rest[1]!, body);
      if (rest[0] === 'search' && rest.length === 1 && method === 'POST') return this.search(store, body);
      if (rest.length === 0 && method === 'GET') return this.list(store, q);
      if (rest.length === 0 && method === 'POST') return this.createOne(store, body);
      if (rest.length === 1) {
        if (method === 'GET') return this.getOne(store, rest[0]!, q);
        if (method === 'PATCH') return this.updateOne(store, rest[0]!, q, body);
        if (method === 'DELETE') return this.archiveOne(store, rest[0]!);
      }
    }
    if (parts[0] === 'crm' && parts[1] === 'v3' && parts[2] === 'properties' && parts[3] !== undefined) {
      const store = this.store(parts[3]);
      if (parts.length === 4 && method === 'GET') return { status: 200, body: { results: [...store.props.values()] } };
      if (parts.length === 4 && method === 'POST') return this.createProperty(store, body);
      if (parts.length === 5 && method === 'GET') {
        const def = store.props.get(parts[4]!);
        if (def === undefined) throw new HttpError(404, 'OBJECT_NOT_FOUND', `Unable to find property ${parts[4]} on object type ${store.name}`);
        return { status: 200, body: def };
      }
    }
    if (parts[0] === 'crm-object-schemas' && parts[1] === 'v3' && parts[2] === 'schemas' && parts.length === 3) {
      if (method === 'GET') return { status: 200, body: { results: [...this.objects.values()].filter((s, i, all) => s.custom && all.indexOf(s) === i).map((s) => this.schemaOf(s)) } };
      if (method === 'POST') return this.postSchema(body);
    }
    throw new HttpError(404, 'OBJECT_NOT_FOUND', `No endpoint ${method} ${url.pathname} in this emulator.`);
  }

  private store(objectType: string): ObjectStore {
    const store = this.objects.get(objectType);
    if (store === undefined) throw new HttpError(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${objectType}`);
    return store;
  }

  private addObject(name: string, objectTypeId: string, custom: boolean, primaryDisplayProperty: string, specs: PropertySpec[]): ObjectStore {
    const store: ObjectStore = {
      name,
      objectTypeId,
      custom,
      primaryDisplayProperty,
      props: new Map(),
      records: new Map(),
      unique: new Map(),
    };
    for (const spec of specs) this.putProperty(store, defineProperty(spec));
    this.objects.set(name, store);
    this.objects.set(objectTypeId, store);
    if (custom) this.objects.set(`p_${name}`, store);
    return store;
  }

  private putProperty(store: ObjectStore, def: PropertyDefinition): void {
    store.props.set(def.name, def);
    if (def.hasUniqueValue && !store.unique.has(def.name)) store.unique.set(def.name, new Map());
  }

  private createSchema(name: string, properties: PropertySpec[], primaryDisplayProperty?: string): ObjectStore {
    const objectTypeId = `2-${this.nextCustomId++}`;
    const specs: PropertySpec[] = [
      { name: 'hs_object_id', type: 'number', readOnly: true, hubspotDefined: true, label: 'Record ID' },
      { name: 'hs_createdate', type: 'datetime', readOnly: true, hubspotDefined: true, label: 'Create date' },
      { name: 'hs_lastmodifieddate', type: 'datetime', readOnly: true, hubspotDefined: true, label: 'Last modified date' },
      ...properties,
    ];
    const primary = primaryDisplayProperty ?? properties[0]?.name ?? 'hs_object_id';
    const store = this.addObject(name, objectTypeId, true, primary, specs);
    this.pending.push({ t: 'schema', name, objectTypeId, primaryDisplayProperty: primary });
    for (const def of store.props.values()) this.pending.push({ t: 'prop', o: name, d: def });
    return store;
  }

  private schemaOf(s: ObjectStore): Record<string, unknown> {
    return {
      id: s.objectTypeId.split('-')[1],
      objectTypeId: s.objectTypeId,
      name: s.name,
      fullyQualifiedName: `p_${s.name}`,
      labels: { singular: s.name, plural: s.name },
      primaryDisplayProperty: s.primaryDisplayProperty,
      requiredProperties: [],
      searchableProperties: [],
      secondaryDisplayProperties: [],
      associations: [],
      properties: [...s.props.values()],
      archived: false,
    };
  }

  private postSchema(body: unknown): { status: number; body: unknown } {
    if (!isObject(body) || typeof body['name'] !== 'string' || !/^[a-z][a-z0-9_]*$/i.test(body['name'])) {
      throw new HttpError(400, 'VALIDATION_ERROR', 'A schema needs a "name" of letters, digits and underscores.');
    }
    if (this.objects.has(body['name'])) throw new HttpError(409, 'OBJECT_ALREADY_EXISTS', `An object type named ${body['name']} already exists.`);
    const props = Array.isArray(body['properties']) ? body['properties'] : [];
    const specs = props.map((p: unknown, i) => this.propertySpec(p, `properties[${i}]`));
    const primary = typeof body['primaryDisplayProperty'] === 'string' ? body['primaryDisplayProperty'] : undefined;
    const store = this.createSchema(body['name'], specs, primary);
    return { status: 201, body: this.schemaOf(store) };
  }

  private propertySpec(p: unknown, where: string): PropertySpec {
    const types: PropertyType[] = ['string', 'number', 'date', 'datetime', 'enumeration', 'bool', 'phone_number'];
    if (!isObject(p)) throw new HttpError(400, 'VALIDATION_ERROR', `${where} must be an object`);
    const name = p['name'];
    if (typeof name !== 'string' || !/^[a-z][a-z0-9_]*$/.test(name)) {
      throw new HttpError(400, 'VALIDATION_ERROR', `${where}.name must start with a lower-case letter and hold only lower-case letters, digits and underscores`);
    }
    if (typeof p['type'] !== 'string' || !types.includes(p['type'] as PropertyType)) {
      throw new HttpError(400, 'VALIDATION_ERROR', `${where}.type must be one of ${types.join(', ')}`);
    }
    if (typeof p['label'] !== 'string' || p['label'] === '') throw new HttpError(400, 'VALIDATION_ERROR', `${where}.label is required`);
    const options = Array.isArray(p['options'])
      ? p['options'].map((o: unknown, i) => {
          if (!isObject(o) || typeof o['value'] !== 'string' || typeof o['label'] !== 'string') {
            throw new HttpError(400, 'VALIDATION_ERROR', `${where}.options[${i}] needs a string label and value`);
          }
          return { label: o['label'], value: o['value'] };
        })
      : undefined;
    const spec: PropertySpec = { name, type: p['type'] as PropertyType, label: p['label'] };
    if (typeof p['fieldType'] === 'string') spec.fieldType = p['fieldType'];
    if (typeof p['groupName'] === 'string') spec.groupName = p['groupName'];
    if (typeof p['description'] === 'string') spec.description = p['description'];
    if (options !== undefined) spec.options = options;
    if (p['hasUniqueValue'] === true) spec.hasUniqueValue = true;
    return spec;
  }

  private createProperty(store: ObjectStore, body: unknown): { status: number; body: unknown } {
    const spec = this.propertySpec(body, 'the property');
    if (store.props.has(spec.name)) throw new HttpError(409, 'OBJECT_ALREADY_EXISTS', `A property named '${spec.name}' already exists.`);
    if (isObject(body) && typeof body['groupName'] !== 'string') throw new HttpError(400, 'VALIDATION_ERROR', 'the property needs a groupName');
    const def = defineProperty(spec, new Date().toISOString());
    this.putProperty(store, def);
    this.pending.push({ t: 'prop', o: store.name, d: def });
    return { status: 201, body: def };
  }

  // ---------------------------------------------------------------------------------------
  // Records
  // ---------------------------------------------------------------------------------------

  private view(store: ObjectStore, r: StoredRecord, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { id: r.id, properties: { ...r.properties }, createdAt: r.createdAt, updatedAt: r.updatedAt, archived: false, ...extra };
  }

  /** Validates an input's properties; returns the stored values or the problems. */
  private checkProperties(
    store: ObjectStore,
    properties: unknown,
  ): { values: Record<string, string> } | { problems: { message: string; code: string; name: string }[] } {
    if (properties === undefined) return { values: {} };
    if (!isObject(properties)) return { problems: [propertyProblem('properties must be an object', 'INVALID_PROPERTIES', 'properties')] };
    const values: Record<string, string> = {};
    const problems: { message: string; code: string; name: string }[] = [];
    for (const [name, raw] of Object.entries(properties)) {
      const def = store.props.get(name);
      if (def === undefined) {
        problems.push(propertyProblem(`Property "${name}" does not exist`, 'PROPERTY_DOESNT_EXIST', name));
        continue;
      }
      if (def.modificationMetadata.readOnlyValue) {
        problems.push(propertyProblem(`"${name}" is a read only property; its value cannot be set.`, 'READ_ONLY_VALUE', name));
        continue;
      }
      const checked = checkValue(store.name, def, raw);
      if ('problem' in checked) problems.push(checked.problem);
      else values[name] = checked.value;
    }
    return problems.length > 0 ? { problems } : { values };
  }

  /** The id of another record holding one of `values`' unique values, if any. */
  private uniqueClash(store: ObjectStore, values: Record<string, string>, self?: string): { property: string; id: string } | undefined {
    for (const [property, index] of store.unique) {
      const v = values[property];
      if (v === undefined || v === '') continue;
      const owner = index.get(normalise(property, v));
      if (owner !== undefined && owner !== self) return { property, id: owner };
    }
    return undefined;
  }

  private save(store: ObjectStore, record: StoredRecord, before?: StoredRecord): void {
    for (const [property, index] of store.unique) {
      const old = before?.properties[property];
      if (old !== undefined && old !== '') index.delete(normalise(property, old));
      const now = record.properties[property];
      if (now !== undefined && now !== '') index.set(normalise(property, now), record.id);
    }
    store.records.set(record.id, record);
    this.pending.push({ t: 'put', o: store.name, r: record });
  }

  private insert(store: ObjectStore, values: Record<string, string>): StoredRecord {
    const id = String(this.nextId++);
    const at = new Date().toISOString();
    const properties: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) if (v !== '') properties[k] = v;
    properties['hs_object_id'] = id;
    properties[store.custom ? 'hs_createdate' : 'createdate'] = at;
    properties[modifiedProperty(store.custom ? '' : store.name)] = at;
    const record: StoredRecord = { id, properties, createdAt: at, updatedAt: at };
    this.save(store, record);
    return record;
  }

  /** Applies values; a record whose values do not change keeps its modification time. */
  private patch(store: ObjectStore, existing: StoredRecord, values: Record<string, string>): StoredRecord {
    const properties = { ...existing.properties };
    let changed = false;
    for (const [k, v] of Object.entries(values)) {
      if (v === '') {
        if (k in properties) {
          delete properties[k];
          changed = true;
        }
      } else if (properties[k] !== v) {
        properties[k] = v;
        changed = true;
      }
    }
    if (!changed) return existing;
    const at = new Date().toISOString();
    properties[modifiedProperty(store.custom ? '' : store.name)] = at;
    const record = { ...existing, properties, updatedAt: at };
    this.save(store, record, existing);
    return record;
  }

  private remove(store: ObjectStore, id: string): void {
    const existing = store.records.get(id);
    if (existing === undefined) return;
    for (const [property, index] of store.unique) {
      const v = existing.properties[property];
      if (v !== undefined && v !== '') index.delete(normalise(property, v));
    }
    store.records.delete(id);
    this.pending.push({ t: 'del', o: store.name, id });
  }

  /** Finds a record by id, or by a unique property when `idProperty` is given. */
  private lookup(store: ObjectStore, id: string, idProperty?: string): StoredRecord | undefined {
    if (idProperty === undefined || idProperty === 'hs_object_id') return store.records.get(id);
    const recordId = store.unique.get(idProperty)?.get(normalise(idProperty, id));
    return recordId === undefined ? undefined : store.records.get(recordId);
  }

  private inputsOf(body: unknown): unknown[] {
    if (!isObject(body) || !Array.isArray(body['inputs'])) throw new HttpError(400, 'VALIDATION_ERROR', 'Invalid input JSON: "inputs" must be an array.');
    const inputs = body['inputs'];
    if (inputs.length > MAX_BATCH_INPUTS) {
      throw new HttpError(400, 'VALIDATION_ERROR', `Too many inputs: the limit is ${MAX_BATCH_INPUTS} inputs per batch, this request has ${inputs.length}.`);
    }
    return inputs;
  }

  private batch(store: ObjectStore, action: string, body: unknown): { status: number; body: unknown } {
    const inputs = this.inputsOf(body);
    const startedAt = new Date().toISOString();
    const results: Record<string, unknown>[] = [];
    const errors: StandardError[] = [];
    const traceCtx = (input: Record<string, unknown>): Record<string, string[]> =>
      typeof input['objectWriteTraceId'] === 'string' ? { objectWriteTraceId: [input['objectWriteTraceId']] } : {};
    const trace = (input: Record<string, unknown>): Record<string, unknown> =>
      typeof input['objectWriteTraceId'] === 'string' ? { objectWriteTraceId: input['objectWriteTraceId'] } : {};
    const seen = new Set<string>();
    const duplicate = (id: string, ctx: Record<string, string[]>): boolean => {
      if (!seen.has(id)) {
        seen.add(id);
        return false;
      }
      errors.push(batchError('VALIDATION_ERROR', `Duplicate IDs found in batch input: [${id}]. IDs must be unique`, { ids: [id], ...ctx }, 'DUPLICATE_ID'));
      return true;
    };
    const singular = store.custom ? 'Object' : store.name.replace(/ies$/, 'y').replace(/s$/, '').replace(/^\w/, (c) => c.toUpperCase());

    switch (action) {
      case 'create':
      case 'update':
      case 'upsert': {
        this.counters.batches.requests++;
        this.counters.batches.inputs += inputs.length;
        for (const item of inputs) {
          if (!isObject(item)) {
            errors.push(batchError('VALIDATION_ERROR', 'Each input must be an object.', {}));
            continue;
          }
          const ctx = traceCtx(item);
          const checked = this.checkProperties(store, item['properties']);
          if (action === 'create') {
            if ('problems' in checked) {
              errors.push(validationError(checked.problems, ctx));
              continue;
            }
            const clash = this.uniqueClash(store, checked.values);
            if (clash !== undefined) {
              errors.push(batchError('CONFLICT', `${singular} already exists. Existing ID: ${clash.id}`, ctx, 'CONFLICT'));
              continue;
            }
            results.push(this.view(store, this.insert(store, checked.values), trace(item)));
            continue;
          }
          const id = typeof item['id'] === 'string' || typeof item['id'] === 'number' ? String(item['id']) : undefined;
          const idProperty = typeof item['idProperty'] === 'string' ? item['idProperty'] : undefined;
          if (id === undefined || id === '') {
            errors.push(batchError('VALIDATION_ERROR', 'Each input needs an "id".', ctx));
            continue;
          }
          const idCtx = { ids: [id], ...ctx };
          if (duplicate(`${idProperty ?? ''}:${id}`, ctx)) continue;
          if (action === 'upsert' && idProperty === undefined) {
            errors.push(batchError('VALIDATION_ERROR', 'Upsert inputs need an "idProperty" naming a unique property.', idCtx));
            continue;
          }
          if (idProperty !== undefined && idProperty !== 'hs_object_id' && !store.unique.has(idProperty)) {
            errors.push(
              batchError(
                'VALIDATION_ERROR',
                store.props.has(idProperty)
                  ? `Property "${idProperty}" is not a unique property and cannot be used as idProperty.`
                  : `Property "${idProperty}" does not exist`,
                idCtx,
              ),
            );
            continue;
          }
          if ('problems' in checked) {
            errors.push(validationError(checked.problems, idCtx));
            continue;
          }
          const existing = this.lookup(store, id, idProperty);
          if (existing === undefined && action === 'update') {
            errors.push(batchError('OBJECT_NOT_FOUND', `Could not get some ${store.name} objects, they may be deleted or not exist. Check that ids are valid.`, idCtx));
            continue;
          }
          const values = { ...checked.values };
          if (action === 'upsert' && idProperty !== 'hs_object_id') {
            const idDef = store.props.get(idProperty!)!;
            const idValue = checkValue(store.name, idDef, id);
            if ('problem' in idValue) {
              errors.push(validationError([idValue.problem], idCtx));
              continue;
            }
            values[idProperty!] = idValue.value;
          }
          const clash = this.uniqueClash(store, values, existing?.id);
          if (clash !== undefined) {
            errors.push(
              batchError('CONFLICT', `A ${singular.toLowerCase()} with ${clash.property} "${values[clash.property]}" already exists. Existing ID: ${clash.id}`, idCtx, 'CONFLICT'),
            );
            continue;
          }
          if (existing === undefined) {
            if (idProperty === 'hs_object_id') {
              errors.push(batchError('OBJECT_NOT_FOUND', `No ${store.name} object with hs_object_id ${id}.`, idCtx));
              continue;
            }
            results.push(this.view(store, this.insert(store, values), { ...trace(item), new: true }));
          } else {
            const updated = this.patch(store, existing, values);
            results.push(this.view(store, updated, action === 'upsert' ? { ...trace(item), new: false } : trace(item)));
          }
        }
        break;
      }
      case 'read': {
        const idProperty = isObject(body) && typeof body['idProperty'] === 'string' ? body['idProperty'] : undefined;
        if (idProperty !== undefined && idProperty !== 'hs_object_id' && !store.unique.has(idProperty)) {
          throw new HttpError(400, 'VALIDATION_ERROR', `Property "${idProperty}" is not a unique property and cannot be used as idProperty.`);
        }
        const wanted = isObject(body) && Array.isArray(body['properties']) ? (body['properties'] as unknown[]).map(String) : [];
        const missing: string[] = [];
        for (const item of inputs) {
          const id = isObject(item) && (typeof item['id'] === 'string' || typeof item['id'] === 'number') ? String(item['id']) : '';
          const r = this.lookup(store, id, idProperty);
          if (r === undefined) {
            missing.push(id);
            continue;
          }
          const view = this.view(store, r);
          if (wanted.length > 0) view['properties'] = this.pick(r, wanted);
          results.push(view);
        }
        if (missing.length > 0) {
          errors.push(batchError('OBJECT_NOT_FOUND', `Could not get some ${store.name} objects, they may be deleted or not exist. Check that ids are valid.`, { ids: missing }));
        }
        break;
      }
      case 'archive': {
        this.counters.batches.requests++;
        this.counters.batches.inputs += inputs.length;
        for (const item of inputs) {
          if (isObject(item) && (typeof item['id'] === 'string' || typeof item['id'] === 'number')) this.remove(store, String(item['id']));
        }
        return { status: 204, body: undefined };
      }
      default:
        throw new HttpError(404, 'OBJECT_NOT_FOUND', `No batch action "${action}".`);
    }
    const completedAt = new Date().toISOString();
    const out: Record<string, unknown> = { status: 'COMPLETE', results, startedAt, completedAt };
    if (errors.length > 0) return { status: 207, body: { ...out, numErrors: errors.length, errors } };
    return { status: action === 'create' ? 201 : 200, body: out };
  }

  private pick(r: StoredRecord, wanted: string[]): Record<string, string | null> {
    const out: Record<string, string | null> = {};
    for (const p of wanted) out[p] = r.properties[p] ?? null;
    return out;
  }

  private getOne(store: ObjectStore, id: string, q: URLSearchParams): { status: number; body: unknown } {
    const idProperty = q.get('idProperty') ?? undefined;
    const r = this.lookup(store, id, idProperty);
    if (r === undefined) throw new HttpError(404, 'OBJECT_NOT_FOUND', `Object not found.  objectId are usually numeric.`);
    const view = this.view(store, r);
    const wanted = q.getAll('properties').flatMap((p) => p.split(',')).filter((p) => p !== '');
    if (wanted.length > 0) view['properties'] = this.pick(r, wanted);
    return { status: 200, body: view };
  }

  private createOne(store: ObjectStore, body: unknown): { status: number; body: unknown } {
    const checked = this.checkProperties(store, isObject(body) ? body['properties'] : undefined);
    if ('problems' in checked) {
      const e = validationError(checked.problems, {});
      throw new HttpError(400, 'VALIDATION_ERROR', e.message, { errors: e.errors });
    }
    const clash = this.uniqueClash(store, checked.values);
    if (clash !== undefined) throw new HttpError(409, 'CONFLICT', `Object already exists. Existing ID: ${clash.id}`);
    return { status: 201, body: this.view(store, this.insert(store, checked.values)) };
  }

  private updateOne(store: ObjectStore, id: string, q: URLSearchParams, body: unknown): { status: number; body: unknown } {
    const existing = this.lookup(store, id, q.get('idProperty') ?? undefined);
    if (existing === undefined) throw new HttpError(404, 'OBJECT_NOT_FOUND', 'Object not found.');
    const checked = this.checkProperties(store, isObject(body) ? body['properties'] : undefined);
    if ('problems' in checked) {
      const e = validationError(checked.problems, {});
      throw new HttpError(400, 'VALIDATION_ERROR', e.message, { errors: e.errors });
    }
    const clash = this.uniqueClash(store, checked.values, existing.id);
    if (clash !== undefined) throw new HttpError(409, 'CONFLICT', `Object already exists. Existing ID: ${clash.id}`);
    return { status: 200, body: this.view(store, this.patch(store, existing, checked.values)) };
  }

  private archiveOne(store: ObjectStore, id: string): { status: number; body: unknown } {
    this.remove(store, id);
    return { status: 204, body: undefined };
  }

  private list(store: ObjectStore, q: URLSearchParams): { status: number; body: unknown } {
    const limit = Number(q.get('limit') ?? 10);
    if (!Number.isInteger(limit) || limit < 1 || limit > LIST_MAX_LIMIT) {
      throw new HttpError(400, 'VALIDATION_ERROR', `limit must be between 1 and ${LIST_MAX_LIMIT}`);
    }
    const after = Number(q.get('after') ?? 0);
    const wanted = q.getAll('properties').flatMap((p) => p.split(',')).filter((p) => p !== '');
    const page: Record<string, unknown>[] = [];
    let next: string | undefined;
    for (const r of store.records.values()) {
      if (Number(r.id) <= after) continue;
      if (page.length === limit) {
        next = String(page[page.length - 1]!['id']);
        break;
      }
      const view = this.view(store, r);
      if (wanted.length > 0) view['properties'] = this.pick(r, wanted);
      page.push(view);
    }
    const body: Record<string, unknown> = { results: page };
    if (next !== undefined) body['paging'] = { next: { after: next, link: `${this.url}/crm/v3/objects/${store.name}?after=${next}` } };
    return { status: 200, body };
  }

  private search(store: ObjectStore, body: unknown): { status: number; body: unknown } {
    const req = isObject(body) ? body : {};
    const limit = req['limit'] === undefined ? 10 : Number(req['limit']);
    if (!Number.isInteger(limit) || limit < 0 || limit > SEARCH_MAX_LIMIT) {
      throw new HttpError(400, 'VALIDATION_ERROR', `limit must be between 0 and ${SEARCH_MAX_LIMIT}`);
    }
    const groups = Array.isArray(req['filterGroups']) ? (req['filterGroups'] as unknown[]) : [];
    if (groups.length > 5) throw new HttpError(400, 'VALIDATION_ERROR', 'A search may have at most 5 filterGroups.');
    const filters = groups.map((g) => (isObject(g) && Array.isArray(g['filters']) ? (g['filters'] as unknown[]).filter(isObject) : []));
    if (filters.some((f) => f.length > 6) || filters.flat().length > 18) {
      throw new HttpError(400, 'VALIDATION_ERROR', 'A search may have at most 6 filters in a group and 18 in all.');
    }
    const matches = (r: StoredRecord, f: Record<string, unknown>): boolean => {
      const name = String(f['propertyName'] ?? '');
      const v = r.properties[name];
      const value = f['value'] === undefined ? undefined : String(f['value']);
      const values = Array.isArray(f['values']) ? (f['values'] as unknown[]).map(String) : [];
      const cmp = (a: string, b: string) => {
        const na = Number(a);
        const nb = Number(b);
        return Number.isNaN(na) || Number.isNaN(nb) ? a.localeCompare(b) : na - nb;
      };
      switch (f['operator']) {
        case 'EQ':
          return v !== undefined && value !== undefined && normalise(name, v) === normalise(name, value);
        case 'NEQ':
          return v === undefined || value === undefined || normalise(name, v) !== normalise(name, value);
        case 'IN':
          return v !== undefined && values.includes(v);
        case 'NOT_IN':
          return v === undefined || !values.includes(v);
        case 'HAS_PROPERTY':
          return v !== undefined;
        case 'NOT_HAS_PROPERTY':
          return v === undefined;
        case 'GT':
          return v !== undefined && value !== undefined && cmp(v, value) > 0;
        case 'GTE':
          return v !== undefined && value !== undefined && cmp(v, value) >= 0;
        case 'LT':
          return v !== undefined && value !== undefined && cmp(v, value) < 0;
        case 'LTE':
          return v !== undefined && value !== undefined && cmp(v, value) <= 0;
        case 'CONTAINS_TOKEN':
          return v !== undefined && value !== undefined && v.toLowerCase().includes(value.replace(/\*/g, '').toLowerCase());
        default:
          throw new HttpError(400, 'VALIDATION_ERROR', `Unsupported filter operator ${JSON.stringify(f['operator'])}`);
      }
    };
    const all = [...store.records.values()].filter((r) => filters.length === 0 || filters.some((group) => group.every((f) => matches(r, f))));
    const after = Number(req['after'] ?? 0);
    const page = all.slice(after, after + limit);
    const wanted = Array.isArray(req['properties']) ? (req['properties'] as unknown[]).map(String) : [];
    const out: Record<string, unknown> = {
      total: all.length,
      results: page.map((r) => {
        const view = this.view(store, r);
        if (wanted.length > 0) view['properties'] = this.pick(r, wanted);
        return view;
      }),
    };
    if (after + limit < all.length) out['paging'] = { next: { after: String(after + limit) } };
    return { status: 200, body: out };
  }

  // ---------------------------------------------------------------------------------------
  // Persistence
  // ---------------------------------------------------------------------------------------

  /** Appends what this request changed, before it is answered, so an acknowledged write survives a crash. */
  private flushLog(): void {
    const entries = this.pending;
    this.pending = [];
    if (this.logPath === undefined || entries.length === 0) return;
    jsonLinesLog.append(this.logPath, entries);
  }

  private replay(): void {
    if (this.logPath === undefined) return;
    jsonLinesLog.replay<LogEntry>(this.logPath, 'hubspot', (entry) => this.apply(entry));
    this.pending = [];
  }


  private apply(entry: LogEntry): void {
    switch (entry.t) {
      case 'schema': {
        const n = Number(entry.objectTypeId.split('-')[1]);
        this.nextCustomId = Math.max(this.nextCustomId, n + 1);
        if (!this.objects.has(entry.name)) this.addObject(entry.name, entry.objectTypeId, true, entry.primaryDisplayProperty, []);
        return;
      }
      case 'prop': {
        const store = this.objects.get(entry.o);
        if (store !== undefined) this.putProperty(store, entry.d);
        return;
      }
      case 'put': {
        const store = this.objects.get(entry.o);
        if (store === undefined) return;
        this.save(store, entry.r, store.records.get(entry.r.id));
        this.nextId = Math.max(this.nextId, Number(entry.r.id) + 1);
        return;
      }
      case 'del': {
        const store = this.objects.get(entry.o);
        if (store !== undefined) this.remove(store, entry.id);
        return;
      }
    }
  }
}

/** Starts a HubSpot emulator on 127.0.0.1; see {@link HubSpotEmulator}. */
export function start(options: HubSpotEmulatorOptions = {}): Promise<HubSpotEmulator> {
  return HubSpotEmulator.start(options);
}
