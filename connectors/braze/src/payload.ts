/** Reading a trigger's payload (an event operation's `fields`) the way Braze's objects take it. */
import type { Operation, Row, Value } from '@outflow/core';

/** A payload field Braze cannot take, as a row error's reason. */
export class PayloadError extends Error {}

export const isObject = (v: Value | undefined): v is Row => v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v);

/** Refuses a field of `row` not in `allowed`, naming where it is and what is allowed. */
export function onlyKnown(row: Row, allowed: readonly string[], where: string): void {
  const unknown = Object.keys(row).find((k) => !allowed.includes(k));
  if (unknown !== undefined) throw new PayloadError(`${where} has no field "${unknown}" (it takes: ${allowed.join(', ')})`);
}

/** An object field, or undefined when absent or null. */
export function objectField(row: Row, name: string, where: string): Row | undefined {
  const v = row[name];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new PayloadError(`${where}: ${name} must be an object, not ${JSON.stringify(v)}`);
  return v;
}

/** A string field (a number is taken as its digits), or undefined when absent or null. */
export function textField(row: Row, name: string, where: string): string | undefined {
  const v = row[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string' || v === '') throw new PayloadError(`${where}: ${name} must be a non-empty string, not ${JSON.stringify(v)}`);
  return v;
}

/** A user alias `{ alias_name, alias_label }`, or undefined when absent or null. */
export function aliasField(row: Row, name: string, where: string): Row | undefined {
  const alias = objectField(row, name, where);
  if (alias === undefined) return undefined;
  onlyKnown(alias, ['alias_name', 'alias_label'], `${where}: ${name}`);
  if (textField(alias, 'alias_name', where) === undefined || textField(alias, 'alias_label', where) === undefined) {
    throw new PayloadError(`${where}: ${name} needs alias_name and alias_label`);
  }
  return alias;
}

/** An ISO 8601 time field, else when the source committed the change, else now: Braze requires one. */
export function timeField(row: Row, op: Operation, where: string): string {
  const v = row['time'];
  if (v === undefined || v === null) return op.event?.committedAt ?? new Date().toISOString();
  if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) throw new PayloadError(`${where}: time must be an ISO 8601 date-time, not ${JSON.stringify(v)}`);
  return v;
}
