/**
 * The REST resources under `/services/data/vXX.X/`: versions, limits, describe (global and
 * per sObject), the single-record resources (create, get, update, delete, upsert by an
 * external id), sObject Collections (create, update, delete, upsert by an external id),
 * SOQL query with paging, and Bulk API 2.0 ingest jobs. Each handler answers a parsed
 * request or throws an {@link ApiError}; the server does auth, limits and faults around them.
 */
import { parseJson, Router } from '@outflow/core/emulator-kit';
import type { IncomingHttpHeaders } from 'node:http';
import type { BulkJobs } from './bulk.js';
import { Dml, type SaveResult } from './dml.js';
import { ApiError, jsonParserError, notFound, recordError } from './errors.js';
import { describeGlobalEntry, describeObject, fieldOf, type FieldDef, type SObjectDef } from './schema.js';
import type { QueryRunner } from './soql.js';
import type { DailyAllocation } from './limits.js';
import type { FieldValue, OrgStore } from './store.js';
import { readJsonRecord } from './validation.js';

/** The most records (or ids) one sObject Collections request takes. */
export const MAX_COLLECTION = 200;
/** API versions the emulator answers. */
export const VERSIONS = ['58.0', '59.0', '60.0', '61.0', '62.0'];

export interface RouteRequest {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Buffer;
  headers: IncomingHttpHeaders;
  /** The version of the path, without its `v`. */
  version: string;
}

export interface RouteAnswer {
  status: number;
  body?: unknown;
  /** A text answer (CSV), sent as is with `contentType`. */
  text?: string;
  contentType?: string;
}

export type RouteHandler = (req: RouteRequest) => RouteAnswer;

export interface RouteContext {
  store: OrgStore;
  queries: QueryRunner;
  jobs: BulkJobs;
  allocation: DailyAllocation;
  url: string;
}

function json(req: RouteRequest): unknown {
  const parsed = parseJson(req.body);
  if (!parsed.ok) throw jsonParserError(parsed.message);
  return parsed.value;
}

function objectOf(store: OrgStore, name: string | undefined): SObjectDef {
  const object = name === undefined ? undefined : store.object(name);
  if (object === undefined) throw new ApiError(404, 'NOT_FOUND', `The requested resource does not exist`);
  return object;
}

const ROLLED_BACK = recordError('ALL_OR_NONE_OPERATION_ROLLED_BACK', 'Record rolled back because not all records were valid and the request was using AllOrNone header');

/** The request body of a Collections create, update or upsert: `{ allOrNone, records }`, at most 200 records. */
function collection(req: RouteRequest): { allOrNone: boolean; records: Record<string, unknown>[] } {
  const body = json(req);
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { records?: unknown }).records)) {
    throw jsonParserError('The request body must be an object with a records array');
  }
  const { allOrNone, records } = body as { allOrNone?: unknown; records: unknown[] };
  if (records.length > MAX_COLLECTION) throw new ApiError(400, 'EXCEEDED_ID_LIMIT', `record limit reached. cannot submit more than ${MAX_COLLECTION} records into this call`);
  if (records.some((r) => typeof r !== 'object' || r === null || Array.isArray(r))) throw jsonParserError('Each record must be a JSON object');
  return { allOrNone: allOrNone === true, records: records as Record<string, unknown>[] };
}

/** The sObject a Collections record names in `attributes.type`. */
function typeOf(store: OrgStore, record: Record<string, unknown>): SObjectDef {
  const type = (record['attributes'] as { type?: unknown } | undefined)?.type;
  if (typeof type !== 'string') throw new ApiError(400, 'INVALID_TYPE', 'Must send a concrete entity type.');
  const object = store.object(type);
  if (object === undefined) throw new ApiError(400, 'INVALID_TYPE', `sObject type '${type}' is not supported.`);
  return object;
}

/**
 * Applies records one at a time, in order. With allOrNone, any failure rolls back the
 * request: the failed records keep their errors, the others are answered as rolled back.
 */
function applyAll(store: OrgStore, allOrNone: boolean, apply: ((index: number) => SaveResult)[]): SaveResult[] {
  const mark = store.mark();
  const results = apply.map((fn, i) => fn(i));
  if (allOrNone && results.some((r) => !r.success)) {
    store.rollback(mark);
    return results.map((r) => (r.success ? { ...(r.created === undefined ? {} : { created: r.created }), success: false, errors: [ROLLED_BACK] } : r));
  }
  return results;
}

/** A Collections result: `id` only where Salesforce gives one. */
function view(r: SaveResult): Record<string, unknown> {
  return { ...(r.id === undefined ? {} : { id: r.id }), success: r.success, errors: r.errors, ...(r.created === undefined ? {} : { created: r.created }) };
}

/** The field a request names as an upsert key: an External ID or idLookup field, or Id. */
function upsertKey(object: SObjectDef, name: string): FieldDef {
  const field = fieldOf(object, name);
  if (field === undefined) throw new ApiError(404, 'NOT_FOUND', `Provided external ID field does not exist or is not accessible: ${name}`);
  if (!field.idLookup) throw new ApiError(400, 'INVALID_FIELD', `Field name provided, ${field.name} is not an External ID or indexed field for ${object.name}`);
  return field;
}

