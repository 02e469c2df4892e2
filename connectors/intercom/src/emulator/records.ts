/**
 * Intercom's contacts as the REST API (2.x) describes them: users and leads, a unique
 * `external_id`, an email unique among users, custom attributes checked against the
 * workspace's data attributes, archiving (an archived contact answers 404 to reads and
 * updates and is left out of search, but still holds its email and external_id), and a log
 * of every write applied; with the routes that serve them, search and data attributes included.
 */
import { ChangeLog, checkValues, cursorPage, fitsType, jsonObject, matchesFilter, RecordTable } from '@outflow/core/emulator-kit';
import type { Attribute, AttributeIssue, EmulatorApp, EmulatorRefusal, FilterOperator } from '@outflow/core/emulator-kit';
import { refusal } from './api.js';

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
export interface Contact {
  type: 'contact';
  id: string;
  role: 'user' | 'lead';
  [field: string]: Json;
  custom_attributes: Record<string, Json>;
  created_at: number;
  updated_at: number;
}
/** One write applied through the API, in order; `contact` is the record after it (absent for a delete). */
export interface Write {
  op: 'create' | 'update' | 'archive' | 'unarchive' | 'delete';
  id: string;
  contact?: Contact;
}

const std = (name: string, type: Attribute['type'], readOnly = false): Attribute => ({ name, type, readOnly });
/** The standard contact attributes (dates are UNIX timestamps in seconds), at the top level of a contact. */
const STANDARD: Attribute[] = [
  ...['role', 'external_id', 'email', 'phone', 'name', 'avatar'].map((n) => std(n, 'string')),
  std('owner_id', 'integer'),
  ...['signed_up_at', 'last_seen_at'].map((n) => std(n, 'date')),
  std('unsubscribed_from_emails', 'boolean'),
  std('id', 'string', true),
  ...['created_at', 'updated_at'].map((n) => std(n, 'date', true)),
];
const WRITABLE = STANDARD.filter((a) => !a.readOnly).map((a) => a.name);

/** The most contacts a search answers in one page; 50 when `per_page` is not given. */
const MAX_PAGE = 150;
const DAY = 86_400;
/** Intercom's search operators, as the kit's filter operators. */
const OPERATORS: Record<string, FilterOperator> = { '=': 'eq', '!=': 'neq', IN: 'in', NIN: 'nin', '>': 'gt', '<': 'lt', '~': 'contains', '!~': 'not_contains', '^': 'starts_with', $: 'ends_with' };
const TEXT: FilterOperator[] = ['contains', 'not_contains', 'starts_with', 'ends_with'];

const now = () => Math.floor(Date.now() / 1000);
const invalid = (message: string) => refusal(400, 'parameter_invalid', message);
/** The short form of a contact that archive, unarchive and delete answer. */
const ref = (c: Contact, extra: Record<string, Json>): Json => ({ type: 'contact', id: c.id, external_id: c['external_id'] ?? null, ...extra });

/** Intercom's refusal of a custom attribute's value (a standard field of the wrong type is a `type_mismatch`). */
function problem(custom: boolean, issue: AttributeIssue, name: string, value: unknown, attr: Attribute | undefined): EmulatorRefusal {
  if (!custom) return refusal(400, 'type_mismatch', `${name} must be of type ${attr!.type}`);
  if (issue === 'unknown') return refusal(400, 'parameter_not_found', `Custom attribute '${name}' does not exist`);
  if (issue === 'option') return refusal(400, 'parameter_invalid', `'${String(value)}' is not an allowed value of the list attribute '${name}'`);
  return refusal(400, 'parameter_invalid', `Custom attribute '${name}' ${issue === 'type' ? `must be of type ${attr!.type}` : 'is not writable'}`);
}

