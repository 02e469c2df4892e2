/**
 * Values as Salesforce reads them. A JSON body whose value cannot become the field's type,
 * or that names a field the object does not have, is refused as a whole (400
 * JSON_PARSER_ERROR / INVALID_FIELD); a CSV row of a Bulk API job fails alone
 * (INVALID_TYPE_ON_FIELD_IN_RECORD). What a record breaks once its values are read —
 * required fields, restricted picklists, lengths, read-only fields, invalid emails — is
 * that record's error.
 */
import { ApiError, jsonParserError, recordError, type RecordError } from './errors.js';
import { fieldOf, requiredOnCreate, type FieldDef, type SObjectDef } from './schema.js';
import { isIdShaped, sfDateTime, type FieldValue } from './store.js';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/;
const NUMBER = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Reads a value of `field` from text (a CSV cell, or a JSON string); undefined when it is not one. */
function fromText(field: FieldDef, text: string): FieldValue | undefined {
  switch (field.type) {
    case 'boolean': {
      const t = text.trim().toLowerCase();
      return t === 'true' || t === '1' ? true : t === 'false' || t === '0' ? false : undefined;
    }
    case 'int':
    case 'double':
    case 'currency':
    case 'percent':
      if (!NUMBER.test(text)) return undefined;
      return field.type === 'int' && !Number.isInteger(Number(text)) ? undefined : Number(text);
    case 'date':
      return DATE.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`)) ? text : undefined;
    case 'datetime': {
      if (!DATETIME.test(text)) return undefined;
      const zoned = /(Z|[+-]\d{2}:?\d{2})$/.test(text) ? text.replace(/([+-]\d{2})(\d{2})$/, '$1:$2') : `${text}Z`;
      const ms = Date.parse(zoned);
      return Number.isNaN(ms) ? undefined : sfDateTime(ms);
    }
    default:
      return text;
  }
}

/**
 * The values of a JSON record, by their fields' names, or the error that refuses the whole
 * request. `attributes` is not a field; `skip` names fields the caller handles (an upsert's
 * key in the URL).
 */
export function readJsonRecord(object: SObjectDef, record: Record<string, unknown>): Record<string, FieldValue> {
  const values: Record<string, FieldValue> = {};
  for (const [name, raw] of Object.entries(record)) {
    if (name === 'attributes') continue;
    const field = fieldOf(object, name);
    if (field === undefined) throw new ApiError(400, 'INVALID_FIELD', `No such column '${name}' on sobject of type ${object.name}`);
    if (raw === null) {
      values[field.name] = null;
      continue;
    }
    let value: FieldValue | undefined;
    if (typeof raw === 'string') value = fromText(field, raw);
    else if (typeof raw === 'number') value = field.type === 'boolean' || field.type === 'date' || field.type === 'datetime' ? undefined : fromText(field, String(raw));
    else if (typeof raw === 'boolean') value = field.type === 'boolean' ? raw : field.type === 'string' || field.type === 'textarea' ? String(raw) : undefined;
    if (value === undefined) {
      const kind = typeof raw === 'string' ? 'VALUE_STRING' : typeof raw === 'number' ? 'VALUE_NUMBER' : typeof raw === 'boolean' ? 'VALUE_TRUE' : 'START_OBJECT';
      throw jsonParserError(`Cannot deserialize instance of ${field.type} from ${kind} value ${typeof raw === 'object' ? JSON.stringify(raw) : String(raw)} or request may be missing a required field`);
    }
    values[field.name] = value;
  }
  return values;
}

/**
 * The values of a CSV row by column, or the row's error. An empty cell sets nothing;
 * `#N/A` sets the field to null (Bulk API 2.0's way of clearing a field).
 */
export function readCsvRow(columns: FieldDef[], row: string[]): { values: Record<string, FieldValue> } | { error: RecordError } {
  const values: Record<string, FieldValue> = {};
  for (let i = 0; i < columns.length; i++) {
    const field = columns[i]!;
    const text = row[i] ?? '';
    if (text === '') continue;
    if (text === '#N/A') {
      values[field.name] = null;
      continue;
    }
    const value = fromText(field, text);
    if (value === undefined) {
      return { error: recordError('INVALID_TYPE_ON_FIELD_IN_RECORD', `${field.label}: value not of required type: ${text}`, [field.name]) };
    }
    values[field.name] = value;
  }
  return { values };
}

/**
 * What Salesforce refuses in a record's values, in the order it checks: fields the
 * operation may not set, malformed ids, lengths, restricted picklists, emails, and (on
 * create, or when an update clears one) required fields.
 */
export function checkValues(object: SObjectDef, values: Record<string, FieldValue>, creating: boolean): RecordError[] {
  const errors: RecordError[] = [];
  const readOnly = Object.keys(values).filter((name) => {
    const f = object.fields.get(name)!;
    return creating ? !f.createable : !f.updateable;
  });
  if (readOnly.length > 0) {
    errors.push(recordError('INVALID_FIELD_FOR_INSERT_UPDATE', `Unable to create/update fields: ${readOnly.join(', ')}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`, readOnly));
  }
  for (const [name, value] of Object.entries(values)) {
    const f = object.fields.get(name)!;
    if (value === null || readOnly.includes(name)) continue;
    if ((f.type === 'reference' || f.type === 'id') && !isIdShaped(String(value))) {
      errors.push(recordError('MALFORMED_ID', `${f.label}: id value of incorrect type: ${String(value)}`, [name]));
    } else if (typeof value === 'string' && f.length > 0 && value.length > f.length) {
      errors.push(recordError('STRING_TOO_LONG', `${f.label}: data value too large: ${value.slice(0, 40)} (max length=${f.length})`, [name]));
    } else if (f.type === 'picklist' && f.restrictedPicklist && !f.picklistValues.includes(String(value))) {
      errors.push(recordError('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', `${f.label}: bad value for restricted picklist field: ${String(value)}`, [name]));
    } else if (f.type === 'multipicklist' && f.restrictedPicklist && String(value).split(';').some((v) => !f.picklistValues.includes(v))) {
      errors.push(recordError('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', `${f.label}: bad value for restricted picklist field: ${String(value)}`, [name]));
    } else if (f.type === 'email' && !EMAIL.test(String(value))) {
      errors.push(recordError('INVALID_EMAIL_ADDRESS', `${f.label}: invalid email address: ${String(value)}`, [name]));
    } else if (typeof value === 'number' && f.type !== 'int' && Math.abs(value) >= 10 ** (f.precision - f.scale)) {
      errors.push(recordError('NUMBER_OUTSIDE_VALID_RANGE', `${f.label}: value outside of valid range on numeric field: ${value}`, [name]));
    }
  }
  const missing = [...object.fields.values()]
    .filter((f) => (creating ? requiredOnCreate(f) && (values[f.name] ?? null) === null : f.name in values && values[f.name] === null && !f.nillable && f.updateable))
    .map((f) => f.name);
  if (missing.length > 0) errors.push(recordError('REQUIRED_FIELD_MISSING', `Required fields are missing: [${missing.join(', ')}]`, missing));
  return errors;
}

/** The defaults a create fills in (a picklist's default value). */
export function defaultsOf(object: SObjectDef, values: Record<string, FieldValue>): Record<string, FieldValue> {
  const out = { ...values };
  for (const f of object.fields.values()) {
    if (f.createable && f.defaultValue !== undefined && (out[f.name] ?? null) === null) out[f.name] = f.defaultValue;
    if (f.type === 'boolean' && f.createable && out[f.name] === undefined) out[f.name] = false;
  }
  return out;
}
