/**
 * The key a record holds in a unique index, already compared as the vendor compares (an email
 * lower-cased, say), or undefined when the record holds none there (no value, or a record
 * the rule leaves out, such as a lead where only users' emails are unique).
 */
export type UniqueKey<R> = (record: R) => string | undefined;

/** A unique value another record already holds: the index and that record's id. */
export interface Clash {
  index: string;
  id: string;
}

/**
 * An emulator's records of one type, by id, in the order they were first put, with unique
 * indexes and archiving. An archived record is kept, keeps its unique values (another record
 * cannot take them) and is left out of {@link live}; what an API answers for it stays the
 * vendor's choice. The table checks nothing by itself: {@link clash} says what a write would
 * break, before the vendor refuses it in its own words or puts the record.
 */
export class RecordTable<R extends { id: string }> {
  private readonly rows = new Map<string, R>();
  private readonly archived = new Set<string>();
  private readonly indexes = new Map<string, { key: UniqueKey<R>; ids: Map<string, string> }>();

  /** `unique`: the unique indexes, by name, each with the key a record holds in it. */
  constructor(unique: Record<string, UniqueKey<R>> = {}) {
    for (const [name, key] of Object.entries(unique)) this.addIndex(name, key);
  }

  /** Adds a unique index (a property made unique later) and indexes the records already held. */
  addIndex(name: string, key: UniqueKey<R>): void {
    if (this.indexes.has(name)) return;
    const ids = new Map<string, string>();
    for (const r of this.rows.values()) {
      const k = key(r);
      if (k !== undefined) ids.set(k, r.id);
    }
    this.indexes.set(name, { key, ids });
  }

  /** Whether `name` is a unique index. */
  hasIndex(name: string): boolean {
    return this.indexes.has(name);
  }

  /** The unique indexes' names, in the order they were added. */
  indexNames(): string[] {
    return [...this.indexes.keys()];
  }

  get size(): number {
    return this.rows.size;
  }

  /** The record with this id, archived or not. */
  get(id: string): R | undefined {
    return this.rows.get(id);
  }

  /** Every record, archived ones included, in the order they were first put. */
  all(): R[] {
    return [...this.rows.values()];
  }

  /** The records not archived, in the order they were first put. */
  live(): R[] {
    return this.all().filter((r) => !this.archived.has(r.id));
  }

  /** The record holding `key` in index `index` (archived or not), if any. */
  byKey(index: string, key: string): R | undefined {
    const id = this.indexes.get(index)?.ids.get(key);
    return id === undefined ? undefined : this.rows.get(id);
  }

  /**
   * The first unique index, in the order they were added, in which another record than
   * `self` (archived ones included) holds the key `candidate` holds; undefined when none does.
   */
  clash(candidate: R, self: string | undefined = candidate.id): Clash | undefined {
    for (const [index, { key, ids }] of this.indexes) {
      const k = key(candidate);
      const owner = k === undefined ? undefined : ids.get(k);
      if (owner !== undefined && owner !== self) return { index, id: owner };
    }
    return undefined;
  }

  /** Adds or replaces a record by its id; its keys in each index replace the ones it held before. */
  put(record: R): void {
    this.unindex(this.rows.get(record.id));
    this.rows.set(record.id, record);
    for (const { key, ids } of this.indexes.values()) {
      const k = key(record);
      if (k !== undefined) ids.set(k, record.id);
    }
  }

  /** Removes a record (archived or not) and frees its unique keys; the record removed, if there was one. */
  delete(id: string): R | undefined {
    const record = this.rows.get(id);
    this.unindex(record);
    this.rows.delete(id);
    this.archived.delete(id);
    return record;
  }

  /** Archives or unarchives a record held; a record not held is left alone. */
  setArchived(id: string, archived: boolean): void {
    if (archived && this.rows.has(id)) this.archived.add(id);
    else this.archived.delete(id);
  }

  isArchived(id: string): boolean {
    return this.archived.has(id);
  }

  private unindex(record: R | undefined): void {
    if (record === undefined) return;
    for (const { key, ids } of this.indexes.values()) {
      const k = key(record);
      if (k !== undefined && ids.get(k) === record.id) ids.delete(k);
    }
  }
}
