/**
 * The reference destination the destination and event suites are tested against: a small
 * vendor (the "service") held in memory behind a simulated network, and a correct
 * connector for it. It takes records and, when `event` is declared, events (kept in a log
 * of its own, one entry per event accepted).
 * The service assigns ids, addresses records by id ahead of match, dedupes by idempotency
 * key, refuses bad emails, enforces a rate limit and takes the emulator kit's faults
 * (`FaultInjector`) the way the real emulators do: a fault answers before anything is
 * applied, a lost answer comes after. Each switch of {@link Bugs} breaks one guarantee: the
 * broken variants the suite must catch.
 */
import { isDeepStrictEqual } from 'node:util';
import {
  defineConnector,
  destinationError,
  OutflowError,
  Secret,
  Type,
  type ConnectorContext,
  type Destination,
  type Idempotency,
  type LookupResult,
  type Operation,
  type OperationKind,
  type RateLimit,
  type RecordResult,
  type Row,
  type Static,
} from '@outflow/core';
import { FaultInjector } from '@outflow/core/emulator-kit';
import type { DeliveredEvent, DestinationDriver, EventDriver, HeldRecord, TestRecord } from '../src/index.js';

export const TOKEN = 'reference-token-0123456789';
/** What the service enforces, and the correct connector declares. */
export const LIMIT: RateLimit = { requests: 40, perMs: 300 };
/** How long the connector waits for the service's answer. */
export const TIMEOUT_MS = 250;

export const referenceConfig = Type.Object(
  {
    token: Secret({ minLength: 4, description: 'The access token the service expects.' }),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, default: 10, description: 'The most records per write.' })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, default: TIMEOUT_MS, description: 'How long to wait for the service to answer, in milliseconds.' })),
  },
  { additionalProperties: false },
);

export type ReferenceConfig = Static<typeof referenceConfig>;

/** One switch per broken guarantee; the correct destination has none set. */
export interface Bugs {
  // The service's semantics.
  /** Acknowledge the operation at this batch position without storing it. */
  dropAt?: number;
  /** An upsert without a destinationId always creates a record, ignoring its match. */
  upsertAlwaysCreates?: boolean;
  /** Refuse every insert, though insert is declared. */
  refuseInserts?: boolean;
  /** Acknowledge changes to an existing record without applying them. */
  ignoreUpdates?: boolean;
  /** Acknowledge deletes without removing anything. */
  ignoreDeletes?: boolean;
  /** Create the record an update does not find. */
  updateCreates?: boolean;
  /** Reject a delete of a record it does not hold. */
  deleteMissingFails?: boolean;
  /** Address records by their match fields only. */
  ignoreDestinationId?: boolean;
  /** Reject an upsert whose destinationId no longer exists instead of falling back to its match. */
  staleIdRejected?: boolean;
  /** Let an insert overwrite the record that has its match key. */
  insertOverwrites?: boolean;
  /** Accept any email. */
  acceptInvalid?: boolean;
  /** Reject a bad email as retryable. */
  invalidRetryable?: boolean;
  /** Refuse a whole batch holding a bad email with a retryable error. */
  invalidFailsBatch?: boolean;
  /** Apply a re-sent idempotency key again. */
  noDedupe?: boolean;
  /** The limit the service enforces, instead of {@link LIMIT}. */
  enforced?: RateLimit;
  /** Refuse every batch of more than one operation. */
  singleOnly?: boolean;

