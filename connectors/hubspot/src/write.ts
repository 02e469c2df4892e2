import { isOutflowError, singleMatchKey, type ConnectorContext, type Operation, type RecordResult, type Row } from '@outflow/core';
import type { HubSpotConfig } from './config.js';
import { explain, refusalOf, sessionOf, type HubSpotErrorBody, type Session } from './session.js';
import { coerce, type PropertyInfo } from './values.js';

/** The most inputs HubSpot accepts in one batch request. */
export const MAX_BATCH = 100;

/** An operation ready to send: its position in the write, and its HubSpot properties. */
interface Prepared {
  index: number;
  op: Operation;
  properties: Record<string, string>;
  /** The unique property and value that identify the record, when matched by one. */
  idProperty?: string;
  idValue?: string;
}

interface ResultLike {
  id: string;
  properties?: Record<string, string | null>;
  objectWriteTraceId?: string;
}

interface BatchData {
  results?: ResultLike[];
  errors?: HubSpotErrorBody[];
}

const reject = (reason: string, retryable = false, retryAfterMs?: number): RecordResult =>
  retryAfterMs === undefined ? { ok: false, reason, retryable } : { ok: false, reason, retryable, retryAfterMs };

/** Email is HubSpot's unique key for contacts and compares without case. */
function norm(property: string, value: string): string {
  return property === 'email' ? value.trim().toLowerCase() : value;
}

/** Whether `name` can identify records of `object` in upserts, updates and look-ups. */
export function isMatchKey(object: string, prop: PropertyInfo | undefined, name: string): boolean {
  if (name === 'hs_object_id') return true;
  if (object === 'contacts' && name === 'email') return true;
  return prop?.unique === true;
}

/** Per-record categories HubSpot may clear up by itself; everything else is the record's fault. */
function retryableCategory(category: string | undefined): boolean {
  return category === 'RATE_LIMITS' || category === 'INTERNAL_ERROR' || category === 'SERVICE_UNAVAILABLE' || category === 'TIMEOUT';
}

/** One `write` call: its connection, object, property definitions and progress. */
interface Write {
  ctx: ConnectorContext<HubSpotConfig>;
  session: Session;
  object: string;
  props: Map<string, PropertyInfo>;
  /** Whether a re-sent create is harmless: the object has a unique property HubSpot refuses a second record by. */
  resendSafe: boolean;
  /** Inputs an update found gone (OBJECT_NOT_FOUND), by operation index. */
  notFound: Set<number>;
  /** Whether any request of this write has been applied by HubSpot. */
  sent: boolean;
}

type Kind = 'upsert' | 'update' | 'insert' | 'delete';

/** The properties of `object` that identify a record by value (email for contacts, any `hasUniqueValue`). */
export function uniqueProperties(object: string, props: Map<string, PropertyInfo>): PropertyInfo[] {
  return [...props.values()].filter((p) => p.name !== 'hs_object_id' && isMatchKey(object, p, p.name));
}

/**
 * Applies a batch to `object` and returns one result per operation, in order. Values are
 * checked and converted against the object's property definitions first, so a value
 * HubSpot would refuse is rejected alone, with the reason, before anything is sent.
 */
