import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type {
  AnyConnector,
  Capabilities,
  Change,
  ConnectorContext,
  Model,
  Operation,
  RecordResult,
  Row,
} from '../contracts.js';
import { keyOf } from '../contracts.js';
import { OutflowError, describeError, isOutflowError } from '../errors.js';
import type { SyncConfig } from '../config/schema.js';
import type { Ack, DiffStore, SnapshotIngest, StateStore } from '../diff/store.js';
import type { Ledger, RunCounts, RunStatus } from '../ledger/ledger.js';
import type { Logger } from '../logger.js';
import { redact, redactValue } from '../redact.js';
import { Delivery, type DeliveryOutcome } from './delivery.js';
import { assertColumns, createMapper, fingerprint, idempotencyKey, mapFields, mapMatch, type Mapper } from './mapping.js';
import { assertSupported, clearedFields, planKind, type PlannedKind } from './plan.js';
import { RateLimiter } from './rate-limit.js';

/** A connection ready to use: its connector and a context with resolved config. */
export interface ConnectionHandle {
  connector: AnyConnector;
  ctx: ConnectorContext;
}

export interface SyncEnvironment {
  ledger: Ledger;
  /** Delivered state of syncs whose rows pass through JavaScript (no pushdown, streams). */
  stateStore: StateStore;
  connections: ReadonlyMap<string, ConnectionHandle>;
  logger: Logger;
  /** Aborting it drains gracefully: batches in flight settle and are recorded. */
  signal: AbortSignal;
}

export interface Progress {
  sync: string;
  phase: 'reading' | 'diffing' | 'delivering' | 'streaming' | 'done';
  read: number;
  /** Changes to deliver in this run, once known. */
  total?: number;
  settled: number;
  counts: RunCounts;
}

export interface RunOptions {
  /** Compute the plan only: nothing is sent, nothing is written. */
  dryRun?: boolean;
  /** Most planned changes to return in `plan` (dry runs). */
  planLimit?: number;
  onProgress?(p: Progress): void;
  /** Retry and backoff tuning (tests shorten it). */
  backoff?: { baseMs: number; maxMs: number };
  /** Before running, clear parked rejections so they are sent again (`outflow retry`). */
  unpark?: boolean | string[];
}

export interface PlannedChange {
  kind: PlannedKind;
  key: string;
  fields?: Row;
  match?: Row;
}

export interface RunSummary extends RunCounts {
  sync: string;
  capture: 'diff' | 'stream';
  status: Exclude<RunStatus, 'running'>;
  durationMs: number;
  runId?: number;
  error?: { code: string; message: string };
  /** Rows parked with errors in total for this sync after the run. */
  parked?: number;
  plan?: { counts: Record<PlannedKind, number>; changes: PlannedChange[]; truncated: boolean };
}

interface Tag {
  kind: PlannedKind;
  op: Change['op'];
  fp: string | null;
  batch?: number;
}

const HEALTH_EVERY_MS = 30_000;

const zero = (): RunCounts => ({ inserted: 0, updated: 0, deleted: 0, rejected: 0, skipped: 0 });

function modelOf(sync: SyncConfig): Model {
  const primaryKey = typeof sync.from.primaryKey === 'string' ? [sync.from.primaryKey] : [...sync.from.primaryKey];
  return {
    primaryKey,
    ...(sync.from.table ? { table: sync.from.table } : {}),
    ...(sync.from.sql ? { sql: sync.from.sql } : {}),
    ...(sync.from.file ? { file: sync.from.file } : {}),
  };
}

/**
 * Runs one sync once: a diff run reads the model, diffs it with the delivered state and
 * delivers the changes; a stream run follows the source's change stream until the signal
 * aborts. State advances only by what the destination acknowledged or what was parked.
 */
