import { createHash } from 'node:crypto';
import type { Row } from '../contracts.js';
import { OutflowError } from '../errors.js';

/** How model rows become destination records: field mappings and the match key. */
export interface Mapper {
  /** Destination field → model column. */
  readonly fields: ReadonlyArray<readonly [string, string]> | null;
  /** Destination field → model column of the match key. */
  readonly match: ReadonlyArray<readonly [string, string]> | null;
  /** A digest of the mapping itself: a change forces a full resync. */
  readonly hash: string;
}

export function createMapper(mappings: Record<string, string> | undefined, matchKey: Record<string, string> | undefined): Mapper {
  const fields = mappings ? (Object.entries(mappings).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) as [string, string][]) : null;
  const match = matchKey ? (Object.entries(matchKey) as [string, string][]) : null;
  const hash = createHash('sha256')
    .update(JSON.stringify({ fields, match }))
    .digest('hex')
    .slice(0, 16);
  return { fields, match, hash };
}

/** The destination fields of a row: the mapped columns, or every column when unmapped. */
export function mapFields(mapper: Mapper, row: Row): Row {
  if (mapper.fields === null) return row;
  const out: Row = {};
  for (const [dest, col] of mapper.fields) out[dest] = row[col] ?? null;
  return out;
}

export function mapMatch(mapper: Mapper, row: Row): Row | undefined {
  if (mapper.match === null) return undefined;
  const out: Row = {};
  for (const [dest, col] of mapper.match) out[dest] = row[col] ?? null;
  return out;
}

/** Fails with the first mapped or match-key column the model lacks. */
export function assertColumns(mapper: Mapper, columns: readonly string[], where: string): void {
  const have = new Set(columns);
  const missing: string[] = [];
  for (const [dest, col] of [...(mapper.fields ?? []), ...(mapper.match ?? [])]) {
    if (!have.has(col)) missing.push(`${dest} ← ${col}`);
  }
  if (missing.length) {
    throw new OutflowError(
      'OUTFLOW_MAPPING',
      `${where}: the model has no column for mapping ${missing.join(', ')} (model columns: ${columns.join(', ')})`,
      { details: { missing } },
    );
  }
}

/**
 * The idempotency key of one change: the same (sync, key, previous state, new state) always
 * gives the same key, so a re-send after a crash is recognised, while A → B → A gives three.
 */
export function idempotencyKey(sync: string, key: string, op: string, fromFp: string | null, toFp: string | null): string {
  return createHash('sha256')
    .update(`${sync}\u0000${key}\u0000${op}\u0000${fromFp ?? ''}\u0000${toFp ?? ''}`)
    .digest('base64url')
    .slice(0, 32);
}
