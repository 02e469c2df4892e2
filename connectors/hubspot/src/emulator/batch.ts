/**
 * The batch endpoints (`/crm/v3/objects/{objectType}/batch/{action}`): create, read, update,
 * upsert and archive up to 100 inputs at once.
 *
 * What HubSpot refuses as a whole, applying nothing:
 * - invalid property values in any input: 400 VALIDATION_ERROR, "Property values were not
 *   valid: […]", one `errors[]` detail per value with its code and `context.propertyName`,
 *   nothing naming the input (observed on batch create and batch update, recorded in
 *   amp-labs/connectors providers/hubspot/test/batch/{create,update}/contacts/
 *   err-many-invalid-properties.json; batch upsert is treated the same);
 * - the same id twice in a batch update or upsert: 400 VALIDATION_ERROR "Duplicate IDs
 *   found in batch input: [id]. IDs must be unique" with `context.ids` (amp-labs/connectors
 *   …/batch/update/contacts/err-duplicate-ids.json);
 * - an `idProperty` that is not a unique property: a 400 (HubSpot/hubspot-api-nodejs#548:
 *   "Unable to perform update/upsert by non-unique 0-1 property");
 * - a batch create whose input carries a unique value another record holds: 409 CONFLICT
 *   "Contact already exists. Existing ID: <id>" naming the first such input's record only
 *   (HubSpot/hubspot-api-python#51), with `status`, `message`, `correlationId`, `category`
 *   and nothing else (HubSpot/hubspot-api-nodejs#545); two inputs with the same unique value
 *   are refused with a 409 too (Joystream/youtube-synch#355), "Contact already exists" when
 *   no record holds it yet (amp-labs/connectors …/batch/create/contacts/err-conflict.json).
 *
 * What is answered per input, the rest being applied (207): a record an update names that
 * does not exist, and a unique value another record holds on update or upsert. Each error
 * is tied to its input by `objectWriteTraceId` and `context.ids`.
 */
import { batchError, HttpError, type StandardError } from './errors.js';
import type { Answer } from './routes.js';
import { normalise, singularOf, view, viewWith, type CrmStore, type ObjectStore, type StoredRecord } from './store.js';
import { checkProperties, checkValue, isObject, validationFailure, type PropertyProblem } from './validation.js';

/** The most inputs one batch request may carry. */
export const MAX_BATCH_INPUTS = 100;

/** Batch write requests (create, update, upsert, archive) accepted, and their inputs. */
export interface BatchCounters {
  requests: number;
  inputs: number;
}

function inputsOf(body: unknown): unknown[] {
  if (!isObject(body) || !Array.isArray(body['inputs'])) throw new HttpError(400, 'VALIDATION_ERROR', 'Invalid input JSON: "inputs" must be an array.');
  const inputs = body['inputs'];
  if (inputs.length > MAX_BATCH_INPUTS) {
    throw new HttpError(400, 'VALIDATION_ERROR', `Too many inputs: the limit is ${MAX_BATCH_INPUTS} inputs per batch, this request has ${inputs.length}.`);
  }
  for (const input of inputs) {
    if (!isObject(input)) throw new HttpError(400, 'VALIDATION_ERROR', 'Invalid input JSON: each input must be an object.');
  }
  return inputs;
}

function idOf(input: Record<string, unknown>): string | undefined {
  return typeof input['id'] === 'string' || typeof input['id'] === 'number' ? String(input['id']) : undefined;
}

function notFound(object: ObjectStore, context: Record<string, string[]>): StandardError {
  const type = object.custom ? object.objectTypeId : singularOf(object).toUpperCase();
  return batchError('OBJECT_NOT_FOUND', `Could not get some ${type} objects, they may be deleted or not exist. Check that ids are valid.`, context);
}

