import type { Static, TSchema } from '@sinclair/typebox';
import type { Logger } from './logger.js';
import type { PushdownDiff } from './state/store.js';
import type { ChangeBatch, Checkpoint, Row, RowBatch } from './envelope.js';

export * from './envelope.js';

// ---------------------------------------------------------------------------------------
// Models, catalogs and operations
// ---------------------------------------------------------------------------------------

/** What a sync reads: a table, a SQL query or a file, with its primary key columns. */
export interface Model {
  table?: string;
  sql?: string;
  file?: string;
  primaryKey: string[];
}

export interface ColumnInfo {
  name: string;
  /** The source system's type name, e.g. `VARCHAR`, `BIGINT`. */
  type: string;
  nullable?: boolean;
}

export interface TableInfo {
  name: string;
  schema?: string;
  columns: ColumnInfo[];
  primaryKey?: string[];
}

export interface Catalog {
  tables: TableInfo[];
}

export type SyncMode = 'upsert' | 'update' | 'insert' | 'mirror' | 'event';
/** The operations that create, change or remove a destination record. */
export type RecordOperationKind = 'upsert' | 'update' | 'insert' | 'delete';
/** Every operation kind: record operations, and `event` for event mode. */
export type OperationKind = RecordOperationKind | 'event';

export interface FieldInfo {
  name: string;
  type: string;
  required?: boolean;
  readOnly?: boolean;
  /** True when values are unique, so the field can serve as a match key. */
  unique?: boolean;
  /** Allowed values of an enumeration. */
  options?: string[];
}

export interface ObjectInfo {
  name: string;
  fields: FieldInfo[];
  /** Field names usable as a match key. */
  matchKeys: string[];
  modes: SyncMode[];
}

export interface DestinationCatalog {
  objects: ObjectInfo[];
}

/** A rate limit of the vendor's API: at most `requests` requests in every `perMs` window. */
export interface RateLimit {
  requests: number;
  perMs: number;
}

/**
 * How a destination makes a repeated operation harmless — what the engine may do with an
 * operation whose outcome it does not know (the process died after sending it, or the
 * answer was lost):
 * - `key`: the destination applies each `idempotencyKey` at most once, whatever the kind:
 *   a re-sent operation it applied is answered as the first time (`ok`, with the same
 *   `destinationId`) and changes nothing. A re-send is safe.
 * - `match`: each operation acts on the record its `destinationId` or match key addresses,
 *   so applying it twice leaves one record with the same fields: an upsert or update sets
 *   the same values again, a delete finds nothing left to remove, and a re-sent insert is
 *   recognised (`ok`) or refused as existing — never a second record. A re-send is safe.
 * - `none`: a re-send may act twice (a chat message, an email send). The engine never
 *   re-sends blindly: it asks {@link Destination.lookup} when the connector offers it, and
 *   otherwise parks the record as "outcome unknown" for a person to decide
 *   (`outflow errors`, then `outflow retry` to send it again).
 */
export type Idempotency = 'key' | 'match' | 'none';

export interface Capabilities {
  /** The operations `write` accepts for this object. */
  operations: OperationKind[];
  /** The most operations one `write` call accepts. */
  maxBatchSize: number;
  /**
   * The vendor's limits for this connection, counted in requests. The engine keeps one
   * budget per destination connection, shared by every sync that writes through it, and
   * never exceeds these limits in any window.
   */
  rateLimits: RateLimit[];
  /**
   * Who draws from the connection's rate budget. `write` (the default): the engine takes one
   * request per `write` call, for a connector that makes one request per batch. `connector`:
   * the connector calls `ctx.rateBudget.acquire()` before each request it makes (several
   * per batch, or one per record), and the engine takes nothing itself.
   */
  budget?: 'write' | 'connector';
  /** How many `write` calls may be in flight at once, per sync. */
  concurrency: number;
  /** See {@link Idempotency}. */
  idempotency: Idempotency;
}

