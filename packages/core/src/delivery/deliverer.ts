import type { Capabilities, Change, LookupResult, Operation, RecordResult, Row } from '../contracts.js';
import { describeError } from '../errors.js';
import type { SyncConfig } from '../config/schema.js';
import type { Ack, DiffStore } from '../state/store.js';
import type { ConnectionHandle } from '../engine/connections.js';
import { idempotencyKey, mapFields, mapMatch, type Mapper } from '../mapping/mapper.js';
import { clearedFields, planKind, type PlannedKind } from '../mapping/operations.js';
import type { ConnectionBudget } from './rate-budget.js';
import type { Ledger, RunCounts } from '../ledger/ledger.js';
import type { Logger } from '../logger.js';
import { redact } from '../redact.js';
import { Delivery, outcomeUnknown, type DeliveryOutcome } from './pipeline.js';
import { AckWriter } from './ack-writer.js';
import { RecentMap } from '../recent-map.js';
import { DEFAULT_MAX_ROW_ATTEMPTS, tooManyRejected } from './guards.js';
import { compileTriggers, type EventTriggers, type FiredEvent } from '../events/triggers.js';
import { decodeEventState, encodeEventState, nextEventState, type EventState } from '../events/state.js';

/**
 * How many keys a run remembers having queued: far more than can wait to be recorded in the
 * delivered state, so a key queued lately is never taken for one the destination never had.
 */
const TOUCHED_KEYS = 100_000;

/** Caller data carried with each operation through the pipeline. */
interface Tag {
  kind: PlannedKind;
  op: Change['op'];
  fp: string | null;
  /** The stream batch the change came in, for checkpointing. */
  batch?: number;
  /** The change's stream position, recorded with its ack (see DiffStore.positions). */
  pos?: string;
  /** Event mode: the values kept of the row once delivered (events/state.ts). */
  state?: string;
  /** Event mode: the events one change fired, settled together. */
  group?: EventGroup;
  /** The operation went through a pipeline: its key counts as in flight until it is recorded. */
  queued?: true;
  /**
   * Event mode: the version an event is logged as sent with, and its idempotency key made
   * from: the one of a send still in doubt, else the new fingerprint (for a delete, the one
   * delivered, or a mark when the change carries none).
   */
  sentAs?: string;
}

/** What a delete's events are logged as sent with when the key's delivered fingerprint is unknown (a stream's delete). */
const DELETE_EVENT_SENT = 'event:delete';

/**
 * The events one change fired. The change is recorded once all of them settled: delivered
 * when every one was accepted, parked when one was refused for good (or ran out of
 * attempts), and left to be sent again by the next run when one failed otherwise — its
 * accepted siblings then carry the same idempotency keys again.
 */
interface EventGroup {
  left: number;
  failed: boolean;
  parked: boolean;
}

/** One change to deliver, with what the delivered state knows of its key. */
export interface Pending {
  change: Change;
  /** Fingerprint of the row now; null for deletes. */
  fp: string | null;
  /** Fingerprint last delivered; null when never delivered. */
  oldFp: string | null;
  destId: string | null;
  /** Fingerprint of a write whose outcome is unknown (see DiffRow.sentFp). */
  sentFp: string | null;
  /** The match key of that write, when the store kept it (see DiffRow.sentMatch). */
  sentMatch?: Row | null;
  /** The stream batch the change came in. */
  batch?: number;
  /**
   * Whether the destination may hold the record (delivered, or a write in doubt). Diff rows
   * leave it out (known from `oldFp`); a stream sets it false for a delete of a key neither
   * the delivered state nor this run has written, which then sends nothing.
   */
  known?: boolean;
}