export function createRoutes(c: RouteContext): Router<RouteHandler> {
  const { store, queries, jobs } = c;
  const rest = new Dml(store, 'rest');
  const collections = new Dml(store, 'collections');
  const router = new Router<RouteHandler>({
    notFound: (_method, path) => notFound(path).body(),
    methodNotAllowed: (method) => [{ message: `HTTP Method '${method}' not allowed. Allowed are GET,HEAD,POST,PATCH,DELETE`, errorCode: 'METHOD_NOT_ALLOWED' }],
  });
  const base = '/services/data/:version';

  router.on('GET', base, (req) => ({
    status: 200,
    body: {
      sobjects: `/services/data/v${req.version}/sobjects`,
      query: `/services/data/v${req.version}/query`,
      composite: `/services/data/v${req.version}/composite`,
      jobs: `/services/data/v${req.version}/jobs`,
      limits: `/services/data/v${req.version}/limits`,
    },
  }));
  router.on('GET', `${base}/limits`, () => ({
    status: 200,
    body: { DailyApiRequests: { Max: c.allocation.allocation, Remaining: Math.max(0, c.allocation.allocation - c.allocation.used) }, DailyBulkV2QueryJobs: { Max: 10000, Remaining: 10000 } },
  }));

  // Describe.
  router.on('GET', `${base}/sobjects`, (req) => ({
    status: 200,
    body: { encoding: 'UTF-8', maxBatchSize: MAX_COLLECTION, sobjects: store.objectsList().map((o) => describeGlobalEntry(o, req.version)) },
  }));
  router.on('GET', `${base}/sobjects/:object/describe`, (req) => ({ status: 200, body: describeObject(objectOf(store, req.params['object']), req.version) }));

  // Single records.
  router.on('POST', `${base}/sobjects/:object`, (req) => {
    const object = objectOf(store, req.params['object']);
    const values = readJsonRecord(object, json(req) as Record<string, unknown>);
    const result = rest.create(object, values);
    if (!result.success) throw recordRefusal(result);
    return { status: 201, body: { id: result.id, success: true, errors: [] } };
  });
  router.on('GET', `${base}/sobjects/:object/:id`, (req) => {
    const object = objectOf(store, req.params['object']);
    const record = store.get(object.name, req.params['id']!);
    if (record === undefined) throw notFound(req.params['id']!);
    return { status: 200, body: { attributes: { type: object.name, url: `/services/data/v${req.version}/sobjects/${object.name}/${record.Id}` }, ...record } };
  });
  router.on('PATCH', `${base}/sobjects/:object/:id`, (req) => {
    const object = objectOf(store, req.params['object']);
    const values = readJsonRecord(object, json(req) as Record<string, unknown>);
    const result = rest.update(object, req.params['id']!, values);
    if (!result.success) throw recordRefusal(result, true);
    return { status: 204 };
  });
  router.on('DELETE', `${base}/sobjects/:object/:id`, (req) => {
    const object = objectOf(store, req.params['object']);
    const result = rest.delete(object, req.params['id']!);
    if (!result.success) throw recordRefusal(result, true);
    return { status: 204 };
  });
  router.on('PATCH', `${base}/sobjects/:object/:field/:value`, (req) => {
    const object = objectOf(store, req.params['object']);
    const key = upsertKey(object, req.params['field']!);
    const body = json(req) as Record<string, unknown>;
    if (Object.keys(body).some((k) => k.toLowerCase() === 'id')) {
      throw new ApiError(400, 'INVALID_FIELD', 'Id is not a field you can set in an upsert request body; the record is found by the URL');
    }
    const values = readJsonRecord(object, body);
    const matches = store.find(object.name, key, req.params['value']!);
    if (matches.length > 1) {
      return { status: 300, body: matches.map((m) => `/services/data/v${req.version}/sobjects/${object.name}/${m.Id}`) };
    }
    const result = rest.upsert(object, key, { ...values, [key.name]: req.params['value']! });
    if (!result.success) throw recordRefusal(result);
    return { status: result.created ? 201 : 200, body: { id: result.id, success: true, errors: [], created: result.created } };
  });

  // sObject Collections.
  router.on('POST', `${base}/composite/sobjects`, (req) => {
    const { allOrNone, records } = collection(req);
    const prepared = records.map((r) => {
      const object = typeOf(store, r);
      return { object, values: readJsonRecord(object, r) };
    });
    const results = applyAll(
      store,
      allOrNone,
      prepared.map((p) => () => collections.create(p.object, p.values)),
    );
    return { status: 200, body: results.map(view) };
  });
  router.on('PATCH', `${base}/composite/sobjects`, (req) => {
    const { allOrNone, records } = collection(req);
    const seen = new Set<string>();
    const prepared = records.map((r) => {
      const object = typeOf(store, r);
      const { id, Id, ...rest } = r;
      const target = typeof id === 'string' ? id : typeof Id === 'string' ? Id : undefined;
      const duplicate = target !== undefined && seen.has(target.slice(0, 15));
      if (target !== undefined) seen.add(target.slice(0, 15));
      return { object, target, duplicate, values: readJsonRecord(object, rest) };
    });
    const results = applyAll(
      store,
      allOrNone,
      prepared.map((p) => () =>
        p.duplicate ? { id: p.target, success: false, errors: [recordError('DUPLICATE_VALUE', `Duplicate id in list: ${p.target}`, [])] } : collections.update(p.object, p.target, p.values),
      ),
    );
    return { status: 200, body: results.map(view) };
  });
  router.on('DELETE', `${base}/composite/sobjects`, (req) => {
    const ids = (req.query.get('ids') ?? '').split(',').filter((s) => s !== '');
    if (ids.length === 0) throw new ApiError(400, 'MISSING_ARGUMENT', 'ids parameter is required');
    if (ids.length > MAX_COLLECTION) throw new ApiError(400, 'EXCEEDED_ID_LIMIT', `record limit reached. cannot submit more than ${MAX_COLLECTION} records into this call`);
    const allOrNone = req.query.get('allOrNone') === 'true';
    const results = applyAll(
      store,
      allOrNone,
      ids.map((id) => () => collections.delete(undefined, id)),
    );
    return { status: 200, body: results.map((r, i) => ({ ...view(r), id: r.id ?? ids[i] })) };
  });
  router.on('PATCH', `${base}/composite/sobjects/:object/:field`, (req) => {
    const object = objectOf(store, req.params['object']);
    const key = upsertKey(object, req.params['field']!);
    const { allOrNone, records } = collection(req);
    const prepared = records.map((r) => {
      const type = typeOf(store, r);
      if (type.name !== object.name) throw new ApiError(400, 'INVALID_TYPE', `The records must all be of type ${object.name}; one is ${type.name}`);
      return readJsonRecord(object, r);
    });
    // The same key value twice in one request: Salesforce refuses each of them.
    const counts = new Map<string, number>();
    for (const v of prepared) {
      const k = v[key.name];
      if (k !== undefined && k !== null) counts.set(String(k).toLowerCase(), (counts.get(String(k).toLowerCase()) ?? 0) + 1);
    }
    const results = applyAll(
      store,
      allOrNone,
      prepared.map((values) => () => {
        const k = values[key.name] as FieldValue | undefined;
        if (k !== undefined && k !== null && (counts.get(String(k).toLowerCase()) ?? 0) > 1) {
          return { success: false, errors: [recordError('DUPLICATE_VALUE', `Duplicate external id specified: ${String(k)}`, [key.name])], created: false };
        }
        return collections.upsert(object, key, values);
      }),
    );
    return { status: 200, body: results.map(view) };
  });

  // SOQL.
  router.on('GET', `${base}/query`, (req) => {
    const q = req.query.get('q');
    if (q === null || q.trim() === '') throw new ApiError(400, 'MALFORMED_QUERY', 'A query string has to be specified');
    const options = req.headers['sforce-query-options'];
    return { status: 200, body: queries.run(q, req.version, Array.isArray(options) ? options[0] : options) };
  });
  router.on('GET', `${base}/query/:locator`, (req) => ({ status: 200, body: queries.more(req.params['locator']!, req.version) }));

  // Bulk API 2.0 ingest.
  router.on('POST', `${base}/jobs/ingest`, (req) => ({ status: 200, body: jobs.create(json(req), req.version) }));
  router.on('GET', `${base}/jobs/ingest/:id`, (req) => ({ status: 200, body: jobs.get(req.params['id']!, req.version) }));
  router.on('PATCH', `${base}/jobs/ingest/:id`, (req) => ({ status: 200, body: jobs.patch(req.params['id']!, json(req), req.version) }));
  router.on('DELETE', `${base}/jobs/ingest/:id`, (req) => {
    jobs.remove(req.params['id']!);
    return { status: 204 };
  });
  router.on('PUT', `${base}/jobs/ingest/:id/batches`, (req) => {
    jobs.upload(req.params['id']!, req.headers['content-type'], req.body.toString('utf8'));
    return { status: 201 };
  });
  const results = (kind: 'successful' | 'failed' | 'unprocessed'): RouteHandler => (req) => ({
    status: 200,
    text: jobs.results(req.params['id']!, kind),
    contentType: 'text/csv',
  });
  router.on('GET', `${base}/jobs/ingest/:id/successfulResults`, results('successful'));
  router.on('GET', `${base}/jobs/ingest/:id/failedResults`, results('failed'));
  router.on('GET', `${base}/jobs/ingest/:id/unprocessedrecords`, results('unprocessed'));
  return router;
}

/** A single-record request refused for its record: 400 with the record's errors (404 when it is gone). */
function recordRefusal(result: SaveResult, byId = false): ApiError {
  const first = result.errors[0]!;
  const gone = byId && (first.statusCode === 'ENTITY_IS_DELETED' || first.statusCode === 'INVALID_CROSS_REFERENCE_KEY');
  return new ApiError(gone ? 404 : 400, first.statusCode, first.message, first.fields);
}
