/**
 * The change envelope: one shape for the rows a source reads and for the changes diff
 * capture and native change streams produce, whatever the source.
 */

/** A JSON-compatible value as read from a model or sent to a destination. */
export type Value = string | number | boolean | null | Value[] | { [k: string]: Value };

/** One row of a model, or the fields of one destination record. */
export type Row = Record<string, Value>;

export type ChangeOp = 'insert' | 'update' | 'delete';

/** One change to one row of a model, from a diff or from a native change stream. */
export interface Change {
  op: ChangeOp;
  /** The model's primary key as a stable string (composite keys joined by {@link keyOf}). */
  key: string;
  /** The row after the change; absent for deletes. */
  after?: Row;
  /** The row before the change, when the source knows it. */
  before?: Row;
  /**
   * Source-defined; orders the changes of one stream: a later change has a greater
   * position, compared as strings (code-unit order, so numbers are zero-padded). Core
   * records the position of each settled change, so that after a restart the changes a
   * stream replays from its checkpoint are not applied twice. A source that cannot order
   * its changes leaves it out (replays are then applied again, idempotently).
   */
  position?: string;
  /** Source commit time (ISO 8601), for latency measurement. */
  committedAt?: string;
}

/** An opaque, source-defined resume position, stored by core in the ledger. */
export type Checkpoint = string;

/** A batch of changes and the position a stream may resume from once all are handled. */
export interface ChangeBatch {
  changes: Change[];
  /**
   * Resuming from this checkpoint must replay nothing before it and lose nothing after it.
   * Core persists it (and calls {@link ChangeStream.commit}) only after every change in
   * this batch and in all earlier batches was acknowledged or parked.
   */
  checkpoint: Checkpoint;
}

/** A batch of snapshot rows from {@link Source.read}. */
export interface RowBatch {
  rows: Row[];
}

/** Joins composite key values into the stable string used as {@link Change.key}. */
export function keyOf(row: Row, primaryKey: readonly string[]): string | undefined {
  if (primaryKey.length === 1) {
    const v = row[primaryKey[0]!];
    return v === null || v === undefined ? undefined : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  const parts: string[] = [];
  for (const col of primaryKey) {
    const v = row[col];
    if (v === null || v === undefined) return undefined;
    parts.push(typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  return JSON.stringify(parts);
}