export async function runSync(env: SyncEnvironment, sync: SyncConfig, options: RunOptions = {}): Promise<RunSummary> {
  const started = Date.now();
  const capture = sync.capture ?? 'diff';
  const from = env.connections.get(sync.from.connection);
  const to = env.connections.get(sync.to.connection);
  if (!from || !to) {
    throw new OutflowError('OUTFLOW_CONFIG_INVALID', `sync "${sync.name}" names a connection that is not configured`);
  }
  const destination = to.connector.destination;
  if (!destination) {
    throw new OutflowError('OUTFLOW_CONNECTOR_ROLE', `connection "${sync.to.connection}" (${to.connector.name}) is not a destination`);
  }
  const where = `sync "${sync.name}"`;
  const caps = await destination.capabilities(to.ctx, sync.to.object);
  assertSupported(sync, caps, where);
  const mapper = createMapper(sync.mappings, sync.to.matchKey);
  const model = modelOf(sync);

  if (options.dryRun) return planDiff(env, sync, from, mapper, model, caps, options, started);

  const owner = `${hostname()}/${process.pid}/${randomUUID()}`;
  const leaseMs = 60_000;
  if (!(await env.ledger.acquireLease(sync.name, owner, leaseMs)) && !(await takeOverFromDeadProcess(env, sync.name, owner, leaseMs))) {
    throw new OutflowError('OUTFLOW_LOCKED', `${where} is running in another process; wait for it to finish`);
  }
  const renew = setInterval(() => void env.ledger.acquireLease(sync.name, owner, leaseMs).catch(() => undefined), leaseMs / 3);
  renew.unref();
  await env.ledger.abandonRunningRuns(sync.name);
  const runId = await env.ledger.startRun(sync.name, capture);
  const counts = zero();
  let state: DiffStore | null = null;
  try {
    state = await openStore(env, sync, from, model, mapper, capture, false);
    if (options.unpark) await state.unpark(options.unpark === true ? undefined : options.unpark);
    const previousMapping = await state.getMeta('mapping');
    if (previousMapping !== undefined && previousMapping !== mapper.hash) {
      const n = await state.markAllStale();
      env.logger.info({ sync: sync.name, rows: n }, 'mappings changed: every delivered row will be sent again');
    }
    await state.setMeta('mapping', mapper.hash);

    const deliver = new Deliverer(env, sync, to, caps, state, counts, runId, options);
    if (capture === 'stream') {
      await streamInto(env, sync, from, model, mapper, deliver, options);
    } else {
      await diffInto(env, sync, from, model, mapper, deliver, state, options);
    }
    const aborted = env.signal.aborted;
    const parked = await env.ledger.countRowErrors(sync.name);
    const status: RunSummary['status'] = aborted ? 'aborted' : counts.rejected > 0 ? 'partial' : 'succeeded';
    await env.ledger.finishRun(runId, status, counts, aborted ? 'stopped by a signal before it finished' : undefined);
    options.onProgress?.({ sync: sync.name, phase: 'done', read: 0, settled: 0, counts });
    return { sync: sync.name, capture, status, ...counts, durationMs: Date.now() - started, runId, parked };
  } catch (err) {
    const message = redact(describeError(err));
    await env.ledger.finishRun(runId, 'failed', counts, message).catch(() => undefined);
    const code = isOutflowError(err) ? err.code : 'OUTFLOW_INTERNAL';
    env.logger.error({ sync: sync.name, code, err: message }, 'sync failed');
    return {
      sync: sync.name,
      capture,
      status: 'failed',
      ...counts,
      durationMs: Date.now() - started,
      runId,
      error: { code, message: isOutflowError(err) ? redact(err.message) : message },
    };
  } finally {
    clearInterval(renew);
    await state?.close();
    await env.ledger.releaseLease(sync.name, owner).catch(() => undefined);
  }
}

/**
 * A lease held by a process of this host that no longer exists (killed, crashed) is taken
 * over at once instead of waiting for it to expire.
 */
async function takeOverFromDeadProcess(env: SyncEnvironment, sync: string, owner: string, leaseMs: number): Promise<boolean> {
  const holder = await env.ledger.leaseHolder(sync);
  if (!holder) return env.ledger.acquireLease(sync, owner, leaseMs);
  const [host, pid] = holder.owner.split('/');
  if (host !== hostname() || !pid || !/^\d+$/.test(pid) || isAlive(Number(pid))) return false;
  await env.ledger.releaseLease(sync, holder.owner);
  env.logger.warn({ sync, previousOwner: holder.owner }, 'took over the lease of a process that is gone');
  return env.ledger.acquireLease(sync, owner, leaseMs);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The delivered-state store of a sync: the source's pushdown store when it has one (and the
 * sync allows it), else the embedded DuckDB store. Stream syncs always use the embedded one.
 */