/**
 * One record operation sent to a destination. Each kind, on a record that exists and on
 * one that does not:
 * - `upsert` updates the record, or creates it when there is none.
 * - `update` updates the record. A record that does not exist is not created (update mode
 *   never creates): the result is `{ ok: false, retryable: false }` with a `reason` that
 *   says the record was "not found", and the row is parked.
 * - `insert` creates the record. When a record with the same match key already exists the
 *   result is `{ ok: false, retryable: false }`, unless the destination recognises this
 *   very operation as already applied — by its `idempotencyKey`, or (idempotency `match`)
 *   because that record already holds exactly these fields: then `{ ok: true }` with the
 *   record's id.
 * - `delete` removes the record. A record that does not exist is already gone: the result
 *   is `{ ok: true }` (deletes are idempotent).
 * - `event` (event mode) sends one event or message built by a trigger: `fields` is its
 *   payload, {@link Operation.event} says which trigger fired on which change, and
 *   `idempotencyKey` is the same for every send of this (sync, key, trigger, row version),
 *   so a destination that dedupes by it delivers the event once. `object` names where it
 *   goes (a channel, a call such as `track`, a campaign); `match` and `destinationId` are
 *   absent. `{ ok: true }` means the destination accepted the event.
 *
 * Addressing: with a `destinationId`, the operation acts on the record with that id (the
 * one Outflow wrote or matched before), and `match` only carries values to set, so a
 * changed match value (a new email) changes that record instead of naming another. Without
 * one, `match` addresses the record (or `key`, at a destination that keeps the model key).
 * An upsert whose `destinationId` no longer exists falls back to its match key (updating
 * the record that holds it, or creating one); an update or delete whose `destinationId` no
 * longer exists is a record that does not exist, as above.
 */
export interface Operation {
  kind: OperationKind;
  /** The model's primary key of the record (as in {@link Change.key}). */
  key: string;
  /**
   * The match key fields and values, e.g. `{ email: 'a@x.com' }`: what addresses the
   * record without a `destinationId`, and values to set on it with one.
   */
  match?: Row;
  /** Mapped fields to write; absent for deletes. */
  fields?: Row;
  /**
   * The id the destination returned for this key in an earlier `ok` result, when Outflow
   * delivered it before. When present, it addresses the record, ahead of `match`.
   */
  destinationId?: string;
  /**
   * Deterministic per (sync, key, content): a re-send of the same change after a crash
   * carries the same key, so a destination that dedupes by it applies it once.
   */
  idempotencyKey: string;
  /** Set on `event` operations only: the trigger that fired and the change it fired on. */
  event?: EventInfo;
}

/** What an `event` {@link Operation} is about. */
export interface EventInfo {
  /** The trigger's name, as written in outflow.yaml (e.g. `order-paid`). */
  trigger: string;
  /** The change the trigger fired on. */
  change: 'insert' | 'update' | 'delete';
  /** When the source committed the change (ISO 8601), when the source knows it. */
  committedAt?: string;
}

/**
 * The outcome of one operation (what each kind answers for a missing or existing record is
 * in {@link Operation}). `ok: true` means it is applied, or was already. On an `ok` insert
 * or upsert, `destinationId` is required whenever the destination assigns ids to records:
 * Outflow keeps it and sends it as {@link Operation.destinationId} with later updates and
 * deletes of the key. A destination that addresses records only by match key may omit it.
 * `ok: false` with `retryable: true` means this record was not applied and may be sent
 * again (after `retryAfterMs`, which delays this record only); `retryable: false` parks it
 * with `reason` — shown to people, so it says what is wrong with the record — until its row
 * changes or `outflow retry`.
 */
export type RecordResult =
  | { ok: true; destinationId?: string }
  | { ok: false; reason: string; retryable: boolean; retryAfterMs?: number };

/**
 * What {@link Destination.lookup} found out about an operation whose outcome is unknown:
 * `applied` (with the record's id when it has one), `absent` (never applied: safe to send),
 * or `unknown` (the record is parked as "outcome unknown").
 */
export type LookupResult = { state: 'applied'; destinationId?: string } | { state: 'absent' } | { state: 'unknown' };

// ---------------------------------------------------------------------------------------
// Context given to connector methods
// ---------------------------------------------------------------------------------------

/** A small key-value store in the ledger, scoped to one connection. */
export interface KeyValueStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

/**
 * A connection's metrics. Every value is labelled with the connection's name; `outflow
 * serve` publishes them at `/metrics` as `outflow_<name>` (counters `outflow_<name>_total`),
 * and other commands drop them. Names and label names are letters, digits and `_`; label
 * values are redacted like logs. Calls never throw and may be made concurrently.
 */
/**
 * A connection's metrics, labelled with its name by the engine. The counter
 * `transport_records` (label `transport`, e.g. `bulk`) is also shown in `outflow run`'s
 * summary: it says how a destination sent the records of a run.
 */
