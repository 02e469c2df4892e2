/**
 * The endpoints: CRM v3 objects (one at a time, in batches, and search), the properties API
 * and custom object schemas. Each handler answers a parsed request with a status and a body,
 * or throws an {@link HttpError}; the server does auth, limits and faults around them.
 */
import { Router } from '@outflow/core/emulator-kit';
import { batch, type BatchCounters } from './batch.js';
import { errorBody, HttpError } from './errors.js';
import { defineProperty } from './properties.js';
import { search } from './search.js';
import { singularOf, view, viewWith, type CrmStore, type ObjectStore } from './store.js';
import { checkProperties, isObject, propertySpec, validationFailure } from './validation.js';

export interface RouteRequest {
  /** The path parameters, decoded. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body; undefined when there is none. */
  body: unknown;
}

export interface Answer {
  status: number;
  /** Undefined for an answer without a body (204). */
  body: unknown;
}

export type RouteHandler = (req: RouteRequest) => Answer;

const LIST_MAX_LIMIT = 100;

/** `?properties=a,b&properties=c` as a list. */
function wantedOf(q: URLSearchParams): string[] {
  return q.getAll('properties').flatMap((p) => p.split(',')).filter((p) => p !== '');
}

/** The object type a path names, or HubSpot's 400 when there is none. */
export function objectOf(store: CrmStore, objectType: string): ObjectStore {
  const object = store.object(objectType);
  if (object === undefined) throw new HttpError(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${objectType}`);
  return object;
}

function schemaOf(s: ObjectStore): Record<string, unknown> {
  return {
    id: s.objectTypeId.split('-')[1],
    objectTypeId: s.objectTypeId,
    name: s.name,
    fullyQualifiedName: `p_${s.name}`,
    labels: { singular: s.name, plural: s.name },
    primaryDisplayProperty: s.primaryDisplayProperty,
    requiredProperties: [],
    searchableProperties: [],
    secondaryDisplayProperties: [],
    associations: [],
    properties: [...s.props.values()],
    archived: false,
  };
}

/** Every endpoint the emulator serves, on `store`; `baseUrl` goes into paging links. */
export function createRoutes(store: CrmStore, counters: BatchCounters, baseUrl: string): Router<RouteHandler> {
  const objects = '/crm/v3/objects/:objectType';
  const properties = '/crm/v3/properties/:objectType';
  const schemas = '/crm-object-schemas/v3/schemas';
  const router = new Router<RouteHandler>({
    notFound: (method, path) => errorBody('OBJECT_NOT_FOUND', `No endpoint ${method} ${path} in this emulator.`),
    methodNotAllowed: (method, path, allowed) =>
      errorBody('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; this endpoint takes ${allowed.join(', ')}.`),
  });

  router.on('POST', `${objects}/batch/:action`, ({ params, body }) => batch(store, objectOf(store, params['objectType']!), params['action']!, body, counters));
  router.on('POST', `${objects}/search`, ({ params, body }) => search(objectOf(store, params['objectType']!), body));

  router.on('GET', objects, ({ params, query }) => {
    const object = objectOf(store, params['objectType']!);
    const limit = Number(query.get('limit') ?? 10);
    if (!Number.isInteger(limit) || limit < 1 || limit > LIST_MAX_LIMIT) {
      throw new HttpError(400, 'VALIDATION_ERROR', `limit must be between 1 and ${LIST_MAX_LIMIT}`);
    }
    const after = Number(query.get('after') ?? 0);
    const wanted = wantedOf(query);
    const page: Record<string, unknown>[] = [];
    let next: string | undefined;
    for (const r of object.records.all()) {
      if (Number(r.id) <= after) continue;
      if (page.length === limit) {
        next = String(page[page.length - 1]!['id']);
        break;
      }
      page.push(viewWith(r, wanted));
    }
    const out: Record<string, unknown> = { results: page };
    if (next !== undefined) out['paging'] = { next: { after: next, link: `${baseUrl}/crm/v3/objects/${object.name}?after=${next}` } };
    return { status: 200, body: out };
  });

  router.on('POST', objects, ({ params, body }) => {
    const object = objectOf(store, params['objectType']!);
    const checked = checkProperties(object, isObject(body) ? body['properties'] : undefined);
    if ('problems' in checked) throw validationFailure(checked.problems);
    const clash = store.uniqueClash(object, checked.values);
    if (clash !== undefined) throw new HttpError(409, 'CONFLICT', `${singularOf(object)} already exists. Existing ID: ${clash.id}`);
    return { status: 201, body: view(store.insert(object, checked.values)) };
  });

  router.on('GET', `${objects}/:objectId`, ({ params, query }) => {
    const object = objectOf(store, params['objectType']!);
    const r = store.lookup(object, params['objectId']!, query.get('idProperty') ?? undefined);
    if (r === undefined) throw new HttpError(404, 'OBJECT_NOT_FOUND', `Object not found.  objectId are usually numeric.`);
    return { status: 200, body: viewWith(r, wantedOf(query)) };
  });

  router.on('PATCH', `${objects}/:objectId`, ({ params, query, body }) => {
    const object = objectOf(store, params['objectType']!);
    const existing = store.lookup(object, params['objectId']!, query.get('idProperty') ?? undefined);
    if (existing === undefined) throw new HttpError(404, 'OBJECT_NOT_FOUND', 'Object not found.');
    const checked = checkProperties(object, isObject(body) ? body['properties'] : undefined);
    if ('problems' in checked) throw validationFailure(checked.problems);
    const clash = store.uniqueClash(object, checked.values, existing.id);
    if (clash !== undefined) throw new HttpError(409, 'CONFLICT', `${singularOf(object)} already exists. Existing ID: ${clash.id}`);
    return { status: 200, body: view(store.patch(object, existing, checked.values)) };
  });

  router.on('DELETE', `${objects}/:objectId`, ({ params }) => {
    store.remove(objectOf(store, params['objectType']!), params['objectId']!);
    return { status: 204, body: undefined };
  });

  router.on('GET', properties, ({ params }) => ({ status: 200, body: { results: [...objectOf(store, params['objectType']!).props.values()] } }));

  router.on('POST', properties, ({ params, body }) => {
    const object = objectOf(store, params['objectType']!);
    const spec = propertySpec(body, 'the property');
    if (object.props.has(spec.name)) throw new HttpError(409, 'OBJECT_ALREADY_EXISTS', `A property named '${spec.name}' already exists.`);
    if (isObject(body) && typeof body['groupName'] !== 'string') throw new HttpError(400, 'VALIDATION_ERROR', 'the property needs a groupName');
    const def = defineProperty(spec, new Date().toISOString());
    store.addProperty(object, def);
    return { status: 201, body: def };
  });

  router.on('GET', `${properties}/:propertyName`, ({ params }) => {
    const object = objectOf(store, params['objectType']!);
    const def = object.props.get(params['propertyName']!);
    if (def === undefined) throw new HttpError(404, 'OBJECT_NOT_FOUND', `Unable to find property ${params['propertyName']} on object type ${object.name}`);
    return { status: 200, body: def };
  });

  router.on('GET', schemas, () => ({ status: 200, body: { results: store.customObjects().map(schemaOf) } }));

  router.on('POST', schemas, ({ body }) => {
    if (!isObject(body) || typeof body['name'] !== 'string' || !/^[a-z][a-z0-9_]*$/i.test(body['name'])) {
      throw new HttpError(400, 'VALIDATION_ERROR', 'A schema needs a "name" of letters, digits and underscores.');
    }
    if (store.has(body['name'])) throw new HttpError(409, 'OBJECT_ALREADY_EXISTS', `An object type named ${body['name']} already exists.`);
    const props = Array.isArray(body['properties']) ? body['properties'] : [];
    const specs = props.map((p: unknown, i) => propertySpec(p, `properties[${i}]`));
    const primary = typeof body['primaryDisplayProperty'] === 'string' ? body['primaryDisplayProperty'] : undefined;
    return { status: 201, body: schemaOf(store.createSchema(body['name'], specs, primary)) };
  });

  return router;
}
