/**
 * The portal's data: object types with their property definitions, and their records in the
 * kit's RecordTable with a unique index per unique property. Every change is also queued for
 * the JSON-lines log in `dataDir`, which is appended before the request that made it is
 * answered.
 */
import { jsonLinesLog, RecordTable } from '@outflow/core/emulator-kit';
import {
  CUSTOM_OBJECT_SYSTEM_PROPERTIES,
  defineProperty,
  modifiedProperty,
  SANDBOX_CONTACT_PROPERTIES,
  STANDARD_IDS,
  STANDARD_OBJECTS,
  type PropertyDefinition,
  type PropertySpec,
} from './properties.js';

/** A record held by the emulator. */
export interface StoredRecord {
  id: string;
  properties: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

/** A record as the objects API returns it. */
export function view(r: StoredRecord, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: r.id, properties: { ...r.properties }, createdAt: r.createdAt, updatedAt: r.updatedAt, archived: false, ...extra };
}

/** Only the `wanted` properties of a record, null where it has none. */
export function pick(r: StoredRecord, wanted: readonly string[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const p of wanted) out[p] = r.properties[p] ?? null;
  return out;
}

/** A record's view with only the `wanted` properties, or all of them when none are asked for. */
export function viewWith(r: StoredRecord, wanted: readonly string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const v = view(r, extra);
  if (wanted.length > 0) v['properties'] = pick(r, wanted);
  return v;
}

/** A custom object type to create at start, as `POST /crm-object-schemas/v3/schemas` would. */
export interface CustomObjectSpec {
  /** The object's name, e.g. `pets`; it is also reachable as `p_pets` and by its objectTypeId. */
  name: string;
  properties: PropertySpec[];
  primaryDisplayProperty?: string;
}

/** One object type and its records. */
export interface ObjectStore {
  name: string;
  objectTypeId: string;
  custom: boolean;
  primaryDisplayProperty: string;
  props: Map<string, PropertyDefinition>;
  /** The records, with a unique index per unique property (keyed by the value as {@link normalise} compares it). */
  records: RecordTable<StoredRecord>;
}

/**
 * One write the emulator applied through the API, in order: a record created, changed or
 * archived. Writes replayed from `dataDir` are not in it, and a write that changed nothing
 * is not either, so a record created twice shows as two `create`s.
 */
export interface AppliedWrite {
  op: 'create' | 'update' | 'archive';
  /** The object type's name (`contacts`, or a custom object's name). */
  object: string;
  id: string;
  /** For `create`: the values the record was created with. */
  properties?: Record<string, string>;
}

type LogEntry =
  | { t: 'put'; o: string; r: StoredRecord }
  | { t: 'del'; o: string; id: string }
  | { t: 'prop'; o: string; d: PropertyDefinition }
  | { t: 'schema'; name: string; objectTypeId: string; primaryDisplayProperty: string };

/** How HubSpot names one record of a type in messages: `Contact`, `Company`, `Deal`, `Ticket`; `Object` for custom objects. */
export function singularOf(object: ObjectStore): string {
  return object.custom ? 'Object' : object.name.replace(/ies$/, 'y').replace(/s$/, '').replace(/^\w/, (c) => c.toUpperCase());
}

/** Unique values compare as HubSpot compares them: emails without regard to case. */
export function normalise(property: string, value: string): string {
  return property === 'email' ? value.toLowerCase() : value;
}

export class CrmStore {
  /** By name, by objectTypeId and, for custom objects, by `p_` name. */
  private readonly objects = new Map<string, ObjectStore>();
  private nextId = 1;
  private nextCustomId = 1;
  private pending: LogEntry[] = [];
  /** Every write applied through the API since start; see {@link AppliedWrite}. */
  readonly applied: AppliedWrite[] = [];

  private constructor(private readonly logPath: string | undefined) {
    for (const [name, specs] of Object.entries(STANDARD_OBJECTS)) {
      const all = name === 'contacts' ? [...specs, ...SANDBOX_CONTACT_PROPERTIES] : specs;
      this.addObject(name, STANDARD_IDS[name]!, false, name === 'contacts' ? 'email' : 'hs_object_id', all);
    }
  }

  /** A portal with the standard objects, the log in `logPath` replayed and `customObjects` created if missing. */
  static open(logPath: string | undefined, customObjects: readonly CustomObjectSpec[]): CrmStore {
    const store = new CrmStore(logPath);
    if (logPath !== undefined) jsonLinesLog.replay<LogEntry>(logPath, 'hubspot', (entry) => store.apply(entry));
    store.pending = [];
    store.applied.length = 0;
    for (const custom of customObjects) {
      if (!store.objects.has(custom.name)) store.createSchema(custom.name, custom.properties, custom.primaryDisplayProperty);
    }
    store.flush();
    return store;
  }

  /** Appends what changed since the last flush, so an acknowledged write survives a crash. */
  flush(): void {
    const entries = this.pending;
    this.pending = [];
    if (this.logPath !== undefined) jsonLinesLog.append(this.logPath, entries);
  }

  /** An object type by name, `p_` name or objectTypeId. */
  object(objectType: string): ObjectStore | undefined {
    return this.objects.get(objectType);
  }

  has(objectType: string): boolean {
    return this.objects.has(objectType);
  }

