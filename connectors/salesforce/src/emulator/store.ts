/**
 * The org's data: sObjects with their records, an index per idLookup field, the ids of
 * deleted records, and the write log. Every change is queued for the JSON-lines log in
 * `dataDir` and appended before the request that made it is answered. A request that must
 * apply all or nothing marks the store first and rolls back to the mark.
 */
import { jsonLinesLog } from '@outflow/core/emulator-kit';
import { defineObject, fieldOf, STANDARD_OBJECTS, type CustomObjectSpec, type FieldDef, type SObjectDef } from './schema.js';

/** A field value as the org holds it: text, number, boolean, or null. */
export type FieldValue = string | number | boolean | null;

/** A record held by the emulator; `Id` and the system fields included. */
export type StoredRecord = Record<string, FieldValue> & { Id: string };

/** Which API applied a write. */
export type Via = 'rest' | 'collections' | 'bulk';

/**
 * One write the emulator applied through the API, in order. Writes replayed from `dataDir`
 * are not in it, and an update that changed nothing is not either, so a record created twice
 * shows as two `create`s.
 */
export interface AppliedWrite {
  op: 'create' | 'update' | 'delete';
  object: string;
  id: string;
  via: Via;
  /** For `create`: the values the record was created with. */
  fields?: Record<string, FieldValue>;
}

interface ObjectData {
  def: SObjectDef;
  records: Map<string, StoredRecord>;
  deleted: Set<string>;
  /** idLookup field → lower-cased value → ids holding it. */
  index: Map<string, Map<string, Set<string>>>;
}

type LogEntry =
  | { t: 'put'; o: string; r: StoredRecord }
  | { t: 'del'; o: string; id: string }
  | { t: 'seq'; n: number }
  | { t: 'meta'; k: string; v: unknown };

/** A point a request may roll back to. */
export interface Mark {
  pending: number;
  applied: number;
  undo: number;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SUFFIX = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';

/** The three characters Salesforce appends to a 15-character id to make it case-safe. */
export function idSuffix(id15: string): string {
  let out = '';
  for (let chunk = 0; chunk < 3; chunk++) {
    let bits = 0;
    for (let i = 0; i < 5; i++) {
      const c = id15[chunk * 5 + i]!;
      if (c >= 'A' && c <= 'Z') bits |= 1 << i;
    }
    out += SUFFIX[bits];
  }
  return out;
}

/** Whether `id` is shaped like a Salesforce id: 15 or 18 letters and digits. */
export function isIdShaped(id: string): boolean {
  return /^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$/.test(id);
}

/** The 18-character form of a 15- or 18-character id. */
export function to18(id: string): string {
  return id.length === 18 ? id.slice(0, 15) + idSuffix(id.slice(0, 15)) : id + idSuffix(id);
}

/** Salesforce's datetime format in answers: `2024-05-01T10:00:00.000+0000`. */
export function sfDateTime(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+0000');
}

export class OrgStore {
  private readonly objects = new Map<string, ObjectData>();
  private seq = 1;
  private pending: LogEntry[] = [];
  private undo: (() => void)[] = [];
  /** Every write applied through the API since start; see {@link AppliedWrite}. */
  readonly applied: AppliedWrite[] = [];
  /** State other parts keep in the same log (Bulk API jobs), by key; the last value wins. */
  readonly meta = new Map<string, unknown>();

  private constructor(private readonly logPath: string | undefined) {
    for (const o of STANDARD_OBJECTS) this.add(defineObject(o.name, o.label, o.keyPrefix, false, o.fields));
  }

  /** An org with the standard objects and `customObjects`, and the log in `logPath` replayed. */
  static open(logPath: string | undefined, customObjects: readonly CustomObjectSpec[]): OrgStore {
    const store = new OrgStore(logPath);
    customObjects.forEach((c, i) => {
      if (!c.name.endsWith('__c')) throw new TypeError(`custom object "${c.name}" must end in __c`);
      store.add(defineObject(c.name, c.label ?? c.name.replace(/__c$/, '').replace(/_/g, ' '), `a0${BASE62[i % 62]}`, true, c.fields));
    });
    if (logPath !== undefined) jsonLinesLog.replay<LogEntry>(logPath, 'salesforce', (entry) => store.replay(entry));
    store.pending = [];
    store.undo = [];
    store.applied.length = 0;
    return store;
  }

  /** Appends what changed since the last flush, so an acknowledged write survives a crash. */
  flush(): void {
    const entries = this.pending;
    this.pending = [];
    this.undo = [];
    if (this.logPath !== undefined) jsonLinesLog.append(this.logPath, entries);
  }

  /** Keeps `value` under `key` in the log, written with the next flush. */
  putMeta(key: string, value: unknown): void {
    this.meta.set(key, value);
    this.pending.push({ t: 'meta', k: key, v: value });
  }

  mark(): Mark {
    return { pending: this.pending.length, applied: this.applied.length, undo: this.undo.length };
  }

  /** Undoes every change since `mark` (allOrNone). */
  rollback(mark: Mark): void {
    while (this.undo.length > mark.undo) this.undo.pop()!();
    this.pending.length = mark.pending;
    this.applied.length = mark.applied;
  }

  /** An sObject by name, without regard to case. */
  object(name: string): SObjectDef | undefined {
    return this.data(name)?.def;
  }

  objectsList(): SObjectDef[] {
    return [...this.objects.values()].map((o) => o.def);
  }

  /** The object whose ids start with this key prefix. */
  objectOfId(id: string): SObjectDef | undefined {
    for (const o of this.objects.values()) if (id.startsWith(o.def.keyPrefix)) return o.def;
    return undefined;
  }