  // The connector's.
  /** Fail check() whatever the config. */
  checkFails?: boolean;
  /** Accept any token in check(). */
  checkIgnoresToken?: boolean;
  /** List a match key that is not among the object's fields. */
  strayMatchKey?: boolean;
  /** Answer with the results in reverse order. */
  reverseResults?: boolean;
  /** Answer one result too few. */
  dropResult?: boolean;
  /** Answer another id than the record's. */
  wrongId?: boolean;
  /** Leave destinationId out of every result. */
  noDestinationId?: boolean;
  /** Take a 429 as a permanent rejection. */
  permanent429?: boolean;
  /** Take a 5xx as a permanent rejection. */
  permanent5xx?: boolean;
  /** Answer ok for a batch the service failed with a 5xx. */
  okOn5xx?: boolean;
  /** Never give up waiting for an answer. */
  noTimeout?: boolean;
  /** Take a timeout as a permanent rejection. */
  permanentTimeout?: boolean;
  /** Keep waiting when ctx.signal aborts. */
  ignoresAbort?: boolean;
  /** Mark a reset connection or a 5xx as notApplied. */
  lossNotApplied?: boolean;
  /** Re-send the previous call's operations (with new keys) after each call's own: a retry queue that reorders. */
  replaysPrevious?: boolean;

  // The declaration.
  /** Declare these operations instead of all four. */
  operations?: OperationKind[];
  /** Declare these rate limits instead of [{@link LIMIT}]. */
  rateLimits?: RateLimit[];
  /** Declare this idempotency instead of `key`. */
  idempotency?: string;
  /** Declare this maxBatchSize instead of the config's batchSize. */
  maxBatchSize?: number;
  /** Declare this field in discover() too. */
  extraField?: { name: string; type: string; required?: boolean };
  /**
   * Offer lookup(): an honest one, one that answers applied for absent and absent for
   * applied, or one that applies what it does not find.
   */
  lookup?: 'honest' | 'lies' | 'applies';
}

interface Held {
  id: string;
  key: string;
  fields: Row;
}

/** The service's answer to one request. */
type Reply = { status: 200; results: RecordResult[] } | { status: number; error: string; retryAfterMs?: number };

/** A network failure, as fetch reports a dropped connection: a plain error with a code. */
function connectionReset(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
}

/** The vendor: records, idempotency keys seen, a rate limit and faults. */
export class ReferenceService {
  readonly faults = new FaultInjector();
  readonly limit: RateLimit;
  private readonly store = new Map<string, Held>();
  private readonly accepted: DeliveredEvent[] = [];
  private readonly seen = new Map<string, RecordResult>();
  private arrivals: number[] = [];
  private nextId = 1;
  private gate: Promise<void> = Promise.resolve();

  constructor(private readonly bugs: Bugs) {
    this.limit = bugs.enforced ?? LIMIT;
  }

  /** Holds every request back until the returned function is called, as a lock on a table would. */
  stall(): () => Promise<void> {
    let open!: () => void;
    this.gate = new Promise((resolve) => (open = resolve));
    return async () => {
      this.gate = Promise.resolve();
      open();
    };
  }

  /** Every record held, one entry per record. */
  records(): HeldRecord[] {
    return [...this.store.values()].map((r) => ({ key: r.key, id: r.id, fields: { ...r.fields } }));
  }

  /**
   * One write request: admitted under the rate limit, delayed (latencyMs), perhaps refused
   * by a fault, applied, and perhaps its answer lost (a reset, a 502, or no answer at all).
   */
  async request(ops: Operation[]): Promise<Reply> {
    const now = Date.now();
    this.arrivals = this.arrivals.filter((t) => t > now - this.limit.perMs);
    if (this.arrivals.length >= this.limit.requests) {
      return { status: 429, error: 'rate limit exceeded', retryAfterMs: this.arrivals[0]! + this.limit.perMs - now };
    }
    this.arrivals.push(now);
    await this.gate;
    await this.faults.delay();
    switch (this.faults.decide()?.kind) {
      case 'reset':
        throw connectionReset();
      case 'unavailable':
        return { status: 503, error: 'service unavailable (test fault)' };
      case 'throttled':
        return { status: 429, error: 'too many requests (test fault)', retryAfterMs: 100 };
      case 'error':
        return { status: 500, error: 'internal error (test fault)' };
    }
    if (this.bugs.singleOnly && ops.length > 1) return { status: 400, error: 'one record per request' };
    if (this.bugs.invalidFailsBatch && ops.some((op) => op.kind !== 'delete' && !validEmail(op.fields?.['email']))) {
      return { status: 503, error: 'a record of the batch is invalid' };
    }
    const results = ops.map((op, i) => this.once(op, i));
    switch (this.faults.afterApply()) {
      case 'reset':
        throw connectionReset();
      case 'error':
        return { status: 502, error: 'bad gateway: the batch was applied, its answer lost (test fault)' };
      case 'timeout':
        return new Promise<never>(() => {});
    }
    return { status: 200, results };
  }