export interface SyncDeliveryOptions {
  sync: SyncConfig;
  to: ConnectionHandle;
  budget: ConnectionBudget;
  caps: Capabilities;
  mapper: Mapper;
  state: DiffStore;
  ledger: Ledger;
  logger: Logger;
  runId: number;
  counts: RunCounts;
  /** Aborting drains gracefully: batches in flight settle and are recorded. */
  signal: AbortSignal;
  /** Keys a person asked to send again (`outflow retry`): writes in doubt among them are sent. */
  resend: boolean | ReadonlySet<string>;
  backoff?: { baseMs: number; maxMs: number };
  /** The changes a diff run delivers, once known (for `failWhen`); undefined for a stream. */
  total?(): number | undefined;
  /**
   * A stream run, or a stream's reconciling diff: no later run sends a record again, so one
   * still failing with a retryable error after its tries is parked at once.
   */
  followsStream?: boolean;
  /** Called when the destination answered a batch, before its outcomes are recorded. */
  afterWrite?(): void;
  onSettled?(settled: number): void;
}

const LOOKUP_EVERY = 100;
/** Records of changes that sent nothing a stream lets run before it waits for them. */
const MAX_RECORDING = 64;

/**
 * Delivers one sync run's changes: turns each change into an operation under the sync's
 * mode and delete policy, sends it through the pipeline (batching, the connection's rate
 * budget, retries, per-key order), and records every settled record — delivered state
 * first, then the ledger's row errors. Writes are logged as sent before they go out, so a
 * crash after the destination applied them is never mistaken for "never sent"; at a
 * destination that cannot dedupe (idempotency `none`), such writes in doubt are looked up
 * or parked rather than sent again.
 */
export class SyncDelivery {
  readonly counts: RunCounts;
  settled = 0;
  onBatchSettled: ((batch: number) => void) | undefined;
  private readonly hasErrorsAtStart: Promise<boolean>;
  private local: DeliveryOutcome<Tag>[] = [];
  private doubt: Pending[] = [];
  private readonly recent = new RecentMap<string, true>(TOUCHED_KEYS);
  /** The ledger side of recording, one call at a time (see {@link record}). */
  private serial: Promise<void> = Promise.resolve();
  /** Acks to the delivered state, in order, several callers' in one write. */
  private readonly writer: AckWriter;
  /** Per key, its operations sent through a pipeline and not recorded yet. */
  private readonly inFlight = new Map<string, number>();
  /** Per key in flight, the changes sending nothing that settle once its operations are recorded. */
  private readonly waitingOnKey = new Map<string, DeliveryOutcome<Tag>[]>();
  /** Records of changes that sent nothing, not awaited by the stream (see {@link flush}). */
  private readonly recording = new Set<Promise<void>>();
  private recordFailed: { err: unknown } | undefined;
  /** One pipeline per destination object: records go to `to.object`; events to their trigger's. */
  private readonly pipelines = new Map<string, Delivery<Tag>>();
  /** Event mode's triggers; undefined in the record modes. */
  private readonly triggers: EventTriggers | undefined;
  /**
   * Event mode: the state this run queued last for each key lately (at least the last
   * {@link TOUCHED_KEYS}; null once deleted), newer than the delivered state a stream batch
   * read, so the second change of a key in one batch compares with the first.
   */
  private readonly queuedState = new RecentMap<string, EventState | null>(TOUCHED_KEYS);

  constructor(private readonly o: SyncDeliveryOptions) {
    this.counts = o.counts;
    this.writer = new AckWriter(o.state);
    this.hasErrorsAtStart = o.ledger.countRowErrors(o.sync.name).then((n) => n > 0);
    this.triggers = o.sync.to.mode === 'event' ? compileTriggers(o.sync) : undefined;
  }

