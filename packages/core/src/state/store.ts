import type { ConnectorContext, Model, Row } from '../contracts.js';

/** One row of the diff between the model and the delivered state. */
export interface DiffRow {
  op: 'insert' | 'update' | 'delete';
  key: string;
  /** Fingerprint of the model row now; null for deletes. */
  fp: string | null;
  /** The model row (column → value); null for deletes. */
  row: Row | null;
  /** Fingerprint last delivered; null when never delivered. */
  oldFp: string | null;
  /** The destination's id of the record, when Outflow delivered it. */
  destId: string | null;
  /**
   * The fingerprint of a write logged as sent and never acknowledged: the destination may
   * have applied it (a crash, a lost answer). Null when no write of this key is in doubt.
   */
  sentFp: string | null;
  /**
   * The match key of that write in doubt, so a delete can still find a record whose id
   * never came back (optional: a store that does not keep it leaves it out).
   */
  sentMatch?: Row | null;
}

/** A key's latest settled stream change (see {@link DiffStore.positions}). */
export interface SettledChange {
  /** Its stream position; '' when it had none (a change of a reconciling diff). */
  pos: string;
  /** It removed the record (deleted, or a delete of a record never delivered). */
  gone: boolean;
}

/** What the destination knows a key's record by: its id, or the match key of a write in doubt. */
export interface RecordAddress {
  destId: string | null;
  match: Row | null;
}

/** What to record for one settled record. */
export type Ack =
  /**
   * About to be written (logged before the write): until acknowledged, possibly written.
   * `match` is the write's match key, kept while the write is in doubt.
   */
  | { key: string; kind: 'sent'; fp: string; match?: Row }
  | { key: string; kind: 'delivered'; fp: string; destId?: string | null; pos?: string }
  | { key: string; kind: 'deleted'; pos?: string }
  | { key: string; kind: 'parked'; fp: string | null; pos?: string }
  | { key: string; kind: 'forget'; pos?: string };
// `pos`, set on every ack of a stream run or a stream's reconciling diff: the stream position
// of the change settled ('' when it has none; see Change.position), kept by a store with
// `positions` so that a stream resumed after a crash or a reconcile does not apply it again.

/**
 * The delivered state of one diff sync and the diff against it. The embedded store keeps it
 * in a DuckDB file under `.outflow/`; a source with pushdown keeps it in a schema Outflow
 * owns in the warehouse, so the comparison runs where the data is and only changes leave.
 *
 * Semantics every store keeps:
 * - per key: the fingerprint last delivered (null if never), the destination id, and the
 *   fingerprint of a parked (rejected) version;
 * - a row whose fingerprint equals its delivered or its parked one is not a change;
 * - a key that left the model is a delete only when it was delivered (or sent and never
 *   acknowledged: a crash may have come after the destination applied it) and its delete
 *   is not parked;
 * - a row sent but never acknowledged is a change again, whatever its fingerprint;
 * - `apply` is durable when it resolves (a crash afterwards never re-sends those records);
 * - the acks of one key add up in order across `apply` calls (a delivered ack without a
 *   destination id keeps the one known); within one call a store may keep only the last
 *   per key ({@link latestAcks});
 * - a read-only store (a plan) reads the state as of every ack, a missing one as empty, and
 *   writes nothing: `apply` and the other writes throw.
 * Methods are never called concurrently with each other. `stateStoreSuite` in
 * `@outflow/testing` checks these behaviours on a store.
 */