  /** Every event accepted, one entry per acceptance, in order. */
  events(): DeliveredEvent[] {
    return this.accepted.map((e) => ({ ...e }));
  }

  /** Whether an operation with this idempotency key was applied, and its result. */
  applied(idempotencyKey: string): RecordResult | undefined {
    return this.seen.get(idempotencyKey);
  }

  private once(op: Operation, position: number): RecordResult {
    const earlier = this.seen.get(op.idempotencyKey);
    if (earlier !== undefined && !this.bugs.noDedupe) return earlier;
    const result = position === this.bugs.dropAt ? { ok: true as const, destinationId: `r${this.nextId++}` } : this.apply(op);
    this.seen.set(op.idempotencyKey, result);
    return result;
  }

  private find(op: Operation): Held | undefined {
    if (op.destinationId !== undefined && !this.bugs.ignoreDestinationId) {
      const byId = this.store.get(op.destinationId);
      // Only an upsert falls back to its match when its id no longer exists.
      if (byId !== undefined || op.kind !== 'upsert') return byId;
    }
    const match = op.match;
    if (match === undefined) return [...this.store.values()].find((r) => r.key === op.key);
    return [...this.store.values()].find((r) => Object.entries(match).every(([k, v]) => isDeepStrictEqual(r.fields[k], v)));
  }

  private create(op: Operation): RecordResult {
    const id = `r${this.nextId++}`;
    this.store.set(id, { id, key: op.key, fields: { ...op.fields } });
    return { ok: true, destinationId: id };
  }

  apply(op: Operation): RecordResult {
    const bugs = this.bugs;
    const reject = (reason: string, retryable = false): RecordResult => ({ ok: false, reason, retryable });
    if (!bugs.acceptInvalid && !validEmail(op.fields?.['email'])) {
      if (op.kind !== 'delete') return reject(`email ${JSON.stringify(op.fields?.['email'])} is invalid`, bugs.invalidRetryable === true);
    }
    if (op.kind === 'event') {
      this.accepted.push({ marker: String(op.fields?.['marker']), payload: { ...op.fields } });
      return { ok: true };
    }
    const existing = op.kind === 'upsert' && op.destinationId === undefined && bugs.upsertAlwaysCreates ? undefined : this.find(op);
    if (op.kind === 'delete') {
      if (existing !== undefined && !bugs.ignoreDeletes) this.store.delete(existing.id);
      else if (existing === undefined && bugs.deleteMissingFails) return reject('record not found');
      return { ok: true };
    }
    if (op.kind === 'insert' && bugs.refuseInserts) return reject('inserts are not supported');
    if (bugs.staleIdRejected && op.kind === 'upsert' && op.destinationId !== undefined && !this.store.has(op.destinationId)) return reject('record not found');
    if (existing === undefined) {
      if (op.kind === 'update' && !bugs.updateCreates) return reject('record not found');
      return this.create(op);
    }
    if (op.kind === 'insert' && !bugs.insertOverwrites) return reject('record already exists');
    if (!bugs.ignoreUpdates) existing.fields = { ...existing.fields, ...op.fields };
    return { ok: true, destinationId: existing.id };
  }
}

function validEmail(email: unknown): boolean {
  return typeof email === 'string' && /^[^\s@]+@[^\s@]+$/.test(email);
}

function authorize(config: ReferenceConfig): void {
  if (config.token !== TOKEN) throw new OutflowError('OUTFLOW_CHECK_FAILED', 'the service refused the token');
}