  /** Every custom object type, once each. */
  customObjects(): ObjectStore[] {
    return [...new Set(this.objects.values())].filter((s) => s.custom);
  }

  createSchema(name: string, properties: PropertySpec[], primaryDisplayProperty?: string): ObjectStore {
    const objectTypeId = `2-${this.nextCustomId++}`;
    const primary = primaryDisplayProperty ?? properties[0]?.name ?? 'hs_object_id';
    const store = this.addObject(name, objectTypeId, true, primary, [...CUSTOM_OBJECT_SYSTEM_PROPERTIES, ...properties]);
    this.pending.push({ t: 'schema', name, objectTypeId, primaryDisplayProperty: primary });
    for (const def of store.props.values()) this.pending.push({ t: 'prop', o: name, d: def });
    return store;
  }

  addProperty(store: ObjectStore, def: PropertyDefinition): void {
    this.putProperty(store, def);
    this.pending.push({ t: 'prop', o: store.name, d: def });
  }

  /** The record with this id, or by a unique property when `idProperty` names one. */
  lookup(store: ObjectStore, id: string, idProperty?: string): StoredRecord | undefined {
    if (idProperty === undefined || idProperty === 'hs_object_id') return store.records.get(id);
    return store.records.byKey(idProperty, normalise(idProperty, id));
  }

  /** Another record already holding one of `values`' unique values, if any. */
  uniqueClash(store: ObjectStore, values: Record<string, string>, self?: string): { property: string; id: string } | undefined {
    const clash = store.records.clash({ id: '', properties: values, createdAt: '', updatedAt: '' }, self);
    return clash === undefined ? undefined : { property: clash.index, id: clash.id };
  }

  insert(store: ObjectStore, values: Record<string, string>): StoredRecord {
    const id = String(this.nextId++);
    const at = new Date().toISOString();
    const properties: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) if (v !== '') properties[k] = v;
    properties['hs_object_id'] = id;
    properties[store.custom ? 'hs_createdate' : 'createdate'] = at;
    properties[modifiedProperty(store.custom ? '' : store.name)] = at;
    const record: StoredRecord = { id, properties, createdAt: at, updatedAt: at };
    this.save(store, record);
    this.applied.push({ op: 'create', object: store.name, id, properties: { ...properties } });
    return record;
  }

  /** Applies values (an empty string clears); a record whose values do not change keeps its modification time. */
  patch(store: ObjectStore, existing: StoredRecord, values: Record<string, string>): StoredRecord {
    const properties = { ...existing.properties };
    let changed = false;
    for (const [k, v] of Object.entries(values)) {
      if (v === '') {
        if (k in properties) {
          delete properties[k];
          changed = true;
        }
      } else if (properties[k] !== v) {
        properties[k] = v;
        changed = true;
      }
    }
    if (!changed) return existing;
    const at = new Date().toISOString();
    properties[modifiedProperty(store.custom ? '' : store.name)] = at;
    const record = { ...existing, properties, updatedAt: at };
    this.save(store, record);
    this.applied.push({ op: 'update', object: store.name, id: record.id });
    return record;
  }

  remove(store: ObjectStore, id: string): void {
    if (store.records.delete(id) === undefined) return;
    this.pending.push({ t: 'del', o: store.name, id });
    this.applied.push({ op: 'archive', object: store.name, id });
  }

  private addObject(name: string, objectTypeId: string, custom: boolean, primaryDisplayProperty: string, specs: PropertySpec[]): ObjectStore {
    const store: ObjectStore = { name, objectTypeId, custom, primaryDisplayProperty, props: new Map(), records: new RecordTable() };
    for (const spec of specs) this.putProperty(store, defineProperty(spec));
    this.objects.set(name, store);
    this.objects.set(objectTypeId, store);
    if (custom) this.objects.set(`p_${name}`, store);
    return store;
  }

  private putProperty(store: ObjectStore, def: PropertyDefinition): void {
    store.props.set(def.name, def);
    if (def.hasUniqueValue) store.records.addIndex(def.name, (r) => (r.properties[def.name] ? normalise(def.name, r.properties[def.name]) : undefined));
  }

  private save(store: ObjectStore, record: StoredRecord): void {
    store.records.put(record);
    this.pending.push({ t: 'put', o: store.name, r: record });
  }

  private apply(entry: LogEntry): void {
    switch (entry.t) {
      case 'schema': {
        const n = Number(entry.objectTypeId.split('-')[1]);
        this.nextCustomId = Math.max(this.nextCustomId, n + 1);
        if (!this.objects.has(entry.name)) this.addObject(entry.name, entry.objectTypeId, true, entry.primaryDisplayProperty, []);
        return;
      }
      case 'prop': {
        const store = this.objects.get(entry.o);
        if (store !== undefined) this.putProperty(store, entry.d);
        return;
      }
      case 'put': {
        const store = this.objects.get(entry.o);
        if (store === undefined) return;
        this.save(store, entry.r);
        this.nextId = Math.max(this.nextId, Number(entry.r.id) + 1);
        return;
      }
      case 'del': {
        const store = this.objects.get(entry.o);
        if (store !== undefined) this.remove(store, entry.id);
        return;
      }
    }
  }
}
