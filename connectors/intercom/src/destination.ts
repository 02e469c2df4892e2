import { isDeepStrictEqual } from 'node:util';
import type { Intercom } from 'intercom-client';
import {
  checkWith,
  fieldInfo,
  ifFound,
  OutflowError,
  refusedWith,
  singleMatchKey,
  writeEach,
  type Capabilities,
  type ConnectorContext,
  type Destination,
  type Operation,
  type RecordResult,
  type Row,
} from '@outflow/core';
import { call } from './client.js';
import { limitOf, type IntercomConfig } from './config.js';

/** Operations per write() call: each is its own request (Intercom has no batch write for contacts), sent side by side. */
export const MAX_BATCH = 25;
/** The fields a contact holds at its top level; every other field is a custom attribute. */
const STANDARD = new Set(['external_id', 'email', 'phone', 'name', 'avatar', 'owner_id', 'signed_up_at', 'last_seen_at', 'unsubscribed_from_emails']);
const TIMESTAMPS = new Set(['signed_up_at', 'last_seen_at']);
const MATCH_KEYS = ['external_id', 'email'];

type Body = Record<string, unknown> & { custom_attributes?: Record<string, unknown> };
type Ctx = ConnectorContext<IntercomConfig>;
const reject = (reason: string, retryable = false): RecordResult => ({ ok: false, reason, retryable });

/** The contact body of an operation: its fields and match values, timestamps as UNIX seconds. */
function bodyOf(op: Operation): Body {
  const body: Body = {};
  for (const [name, value] of Object.entries({ ...op.fields, ...op.match })) {
    // Intercom's external_id is text; a model's integer key is sent as its digits.
    const v = TIMESTAMPS.has(name) && typeof value === 'string' && Number.isNaN(Number(value)) ? Math.floor(Date.parse(value) / 1000)
      : name === 'external_id' && typeof value === 'number' ? String(value) : value;
    if (STANDARD.has(name)) body[name] = v;
    else (body.custom_attributes ??= {})[name] = v;
  }
  return body;
}

/** Finds the live contact an operation's match key names, by search; a reason when the match cannot name one. */
async function find(ctx: Ctx, match: Row | undefined): Promise<string | undefined | { reason: string }> {
  const key = singleMatchKey(match ?? {}, { service: 'Intercom', allowed: MATCH_KEYS });
  if ('reason' in key) return key;
  const query = { field: key.name, operator: '=' as const, value: String(key.value) };
  const page = await call(ctx, `a search by ${key.name}`, (c) => c.contacts.search({ query, pagination: { per_page: 1 } }));
  return page.data[0]?.id;
}

/** Updates contact `id`; undefined when it no longer exists (or is archived). */
async function update(ctx: Ctx, id: string, op: Operation): Promise<RecordResult | undefined> {
  const updated = await ifFound(call(ctx, 'an update', (c) => c.contacts.update({ contact_id: id, ...bodyOf(op) })));
  return updated === undefined ? undefined : { ok: true, destinationId: id };
}

/**
 * Creates a contact. Intercom refuses a second contact with the same external_id or email
 * (409, naming the one that has it): an upsert then updates that one (unarchiving it first
 * when Outflow archived it); an insert is recognised as already applied when that contact
 * holds exactly its values (a create whose answer was lost), and is refused otherwise.
 */
async function create(ctx: Ctx, op: Operation): Promise<RecordResult> {
  try {
    const created = await call(ctx, 'a create', (c) => c.contacts.create({ role: 'user', ...bodyOf(op) } as Intercom.CreateContactRequest));
    return { ok: true, destinationId: created.id };
  } catch (err) {
    const id = refusedWith(err, 409) ? /id=(\w+)/.exec((err as Error).message)?.[1] : undefined;
    if (id === undefined) throw err;
    if (op.kind === 'insert') {
      const contact = await ifFound(call(ctx, 'a read', (c) => c.contacts.find({ contact_id: id })));
      const same = contact !== undefined && Object.entries(bodyOf(op)).every(([k, v]) => isDeepStrictEqual(k === 'custom_attributes' ? pick(contact.custom_attributes, v) : contact[k as keyof typeof contact], v));
      return same ? { ok: true, destinationId: id } : reject(`a contact with this external_id or email already exists in Intercom (${id}), with other values or archived; an insert does not change it`);
    }
    const updated = await update(ctx, id, op);
    if (updated !== undefined) return updated;
    await call(ctx, 'an unarchive', (c) => c.contacts.unarchive({ contact_id: id }));
    return (await update(ctx, id, op)) ?? reject(`contact ${id}, which Intercom named as holding this record's external_id or email, was not found`, true);
  }
}

const pick = (have: Record<string, unknown> | undefined, want: unknown) => Object.fromEntries(Object.keys(want as object).map((k) => [k, have?.[k]]));

/** One operation, with its own requests, by the contract's rules for a missing or existing record. */
async function apply(ctx: Ctx, op: Operation, deletes: 'archive' | 'delete'): Promise<RecordResult> {
  if (op.kind === 'insert') return create(ctx, op);
  // An id Outflow got back earlier addresses the record ahead of the match values.
  if (op.kind === 'upsert') return (op.destinationId !== undefined ? await update(ctx, op.destinationId, op) : undefined) ?? create(ctx, op);
  const id = op.destinationId ?? (await find(ctx, op.match));
  if (typeof id === 'object') return reject(id.reason);
  if (op.kind === 'update') return (id === undefined ? undefined : await update(ctx, id, op)) ?? reject('contact not found in Intercom (an update never creates one)');
  // A contact already gone is deleted.
  if (id !== undefined) await ifFound(call(ctx, deletes === 'archive' ? 'an archive' : 'a delete', (c) => c.contacts[deletes]({ contact_id: id })));
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
  return writeEach(ops, (op) => apply(ctx, op, ctx.config.deletes ?? 'archive'));
}

function objectOf(object: string): void {
  if (object !== 'contacts') throw new OutflowError('OUTFLOW_MODE_UNSUPPORTED', `Intercom has no object "${object}" here (it has: contacts)`);
}

export const destination: Destination<IntercomConfig> = {
  // Reads the contact data attributes: a wrong token or an unreachable API fails it.
  check: (ctx) => checkWith(() => call(ctx, 'the check', (c) => c.dataAttributes.list({ model: 'contact' }))),

  // Contacts, with the workspace's data attributes (standard and custom) as fields.
  async discover(ctx) {
    const list = await call(ctx, 'the data attributes', (c) => c.dataAttributes.list({ model: 'contact' }));
    const fields = (list.data ?? [])
      .filter((a) => a.name !== 'role' && (a.custom || STANDARD.has(a.name) || a.api_writable === false))
      .map((a) => fieldInfo(a.name, a.data_type, { readOnly: a.api_writable === false, unique: MATCH_KEYS.includes(a.name), options: a.options?.length ? a.options : undefined }));
    return { objects: [{ name: 'contacts', fields, matchKeys: MATCH_KEYS, modes: ['upsert', 'update', 'insert', 'mirror'] }] };
  },

  // Every operation; the app's 10-second share of its per-minute limit; `match`: writes
  // address a contact by id, external_id or email, and Intercom refuses a second contact
  // with the same external_id or email, so a re-send never makes a second one.
  capabilities(ctx, object): Capabilities {
    objectOf(object);
    return { operations: ['upsert', 'update', 'insert', 'delete'], maxBatchSize: MAX_BATCH, rateLimits: [limitOf(ctx.config)], budget: 'connector', concurrency: 4, idempotency: 'match' };
  },

  write,
};
