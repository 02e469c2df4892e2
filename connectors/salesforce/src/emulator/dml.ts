/**
 * Record operations as Salesforce applies them, one record at a time, each answering a
 * SaveResult (UpsertResult for upserts): create, update by Id, upsert on an external id or
 * idLookup field, delete. sObject Collections, the single-record resources and Bulk API 2.0
 * jobs all apply records through these.
 */
import { recordError, type RecordError } from './errors.js';
import { fieldOf, type FieldDef, type SObjectDef } from './schema.js';
import { isIdShaped, to18, type FieldValue, type OrgStore, type StoredRecord, type Via } from './store.js';
import { checkValues, defaultsOf } from './validation.js';

export interface SaveResult {
  id?: string;
  success: boolean;
  errors: RecordError[];
  /** Upserts only: whether the record was created. */
  created?: boolean;
}

const failed = (...errors: RecordError[]): SaveResult => ({ success: false, errors });

/** Another record already holding a value of a unique field, as Salesforce refuses it. */
function uniqueClash(store: OrgStore, object: SObjectDef, values: Record<string, FieldValue>, self?: string): RecordError | undefined {
  for (const f of object.fields.values()) {
    const v = values[f.name];
    if (!f.unique || v === null || v === undefined || v === '') continue;
    const other = store.find(object.name, f, v).find((r) => r.Id !== self);
    if (other !== undefined) return recordError('DUPLICATE_VALUE', `duplicate value found: ${f.name} duplicates value on record with id: ${other.Id}`, []);
  }
  return undefined;
}

export class Dml {
  constructor(
    private readonly store: OrgStore,
    private readonly via: Via,
  ) {}

  create(object: SObjectDef, values: Record<string, FieldValue>): SaveResult {
    if ('Id' in values) return failed(recordError('INVALID_FIELD_FOR_INSERT_UPDATE', 'cannot specify Id in an insert call', ['Id']));
    const full = defaultsOf(object, values);
    const errors = checkValues(object, values, true);
    const clash = errors.length === 0 ? uniqueClash(this.store, object, full) : undefined;
    if (clash !== undefined) errors.push(clash);
    if (errors.length > 0) return failed(...errors);
    const record = this.store.insert(object.name, full, this.via);
    return { id: record.Id, success: true, errors: [] };
  }

  /** The record an update or delete of `id` acts on, or why there is none. */
  private target(object: SObjectDef | undefined, id: unknown): StoredRecord | RecordError {
    if (typeof id !== 'string' || id === '') return recordError('MISSING_ARGUMENT', 'Id not specified in an update call', ['Id']);
    if (!isIdShaped(id)) return recordError('MALFORMED_ID', `${object?.label ?? 'Record'} ID: id value of incorrect type: ${id}`, ['Id']);
    const owner = object ?? this.store.objectOfId(id);
    if (owner === undefined) return recordError('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', []);
    const record = this.store.get(owner.name, id);
    if (record !== undefined) return record;
    if (this.store.wasDeleted(owner.name, id)) return recordError('ENTITY_IS_DELETED', 'entity is deleted', []);
    return recordError('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', []);
  }

  update(object: SObjectDef, id: unknown, values: Record<string, FieldValue>): SaveResult {
    const record = this.target(object, id);
    if (!('Id' in record)) return failed(record);
    const { Id: _ignored, ...rest } = values;
    const errors = checkValues(object, rest, false);
    const clash = errors.length === 0 ? uniqueClash(this.store, object, rest, record.Id) : undefined;
    if (clash !== undefined) errors.push(clash);
    if (errors.length > 0) return failed(...errors);
    this.store.update(object.name, record, rest, this.via);
    return { id: record.Id, success: true, errors: [] };
  }

  /**
   * Creates the record when no record holds `key`'s value, updates it when one does, and
   * refuses when several do (DUPLICATE_EXTERNAL_ID). `Id` as the key updates by id.
   */
  upsert(object: SObjectDef, key: FieldDef, values: Record<string, FieldValue>): SaveResult {
    const value = values[key.name];
    if (value === undefined || value === null || value === '') return failed(recordError('MISSING_ARGUMENT', `${key.name} not specified`, [key.name]));
    if (key.name === 'Id') {
      const result = this.update(object, String(value), values);
      return { ...result, created: false };
    }
    const matches = this.store.find(object.name, key, value);
    if (matches.length > 1) {
      return { ...failed(recordError('DUPLICATE_EXTERNAL_ID', `${key.label}: more than one record found for external id field: [${matches.map((m) => m.Id).join(', ')}]`, [key.name])), created: false };
    }
    if (matches.length === 0) return { ...this.create(object, values), created: true };
    const { [key.name]: _key, ...rest } = values;
    return { ...this.update(object, matches[0]!.Id, rest), created: false };
  }

  delete(object: SObjectDef | undefined, id: string): SaveResult {
    const record = this.target(object, id);
    if (!('Id' in record)) return { id, ...failed(record) };
    const owner = object ?? this.store.objectOfId(record.Id)!;
    this.store.remove(owner.name, to18(record.Id), this.via);
    return { id: record.Id, success: true, errors: [] };
  }
}

export { fieldOf };