  get(object: string, id: string): StoredRecord | undefined {
    if (!isIdShaped(id)) return undefined;
    return this.data(object)?.records.get(to18(id));
  }

  wasDeleted(object: string, id: string): boolean {
    return isIdShaped(id) && (this.data(object)?.deleted.has(to18(id)) ?? false);
  }

  records(object: string): StoredRecord[] {
    return [...(this.data(object)?.records.values() ?? [])];
  }

  /** The records whose idLookup `field` holds `value` (compared without regard to case). */
  find(object: string, field: FieldDef, value: FieldValue): StoredRecord[] {
    const data = this.data(object);
    if (data === undefined || value === null) return [];
    if (field.name === 'Id') {
      const r = this.get(object, String(value));
      return r === undefined ? [] : [r];
    }
    const ids = data.index.get(field.name)?.get(String(value).toLowerCase());
    if (ids !== undefined) return [...ids].map((id) => data.records.get(id)!);
    if (field.idLookup) return [];
    return [...data.records.values()].filter((r) => r[field.name] === value);
  }

  insert(object: string, values: Record<string, FieldValue>, via: Via): StoredRecord {
    const data = this.data(object)!;
    const counter = (this.seq++).toString(36).toUpperCase();
    const id15 = data.def.keyPrefix + '5g' + counter.padStart(10, '0');
    const at = sfDateTime(Date.now());
    const record: StoredRecord = {
      ...values,
      Id: id15 + idSuffix(id15),
      IsDeleted: false,
      CreatedDate: at,
      LastModifiedDate: at,
      SystemModstamp: at,
      OwnerId: typeof values['OwnerId'] === 'string' ? values['OwnerId'] : '0055g00000EMULAAA',
    };
    this.pending.push({ t: 'seq', n: this.seq });
    this.save(data, record, undefined);
    this.applied.push({ op: 'create', object: data.def.name, id: record.Id, via, fields: { ...values } });
    return record;
  }

  /** Applies `values` to a record; one whose values do not change keeps its modification time. */
  update(object: string, existing: StoredRecord, values: Record<string, FieldValue>, via: Via): StoredRecord {
    const data = this.data(object)!;
    const changed = Object.entries(values).some(([k, v]) => (existing[k] ?? null) !== v);
    if (!changed) return existing;
    const at = sfDateTime(Date.now());
    const record: StoredRecord = { ...existing, ...values, Id: existing.Id, LastModifiedDate: at, SystemModstamp: at };
    this.save(data, record, existing);
    this.applied.push({ op: 'update', object: data.def.name, id: record.Id, via });
    return record;
  }

  remove(object: string, id: string, via: Via): void {
    const data = this.data(object)!;
    const existing = data.records.get(id);
    if (existing === undefined) return;
    this.unindex(data, existing);
    data.records.delete(id);
    data.deleted.add(id);
    this.undo.push(() => {
      data.deleted.delete(id);
      data.records.set(id, existing);
      this.index(data, existing);
    });
    this.pending.push({ t: 'del', o: data.def.name, id });
    this.applied.push({ op: 'delete', object: data.def.name, id, via });
  }

  private data(name: string): ObjectData | undefined {
    return this.objects.get(name.toLowerCase());
  }

  private add(def: SObjectDef): void {
    const index = new Map<string, Map<string, Set<string>>>();
    for (const f of def.fields.values()) if (f.idLookup && f.name !== 'Id') index.set(f.name, new Map());
    this.objects.set(def.name.toLowerCase(), { def, records: new Map(), deleted: new Set(), index });
  }

  private save(data: ObjectData, record: StoredRecord, before: StoredRecord | undefined): void {
    if (before !== undefined) this.unindex(data, before);
    data.records.set(record.Id, record);
    this.index(data, record);
    this.undo.push(() => {
      this.unindex(data, record);
      if (before === undefined) data.records.delete(record.Id);
      else {
        data.records.set(record.Id, before);
        this.index(data, before);
      }
    });
    this.pending.push({ t: 'put', o: data.def.name, r: record });
  }

  private index(data: ObjectData, record: StoredRecord): void {
    for (const [field, values] of data.index) {
      const v = record[field];
      if (v === null || v === undefined || v === '') continue;
      const key = String(v).toLowerCase();
      let ids = values.get(key);
      if (ids === undefined) values.set(key, (ids = new Set()));
      ids.add(record.Id);
    }
  }

  private unindex(data: ObjectData, record: StoredRecord): void {
    for (const [field, values] of data.index) {
      const v = record[field];
      if (v === null || v === undefined || v === '') continue;
      const key = String(v).toLowerCase();
      values.get(key)?.delete(record.Id);
      if (values.get(key)?.size === 0) values.delete(key);
    }
  }

  private replay(entry: LogEntry): void {
    switch (entry.t) {
      case 'seq':
        this.seq = Math.max(this.seq, entry.n);
        return;
      case 'meta':
        this.meta.set(entry.k, entry.v);
        return;
      case 'put': {
        const data = this.data(entry.o);
        if (data !== undefined) this.save(data, entry.r, data.records.get(entry.r.Id));
        return;
      }
      case 'del': {
        const data = this.data(entry.o);
        const existing = data?.records.get(entry.id);
        if (data === undefined || existing === undefined) return;
        this.unindex(data, existing);
        data.records.delete(entry.id);
        data.deleted.add(entry.id);
        return;
      }
    }
  }
}

export { fieldOf };
