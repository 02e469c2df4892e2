/**
 * A webhook receiver on 127.0.0.1 that speaks the same wire format a real receiver must:
 * it verifies signatures, applies records to an in-memory object store, accepts events
 * (each idempotency key once, ever), dedupes by idempotency key, and can misbehave on
 * request (latency, 5xx, 429, connection resets, rejected keys).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { EmulatorOptions, RunningEmulator, Row, Value } from '@outflow/core';
import {
  closeServer,
  createEmulatorServer,
  FaultInjector,
  jsonLinesLog,
  listenOnLoopback,
  loseAnswer,
  parseJson,
  readBody,
  resetConnection,
  Router,
  sendJson,
  type KitFaults,
} from '@outflow/core/emulator-kit';
import type { WebhookConfig, WireRecord, WireResult } from './index.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from './signature.js';

/** The signing secret the emulator expects unless told otherwise. */
export const SANDBOX_SECRET = 'outflow-sandbox-secret';
/** The path batches are POSTed to; `config.url` points here. */
export const RECEIVER_PATH = '/hooks/outflow';
/** `GET` this path (with an optional `?object=`) to read the emulator's state as JSON. */
export const RECORDS_PATH = '/_outflow/records';
/** `GET` this path (with an optional `?object=`) for the receiver's write log: every change it applied, in order. */
export const WRITES_PATH = '/_outflow/writes';
/** The JSON-lines change log kept in `dataDir`. */
export const LOG_FILE = 'webhook-emulator.jsonl';

const MAX_BODY_BYTES = 10 * 1024 * 1024;
const OPS = new Set(['upsert', 'update', 'insert', 'delete', 'event']);
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;

/**
 * Ways to make the emulator misbehave: the kit's faults (`status429Every` answers 429 with
 * `Retry-After: 1`, `failRequests` 503, `errorRate` 500; `loseAnswers` / `lostAnswerRate`
 * apply the batch and then reset the connection, never answer, or answer 502) and the
 * receiver's own.
 */
export interface WebhookFaults extends KitFaults {
  /** Record keys rejected with 'rejected by receiver (test fault)'. */
  rejectKeys?: string[];
  /** The signing secret; read once at start. */
  secret?: string;
}

export interface WebhookEmulatorOptions extends EmulatorOptions {
  /** The signing secret to expect; {@link SANDBOX_SECRET} by default. */
  secret?: string;
  faults?: WebhookFaults;
}

/** A record held by the emulator. */
export interface StoredRecord {
  /** The id the emulator assigned when it created the record, e.g. `rec_1`. */
  id: string;
  object: string;
  key: string;
  fields: Row;
  match?: Row;
}

/**
 * One change the receiver applied or event it accepted (a re-send it recognised by its
 * idempotency key is not applied, so it is not here): the receiver's own write log.
 */
export interface AppliedWrite {
  /** `put` creates or changes a record; `del` removes it; `event` is an event accepted. */
  t: 'put' | 'del' | 'event';
  object: string;
  key: string;
  idempotencyKey: string;
  /** For `put`: whether the record was created by it. */
  created?: boolean;
  /** For `event`: its payload. */
  payload?: Row;
}

/** What `GET /_outflow/records` returns. */
export interface EmulatorSnapshot {
  records: StoredRecord[];
  /** object → key → how many times a record was created for it. */
  createdCounts: Record<string, Record<string, number>>;
  /** Receiver requests seen since start, faulted ones included. */
  requests: number;
  /** Records received in well-formed batches since start, duplicates included. */
  received: number;
}

type LogEntry =
  | { t: 'put'; idempotencyKey: string; record: StoredRecord; created: boolean }
  | { t: 'del'; idempotencyKey: string; object: string; key: string }
  | { t: 'event'; idempotencyKey: string; object: string; key: string; payload: Row };

type Outcome = { result: WireResult; entry?: LogEntry };

class BadRequest extends Error {}

type Route = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => Promise<void>;