  /** The pipeline writing to `object`, made on first use. */
  private pipelineFor(object: string): Delivery<Tag> {
    const made = this.pipelines.get(object);
    if (made !== undefined) return made;
    const o = this.o;
    const { sync, caps, to } = o;
    const destination = to.connector.destination!;
    const pipeline = new Delivery<Tag>({
      write: (ops) => destination.write(to.ctx, object, ops),
      batchSize: Math.max(1, Math.min(caps.maxBatchSize, sync.delivery?.batchSize ?? caps.maxBatchSize)),
      concurrency: Math.max(1, Math.min(caps.concurrency, sync.delivery?.concurrency ?? caps.concurrency)),
      budget: o.budget,
      countWrites: (caps.budget ?? 'write') === 'write',
      resendSafe: caps.idempotency !== 'none',
      ...(destination.lookup ? { lookup: (ops: Operation[]) => this.lookup(object, ops) } : {}),
      maxAttempts: sync.delivery?.maxAttempts ?? 6,
      onExhausted: (sync.capture ?? 'diff') === 'stream' ? 'retry-forever' : 'fail',
      ...(o.backoff ? { backoff: o.backoff } : {}),
      signal: o.signal,
      // Too many rejections (failWhen) stop the pipeline: what is in flight settles, the rest is not sent.
      onOutcomes: async (outcomes) => {
        await this.record(outcomes);
        const total = o.total?.();
        const final = total !== undefined && this.settled >= total;
        const tooMany = tooManyRejected(sync, this.counts, total === undefined ? { final } : { final, total });
        if (tooMany) throw tooMany;
      },
      beforeWrite: (items) => this.logSent(items),
      ...(o.afterWrite ? { afterWrite: o.afterWrite } : {}),
      onRetry: (reason, delayMs) => o.logger.debug({ sync: sync.name, reason: redact(reason), delayMs: Math.round(delayMs) }, 'retrying'),
    });
    this.pipelines.set(object, pipeline);
    return pipeline;
  }

  /**
   * Whether this run queued a change of `key` lately (at least the last {@link TOUCHED_KEYS} keys):
   * its outcome may not be in the delivered state yet.
   */
  touched(key: string): boolean {
    return this.recent.has(key);
  }

  /** Queues one change; resolves when there is room for more. */
  async push(p: Pending): Promise<void> {
    if (this.recordFailed) throw this.recordFailed.err;
    this.recent.set(p.change.key, true);
    // A write in doubt at a destination that cannot dedupe is never re-sent blindly.
    if (p.sentFp !== null && this.o.caps.idempotency === 'none' && !this.resendAsked(p.change.key)) {
      // Event mode: a delete's events are no more safe to send twice than an insert's.
      if (p.change.op !== 'delete' || this.triggers !== undefined) {
        this.doubt.push(p);
        if (this.doubt.length >= LOOKUP_EVERY) await this.resolveDoubts();
        return;
      }
      if (p.oldFp === null && p.destId === null && !p.sentMatch) {
        // The row left the model while its only write is in doubt, and nothing addresses the
        // record that write may have made: the doubt stays visible rather than being
        // replaced by a refused delete.
        const tag = this.tagOf(p, null, 'delete');
        const reason = outcomeUnknown('a write was sent before the process stopped and its answer was never recorded, and the row has since left the model');
        await this.record([{ item: { op: this.operationOf(p, tag.kind, p.oldFp, null), tag }, result: { ok: false, retryable: false, reason }, attempts: 0 }]);
        return;
      }
    }
    await this.send(p);
  }

  /**
   * Lets partial batches go now (streams call it after each change batch). The changes that
   * sent nothing are recorded without waiting for their write, unless many are still
   * being written.
   */
  async flush(): Promise<void> {
    await this.resolveDoubts();
    const recorded = this.flushLocal();
    this.recording.add(recorded);
    void recorded.then(
      () => this.recording.delete(recorded),
      (err: unknown) => {
        this.recording.delete(recorded);
        this.recordFailed ??= { err };
      },
    );
    if (this.recording.size > MAX_RECORDING) await Promise.all(this.recording);
    for (const pipeline of this.pipelines.values()) pipeline.flush();
  }

  /** Ends input; resolves when every record is settled and recorded. */
  async close(): Promise<void> {
    await this.resolveDoubts();
    await this.flushLocal();
    await Promise.all([...this.pipelines.values()].map((pipeline) => pipeline.close()));
    await Promise.allSettled(this.recording);
    await this.serial;
    if (this.recordFailed) throw this.recordFailed.err;
  }

  private resendAsked(key: string): boolean {
    const r = this.o.resend;
    return r === true || (r !== false && r.has(key));
  }