/** Runs one batch action on `object`. */
export function batch(store: CrmStore, object: ObjectStore, action: string, body: unknown, counters: BatchCounters): Answer {
  const startedAt = new Date().toISOString();
  const results: Record<string, unknown>[] = [];
  const errors: StandardError[] = [];
  switch (action) {
    case 'create': {
      const inputs = inputsOf(body);
      counters.requests++;
      counters.inputs += inputs.length;
      for (const r of create(store, object, inputs as Record<string, unknown>[])) results.push(r);
      break;
    }
    case 'update':
    case 'upsert': {
      const inputs = inputsOf(body);
      counters.requests++;
      counters.inputs += inputs.length;
      write(store, object, action, inputs as Record<string, unknown>[], results, errors);
      break;
    }
    case 'read': {
      const inputs = inputsOf(body) as Record<string, unknown>[];
      const idProperty = isObject(body) && typeof body['idProperty'] === 'string' ? body['idProperty'] : undefined;
      if (idProperty !== undefined) checkIdProperty(object, idProperty);
      const wanted = isObject(body) && Array.isArray(body['properties']) ? (body['properties'] as unknown[]).map(String) : [];
      const missing: string[] = [];
      for (const item of inputs) {
        const id = idOf(item) ?? '';
        const r = store.lookup(object, id, idProperty);
        if (r === undefined) missing.push(id);
        else results.push(viewWith(r, wanted));
      }
      if (missing.length > 0) errors.push(notFound(object, { ids: missing }));
      break;
    }
    case 'archive': {
      const inputs = inputsOf(body) as Record<string, unknown>[];
      counters.requests++;
      counters.inputs += inputs.length;
      for (const item of inputs) {
        const id = idOf(item);
        if (id !== undefined) store.remove(object, id);
      }
      return { status: 204, body: undefined };
    }
    default:
      throw new HttpError(404, 'OBJECT_NOT_FOUND', `No batch action "${action}".`);
  }
  const out: Record<string, unknown> = { status: 'COMPLETE', results, startedAt, completedAt: new Date().toISOString() };
  if (errors.length > 0) return { status: 207, body: { ...out, numErrors: errors.length, errors } };
  return { status: action === 'create' ? 201 : 200, body: out };
}

/** HubSpot's refusal of an `idProperty` that cannot address records. */
function checkIdProperty(object: ObjectStore, idProperty: string): void {
  if (idProperty === 'hs_object_id' || object.records.hasIndex(idProperty)) return;
  if (!object.props.has(idProperty)) throw new HttpError(400, 'VALIDATION_ERROR', `Property "${idProperty}" does not exist`);
  throw new HttpError(400, 'VALIDATION_ERROR', `Unable to perform update/upsert by non-unique ${object.objectTypeId} property`);
}

function traceOf(item: Record<string, unknown>): string | undefined {
  return typeof item['objectWriteTraceId'] === 'string' ? item['objectWriteTraceId'] : undefined;
}

/** All inputs are checked first; any refusal refuses the batch, else every input is created. */
function create(store: CrmStore, object: ObjectStore, inputs: Record<string, unknown>[]): Record<string, unknown>[] {
  const problems: PropertyProblem[] = [];
  const values: Record<string, string>[] = [];
  for (const item of inputs) {
    const checked = checkProperties(object, item['properties']);
    if ('problems' in checked) problems.push(...checked.problems);
    else values.push(checked.values);
  }
  if (problems.length > 0) throw validationFailure(problems);

  const singular = singularOf(object);
  const inBatch = new Set<string>();
  for (const v of values) {
    const clash = store.uniqueClash(object, v);
    if (clash !== undefined) throw new HttpError(409, 'CONFLICT', `${singular} already exists. Existing ID: ${clash.id}`);
    for (const property of object.records.indexNames()) {
      const value = v[property];
      if (value === undefined || value === '') continue;
      const slot = `${property}\u0000${normalise(property, value)}`;
      if (inBatch.has(slot)) throw new HttpError(409, 'CONFLICT', `${singular} already exists`);
      inBatch.add(slot);
    }
  }
  return values.map((v, i) => {
    const trace = traceOf(inputs[i]!);
    return view(store.insert(object, v), trace === undefined ? {} : { objectWriteTraceId: trace });
  });
}