/**
 * Compiles a search query node into a predicate, refusing what Intercom refuses: `{ field,
 * operator, value }` filters combined with AND / OR (at most two levels of nesting, at most
 * 15 filters in a group), operators checked against the field's type, timestamps compared by day.
 */
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
  if (typeof field !== 'string') throw refusal(400, 'parameter_not_found', 'a filter needs a field');
  // A standard field by its name, a custom attribute as `custom_attributes.<name>`.
  const name = /^custom_attributes\.(.+)$/.exec(field)?.[1];
  const attr = name === undefined ? STANDARD.find((a) => a.name === field) : custom.find((a) => a.name === name);
  if (attr === undefined) throw invalid(`${field} is not a searchable field`);
  const dates = attr.type === 'date';
  const op = OPERATORS[operator as string];
  const list = op === 'in' || op === 'nin';
  const wanted = list ? value : [value];
  const ok =
    op !== undefined &&
    Array.isArray(wanted) &&
    (!['gt', 'lt'].includes(op) || attr.type === 'integer' || attr.type === 'float' || dates) &&
    (!TEXT.includes(op) || attr.type === 'string') &&
    wanted.every((w) => w === null || fitsType(dates ? 'integer' : attr.type, dates && typeof w === 'string' && /^\d+$/.test(w) ? Number(w) : w));
  if (!ok) throw invalid(`operator ${JSON.stringify(operator)} with value ${JSON.stringify(value)} does not fit field ${field} (${attr.type})`);
  // Timestamps compare by day.
  const norm = (v: Json | undefined): Json | undefined => (dates && v !== null && v !== undefined ? Math.floor(Number(v) / DAY) : v);
  const targets = wanted.map(norm);
  return (c) => matchesFilter(op, norm(name === undefined ? c[field] : c.custom_attributes[name]), list ? targets : targets[0]);
}

export class Records {
  /** external_id is unique among all contacts, email among users; archived ones hold theirs too. */
  private readonly table = new RecordTable<Contact>({
    external_id: (c) => (c['external_id'] === null ? undefined : String(c['external_id'])),
    email: (c) => (c.role === 'user' && typeof c['email'] === 'string' ? c['email'].toLowerCase() : undefined),
  });
  /** Every write applied, in order; replayed from the file at start. */
  private readonly log: ChangeLog<Write>;
  private seq = 0;

  constructor(
    file: string | undefined,
    private readonly custom: Attribute[],
  ) {
    this.log = new ChangeLog<Write>(file, 'intercom', (w) => {
      if (w.contact === undefined) this.table.delete(w.id);
      else this.table.put(structuredClone(w.contact));
      this.table.setArchived(w.id, w.op === 'archive' || (w.op !== 'unarchive' && this.table.isArchived(w.id)));
    });
  }

  route(app: EmulatorApp): void {
    app
      .on('POST', '/contacts', ({ body }) => ({ body: this.create(jsonObject(body)), write: true }))
      .on('POST', '/contacts/search', ({ body }) => ({ body: this.search(body) }))
      .on('GET', '/contacts/:id', ({ params }) => ({ body: this.get(params['id']!) }))
      .on('PUT', '/contacts/:id', ({ params, body }) => ({ body: this.update(params['id']!, jsonObject(body)), write: true }))
      .on('DELETE', '/contacts/:id', ({ params }) => ({ body: this.remove(params['id']!), write: true }))
      .on('POST', '/contacts/:id/archive', ({ params }) => ({ body: this.setArchived(params['id']!, true), write: true }))
      .on('POST', '/contacts/:id/unarchive', ({ params }) => ({ body: this.setArchived(params['id']!, false), write: true }))
      .on('GET', '/data_attributes', ({ query }) => {
        const attrs = (query.get('model') ?? 'contact') === 'contact' ? [...STANDARD, ...this.custom] : [];
        const data = attrs.map((a) => ({
          type: 'data_attribute', model: 'contact', name: a.name, full_name: a.custom ? `custom_attributes.${a.name}` : a.name, label: a.name, description: '',
          data_type: a.type, ...(a.options ? { options: a.options } : {}), api_writable: !a.readOnly, ui_writable: !a.readOnly, messenger_writable: false, custom: a.custom === true, archived: false,
        }));
        return { body: { type: 'list', data } };
      });
  }

  /** Every contact held, archived ones included (with `archived: true`), oldest first. */
  contacts(): (Contact & { archived: boolean })[] {
    return this.table.all().map((c) => ({ ...structuredClone(c), archived: this.table.isArchived(c.id) }));
  }

  /** Every write applied through the API since the log began, in order. */
  writes(): Write[] {
    return structuredClone(this.log.entries);
  }

