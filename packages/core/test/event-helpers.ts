/**
 * An event destination held in memory for core's event-mode tests: it keeps its own log of
 * every event it accepted (one entry per acceptance, never a map by key), dedupes by
 * idempotency key when it declares idempotency `key`, and can apply a batch and then lose
 * the answer, as a crash or a dropped connection would.
 */
import { Type, defineConnector, type Idempotency, type Operation, type RecordResult, type Row } from '../src/index.js';

/** One event the destination accepted. */
export interface AcceptedEvent {
  object: string;
  key: string;
  trigger: string;
  change: string;
  idempotencyKey: string;
  payload: Row;
}

export function memoryEvents(options: { idempotency?: Idempotency } = {}) {
  const idempotency = options.idempotency ?? 'key';
  const log: AcceptedEvent[] = [];
  const seen = new Set<string>();
  const calls: Operation[][] = [];
  const faults: { loseAnswerOnCall?: number; reject?: Map<string, string> } = {};
  const connector = defineConnector({
    name: 'memory-events',
    version: '1.0.0',
    coreVersion: '^1.0.0',
    config: Type.Object({}),
    destination: {
      async check() {},
      async discover() {
        return { objects: [] };
      },
      capabilities() {
        return { operations: ['event'], maxBatchSize: 5, rateLimits: [], concurrency: 1, idempotency };
      },
      async write(_ctx, object, ops): Promise<RecordResult[]> {
        calls.push(ops);
        const results = ops.map((op): RecordResult => {
          if (op.kind !== 'event' || op.event === undefined) return { ok: false, reason: `not an event: ${op.kind}`, retryable: false };
          const refused = faults.reject?.get(op.key);
          if (refused !== undefined) return { ok: false, reason: refused, retryable: false };
          if (idempotency === 'key' && seen.has(op.idempotencyKey)) return { ok: true };
          seen.add(op.idempotencyKey);
          log.push({ object, key: op.key, trigger: op.event.trigger, change: op.event.change, idempotencyKey: op.idempotencyKey, payload: op.fields ?? {} });
          return { ok: true };
        });
        if (faults.loseAnswerOnCall === calls.length) throw new Error('the connection dropped after the destination accepted the batch');
        return results;
      },
    },
  });
  return { connector, log, calls, faults };
}
