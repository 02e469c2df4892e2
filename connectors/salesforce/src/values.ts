import { instantOf, showValue, type Value } from '@outflow/core';

/** What the connector knows of one field, from describe. */
export interface SfField {
  name: string;
  label: string;
  /** Salesforce's type: string, email, picklist, boolean, int, double, currency, date, datetime, reference … */
  type: string;
  length: number;
  nillable: boolean;
  createable: boolean;
  updateable: boolean;
  externalId: boolean;
  idLookup: boolean;
  unique: boolean;
  defaultedOnCreate: boolean;
  picklistValues: string[];
  restrictedPicklist: boolean;
}

/** An sObject's fields by name, as describe lists them. */
export interface ObjectSchema {
  name: string;
  fields: Map<string, SfField>;
}

export type Coerced = { ok: true; value: string | number | boolean | null } | { ok: false; reason: string };

/** Reads a describe answer. */
export function schemaOf(describe: Record<string, unknown>): ObjectSchema {
  const fields = new Map<string, SfField>();
  for (const raw of (describe['fields'] as Record<string, unknown>[] | undefined) ?? []) {
    const f: SfField = {
      name: String(raw['name']),
      label: String(raw['label'] ?? raw['name']),
      type: String(raw['type']),
      length: Number(raw['length'] ?? 0),
      nillable: raw['nillable'] === true,
      createable: raw['createable'] === true,
      updateable: raw['updateable'] === true,
      externalId: raw['externalId'] === true,
      idLookup: raw['idLookup'] === true,
      unique: raw['unique'] === true,
      defaultedOnCreate: raw['defaultedOnCreate'] === true,
      picklistValues: ((raw['picklistValues'] as { value: string; active?: boolean }[] | undefined) ?? []).filter((p) => p.active !== false).map((p) => p.value),
      restrictedPicklist: raw['restrictedPicklist'] === true,
    };
    fields.set(f.name, f);
  }
  return { name: String(describe['name']), fields };
}

/** A field by name, without regard to case, as Salesforce finds them. */
export function fieldIn(schema: ObjectSchema, name: string): SfField | undefined {
  const exact = schema.fields.get(name);
  if (exact !== undefined) return exact;
  const lower = name.toLowerCase();
  for (const f of schema.fields.values()) if (f.name.toLowerCase() === lower) return f;
  return undefined;
}

/** Whether a create must carry a value for the field. */
export function requiredOnCreate(f: SfField): boolean {
  return f.createable && !f.nillable && !f.defaultedOnCreate;
}

/** Whether records can be found, and upserted, by the field. */
export function isMatchField(f: SfField): boolean {
  return f.name === 'Id' || f.externalId || f.idLookup;
}

const DAY_MS = 86_400_000;
const NUMBER = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;



/**
 * Turns a model value into what Salesforce takes for `field`, or says why Salesforce would
 * refuse it. `null` (and an empty string) clears the field.
 *
 * - boolean: booleans, `true`/`false` (any case), 1/0;
 * - int: integers (and integral numeric strings); double, currency, percent: finite numbers;
 * - date: `YYYY-MM-DD`, or a timestamp at midnight UTC;
 * - datetime: ISO 8601 (zone-less read as UTC) or epoch milliseconds, sent in UTC;
 * - picklist: with a restricted picklist, one of its values; multipicklist: an array or `a;b`;
 * - text types: their text, no longer than the field's length;
 * - reference: a 15- or 18-character id.
 */
export function coerce(field: SfField, value: Value, object: string): Coerced {
  const where = `field ${field.name} of ${object}`;
  if (value === null || value === '') {
    if (!field.nillable && field.type !== 'boolean') return { ok: false, reason: `${where} is required and cannot be cleared` };
    return { ok: true, value: null };
  }
  switch (field.type) {
    case 'boolean': {
      if (typeof value === 'boolean') return { ok: true, value };
      const text = String(value).trim().toLowerCase();
      if (text === 'true' || text === '1') return { ok: true, value: true };
      if (text === 'false' || text === '0') return { ok: true, value: false };
      return { ok: false, reason: `${where} is a checkbox (true or false), and ${showValue(value)} is not one` };
    }
    case 'int':
    case 'double':
    case 'currency':
    case 'percent': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && NUMBER.test(value) ? Number(value) : Number.NaN;
      if (!Number.isFinite(n)) return { ok: false, reason: `${where} is a number (${field.type}), and ${showValue(value)} is not one` };
      if (field.type === 'int' && !Number.isInteger(n)) return { ok: false, reason: `${where} is a whole number, and ${showValue(value)} is not one` };
      return { ok: true, value: n };
    }
    case 'date': {
      const ms = instantOf(value);
      if (ms === undefined || Number.isNaN(ms)) return { ok: false, reason: `${where} is a date (YYYY-MM-DD), and ${showValue(value)} is not one` };
      if (ms % DAY_MS !== 0) return { ok: false, reason: `${where} is a date, and ${showValue(value)} has a time of day (map a DATE column, or use a datetime field)` };
      return { ok: true, value: new Date(ms).toISOString().slice(0, 10) };
    }
    case 'datetime': {
      const ms = instantOf(value);
      if (ms === undefined || Number.isNaN(ms)) return { ok: false, reason: `${where} is a datetime (ISO 8601 or epoch milliseconds), and ${showValue(value)} is not one` };
      return { ok: true, value: new Date(ms).toISOString() };
    }
    case 'multipicklist': {
      const values = Array.isArray(value) ? value.map(String) : String(value).split(';');
      const bad = field.restrictedPicklist ? values.filter((v) => !field.picklistValues.includes(v)) : [];
      if (bad.length > 0) return { ok: false, reason: `${where}: ${bad.map((b) => JSON.stringify(b)).join(', ')} is not one of its values (${field.picklistValues.slice(0, 20).join(', ')})` };
      return { ok: true, value: values.join(';') };
    }
    case 'reference':
    case 'id': {
      const text = String(value);
      if (!/^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$/.test(text)) return { ok: false, reason: `${where} takes a Salesforce id (15 or 18 letters and digits), and ${showValue(value)} is not one` };
      return { ok: true, value: text };
    }
    default: {
      const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
      if (field.type === 'picklist' && field.restrictedPicklist && !field.picklistValues.includes(text)) {
        return { ok: false, reason: `${where}: ${JSON.stringify(text)} is not one of its values (${field.picklistValues.slice(0, 20).join(', ')})` };
      }
      if (field.length > 0 && text.length > field.length) return { ok: false, reason: `${where} holds at most ${field.length} characters; this value has ${text.length}` };
      return { ok: true, value: text };
    }
  }
}

/** A coerced value as a Bulk API 2.0 CSV cell: `#N/A` clears the field. */
export function csvCell(value: string | number | boolean | null): string {
  return value === null ? '#N/A' : String(value);
}