  private operationOf(p: Pending, kind: PlannedKind, fromFp: string | null, toFp: string | null): Operation {
    const { change } = p;
    const op: Operation = {
      kind: kind === 'clear' ? 'update' : (kind as Operation['kind']),
      key: change.key,
      idempotencyKey: idempotencyKey(this.o.sync.name, change.key, kind, fromFp, toFp),
    };
    const source = change.after ?? change.before;
    // A record whose id never came back (a write in doubt) is found by the match key it was
    // written with.
    const match = source ? mapMatch(this.o.mapper, source) : (p.sentMatch ?? undefined);
    if (match) op.match = match;
    if (kind === 'clear') op.fields = clearedFields(this.o.sync.mappings ?? {});
    else if (kind !== 'delete') op.fields = mapFields(this.o.mapper, change.after ?? change.before ?? {});
    if (p.destId) op.destinationId = p.destId;
    return op;
  }

  /** The tag of a change's operation; `settles`: its outcome settles the change's stream batch. */
  private tagOf(p: Pending, fp: string | null, op: Change['op'] = p.change.op, settles = true): Tag {
    return {
      kind: this.kindOf(p),
      op,
      fp,
      ...(settles && p.batch !== undefined ? { batch: p.batch } : {}),
      ...(p.change.position === undefined ? {} : { pos: p.change.position }),
    };
  }

  private kindOf(p: Pending): PlannedKind {
    return planKind(p.change.op, p.known ?? (p.oldFp !== null || p.change.op !== 'insert'), this.o.sync.to, this.o.caps);
  }

  private async send(p: Pending): Promise<void> {
    if (this.triggers !== undefined) return this.sendEvents(p, this.triggers);
    const tag = this.tagOf(p, p.fp);
    const { kind } = tag;
    if (kind === 'skip' || kind === 'forget') return this.settleUnsent(p, tag);
    await this.enqueue(this.o.sync.to.object, { op: this.operationOf(p, kind, p.oldFp, p.fp), tag });
  }

  /** Sends an operation through the pipeline of `object`; its key is in flight until recorded. */
  private enqueue(object: string, item: { op: Operation; tag: Tag }): Promise<void> {
    const key = item.op.key;
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    item.tag.queued = true;
    return this.pipelineFor(object).push(item);
  }

  /**
   * Settles a change that sends nothing, in order with the rest: after the operations of its
   * key still in flight (its outcome must not be overtaken by theirs), else with the next
   * {@link flush} (a stream checkpoint may wait on it).
   */
  private async settleUnsent(p: Pending, tag: Tag): Promise<void> {
    const outcome: DeliveryOutcome<Tag> = { item: { op: { kind: 'update', key: p.change.key, idempotencyKey: '' }, tag }, result: { ok: true }, attempts: 0 };
    if (this.inFlight.has(p.change.key)) {
      const waiting = this.waitingOnKey.get(p.change.key);
      if (waiting) waiting.push(outcome);
      else this.waitingOnKey.set(p.change.key, [outcome]);
      return;
    }
    this.local.push(outcome);
    if (this.local.length >= 500) await this.flushLocal();
  }