export interface Metrics {
  /** Set a gauge, e.g. `stream_lag_ms`. */
  gauge(name: string, value: number, labels?: Record<string, string>): void;
  /** Add to a counter (`delta` 1 by default; never negative). */
  count(name: string, delta?: number, labels?: Record<string, string>): void;
}

/**
 * The request budget of one destination connection, shared by every sync that writes
 * through it. Waits are sliding windows: no window of a declared limit ever holds more
 * requests than it allows.
 */
export interface RateBudget {
  /**
   * Resolves when `requests` (default 1) more requests may start now. Rejects with
   * `OUTFLOW_ABORTED` when the context's signal aborts while waiting.
   */
  acquire(requests?: number): Promise<void>;
  /**
   * Sends one request within the budget: waits for its turn, runs `send`, and counts the
   * request as in flight until `send` settles, then as made at that moment. Vendors count
   * requests when they arrive, which may be well after they start; counting by completion
   * keeps every window of arrivals within the limits. Prefer it to {@link acquire}. Rejects
   * with `OUTFLOW_ABORTED` (nothing sent) when the context's signal aborts while waiting.
   */
  request<T>(send: () => Promise<T>): Promise<T>;
  /**
   * Stops every sender of this connection until `ms` from now (a Retry-After for all). A
   * wait longer than the connection's `maxWait` (5 minutes by default) is not kept.
   */
  pause(ms: number): void;
  /**
   * Keeps one more limit from now on: for a connector that learns from the vendor (e.g.
   * rate-limit headers) a limit lower than it declared.
   */
  addLimit(limit: RateLimit): void;
}

export interface ConnectorContext<C = unknown> {
  /** The connection's name in outflow.yaml. */
  connection: string;
  /** The validated config with defaults applied and `${env:…}` resolved. Frozen. */
  config: Readonly<C>;
  /** A logger whose output never contains a secret. */
  logger: Logger;
  /**
   * Aborted when the engine stops for good: after a graceful stop's grace period, or at
   * once on a forced stop. A call in flight should then give up promptly; what it may have
   * applied is sent again later (or, where re-sending is unsafe, looked up or parked).
   */
  signal: AbortSignal;
  /** The connection's request budget (see {@link Capabilities.budget}). */
  rateBudget: RateBudget;
  metrics: Metrics;
  kv: KeyValueStore;
  /** A folder this connection may keep files in; create it before writing (dry runs must not). */
  stateDir: string;
}

// ---------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------

/** Reads models as snapshots. */
export interface Source<C = unknown> {
  /**
   * Called by `outflow check` and before a run. Throws an {@link OutflowError} naming what
   * is wrong (unreachable, bad credentials, missing permission). Never mutates data.
   */
  check(ctx: ConnectorContext<C>): Promise<void>;
  /** Lists tables and columns (and primary keys where declared). Read-only. */
  discover(ctx: ConnectorContext<C>): Promise<Catalog>;
  /**
   * Reads a model as a snapshot, streamed in batches; never holds the whole model in memory.
   * Called once per run and never concurrently for one model. A throw fails the run; no
   * state advances for rows that were not delivered. Must stop promptly when
   * `ctx.signal` aborts.
   */
  read(ctx: ConnectorContext<C>, model: Model, options?: ReadOptions): AsyncIterable<RowBatch>;
  /** Lists the model's columns without reading its rows (used for mapping checks). */
  columns?(ctx: ConnectorContext<C>, model: Model): Promise<ColumnInfo[]>;
  /**
   * Optional: diff in the source's own engine, with the delivered state in a schema Outflow
   * owns there (see state/store.ts). Core uses it instead of reading every row.
   */
  diff?: PushdownDiff<C>;
}

/** A native change stream opened at a checkpoint. */
export interface ChangeStream extends AsyncIterable<ChangeBatch> {
  /**
   * Called by core, in checkpoint order, once every change up to `checkpoint` is
   * acknowledged or parked. The source may then free what it holds (advance a slot, delete
   * staged rows). Never called concurrently with itself; may be called while iteration
   * continues.
   */
  commit(checkpoint: Checkpoint): Promise<void>;
  /** Reports whether the stream fell behind its retention (core then reconciles by diff). */
  health(): Promise<{ stale: boolean; lagMs?: number }>;
  /** Releases connections. Called once, after iteration ends or the run stops. */
  close(): Promise<void>;
  /**
   * `log` (the default): every change of the source, in the order it was committed, as a
   * write-ahead log gives them — a row deleted and inserted again reads as a delete, then
   * an insert. `net`: the net change of each row between two reads, as a Snowflake STREAM
   * gives them — a row deleted and inserted again in between reads as an update. Core skips
   * a replayed update of a record deleted since only on a `log` stream (on a `net` one such
   * an update may be the row inserted again).
   */
  readonly changes?: 'log' | 'net';
}

