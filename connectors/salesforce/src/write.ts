import { isOutflowError, singleMatchKey, type ConnectorContext, type Operation, type RecordResult, type Row } from '@outflow/core';
import { recoverJobs, runBulkJob, type BulkOperation } from './bulk.js';
import type { SalesforceConfig } from './config.js';
import { DEFAULTS } from './config.js';
import { sessionOf, type Session } from './session.js';
import { coerce, fieldIn, isMatchField, type ObjectSchema, type SfField } from './values.js';

/** The most records one sObject Collections request takes. */
export const MAX_COLLECTION = 200;

export type SfValue = string | number | boolean | null;

/** An operation ready to send: its place in the write, its Salesforce values, and how it addresses its record. */
export interface Prepared {
  index: number;
  op: Operation;
  fields: Record<string, SfValue>;
  /** The record's id, when the operation addresses it by id. */
  id?: string;
  /** The match field and value, when it addresses (or upserts) by one. */
  key?: SfField;
  keyValue?: SfValue;
}

/** A record's outcome, by operation index. */
export type Results = Map<number, RecordResult>;

/** One record's error in a Collections result or a Bulk result row. */
export interface SfRecordError {
  statusCode: string;
  message: string;
  fields?: string[];
}

/** One `write` call: its connection, object and what it has sent. */
export interface Write {
  ctx: ConnectorContext<SalesforceConfig>;
  session: Session;
  object: string;
  schema: ObjectSchema;
  /** Whether a re-sent insert is recognised: the object has a unique external id. */
  resendSafe: boolean;
  /** Whether a request of this write has been applied. */
  sent: boolean;
}

export const reject = (reason: string, retryable = false, retryAfterMs?: number): RecordResult =>
  retryAfterMs === undefined ? { ok: false, reason, retryable } : { ok: false, reason, retryable, retryAfterMs };

/** Codes Salesforce answers for a record that is gone or never existed. */
export const GONE = new Set(['ENTITY_IS_DELETED', 'INVALID_CROSS_REFERENCE_KEY']);
/** Per-record codes that clear up by themselves. */
const RETRYABLE = new Set(['UNABLE_TO_LOCK_ROW', 'SERVER_UNAVAILABLE', 'UNKNOWN_EXCEPTION', 'REQUEST_RUNNING_TOO_LONG', 'ALL_OR_NONE_OPERATION_ROLLED_BACK']);

/** A record's Salesforce errors as a row error. */
export function recordFailure(errors: SfRecordError[], kind: 'create' | 'update' | 'delete'): RecordResult {
  const first = errors[0] ?? { statusCode: 'UNKNOWN_EXCEPTION', message: 'no error given' };
  const text = errors.map((e) => `${e.statusCode}: ${e.message}${e.fields && e.fields.length > 0 ? ` (fields: ${e.fields.join(', ')})` : ''}`).join('; ');
  if (kind === 'delete' && GONE.has(first.statusCode)) return { ok: true };
  if (kind === 'update' && GONE.has(first.statusCode)) return reject(`record not found in Salesforce (${text})`);
  return reject(`Salesforce refused the record (${text})`, RETRYABLE.has(first.statusCode));
}

/** The unique external-id fields of an object: a re-sent insert carrying one is refused as a duplicate, never a second record. */
export function uniqueKeys(schema: ObjectSchema): SfField[] {
  return [...schema.fields.values()].filter((f) => f.unique && (f.externalId || f.idLookup));
}