export async function writeBatch(ctx: ConnectorContext<HubSpotConfig>, object: string, ops: Operation[]): Promise<RecordResult[]> {
  if (ops.length === 0) return [];
  const session = sessionOf(ctx);
  const props = await session.properties(ctx, object);
  const w: Write = { ctx, session, object, props, resendSafe: uniqueProperties(object, props).length > 0, notFound: new Set(), sent: false };
  const results: (RecordResult | undefined)[] = new Array(ops.length);
  const groups: Record<Kind, Prepared[]> = { upsert: [], update: [], insert: [], delete: [] };

  ops.forEach((op, index) => {
    const prepared = prepare(object, props, op, index);
    if ('reason' in prepared) results[index] = reject(prepared.reason);
    else groups[prepared.kind].push(prepared.item);
  });

  const sendGroup = async (kind: Kind, items: Prepared[]): Promise<void> => {
    const out = new Map<number, RecordResult>();
    await sendPart(w, kind, items, out);
    for (const [index, result] of out) results[index] = result;
  };
  for (const [kind, items] of Object.entries(groups) as [Kind, Prepared[]][]) await sendGroup(kind, items);

  // An upsert whose destinationId no longer exists falls back to its match key, or creates.
  const fallback: { upsert: Prepared[]; insert: Prepared[] } = { upsert: [], insert: [] };
  for (const item of groups.update) {
    if (item.op.kind !== 'upsert' || !w.notFound.has(item.index)) continue;
    const byMatch = item.idProperty !== undefined && item.idProperty !== 'hs_object_id';
    const properties = { ...item.properties };
    if (byMatch) delete properties[item.idProperty!];
    fallback[byMatch ? 'upsert' : 'insert'].push({ ...item, properties });
  }
  await sendGroup('upsert', fallback.upsert);
  await sendGroup('insert', fallback.insert);
  return results.map((r) => r ?? reject('HubSpot returned no result for this record', true));
}

/**
 * Sends `items` and puts their results in `out`. Until a request of this write has been
 * applied, a failure fails the write as a whole (the engine retries it, bisects it, or
 * resolves it as in doubt). After that, a failure must not undo what landed, so the
 * records of the failed request get results of their own: a refusal parks them with its
 * reason; a failure HubSpot did not act on, or one that is safe to send again, waits and
 * goes again; a write in doubt on an object without a unique property, where a re-sent
 * create could make a second record, is parked as outcome unknown.
 */
async function sendPart(w: Write, kind: Kind, items: Prepared[], out: Map<number, RecordResult>): Promise<void> {
  if (items.length === 0) return;
  try {
    for (const [index, result] of await sendPinned(w, kind, items)) out.set(index, result);
  } catch (err) {
    if (!w.sent || !isOutflowError(err)) throw err;
    const inDoubt = err.retryable && !err.notApplied && !w.resendSafe && kind === 'insert';
    const result = inDoubt
      ? reject(
          `outcome unknown: HubSpot may have applied this write (${err.message}); ${w.object} has no unique property to recognise it by, so check it in HubSpot, then send it again with \`outflow retry\``,
        )
      : reject(err.message, err.retryable, err.retryAfterMs);
    for (const item of items) out.set(item.index, result);
  }
}

/**
 * Sends `items`, and pins a refusal of the whole request on the inputs at fault: a batch
 * create HubSpot refuses with 409 CONFLICT goes to {@link resolveConflicts}, a 400
 * VALIDATION_ERROR (which names no input) is halved until it is pinned on single inputs.
 * HubSpot applies nothing of a request it refuses, so sending parts of it again is safe.
 */
async function sendPinned(w: Write, kind: Kind, items: Prepared[]): Promise<Map<number, RecordResult>> {
  try {
    const out = await send(w, kind, items);
    w.sent = true;
    return out;
  } catch (err) {
    const refusal = refusalOf(err);
    if (refusal?.status === 409 && refusal.body.category === 'CONFLICT' && kind === 'insert') return resolveConflicts(w, items, refusal.body);
    if (refusal?.status === 400 && refusal.body.category === 'VALIDATION_ERROR') return bisect(w, kind, items, refusal.body);
    throw err;
  }
}

/** Halves a refused request until the refusal is pinned on single inputs, each parked with HubSpot's reason. */
async function bisect(w: Write, kind: Kind, items: Prepared[], body: HubSpotErrorBody): Promise<Map<number, RecordResult>> {
  const out = new Map<number, RecordResult>();
  if (items.length === 1) {
    out.set(items[0]!.index, reject(`HubSpot refused the record (${body.category ?? 'error'}): ${explain(body)}`));
    return out;
  }
  const mid = Math.ceil(items.length / 2);
  await sendPart(w, kind, items.slice(0, mid), out);
  await sendPart(w, kind, items.slice(mid), out);
  return out;
}

