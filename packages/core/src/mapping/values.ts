import type { Value } from '../envelope.js';

const ISO_NO_ZONE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/**
 * Milliseconds since the epoch of a model value meant as a point in time, for connectors
 * that coerce values to a vendor's date and datetime types: a number or an integral string
 * is epoch milliseconds; `YYYY-MM-DD` is midnight UTC; an ISO 8601 timestamp without a zone
 * (`T` or a space between date and time) is read as UTC; one with a zone as it says.
 * Anything else (and an invalid date) is undefined.
 */
export function instantOf(value: Value): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (/^-?\d+$/.test(text)) return Number(text);
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return Date.parse(`${text}T00:00:00Z`);
  if (ISO_NO_ZONE.test(text)) return Date.parse(`${text.replace(' ', 'T')}Z`);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** A value as a row error shows it: JSON, cut at 80 characters. */
export function showValue(value: Value): string {
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