/**
 * Sends one request as an HTTP client would, drawing it from the connection's budget: gives
 * up after the configured timeout and when the run stops, and turns the service's answer
 * into results or a coded error.
 */
async function call(ctx: ConnectorContext<ReferenceConfig>, service: ReferenceService, ops: Operation[], bugs: Bugs): Promise<RecordResult[]> {
  const timeoutMs = ctx.config.timeoutMs ?? TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const send = (): Promise<Reply> => {
    const sent = service.request(ops);
    sent.catch(() => undefined);
    const giveUp = new Promise<never>((_, reject) => {
      if (!bugs.noTimeout) {
        timer = setTimeout(() => reject(destinationError(`the service did not answer within ${timeoutMs} ms`, { retryable: !bugs.permanentTimeout })), timeoutMs);
      }
      if (!bugs.ignoresAbort) {
        onAbort = () => reject(new OutflowError('OUTFLOW_ABORTED', 'the write was stopped because the run is stopping', { retryable: true }));
        if (ctx.signal.aborted) onAbort();
        else ctx.signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    return Promise.race([sent, giveUp]);
  };
  let reply: Reply;
  try {
    reply = await ctx.rateBudget.request(send);
  } catch (err) {
    if (err instanceof OutflowError) throw err;
    throw destinationError(`the connection to the service failed: ${(err as Error).message}`, { retryable: true, notApplied: bugs.lossNotApplied === true });
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) ctx.signal.removeEventListener('abort', onAbort);
  }
  if (reply.status === 200 && 'results' in reply) return reply.results;
  const { status, error } = reply as { status: number; error: string; retryAfterMs?: number };
  if (status === 429) {
    const after = (reply as { retryAfterMs?: number }).retryAfterMs;
    throw destinationError(`the service refused the batch: ${error} (HTTP 429)`, { retryable: !bugs.permanent429, status, ...(after === undefined ? {} : { retryAfterMs: after }) });
  }
  if (status >= 500) {
    if (bugs.okOn5xx) return ops.map(() => ({ ok: true }));
    throw destinationError(`the service failed the batch: ${error} (HTTP ${status})`, {
      retryable: !bugs.permanent5xx,
      status,
      notApplied: bugs.lossNotApplied === true,
    });
  }
  throw destinationError(`the service refused the batch: ${error} (HTTP ${status})`, { retryable: false, status });
}

/** The reference: its service, a connector for it, and how a driver reads it back. */
export function reference(bugs: Bugs = {}) {
  const service = new ReferenceService(bugs);
  let previous: Operation[] = [];

  const destination: Destination<ReferenceConfig> = {
    async check(ctx) {
      if (bugs.checkFails) throw new OutflowError('OUTFLOW_CHECK_FAILED', 'the service is not reachable');
      if (!bugs.checkIgnoresToken) authorize(ctx.config);
    },
    async discover() {
      return {
        objects: [
          {
            name: 'contacts',
            fields: [
              { name: 'email', type: 'string', unique: true },
              { name: 'name', type: 'string' },
              { name: 'note', type: 'text' },
              ...(bugs.extraField ? [bugs.extraField] : []),
            ],
            matchKeys: bugs.strayMatchKey ? ['email', 'phone'] : ['email'],
            modes: ['upsert', 'update', 'insert', 'mirror'],
          },
        ],
      };
    },
    capabilities(ctx) {
      return {
        operations: bugs.operations ?? ['upsert', 'update', 'insert', 'delete'],
        maxBatchSize: bugs.maxBatchSize ?? ctx.config.batchSize ?? 10,
        rateLimits: bugs.rateLimits ?? [LIMIT],
        // Every request to the service draws from the budget, as an HTTP connector's would.
        budget: 'connector',
        concurrency: 2,
        idempotency: (bugs.idempotency ?? 'key') as Idempotency,
      };
    },
    async write(ctx, _object, ops) {
      authorize(ctx.config);
      if (ops.length === 0) return [];
      let results = await call(ctx, service, ops, bugs);
      if (bugs.replaysPrevious && previous.length > 0) {
        await call(ctx, service, previous.map((op) => ({ ...op, idempotencyKey: `${op.idempotencyKey}:replay` })), bugs).catch(() => undefined);
      }
      previous = ops;
      if (bugs.reverseResults) results = [...results].reverse();
      if (bugs.dropResult) results = results.slice(1);
      if (bugs.wrongId) results = results.map((r) => (r.ok && r.destinationId !== undefined ? { ok: true, destinationId: `${r.destinationId}-other` } : r));
      if (bugs.noDestinationId) results = results.map((r) => (r.ok ? { ok: true } : r));
      return results;
    },
  };
  if (bugs.lookup !== undefined) {
    const lies = bugs.lookup === 'lies';
    destination.lookup = async (ctx, _object, ops) => {
      authorize(ctx.config);
      return ops.map((op): LookupResult => {
        const result = service.applied(op.idempotencyKey);
        const found = result !== undefined && result.ok;
        if (!found && bugs.lookup === 'applies') service.apply(op);
        if (found === lies) return { state: 'absent' };
        return result?.ok && result.destinationId !== undefined ? { state: 'applied', destinationId: result.destinationId } : { state: 'applied' };
      });
    };
  }

  const connector = defineConnector({ name: 'reference-destination', version: '1.0.0', coreVersion: '^1.0.0', config: referenceConfig, destination });
  return {
    connector,
    service,
    record: (i: number): TestRecord => ({
      key: `k${i}`,
      match: { email: `user${i}@example.test` },
      fields: { email: `user${i}@example.test`, name: `User ${i}`, note: `note ${i % 1000}` },
    }),
  };
}

/** A driver for the reference with `bugs`, with `overrides` on top. */
export function referenceDriver(bugs: Bugs = {}, overrides: Partial<DestinationDriver<ReferenceConfig>> = {}): DestinationDriver<ReferenceConfig> {
  const ref = reference(bugs);
  return {
    connector: ref.connector,
    object: 'contacts',
    config: { token: TOKEN, batchSize: 8, timeoutMs: TIMEOUT_MS },
    badConfigs: [{ name: 'a wrong token', config: { token: 'not-the-token' } }],
    // The service's records by id: a record created twice is listed twice.
    readAll: async () => ref.service.records(),
    record: ref.record,
    assignsIds: true,
    badRecord: () => ({ key: 'bad', match: { email: 'no-at-sign' }, fields: { email: 'no-at-sign', name: 'Bad', note: 'bad' } }),
    faults: (f) => ref.service.faults.set(f),
    stall: async () => ref.service.stall(),
    requestTimeoutMs: TIMEOUT_MS,
    enforcedLimits: () => [ref.service.limit],
    ...overrides,
  };
}

/** An event driver for the reference with `bugs` (declaring `event` only), with `overrides` on top. */
export function referenceEventDriver(bugs: Bugs = {}, overrides: Partial<EventDriver<ReferenceConfig>> = {}): EventDriver<ReferenceConfig> {
  const ref = reference({ operations: ['event'], ...bugs });
  return {
    connector: ref.connector,
    object: 'alerts',
    config: { token: TOKEN, batchSize: 8, timeoutMs: TIMEOUT_MS },
    badConfigs: [{ name: 'a wrong token', config: { token: 'not-the-token' } }],
    payload: (marker) => ({ email: `${marker}@example.test`, marker }),
    delivered: async () => ref.service.events(),
    badPayload: (marker) => ({ payload: { email: 'no-at-sign', marker }, reason: /email "no-at-sign" is invalid/ }),
    faults: (f) => ref.service.faults.set(f),
    requestTimeoutMs: TIMEOUT_MS,
    enforcedLimits: () => [ref.service.limit],
    ...overrides,
  };
}