/**
 * A batch create HubSpot refused because a unique value of an input (an email) is held by
 * a record already — one created by an earlier attempt whose answer was lost, or by anyone
 * else. HubSpot names only the first such record, so the records holding the inputs'
 * unique values are read, one request per unique property: an upsert is applied to the
 * record that holds its value (an update by id); an insert is recognised as already applied
 * when that record holds exactly its values, and is refused otherwise; the other inputs are
 * created. When no input's value is found, the refusal is pinned by halving.
 */
async function resolveConflicts(w: Write, items: Prepared[], body: HubSpotErrorBody): Promise<Map<number, RecordResult>> {
  const held = await holders(w, items);
  if (held.size === 0) return bisect(w, 'insert', items, body);

  const out = new Map<number, RecordResult>();
  const updates: Prepared[] = [];
  for (const item of items) {
    const record = held.get(item.index);
    if (record === undefined) continue;
    if (item.op.kind === 'insert') {
      out.set(
        item.index,
        holdsExactly(w, record.properties, item.properties)
          ? { ok: true, destinationId: record.id }
          : reject(`HubSpot refused the record (CONFLICT): record ${record.id} already holds its unique value, with other values; an insert does not change it`),
      );
    } else {
      updates.push({ ...item, op: { ...item.op, destinationId: record.id } });
    }
  }
  const rest = items.filter((i) => !held.has(i.index));
  await sendPart(w, 'update', updates, out);
  await sendPart(w, 'insert', rest, out);
  return out;
}

interface Held {
  id: string;
  properties: Record<string, string>;
}

/** The records holding the unique values of `items`, by operation index. */
async function holders(w: Write, items: Prepared[]): Promise<Map<number, Held>> {
  const held = new Map<number, Held>();
  for (const p of uniqueProperties(w.object, w.props)) {
    const carrying = items.filter((i) => !held.has(i.index) && (i.properties[p.name] ?? '') !== '');
    if (carrying.length === 0) continue;
    const wanted = [...new Set(carrying.flatMap((i) => Object.keys(i.properties)))];
    const found = await read(w, p.name, [...new Set(carrying.map((i) => i.properties[p.name]!))], wanted, 'after a conflict');
    for (const item of carrying) {
      const record = found.get(norm(p.name, item.properties[p.name]!));
      if (record !== undefined) held.set(item.index, record);
    }
  }
  return held;
}

/** Reads records by a unique property (one batch read) with `properties`; keyed by the normalised value they hold. */
async function read(w: Write, idProperty: string, values: string[], properties: string[], why: string): Promise<Map<string, Held>> {
  const reply = await w.session.call(w.ctx, `a look-up of ${values.length} ${w.object} by ${idProperty} ${why}`, () =>
    w.session.client.crm.objects.batchApi.readWithHttpInfo(w.object, {
      idProperty,
      inputs: values.map((id) => ({ id })),
      properties: [...new Set([...properties, idProperty])],
      propertiesWithHistory: [],
    }),
  );
  const found = new Map<string, Held>();
  for (const r of (reply.data as BatchData).results ?? []) {
    const value = r.properties?.[idProperty];
    if (typeof value !== 'string') continue;
    const properties: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.properties ?? {})) if (typeof v === 'string') properties[k] = v;
    found.set(norm(idProperty, value), { id: String(r.id), properties });
  }
  return found;
}

/** Whether a record's values are the ones an input would write (as HubSpot stores them). */
function holdsExactly(w: Write, have: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([name, value]) => {
    const current = have[name] ?? '';
    if (value === '' || current === '') return value === current;
    switch (w.props.get(name)?.type) {
      case 'number':
        return Number(current) === Number(value);
      case 'datetime':
        return Date.parse(current) === Date.parse(value);
      case 'enumeration':
        return [...current.split(';')].sort().join(';') === [...value.split(';')].sort().join(';');
      default:
        return norm(name, current) === norm(name, value);
    }
  });
}