function isRow(value: unknown): value is Row {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function parseBatch(raw: Buffer): { type: 'check' } | { object: string; records: WireRecord[] } {
  const parsed = parseJson(raw);
  if (!parsed.ok) throw new BadRequest(parsed.message);
  const body = parsed.value;
  if (!isRow(body)) throw new BadRequest('body must be a JSON object');
  if (body['type'] === 'check') return { type: 'check' };
  if (typeof body['object'] !== 'string' || body['object'] === '') throw new BadRequest('"object" must be a non-empty string');
  const records = body['records'];
  if (!Array.isArray(records)) throw new BadRequest('"records" must be an array');
  records.forEach((r: unknown, i) => {
    if (!isRow(r)) throw new BadRequest(`records[${i}] must be an object`);
    if (typeof r['idempotencyKey'] !== 'string' || r['idempotencyKey'] === '') {
      throw new BadRequest(`records[${i}].idempotencyKey must be a non-empty string`);
    }
    if (typeof r['op'] !== 'string' || !OPS.has(r['op'])) {
      throw new BadRequest(`records[${i}].op must be one of upsert, update, insert, delete, event`);
    }
    if (r['op'] === 'event' && !isRow(r['fields'])) throw new BadRequest(`records[${i}].fields must be the event's payload, an object`);
    if (typeof r['key'] !== 'string') throw new BadRequest(`records[${i}].key must be a string`);
    if (r['fields'] !== undefined && !isRow(r['fields'])) throw new BadRequest(`records[${i}].fields must be an object`);
    if (r['match'] !== undefined && !isRow(r['match'])) throw new BadRequest(`records[${i}].match must be an object`);
  });
  return { object: body['object'], records: records as unknown as WireRecord[] };
}

function slot(object: string, key: string): string {
  return JSON.stringify([object, key]);
}

function invalidEmail(fields: Row | undefined): Value | undefined {
  if (fields === undefined || !('email' in fields)) return undefined;
  const email = fields['email'];
  if (email === null || (typeof email === 'string' && EMAIL.test(email))) return undefined;
  return email;
}

/** A running webhook receiver and its inspection API. */
export class WebhookEmulator implements RunningEmulator<WebhookConfig> {
  /** The receiver endpoint, `http://127.0.0.1:<port>/hooks/outflow`. */
  readonly url: string;
  /** Points a webhook connection at this emulator. */
  readonly config: { url: string; secret: string };
  /** `GET` here (with an optional `?object=`) for an {@link EmulatorSnapshot}. */
  readonly recordsUrl: string;

  private readonly server: Server;
  private readonly secret: string;
  private readonly logPath: string | undefined;
  private readonly faults: FaultInjector<WebhookFaults>;
  private readonly routes: Router<Route>;
  private readonly store = new Map<string, Map<string, StoredRecord>>();
  private readonly created = new Map<string, Map<string, number>>();
  /** The last change applied to each (object, key): a re-send of it is answered, not applied. */
  private readonly latest = new Map<string, WireResult>();
  /** The idempotency key of every event accepted: an event is accepted once, ever. */
  private readonly events = new Set<string>();
  private readonly applied: AppliedWrite[] = [];
  private nextId = 1;
  private requestCount = 0;
  private receivedCount = 0;
  private stopped = false;

  private constructor(server: Server, port: number, secret: string, logPath: string | undefined, faults: WebhookFaults) {
    this.server = server;
    this.secret = secret;
    this.logPath = logPath;
    this.faults = new FaultInjector(faults);
    this.routes = new Router<Route>({
      notFound: (_method, path) => ({ error: `no receiver at ${path}; POST to ${RECEIVER_PATH}` }),
      methodNotAllowed: (_method, path, allowed) => ({ error: `use ${allowed.join(' or ')} on ${path}` }),
    })
      .on('GET', RECORDS_PATH, async (_req, res, query) => sendJson(res, 200, this.snapshot(query.get('object') ?? undefined)))
      .on('GET', WRITES_PATH, async (_req, res, query) => sendJson(res, 200, { writes: this.writes(query.get('object') ?? undefined) }))
      .on('POST', RECEIVER_PATH, (req, res) => this.receive(req, res));
    this.url = `http://127.0.0.1:${port}${RECEIVER_PATH}`;
    this.recordsUrl = `http://127.0.0.1:${port}${RECORDS_PATH}`;
    this.config = { url: this.url, secret };
  }

  /** Starts a receiver; with `dataDir`, replays the change log kept there first. */
  static async start(options: WebhookEmulatorOptions = {}): Promise<WebhookEmulator> {
    const faults = { ...options.faults };
    const secret = options.secret ?? faults.secret ?? SANDBOX_SECRET;
    const logPath = jsonLinesLog.fileIn(options.dataDir, LOG_FILE);
    const ref: { emulator?: WebhookEmulator } = {};
    const server = createEmulatorServer(
      (req, res) => ref.emulator!.handle(req, res),
      (err, _req, res) => sendJson(res, 500, { error: `emulator failure: ${err instanceof Error ? err.message : String(err)}` }),
    );
    const port = await listenOnLoopback(server, options.port, 'webhook');
    const emulator = new WebhookEmulator(server, port, secret, logPath, faults);
    ref.emulator = emulator;
    try {
      emulator.replay();
    } catch (err) {
      await emulator.stop();
      throw err;
    }
    return emulator;
  }

  /** Replaces the active faults (pass `{}` to clear them); `failRequests` restarts its count. */
  setFaults(faults: WebhookFaults): void {
    this.faults.set(faults);
  }

  /** Current records of `object`, or of every object, in creation order. */
  records(object?: string): StoredRecord[] {
    const maps = object === undefined ? [...this.store.values()] : [this.store.get(object) ?? new Map()];
    return maps.flatMap((m) => [...m.values()]).map((r) => structuredClone(r));
  }

  /** Every change applied since the log began (replayed ones included), oldest first. */
  writes(object?: string): AppliedWrite[] {
    return (object === undefined ? this.applied : this.applied.filter((w) => w.object === object)).map((w) => structuredClone(w));
  }

  /** How many times a record was created for (object, key); more than 1 only after deletes. */
  createdCount(object: string, key: string): number {
    return this.created.get(object)?.get(key) ?? 0;
  }

  /** object → key → creation count, for every key ever created. */
  createdCounts(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [object, keys] of this.created) out[object] = Object.fromEntries(keys);
    return out;
  }

  /** Receiver requests seen since start, including faulted and refused ones. */
  get requests(): number {
    return this.requestCount;
  }

  /** Records received in well-formed, signed batches since start, duplicates included. */
  get received(): number {
    return this.receivedCount;
  }

  /** The same JSON `GET /_outflow/records` returns. */
  snapshot(object?: string): EmulatorSnapshot {
    return { records: this.records(object), createdCounts: this.createdCounts(), requests: this.requests, received: this.received };
  }

  /** Closes the server and every open connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await closeServer(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = this.routes.match(req.method ?? 'GET', req.url ?? '/');
    if ('status' in route) return sendJson(res, route.status, route.body, route.headers);
    return route.handler(req, res, route.query);
  }

  private async receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req, res, MAX_BODY_BYTES);
    this.requestCount++;
    await this.faults.delay();
    if (this.stopped) return;
    switch (this.faults.decide()?.kind) {
      case 'reset':
        return resetConnection(req);
      case 'unavailable':
        return sendJson(res, 503, { error: 'receiver unavailable (test fault)' });
      case 'throttled':
        return sendJson(res, 429, { error: 'too many requests (test fault)' }, { 'retry-after': '1' });
      case 'error':
        return sendJson(res, 500, { error: 'internal receiver error (test fault)' });
    }
    if (!raw.ok) return sendJson(res, raw.status, { error: raw.message });

    const problem = verifySignature(
      this.secret,
      { timestamp: req.headers[TIMESTAMP_HEADER] as string | undefined, signature: req.headers[SIGNATURE_HEADER] as string | undefined },
      raw.value,
    );
    if (problem !== null) return sendJson(res, 401, { error: `signature verification failed: ${problem}` });

    let batch: ReturnType<typeof parseBatch>;
    try {
      batch = parseBatch(raw.value);
    } catch (err) {
      if (err instanceof BadRequest) return sendJson(res, 400, { error: err.message });
      throw err;
    }
    if ('type' in batch) return sendJson(res, 200, { ok: true });

    this.receivedCount += batch.records.length;
    const outcomes = batch.records.map((record) => this.apply(batch.object, record));
    const entries = outcomes.flatMap((o) => (o.entry === undefined ? [] : [o.entry]));
    // Logged before answering, so a record the sender saw acknowledged survives a crash.
    if (this.logPath !== undefined && entries.length > 0) {
      jsonLinesLog.append(this.logPath, entries);
    }
    const lost = this.faults.afterApply();
    if (lost !== undefined) {
      return loseAnswer(req, lost, () => sendJson(res, 502, { error: 'bad gateway: the receiver applied the batch, but its answer was lost (test fault)' }));
    }
    sendJson(res, 200, { results: outcomes.map((o) => o.result) });
  }

  private apply(object: string, record: WireRecord): Outcome {
    const { idempotencyKey, key } = record;
    // Only the last change applied to a record counts as a duplicate: a sender re-sends
    // just its unacknowledged latest change, while an older key seen again is new content
    // that happens to equal an earlier state (A → B → A) and must be applied.
    const earlier = this.latest.get(slot(object, key));
    if (earlier?.idempotencyKey === idempotencyKey) return { result: earlier };
    const reject = (error: string): Outcome => ({ result: { idempotencyKey, ok: false, error, retryable: false } });
    if (record.op === 'event' && this.events.has(idempotencyKey)) return { result: { idempotencyKey, ok: true } };

    if (this.faults.faults.rejectKeys?.includes(key)) return reject('rejected by receiver (test fault)');
    if (record.op === 'event') {
      const badEmail = invalidEmail(record.fields);
      if (badEmail !== undefined) return reject(`email "${typeof badEmail === 'string' ? badEmail : JSON.stringify(badEmail)}" is not a valid email address`);
      return this.commit({ t: 'event', idempotencyKey, object, key, payload: record.fields ?? {} });
    }
    if (record.op === 'delete') return this.commit({ t: 'del', idempotencyKey, object, key });

    const badEmail = invalidEmail(record.fields);
    if (badEmail !== undefined) {
      return reject(`email "${typeof badEmail === 'string' ? badEmail : JSON.stringify(badEmail)}" is not a valid email address`);
    }
    const existing = this.store.get(object)?.get(key);
    if (record.op === 'insert' && existing !== undefined) return reject('record already exists');
    if (record.op === 'update' && existing === undefined) return reject('record not found');

    const stored: StoredRecord =
      existing === undefined
        ? { id: `rec_${this.nextId}`, object, key, fields: { ...record.fields } }
        : { ...existing, fields: { ...existing.fields, ...record.fields } };
    if (record.match !== undefined) stored.match = record.match;
    return this.commit({ t: 'put', idempotencyKey, record: stored, created: existing === undefined });
  }

  /** Applies one change to memory; used both for live requests and for replaying the log. */
  private commit(entry: LogEntry): Outcome {
    let result: WireResult;
    if (entry.t === 'event') {
      this.events.add(entry.idempotencyKey);
      this.applied.push({ t: 'event', object: entry.object, key: entry.key, idempotencyKey: entry.idempotencyKey, payload: structuredClone(entry.payload) });
      return { result: { idempotencyKey: entry.idempotencyKey, ok: true }, entry };
    }
    if (entry.t === 'put') {
      const { object, key, id } = entry.record;
      let records = this.store.get(object);
      if (records === undefined) this.store.set(object, (records = new Map()));
      records.set(key, entry.record);
      if (entry.created) {
        let counts = this.created.get(object);
        if (counts === undefined) this.created.set(object, (counts = new Map()));
        counts.set(key, (counts.get(key) ?? 0) + 1);
        const n = Number(id.replace(/^rec_/, ''));
        if (Number.isInteger(n)) this.nextId = Math.max(this.nextId, n + 1);
      }
      result = { idempotencyKey: entry.idempotencyKey, ok: true, id };
      this.applied.push({ t: 'put', object, key, idempotencyKey: entry.idempotencyKey, created: entry.created });
    } else {
      this.applied.push({ t: 'del', object: entry.object, key: entry.key, idempotencyKey: entry.idempotencyKey });
      this.store.get(entry.object)?.delete(entry.key);
      result = { idempotencyKey: entry.idempotencyKey, ok: true };
    }
    this.latest.set(entry.t === 'put' ? slot(entry.record.object, entry.record.key) : slot(entry.object, entry.key), result);
    return { result, entry };
  }

  private replay(): void {
    if (this.logPath === undefined) return;
    jsonLinesLog.replay<LogEntry>(this.logPath, 'webhook', (entry) => this.commit(entry));
  }

}

/** Starts a webhook receiver on 127.0.0.1; see {@link WebhookEmulator}. */
export function start(options: WebhookEmulatorOptions = {}): Promise<WebhookEmulator> {
  return WebhookEmulator.start(options);
}
