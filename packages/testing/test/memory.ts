/**
 * Small in-memory connectors the suite is tested against: a correct destination, source
 * and change stream, each with switches that break one guarantee.
 */
import { isDeepStrictEqual } from 'node:util';
import {
  defineConnector,
  keyOf,
  OutflowError,
  Secret,
  Type,
  type Change,
  type ChangeBatch,
  type ChangeOp,
  type ChangeStream,
  type Checkpoint,
  type ConnectorContext,
  type Destination,
  type Idempotency,
  type LookupResult,
  type Operation,
  type RecordResult,
  type Row,
  type Source,
  type Static,
  type Stream,
} from '@outflow/core';
import type { HeldRecord } from '../src/index.js';

export const TOKEN = 'memory-token-0123456789';

export const memoryConfig = Type.Object(
  {
    token: Secret({ minLength: 4, description: 'The access token the memory system expects.' }),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, default: 10, description: 'The most records per write or read batch.' })),
  },
  { additionalProperties: false },
);

export type MemoryConfig = Static<typeof memoryConfig>;

function authorize(config: MemoryConfig): void {
  if (config.token !== TOKEN) throw new OutflowError('OUTFLOW_CHECK_FAILED', 'the memory system refused the token');
}

export interface DestinationFaults {
  /** Acknowledge the operation at this batch position without storing it. */
  dropAt?: number;
  /** Answer with the results in reverse order. */
  reverseResults?: boolean;
  /** Store every new record twice. */
  createTwice?: boolean;
  /** Apply a re-sent idempotency key again: a re-sent upsert or insert creates another record, answered as the first. */
  resendCreates?: boolean;
  /** Acknowledge changes to an existing record without applying them. */
  ignoreUpdates?: boolean;
  /** Acknowledge deletes without removing anything. */
  ignoreDeletes?: boolean;
  /** Create the record an update does not find. */
  updateCreates?: boolean;
  /** Answer an update of a missing record as retryable. */
  missingRetryable?: boolean;
  /** Reject a delete of a record it does not hold. */
  deleteMissingFails?: boolean;
  /** Leave destinationId out of every result. */
  noDestinationId?: boolean;
  /** Address records by their match fields only. */
  ignoreDestinationId?: boolean;
  /** Reject an upsert whose destinationId no longer exists instead of falling back to its match. */
  staleIdRejected?: boolean;
  /** Let an insert overwrite the record that has its match key. */
  insertOverwrites?: boolean;
  /** Accept any email. */
  acceptInvalid?: boolean;
  /** Declare no rate limits. */
  noRateLimits?: boolean;
  /** Declare this idempotency instead of `key`. */
  idempotency?: string;
  /**
   * Offer lookup(): an honest one, one that answers applied for absent and absent for
   * applied, or one that applies what it does not find.
   */
  lookup?: 'honest' | 'lies' | 'applies';
}

interface MemoryRecord {
  id: string;
  key: string;
  fields: Row;
}

/**
 * A destination that keeps records in a Map by the ids it assigns, addresses them by
 * destinationId (ahead of match) or by match, dedupes by idempotency key and rejects bad
 * emails. Each fault breaks one guarantee.
 */