function prepare(
  object: string,
  props: Map<string, PropertyInfo>,
  op: Operation,
  index: number,
): { reason: string } | { kind: 'upsert' | 'update' | 'insert' | 'delete'; item: Prepared } {
  const properties: Record<string, string> = {};
  if (op.kind !== 'delete') {
    for (const [name, value] of Object.entries(op.fields ?? {})) {
      const prop = props.get(name);
      if (prop === undefined) return { reason: `${object} has no property "${name}"; create it in HubSpot or change the mapping` };
      if (prop.readOnly) return { reason: `property "${name}" of ${object} is read-only in HubSpot and cannot be written` };
      const coerced = coerce(prop, value, object);
      if (!coerced.ok) return { reason: coerced.reason };
      properties[name] = coerced.value;
    }
  }
  const match = matchOf(object, props, op.match);
  if ('reason' in match && match.reason !== undefined && (op.kind === 'upsert' || (op.destinationId === undefined && op.kind !== 'insert'))) {
    return { reason: match.reason };
  }
  const item: Prepared = { index, op, properties };
  if ('idProperty' in match) {
    item.idProperty = match.idProperty;
    item.idValue = match.idValue;
  }
  // Addressed by its id, a record gets the match value as a value to set.
  if (op.destinationId !== undefined && (op.kind === 'upsert' || op.kind === 'update') && item.idProperty !== undefined && item.idProperty !== 'hs_object_id') {
    properties[item.idProperty] ??= item.idValue!;
  }
  switch (op.kind) {
    case 'upsert':
      // A record Outflow delivered before is updated by its id (see writeBatch for one that
      // no longer exists); any other is upserted by its match key, or created without one.
      if (op.destinationId !== undefined) return { kind: 'update', item };
      if (item.idProperty === undefined) return { kind: 'insert', item };
      if (item.idProperty === 'hs_object_id') return { kind: 'update', item };
      delete properties[item.idProperty];
      return { kind: 'upsert', item };
    case 'update':
      if (op.destinationId === undefined && item.idProperty === undefined) {
        return { reason: `an update of ${object} needs the record's HubSpot id or a unique match key; this record has neither` };
      }
      return { kind: 'update', item };
    case 'insert':
      // A match key mapped to no field is still the new record's value for it.
      if (item.idProperty !== undefined && item.idProperty !== 'hs_object_id' && !(item.idProperty in properties)) {
        properties[item.idProperty] = item.idValue!;
      }
      return { kind: 'insert', item };
    case 'delete':
      return { kind: 'delete', item };
    case 'event':
      return { reason: `HubSpot ${object} takes record operations, not events (mode: event)` };
  }
}

function matchOf(
  object: string,
  props: Map<string, PropertyInfo>,
  match: Row | undefined,
): { idProperty: string; idValue: string } | { reason?: string } {
  if (match === undefined) return {};
  const key = singleMatchKey(match, { service: 'HubSpot', noun: 'property' });
  if ('reason' in key) return key;
  const { name, value } = key;
  const prop = props.get(name);
  if (prop === undefined && name !== 'hs_object_id') return { reason: `match key "${name}" is not a property of ${object}` };
  if (!isMatchKey(object, prop, name)) {
    return {
      reason: `match key "${name}" is not a unique property of ${object}; HubSpot matches records only by a property with unique values (email for contacts, or one created with hasUniqueValue)`,
    };
  }
  if (value === null || value === undefined || value === '') return { reason: `match key "${name}" is empty for this record` };
  const coerced = prop === undefined ? { ok: true as const, value: String(value) } : coerce(prop, value, object);
  if (!coerced.ok) return { reason: coerced.reason };
  return { idProperty: name, idValue: coerced.value };
}

