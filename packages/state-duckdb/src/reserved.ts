import { OutflowError } from '@outflow/core';

/**
 * Column names the embedded diff uses for itself, beside the model's columns (the key and
 * fingerprint it computes, and what it reports per changed row). DuckDB compares names
 * without regard to case, so `__K` is taken too.
 */
export const RESERVED_COLUMNS: readonly string[] = [
  '__k',
  '__fp',
  '__n',
  '__op',
  '__key',
  '__new_fp',
  '__old_fp',
  '__dest_id',
  '__sent_fp',
  '__sent_match',
  '__outflow_fp',
];

const reserved = new Set(RESERVED_COLUMNS);

/**
 * Throws `OUTFLOW_MAPPING` when a model column has a name the diff reserves: it would
 * collide with the diff's own column or be dropped from the rows sent, silently.
 */
export function assertNoReservedColumns(columns: Iterable<string>, where: string): void {
  const taken = [...columns].filter((c) => reserved.has(c.toLowerCase()));
  if (taken.length === 0) return;
  throw new OutflowError(
    'OUTFLOW_MAPPING',
    `${where} has ${taken.length === 1 ? 'a column' : 'columns'} named ${taken.map((c) => `"${c}"`).join(', ')}, which the diff reserves for itself (${RESERVED_COLUMNS.join(', ')}, in any case); rename ${taken.length === 1 ? 'it' : 'them'} in the model, e.g. SELECT ${taken[0]} AS ${taken[0]!.replace(/^_+/, '')}_value`,
  );
}