export interface DiffStore {
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;
  /** After a mapping change: every delivered row becomes an update. Returns rows marked. */
  markAllStale(): Promise<number>;
  /** Clears parked versions (all, or of these keys) so they are sent again. */
  unpark(keys?: string[]): Promise<number>;
  /**
   * Snapshots the model (for pushdown stores) and computes the diff; returns counts by op.
   * The embedded store snapshots from rows given by the engine before this is called.
   */
  computeChanges(): Promise<{ insert: number; update: number; delete: number }>;
  /** The computed changes, in pages; each change exactly once. */
  changes(): AsyncIterable<DiffRow[]>;
  /** Records acknowledgements; durable when it resolves. Throws on a read-only store. */
  apply(acks: Ack[]): Promise<void>;
  /**
   * Keys logged as sent and never acknowledged (outcome unknown), with the fingerprint
   * sent. Stream syncs read them when they open, to treat replayed changes of those keys
   * as in doubt.
   */
  inDoubt(): Promise<{ key: string; fp: string }[]>;
  /**
   * Optional: what the destination knows these keys by — the destination id delivered, or
   * the match key of a write in doubt (either may be null) — for every key delivered or sent
   * (keys the destination cannot hold are absent). Stream syncs read it for each batch, so
   * an update or delete reaches a record the destination addresses by its own id (a HubSpot
   * contact) even when the change carries no match key (a PostgreSQL delete carries only the
   * primary key), and a delete of a key absent here sends nothing.
   */
  addresses?(keys: string[]): Promise<Map<string, RecordAddress>>;
  /**
   * Optional, for stream syncs: per key, its latest settled change that carried a `pos`
   * (keys with none are absent) — its position and whether it removed the record. A stream
   * resumed from a checkpoint replays the changes after it, and after a reconcile the
   * changes between the position it secured and the diff's snapshot; core skips those the
   * state shows were settled (see `captureStream`): a replayed insert or update of a record
   * deleted since would otherwise create it again, and a replayed update would put back an
   * older version for a while. Reads acks not folded yet; writes nothing.
   */
  positions?(keys: string[]): Promise<Map<string, SettledChange>>;
  /**
   * Forgets the non-empty positions at or below `upTo` (a checkpoint was saved past them, so
   * they are never replayed), or every position (a stream starting afresh, or a reconcile
   * starting: earlier positions need not compare with the stream's from then on).
   */
  forgetPositions?(upTo?: string): Promise<void>;
  /**
   * The records Outflow owns in the destination: keys delivered (and not deleted since) or
   * sent and never acknowledged — every key a run could delete or clear. As of every ack;
   * read-only stores count too. The blast-radius guard (`maxDeletes`) compares a run's
   * deletes with it.
   */
  deliveredCount(): Promise<number>;
  /**
   * After a complete run: drops parked rows whose key left the model and clears parking of
   * rows that went back to their delivered version; returns those keys (their row errors
   * are resolved).
   */
  tidy(): Promise<string[]>;
  close(): Promise<void> | void;
  /**
   * Present on a store that diffs rows the engine reads from the source (a source without
   * pushdown): the engine hands it the model's rows before {@link computeChanges}. Absent on a
   * pushdown store, which reads the model where it lives.
   */
  readonly ingest?: SnapshotIngest;
}

/** How the engine hands a model's rows, read in JavaScript, to a store. */
export interface SnapshotIngest {
  /** Starts a snapshot with the model's columns and a sample of its first rows. */
  begin(columns: string[], sample: Row[]): Promise<void>;
  /**
   * Adds rows with their key strings and fingerprints (same order; the fingerprint is core's
   * `fingerprint()` of the row's mapped fields, the same one stream capture records, so a
   * diff recognises what a stream delivered). Called in sequence, never concurrently.
   */
  add(keys: string[], rows: Row[], fingerprints: string[]): Promise<void>;
  /** Ends the snapshot (also after a failed read); returns the rows added. */
  end(): Promise<number>;
}

export interface StateStoreOpenOptions {
  /** The sync's name: the store's identity. */
  sync: string;
  /** As {@link PushdownOptions.columns}. */
  columns: string[] | null;
  /** Plan (dry run): read the state, write nothing (a missing state reads as empty). */
  readOnly: boolean;
}

/**
 * Where delivered state lives for syncs whose rows pass through JavaScript: diff syncs over
 * a source without pushdown, and stream syncs. The engine is given one (the runner's default
 * is `@outflow/state-duckdb`) and opens one store per sync run.
 */
export interface StateStore {
  open(options: StateStoreOpenOptions): Promise<DiffStore & { readonly ingest: SnapshotIngest }>;
}

export interface PushdownOptions {
  /** The sync's name: the store's identity in the warehouse. */
  sync: string;
  /**
   * The model columns whose values are delivered (mapped fields and match key), in a fixed
   * order; the fingerprint covers exactly these. Null: every column of the model.
   */
  columns: string[] | null;
  /** Plan (dry run): read the state, write nothing — not even the schema. */
  readOnly: boolean;
}

/**
 * A source that diffs in its own engine. `open` prepares the schema Outflow owns (unless
 * read-only) and returns a store whose `computeChanges` snapshots the model there.
 * Called once per run; the store is closed by core.
 */
export interface PushdownDiff<C = unknown> {
  open(ctx: ConnectorContext<C>, model: Model, options: PushdownOptions): Promise<DiffStore>;
}

/**
 * The acks of one `apply` call reduced to the last per key, in order: a store that writes
 * one statement per kind gets the same result as applying them one by one.
 */
export function latestAcks(acks: readonly Ack[]): Ack[] {
  const last = new Map<string, Ack>();
  for (const a of acks) {
    last.delete(a.key);
    last.set(a.key, a);
  }
  return [...last.values()];
}