/** Sends one group of the same kind; returns results by operation index. */
async function send(w: Write, kind: Kind, items: Prepared[]): Promise<Map<number, RecordResult>> {
  const { ctx, session, object } = w;
  const out = new Map<number, RecordResult>();
  // Two records of one batch that name the same HubSpot record (or, for creates, carry the
  // same unique value) would be refused together: the later one waits and goes in a later
  // batch.
  const unique: Prepared[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const id = kind === 'delete' ? undefined : identity(w, item, kind);
    if (id !== undefined && seen.has(id)) {
      out.set(item.index, reject(`another record in the same batch names the same HubSpot record (${id}); sent again on its own`, true, 1000));
      continue;
    }
    if (id !== undefined) seen.add(id);
    unique.push(item);
  }
  const client = session.client.crm.objects.batchApi;
  switch (kind) {
    case 'upsert': {
      const reply = await session.call(ctx, `a batch upsert of ${unique.length} ${object}`, () =>
        client.upsertWithHttpInfo(object, {
          inputs: unique.map((i) => ({ idProperty: i.idProperty!, id: i.idValue!, properties: i.properties, objectWriteTraceId: String(i.index) })),
        }),
      );
      mapAnswer(reply.data as BatchData, unique, out, (i) => i.idProperty!, (i) => i.idValue!);
      break;
    }
    case 'update': {
      const reply = await session.call(ctx, `a batch update of ${unique.length} ${object}`, () =>
        client.updateWithHttpInfo(object, {
          inputs: unique.map((i) =>
            i.op.destinationId !== undefined
              ? { id: i.op.destinationId, properties: i.properties, objectWriteTraceId: String(i.index) }
              : { id: i.idValue!, idProperty: i.idProperty!, properties: i.properties, objectWriteTraceId: String(i.index) },
          ),
        }),
      );
      mapAnswer(
        reply.data as BatchData,
        unique,
        out,
        (i) => (i.op.destinationId !== undefined ? 'hs_object_id' : i.idProperty!),
        (i) => i.op.destinationId ?? i.idValue!,
        w.notFound,
      );
      break;
    }
    case 'insert': {
      const reply = await session.call(ctx, `a batch create of ${unique.length} ${object}`, () =>
        client.createWithHttpInfo(object, {
          inputs: unique.map((i) => ({ properties: i.properties, associations: [], objectWriteTraceId: String(i.index) })),
        }),
      );
      mapAnswer(reply.data as BatchData, unique, out, () => undefined, () => undefined);
      break;
    }
    case 'delete': {
      await archive(w, unique, out);
      break;
    }
  }
  return out;
}

function identity(w: Write, item: Prepared, kind: 'upsert' | 'update' | 'insert'): string | undefined {
  if (kind === 'insert') {
    const p = uniqueProperties(w.object, w.props).find((u) => (item.properties[u.name] ?? '') !== '');
    return p === undefined ? undefined : `${p.name} ${norm(p.name, item.properties[p.name]!)}`;
  }
  if (item.op.destinationId !== undefined && kind === 'update') return `id ${item.op.destinationId}`;
  if (item.idProperty === undefined) return undefined;
  return `${item.idProperty} ${norm(item.idProperty, item.idValue!)}`;
}

/**
 * Pairs HubSpot's answer with the inputs: results and errors by `objectWriteTraceId` when
 * echoed, else by the id or unique value, else (for results only) by position when every
 * input succeeded. An input HubSpot neither created nor refused is retried.
 */