async function openStore(
  env: SyncEnvironment,
  sync: SyncConfig,
  from: ConnectionHandle,
  model: Model,
  mapper: Mapper,
  capture: 'diff' | 'stream',
  readOnly: boolean,
): Promise<DiffStore> {
  const pushdown = from.connector.source?.diff;
  const columns = mapper.fields === null ? null : [...new Set([...mapper.fields, ...(mapper.match ?? [])].map(([, col]) => col))];
  if (pushdown && capture === 'diff' && sync.from.pushdown !== false) {
    return pushdown.open(from.ctx, model, { sync: sync.name, columns, readOnly });
  }
  return env.stateStore.open({ sync: sync.name, columns, readOnly });
}

/**
 * Gets the model ready to diff: the embedded store ingests every row read from the source;
 * a pushdown store reads the model itself, so only its columns are checked here.
 */
async function prepareSnapshot(
  sync: SyncConfig,
  from: ConnectionHandle,
  model: Model,
  mapper: Mapper,
  state: DiffStore,
  onRead: (n: number) => void,
): Promise<void> {
  if (state.ingest) {
    await snapshot(sync, from, model, mapper, state.ingest, onRead);
    return;
  }
  const source = from.connector.source!;
  if (source.columns) {
    assertModelColumns(mapper, model, (await source.columns(from.ctx, model)).map((c) => c.name), `sync "${sync.name}"`);
  }
}

/** Fails before anything is read or sent when a mapped or key column is not in the model. */
function assertModelColumns(mapper: Mapper, model: Model, columns: string[], where: string): void {
  assertColumns(mapper, columns, where);
  const missing = model.primaryKey.filter((c) => !columns.includes(c));
  if (missing.length) {
    throw new OutflowError(
      'OUTFLOW_MAPPING',
      `${where}: primary key column ${missing.join(', ')} is not in the model (columns: ${columns.join(', ')})`,
    );
  }
}

/** Reads the model into the embedded store's snapshot; fails on a missing key column or null key. */
async function snapshot(
  sync: SyncConfig,
  from: ConnectionHandle,
  model: Model,
  mapper: Mapper,
  ingest: SnapshotIngest,
  onRead: (n: number) => void,
): Promise<number> {
  const source = from.connector.source;
  if (!source) {
    throw new OutflowError('OUTFLOW_CONNECTOR_ROLE', `connection "${sync.from.connection}" (${from.connector.name}) is not a source`);
  }
  const where = `sync "${sync.name}"`;
  let read = 0;
  let known: Set<string> | null = null;
  try {
    for await (const batch of source.read(from.ctx, model)) {
      if (batch.rows.length === 0) continue;
      if (known === null) {
        const columns = Object.keys(batch.rows[0]!);
        assertModelColumns(mapper, model, columns, where);
        await ingest.begin(columns, batch.rows.slice(0, 1000));
        known = new Set(columns);
      }
      const keys = new Array<string>(batch.rows.length);
      const fps = new Array<string>(batch.rows.length);
      for (let i = 0; i < batch.rows.length; i++) {
        const row = batch.rows[i]!;
        const key = keyOf(row, model.primaryKey);
        if (key === undefined) {
          throw new OutflowError(
            'OUTFLOW_MODEL_KEY',
            `${where}: row ${read + i + 1} of the model has a null primary key (${model.primaryKey.join(', ')}); every row needs one`,
          );
        }
        if ((read + i) % 10_000 === 0) checkColumns(known, row, read + i + 1, where);
        keys[i] = key;
        fps[i] = fingerprint(mapFields(mapper, row), mapMatch(mapper, row));
      }
      await ingest.add(keys, batch.rows, fps);
      read += batch.rows.length;
      onRead(read);
    }
  } catch (err) {
    await ingest.end().catch(() => undefined);
    if (isOutflowError(err)) throw err;
    throw new OutflowError('OUTFLOW_SOURCE', `${where}: reading the model failed: ${describeError(err)}`, { cause: err });
  }
  await ingest.end();
  return read;
}

/** Fails when a row carries a column the model's first row did not have. */
function checkColumns(known: Set<string>, row: Row, n: number, where: string): void {
  for (const c of Object.keys(row)) {
    if (!known.has(c)) {
      throw new OutflowError('OUTFLOW_SOURCE', `${where}: row ${n} has column "${c}", which the model's first row did not have`);
    }
  }
}