/** What a read is for, beyond the model (see {@link Source.read}). */
export interface ReadOptions {
  /** The sync reading. */
  sync?: string;
  /**
   * The read is a stream sync's reconciling diff (see {@link Stream.open}). A source whose
   * stream can tell the model as it was at the position it secured (a Snowflake STREAM's
   * offset) reads it as of that position: the diff and the stream's changes after it then
   * meet exactly, none missed and none sent twice. Others read the model as it is now.
   */
  reconcile?: boolean;
}

/** Native change data capture. */
export interface Stream<C = unknown> {
  /**
   * Opens the model's change stream resuming after `from` (null: from now, after the
   * source's own initial snapshot handoff). A source with no consistent snapshot of its own
   * (a Snowflake STREAM sees changes only from its creation) answers its first `open(null)`
   * with the handshake below, so the rows already there are delivered by the engine's diff.
   * `options.sync` names the sync, so objects the
   * stream creates in the source (slots, streams, staging tables) are owned per sync.
   * Called once per stream run; a throw fails the run.
   *
   * The stale-stream handshake, when `from` can no longer be resumed (a slot dropped,
   * retention passed, a table truncated) or the stream falls behind while running:
   * 1. Before reporting it, the connector secures a new position that keeps every change
   *    from then on (e.g. creates a new slot or stream) and remembers it (in `ctx.kv` or in
   *    objects it owns in the source).
   * 2. It throws `OUTFLOW_STREAM_STALE` from `open`, or reports `stale: true` from
   *    {@link ChangeStream.health} (the engine then ends the run).
   * 3. The engine reconciles: one diff run of the model against what the stream delivered,
   *    a snapshot taken after the new position, so diff and stream together miss nothing.
   * 4. The engine calls `open` with `from` null and `options.reconciled` true; the
   *    connector resumes at the position it secured, with no backfill. Changes between the
   *    new position and the diff's snapshot arrive twice; core skips those its delivered
   *    state shows were settled (see `DiffStore.positions`), and applies the rest again,
   *    idempotently.
   *    An `open(null)` without `reconciled` while a secured position waits (the process
   *    stopped before the engine recorded the reconcile) answers `OUTFLOW_STREAM_STALE`
   *    again, keeping that position: resuming it then would skip rows never delivered.
   */
  open(ctx: ConnectorContext<C>, model: Model, from: Checkpoint | null, options?: { sync?: string; reconciled?: boolean }): Promise<ChangeStream>;
}

/**
 * Writes records to an operational tool. What a throw means, method by method:
 * - `check`, `discover`, `capabilities`: the command that called it fails (an
 *   {@link OutflowError} should name what is wrong; any other throw is reported as is).
 *   It is not retried.
 * - `write`: about the whole batch; see {@link Destination.write}.
 * - `lookup`: the operations asked about stay in doubt and are parked as "outcome unknown".
 * - The manifest's `open` and `close`: see {@link ConnectorManifest.open} and
 *   {@link ConnectorManifest.close}.
 */