function mapAnswer(
  data: BatchData,
  items: Prepared[],
  out: Map<number, RecordResult>,
  keyProperty: (i: Prepared) => string | undefined,
  keyValue: (i: Prepared) => string | undefined,
  notFound?: Set<number>,
): void {
  const byTrace = new Map(items.map((i) => [String(i.index), i]));
  const byValue = new Map<string, Prepared>();
  for (const i of items) {
    const p = keyProperty(i);
    const v = keyValue(i);
    if (p !== undefined && v !== undefined) byValue.set(`${p}\u0000${norm(p, v)}`, i);
  }
  const results = data.results ?? [];
  const unpaired: ResultLike[] = [];
  for (const r of results) {
    let item = r.objectWriteTraceId === undefined ? undefined : byTrace.get(r.objectWriteTraceId);
    item ??= byValue.get(`hs_object_id\u0000${r.id}`);
    for (const candidate of items) {
      if (item !== undefined) break;
      const p = keyProperty(candidate);
      const v = p === undefined ? undefined : r.properties?.[p];
      if (p !== undefined && typeof v === 'string' && byValue.get(`${p}\u0000${norm(p, v)}`) === candidate) item = candidate;
    }
    if (item === undefined) unpaired.push(r);
    else out.set(item.index, { ok: true, destinationId: String(r.id) });
  }
  const leftover: string[] = [];
  for (const e of data.errors ?? []) {
    const gone = e.category === 'OBJECT_NOT_FOUND';
    const reason = gone ? `record not found in HubSpot (OBJECT_NOT_FOUND): ${explain(e)}` : `HubSpot refused the record (${e.category ?? 'error'}): ${explain(e)}`;
    const retryable = retryableCategory(e.category);
    const traces = e.context?.['objectWriteTraceId'] ?? [];
    const ids = e.context?.['ids'] ?? [];
    let placed = false;
    for (const t of traces) {
      const item = byTrace.get(t);
      if (item !== undefined && !out.has(item.index)) {
        out.set(item.index, reject(reason, retryable));
        if (gone) notFound?.add(item.index);
        placed = true;
      }
    }
    for (const id of placed ? [] : ids) {
      const item = items.find((i) => {
        const p = keyProperty(i);
        return p !== undefined && norm(p, keyValue(i) ?? '') === norm(p, id);
      });
      if (item !== undefined && !out.has(item.index)) {
        out.set(item.index, reject(reason, retryable));
        if (gone) notFound?.add(item.index);
        placed = true;
      }
    }
    if (!placed) leftover.push(reason);
  }
  const missing = items.filter((i) => !out.has(i.index));
  if (unpaired.length === missing.length && leftover.length === 0) {
    missing.forEach((item, k) => out.set(item.index, { ok: true, destinationId: String(unpaired[k]!.id) }));
    return;
  }
  // Errors HubSpot did not tie to an input: when exactly the unanswered inputs are left,
  // they are the ones refused.
  if (leftover.length > 0 && missing.length === leftover.length && unpaired.length === 0) {
    missing.forEach((item, k) => out.set(item.index, reject(leftover[k]!, false)));
  }
}

/** Archives records by id; records known only by a unique value are looked up first. */
async function archive(w: Write, items: Prepared[], out: Map<number, RecordResult>): Promise<void> {
  const ids = new Map<number, string>();
  const lookups = new Map<string, Prepared[]>();
  for (const item of items) {
    if (item.op.destinationId !== undefined) ids.set(item.index, item.op.destinationId);
    else if (item.idProperty === 'hs_object_id') ids.set(item.index, item.idValue!);
    else if (item.idProperty !== undefined) {
      const list = lookups.get(item.idProperty) ?? [];
      list.push(item);
      lookups.set(item.idProperty, list);
    } else out.set(item.index, reject(`a delete from ${w.object} needs the record's HubSpot id or a unique match key; this record has neither`));
  }
  for (const [idProperty, list] of lookups) {
    const found = await read(w, idProperty, list.map((i) => i.idValue!), [], 'before deleting');
    for (const item of list) {
      const record = found.get(norm(idProperty, item.idValue!));
      // A record HubSpot no longer has is already where a delete would put it.
      if (record === undefined) out.set(item.index, { ok: true });
      else ids.set(item.index, record.id);
    }
  }
  const distinct = [...new Set(ids.values())];
  if (distinct.length > 0) {
    await w.session.call(w.ctx, `a batch archive of ${distinct.length} ${w.object}`, () =>
      w.session.client.crm.objects.batchApi.archiveWithHttpInfo(w.object, { inputs: distinct.map((id) => ({ id })) }),
    );
  }
  for (const index of ids.keys()) out.set(index, { ok: true });
}