async function diffInto(
  env: SyncEnvironment,
  sync: SyncConfig,
  from: ConnectionHandle,
  model: Model,
  mapper: Mapper,
  deliver: Deliverer,
  state: DiffStore,
  options: RunOptions,
): Promise<void> {
  let read = 0;
  const progress = (phase: Progress['phase'], total?: number) =>
    options.onProgress?.({ sync: sync.name, phase, read, settled: deliver.settled, counts: deliver.counts, ...(total === undefined ? {} : { total }) });
  await prepareSnapshot(sync, from, model, mapper, state, (n) => {
    read = n;
    progress('reading');
  });
  if (env.signal.aborted) return;
  progress('diffing');
  const c = await state.computeChanges();
  const total = c.insert + c.update + c.delete;
  deliver.total = total;
  progress('delivering', total);
  for await (const chunk of state.changes()) {
    if (env.signal.aborted) break;
    for (const d of chunk) {
      const after = d.row ?? undefined;
      await deliver.push({ op: d.op, key: d.key, ...(after ? { after } : {}) }, d.fp, d.oldFp, d.destId, mapper);
    }
  }
  await deliver.close();
  if (!env.signal.aborted) {
    const resolved = await state.tidy();
    if (resolved.length) await env.ledger.resolveRowErrors(sync.name, resolved);
  }
}

async function streamInto(
  env: SyncEnvironment,
  sync: SyncConfig,
  from: ConnectionHandle,
  model: Model,
  mapper: Mapper,
  deliver: Deliverer,
  options: RunOptions,
): Promise<void> {
  const source = from.connector.stream;
  if (!source) {
    throw new OutflowError('OUTFLOW_CONNECTOR_ROLE', `connection "${sync.from.connection}" (${from.connector.name}) has no change stream`);
  }
  const checkpoint = (await env.ledger.getCheckpoint(sync.name)) ?? null;
  const stream = await source.open(from.ctx, model, checkpoint, { sync: sync.name });
  const pending: { checkpoint: string; remaining: number }[] = [];
  let commitChain: Promise<void> = Promise.resolve();
  deliver.onBatchSettled = (batch) => {
    const p = pending[batch - base];
    if (p) p.remaining--;
    advance();
  };
  let base = 0;
  const advance = () => {
    while (pending.length && pending[0]!.remaining === 0) {
      const done = pending.shift()!;
      base++;
      commitChain = commitChain.then(async () => {
        await env.ledger.setCheckpoint(sync.name, done.checkpoint);
        await stream.commit(done.checkpoint);
      });
    }
  };
  const fpOf = (row: Row) => fingerprint(mapFields(mapper, row), mapMatch(mapper, row));
  const onAbort = () => void stream.close().catch(() => undefined);
  env.signal.addEventListener('abort', onAbort, { once: true });
  // A stream that falls behind its retention while running is noticed here, not only at
  // the next open: it ends with OUTFLOW_STREAM_STALE and the caller reconciles by a diff.
  let stale = false;
  const watchdog = setInterval(() => {
    void stream
      .health()
      .then((h) => {
        if (h.lagMs !== undefined) from.ctx.metrics.gauge('stream_lag_ms', h.lagMs, { sync: sync.name });
        if (h.stale && !stale) {
          stale = true;
          void stream.close().catch(() => undefined);
        }
      })
      .catch(() => undefined);
  }, HEALTH_EVERY_MS);
  watchdog.unref();
  let read = 0;
  try {
    for await (const batch of stream) {
      const index = base + pending.length;
      pending.push({ checkpoint: batch.checkpoint, remaining: batch.changes.length });
      for (const change of batch.changes) {
        read++;
        const fp = change.after ? fpOf(change.after) : null;
        await deliver.push(change, fp, null, null, mapper, index);
      }
      advance();
      deliver.flush();
      options.onProgress?.({ sync: sync.name, phase: 'streaming', read, settled: deliver.settled, counts: deliver.counts });
      if (env.signal.aborted) break;
    }
    await deliver.close();
    advance();
    await commitChain;
    if (stale && !env.signal.aborted) {
      throw new OutflowError('OUTFLOW_STREAM_STALE', `sync "${sync.name}": the change stream went stale while running; it will be reconciled by a diff`);
    }
  } finally {
    clearInterval(watchdog);
    env.signal.removeEventListener('abort', onAbort);
    await stream.close().catch(() => undefined);
  }
}

/** Turns changes into operations, delivers them and records every settled record. */
class Deliverer {
  readonly delivery: Delivery<Tag>;
  settled = 0;
  total: number | undefined;
  onBatchSettled: ((batch: number) => void) | undefined;
  private readonly hasErrorsAtStart: Promise<boolean>;