  /**
   * Event mode: sends the events the change fires. A change that fires none is settled as
   * it is (skipped; a delete forgets the key), so its new values are kept for the next
   * comparison.
   */
  private async sendEvents(p: Pending, triggers: EventTriggers): Promise<void> {
    const { change } = p;
    const queued = this.queuedState.get(change.key);
    const kept = queued === undefined ? decodeEventState(p.destId) : (queued ?? undefined);
    if (change.after !== undefined && kept?.fp !== undefined && kept.fp === p.fp) {
      // The row as it was settled last: a replay (a resumed backfill reads a row again), not a change.
      return this.settleUnsent(p, { ...this.tagOf(p, p.fp), kind: 'skip', state: encodeEventState(kept) });
    }
    const next = nextEventState(kept, change.after, p.fp, triggers.watched);
    this.queuedState.set(change.key, change.after ? next : null);
    const base = { ...this.tagOf(p, p.fp), ...(change.after ? { state: encodeEventState(next) } : {}) };
    let fired: FiredEvent[];
    try {
      fired = p.known === false ? [] : triggers.fire(change, beforeOf(change, kept));
    } catch (err) {
      // A payload that cannot be rendered for this row (a template over its render limit)
      // is the row's error, not the run's.
      const reason = `the event payload could not be rendered: ${describeError(err)}`;
      const tag: Tag = { ...base, kind: 'event', group: { left: 1, failed: false, parked: false } };
      await this.record([{ item: { op: { kind: 'event', key: change.key, idempotencyKey: '' }, tag }, result: { ok: false, retryable: false, reason }, attempts: 0 }]);
      return;
    }
    if (fired.length === 0) {
      return this.settleUnsent(p, { ...base, kind: change.op === 'delete' ? 'forget' : 'skip' });
    }
    const group: EventGroup = { left: fired.length, failed: false, parked: false };
    const tag: Tag = { ...base, kind: 'event', group, sentAs: p.sentFp ?? p.fp ?? p.oldFp ?? DELETE_EVENT_SENT };
    for (const e of fired) {
      await this.enqueue(e.object, { op: this.eventOperation(change, e, next.version, tag.sentAs!), tag });
    }
  }

  /**
   * The operation of one fired event. Its idempotency key is the same for every send of
   * this (sync, key, trigger, row version): the version is the key's version count (see
   * EventState) with the version logged as sent (`Tag.sentAs`), so events sent again after
   * a crash keep their keys though the row changed meanwhile, whether a stream replays the
   * change or a reconciling diff finds it.
   */
  private eventOperation(change: Change, e: FiredEvent, version: number, sentAs: string): Operation {
    const key = idempotencyKey(this.o.sync.name, change.key, `event:${e.trigger}`, `#${version}`, sentAs);
    return {
      kind: 'event',
      key: change.key,
      fields: e.payload,
      idempotencyKey: key,
      event: { trigger: e.trigger, change: change.op, ...(change.committedAt === undefined ? {} : { committedAt: change.committedAt }) },
    };
  }

  /**
   * Writes in doubt at a destination that cannot dedupe: asked of `lookup` when the
   * connector has one (applied → recorded as delivered, absent → sent), else parked.
   */
  private async resolveDoubts(): Promise<void> {
    const doubts = this.doubt.splice(0);
    if (doubts.length === 0) return;
    if (this.triggers !== undefined) return this.parkEventDoubts(doubts);
    const ops = doubts.map((p) => this.operationOf(p, this.kindOf(p), p.oldFp, p.sentFp));
    const found = await this.lookup(this.o.sync.to.object, ops);
    for (let i = 0; i < doubts.length; i++) {
      const p = doubts[i]!;
      const f = found?.[i];
      if (f?.state === 'absent') {
        await this.send(p);
      } else if (f?.state === 'applied') {
        // The change settles here unless the update below carries it on.
        const tag = this.tagOf(p, p.sentFp, p.change.op, p.fp === p.sentFp);
        await this.record([{ item: { op: ops[i]!, tag }, result: { ok: true, ...(f.destinationId ? { destinationId: f.destinationId } : {}) }, attempts: 0 }]);
        // The row changed after the write in doubt: what was applied is now delivered, and
        // the change since is sent as an update of it.
        if (p.fp !== p.sentFp) await this.send({ ...p, oldFp: p.sentFp, destId: f.destinationId ?? p.destId, sentFp: null, change: { ...p.change, op: 'update' } });
      } else {
        const tag = this.tagOf(p, p.fp);
        await this.record([
          {
            item: { op: ops[i]!, tag },
            result: { ok: false, retryable: false, reason: outcomeUnknown('a write was sent before the process stopped, and its answer was never recorded') },
            attempts: 0,
          },
        ]);
      }
    }
  }