interface Addressed {
  item: Record<string, unknown>;
  id: string;
  idProperty: string | undefined;
  values: Record<string, string>;
}

/**
 * Update and upsert: the batch is refused as a whole for duplicate ids, an `idProperty`
 * that is not unique, or any invalid value; then each input is applied on its own, and a
 * missing record (update) or a unique value another record holds gets its own error.
 */
function write(
  store: CrmStore,
  object: ObjectStore,
  action: 'update' | 'upsert',
  inputs: Record<string, unknown>[],
  results: Record<string, unknown>[],
  errors: StandardError[],
): void {
  const addressed: Addressed[] = [];
  const problems: PropertyProblem[] = [];
  const seen = new Set<string>();
  const duplicates: string[] = [];
  for (const item of inputs) {
    const trace = traceOf(item);
    const context: Record<string, string[]> = trace === undefined ? {} : { objectWriteTraceId: [trace] };
    const id = idOf(item);
    const idProperty = typeof item['idProperty'] === 'string' ? item['idProperty'] : undefined;
    if (id === undefined || id === '') {
      errors.push(batchError('VALIDATION_ERROR', 'Each input needs an "id".', context));
      continue;
    }
    if (action === 'upsert' && idProperty === undefined) {
      errors.push(batchError('VALIDATION_ERROR', 'Upsert inputs need an "idProperty" naming a unique property.', { ids: [id], ...context }));
      continue;
    }
    if (idProperty !== undefined) checkIdProperty(object, idProperty);
    const slot = `${idProperty ?? 'hs_object_id'}\u0000${normalise(idProperty ?? '', id)}`;
    if (seen.has(slot)) duplicates.push(id);
    seen.add(slot);
    const checked = checkProperties(object, item['properties']);
    if ('problems' in checked) {
      problems.push(...checked.problems);
      continue;
    }
    const values = { ...checked.values };
    if (action === 'upsert' && idProperty !== 'hs_object_id') {
      const idValue = checkValue(object.name, object.props.get(idProperty!)!, id);
      if ('problem' in idValue) {
        problems.push(idValue.problem);
        continue;
      }
      values[idProperty!] = idValue.value;
    }
    addressed.push({ item, id, idProperty, values });
  }
  if (duplicates.length > 0) {
    throw new HttpError(400, 'VALIDATION_ERROR', `Duplicate IDs found in batch input: [${duplicates.join(', ')}]. IDs must be unique`, {
      context: { ids: duplicates },
    });
  }
  if (problems.length > 0) throw validationFailure(problems);

  const singular = singularOf(object).toLowerCase();
  for (const { item, id, idProperty, values } of addressed) {
    const trace = traceOf(item);
    const context: Record<string, string[]> = { ids: [id], ...(trace === undefined ? {} : { objectWriteTraceId: [trace] }) };
    const echo: Record<string, unknown> = trace === undefined ? {} : { objectWriteTraceId: trace };
    const existing: StoredRecord | undefined = store.lookup(object, id, idProperty);
    if (existing === undefined && (action === 'update' || idProperty === 'hs_object_id')) {
      errors.push(notFound(object, context));
      continue;
    }
    const clash = store.uniqueClash(object, values, existing?.id);
    if (clash !== undefined) {
      const message = `A ${singular} with ${clash.property} "${values[clash.property]}" already exists. Existing ID: ${clash.id}`;
      errors.push(batchError('CONFLICT', message, context, 'CONFLICT'));
      continue;
    }
    if (existing === undefined) {
      results.push(view(store.insert(object, values), { ...echo, new: true }));
    } else {
      const updated = store.patch(object, existing, values);
      results.push(view(updated, action === 'upsert' ? { ...echo, new: false } : echo));
    }
  }
}