  constructor(
    private readonly env: SyncEnvironment,
    private readonly sync: SyncConfig,
    private readonly to: ConnectionHandle,
    private readonly caps: Capabilities,
    private readonly state: DiffStore,
    readonly counts: RunCounts,
    private readonly runId: number,
    private readonly options: RunOptions,
  ) {
    const destination = to.connector.destination!;
    const batchSize = Math.max(1, Math.min(caps.maxBatchSize, sync.delivery?.batchSize ?? caps.maxBatchSize));
    const concurrency = Math.max(1, Math.min(caps.concurrency, sync.delivery?.concurrency ?? caps.concurrency));
    this.hasErrorsAtStart = env.ledger.countRowErrors(sync.name).then((n) => n > 0);
    this.delivery = new Delivery<Tag>({
      write: (ops) => destination.write(to.ctx, sync.to.object, ops),
      batchSize,
      concurrency,
      limiter: new RateLimiter(caps.rateLimits),
      maxAttempts: sync.delivery?.maxAttempts ?? 6,
      onExhausted: (sync.capture ?? 'diff') === 'stream' ? 'retry-forever' : 'fail',
      ...(options.backoff ? { backoff: options.backoff } : {}),
      signal: env.signal,
      onOutcomes: (o) => this.record(o),
      beforeWrite: (items) => this.logSent(items),
      onRetry: (reason, delayMs) =>
        env.logger.debug({ sync: sync.name, reason: redact(reason), delayMs: Math.round(delayMs) }, 'retrying'),
    });
  }

  async push(
    change: Change,
    fp: string | null,
    oldFp: string | null,
    destId: string | null,
    mapper: Mapper,
    batch?: number,
  ): Promise<void> {
    const kind = planKind(change.op, oldFp !== null || change.op !== 'insert', this.sync.to, this.caps);
    const tag: Tag = { kind, op: change.op, fp, ...(batch === undefined ? {} : { batch }) };
    if (kind === 'skip' || kind === 'forget') {
      // Not sent, but settled in order with the rest (a stream checkpoint may wait on it).
      const op: Operation = { kind: 'update', key: change.key, idempotencyKey: '' };
      this.local.push({ item: { op, tag }, result: { ok: true }, attempts: 0 });
      if (this.local.length >= 500 || batch !== undefined) await this.flushLocal();
      return;
    }
    const row = change.after ?? change.before ?? {};
    const op: Operation = {
      kind: kind === 'clear' ? 'update' : kind,
      key: change.key,
      idempotencyKey: idempotencyKey(this.sync.name, change.key, kind, oldFp, fp),
    };
    const match = change.after ? mapMatch(mapper, change.after) : change.before ? mapMatch(mapper, change.before) : undefined;
    if (match) op.match = match;
    if (kind === 'clear') op.fields = clearedFields(this.sync.mappings ?? {});
    else if (kind !== 'delete') op.fields = mapFields(mapper, row);
    if (destId) op.destinationId = destId;
    await this.delivery.push({ op, tag });
  }

  flush(): void {
    this.delivery.flush();
  }

  async close(): Promise<void> {
    await this.flushLocal();
    await this.delivery.close();
  }

  private local: DeliveryOutcome<Tag>[] = [];
  private serial: Promise<void> = Promise.resolve();

  private flushLocal(): Promise<void> {
    const outcomes = this.local.splice(0);
    return outcomes.length ? this.record(outcomes) : Promise.resolve();
  }

  /** Logs the records of a batch as sent before it is written (see DiffStore). */
  private logSent(items: { op: Operation; tag: Tag }[]): Promise<void> {
    const acks: Ack[] = [];
    for (const { op, tag } of items) if (tag.fp !== null && tag.kind !== 'delete') acks.push({ key: op.key, kind: 'sent', fp: tag.fp });
    if (acks.length === 0) return Promise.resolve();
    const next = this.serial.then(() => this.state.apply(acks));
    this.serial = next.catch(() => undefined);
    return next;
  }

  /** Records outcomes one call at a time: state and ledger writes never interleave. */
  private record(outcomes: DeliveryOutcome<Tag>[]): Promise<void> {
    const next = this.serial.then(() => this.recordNow(outcomes));
    this.serial = next.catch(() => undefined);
    return next;
  }