export function memoryDestination(faults: DestinationFaults = {}) {
  const store = new Map<string, MemoryRecord>();
  const applied = new Map<string, RecordResult>();
  let nextId = 1;

  const ok = (id: string): RecordResult => (faults.noDestinationId ? { ok: true } : { ok: true, destinationId: id });
  const reject = (reason: string): RecordResult => ({ ok: false, reason, retryable: false });

  function find(op: Operation): MemoryRecord | undefined {
    if (op.destinationId !== undefined && !faults.ignoreDestinationId) {
      const byId = store.get(op.destinationId);
      // Only an upsert falls back to its match when its id no longer exists.
      if (byId !== undefined || op.kind !== 'upsert') return byId;
    }
    const match = op.match;
    if (match === undefined) return undefined;
    return [...store.values()].find((r) => Object.entries(match).every(([k, v]) => isDeepStrictEqual(r.fields[k], v)));
  }

  function create(op: Operation): RecordResult {
    const id = `m${nextId++}`;
    store.set(id, { id, key: op.key, fields: { ...op.fields } });
    if (faults.createTwice) {
      const twin = `m${nextId++}`;
      store.set(twin, { id: twin, key: op.key, fields: { ...op.fields } });
    }
    return ok(id);
  }

  function apply(op: Operation): RecordResult {
    const existing = find(op);
    if (op.kind === 'delete') {
      if (existing !== undefined && !faults.ignoreDeletes) store.delete(existing.id);
      else if (faults.deleteMissingFails) return reject('record not found');
      return { ok: true };
    }
    const email = op.fields?.['email'];
    if (!faults.acceptInvalid && (typeof email !== 'string' || !email.includes('@'))) return reject(`email ${JSON.stringify(email)} is invalid`);
    if (faults.staleIdRejected && op.kind === 'upsert' && op.destinationId !== undefined && !store.has(op.destinationId)) {
      return reject('record not found');
    }
    if (existing === undefined) {
      if (op.kind === 'update' && !faults.updateCreates) return { ok: false, reason: 'record not found', retryable: faults.missingRetryable === true };
      return create(op);
    }
    if (op.kind === 'insert' && !faults.insertOverwrites) return reject('record already exists');
    if (!faults.ignoreUpdates) existing.fields = { ...existing.fields, ...op.fields };
    return ok(existing.id);
  }

  const destination: Destination<MemoryConfig> = {
    async check(ctx) {
      authorize(ctx.config);
    },
    async discover() {
      return {
        objects: [
          {
            name: 'contacts',
            fields: [
              { name: 'email', type: 'string', unique: true },
              { name: 'name', type: 'string' },
              { name: 'score', type: 'number' },
            ],
            matchKeys: ['email'],
            modes: ['upsert', 'update', 'insert', 'mirror'],
          },
        ],
      };
    },
    capabilities(ctx) {
      return {
        operations: ['upsert', 'update', 'insert', 'delete'],
        maxBatchSize: ctx.config.batchSize ?? 10,
        rateLimits: faults.noRateLimits ? [] : [{ requests: 100, perMs: 1000 }],
        concurrency: 2,
        idempotency: (faults.idempotency ?? 'key') as Idempotency,
      };
    },
    async write(ctx, _object, ops) {
      authorize(ctx.config);
      const results = ops.map((op, i) => {
        const earlier = applied.get(op.idempotencyKey);
        if (earlier !== undefined && !faults.resendCreates) return earlier;
        if (earlier !== undefined && (op.kind === 'upsert' || op.kind === 'insert')) {
          create(op);
          return earlier;
        }
        const result = i === faults.dropAt ? ok(`m${nextId++}`) : apply(op);
        applied.set(op.idempotencyKey, result);
        return result;
      });
      return faults.reverseResults ? results.reverse() : results;
    },
  };
  if (faults.lookup !== undefined) {
    const lies = faults.lookup === 'lies';
    destination.lookup = async (ctx, _object, ops) => {
      authorize(ctx.config);
      return ops.map((op): LookupResult => {
        const result = applied.get(op.idempotencyKey);
        const found = result !== undefined && result.ok;
        if (!found && faults.lookup === 'applies') apply(op);
        if (found === lies) return { state: 'absent' };
        return result?.ok && result.destinationId !== undefined ? { state: 'applied', destinationId: result.destinationId } : { state: 'applied' };
      });
    };
  }

  const connector = defineConnector({
    name: 'memory-destination',
    version: '1.2.3',
    coreVersion: '^1.0.0',
    config: memoryConfig,
    destination,
  });
  return {
    connector,
    readAll: async (): Promise<HeldRecord[]> => [...store.values()].map((r) => ({ key: r.key, id: r.id, fields: { ...r.fields } })),
    record: (i: number) => ({ key: `k${i}`, match: { email: `user${i}@example.test` }, fields: { email: `user${i}@example.test`, name: `User ${i}`, score: i } }),
  };
}

export interface SourceFaults {
  /** Yield the first row a second time. */
  duplicateFirst?: boolean;
  /** Keep reading after the signal aborts. */
  ignoreAbort?: boolean;
}

export const PEOPLE: Row[] = Array.from({ length: 25 }, (_, i) => ({ id: i + 1, name: `Person ${i + 1}`, active: i % 3 !== 0 }));

/** A source holding the table `people`, read in batches of `batchSize` rows. */
export function memorySource(faults: SourceFaults = {}) {
  const source: Source<MemoryConfig> = {
    async check(ctx) {
      authorize(ctx.config);
    },
    async discover() {
      return {
        tables: [
          {
            name: 'people',
            columns: [
              { name: 'id', type: 'INTEGER' },
              { name: 'name', type: 'VARCHAR' },
              { name: 'active', type: 'BOOLEAN' },
            ],
            primaryKey: ['id'],
          },
        ],
      };
    },
    async *read(ctx, model) {
      if (model.table !== 'people') throw new OutflowError('OUTFLOW_SOURCE', `no table ${model.table}`);
      const rows = faults.duplicateFirst ? [PEOPLE[0]!, ...PEOPLE] : PEOPLE;
      const size = ctx.config.batchSize ?? 10;
      for (let i = 0; i < rows.length; i += size) {
        await new Promise((resolve) => setImmediate(resolve));
        if (ctx.signal.aborted && !faults.ignoreAbort) throw new OutflowError('OUTFLOW_ABORTED', 'read of people was stopped');
        yield { rows: rows.slice(i, i + size).map((r) => ({ ...r })) };
      }
    },
    async columns() {
      return (await source.discover({} as never)).tables[0]!.columns;
    },
  };
  return defineConnector({ name: 'memory-source', version: '0.1.0', coreVersion: '^1.0.0', config: memoryConfig, source });
}