  /**
   * Event mode, at a destination that cannot dedupe: a change whose events were sent before
   * the process stopped, with no answer recorded, is parked as "outcome unknown" — never
   * sent again blindly, and not looked up either, since the row may have changed since and
   * fire other events. `outflow retry` sends it again.
   */
  private async parkEventDoubts(doubts: Pending[]): Promise<void> {
    const reason = outcomeUnknown('events were sent before the process stopped, and their answer was never recorded');
    for (const p of doubts) {
      const tag = this.tagOf(p, p.fp);
      await this.record([{ item: { op: { kind: 'event', key: p.change.key, idempotencyKey: '' }, tag }, result: { ok: false, retryable: false, reason }, attempts: 0 }]);
    }
  }

  /**
   * Asks the destination's `lookup` about writes whose outcome is unknown: one result per
   * operation, or undefined when there is no lookup or it failed (the records stay in doubt).
   */
  private async lookup(object: string, ops: Operation[]): Promise<LookupResult[] | undefined> {
    const destination = this.o.to.connector.destination!;
    if (!destination.lookup) return undefined;
    try {
      const found = await destination.lookup(this.o.to.ctx, object, ops);
      return Array.isArray(found) && found.length === ops.length ? found : undefined;
    } catch (err) {
      this.o.logger.warn({ sync: this.o.sync.name, err: redact(describeError(err)) }, 'looking up writes in doubt failed');
      return undefined;
    }
  }

  private flushLocal(): Promise<void> {
    const outcomes = this.local.splice(0);
    return outcomes.length ? this.record(outcomes) : Promise.resolve();
  }

  /** Logs the records of a batch as sent before it is written (see DiffStore). */
  private logSent(items: { op: Operation; tag: Tag }[]): Promise<void> {
    const acks: Ack[] = [];
    for (const { op, tag } of items) {
      if (tag.sentAs !== undefined) acks.push({ key: op.key, kind: 'sent', fp: tag.sentAs });
      else if (tag.fp !== null && tag.kind !== 'delete') acks.push({ key: op.key, kind: 'sent', fp: tag.fp, ...(op.match ? { match: op.match } : {}) });
    }
    if (acks.length === 0) return Promise.resolve();
    return this.writer.write(acks);
  }

  /**
   * Records outcomes; resolves once their acks are durable and their stream batches counted.
   * Their place among the delivered-state writes is taken at once, so what a key's later
   * operations log comes after them; the ledger side (row errors) runs one call at a time,
   * and the state write joins others queued meanwhile (see AckWriter). The changes that sent
   * nothing and waited on these keys are recorded with them.
   */
  private record(settled: DeliveryOutcome<Tag>[]): Promise<void> {
    let outcomes = settled;
    for (const { item } of settled) {
      if (!item.tag.queued) continue;
      const key = item.op.key;
      const left = (this.inFlight.get(key) ?? 1) - 1;
      if (left > 0) {
        this.inFlight.set(key, left);
        continue;
      }
      this.inFlight.delete(key);
      const waiting = this.waitingOnKey.get(key);
      if (waiting) {
        this.waitingOnKey.delete(key);
        if (outcomes === settled) outcomes = [...settled];
        outcomes.push(...waiting);
      }
    }
    const fill = this.writer.reserve();
    const collected = this.serial.then(() => this.collect(outcomes, fill));
    this.serial = collected.then(
      () => undefined,
      () => undefined,
    );
    return collected.then((settle) => settle());
  }

  /**
   * The ledger side of recording outcomes: counts, row errors, and the acks (filled into
   * their place whatever happens). Returns what follows their write.
   */
  private async collect(outcomes: DeliveryOutcome<Tag>[], fill: (acks: Ack[]) => Promise<void>): Promise<() => Promise<void>> {
    let collected: Awaited<ReturnType<SyncDelivery['collectNow']>>;
    try {
      collected = await this.collectNow(outcomes);
    } catch (err) {
      fill([]).catch(() => undefined);
      throw err;
    }
    const { acks, batches, resolved } = collected;
    const durable = fill(acks);
    return async () => {
      await durable;
      // Only once the acks are durable: a checkpoint saved before them would resume past
      // changes whose delivery the state never learned of.
      for (const b of batches) this.onBatchSettled?.(b);
      if (resolved.length && (await this.hasErrorsAtStart)) await this.o.ledger.resolveRowErrors(this.o.sync.name, resolved);
      this.settled += outcomes.length;
      if (this.settled % 1000 < outcomes.length) await this.o.ledger.updateRun(this.o.runId, this.counts);
      this.o.onSettled?.(this.settled);
    };
  }