  private async recordNow(outcomes: DeliveryOutcome<Tag>[]): Promise<void> {
    const acks: Ack[] = [];
    const resolved: string[] = [];
    for (const { item, result } of outcomes) {
      const { tag, op } = item;
      const key = op.key;
      if (result.ok) {
        resolved.push(key);
        switch (tag.kind) {
          case 'skip':
            this.counts.skipped++;
            if (tag.fp !== null) acks.push({ key, kind: 'delivered', fp: tag.fp });
            break;
          case 'forget':
            if (tag.op === 'delete') acks.push({ key, kind: 'forget' });
            else this.counts.skipped++;
            break;
          case 'delete':
          case 'clear':
            this.counts.deleted++;
            acks.push({ key, kind: 'deleted' });
            break;
          default:
            if (tag.op === 'insert') this.counts.inserted++;
            else this.counts.updated++;
            acks.push({ key, kind: 'delivered', fp: tag.fp!, destId: result.destinationId ?? null });
        }
      } else {
        this.counts.rejected++;
        await this.recordError(key, tag, result);
        if (!result.retryable) acks.push({ key, kind: 'parked', fp: tag.op === 'delete' ? null : tag.fp });
      }
      if (tag.batch !== undefined) this.onBatchSettled?.(tag.batch);
    }
    await this.state.apply(acks);
    if (resolved.length && (await this.hasErrorsAtStart)) await this.env.ledger.resolveRowErrors(this.sync.name, resolved);
    this.settled += outcomes.length;
    if (this.settled % 1000 < outcomes.length) await this.env.ledger.updateRun(this.runId, this.counts);
    this.options.onProgress?.({
      sync: this.sync.name,
      phase: 'delivering',
      read: 0,
      settled: this.settled,
      counts: this.counts,
      ...(this.total === undefined ? {} : { total: this.total }),
    });
  }

  private async recordError(key: string, tag: Tag, result: Extract<RecordResult, { ok: false }>): Promise<void> {
    await this.env.ledger.recordRowError(this.sync.name, {
      key,
      op: tag.kind,
      reason: redact(result.reason),
      retryable: result.retryable,
    });
  }
}

/** A dry run: the changes a run would send, computed against the delivered state read-only. */
async function planDiff(
  env: SyncEnvironment,
  sync: SyncConfig,
  from: ConnectionHandle,
  mapper: Mapper,
  model: Model,
  caps: Capabilities,
  options: RunOptions,
  started: number,
): Promise<RunSummary> {
  const limit = options.planLimit ?? Number.POSITIVE_INFINITY;
  const state = await openStore(env, sync, from, model, mapper, 'diff', true);
  const counts = { upsert: 0, update: 0, insert: 0, delete: 0, clear: 0, skip: 0, forget: 0 } as Record<PlannedKind, number>;
  const byOp = zero();
  const changes: PlannedChange[] = [];
  try {
    const previousMapping = await state.getMeta('mapping');
    const stale = previousMapping !== undefined && previousMapping !== mapper.hash;
    await prepareSnapshot(sync, from, model, mapper, state, () => undefined);
    await state.computeChanges();
    for await (const chunk of state.changes()) {
      for (const d of chunk) {
        const kind = planKind(d.op, d.oldFp !== null || d.op !== 'insert', sync.to, caps);
        counts[kind]++;
        if (kind === 'skip') byOp.skipped++;
        else if (kind === 'delete' || kind === 'clear') byOp.deleted++;
        else if (kind !== 'forget' && d.op === 'insert') byOp.inserted++;
        else if (kind !== 'forget') byOp.updated++;
        if (changes.length >= limit || kind === 'forget') continue;
        const after = d.row ?? undefined;
        const pc: PlannedChange = { kind, key: d.key };
        if (after && kind !== 'delete') {
          pc.fields = redactValue(mapFields(mapper, after));
          const m = mapMatch(mapper, after);
          if (m) pc.match = redactValue(m);
        }
        if (kind === 'clear') pc.fields = clearedFields(sync.mappings ?? {});
        changes.push(pc);
      }
    }
    if (stale) env.logger.info({ sync: sync.name }, 'mappings changed since the last run: a run will send every row again');
  } finally {
    await state.close();
  }
  return {
    sync: sync.name,
    capture: sync.capture ?? 'diff',
    status: 'succeeded',
    ...byOp,
    durationMs: Date.now() - started,
    plan: { counts, changes, truncated: Object.values(counts).reduce((a, b) => a + b, 0) - counts.forget > changes.length },
  };
}