export interface Destination<C = unknown> {
  /** As {@link Source.check}. */
  check(ctx: ConnectorContext<C>): Promise<void>;
  /** Objects, fields with types, match keys and supported modes. Read-only. */
  discover(ctx: ConnectorContext<C>): Promise<DestinationCatalog>;
  /** What the engine may send to `object`: operations, batch size, rate limits, concurrency. */
  capabilities(ctx: ConnectorContext<C>, object: string): Capabilities | Promise<Capabilities>;
  /**
   * Applies a batch of at most `maxBatchSize` operations and returns one result per
   * operation, in the same order; {@link Operation} says what each kind does (to missing
   * records too) and how a record is addressed, {@link RecordResult} when to return
   * `destinationId`. Called concurrently up to `concurrency` times, never with two
   * operations for one key in flight at once. Keeps the promise of the declared
   * {@link Capabilities.idempotency}.
   *
   * A per-record failure is a result with `ok: false`. A throw is about the whole batch:
   * - A retryable {@link OutflowError}: its `retryAfterMs` pauses every sender of the
   *   connection (all its syncs) that long, and the whole batch is sent again later — with
   *   idempotency `none` only when the error says `notApplied`, else as an unknown outcome.
   *   A `retryAfterMs` beyond the connection's `maxWait` fails the batch for this run
   *   instead (a stream waits `maxWait` and tries again); no wait is ever longer.
   * - A non-retryable OutflowError: the batch was refused as a whole, nothing in it
   *   applied. The engine bisects it to find the records at fault, sending the halves
   *   again; a single record that still fails is parked with the error's message.
   * - Any other throw: the outcome is unknown (part of the batch may be applied). The batch
   *   is sent again like a retryable error where that is safe (idempotency `key` or
   *   `match`); with `none`, each record is looked up (see `lookup`) or parked as "outcome
   *   unknown".
   */
  write(ctx: ConnectorContext<C>, object: string, ops: Operation[]): Promise<RecordResult[]>;
  /**
   * Optional, for destinations whose idempotency is `none`: tells, for operations the
   * engine sent earlier without learning their outcome, whether they were applied (e.g. by
   * searching for a message carrying the idempotency key). One result per operation, in
   * order. Read-only: it never applies an operation itself. A throw leaves the records in
   * doubt, and they are parked as "outcome unknown".
   */
  lookup?(ctx: ConnectorContext<C>, object: string, ops: Operation[]): Promise<LookupResult[]>;
}

export interface Faults {
  /** Added latency per request, in milliseconds. */
  latencyMs?: number;
  /** Fraction (0–1) of requests answered with a 5xx error. */
  errorRate?: number;
  /** Fraction (0–1) of requests whose connection is reset. */
  resetRate?: number;
  [knob: string]: unknown;
}

export interface EmulatorOptions {
  /** Port on 127.0.0.1; 0 or absent picks a free one. */
  port?: number;
  /** Folder where the emulator persists its state; in memory when absent. */
  dataDir?: string;
  faults?: Faults;
}

export interface RunningEmulator<C = unknown> {
  url: string;
  /** What a connection needs to point at this emulator; sandbox mode merges it in. */
  config: Partial<C>;
  stop(): Promise<void>;
}

/** A local server speaking the vendor's wire protocol. */
export interface Emulator<C = unknown> {
  start(options?: EmulatorOptions): Promise<RunningEmulator<C>>;
}

// ---------------------------------------------------------------------------------------
// The manifest
// ---------------------------------------------------------------------------------------

export interface ConnectorManifest<S extends TSchema = TSchema> {
  /** `connector: <name>` in outflow.yaml; the package is `@outflow/connector-<name>`. */
  name: string;
  version: string;
  /**
   * The semver range of @outflow/core this connector was built for. A connector published as
   * a package declares it as its `peerDependencies["@outflow/core"]` range, which the runner
   * checks (and npm installs by); this field is then optional, and is what the runner checks
   * for a connector loaded from a path with no package.json.
   */
  coreVersion?: string;
  /** JSON Schema of the connection config. Mark secrets with `secret: true`. */
  config: S;
  /** One-line description, shown by `outflow discover` and in generated docs. */
  description?: string;
  source?: Source<Static<S>>;
  stream?: Stream<Static<S>>;
  destination?: Destination<Static<S>>;
  /** Loaded lazily so that production runs never import emulator code. */
  emulator?: () => Promise<Emulator<Static<S>>>;
  /**
   * Optional: called once per connection, with the context every later call receives,
   * before any role method — e.g. to create a client. A throw fails the commands that
   * need the connection (as a failed `check` would); it is not retried.
   */
  open?(ctx: ConnectorContext<Static<S>>): Promise<void>;
  /**
   * Optional: called once per connection after its last call, also after failures and
   * stops — release clients, sockets and pools. A throw is logged and otherwise ignored.
   */
  close?(ctx: ConnectorContext<Static<S>>): Promise<void>;
}

export type AnyConnector = ConnectorManifest<TSchema>;

/** Declares a connector. The config type of every role is derived from `config`. */
export function defineConnector<S extends TSchema>(manifest: ConnectorManifest<S>): ConnectorManifest<S> {
  if (!/^[a-z][a-z0-9-]*$/.test(manifest.name)) {
    throw new TypeError(`connector name "${manifest.name}" must be lower-case letters, digits and dashes`);
  }
  if (!manifest.source && !manifest.stream && !manifest.destination) {
    throw new TypeError(`connector "${manifest.name}" provides no source, stream or destination`);
  }
  return Object.freeze(manifest);
}
