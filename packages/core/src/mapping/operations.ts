import type { Capabilities, OperationKind, Row } from '../contracts.js';
import { OutflowError } from '../errors.js';
import type { SyncConfig } from '../config/schema.js';

export type PlannedKind = OperationKind | 'clear' | 'skip' | 'forget';

/**
 * What a change becomes under a sync's mode and delete policy:
 * - an operation to send (`clear` is an update that nulls the mapped fields),
 * - `skip`: not sent, but recorded as handled (updates in insert mode),
 * - `forget`: not sent, and the key is dropped from the delivered state (deletes ignored).
 */
export function planKind(
  op: 'insert' | 'update' | 'delete',
  known: boolean,
  to: Pick<SyncConfig['to'], 'mode' | 'deletes'>,
  caps: Capabilities,
): PlannedKind {
  const has = (k: OperationKind) => caps.operations.includes(k);
  if (op === 'delete') {
    const policy = to.mode === 'mirror' ? 'delete' : to.deletes;
    if (policy === 'ignore') return 'forget';
    if (!known) return 'forget';
    return policy === 'delete' ? 'delete' : 'clear';
  }
  switch (to.mode) {
    case 'insert':
      return op === 'insert' ? 'insert' : 'skip';
    case 'update':
      return 'update';
    case 'upsert':
    case 'mirror':
      if (has('upsert')) return 'upsert';
      return known ? 'update' : 'insert';
    case 'event':
      // What a change fires is for the sync's triggers to say (events/triggers.ts).
      return 'event';
  }
}

/** Fails before anything is sent when the destination cannot do what the sync needs. */
export function assertSupported(sync: SyncConfig, caps: Capabilities, where: string): void {
  const has = (k: OperationKind) => caps.operations.includes(k);
  const need: OperationKind[] = [];
  switch (sync.to.mode) {
    case 'insert':
      need.push('insert');
      break;
    case 'update':
      need.push('update');
      break;
    case 'upsert':
    case 'mirror':
      if (!has('upsert')) need.push('insert', 'update');
      break;
    case 'event':
      need.push('event');
      break;
  }
  const deletes = sync.to.mode === 'mirror' ? 'delete' : sync.to.mode === 'event' ? 'ignore' : sync.to.deletes;
  if (deletes === 'delete') need.push('delete');
  if (deletes === 'clear') need.push('update');
  const missing = need.filter((k) => !has(k));
  if (missing.length) {
    throw new OutflowError(
      'OUTFLOW_MODE_UNSUPPORTED',
      `${where}: object "${sync.to.object}" does not support ${missing.join(', ')}, which mode "${sync.to.mode}" with deletes "${deletes}" needs (it supports ${caps.operations.join(', ')})`,
    );
  }
  if (deletes === 'clear' && !sync.mappings) {
    throw new OutflowError('OUTFLOW_CONFIG_INVALID', `${where}: deletes "clear" needs explicit mappings, to know which fields to clear`);
  }
}

/** The fields a `clear` sends: every mapped field set to null. */
export function clearedFields(mappings: Record<string, string>): Row {
  const out: Row = {};
  for (const dest of Object.keys(mappings)) out[dest] = null;
  return out;
}
