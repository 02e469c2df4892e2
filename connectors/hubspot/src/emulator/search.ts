/**
 * `POST /crm/v3/objects/{objectType}/search`: filter groups (OR of ANDs) with HubSpot's
 * operators and limits (5 groups, 6 filters a group, 18 in all, 200 results a page), paged
 * by an offset cursor.
 */
import { HttpError } from './errors.js';
import type { Answer } from './routes.js';
import { normalise, viewWith, type ObjectStore, type StoredRecord } from './store.js';
import { isObject } from './validation.js';

const SEARCH_MAX_LIMIT = 200;

/** Numbers compare as numbers, anything else as text. */
function compare(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  return Number.isNaN(na) || Number.isNaN(nb) ? a.localeCompare(b) : na - nb;
}

function matches(r: StoredRecord, f: Record<string, unknown>): boolean {
  const name = String(f['propertyName'] ?? '');
  const v = r.properties[name];
  const value = f['value'] === undefined ? undefined : String(f['value']);
  const values = Array.isArray(f['values']) ? (f['values'] as unknown[]).map(String) : [];
  switch (f['operator']) {
    case 'EQ':
      return v !== undefined && value !== undefined && normalise(name, v) === normalise(name, value);
    case 'NEQ':
      return v === undefined || value === undefined || normalise(name, v) !== normalise(name, value);
    case 'IN':
      return v !== undefined && values.includes(v);
    case 'NOT_IN':
      return v === undefined || !values.includes(v);
    case 'HAS_PROPERTY':
      return v !== undefined;
    case 'NOT_HAS_PROPERTY':
      return v === undefined;
    case 'GT':
      return v !== undefined && value !== undefined && compare(v, value) > 0;
    case 'GTE':
      return v !== undefined && value !== undefined && compare(v, value) >= 0;
    case 'LT':
      return v !== undefined && value !== undefined && compare(v, value) < 0;
    case 'LTE':
      return v !== undefined && value !== undefined && compare(v, value) <= 0;
    case 'CONTAINS_TOKEN':
      return v !== undefined && value !== undefined && v.toLowerCase().includes(value.replace(/\*/g, '').toLowerCase());
    default:
      throw new HttpError(400, 'VALIDATION_ERROR', `Unsupported filter operator ${JSON.stringify(f['operator'])}`);
  }
}

export function search(object: ObjectStore, body: unknown): Answer {
  const req = isObject(body) ? body : {};
  const limit = req['limit'] === undefined ? 10 : Number(req['limit']);
  if (!Number.isInteger(limit) || limit < 0 || limit > SEARCH_MAX_LIMIT) {
    throw new HttpError(400, 'VALIDATION_ERROR', `limit must be between 0 and ${SEARCH_MAX_LIMIT}`);
  }
  const groups = Array.isArray(req['filterGroups']) ? (req['filterGroups'] as unknown[]) : [];
  if (groups.length > 5) throw new HttpError(400, 'VALIDATION_ERROR', 'A search may have at most 5 filterGroups.');
  const filters = groups.map((g) => (isObject(g) && Array.isArray(g['filters']) ? (g['filters'] as unknown[]).filter(isObject) : []));
  if (filters.some((f) => f.length > 6) || filters.flat().length > 18) {
    throw new HttpError(400, 'VALIDATION_ERROR', 'A search may have at most 6 filters in a group and 18 in all.');
  }
  const all = [...object.records.values()].filter((r) => filters.length === 0 || filters.some((group) => group.every((f) => matches(r, f))));
  const after = Number(req['after'] ?? 0);
  const page = all.slice(after, after + limit);
  const wanted = Array.isArray(req['properties']) ? (req['properties'] as unknown[]).map(String) : [];
  const out: Record<string, unknown> = { total: all.length, results: page.map((r) => viewWith(r, wanted)) };
  if (after + limit < all.length) out['paging'] = { next: { after: String(after + limit) } };
  return { status: 200, body: out };
}
