import { createHash } from 'node:crypto';
import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import {
  OutflowError,
  describeError,
  failpoint,
  isOutflowError,
  keyOf,
  type Change,
  type ChangeBatch,
  type ChangeStream,
  type Checkpoint,
  type Model,
  type Row,
  type Stream,
  type Value,
} from '@outflow/core';
import { DEFAULTS, type PostgresConfig } from './config.js';
import { clientConfig, connect, isTransient, resolveTable, type Ctx, type ResolvedTable } from './db.js';
import { cursorRows } from './source.js';
import { ident, literal, parserFor } from './values.js';

/** A checkpoint taken during the initial backfill: the key of the last row read. */
const BACKFILL_PREFIX = 'backfill:';
/** The most changes of one transaction per batch; bigger transactions are split. */
const MAX_BATCH_CHANGES = 5000;
/** Received changes waiting to be read before the socket is paused (backpressure). */
const HIGH_WATER = 50_000;

// ---------------------------------------------------------------------------------------
// LSNs
// ---------------------------------------------------------------------------------------

/** Parses `X/Y` into a number; false when it is not an LSN. */
export function parseLsn(lsn: string): bigint | false {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  return m ? (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`) : false;
}

/** Formats an LSN as PostgreSQL prints it (`16/B374D848`). */
export function formatLsn(n: bigint): string {
  return `${(n >> 32n).toString(16).toUpperCase()}/${(n & 0xffffffffn).toString(16).toUpperCase()}`;
}

function lsnOf(text: string): bigint {
  const n = parseLsn(text);
  if (n === false) throw new OutflowError('OUTFLOW_INTERNAL', `"${text}" is not a PostgreSQL LSN`);
  return n;
}

// ---------------------------------------------------------------------------------------
// Names and remembered state
// ---------------------------------------------------------------------------------------

/**
 * The replication slot and publication of one sync (or, when no sync is named, of one
 * connection and table) in `database`: `outflow_` with a readable part and a hash, within
 * PostgreSQL's 63 bytes and lower-case as slot names must be. Slot names are global to a
 * PostgreSQL cluster, so the database is part of the hash: syncs of the same name reading
 * two databases of one cluster get two slots.
 */
export function streamName(database: string, connection: string, schema: string, table: string, sync?: string): string {
  const readable = `${sync ?? connection}_${table}`.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 40);
  const identity = [database, ...(sync === undefined ? [] : [sync]), connection, schema, table].join('\u0000');
  const hash = createHash('sha256').update(identity).digest('hex').slice(0, 10);
  return `outflow_${readable}_${hash}`;
}

/** What Outflow remembers (in the ledger's key-value store) about a slot it created. */
interface SlotState {
  /** The slot's consistent point when created: checkpoints before it belong to an older slot. */
  start: string;
  /**
   * Set when the slot was re-created after the stream went stale: the next open(null) (after
   * core reconciled by a diff) streams from `start` without a backfill.
   */
  reconcile: boolean;
}

const kvKey = (slot: string) => `stream:${slot}`;

async function loadState(ctx: Ctx, slot: string): Promise<SlotState | undefined> {
  const raw = await ctx.kv.get(kvKey(slot));
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as SlotState;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// pgoutput with Outflow's value parsers
// ---------------------------------------------------------------------------------------

/** pgoutput, decoding values with the same parsers as snapshot reads. */
class OutflowPgoutput extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
    const msg = super.parse(buffer);
    if (msg.tag === 'relation') for (const c of msg.columns) c.parser = parserFor(c.typeOid);
    return msg;
  }
}

function plainRow(tuple: Record<string, unknown>): { row: Row; missing: string[] } {
  const row: Row = {};
  const missing: string[] = [];
  for (const k of Object.keys(tuple)) {
    const v = tuple[k];
    if (v === undefined) missing.push(k);
    else row[k] = v instanceof Buffer ? v.toString('hex') : (v as Value);
  }
  return { row, missing };
}

// ---------------------------------------------------------------------------------------
// Slots
// ---------------------------------------------------------------------------------------

interface SlotRow {
  wal_status: string | null;
  active_pid: number | null;
  confirmed: string | null;
}

async function currentDatabase(sql: pg.Client): Promise<string> {
  return (await sql.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
}

async function slotInfo(sql: pg.Client, slot: string): Promise<SlotRow | undefined> {
  const r = await sql.query<SlotRow>(
    `SELECT wal_status, active_pid, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  return r.rows[0];
}

async function dropSlot(sql: pg.Client, slot: string): Promise<void> {
  const info = await slotInfo(sql, slot);
  if (!info) return;
  if (info.active_pid !== null) await sql.query('SELECT pg_terminate_backend($1)', [info.active_pid]);
  for (let i = 0; i < 50; i++) {
    try {
      await sql.query('SELECT pg_drop_replication_slot($1) WHERE EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)', [slot]);
      return;
    } catch (err) {
      // The terminated walsender may still hold the slot for a moment.
      if ((err as { code?: string }).code !== '55006' || i === 49) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Re-creates the slot after the stream went stale and remembers that core must reconcile
 * by a diff before streaming from it. Changes from here on are kept by the new slot, so the
 * diff (whose snapshot comes later) and the stream together miss nothing.
 */
async function recreateForReconcile(ctx: Ctx, sql: pg.Client, slot: string): Promise<string> {
  await dropSlot(sql, slot);
  const r = await sql.query<{ lsn: string }>(`SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  const start = r.rows[0]!.lsn;
  await ctx.kv.set(kvKey(slot), JSON.stringify({ start, reconcile: true } satisfies SlotState));
  return start;
}

function staleError(ctx: Ctx, slot: string, why: string, resumeFrom: string): OutflowError {
  return new OutflowError(
    'OUTFLOW_STREAM_STALE',
    `connection "${ctx.connection}": the change stream of slot ${slot} cannot resume (${why}); a diff must reconcile the destination before streaming resumes`,
    { details: { slot, reason: why, resumeFrom } },
  );
}

// ---------------------------------------------------------------------------------------
// The stream
// ---------------------------------------------------------------------------------------

interface Backfill {
  client: pg.Client;
  /** The slot's consistent point: streaming starts here once the backfill is read. */
  start: string;
  /**
   * Resume after this key (a backfill checkpoint), reading current rows, not a snapshot;
   * an empty key resumes a backfill that had not delivered anything yet.
   */
  after?: Value[];
}

interface Txn {
  changes: Change[];
  committedAt: string;
  /** The transaction's commit LSN as 16 hex digits (positions order by it), if known. */
  lsn: string | undefined;
  /** Changes of the table seen in the transaction so far. */
  seen: number;
  /** Rows whose unchanged TOAST columns must be fetched (no old tuple to take them from). */
  toast: { change: Change; missing: string[] }[];
}

class PostgresChangeStream implements ChangeStream {
  private readonly queue: ChangeBatch[] = [];
  private queuedChanges = 0;
  private failure: unknown;
  private waiter: (() => void) | undefined;
  private closed = false;
  private service: LogicalReplicationService | undefined;
  private timer: NodeJS.Timeout | undefined;
  private txn: Txn | undefined;
  private paused = false;
  /** Highest LSN the server may consider flushed (sent as standby status). */
  private ackLsn: bigint;
  /** Checkpoint of the last batch handed out, and the last one core committed. */
  private lastYielded: bigint | undefined;
  private lastCommitted: bigint;
  /** The last commit boundary seen: the checkpoint of a split transaction's parts. */
  private lastBoundary: string;
  private stale = false;
  /** The re-creation of the slot after it went stale, once begun. */
  private staling: Promise<void> | undefined;
  private generation = 0;
  /** Commits at or before this LSN were already handed out (or precede the resume point). */
  private skipUpTo: bigint;
  private filling: Promise<void> | undefined;
  private lastCommittedAt: number | undefined;

  constructor(
    private readonly ctx: Ctx,
    private readonly sql: pg.Client,
    private readonly table: ResolvedTable,
    private readonly model: Model,
    private readonly slot: string,
    private readonly publication: string,
    /** Transactions that commit at or before this LSN are already covered. */
    from: string,
    private readonly backfill: Backfill | undefined,
  ) {
    this.ackLsn = lsnOf(from);
    this.lastCommitted = this.ackLsn;
    this.lastBoundary = from;
    this.skipUpTo = this.ackLsn;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ChangeBatch> {
    if (this.backfill) {
      yield* this.readBackfill(this.backfill);
      if (this.closed) return;
    }
    this.startReplication();
    for (;;) {
      if (this.queue.length) {
        let batch = this.queue.shift()!;
        // Transactions that queued up while the consumer was busy go out together: fewer,
        // larger batches under load, one transaction per batch when idle. The checkpoint is
        // the last one's, which covers all of them.
        if (this.queue.length && batch.changes.length < MAX_BATCH_CHANGES) {
          const changes = [...batch.changes];
          let checkpoint = batch.checkpoint;
          while (this.queue.length && changes.length + this.queue[0]!.changes.length <= MAX_BATCH_CHANGES) {
            const next = this.queue.shift()!;
            for (const c of next.changes) changes.push(c);
            checkpoint = next.checkpoint;
            this.queuedChanges -= next.changes.length;
          }
          this.queuedChanges -= batch.changes.length;
          batch = { changes, checkpoint };
        } else this.queuedChanges -= batch.changes.length;
        if (this.paused && this.queuedChanges < HIGH_WATER / 2) this.resume();
        if (parseLsn(batch.checkpoint) !== false) this.lastYielded = lsnOf(batch.checkpoint);
        yield batch;
        continue;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.closed) return;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** Yields the table's rows as inserts, in key order, from the slot's exported snapshot. */
  private async *readBackfill(b: Backfill): AsyncGenerator<ChangeBatch> {
    const pk = this.model.primaryKey;
    const types = new Map(this.table.columns.map((c) => [c.name, c.type]));
    const order = pk.map((c) => ident(c)).join(', ');
    const params: unknown[] = [];
    let where = '';
    if (b.after !== undefined && b.after.length > 0) {
      where = `WHERE (${order}) > (${pk.map((c, i) => `$${i + 1}::${types.get(c) ?? 'text'}`).join(', ')})`;
      params.push(...b.after.map((v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : v)));
    }
    const fetch = this.ctx.config.readBatchSize ?? DEFAULTS.readBatchSize;
    const committedAt = new Date().toISOString();
    try {
      // The first checkpoint names the slot before any row is delivered: a crash during the
      // backfill then resumes it and replays the slot from its start, so a row delivered and
      // deleted before the restart gets its delete. (A fresh start would take a new snapshot
      // that no longer holds the row, and the delete would be lost.)
      if (b.after === undefined) yield { changes: [], checkpoint: `${BACKFILL_PREFIX}[]` };
      const rows = cursorRows(b.client, `SELECT * FROM ${this.table.sql} ${where} ORDER BY ${order}`, params, fetch, undefined, b.after ? undefined : async () => {});
      for await (const batch of rows) {
        if (this.closed) return;
        const changes: Change[] = batch.map((row) => ({ op: 'insert', key: this.keyOf(row), after: row, committedAt }));
        const last = batch[batch.length - 1]!;
        this.ctx.metrics.count('stream_backfill_rows', batch.length);
        yield { changes, checkpoint: BACKFILL_PREFIX + JSON.stringify(pk.map((c) => last[c] ?? null)) };
      }
    } catch (err) {
      if (this.closed) return;
      throw new OutflowError('OUTFLOW_SOURCE', `connection "${this.ctx.connection}": the initial read of ${this.table.schema}.${this.table.name} failed: ${describeError(err)}`, {
        retryable: isTransient(err),
        cause: err,
      });
    } finally {
      await b.client.end().catch(() => undefined);
    }
    // The handoff: everything committed after the snapshot comes from the slot, from its start.
    yield { changes: [], checkpoint: b.start };
  }

  private keyOf(row: Row): string {
    const key = keyOf(row, this.model.primaryKey);
    if (key === undefined) {
      throw new OutflowError('OUTFLOW_MODEL_KEY', `connection "${this.ctx.connection}": a change of ${this.table.name} has no primary key (${this.model.primaryKey.join(', ')})`);
    }
    return key;
  }

  private startReplication(): void {
    const generation = ++this.generation;
    const service = new LogicalReplicationService(clientConfig(this.ctx), {
      // Only what core committed is acknowledged: no automatic acknowledgements, no timer
      // acknowledging the last received position.
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: false },
    });
    this.service = service;
    service.on('data', (lsn: string, msg: Pgoutput.Message) => {
      if (generation !== this.generation) return;
      try {
        this.onMessage(msg);
      } catch (err) {
        this.fail(err);
      }
      void lsn;
    });
    service.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) => {
      if (generation === this.generation) this.onKeepalive(lsn, shouldRespond);
    });
    service.on('error', (err: Error) => void this.onReplicationEnd(generation, err));
    const plugin = new OutflowPgoutput({ protoVersion: 1, publicationNames: [this.publication] });
    service
      .subscribe(plugin, this.slot, formatLsn(this.ackLsn))
      .then(() => this.onReplicationEnd(generation, undefined))
      .catch((err: unknown) => this.onReplicationEnd(generation, err));
    if (!this.timer) {
      const every = (this.ctx.config.heartbeatSeconds ?? DEFAULTS.heartbeatSeconds) * 1000;
      this.timer = setInterval(() => void this.heartbeat(), every);
      this.timer.unref();
    }
  }

  private onMessage(msg: Pgoutput.Message): void {
    switch (msg.tag) {
      case 'begin':
        this.txn = {
          changes: [],
          toast: [],
          committedAt: new Date(Number(BigInt(msg.commitTime as bigint) / 1000n)).toISOString(),
          lsn: msg.commitLsn && parseLsn(msg.commitLsn) !== false ? (parseLsn(msg.commitLsn) as bigint).toString(16).padStart(16, '0') : undefined,
          seen: 0,
        };
        return;
      case 'insert':
      case 'update':
      case 'delete':
        if (msg.relation.relationOid !== this.table.oid || !this.txn) return;
        this.onRowChange(this.txn, msg);
        if (this.txn.changes.length >= MAX_BATCH_CHANGES && this.txn.toast.length === 0 && !this.filling) {
          // A part of a big transaction: resuming from the last boundary replays all of it.
          this.push({ changes: this.txn.changes, checkpoint: this.lastBoundary });
          this.txn.changes = [];
        }
        return;
      case 'truncate':
        if (msg.relations.some((r) => r.relationOid === this.table.oid)) {
          this.txn = undefined;
          void this.goStale(`table ${this.table.schema}.${this.table.name} was truncated`);
        }
        return;
      case 'commit': {
        const txn = this.txn;
        this.txn = undefined;
        if (this.stale || this.staling || !txn) return;
        const end = formatLsn(lsnOf(msg.commitEndLsn!));
        // Covered by the checkpoint resumed from, or already received before a reconnect.
        if (lsnOf(end) <= this.skipUpTo) return;
        this.skipUpTo = lsnOf(end);
        this.lastCommittedAt = Date.parse(txn.committedAt);
        if (txn.toast.length || this.filling) {
          // Fetching TOAST values is asynchronous; later transactions wait in line behind it.
          this.filling = (this.filling ?? Promise.resolve())
            .then(async () => {
              if (txn.toast.length) await this.fillToast(txn);
              if (txn.changes.length) this.push({ changes: txn.changes, checkpoint: end });
            })
            .catch((err: unknown) => this.fail(err));
        } else if (txn.changes.length) this.push({ changes: txn.changes, checkpoint: end });
        this.lastBoundary = end;
        return;
      }
      default:
        return;
    }
  }

  private onRowChange(txn: Txn, msg: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete): void {
    const before = txn.changes.length;
    this.decode(txn, msg);
    // Positions order changes by commit, then by their order in the transaction.
    for (let i = before; i < txn.changes.length; i++) {
      const seq = txn.seen++;
      if (txn.lsn !== undefined) txn.changes[i]!.position = `${txn.lsn}:${String(seq).padStart(10, '0')}`;
    }
  }

  private decode(txn: Txn, msg: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete): void {
    const committedAt = txn.committedAt;
    if (msg.tag === 'insert') {
      const { row } = plainRow(msg.new);
      txn.changes.push({ op: 'insert', key: this.keyOf(row), after: row, committedAt });
      return;
    }
    if (msg.tag === 'delete') {
      const old = plainRow((msg.old ?? msg.key ?? {}) as Record<string, unknown>).row;
      const change: Change = { op: 'delete', key: this.keyOf(old), committedAt };
      if (msg.old) change.before = old;
      txn.changes.push(change);
      return;
    }
    const { row, missing } = plainRow(msg.new);
    const key = this.keyOf(row);
    const oldTuple = msg.old ?? msg.key;
    const before = msg.old ? plainRow(msg.old).row : undefined;
    if (oldTuple) {
      const oldKey = keyOf(plainRow(oldTuple as Record<string, unknown>).row, this.model.primaryKey);
      if (oldKey !== undefined && oldKey !== key) {
        // The key itself changed: downstream it is a different record.
        txn.changes.push({ op: 'delete', key: oldKey, committedAt, ...(before ? { before } : {}) });
        const change: Change = { op: 'insert', key, after: row, committedAt };
        txn.changes.push(change);
        if (missing.length) txn.toast.push({ change, missing });
        return;
      }
    }
    const change: Change = { op: 'update', key, after: row, committedAt, ...(before ? { before } : {}) };
    txn.changes.push(change);
    if (missing.length) txn.toast.push({ change, missing });
  }

  /**
   * Fills TOAST columns the update left unchanged (pgoutput does not repeat them without
   * REPLICA IDENTITY FULL) from the row as it is now. A later change of the row is streamed
   * after this one, so the destination still ends with the latest value.
   */
  private async fillToast(txn: Txn): Promise<void> {
    const pk = this.model.primaryKey;
    for (const { change, missing } of txn.toast) {
      const r = await this.sql.query<Row>(
        `SELECT ${missing.map(ident).join(', ')} FROM ${this.table.sql} WHERE ${pk.map((c, i) => `${ident(c)} = $${i + 1}`).join(' AND ')}`,
        pk.map((c) => {
          const v = change.after![c];
          return v !== null && typeof v === 'object' ? JSON.stringify(v) : v;
        }),
      );
      const now = r.rows[0];
      for (const c of missing) change.after![c] = now?.[c] ?? null;
    }
  }

  private push(batch: ChangeBatch): void {
    if (batch.changes.length === 0 && parseLsn(batch.checkpoint) === false) return;
    this.queue.push(batch);
    this.queuedChanges += batch.changes.length;
    if (!this.paused && this.queuedChanges >= HIGH_WATER) this.pause();
    this.wake();
  }

  private pause(): void {
    this.paused = true;
    this.socket()?.pause();
  }

  private resume(): void {
    this.paused = false;
    this.socket()?.resume();
  }

  private socket(): { pause(): void; resume(): void } | undefined {
    return (this.service as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } })?._connection?.stream;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private fail(err: unknown): void {
    if (this.failure === undefined) this.failure = err;
    this.wake();
  }

  /** Nothing is received-but-unsettled: a keepalive position is then safe to confirm. */
  private idle(): boolean {
    return this.txn === undefined && this.queue.length === 0 && (this.lastYielded === undefined || this.lastCommitted >= this.lastYielded);
  }

  private onKeepalive(lsn: string, shouldRespond: boolean): void {
    const at = parseLsn(lsn);
    if (at !== false && this.idle() && at > this.ackLsn) {
      this.ackLsn = at;
      void this.sendStatus();
    } else if (shouldRespond) void this.sendStatus();
  }

  private async sendStatus(): Promise<void> {
    if (this.closed || !this.service) return;
    await this.service.acknowledge(formatLsn(this.ackLsn)).catch(() => undefined);
  }

  /** Confirms the position periodically and publishes the slot's lag. */
  private async heartbeat(): Promise<void> {
    await this.sendStatus();
    await this.measureLag().catch(() => undefined);
  }

  private async measureLag(): Promise<number | undefined> {
    const r = await this.sql.query<{ lag: string | null }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag FROM pg_replication_slots WHERE slot_name = $1`,
      [this.slot],
    );
    const lag = r.rows[0]?.lag;
    if (lag === undefined || lag === null) return undefined;
    // Confirming a commit's end may put the slot one byte past the current insert position.
    const bytes = Math.max(0, Number(lag));
    this.ctx.metrics.gauge('stream_lag_bytes', bytes, { slot: this.slot });
    return bytes;
  }

  /**
   * The replication connection ended. A missing slot makes the stream stale; otherwise it
   * reconnects a few times (the server re-sends from the confirmed position, and what was
   * already received is skipped) before failing with a retryable error.
   */
  private async onReplicationEnd(generation: number, err: unknown): Promise<void> {
    if (generation !== this.generation || this.closed || this.stale || this.staling) return;
    this.generation++;
    const old = this.service;
    this.service = undefined;
    this.txn = undefined;
    await old?.destroy().catch(() => undefined);
    for (let attempt = 1; attempt <= 10 && !this.closed; attempt++) {
      await new Promise((r) => setTimeout(r, Math.min(3000, 200 * attempt)));
      if (this.closed) return;
      let info: SlotRow | undefined | null = null;
      try {
        info = await slotInfo(this.sql, this.slot);
      } catch {
        continue; // the server itself may be restarting
      }
      if (!info || info.wal_status === 'lost') {
        await this.goStale(`replication slot ${this.slot} was dropped or lost its WAL`);
        return;
      }
      if (info.active_pid !== null) continue; // the old walsender has not let go yet
      this.ctx.logger.warn({ slot: this.slot, err: describeError(err) }, 'logical replication connection lost; reconnecting');
      if (this.paused) this.paused = false;
      this.startReplication();
      return;
    }
    if (this.closed) return;
    this.fail(
      new OutflowError(
        'OUTFLOW_SOURCE',
        `connection "${this.ctx.connection}": logical replication from slot ${this.slot} stopped: ${err === undefined ? 'the server ended it' : describeError(err)}`,
        { retryable: true, cause: err },
      ),
    );
  }

  /**
   * The stream can no longer be followed (slot dropped, table truncated): stop, re-create
   * the slot for the reconciling diff, and end iteration with OUTFLOW_STREAM_STALE once
   * the changes received before it are handed out.
   */
  private goStale(why: string): Promise<void> {
    // Once: a second caller (health() while the replication error path is at it) waits for
    // the same re-creation. Stale is reported only after the new position is secured.
    this.staling ??= this.secureAfterStale(why);
    return this.staling;
  }

  private async secureAfterStale(why: string): Promise<void> {
    this.ctx.logger.warn({ slot: this.slot, reason: why }, 'change stream is stale; a diff must reconcile it');
    this.ctx.metrics.count('stream_stale', 1, { slot: this.slot });
    try {
      await this.service?.stop();
      const start = await recreateForReconcile(this.ctx, this.sql, this.slot);
      this.fail(staleError(this.ctx, this.slot, why, start));
    } catch (err) {
      this.fail(staleError(this.ctx, this.slot, `${why}; re-creating the slot failed: ${describeError(err)}`, formatLsn(this.lastCommitted)));
    } finally {
      this.stale = true;
    }
  }

  async commit(checkpoint: Checkpoint): Promise<void> {
    const at = parseLsn(checkpoint);
    if (at === false) return; // a backfill checkpoint: the slot has nothing to free yet
    if (at > this.lastCommitted) this.lastCommitted = at;
    if (at > this.ackLsn) this.ackLsn = at;
    failpoint('postgres.before-slot-advance');
    await this.sendStatus();
  }

  async health(): Promise<{ stale: boolean; lagMs?: number }> {
    if (this.stale) return { stale: true };
    if (this.staling) {
      await this.staling;
      return { stale: true };
    }
    const info = await slotInfo(this.sql, this.slot).catch(() => undefined);
    if (!info || info.wal_status === 'lost') {
      // The new position is secured before stale is reported: the engine closes the stream
      // as soon as it hears it (see Stream.open's handshake).
      await this.goStale(info ? `replication slot ${this.slot} lost WAL it needed` : `replication slot ${this.slot} was dropped`);
      return { stale: true };
    }
    await this.measureLag().catch(() => undefined);
    const pending = this.lastYielded !== undefined && this.lastYielded > this.lastCommitted;
    const lagMs = pending && this.lastCommittedAt !== undefined ? Math.max(0, Date.now() - this.lastCommittedAt) : 0;
    this.ctx.metrics.gauge('stream_lag_ms', lagMs, { slot: this.slot });
    return { stale: false, lagMs };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.wake();
    await this.service?.destroy().catch(() => undefined);
    await this.backfill?.client.end().catch(() => undefined);
    await this.sql.end().catch(() => undefined);
  }
}

/** Makes sure the publication exists and publishes exactly this table. */
async function ensurePublication(sql: pg.Client, name: string, table: ResolvedTable): Promise<void> {
  const r = await sql.query<{ has: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = $1 AND pr.prrelid = $2) AS has,
            EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1) AS pub`,
    [name, table.oid],
  );
  const row = r.rows[0] as unknown as { has: boolean; pub: boolean };
  if (row.has) return;
  if (row.pub) await sql.query(`ALTER PUBLICATION ${ident(name)} SET TABLE ${table.sql}`);
  else await sql.query(`CREATE PUBLICATION ${ident(name)} FOR TABLE ${table.sql}`);
}

/** Refuses tables whose updates and deletes would not carry the model's key. */
async function checkReplicaIdentity(sql: pg.Client, table: ResolvedTable, model: Model, where: string): Promise<void> {
  const r = await sql.query<{ ident: string }>(`SELECT relreplident AS ident FROM pg_class WHERE oid = $1`, [table.oid]);
  const identity = r.rows[0]?.ident;
  if (identity === 'f') return;
  const samePk = table.primaryKey.length > 0 && model.primaryKey.every((c) => table.primaryKey.includes(c));
  if (identity === 'd' && samePk) return;
  if (identity === 'i') {
    const idx = await sql.query<{ cols: string[] }>(
      `SELECT array_agg(a.attname::text) AS cols FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = $1 AND i.indisreplident GROUP BY i.indexrelid`,
      [table.oid],
    );
    if (model.primaryKey.every((c) => idx.rows[0]?.cols.includes(c))) return;
  }
  throw new OutflowError(
    'OUTFLOW_CONFIG_INVALID',
    `${where}: deletes and updates of ${table.schema}.${table.name} would not carry its key (${model.primaryKey.join(', ')}): ` +
      `give the table that primary key, or run ALTER TABLE ${table.sql} REPLICA IDENTITY FULL`,
  );
}

async function open(ctx: Ctx, model: Model, from: Checkpoint | null, options?: { sync?: string; reconciled?: boolean }): Promise<ChangeStream> {
  const where = `connection "${ctx.connection}"`;
  if (!model.table) {
    throw new OutflowError('OUTFLOW_CONFIG_INVALID', `${where}: a PostgreSQL change stream follows a table; this model is a query (use capture: diff)`);
  }
  const sql = await connect(ctx);
  let handedOver = false;
  try {
    const table = await resolveTable(sql, model.table, where);
    const missing = model.primaryKey.filter((c) => !table.columns.some((col) => col.name === c));
    if (missing.length) throw new OutflowError('OUTFLOW_MAPPING', `${where}: primary key column ${missing.join(', ')} is not in ${table.schema}.${table.name}`);
    await checkReplicaIdentity(sql, table, model, where);
    const name = streamName(await currentDatabase(sql), ctx.connection, table.schema, table.name, options?.sync);
    await ensurePublication(sql, name, table);
    const info = await slotInfo(sql, name);
    const state = await loadState(ctx, name);
    const usable = info !== undefined && info.wal_status !== 'lost' && state !== undefined;
    let stream: PostgresChangeStream;

    if (from !== null) {
      const backfillAfter = from.startsWith(BACKFILL_PREFIX) ? (JSON.parse(from.slice(BACKFILL_PREFIX.length)) as Value[]) : undefined;
      const at = backfillAfter ? false : parseLsn(from);
      if (!backfillAfter && at === false) throw new OutflowError('OUTFLOW_STREAM_STALE', `${where}: checkpoint "${from}" is not a PostgreSQL position`);
      if (!usable || (at !== false && at < lsnOf(state.start)) || state.reconcile) {
        const why = !info
          ? `replication slot ${name} does not exist (dropped?)`
          : info.wal_status === 'lost'
            ? `replication slot ${name} lost WAL it needed`
            : state?.reconcile
              ? 'the stream is waiting for a reconciling diff'
              : `checkpoint ${from} predates replication slot ${name}`;
        const start = state?.reconcile && usable ? state.start : await recreateForReconcile(ctx, sql, name);
        throw staleError(ctx, name, why, start);
      }
      if (backfillAfter) {
        // The initial read stopped part way: read the rest (as it is now), then stream from
        // the slot's start. Changes already reflected are applied again, idempotently.
        const client = await connect(ctx);
        stream = new PostgresChangeStream(ctx, sql, table, model, name, name, state.start, { client, start: state.start, after: backfillAfter });
      } else {
        stream = new PostgresChangeStream(ctx, sql, table, model, name, name, formatLsn(at as bigint), undefined);
      }
    } else if (usable && state.reconcile && !options?.reconciled) {
      // Secured, but the engine has not recorded a completed reconcile: ask for it again.
      throw staleError(ctx, name, 'the stream is waiting for a reconciling diff', state.start);
    } else if (usable && state.reconcile) {
      // Core reconciled by a diff after the slot was re-created: stream from its start.
      await ctx.kv.set(kvKey(name), JSON.stringify({ start: state.start, reconcile: false } satisfies SlotState));
      stream = new PostgresChangeStream(ctx, sql, table, model, name, name, state.start, undefined);
    } else {
      // A fresh start: a new slot whose exported snapshot is the backfill, so the rows read and
      // the changes streamed after the slot's consistent point meet with no gap or overlap.
      await dropSlot(sql, name);
      const repl = new pg.Client(clientConfig(ctx, { replication: 'database' } as pg.ClientConfig));
      await repl.connect();
      const client = await connect(ctx);
      try {
        const r = await repl.query<{ consistent_point: string; snapshot_name: string }>(
          `CREATE_REPLICATION_SLOT ${ident(name)} LOGICAL pgoutput EXPORT_SNAPSHOT`,
        );
        const { consistent_point: start, snapshot_name: snapshot } = r.rows[0]!;
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await client.query(`SET TRANSACTION SNAPSHOT ${literal(snapshot)}`);
        await ctx.kv.set(kvKey(name), JSON.stringify({ start, reconcile: false } satisfies SlotState));
        stream = new PostgresChangeStream(ctx, sql, table, model, name, name, start, { client, start });
      } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
      } finally {
        await repl.end().catch(() => undefined);
      }
    }
    handedOver = true;
    return stream;
  } catch (err) {
    if (isOutflowError(err)) throw err;
    throw new OutflowError('OUTFLOW_SOURCE', `${where}: opening the change stream of ${model.table} failed: ${describeError(err)}`, {
      retryable: isTransient(err),
      cause: err,
    });
  } finally {
    if (!handedOver) await sql.end().catch(() => undefined);
  }
}

/** Logical replication (pgoutput) of one table, with an initial backfill. */
export const stream: Stream<PostgresConfig> = { open };

/** Drops the slot and publication Outflow made for a table (when a sync is removed). */
export async function dropStream(ctx: Ctx, tableName: string, sync?: string): Promise<void> {
  const sql = await connect(ctx);
  try {
    const table = await resolveTable(sql, tableName, `connection "${ctx.connection}"`);
    const name = streamName(await currentDatabase(sql), ctx.connection, table.schema, table.name, sync);
    await dropSlot(sql, name);
    await sql.query(`DROP PUBLICATION IF EXISTS ${ident(name)}`);
    await ctx.kv.delete(kvKey(name));
  } finally {
    await sql.end().catch(() => undefined);
  }
}
