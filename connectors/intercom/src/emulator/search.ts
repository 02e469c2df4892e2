/**
 * POST /contacts/search as Intercom documents it: a query of `{ field, operator, value }`
 * filters combined with AND / OR (at most two levels of nesting, at most 15 filters in a
 * group), operators checked against the field's type, timestamps compared by day, and
 * cursor pagination (`per_page` up to 150, 50 by default; `pages.next.starting_after`).
 * Archived contacts are never found.
 */
import { cursorPage, EmulatorRefusal, fitsType, matchesFilter, type Attribute, type AttributeType, type FilterOperator } from '@outflow/core/emulator-kit';
import { STANDARD, type Contact, type Json } from './contacts.js';

const MAX_PER_PAGE = 150;
const DAY = 86_400;
const OPERATORS: Record<string, FilterOperator> = { '=': 'eq', '!=': 'neq', IN: 'in', NIN: 'nin', '>': 'gt', '<': 'lt', '~': 'contains', '!~': 'not_contains', '^': 'starts_with', $: 'ends_with' };
const TEXT: FilterOperator[] = ['contains', 'not_contains', 'starts_with', 'ends_with'];
const invalid = (message: string) => new EmulatorRefusal(400, 'parameter_invalid', message);

/** A field's type, and how to read it from a contact: `name` (standard) or `custom_attributes.name`. */
function fieldOf(field: string, custom: Attribute[]): { type: AttributeType; valueOf: (c: Contact) => Json | undefined } {
  const name = /^custom_attributes\.(.+)$/.exec(field)?.[1];
  const attr = name === undefined ? STANDARD.find((a) => a.name === field) : custom.find((a) => a.name === name);
  if (attr === undefined) throw invalid(`${field} is not a searchable field`);
  return { type: attr.type, valueOf: name === undefined ? (c) => c[field] : (c) => c.custom_attributes[name] };
}

/** Compiles a query node into a predicate, refusing what Intercom refuses. */
function compile(node: Json, custom: Attribute[], depth: number): (c: Contact) => boolean {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) throw invalid('query must be an object');
  const { field, operator, value } = node;
  if (operator === 'AND' || operator === 'OR') {
    if (!Array.isArray(value) || value.length === 0) throw invalid(`${operator} takes a list of filters`);
    if (depth >= 2) throw invalid('Queries support at most 2 nested filters');
    if (value.length > 15) throw invalid(`An ${operator} group takes at most 15 filters`);
    const parts = value.map((v) => compile(v, custom, depth + 1));
    return operator === 'AND' ? (c) => parts.every((p) => p(c)) : (c) => parts.some((p) => p(c));
  }
  if (typeof field !== 'string') throw new EmulatorRefusal(400, 'parameter_not_found', 'a filter needs a field');
  const { type, valueOf } = fieldOf(field, custom);
  const dates = type === 'date';
  const op = OPERATORS[operator as string];
  const list = op === 'in' || op === 'nin';
  const wanted = list ? value : [value];
  const ok =
    op !== undefined &&
    Array.isArray(wanted) &&
    (!['gt', 'lt'].includes(op) || type === 'integer' || type === 'float' || dates) &&
    (!TEXT.includes(op) || type === 'string') &&
    wanted.every((w) => w === null || fitsType(dates ? 'integer' : type, dates && typeof w === 'string' && /^\d+$/.test(w) ? Number(w) : w));
  if (!ok) throw invalid(`operator ${JSON.stringify(operator)} with value ${JSON.stringify(value)} does not fit field ${field} (${type})`);
  // Timestamps compare by day.
  const norm = (v: Json | undefined): Json | undefined => (dates && v !== null && v !== undefined ? Math.floor(Number(v) / DAY) : v);
  const targets = wanted.map(norm);
  return (c) => matchesFilter(op, norm(valueOf(c)), list ? targets : targets[0]);
}

/** Answers a search body with Intercom's list shape, one page of it. */
export function search(body: Json | undefined, live: Contact[], custom: Attribute[]): Record<string, Json> {
  const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, Json>;
  if (b['query'] === undefined) throw new EmulatorRefusal(400, 'parameter_not_found', 'query is required');
  const match = compile(b['query'], custom, 0);
  const paging = (b['pagination'] ?? {}) as Record<string, Json>;
  const per = paging['per_page'] ?? 50;
  if (typeof per !== 'number' || !Number.isSafeInteger(per) || per < 1 || per > MAX_PER_PAGE) throw invalid(`per_page must be between 1 and ${MAX_PER_PAGE}`);
  const found = live.filter(match);
  const page = cursorPage(found, paging['starting_after'], per);
  if (page === undefined) throw invalid('starting_after is not a valid cursor');
  const number = Math.floor(page.offset / per) + 1;
  return {
    type: 'list',
    data: page.items,
    total_count: found.length,
    pages: { type: 'pages', page: number, per_page: per, total_pages: Math.ceil(found.length / per), ...(page.next === undefined ? {} : { next: { page: number + 1, starting_after: page.next } }) },
  };
}
