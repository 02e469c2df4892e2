/**
 * The records API of the emulator, one request per record: `POST /v1/objects/:object/records`
 * creates a record (201), `GET`, `PATCH` and `DELETE /v1/objects/:object/records/:id` read,
 * change and delete one, and `POST /v1/objects/:object/records/search` finds records by equal
 * property values, a page at a time. It refuses what the API refuses: a property the object
 * does not have, a value of another type or an invalid email (400), a value of a unique
 * property that another record holds (409 `conflict`), a record that does not exist (404).
 * Every write is logged, so a sandbox survives a restart and tests count what was applied.
 */
import type { Row } from '@outflow/core';
import { ChangeLog, checkValues, cursorPage, EmulatorRefusal, jsonObject, matchesFilter, RecordTable, type Attribute, type AttributeIssue, type EmulatorApp } from '@outflow/core/emulator-kit';
import { refusal } from './api.js';

/** The most records a search answers in one page. */
export const MAX_PAGE = 100;
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
/** The key a value holds in a unique index: none when it is absent or null. */
const keyOf = (value: unknown) => (value === null || value === undefined ? undefined : String(value));

/** The objects the API has and their properties; a `unique` one is held by one record at most. */
const OBJECTS: Record<string, Attribute[]> = {
  contacts: [
    { name: 'external_id', type: 'string', unique: true },
    { name: 'email', type: 'string', unique: true },
    { name: 'name', type: 'string' },
  ],
};

/** A record as the API answers it. */
export interface StoredRecord {
  id: string;
  properties: Row;
}

/** One write applied through the API, in order; `record` is the record after it (absent for a delete). */
export interface Write {
  op: 'create' | 'update' | 'delete';
  object: string;
  id: string;
  record?: StoredRecord;
}

/** The API's refusal of a property's value. */
function problem(object: string, issue: AttributeIssue, name: string, _value: unknown, attribute: Attribute | undefined): EmulatorRefusal {
  if (issue === 'unknown') return refusal(400, 'unknown_property', `"${object}" has no property "${name}"`);
  if (issue === 'read_only') return refusal(400, 'invalid_property', `${name} is read-only`);
  if (issue === 'option') return refusal(400, 'invalid_property', `${name} must be one of ${attribute!.options!.join(', ')}`);
  return refusal(400, 'invalid_property', `${name} must be a ${attribute!.type}`);
}

export class Records {
  private readonly tables = new Map<string, RecordTable<StoredRecord>>();
  /** Every write applied, in order; replayed from the file at start. */
  private readonly log: ChangeLog<Write>;
  private nextId = 1;

  constructor(file: string | undefined) {
    for (const [object, attributes] of Object.entries(OBJECTS)) {
      const unique = attributes.filter((a) => a.unique).map((a) => [a.name, (r: StoredRecord) => keyOf(r.properties[a.name])] as const);
      this.tables.set(object, new RecordTable<StoredRecord>(Object.fromEntries(unique)));
    }
    this.log = new ChangeLog<Write>(file, '__name__', (w) => {
      if (w.record === undefined) this.table(w.object).delete(w.id);
      else this.table(w.object).put(structuredClone(w.record));
      this.nextId = Math.max(this.nextId, Number(w.id.slice('rec_'.length)) + 1);
    });
  }

  route(app: EmulatorApp): void {
    const records = '/v1/objects/:object/records';
    app
      .on('POST', records, ({ params, body }) => ({ status: 201, body: this.create(params['object']!, body), write: true }))
      .on('POST', `${records}/search`, ({ params, body }) => ({ body: this.search(params['object']!, body) }))
      .on('GET', `${records}/:id`, ({ params }) => ({ body: this.get(params['object']!, params['id']!) }))
      .on('PATCH', `${records}/:id`, ({ params, body }) => ({ body: this.update(params['object']!, params['id']!, body), write: true }))
      .on('DELETE', `${records}/:id`, ({ params }) => ({ body: this.remove(params['object']!, params['id']!), write: true }));
  }

  /** Every record `object` holds, one entry per record, oldest first. */
  list(object: string): StoredRecord[] {
    return structuredClone(this.tables.get(object)?.all() ?? []);
  }

  /** Every write applied through the API since the log began, in order. */
  writes(): Write[] {
    return structuredClone(this.log.entries);
  }

  private table(object: string): RecordTable<StoredRecord> {
    const table = this.tables.get(object);
    if (table === undefined) throw refusal(404, 'object_not_found', `there is no object "${object}"`);
    return table;
  }

  private get(object: string, id: string): StoredRecord {
    const record = this.table(object).get(id);
    if (record === undefined) throw refusal(404, 'not_found', `there is no ${object} record "${id}"`);
    return record;
  }

  private create(object: string, body: unknown): StoredRecord {
    const properties = this.check(object, body);
    return this.put('create', object, { id: `rec_${this.nextId}`, properties });
  }

  /** Sets the properties given (null clears one) and keeps the others. */
  private update(object: string, id: string, body: unknown): StoredRecord {
    const properties = { ...this.get(object, id).properties, ...this.check(object, body) };
    for (const [name, value] of Object.entries(properties)) if (value === null) delete properties[name];
    return this.put('update', object, { id, properties });
  }

  private remove(object: string, id: string): { id: string; deleted: true } {
    this.get(object, id);
    this.log.add({ op: 'delete', object, id });
    return { id, deleted: true };
  }

  private put(op: Write['op'], object: string, record: StoredRecord): StoredRecord {
    const clash = this.table(object).clash(record);
    if (clash !== undefined) throw refusal(409, 'conflict', `another record (${clash.id}) holds this ${clash.index}`);
    this.log.add({ op, object, id: record.id, record: structuredClone(record) });
    return record;
  }

  /** The properties of a body, checked against the object's: the first refusal is thrown. */
  private check(object: string, body: unknown): Row {
    this.table(object); // 404 for an object the API does not have
    const attributes = OBJECTS[object]!;
    const properties = jsonObject(body)['properties'];
    if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) throw refusal(400, 'invalid_request', 'the body must be { "properties": { … } }');
    const checked = checkValues<Attribute, EmulatorRefusal>(properties as Record<string, unknown>, { find: (n) => attributes.find((a) => a.name === n), problem: (...p) => problem(object, ...p) });
    if ('problems' in checked) throw checked.problems[0]!;
    const email = checked.values['email'];
    if (typeof email === 'string' && !EMAIL.test(email)) throw refusal(400, 'invalid_property', `email ${JSON.stringify(email)} is not a valid email address`);
    return checked.values as Row;
  }

  /** `{ filters: [{ property, value }], limit, after }`: the records equal to every filter, one page of them. */
  private search(object: string, body: unknown): { results: StoredRecord[]; paging?: { next: { after: string } } } {
    const table = this.table(object);
    const { filters = [], limit = 10, after } = jsonObject(body) as { filters?: unknown; limit?: unknown; after?: unknown };
    if (!Array.isArray(filters) || !filters.every((f: { property?: unknown }) => typeof f?.property === 'string')) throw refusal(400, 'invalid_request', 'filters must be a list of { "property", "value" }');
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE) throw refusal(400, 'invalid_request', `limit must be 1 to ${MAX_PAGE}`);
    const found = table.all().filter((r) => filters.every((f: { property: string; value?: unknown }) => matchesFilter('eq', r.properties[f.property], f.value)));
    const page = cursorPage(found, after, limit);
    if (page === undefined) throw refusal(400, 'invalid_request', 'after is not a cursor this API gave');
    return { results: structuredClone(page.items), ...(page.next === undefined ? {} : { paging: { next: { after: page.next } } }) };
  }
}
