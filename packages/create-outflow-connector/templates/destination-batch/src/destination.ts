import {
  OutflowError,
  type Capabilities,
  type ConnectorContext,
  type Destination,
  type DestinationCatalog,
  type Operation,
  type RateLimit,
  type RecordResult,
} from '@outflow/core';
import { checkAccount, failure, origin, send } from './client.js';
import type { __Name__Config } from './config.js';

/** The limit the API documents; the acceptance test checks the emulator enforces the same. */
export const RATE_LIMIT: RateLimit = { requests: 100, perMs: 10_000 };
/** The most operations the API takes in one batch request. */
export const MAX_BATCH = 100;

/** What discover() reports: the objects, their fields, which can match a record, the modes. */
const CATALOG: DestinationCatalog = {
  objects: [
    {
      name: 'contacts',
      fields: [
        { name: 'email', type: 'string', unique: true },
        { name: 'name', type: 'string' },
      ],
      matchKeys: ['email'],
      modes: ['upsert', 'update', 'insert', 'mirror'],
    },
  ],
};

type WireResult = { status: 'ok'; id?: string } | { status: 'error'; code: string; message: string; retryable?: boolean };

function objectOf(object: string): void {
  if (!CATALOG.objects.some((o) => o.name === object)) {
    const known = CATALOG.objects.map((o) => o.name).join(', ');
    throw new OutflowError('OUTFLOW_MODE_UNSUPPORTED', `__Name__ has no object "${object}" (it has: ${known})`);
  }
}

/**
 * Writes one batch as one request and answers one result per operation, in order.
 * The engine calls it up to `concurrency` times at once, never with two operations of one
 * key in flight. A throw is about the whole batch: a retryable OutflowError is sent again
 * (its Retry-After pauses the whole connection), a non-retryable one is bisected to the
 * records at fault, and a plain throw is an unknown outcome.
 */
async function write(ctx: ConnectorContext<__Name__Config>, object: string, ops: Operation[]): Promise<RecordResult[]> {
  objectOf(object);
  if (ops.length === 0) return [];
  const body = {
    operations: ops.map((op) => ({
      op: op.kind,
      // Sent with every operation: the API applies each key once, so a re-send after a lost
      // answer changes nothing (idempotency `key` below).
      idempotencyKey: op.idempotencyKey,
      externalId: op.key,
      // An id Outflow got back earlier addresses the record ahead of the match values.
      ...(op.destinationId === undefined ? {} : { id: op.destinationId }),
      ...(op.match === undefined ? {} : { match: op.match }),
      ...(op.fields === undefined ? {} : { properties: op.fields }),
    })),
  };
  const answer = await send(ctx, { method: 'POST', path: `/v1/objects/${encodeURIComponent(object)}/batch`, body }, 'OUTFLOW_DESTINATION');
  if (answer.status !== 200) throw failure(ctx, answer, 'OUTFLOW_DESTINATION', `a batch of ${ops.length} ${object}`);
  const results = (answer.body as { results?: WireResult[] } | undefined)?.results;
  if (!Array.isArray(results) || results.length !== ops.length) {
    // Applied or not, nobody knows: retryable, so the engine resolves it by the declared idempotency.
    throw new OutflowError('OUTFLOW_DESTINATION', `${origin(ctx)} answered a batch of ${ops.length} without one result per operation`, { retryable: true });
  }
  return results.map((r): RecordResult => {
    if (r?.status === 'ok') return r.id === undefined ? { ok: true } : { ok: true, destinationId: r.id };
    // The reason is shown to people and parks the row until it changes: say what is wrong with it.
    return { ok: false, reason: `${r?.code ?? 'error'}: ${r?.message ?? 'refused'}`, retryable: r?.retryable === true };
  });
}

export const destination: Destination<__Name__Config> = {
  // Called by `outflow check` and before a run. Changes nothing.
  check: checkAccount,

  // Read-only. A vendor with custom fields would read them from its schema API here.
  async discover() {
    return CATALOG;
  },

  // Called before a sync writes to `object`; the engine keeps to every figure.
  capabilities(_ctx, object): Capabilities {
    objectOf(object);
    return {
      operations: ['upsert', 'update', 'insert', 'delete'],
      maxBatchSize: MAX_BATCH,
      rateLimits: [RATE_LIMIT],
      // send() draws every request, check()'s too, from the budget (ctx.rateBudget.request).
      budget: 'connector',
      concurrency: 4,
      // The API dedupes by idempotency key. Say `match` if it only upserts by a unique field,
      // `none` if a re-send may act twice (then offer lookup()).
      idempotency: 'key',
    };
  },

  write,
};
