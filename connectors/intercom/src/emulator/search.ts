/**
 * POST /contacts/search as Intercom documents it: a query of `{ field, operator, value }`
 * filters combined with AND / OR (at most two levels of nesting, at most 15 filters in a
 * group), operators checked against the field's type, timestamps compared by day, and
 * cursor pagination (`per_page` up to 150, 50 by default; `pages.next.starting_after`).
 * Archived contacts are never found.
 */
import { EmulatorRefusal } from '@outflow/core/emulator-kit';
import { isOfType, STANDARD, type Attribute, type Contact, type DataType, type Json } from './contacts.js';

const MAX_PER_PAGE = 150;
const DAY = 86_400;
const TEXT_OPS = ['~', '!~', '^', '$'];

function typeOf(field: string, custom: Attribute[]): DataType {
  const name = field.startsWith('custom_attributes.') ? field.slice('custom_attributes.'.length) : undefined;
  const attr = name === undefined ? STANDARD.find((a) => a.name === field) : custom.find((a) => a.name === name);
  if (attr === undefined) throw new EmulatorRefusal(400, 'parameter_invalid', `${field} is not a searchable field`);
  return attr.data_type;
}

function valueOf(contact: Contact, field: string): Json | undefined {
  return field.startsWith('custom_attributes.') ? contact.custom_attributes[field.slice('custom_attributes.'.length)] : contact[field];
}

/** Compiles a query node into a predicate, refusing what Intercom refuses. */
function compile(node: Json, custom: Attribute[], depth: number): (c: Contact) => boolean {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) throw new EmulatorRefusal(400, 'parameter_invalid', 'query must be an object');
  const { field, operator, value } = node;
  if (operator === 'AND' || operator === 'OR') {
    if (!Array.isArray(value) || value.length === 0) throw new EmulatorRefusal(400, 'parameter_invalid', `${operator} takes a list of filters`);
    if (depth >= 2) throw new EmulatorRefusal(400, 'parameter_invalid', 'Queries support at most 2 nested filters');
    if (value.length > 15) throw new EmulatorRefusal(400, 'parameter_invalid', `An ${operator} group takes at most 15 filters`);
    const parts = value.map((v) => compile(v, custom, depth + 1));
    return operator === 'AND' ? (c) => parts.every((p) => p(c)) : (c) => parts.some((p) => p(c));
  }
  if (typeof field !== 'string') throw new EmulatorRefusal(400, 'parameter_not_found', 'a filter needs a field');
  const type = typeOf(field, custom);
  const dates = type === 'date';
  const list = operator === 'IN' || operator === 'NIN';
  const wanted = list ? value : [value];
  const ordered = operator === '>' || operator === '<';
  const ok =
    ['=', '!=', 'IN', 'NIN', '>', '<', ...TEXT_OPS].includes(operator as string) &&
    Array.isArray(wanted) === true &&
    (!ordered || type === 'integer' || type === 'float' || dates) &&
    (!TEXT_OPS.includes(operator as string) || type === 'string') &&
    (wanted as Json[]).every((w) => w === null || isOfType(dates ? 'integer' : type, dates && typeof w === 'string' && /^\d+$/.test(w) ? Number(w) : w));
  if (!ok) throw new EmulatorRefusal(400, 'parameter_invalid', `operator ${JSON.stringify(operator)} with value ${JSON.stringify(value)} does not fit field ${field} (${type})`);
  const norm = (v: Json | undefined): Json | undefined => (dates && v !== null && v !== undefined ? Math.floor(Number(v) / DAY) : v);
  const targets = (wanted as Json[]).map(norm);
  return (c) => {
    const v = norm(valueOf(c, field));
    const s = String(v ?? '');
    const t = targets[0];
    switch (operator) {
      case '=': return v === t || (v === undefined && t === null);
      case '!=': return v !== t;
      case 'IN': return targets.includes(v ?? null);
      case 'NIN': return !targets.includes(v ?? null);
      case '>': return typeof v === 'number' && v > Number(t);
      case '<': return typeof v === 'number' && v < Number(t);
      case '~': return s.includes(String(t));
      case '!~': return !s.includes(String(t));
      case '^': return s.startsWith(String(t));
      default: return s.endsWith(String(t));
    }
  };
}

/** Answers a search body with Intercom's list shape, one page of it. */
export function search(body: Json | undefined, live: Contact[], custom: Attribute[]): Record<string, Json> {
  const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, Json>;
  if (b['query'] === undefined) throw new EmulatorRefusal(400, 'parameter_not_found', 'query is required');
  const match = compile(b['query'], custom, 0);
  const paging = (b['pagination'] ?? {}) as Record<string, Json>;
  const perPage = paging['per_page'] ?? 50;
  if (!Number.isSafeInteger(perPage) || (perPage as number) < 1 || (perPage as number) > MAX_PER_PAGE) {
    throw new EmulatorRefusal(400, 'parameter_invalid', `per_page must be between 1 and ${MAX_PER_PAGE}`);
  }
  const cursor = paging['starting_after'];
  const offset = typeof cursor === 'string' ? Number(Buffer.from(cursor, 'base64url').toString().replace(/^offset:/, '')) : 0;
  if (!Number.isSafeInteger(offset) || offset < 0) throw new EmulatorRefusal(400, 'parameter_invalid', 'starting_after is not a valid cursor');
  const found = live.filter(match);
  const per = perPage as number;
  const page = Math.floor(offset / per) + 1;
  const next = offset + per < found.length ? { page: page + 1, starting_after: Buffer.from(`offset:${offset + per}`).toString('base64url') } : null;
  return {
    type: 'list',
    data: found.slice(offset, offset + per),
    total_count: found.length,
    pages: { type: 'pages', page, per_page: per, total_pages: Math.ceil(found.length / per), ...(next === null ? {} : { next }) },
  };
}