  private async collectNow(outcomes: DeliveryOutcome<Tag>[]): Promise<{ acks: Ack[]; batches: number[]; resolved: string[] }> {
    const acks: Ack[] = [];
    const resolved: string[] = [];
    const batches: number[] = [];
    const counts = this.counts;
    for (const { item, result } of outcomes) {
      const { tag, op } = item;
      const key = op.key;
      // Positions are kept for streams and their reconciles only (see DiffStore.positions).
      const at = this.o.followsStream ? { pos: tag.pos ?? '' } : {};
      if (tag.group !== undefined) {
        const g = tag.group;
        g.left--;
        if (result.ok) counts.inserted++;
        else {
          counts.rejected++;
          if ((await this.recordError(key, tag, result)) || !result.retryable) g.parked = true;
          else g.failed = true;
        }
        if (g.left > 0) continue;
        if (g.parked) acks.push({ key, kind: 'parked', fp: tag.fp, ...at });
        else if (!g.failed) {
          resolved.push(key);
          acks.push(tag.op === 'delete' ? { key, kind: 'forget', ...at } : { key, kind: 'delivered', fp: tag.fp!, destId: tag.state ?? null, ...at });
        }
        if (tag.batch !== undefined) batches.push(tag.batch);
        continue;
      }
      if (result.ok) {
        resolved.push(key);
        switch (tag.kind) {
          case 'skip':
            counts.skipped++;
            if (tag.fp !== null) acks.push({ key, kind: 'delivered', fp: tag.fp, ...(tag.state === undefined ? {} : { destId: tag.state }), ...at });
            break;
          case 'forget':
            if (tag.op === 'delete') acks.push({ key, kind: 'forget', ...at });
            else counts.skipped++;
            break;
          case 'delete':
          case 'clear':
            counts.deleted++;
            acks.push({ key, kind: 'deleted', ...at });
            break;
          default:
            if (tag.op === 'insert') counts.inserted++;
            else counts.updated++;
            acks.push({ key, kind: 'delivered', fp: tag.fp!, destId: result.destinationId ?? null, ...at });
        }
      } else {
        counts.rejected++;
        const parked = await this.recordError(key, tag, result);
        if (!result.retryable || parked) acks.push({ key, kind: 'parked', fp: tag.op === 'delete' ? null : tag.fp, ...at });
      }
      if (tag.batch !== undefined) batches.push(tag.batch);
    }
    return { acks, batches, resolved };
  }

  /**
   * Records a rejection; true when the row is now parked: refused for good, or failing with
   * a retryable error for the sync's maxRowAttempts-th run of this version. A stream parks
   * it at once (see {@link SyncDeliveryOptions.followsStream}).
   */
  private async recordError(key: string, tag: Tag, result: Extract<RecordResult, { ok: false }>): Promise<boolean> {
    const { sync } = this.o;
    const maxAttempts = this.o.followsStream ? 1 : (sync.delivery?.maxRowAttempts ?? DEFAULT_MAX_ROW_ATTEMPTS);
    const e = await this.o.ledger.recordRowError(sync.name, {
      key,
      op: tag.kind,
      reason: redact(result.reason),
      retryable: result.retryable,
      version: tag.fp,
      maxAttempts,
    });
    return e.parked;
  }
}

/**
 * What is known of a row before its change, for event triggers: the source's before-image
 * over the values event mode kept of the delivered row; undefined when neither exists.
 */
function beforeOf(change: Change, kept: EventState | undefined): Row | undefined {
  if (kept === undefined && change.before === undefined) return undefined;
  return { ...kept?.values, ...change.before };
}
