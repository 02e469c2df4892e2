import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Type,
  defineConnector,
  type AnyConnector,
  destinationError,
  silentLogger,
  unlimitedBudget,
  type ChangeBatch,
  type ConnectorContext,
  type Operation,
  type RecordResult,
  type Row,
} from '../src/index.js';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { createTestEngine } from '@outflow/testing';
import { duckdbStateStore } from '@outflow/state-duckdb';
import type { SyncConfig } from '../src/config/schema.js';

export function tempDir(prefix = 'outflow-core-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function context(connection: string, config: unknown = {}, signal = new AbortController().signal): ConnectorContext {
  const kv = new Map<string, string>();
  return {
    connection,
    config: Object.freeze(config),
    logger: silentLogger(),
    signal,
    rateBudget: unlimitedBudget(signal),
    metrics: { gauge() {}, count() {} },
    kv: {
      get: async (k) => kv.get(k),
      set: async (k, v) => void kv.set(k, v),
      delete: async (k) => void kv.delete(k),
    },
    stateDir: tempDir('outflow-ctx-'),
  };
}

/** A model held in memory, as a source fixture. */
export function memorySource(rows: () => Row[], batchSize = 3) {
  return defineConnector({
    name: 'memory-source',
    version: '1.0.0',
    coreVersion: '^1.0.0',
    config: Type.Object({}),
    source: {
      async check() {},
      async discover() {
        return { tables: [] };
      },
      async *read() {
        const all = rows();
        for (let i = 0; i < all.length; i += batchSize) yield { rows: all.slice(i, i + batchSize) };
      },
    },
  });
}

export interface Fault {
  /** Reject these keys with a reason (not retryable unless said). */
  reject?: Map<string, { reason: string; retryable?: boolean }>;
  /** Throw a whole-batch error on these calls (1-based call numbers). */
  failCalls?: Map<number, { retryable: boolean; retryAfterMs?: number }>;
  /** Refuse any batch containing one of these keys as a whole (like a 400). */
  poison?: Set<string>;
  latencyMs?: number;
  /** Apply the batch, then fail before answering (a crash after the destination applied it). */
  crashAfterApplyOnCall?: number;
}

/** A destination holding records in memory, recording every call, with injectable faults. */
export function memoryDestination(options: { operations?: Operation['kind'][]; maxBatchSize?: number; concurrency?: number } = {}) {
  const records = new Map<string, { id: string; fields: Row; created: number }>();
  const calls: Operation[][] = [];
  const inFlightKeys = new Set<string>();
  const overlaps: string[] = [];
  const seenIdem = new Set<string>();
  const faults: Fault = {};
  const creations = new Map<string, number>();
  let nextId = 1;
  let maxConcurrent = 0;
  let concurrent = 0;
  const connector = defineConnector({
    name: 'memory-destination',
    version: '1.0.0',
    coreVersion: '^1.0.0',
    config: Type.Object({}),
    destination: {
      async check() {},
      async discover() {
        return { objects: [] };
      },
      capabilities() {
        return {
          operations: options.operations ?? ['upsert', 'update', 'insert', 'delete'],
          maxBatchSize: options.maxBatchSize ?? 4,
          rateLimits: [],
          concurrency: options.concurrency ?? 2,
          idempotency: 'match',
        };
      },
      async write(_ctx, _object, ops): Promise<RecordResult[]> {
        calls.push(ops);
        const n = calls.length;
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        for (const op of ops) {
          if (inFlightKeys.has(op.key)) overlaps.push(op.key);
          inFlightKeys.add(op.key);
        }
        try {
          if (faults.latencyMs) await new Promise((r) => setTimeout(r, faults.latencyMs));
          const fail = faults.failCalls?.get(n);
          if (fail) throw destinationError(`call ${n} failed`, fail);
          if (ops.some((o) => faults.poison?.has(o.key))) {
            throw destinationError('400 bad request: the batch has an invalid record', { retryable: false, status: 400 });
          }
          const results = ops.map((op): RecordResult => {
            const rej = faults.reject?.get(op.key);
            if (rej) return { ok: false, reason: rej.reason, retryable: rej.retryable ?? false };
            if (seenIdem.has(op.idempotencyKey)) return { ok: true, destinationId: records.get(op.key)?.id };
            seenIdem.add(op.idempotencyKey);
            const existing = records.get(op.key);
            switch (op.kind) {
              case 'delete':
                records.delete(op.key);
                return { ok: true };
              case 'insert':
                if (existing) return { ok: false, reason: 'already exists', retryable: false };
                break;
              case 'update':
                if (!existing) return { ok: false, reason: 'not found', retryable: false };
                existing.fields = { ...existing.fields, ...op.fields };
                return { ok: true, destinationId: existing.id };
            }
            if (existing) {
              existing.fields = { ...existing.fields, ...op.fields };
              return { ok: true, destinationId: existing.id };
            }
            const rec = { id: `id-${nextId++}`, fields: { ...op.fields }, created: 1 };
            records.set(op.key, rec);
            creations.set(op.key, (creations.get(op.key) ?? 0) + 1);
            return { ok: true, destinationId: rec.id };
          });
          if (faults.crashAfterApplyOnCall === n) throw new Error('the process died after the destination applied the batch');
          return results;
        } finally {
          concurrent--;
          for (const op of ops) inFlightKeys.delete(op.key);
        }
      },
    },
  });
  return {
    connector,
    records,
    calls,
    faults,
    overlaps,
    creations,
    get maxConcurrent() {
      return maxConcurrent;
    },
  };
}

/** A change stream held in memory: pushes batches, remembers commits. */
export function memoryStream() {
  const log: ChangeBatch[] = [];
  const commits: string[] = [];
  let wake: (() => void) | null = null;
  const connector = defineConnector({
    name: 'memory-stream',
    version: '1.0.0',
    coreVersion: '^1.0.0',
    config: Type.Object({}),
    stream: {
      async open(_ctx, _model, from) {
        let pos = from === null ? 0 : Number(from);
        let closed = false;
        return {
          async *[Symbol.asyncIterator]() {
            while (!closed) {
              if (pos < log.length) {
                const b = log[pos]!;
                pos++;
                yield b;
              } else {
                await new Promise<void>((r) => (wake = r));
              }
            }
          },
          async commit(cp: string) {
            commits.push(cp);
          },
          async health() {
            return { stale: false };
          },
          async close() {
            closed = true;
            wake?.();
          },
        };
      },
    },
  });
  return {
    connector,
    commits,
    emit(batch: ChangeBatch) {
      log.push(batch);
      wake?.();
    },
  };
}

/** An engine over the given connectors, with the embedded ledger and state in `dir`. */
export function environment(dir: string, connections: Record<string, AnyConnector>) {
  return createTestEngine({ connections, dir, ledger: openSqliteLedger, stateStore: (d) => duckdbStateStore({ dir: d }) });
}

export function syncConfig(overrides: Omit<Partial<SyncConfig>, 'to'> & { to?: Partial<SyncConfig['to']> } = {}): SyncConfig {
  const { to, ...rest } = overrides;
  return {
    name: 'people',
    from: { connection: 'src', table: 'people', primaryKey: 'id' },
    capture: 'diff',
    to: { connection: 'dst', object: 'people', mode: 'upsert', deletes: 'ignore', ...to },
    ...rest,
  } as SyncConfig;
}
