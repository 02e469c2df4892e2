/**
 * Small in-memory connectors the suite is tested against: a correct destination, source
 * and change stream, each with switches that break one guarantee.
 */
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
  type Destination,
  type Operation,
  type RecordResult,
  type Row,
  type Source,
  type Static,
  type Stream,
} from '@outflow/core';

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
}

/** A destination that keeps records in a Map, dedupes by idempotency key and rejects bad emails. */
export function memoryDestination(faults: DestinationFaults = {}) {
  const store = new Map<string, { id: string; fields: Row }>();
  const applied = new Map<string, RecordResult>();
  let nextId = 1;

  function apply(op: Operation): RecordResult {
    const existing = store.get(op.key);
    if (op.kind === 'delete') {
      store.delete(op.key);
      return { ok: true };
    }
    const email = op.fields?.['email'];
    if (typeof email !== 'string' || !email.includes('@')) return { ok: false, reason: `email ${JSON.stringify(email)} is invalid`, retryable: false };
    if (op.kind === 'insert' && existing) return { ok: false, reason: 'record already exists', retryable: false };
    if (op.kind === 'update' && !existing) return { ok: false, reason: 'record not found', retryable: false };
    const record = existing ?? { id: `m${nextId++}`, fields: {} };
    record.fields = { ...record.fields, ...op.fields };
    store.set(op.key, record);
    return { ok: true, destinationId: record.id };
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
        rateLimits: [{ requests: 100, perMs: 1000 }],
        concurrency: 2,
        idempotency: 'match',
      };
    },
    async write(ctx, _object, ops) {
      authorize(ctx.config);
      const results = ops.map((op, i) => {
        const earlier = applied.get(op.idempotencyKey);
        if (earlier) return earlier;
        const result = i === faults.dropAt ? { ok: true as const, destinationId: `m${nextId++}` } : apply(op);
        applied.set(op.idempotencyKey, result);
        return result;
      });
      return faults.reverseResults ? results.reverse() : results;
    },
  };

  const connector = defineConnector({
    name: 'memory-destination',
    version: '1.2.3',
    coreVersion: '^1.0.0',
    config: memoryConfig,
    destination,
  });
  return {
    connector,
    readBack: async (key: string) => store.get(key)?.fields,
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

export interface StreamFaults {
  /** Resume from the start of the log whatever checkpoint is given. */
  ignoreCheckpoint?: boolean;
}

/**
 * The reference change stream: a change log with numbered positions. A checkpoint is the
 * position of the last change in its batch; open(from) yields what comes after it.
 */
export function memoryStream(faults: StreamFaults = {}) {
  const table = new Map<string, Row>();
  const log: { position: number; change: Change }[] = [];
  const waiters = new Set<() => void>();
  const committed: Checkpoint[] = [];
  const primaryKey = ['id'];

  async function mutate(op: ChangeOp, row: Row): Promise<void> {
    const key = keyOf(row, primaryKey)!;
    const before = table.get(key);
    if (op === 'delete') table.delete(key);
    else table.set(key, row);
    const change: Change = { op, key, ...(op === 'delete' ? {} : { after: row }), ...(before ? { before } : {}) };
    log.push({ position: log.length + 1, change: { ...change, position: String(log.length + 1) } });
    for (const wake of waiters) wake();
    waiters.clear();
  }

  function openAt(from: number, signal: AbortSignal): ChangeStream {
    let closed = false;
    let wakeClosed: (() => void) | undefined;
    async function* batches(): AsyncGenerator<ChangeBatch> {
      let position = from;
      while (!closed && !signal.aborted) {
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
        return { stale: false, lagMs: 0 };
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
      const start = from === null ? log.length : faults.ignoreCheckpoint ? 0 : Number(from);
      return openAt(start, ctx.signal);
    },
  };
  const connector = defineConnector({ name: 'memory-stream', version: '1.0.0', coreVersion: '>=1.0.0 <2', config: memoryConfig, stream });
  return {
    connector,
    mutate,
    committed,
    row: (i: number, version: number): Row => ({ id: i, name: `Row ${i} v${version}`, version }),
  };
}
