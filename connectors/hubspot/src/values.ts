import { instantOf, showValue, type Value } from '@outflow/core';

/** What the connector knows of one HubSpot property, from the properties API. */
export interface PropertyInfo {
  name: string;
  /** HubSpot's type: string, number, date, datetime, enumeration, bool, phone_number … */
  type: string;
  fieldType: string;
  /** Option values of an enumeration. */
  options: string[];
  readOnly: boolean;
  unique: boolean;
}

export type Coerced = { ok: true; value: string } | { ok: false; reason: string };

const DAY_MS = 86_400_000;



/**
 * Turns a model value into the string HubSpot expects for `property`, or says why HubSpot
 * would refuse it. `null` clears the property (HubSpot clears on an empty string).
 *
 * - number: finite numbers and numeric strings;
 * - bool: booleans, `true`/`false` (any case), 1/0;
 * - date: `YYYY-MM-DD` or a timestamp at midnight UTC, sent as `YYYY-MM-DD`;
 * - datetime: ISO 8601 (zone-less read as UTC) or epoch milliseconds, sent as ISO 8601;
 * - enumeration: one of the property's options (several joined by `;` for checkboxes);
 * - anything else: its text.
 */
export function coerce(property: PropertyInfo, value: Value, object: string): Coerced {
  const where = `property "${property.name}" of ${object}`;
  if (value === null || value === '') return { ok: true, value: '' };
  switch (property.type) {
    case 'number': {
      if (typeof value === 'number' && Number.isFinite(value)) return { ok: true, value: String(value) };
      if (typeof value === 'string' && /^\s*-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(value)) return { ok: true, value: value.trim() };
      return { ok: false, reason: `${where} is a number, and ${showValue(value)} is not one` };
    }
    case 'bool': {
      if (typeof value === 'boolean') return { ok: true, value: String(value) };
      const text = String(value).trim().toLowerCase();
      if (text === 'true' || text === '1') return { ok: true, value: 'true' };
      if (text === 'false' || text === '0') return { ok: true, value: 'false' };
      return { ok: false, reason: `${where} is a boolean (true or false), and ${showValue(value)} is not one` };
    }
    case 'date': {
      const ms = instantOf(value);
      if (ms === undefined || Number.isNaN(ms)) {
        return { ok: false, reason: `${where} is a date (YYYY-MM-DD), and ${showValue(value)} is not one` };
      }
      if (ms % DAY_MS !== 0) {
        return {
          ok: false,
          reason: `${where} is a date, and HubSpot takes only midnight UTC; ${showValue(value)} has a time of day (map a DATE column, or a datetime property)`,
        };
      }
      return { ok: true, value: new Date(ms).toISOString().slice(0, 10) };
    }
    case 'datetime': {
      const ms = instantOf(value);
      if (ms === undefined || Number.isNaN(ms)) {
        return { ok: false, reason: `${where} is a datetime (ISO 8601 or epoch milliseconds), and ${showValue(value)} is not one` };
      }
      return { ok: true, value: new Date(ms).toISOString() };
    }
    case 'enumeration': {
      const multi = property.fieldType === 'checkbox';
      const values = Array.isArray(value) ? value.map((v) => String(v)) : multi ? String(value).split(';') : [String(value)];
      if (values.length > 1 && !multi) {
        return { ok: false, reason: `${where} takes one option, and ${showValue(value)} has ${values.length}` };
      }
      const bad = values.filter((v) => !property.options.includes(v));
      if (bad.length > 0) {
        const allowed = property.options.length > 20 ? `${property.options.slice(0, 20).join(', ')}, …` : property.options.join(', ');
        return { ok: false, reason: `${where}: ${bad.map((b) => JSON.stringify(b)).join(', ')} is not one of its options (${allowed || 'none defined'})` };
      }
      return { ok: true, value: values.join(';') };
    }
    default:
      if (typeof value === 'object') return { ok: true, value: JSON.stringify(value) };
      return { ok: true, value: String(value) };
  }
}
