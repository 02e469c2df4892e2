/** The data types of an emulated vendor's attributes (its fields, properties, columns). */
export type AttributeType = 'string' | 'number' | 'integer' | 'float' | 'boolean' | 'date' | 'enumeration';

/** An attribute a vendor's records hold: standard (the vendor's) or custom (the workspace's). */
export interface Attribute {
  name: string;
  type: AttributeType;
  /** The values allowed (a list or enumeration attribute); any value of the type when absent. */
  options?: readonly string[];
  /** Listed, but not writable through the API. */
  readOnly?: boolean;
  /** Defined by the workspace rather than the vendor. */
  custom?: boolean;
  /** No two records hold the same value; a {@link RecordTable} unique index enforces it. */
  unique?: boolean;
}

/** Why a value was refused: no such attribute, a read-only one, a value of another type, a value not among the options. */
export type AttributeIssue = 'unknown' | 'read_only' | 'type' | 'option';

/**
 * Whether a JSON value is of `type`: a string for `string` and `enumeration`, a boolean for
 * `boolean`, a finite number for `number` and `float`, a safe integer for `integer` and for
 * `date` (a timestamp counted from the epoch). null is of no type.
 */
export function fitsType(type: AttributeType, value: unknown): boolean {
  switch (type) {
    case 'string':
    case 'enumeration':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'number':
    case 'float':
      return typeof value === 'number' && Number.isFinite(value);
    default:
      return Number.isSafeInteger(value);
  }
}

/** The values as stored, or every problem found. */
export type CheckedValues<P, V = unknown> = { values: Record<string, V> } | { problems: P[] };

/** A value as read for its attribute: the value to store, or the vendor's problem with it. */
export type ReadValue<P, V = unknown> = { value: V } | { problem: P };

/**
 * How {@link checkValues} judges values. With attributes of the kit's {@link Attribute}
 * shape, `readOnly` and `read` may be left out: an attribute is then read-only by its flag,
 * and a value is read by {@link readValue}; with attributes of a vendor's own shape, both
 * are required.
 */
export interface ValueRules<A, P, V = unknown> {
  /** The attribute a name refers to; undefined makes the value an `unknown` one. */
  find(name: string): A | undefined;
  /** The vendor's problem (its error, or a detail to collect) for an issue with the value of `name`. */
  problem(issue: AttributeIssue, name: string, value: unknown, attribute: A | undefined): P;
  /** Whether the API may not write the attribute. */
  readOnly?(attribute: A): boolean;
  /** Reads a value for its attribute, for vendors whose values arrive as text or are stored converted. */
  read?(attribute: A, value: unknown): ReadValue<P, V>;
}

/**
 * A non-null JSON value of the attribute's type, and among its options when it has some, is
 * kept as given; null is kept (it clears a value); anything else is the `type` or `option`
 * problem `problem` makes of it.
 */
export function readValue<P>(attribute: Attribute, value: unknown, problem: (issue: 'type' | 'option') => P): ReadValue<P> {
  if (value === null) return { value };
  if (!fitsType(attribute.type, value)) return { problem: problem('type') };
  if (attribute.options !== undefined && !attribute.options.includes(value as string)) return { problem: problem('option') };
  return { value };
}

/**
 * Checks named values against attribute definitions, in order: a name without an attribute,
 * a read-only attribute and a value its attribute does not take each make one problem, in the
 * vendor's terms. Returns every value as stored when there is no problem, else every problem
 * (a vendor that refuses at the first throws the first; one that lists them all lists them).
 */
export function checkValues<A extends Attribute, P>(values: Record<string, unknown>, rules: ValueRules<A, P>): CheckedValues<P>;
export function checkValues<A, P, V>(values: Record<string, unknown>, rules: ValueRules<A, P, V> & Required<Pick<ValueRules<A, P, V>, 'readOnly' | 'read'>>): CheckedValues<P, V>;
export function checkValues<A, P>(values: Record<string, unknown>, r: ValueRules<A, P>): CheckedValues<P> {
  const readOnly = r.readOnly ?? ((a: A) => (a as Attribute).readOnly === true);
  const out: Record<string, unknown> = {};
  const problems: P[] = [];
  for (const [name, value] of Object.entries(values)) {
    const attribute = r.find(name);
    if (attribute === undefined || readOnly(attribute)) {
      problems.push(r.problem(attribute === undefined ? 'unknown' : 'read_only', name, value, attribute));
      continue;
    }
    const read = r.read?.(attribute, value) ?? readValue(attribute as Attribute, value, (issue) => r.problem(issue, name, value, attribute));
    if ('problem' in read) problems.push(read.problem);
    else out[name] = read.value;
  }
  return problems.length > 0 ? { problems } : { values: out };
}
