import { isDeepStrictEqual } from 'node:util';
import {
  checkWith,
  ifFound,
  OutflowError,
  refusedWith,
  singleMatchKey,
  writeEach,
  type Capabilities,
  type ConnectorContext,
  type Destination,
  type DestinationCatalog,
  type Operation,
  type RateLimit,
  type RecordResult,
  type Row,
} from '@outflow/core';
import { call } from './client.js';
import type { __Name__Config } from './config.js';

/** The limit the API documents; the acceptance test checks the emulator enforces the same. */
export const RATE_LIMIT: RateLimit = { requests: 1000, perMs: 10_000 };
/** Operations per write() call: each is its own request (the API has no batch write), sent side by side. */
export const MAX_BATCH = 25;
/** The fields a record can be found by: the API holds each value on one record at most. */
const MATCH_KEYS = ['external_id', 'email'];

/** What discover() reports: the objects, their fields, which can match a record, the modes. */
const CATALOG: DestinationCatalog = {
  objects: [
    {
      name: 'contacts',
      fields: [
        { name: 'external_id', type: 'string', unique: true },
        { name: 'email', type: 'string', unique: true },
        { name: 'name', type: 'string' },
      ],
      matchKeys: MATCH_KEYS,
      modes: ['upsert', 'update', 'insert', 'mirror'],
    },
  ],
};

type Ctx = ConnectorContext<__Name__Config>;
const reject = (reason: string, retryable = false): RecordResult => ({ ok: false, reason, retryable });

/** The properties an operation sets: its fields and its match values. */
function bodyOf(op: Operation): Row {
  return { ...op.fields, ...op.match };
}

/** Finds the record an operation's match key names, by search; a reason when the match cannot name one. */
async function find(ctx: Ctx, object: string, match: Row | undefined): Promise<string | undefined | { reason: string }> {
  const key = singleMatchKey(match ?? {}, { service: '__Name__', allowed: MATCH_KEYS });
  if ('reason' in key) return key;
  const page = await call(ctx, `a search by ${key.name}`, (c) => c.search(object, { [key.name]: key.value }, 1));
  return page.results[0]?.id;
}

/** Updates record `id`; undefined when it no longer exists. */
async function update(ctx: Ctx, object: string, id: string, op: Operation): Promise<RecordResult | undefined> {
  const updated = await ifFound(call(ctx, 'an update', (c) => c.update(object, id, bodyOf(op))));
  return updated === undefined ? undefined : { ok: true, destinationId: id };
}

/**
 * Creates a record. The API refuses a second record holding a value of a unique field (409):
 * the record holding it is then found by the match key. An upsert updates it; an insert is
 * recognised as already applied when it holds exactly the operation's values (a create whose
 * answer was lost), and is refused otherwise. A 409 for a record the match does not find (a
 * unique field other than the match key) is the record's fault: rejected with the reason.
 */
async function create(ctx: Ctx, object: string, op: Operation): Promise<RecordResult> {
  try {
    const created = await call(ctx, 'a create', (c) => c.create(object, bodyOf(op)));
    return { ok: true, destinationId: created.id };
  } catch (err) {
    if (!refusedWith(err, 409)) throw err;
    const id = await find(ctx, object, op.match);
    if (id === undefined || typeof id === 'object') return reject((err as Error).message);
    if (op.kind === 'insert') {
      const held = await ifFound(call(ctx, 'a read', (c) => c.get(object, id)));
      const same = held !== undefined && Object.entries(bodyOf(op)).every(([k, v]) => isDeepStrictEqual(held.properties[k], v));
      return same ? { ok: true, destinationId: id } : reject(`a record with this match key already exists in __Name__ (${id}), with other values; an insert does not change it`);
    }
    // Gone between the create and the update: retryable, the next attempt creates it.
    return (await update(ctx, object, id, op)) ?? reject(`record ${id}, which holds this record's match key, was not found`, true);
  }
}

/** One operation, with its own requests, by the contract's rules for a missing or existing record. */
async function apply(ctx: Ctx, object: string, op: Operation): Promise<RecordResult> {
  if (op.kind === 'insert') return create(ctx, object, op);
  // An id Outflow got back earlier addresses the record ahead of the match values.
  if (op.kind === 'upsert') return (op.destinationId !== undefined ? await update(ctx, object, op.destinationId, op) : undefined) ?? create(ctx, object, op);
  const id = op.destinationId ?? (await find(ctx, object, op.match));
  if (typeof id === 'object') return reject(id.reason);
  if (op.kind === 'update') return (id === undefined ? undefined : await update(ctx, object, id, op)) ?? reject('record not found in __Name__ (an update never creates one)');
  // A record already gone is deleted.
  if (id !== undefined) await ifFound(call(ctx, 'a delete', (c) => c.delete(object, id)));
  return { ok: true };
}

/**
 * Applies each operation with its own requests, side by side (core's writeEach), and answers
 * one result per operation, in order. The engine calls it up to `concurrency` times at once,
 * never with two operations of one key in flight. A refusal (a 4xx: an unknown property, a
 * value not allowed) rejects that record with the API's reason; a failure of every operation
 * about the connection (a 429, a 5xx, a timeout, a refused token) fails the whole batch with
 * that error.
 */
async function write(ctx: Ctx, object: string, ops: Operation[]): Promise<RecordResult[]> {
  objectOf(object);
  return writeEach(ops, (op) => apply(ctx, object, op));
}

function objectOf(object: string): void {
  if (!CATALOG.objects.some((o) => o.name === object)) {
    const known = CATALOG.objects.map((o) => o.name).join(', ');
    throw new OutflowError('OUTFLOW_MODE_UNSUPPORTED', `__Name__ has no object "${object}" (it has: ${known})`);
  }
}

export const destination: Destination<__Name__Config> = {
  // Reads the account the token belongs to: a wrong token or an unreachable API fails it. Changes nothing.
  check: (ctx) => checkWith(() => call(ctx, 'the check', (c) => c.account())),

  // Read-only. A vendor with custom fields would read them from its schema API here.
  async discover() {
    return CATALOG;
  },

  // Called before a sync writes to `object`; the engine keeps to every figure. call() draws
  // every request, check()'s too, from the budget (budgetedFetch). `match`: a record is
  // addressed by its id or its match key, and the API refuses a second record with the same
  // value of a unique field, so a re-send never makes a second one. Say `key` if the API
  // takes an idempotency key on each request, `none` if a re-send may act twice.
  capabilities(_ctx, object): Capabilities {
    objectOf(object);
    return { operations: ['upsert', 'update', 'insert', 'delete'], maxBatchSize: MAX_BATCH, rateLimits: [RATE_LIMIT], budget: 'connector', concurrency: 4, idempotency: 'match' };
  },

  write,
};
