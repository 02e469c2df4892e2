/**
 * `POST /crm/v3/objects/{objectType}/search`: filter groups (OR of ANDs) with HubSpot's
 * operators and limits (5 groups, 6 filters a group, 18 in all, 200 results a page), paged
 * by an offset cursor.
 */
import { cursorPage, matchesFilter, offsetCursor, type FilterOperator } from '@outflow/core/emulator-kit';
import { HttpError } from './errors.js';
import type { Answer } from './routes.js';
import { normalise, viewWith, type ObjectStore, type StoredRecord } from './store.js';
import { isObject } from './validation.js';

const SEARCH_MAX_LIMIT = 200;

/** HubSpot's operators, by the kit's names. */
const OPERATORS: Record<string, FilterOperator> = {
  EQ: 'eq',
  NEQ: 'neq',
  IN: 'in',
  NOT_IN: 'nin',
  HAS_PROPERTY: 'has',
  NOT_HAS_PROPERTY: 'not_has',
  GT: 'gt',
  GTE: 'gte',
  LT: 'lt',
  LTE: 'lte',
  CONTAINS_TOKEN: 'contains',
};

/**
 * EQ and NEQ compare unique values as HubSpot stores them (emails without regard to case);
 * CONTAINS_TOKEN ignores case and `*` wildcards; numbers compare as numbers, anything else as text.
 */
function matches(r: StoredRecord, f: Record<string, unknown>): boolean {
  const op = OPERATORS[String(f['operator'])];
  if (op === undefined) throw new HttpError(400, 'VALIDATION_ERROR', `Unsupported filter operator ${JSON.stringify(f['operator'])}`);
  const name = String(f['propertyName'] ?? '');
  const v = r.properties[name];
  const value = f['value'] === undefined ? undefined : String(f['value']);
  if (op === 'in' || op === 'nin') return matchesFilter(op, v, Array.isArray(f['values']) ? (f['values'] as unknown[]).map(String) : []);
  if (op === 'contains') return matchesFilter(op, v?.toLowerCase(), value?.replace(/\*/g, '').toLowerCase());
  const fold = (x: string | undefined) => (x === undefined || (op !== 'eq' && op !== 'neq') ? x : normalise(name, x));
  return matchesFilter(op, fold(v), fold(value));
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
  const all = object.records.all().filter((r) => filters.length === 0 || filters.some((group) => group.every((f) => matches(r, f))));
  // `after` is the offset of the page, in digits; one that is not answers an empty page.
  const page = cursorPage(all, req['after'], limit, offsetCursor) ?? { items: [], offset: 0 };
  const wanted = Array.isArray(req['properties']) ? (req['properties'] as unknown[]).map(String) : [];
  const out: Record<string, unknown> = { total: all.length, results: page.items.map((r) => viewWith(r, wanted)) };
  if (page.next !== undefined) out['paging'] = { next: { after: page.next } };
  return { status: 200, body: out };
}
