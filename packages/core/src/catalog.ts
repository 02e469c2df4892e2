import type { FieldInfo } from './contracts.js';
import type { Row, Value } from './envelope.js';

/** What a vendor's schema says of a field, as {@link fieldInfo} takes it. */
export interface FieldFacts {
  required?: boolean;
  readOnly?: boolean;
  unique?: boolean;
  /** The allowed values; left out of the field when undefined. */
  options?: readonly string[] | undefined;
}

/**
 * A field of a destination's catalog (`discover`) from what the vendor's schema says of it:
 * `required`, `readOnly` and `unique` only when they hold, `options` only when given, so
 * every connector's catalog reads the same way.
 */
export function fieldInfo(name: string, type: string, facts: FieldFacts = {}): FieldInfo {
  return {
    name,
    type,
    ...(facts.required === true ? { required: true } : {}),
    ...(facts.readOnly === true ? { readOnly: true } : {}),
    ...(facts.unique === true ? { unique: true } : {}),
    ...(facts.options === undefined ? {} : { options: [...facts.options] }),
  };
}

/** How a destination that matches a record by one field says so, for {@link singleMatchKey}. */
export interface SingleMatchKey {
  /** The vendor, as reasons name it: `HubSpot`. */
  service: string;
  /** What the vendor calls a field: `property`, `field` (the default). */
  noun?: string;
  /** The only fields that can match a record, when the vendor has a fixed few. */
  allowed?: readonly string[];
}

/**
 * The one field an operation's match key names, with its value; or the reason to reject the
 * record when the match names none, several, or one that is not `allowed`. For a destination
 * that finds or upserts a record by a single field, never by a combination.
 */
export function singleMatchKey(match: Row, o: SingleMatchKey): { name: string; value: Value } | { reason: string } {
  const names = Object.keys(match);
  const name = names.length === 1 ? names[0]! : undefined;
  if (name !== undefined && (o.allowed === undefined || o.allowed.includes(name))) return { name, value: match[name]! };
  const by = o.allowed === undefined ? `one ${o.noun ?? 'field'}` : `one of ${o.allowed.join(', ')}`;
  return { reason: `${o.service} matches a record by ${by}; this match key names ${names.length === 0 ? 'none' : names.join(', ')}` };
}