/** SOQL's quoting of a value in a WHERE clause. */
export function soqlLiteral(value: SfValue): string {
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Reads records of `object` whose `field` is one of `values`: their ids and the `wanted` fields. */
export async function findBy(w: Pick<Write, 'ctx' | 'session' | 'object'>, field: string, values: SfValue[], wanted: string[], why: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const select = [...new Set(['Id', field, ...wanted])].join(', ');
  for (let i = 0; i < values.length; i += MAX_COLLECTION) {
    const part = values.slice(i, i + MAX_COLLECTION);
    let page = await w.session.call<{ records: Record<string, unknown>[]; done: boolean; nextRecordsUrl?: string }>(w.ctx, `a look-up of ${part.length} ${w.object} by ${field} ${why}`, {
      method: 'GET',
      path: `/query?q=${encodeURIComponent(`SELECT ${select} FROM ${w.object} WHERE ${field} IN (${part.map(soqlLiteral).join(', ')})`)}`,
    });
    out.push(...page.records);
    while (!page.done && page.nextRecordsUrl !== undefined) {
      const next = page.nextRecordsUrl.replace(/^\/services\/data\/v[\d.]+/, '');
      page = await w.session.call(w.ctx, `the next page of a look-up of ${w.object}`, { method: 'GET', path: next });
      out.push(...page.records);
    }
  }
  return out;
}

/** Whether a record read back holds exactly `fields` (as Salesforce stores them). */
export function holdsExactly(schema: ObjectSchema, record: Record<string, unknown>, fields: Record<string, SfValue>): boolean {
  return Object.entries(fields).every(([name, want]) => {
    const have = (record[name] ?? null) as SfValue;
    if (want === null || have === null) return want === have;
    const f = fieldIn(schema, name);
    if (f?.type === 'datetime') return Date.parse(String(have).replace(/\+0000$/, 'Z')) === Date.parse(String(want));
    if (typeof want === 'number') return Number(have) === want;
    if (typeof want === 'string' && (f?.type === 'email' || f?.externalId)) return String(have).toLowerCase() === want.toLowerCase();
    return have === want;
  });
}

export type Prep = { reason: string } | { item: Prepared; plan: 'create' | 'update' | 'upsert' | 'delete' | 'resolve' };

/** Coerces an operation's values against describe and decides how it addresses its record. */
export function prepare(schema: ObjectSchema, object: string, op: Operation, index: number): Prep {
  const fields: Record<string, SfValue> = {};
  if (op.kind !== 'delete') {
    for (const [name, value] of Object.entries(op.fields ?? {})) {
      const field = fieldIn(schema, name);
      if (field === undefined) return { reason: `${object} has no field ${name}; create it in Salesforce or change the mapping` };
      const writable = op.kind === 'insert' ? field.createable : op.kind === 'update' ? field.updateable : field.createable || field.updateable;
      if (!writable) return { reason: `field ${field.name} of ${object} cannot be written by an ${op.kind} (describe says it is not ${op.kind === 'insert' ? 'createable' : 'updateable'})` };
      const coerced = coerce(field, value, object);
      if (!coerced.ok) return { reason: coerced.reason };
      fields[field.name] = coerced.value;
    }
  }
  const item: Prepared = { index, op, fields };
  const match = matchOf(schema, object, op.match);
  if ('reason' in match) {
    if (op.kind === 'upsert' || (op.kind !== 'insert' && op.destinationId === undefined)) return { reason: match.reason };
  } else if (match.key !== undefined) {
    item.key = match.key;
    item.keyValue = match.value;
  }
  if (op.destinationId !== undefined) item.id = op.destinationId;
  else if (item.key?.name === 'Id') item.id = String(item.keyValue);
  // The match value is a value to set: on a record addressed by id, and on a new record.
  if (item.key !== undefined && item.key.name !== 'Id' && !(item.key.name in fields) && op.kind !== 'delete') fields[item.key.name] = item.keyValue!;
  switch (op.kind) {
    case 'upsert':
      if (item.id !== undefined) return { item, plan: 'update' };
      return item.key === undefined ? { item, plan: 'create' } : { item, plan: 'upsert' };
    case 'update':
      if (item.id !== undefined) return { item, plan: 'update' };
      if (item.key === undefined) return { reason: `an update of ${object} needs the record's Salesforce Id or a match key on an external id field; this record has neither` };
      return { item, plan: 'resolve' };
    case 'insert':
      return { item, plan: 'create' };
    case 'delete':
      if (item.id !== undefined) return { item, plan: 'delete' };
      if (item.key === undefined) return { reason: `a delete from ${object} needs the record's Salesforce Id or a match key; this record has neither` };
      return { item, plan: 'resolve' };
    case 'event':
      return { reason: `Salesforce ${object} takes record operations, not events (mode: event)` };
  }
}

function matchOf(schema: ObjectSchema, object: string, match: Row | undefined): { key?: SfField; value?: SfValue } | { reason: string } {
  if (match === undefined || Object.keys(match).length === 0) return {};
  const key = singleMatchKey(match, { service: 'Salesforce' });
  if ('reason' in key) return key;
  const field = fieldIn(schema, key.name);
  if (field === undefined) return { reason: `match key ${key.name} is not a field of ${object}` };
  if (!isMatchField(field)) {
    return { reason: `match key ${field.name} of ${object} is neither an External ID nor an idLookup field; Salesforce upserts and finds records only by those (or Id)` };
  }
  const { value } = key;
  if (value === null || value === undefined || value === '') return { reason: `match key ${field.name} is empty for this record` };
  const coerced = coerce(field, value, object);
  if (!coerced.ok) return { reason: coerced.reason };
  return { key: field, value: coerced.value };
}

/**
 * Applies a batch to `object`: each operation is checked against describe (a value
 * Salesforce would refuse is rejected alone before anything is sent), then sent by kind —
 * creates, updates by Id, upserts by external id, deletes — over sObject Collections
 * (200 a request, allOrNone false) or, from `bulkThreshold` operations of one kind, one
 * Bulk API 2.0 job.
 */
export async function writeBatch(ctx: ConnectorContext<SalesforceConfig>, object: string, ops: Operation[]): Promise<RecordResult[]> {
  if (ops.length === 0) return [];
  const session = sessionOf(ctx);
  const schema = await session.describe(ctx, object);
  const w: Write = { ctx, session, object: schema.name, schema, resendSafe: uniqueKeys(schema).length > 0, sent: false };
  const results: Results = new Map();
  const plans = { create: [] as Prepared[], update: [] as Prepared[], upsert: [] as Prepared[], delete: [] as Prepared[], resolve: [] as Prepared[] };
  ops.forEach((op, index) => {
    const p = prepare(schema, object, op, index);
    if ('reason' in p) results.set(index, reject(p.reason));
    else plans[p.plan].push(p.item);
  });
  // Operations a Bulk job left unread holds (a run stopped, a process killed) are told by that job.
  const recovered = await recoverJobs(w, Object.values(plans).flat());
  for (const [index, result] of recovered) results.set(index, result);
  for (const plan of Object.values(plans)) plan.splice(0, plan.length, ...plan.filter((i) => !recovered.has(i.index)));

  // Updates and deletes by a match field: their ids are read first.
  if (plans.resolve.length > 0) await resolveIds(w, plans.resolve, plans, results);
  plans.create = await refuseExisting(w, plans.create, results);

  await send(w, 'insert', plans.create, results);
  await send(w, 'update', plans.update, results);
  const byKey = new Map<string, Prepared[]>();
  for (const item of plans.upsert) byKey.set(item.key!.name, [...(byKey.get(item.key!.name) ?? []), item]);
  for (const items of byKey.values()) await send(w, 'upsert', items, results);
  await send(w, 'delete', plans.delete, results);

  // An upsert whose Id is gone falls back to its match key, or creates.
  const fallback = plans.update.filter((i) => i.op.kind === 'upsert' && i.op.destinationId !== undefined && /not found/.test((results.get(i.index) as { reason?: string } | undefined)?.reason ?? ''));
  if (fallback.length > 0) {
    const again = fallback.map((i) => ({ ...i, id: undefined }) as Prepared);
    await send(w, 'upsert', again.filter((i) => i.key !== undefined && i.key.name !== 'Id'), results);
    await send(w, 'insert', again.filter((i) => i.key === undefined || i.key.name === 'Id'), results);
  }
  return ops.map((_, i) => results.get(i) ?? reject('Salesforce returned no result for this record', true));
}

/**
 * Inserts matched by a field that is not unique (Contact.Email): Salesforce would create a
 * second record, so the records holding their match values are read first, and an insert
 * whose value is held is refused as existing. (A unique external id is refused by Salesforce
 * itself, and recognised in {@link recognise}.)
 */
async function refuseExisting(w: Write, items: Prepared[], results: Results): Promise<Prepared[]> {
  const checked = items.filter((i) => i.op.kind === 'insert' && i.key !== undefined && i.key.name !== 'Id' && !i.key.unique);
  if (checked.length === 0) return items;
  const held = new Set<number>();
  const byField = new Map<string, Prepared[]>();
  for (const item of checked) byField.set(item.key!.name, [...(byField.get(item.key!.name) ?? []), item]);
  for (const [field, list] of byField) {
    const found = await findBy(w, field, [...new Set(list.map((i) => i.keyValue!))], [], 'before inserting');
    for (const item of list) {
      const hit = found.find((r) => String(r[field] ?? '').toLowerCase() === String(item.keyValue).toLowerCase());
      if (hit === undefined) continue;
      held.add(item.index);
      results.set(item.index, reject(`a ${w.object} with ${field} ${JSON.stringify(item.keyValue)} already exists in Salesforce (${String(hit['Id'])}); an insert does not change it`));
    }
  }
  return items.filter((i) => !held.has(i.index));
}

/** Finds the ids of records addressed by a match field; a delete of a record that is not there is done. */
async function resolveIds(w: Write, items: Prepared[], plans: { update: Prepared[]; delete: Prepared[] }, results: Results): Promise<void> {
  const byField = new Map<string, Prepared[]>();
  for (const item of items) byField.set(item.key!.name, [...(byField.get(item.key!.name) ?? []), item]);
  for (const [field, list] of byField) {
    const found = await findBy(w, field, [...new Set(list.map((i) => i.keyValue!))], [], 'to find the records addressed');
    for (const item of list) {
      const want = String(item.keyValue).toLowerCase();
      const hits = found.filter((r) => String(r[field] ?? '').toLowerCase() === want);
      if (hits.length > 1) {
        results.set(item.index, reject(`${hits.length} records of ${w.object} hold ${field} ${JSON.stringify(item.keyValue)} (${hits.map((h) => String(h['Id'])).join(', ')}); Outflow will not choose one`));
      } else if (hits.length === 0) {
        results.set(item.index, item.op.kind === 'delete' ? { ok: true } : reject(`record not found in Salesforce: no ${w.object} has ${field} ${JSON.stringify(item.keyValue)}`));
      } else {
        (item.op.kind === 'delete' ? plans.delete : plans.update).push({ ...item, id: String(hits[0]!['Id']) });
      }
    }
  }
}

/**
 * Sends one kind of operation. Until a request of this write has been applied, a failure
 * fails the write as a whole (the engine retries, bisects, or resolves it as in doubt).
 * After that, a failure must not undo what landed: the records of the failed request get
 * results of their own, and an insert in doubt on an object without a unique external id
 * is parked as outcome unknown.
 */
async function send(w: Write, kind: BulkOperation, items: Prepared[], results: Results): Promise<void> {
  if (items.length === 0) return;
  const threshold = w.ctx.config.bulkThreshold ?? DEFAULTS.bulkThreshold;
  const unique = dedupe(w, kind, items, results);
  const bulk = unique.length >= threshold;
  const parts = bulk ? [unique] : chunk(unique, MAX_COLLECTION);
  for (const part of parts) {
    try {
      const out = bulk ? await runBulkJob(w, kind, part) : await collections(w, kind, part);
      for (const [index, result] of out) results.set(index, result);
      w.sent = true;
      // `transport_records` is the counter a run's summary shows the transport by.
      w.ctx.metrics.count('transport_records', part.length, { transport: bulk ? 'bulk' : 'collections', operation: kind });
    } catch (err) {
      if (!w.sent || !isOutflowError(err)) throw err;
      const inDoubt = err.retryable && !err.notApplied && !w.resendSafe && kind === 'insert';
      const result = inDoubt
        ? reject(`outcome unknown: Salesforce may have created this record (${err.message}); ${w.object} has no unique external id to recognise it by, so check it in Salesforce, then send it again with \`outflow retry\``)
        : // Not applied (a pause, a limit): sent again, when the whole batch then meets the pause.
          reject(err.message, err.retryable, err.notApplied ? undefined : err.retryAfterMs);
      for (const item of part) results.set(item.index, result);
    }
  }
}

/** Two operations of one request naming the same record would be refused together: the later waits for another batch. */
function dedupe(w: Write, kind: BulkOperation, items: Prepared[], results: Results): Prepared[] {
  const seen = new Set<string>();
  const out: Prepared[] = [];
  const uniques = kind === 'insert' ? uniqueKeys(w.schema) : [];
  for (const item of items) {
    const ids: string[] = [];
    if (kind === 'upsert') ids.push(`${item.key!.name} ${String(item.keyValue).toLowerCase()}`);
    else if (kind !== 'insert') ids.push(`Id ${item.id!.slice(0, 15)}`);
    for (const u of uniques) if (item.fields[u.name] !== undefined && item.fields[u.name] !== null) ids.push(`${u.name} ${String(item.fields[u.name]).toLowerCase()}`);
    const clash = ids.find((id) => seen.has(id));
    if (clash !== undefined) {
      results.set(item.index, reject(`another record in the same batch names the same Salesforce record (${clash}); sent again on its own`, true, 1000));
      continue;
    }
    for (const id of ids) seen.add(id);
    out.push(item);
  }
  return out;
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

interface CollectionResult {
  id?: string;
  success: boolean;
  errors?: SfRecordError[];
  created?: boolean;
}

/** One sObject Collections request, its per-record results paired with the operations in order. */
async function collections(w: Write, kind: BulkOperation, items: Prepared[]): Promise<Results> {
  const { ctx, session, object } = w;
  const record = (i: Prepared, extra: Record<string, unknown> = {}) => ({ attributes: { type: object }, ...extra, ...i.fields });
  let answer: unknown;
  switch (kind) {
    case 'insert':
      answer = await session.call(ctx, `a Collections create of ${items.length} ${object}`, { method: 'POST', path: '/composite/sobjects', body: { allOrNone: false, records: items.map((i) => record(i)) } });
      break;
    case 'update':
      answer = await session.call(ctx, `a Collections update of ${items.length} ${object}`, {
        method: 'PATCH',
        path: '/composite/sobjects',
        body: { allOrNone: false, records: items.map((i) => record(i, { id: i.id })) },
      });
      break;
    case 'upsert': {
      const key = items[0]!.key!.name;
      answer = await session.call(ctx, `a Collections upsert of ${items.length} ${object} on ${key}`, {
        method: 'PATCH',
        path: `/composite/sobjects/${object}/${key}`,
        body: { allOrNone: false, records: items.map((i) => record(i, { [key]: i.keyValue })) },
      });
      break;
    }
    case 'delete':
      answer = await session.call(ctx, `a Collections delete of ${items.length} ${object}`, {
        method: 'DELETE',
        path: `/composite/sobjects?ids=${items.map((i) => i.id!).join(',')}&allOrNone=false`,
      });
      break;
  }
  if (!Array.isArray(answer) || answer.length !== items.length) {
    // Salesforce answered 2xx but not with one result per record: the write may have landed.
    throw Object.assign(new Error(`Salesforce answered a Collections ${kind} of ${items.length} records with ${Array.isArray(answer) ? `${answer.length} results` : 'something that is not a result list'}`), { code: 'EBADANSWER' });
  }
  const out: Results = new Map();
  const duplicates: { item: Prepared; id: string }[] = [];
  (answer as CollectionResult[]).forEach((r, k) => {
    const item = items[k]!;
    if (r.success) {
      out.set(item.index, kind === 'delete' ? { ok: true } : { ok: true, destinationId: String(r.id ?? item.id) });
      return;
    }
    const errors = r.errors ?? [];
    // A create refused because a unique external id is taken: maybe by this very insert, sent before.
    const held = kind === 'insert' && errors[0]?.statusCode === 'DUPLICATE_VALUE' ? /record with id: (\w{15,18})/.exec(errors[0].message)?.[1] : undefined;
    if (held !== undefined && item.op.kind === 'insert') duplicates.push({ item, id: held });
    else out.set(item.index, recordFailure(errors, kind === 'delete' ? 'delete' : kind === 'update' ? 'update' : 'create'));
  });
  if (duplicates.length > 0) await recognise(w, duplicates, out);
  return out;
}

/**
 * Inserts refused because a record already holds their unique external id: an insert whose
 * record holds exactly its values is the same insert applied before (its answer lost) and
 * is ok with that record's id; any other is refused as existing.
 */
async function recognise(w: Write, duplicates: { item: Prepared; id: string }[], out: Results): Promise<void> {
  const wanted = [...new Set(duplicates.flatMap((d) => Object.keys(d.item.fields)))];
  const found = await findBy(w, 'Id', duplicates.map((d) => d.id), wanted, 'after a duplicate value');
  for (const { item, id } of duplicates) {
    const record = found.find((r) => String(r['Id']).slice(0, 15) === id.slice(0, 15));
    out.set(
      item.index,
      record !== undefined && holdsExactly(w.schema, record, item.fields)
        ? { ok: true, destinationId: String(record['Id']) }
        : reject(`Salesforce refused the record (DUPLICATE_VALUE): record ${id} already holds its unique external id, with other values; an insert does not change it`),
    );
  }
}