/** The ctx.kv key where the memory stream remembers the position it secured when it went stale. */
export const SECURED = 'memory-stream:secured';

export interface StreamFaults {
  /** Resume from the start of the log whatever checkpoint is given. */
  ignoreCheckpoint?: boolean;
}

/**
 * The reference change stream: a change log with numbered positions. A checkpoint is the
 * position of the last change in its batch; open(from) yields what comes after it.
 * `makeStale()` loses the log so far to retention: an open stream then secures the end of the
 * log (in ctx.kv) and reports stale, open() of an earlier checkpoint does the same, and the
 * next open(null) resumes at the secured position (the stale-stream handshake).
 */
export function memoryStream(faults: StreamFaults = {}) {
  const table = new Map<string, Row>();
  const log: { position: number; change: Change }[] = [];
  const waiters = new Set<() => void>();
  const committed: Checkpoint[] = [];
  const primaryKey = ['id'];
  /** Positions before this one can no longer be resumed from. */
  let lostBefore = 0;
  /** Counts makeStale() calls: a stream opened before the latest one is stale. */
  let epoch = 0;

  function wakeAll(): void {
    for (const wake of waiters) wake();
    waiters.clear();
  }

  async function makeStale(): Promise<void> {
    lostBefore = log.length + 1;
    epoch++;
    wakeAll();
  }

  /** Step 1 of the handshake: keep every change from the end of the log on, and remember it. */
  async function secure(ctx: ConnectorContext<MemoryConfig>): Promise<void> {
    await ctx.kv.set(SECURED, String(log.length));
  }

  async function mutate(op: ChangeOp, row: Row): Promise<void> {
    const key = keyOf(row, primaryKey)!;
    const before = table.get(key);
    if (op === 'delete') table.delete(key);
    else table.set(key, row);
    const change: Change = { op, key, ...(op === 'delete' ? {} : { after: row }), ...(before ? { before } : {}) };
    log.push({ position: log.length + 1, change: { ...change, position: String(log.length + 1) } });
    wakeAll();
  }

  function openAt(from: number, ctx: ConnectorContext<MemoryConfig>): ChangeStream {
    let closed = false;
    let wakeClosed: (() => void) | undefined;
    const opened = epoch;
    let stale = false;
    const goneStale = async (): Promise<boolean> => {
      if (opened === epoch) return false;
      if (!stale) {
        stale = true;
        await secure(ctx);
      }
      return true;
    };
    async function* batches(): AsyncGenerator<ChangeBatch> {
      let position = from;
      while (!closed && !ctx.signal.aborted) {
        if (await goneStale()) throw new OutflowError('OUTFLOW_STREAM_STALE', 'the memory log was lost to retention');
        const pending = log.filter((e) => e.position > position);
        if (pending.length > 0) {
          position = pending[pending.length - 1]!.position;
          yield { changes: pending.map((e) => e.change), checkpoint: String(position) };
          continue;
        }
        await new Promise<void>((resolve) => {
          waiters.add(resolve);
          wakeClosed = resolve;
        });
      }
    }
    const iterator = batches();
    return {
      [Symbol.asyncIterator]: () => iterator,
      async commit(checkpoint) {
        committed.push(checkpoint);
      },
      async health() {
        return (await goneStale()) ? { stale: true } : { stale: false, lagMs: 0 };
      },
      async close() {
        closed = true;
        wakeClosed?.();
      },
    };
  }

  const stream: Stream<MemoryConfig> = {
    async open(ctx, _model, from) {
      authorize(ctx.config);
      if (from !== null && !/^\d+$/.test(from)) throw new OutflowError('OUTFLOW_STREAM_STALE', `checkpoint ${from} is not a log position`);
      if (from !== null && Number(from) < lostBefore) {
        await secure(ctx);
        throw new OutflowError('OUTFLOW_STREAM_STALE', `checkpoint ${from} was lost to retention`);
      }
      const secured = from === null ? await ctx.kv.get(SECURED) : undefined;
      if (secured !== undefined) await ctx.kv.delete(SECURED);
      const start = from === null ? Number(secured ?? log.length) : faults.ignoreCheckpoint ? 0 : Number(from);
      return openAt(start, ctx);
    },
  };
  const connector = defineConnector({ name: 'memory-stream', version: '1.0.0', coreVersion: '>=1.0.0 <2', config: memoryConfig, stream });
  return {
    connector,
    mutate,
    makeStale,
    committed,
    row: (i: number, version: number): Row => ({ id: i, name: `Row ${i} v${version}`, version }),
  };
}
