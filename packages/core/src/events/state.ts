/**
 * What event mode keeps of a delivered row: the values of the columns its triggers watch
 * (`EventTriggers.watched`), so an update in a diff run can be compared with the row as it
 * was delivered — a condition's crossing, a named field's change — and a delete's payload
 * can read `before`; the row's version, counted up by every change settled, which tells
 * two changes between the same values apart (A → B → A → B) in idempotency keys; and the
 * row's fingerprint, so a change replayed to the same row (a stream's at-least-once replay)
 * fires nothing again.
 *
 * The delivered state keeps fingerprints, not rows; event mode records this in the key's
 * destination-id slot (an event has no destination id), so it is written atomically with
 * the key's delivered fingerprint and read back with it by diffs (`DiffRow.destId`) and
 * streams (`DiffStore.addresses`).
 */
import type { Row } from '../envelope.js';

const PREFIX = 'outflow-event:';

/** The kept state of one key. */
export interface EventState {
  /** Changes settled for the key so far. */
  version: number;
  /** The watched columns' values in the row last settled. */
  values: Row;
  /** The fingerprint of the row last settled (none after a delete): a change to the same row is a replay. */
  fp?: string;
}

/** The state to keep after a change to `row` (absent for a delete), following `previous`. */
export function nextEventState(previous: EventState | undefined, row: Row | undefined, fp: string | null, watched: readonly string[]): EventState {
  const values: Row = {};
  for (const f of watched) values[f] = row?.[f] ?? null;
  return { version: (previous?.version ?? 0) + 1, values, ...(fp === null ? {} : { fp }) };
}

/** The state as stored. */
export function encodeEventState(state: EventState): string {
  return PREFIX + JSON.stringify([state.version, state.values, state.fp ?? null]);
}

/** The state kept for a key, or undefined when nothing (or something else) is kept. */
export function decodeEventState(stored: string | null | undefined): EventState | undefined {
  if (typeof stored !== 'string' || !stored.startsWith(PREFIX)) return undefined;
  try {
    const [version, values, fp] = JSON.parse(stored.slice(PREFIX.length)) as unknown[];
    if (typeof version !== 'number' || values === null || typeof values !== 'object' || Array.isArray(values)) return undefined;
    return { version, values: values as Row, ...(typeof fp === 'string' ? { fp } : {}) };
  } catch {
    return undefined;
  }
}