  /** A contact (a live one unless `archived` is true), or 404 as Intercom answers it. */
  private get(id: string, archived = false): Contact {
    const c = this.table.get(id);
    if (c === undefined || (!archived && this.table.isArchived(id))) throw refusal(404, 'not_found', 'Contact Not Found');
    return c;
  }

  private create(body: Record<string, unknown>): Contact {
    const fields = this.validate(body);
    const role = (fields['role'] ?? 'user') as Contact['role'];
    if (role === 'user' && !fields['email'] && !fields['external_id']) throw refusal(400, 'parameter_not_found', 'A user requires an email or an external_id');
    const at = now();
    const id = (at.toString(16) + (++this.seq + this.table.size).toString(16).padStart(16, '0')).slice(-24);
    const contact: Contact = { type: 'contact', id, role, external_id: null, email: null, phone: null, name: null, avatar: null, owner_id: null,
      signed_up_at: null, last_seen_at: null, unsubscribed_from_emails: false, ...fields, custom_attributes: {}, created_at: at, updated_at: at };
    return this.put('create', contact, body['custom_attributes']);
  }

  private update(id: string, body: Record<string, unknown>): Contact {
    return this.put('update', { ...structuredClone(this.get(id)), ...this.validate(body), updated_at: now() }, body['custom_attributes']);
  }

  /** Archives or unarchives a contact by id; archived contacts are addressable only here and by DELETE. */
  private setArchived(id: string, archived: boolean): Json {
    return ref(this.put(archived ? 'archive' : 'unarchive', this.get(id, true)), { archived });
  }

  private remove(id: string): Json {
    const contact = this.get(id, true);
    this.log.add({ op: 'delete', id });
    return ref(contact, { deleted: true });
  }

  private put(op: Write['op'], contact: Contact, custom?: unknown): Contact {
    if (custom !== undefined && custom !== null) Object.assign(contact.custom_attributes, this.check(custom, true));
    const clash = this.table.clash(contact);
    if (clash !== undefined) {
      const which = this.table.isArchived(clash.id) ? 'An archived contact' : 'A contact';
      throw refusal(409, 'conflict', `${which} matching those details already exists with id=${clash.id}`);
    }
    this.log.add({ op, id: contact.id, contact: structuredClone(contact) });
    return contact;
  }

  /** The writable standard fields of a body, type-checked (null clears one); other fields are ignored. */
  private validate(body: Record<string, unknown>): Record<string, Json> {
    const out = this.check(Object.fromEntries(WRITABLE.filter((n) => n in body).map((n) => [n, body[n]])), false);
    if ('role' in out && out['role'] !== 'user' && out['role'] !== 'lead') throw refusal(400, 'parameter_invalid', 'role must be one of user, lead');
    return out;
  }

  /** Values checked against the standard or the workspace's custom attributes; the first refusal is thrown. */
  private check(values: unknown, custom: boolean): Record<string, Json> {
    if (typeof values !== 'object' || values === null || Array.isArray(values)) throw refusal(400, 'type_mismatch', 'custom_attributes must be an object');
    const attrs = custom ? this.custom : STANDARD;
    const checked = checkValues<Attribute, EmulatorRefusal>(values as Record<string, unknown>, { find: (n) => attrs.find((a) => a.name === n), problem: (...p) => problem(custom, ...p) });
    if ('problems' in checked) throw checked.problems[0]!;
    return checked.values as Record<string, Json>;
  }

  /** `{ query, pagination: { per_page, starting_after } }`: the live contacts the query matches, one page of them, in Intercom's list shape. */
  private search(body: unknown): Json {
    const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, Json>;
    if (b['query'] === undefined) throw refusal(400, 'parameter_not_found', 'query is required');
    const match = compile(b['query'], this.custom, 0);
    const paging = (b['pagination'] ?? {}) as Record<string, Json>;
    const per = paging['per_page'] ?? 50;
    if (typeof per !== 'number' || !Number.isSafeInteger(per) || per < 1 || per > MAX_PAGE) throw invalid(`per_page must be between 1 and ${MAX_PAGE}`);
    const found = this.table.live().filter(match);
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
}
