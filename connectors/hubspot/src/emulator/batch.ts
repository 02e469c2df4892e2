/**
 * The batch endpoints (`/crm/v3/objects/{objectType}/batch/{action}`): create, read, update,
 * upsert and archive up to 100 inputs at once. Inputs are applied one by one; a refused
 * input gets its own error, tied to it by `objectWriteTraceId` and `ids`, and the answer is
 * 207 when any input was refused.
 */
import { batchError, HttpError, type StandardError } from './errors.js';
import type { Answer } from './routes.js';
import { view, viewWith, type CrmStore, type ObjectStore } from './store.js';
import { checkProperties, checkValue, isObject, validationError } from './validation.js';

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
  return inputs;
}

function idOf(input: unknown): string | undefined {
  return isObject(input) && (typeof input['id'] === 'string' || typeof input['id'] === 'number') ? String(input['id']) : undefined;
}

function notFound(object: ObjectStore, ids: Record<string, string[]>): StandardError {
  return batchError('OBJECT_NOT_FOUND', `Could not get some ${object.name} objects, they may be deleted or not exist. Check that ids are valid.`, ids);
}

/** Runs one batch action on `object`. */
export function batch(store: CrmStore, object: ObjectStore, action: string, body: unknown, counters: BatchCounters): Answer {
  const inputs = inputsOf(body);
  const startedAt = new Date().toISOString();
  const results: Record<string, unknown>[] = [];
  const errors: StandardError[] = [];
  switch (action) {
    case 'create':
    case 'update':
    case 'upsert':
      counters.requests++;
      counters.inputs += inputs.length;
      write(store, object, action, inputs, results, errors);
      break;
    case 'read': {
      const idProperty = isObject(body) && typeof body['idProperty'] === 'string' ? body['idProperty'] : undefined;
      if (idProperty !== undefined && idProperty !== 'hs_object_id' && !object.unique.has(idProperty)) {
        throw new HttpError(400, 'VALIDATION_ERROR', `Property "${idProperty}" is not a unique property and cannot be used as idProperty.`);
      }
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
    case 'archive':
      counters.requests++;
      counters.inputs += inputs.length;
      for (const item of inputs) {
        const id = idOf(item);
        if (id !== undefined) store.remove(object, id);
      }
      return { status: 204, body: undefined };
    default:
      throw new HttpError(404, 'OBJECT_NOT_FOUND', `No batch action "${action}".`);
  }
  const out: Record<string, unknown> = { status: 'COMPLETE', results, startedAt, completedAt: new Date().toISOString() };
  if (errors.length > 0) return { status: 207, body: { ...out, numErrors: errors.length, errors } };
  return { status: action === 'create' ? 201 : 200, body: out };
}

/** Create, update and upsert: each input checked and applied on its own. */
function write(
  store: CrmStore,
  object: ObjectStore,
  action: 'create' | 'update' | 'upsert',
  inputs: unknown[],
  results: Record<string, unknown>[],
  errors: StandardError[],
): void {
  const singular = object.custom ? 'Object' : object.name.replace(/ies$/, 'y').replace(/s$/, '').replace(/^\w/, (c) => c.toUpperCase());
  const seen = new Set<string>();
  for (const item of inputs) {
    if (!isObject(item)) {
      errors.push(batchError('VALIDATION_ERROR', 'Each input must be an object.', {}));
      continue;
    }
    const traceId = typeof item['objectWriteTraceId'] === 'string' ? item['objectWriteTraceId'] : undefined;
    const ctx: Record<string, string[]> = traceId === undefined ? {} : { objectWriteTraceId: [traceId] };
    const trace: Record<string, unknown> = traceId === undefined ? {} : { objectWriteTraceId: traceId };
    const checked = checkProperties(object, item['properties']);
    if (action === 'create') {
      if ('problems' in checked) {
        errors.push(validationError(checked.problems, ctx));
        continue;
      }
      const clash = store.uniqueClash(object, checked.values);
      if (clash !== undefined) {
        errors.push(batchError('CONFLICT', `${singular} already exists. Existing ID: ${clash.id}`, ctx, 'CONFLICT'));
        continue;
      }
      results.push(view(store.insert(object, checked.values), trace));
      continue;
    }
    const id = idOf(item);
    const idProperty = typeof item['idProperty'] === 'string' ? item['idProperty'] : undefined;
    if (id === undefined || id === '') {
      errors.push(batchError('VALIDATION_ERROR', 'Each input needs an "id".', ctx));
      continue;
    }
    const idCtx = { ids: [id], ...ctx };
    const slot = `${idProperty ?? ''}:${id}`;
    if (seen.has(slot)) {
      errors.push(batchError('VALIDATION_ERROR', `Duplicate IDs found in batch input: [${slot}]. IDs must be unique`, { ids: [slot], ...ctx }, 'DUPLICATE_ID'));
      continue;
    }
    seen.add(slot);
    if (action === 'upsert' && idProperty === undefined) {
      errors.push(batchError('VALIDATION_ERROR', 'Upsert inputs need an "idProperty" naming a unique property.', idCtx));
      continue;
    }
    if (idProperty !== undefined && idProperty !== 'hs_object_id' && !object.unique.has(idProperty)) {
      const message = object.props.has(idProperty)
        ? `Property "${idProperty}" is not a unique property and cannot be used as idProperty.`
        : `Property "${idProperty}" does not exist`;
      errors.push(batchError('VALIDATION_ERROR', message, idCtx));
      continue;
    }
    if ('problems' in checked) {
      errors.push(validationError(checked.problems, idCtx));
      continue;
    }
    const existing = store.lookup(object, id, idProperty);
    if (existing === undefined && action === 'update') {
      errors.push(notFound(object, idCtx));
      continue;
    }
    const values = { ...checked.values };
    if (action === 'upsert' && idProperty !== 'hs_object_id') {
      const idValue = checkValue(object.name, object.props.get(idProperty!)!, id);
      if ('problem' in idValue) {
        errors.push(validationError([idValue.problem], idCtx));
        continue;
      }
      values[idProperty!] = idValue.value;
    }
    const clash = store.uniqueClash(object, values, existing?.id);
    if (clash !== undefined) {
      const message = `A ${singular.toLowerCase()} with ${clash.property} "${values[clash.property]}" already exists. Existing ID: ${clash.id}`;
      errors.push(batchError('CONFLICT', message, idCtx, 'CONFLICT'));
      continue;
    }
    if (existing === undefined) {
      if (idProperty === 'hs_object_id') {
        errors.push(batchError('OBJECT_NOT_FOUND', `No ${object.name} object with hs_object_id ${id}.`, idCtx));
        continue;
      }
      results.push(view(store.insert(object, values), { ...trace, new: true }));
    } else {
      const updated = store.patch(object, existing, values);
      results.push(view(updated, action === 'upsert' ? { ...trace, new: false } : trace));
    }
  }
}
