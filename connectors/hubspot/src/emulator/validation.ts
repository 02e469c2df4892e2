/**
 * Validation as HubSpot does it: property values are checked against the property
 * definitions. A batch with any refused value is refused as a whole (400
 * VALIDATION_ERROR, nothing applied), with one detail per refused value naming its
 * property; see batch.ts for the sources.
 */
import { checkValues } from '@outflow/core/emulator-kit';
import { HttpError } from './errors.js';
import { PROPERTY_TYPES, type PropertyDefinition, type PropertySpec, type PropertyType } from './properties.js';
import type { ObjectStore } from './store.js';

/** One property value HubSpot would refuse, with its error code. */
export interface PropertyProblem {
  message: string;
  code: string;
  name: string;
}

const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;

export function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function problem(message: string, code: string, name: string): { problem: PropertyProblem } {
  return { problem: { message, code, name } };
}

/**
 * Checks one property value as HubSpot would and returns the value as stored, or a problem.
 * Values arrive as strings (the SDK sends strings); numbers and booleans are accepted too.
 */
export function checkValue(objectType: string, def: PropertyDefinition, raw: unknown): { value: string } | { problem: PropertyProblem } {
  const name = def.name;
  if (raw === null || raw === undefined || raw === '') return { value: '' };
  if (typeof raw === 'object') return problem(`${JSON.stringify(raw)} is not a valid value for ${name}`, 'INVALID_PROPERTY_VALUE', name);
  const value = String(raw);
  switch (def.type) {
    case 'number':
      if (!/^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value.trim())) {
        return problem(`${JSON.stringify(value)} is not a valid number`, 'INVALID_INTEGER', name);
      }
      return { value: value.trim() };
    case 'bool':
      if (value !== 'true' && value !== 'false') {
        return problem(`${JSON.stringify(value)} is not a valid boolean; use true or false`, 'INVALID_BOOLEAN', name);
      }
      return { value };
    case 'date': {
      if (/^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(Date.parse(`${value}T00:00:00Z`))) return { value };
      if (/^\d+$/.test(value) && Number(value) % 86_400_000 === 0) return { value: new Date(Number(value)).toISOString().slice(0, 10) };
      return problem(
        `${JSON.stringify(value)} is not a valid date; a date property takes YYYY-MM-DD or a timestamp at midnight UTC in milliseconds`,
        'INVALID_DATE',
        name,
      );
    }
    case 'datetime': {
      const ms = /^\d+$/.test(value) ? Number(value) : /^\d{4}-\d{2}-\d{2}(T.*)?$/.test(value) ? Date.parse(value) : NaN;
      if (Number.isNaN(ms)) {
        return problem(
          `${JSON.stringify(value)} is not a valid datetime; use an ISO 8601 timestamp or milliseconds since the epoch`,
          'INVALID_DATETIME',
          name,
        );
      }
      return { value: new Date(ms).toISOString() };
    }
    case 'enumeration': {
      const allowed = def.options.map((o) => o.value);
      const values = def.fieldType === 'checkbox' ? value.split(';') : [value];
      const bad = values.find((v) => !allowed.includes(v));
      if (bad !== undefined) return problem(`${bad} was not one of the allowed options: [${allowed.join(', ')}]`, 'INVALID_OPTION', name);
      return { value };
    }
    default:
      if (objectType === 'contacts' && name === 'email' && !EMAIL.test(value)) {
        return problem(`Email address ${value} is invalid`, 'INVALID_EMAIL', name);
      }
      if (value.length > 65_536) return problem(`${name} is longer than 65536 characters`, 'INVALID_LENGTH', name);
      return { value };
  }
}

/** Validates an input's properties (the kit's checkValues, in HubSpot's terms); returns the values to store or every problem found. */
export function checkProperties(store: ObjectStore, properties: unknown): { values: Record<string, string> } | { problems: PropertyProblem[] } {
  if (properties === undefined) return { values: {} };
  if (!isObject(properties)) return { problems: [{ message: 'properties must be an object', code: 'INVALID_PROPERTIES', name: 'properties' }] };
  return checkValues<PropertyDefinition, PropertyProblem, string>(properties, {
    find: (name) => store.props.get(name),
    readOnly: (def) => def.modificationMetadata.readOnlyValue,
    read: (def, raw) => checkValue(store.name, def, raw),
    problem: (issue, name) =>
      issue === 'unknown'
        ? { message: `Property "${name}" does not exist`, code: 'PROPERTY_DOESNT_EXIST', name }
        : { message: `"${name}" is a read only property; its value cannot be set.`, code: 'READ_ONLY_VALUE', name },
  });
}

/**
 * HubSpot's refusal of property values, for one object or a whole batch: 400
 * VALIDATION_ERROR whose message lists every refused value as JSON (`isValid`, `message`,
 * `error`, `name`) and whose `errors` hold one detail per value with its code and
 * `context.propertyName`. Nothing names the input a value came from.
 */
export function validationFailure(problems: PropertyProblem[]): HttpError {
  const listed = problems.map((p) => ({ isValid: false, message: p.message, error: p.code, name: p.name }));
  return new HttpError(400, 'VALIDATION_ERROR', `Property values were not valid: ${JSON.stringify(listed)}`, {
    errors: problems.map((p) => ({ message: p.message, code: p.code, context: { propertyName: [p.name] } })),
  });
}

/** Reads a property definition from a properties-API or schemas-API request body. */
export function propertySpec(p: unknown, where: string): PropertySpec {
  const refuse = (message: string) => new HttpError(400, 'VALIDATION_ERROR', message);
  if (!isObject(p)) throw refuse(`${where} must be an object`);
  const name = p['name'];
  if (typeof name !== 'string' || !/^[a-z][a-z0-9_]*$/.test(name)) {
    throw refuse(`${where}.name must start with a lower-case letter and hold only lower-case letters, digits and underscores`);
  }
  if (typeof p['type'] !== 'string' || !PROPERTY_TYPES.includes(p['type'] as PropertyType)) {
    throw refuse(`${where}.type must be one of ${PROPERTY_TYPES.join(', ')}`);
  }
  if (typeof p['label'] !== 'string' || p['label'] === '') throw refuse(`${where}.label is required`);
  const options = Array.isArray(p['options'])
    ? p['options'].map((o: unknown, i) => {
        if (!isObject(o) || typeof o['value'] !== 'string' || typeof o['label'] !== 'string') {
          throw refuse(`${where}.options[${i}] needs a string label and value`);
        }
        return { label: o['label'], value: o['value'] };
      })
    : undefined;
  const spec: PropertySpec = { name, type: p['type'] as PropertyType, label: p['label'] };
  if (typeof p['fieldType'] === 'string') spec.fieldType = p['fieldType'];
  if (typeof p['groupName'] === 'string') spec.groupName = p['groupName'];
  if (typeof p['description'] === 'string') spec.description = p['description'];
  if (options !== undefined) spec.options = options;
  if (p['hasUniqueValue'] === true) spec.hasUniqueValue = true;
  return spec;
}
