import {
  isOutflowError,
  OutflowError,
  type Capabilities,
  type ConnectorContext,
  type Destination,
  type Operation,
  type RecordResult,
} from '@outflow/core';
import { CALL_NAMES, fieldsOf, isCall, messageOf, type CallName, type Message } from './calls.js';
import { deliver, ping, type Delivery } from './client.js';
import type { SegmentConfig } from './config.js';

/** Events per write() call: one Analytics client's batch, which it splits further by size. */
export const MAX_BATCH = 250;

function callOf(object: string): CallName {
  if (!isCall(object)) throw new OutflowError('OUTFLOW_MODE_UNSUPPORTED', `Segment has no call "${object}" here (it has: ${CALL_NAMES.join(', ')})`);
  return object;
}

const reject = (reason: string): RecordResult => ({ ok: false, reason, retryable: false });

/**
 * Sends each event as one `object` call with its idempotency key as messageId, and answers
 * one result per operation once the SDK says its batch was accepted. A payload Segment
 * would drop is rejected here with the reason, unsent; a call the SDK refuses on its own
 * (over 32 KB) is rejected with the SDK's reason. A batch request that failed (a 429, a
 * 5xx, a timeout, a 400, a stop) throws its error for the whole write: Segment dedupes by
 * messageId, so the engine may send every event of it again.
 */
async function write(ctx: ConnectorContext<SegmentConfig>, object: string, ops: Operation[]): Promise<RecordResult[]> {
  const call = callOf(object);
  const built = ops.map((op) => messageOf(call, op));
  const messages = built.filter((m): m is Message => !('reason' in m));
  const delivered: Delivery[] = messages.length === 0 ? [] : await deliver(ctx, call, messages);
  const failed = delivered.flatMap((d) => (d.ok || !isOutflowError(d.error) ? [] : [d.error]));
  // A retryable failure first: the whole write is sent again, and what was accepted is deduped.
  if (failed.length > 0) throw failed.find((e) => e.retryable) ?? failed[0];
  let next = 0;
  return built.map((m) => {
    if ('reason' in m) return reject(m.reason);
    const d = delivered[next++]!;
    return d.ok ? { ok: true } : reject(`Segment's client refused this ${call} call: ${d.error instanceof Error ? d.error.message : String(d.error)}`);
  });
}

export const destination: Destination<SegmentConfig> = {
  // An empty batch: an unreachable address or a refusal fails it; it adds no event.
  async check(ctx) {
    try {
      await ping(ctx);
    } catch (err) {
      if (isOutflowError(err, 'OUTFLOW_ABORTED')) throw err;
      throw new OutflowError('OUTFLOW_CHECK_FAILED', (err as Error).message, { cause: err });
    }
  },

  // The calls, with the fields of Segment's spec each takes.
  async discover() {
    return { objects: CALL_NAMES.map((name) => ({ name, fields: fieldsOf(name), matchKeys: [], modes: ['event' as const] })) };
  },

  // Events only. Segment documents no request limit for its Tracking API (it queues what
  // goes past its event throughput); its 429s pause every sender for their Retry-After.
  // `key`: Segment applies each messageId once, so a re-send is harmless.
  capabilities(_ctx, object): Capabilities {
    callOf(object);
    return { operations: ['event'], maxBatchSize: MAX_BATCH, rateLimits: [], budget: 'connector', concurrency: 4, idempotency: 'key' };
  },

  write,
};
