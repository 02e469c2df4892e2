import type { LookupResult, Operation, RecordResult } from '../contracts.js';
import { OutflowError, describeError, isOutflowError } from '../errors.js';
import { DEFAULT_MAX_WAIT_MS, MAX_PAUSE_MS } from './rate-budget.js';
import { RecentMap } from '../recent-map.js';

/** What delivery draws its requests from: the destination connection's budget. */
export interface DeliveryBudget {
  /** Waits for one request's turn and holds it until the returned release; null when `stop` aborted first. */
  hold(stop?: AbortSignal): Promise<(() => void) | null>;
  /** Stops every sender of the connection for `ms` (a Retry-After from a thrown error). */
  pause(ms: number): void;
  /** The longest wait the destination may ask for (the connection's `maxWait`); 5 minutes when absent. */
  readonly maxWaitMs?: number;
}

/** One operation handed to delivery, with caller data carried through to its outcome. */
export interface DeliveryItem<T> {
  op: Operation;
  tag: T;
}

export interface DeliveryOutcome<T> {
  item: DeliveryItem<T>;
  result: RecordResult;
  attempts: number;
}

export interface DeliveryOptions<T> {
  /** Sends one batch; same contract as `Destination.write`. */
  write(ops: Operation[]): Promise<RecordResult[]>;
  batchSize: number;
  concurrency: number;
  budget: DeliveryBudget;
  /**
   * True: take one request from the budget per `write` (capabilities `budget: 'write'`).
   * False: the connector draws per request itself; delivery only honours pauses.
   */
  countWrites: boolean;
  /**
   * Whether a batch whose outcome is unknown (a plain throw, a timeout, a 5xx) may be sent
   * again: true for destinations that dedupe (idempotency `key` or `match`). When false,
   * such records are resolved with {@link lookup} or parked as "outcome unknown".
   */
  resendSafe: boolean;
  /**
   * For `resendSafe: false`: asks the destination whether operations were applied; one
   * result per operation, or undefined when it cannot tell (never throws).
   */
  lookup?(ops: Operation[]): Promise<LookupResult[] | undefined>;
  /** Attempts per record for retryable per-record failures and whole-batch failures. */
  maxAttempts: number;
  /**
   * When whole-batch retryable failures outlast `maxAttempts`: 'fail' stops delivery with
   * the error (diff runs: nothing is lost, the next run re-sends); 'retry-forever' keeps
   * trying with capped backoff (streams: the stream waits for the destination).
   */
  onExhausted: 'fail' | 'retry-forever';
  backoff?: { baseMs: number; maxMs: number };
  signal: AbortSignal;
  /**
   * Awaited before each write of a batch (retries and bisected halves included): the
   * caller logs what is about to be written, so a crash after the destination applied it
   * is not mistaken for "never sent".
   */
  beforeWrite?(items: DeliveryItem<T>[]): Promise<void>;
  /** Called when the destination answered a batch, before its outcomes are recorded (crash points). */
  afterWrite?(): void;
  /**
   * Called for each settled batch, in settlement order, as soon as it settles and before its
   * keys' next operations may be sent; calls overlap (the next is made before the last
   * resolved). Delivery closes once every call resolved; a rejection stops it.
   */
  onOutcomes(outcomes: DeliveryOutcome<T>[]): Promise<void>;
  /** Called when a record waits for a retry (for metrics). */
  onRetry?(reason: string, delayMs: number): void;
  /** Most records buffered or in flight before `push` waits. */
  highWater?: number;
}

interface Entry<T> {
  item: DeliveryItem<T>;
  attempts: number;
}

/**
 * How many keys' learned destination ids are kept: far more than can be in flight or waiting
 * to be recorded, so a change read from the delivered state before its key's previous answer
 * was recorded still finds the id.
 */
const LEARNED_KEYS = 50_000;

/**
 * The delivery pipeline: batches to the destination's size, keeps up to `concurrency`
 * batches in flight under the rate limiter, retries with exponential backoff and jitter,
 * bisects a batch the destination refuses as a whole, and keeps per-key order: a key never
 * has two operations in flight, and its operations are applied in push order.
 */
export class Delivery<T> {
  private readonly ready: Entry<T>[] = [];
  private readonly byKey = new Map<string, Entry<T>[]>();
  /**
   * Destination ids learned from answers (null: deleted), of at least the latest {@link LEARNED_KEYS}
   * keys: a later operation of the key made before the answer was recorded in the delivered
   * state (queued behind it, or read from the state while it was in flight) is sent with it.
   */
  private readonly learned = new RecentMap<string, string | null>(LEARNED_KEYS);
  private inFlight = 0;
  private outstanding = 0;
  private partialOk = false;
  private fatal: unknown = undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Calls of `onOutcomes` not resolved yet. */
  private recording = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly highWater: number;
  private readonly backoff: { baseMs: number; maxMs: number };

  constructor(private readonly o: DeliveryOptions<T>) {
    this.highWater = o.highWater ?? Math.max(1000, o.batchSize * o.concurrency * 4);
    this.backoff = o.backoff ?? { baseMs: 500, maxMs: 30_000 };
    o.signal.addEventListener('abort', () => this.dropQueued(), { once: true });
  }

  /** Queues one operation; resolves when there is room for more. */
  async push(item: DeliveryItem<T>): Promise<void> {
    if (this.fatal !== undefined) throw this.fatal;
    if (this.o.signal.aborted) return;
    const entry: Entry<T> = { item, attempts: 0 };
    this.outstanding++;
    const queue = this.byKey.get(item.op.key);
    if (queue) queue.push(entry);
    else {
      this.byKey.set(item.op.key, [entry]);
      this.ready.push(entry);
    }
    this.pump();
    while (this.outstanding >= this.highWater && this.fatal === undefined && !this.o.signal.aborted) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.fatal !== undefined) throw this.fatal;
  }

  /** Lets partial batches go now (streams call it after each change batch). */
  flush(): void {
    this.partialOk = true;
    this.pump();
  }

  /**
   * Ends input and resolves when every record is settled. After an abort it resolves once
   * the batches in flight have settled (a graceful drain); after a fatal error it rejects
   * with it, also once nothing is in flight.
   */
  async close(): Promise<void> {
    this.partialOk = true;
    this.pump();
    for (;;) {
      const stopping = this.fatal !== undefined || this.o.signal.aborted;
      if (stopping ? this.inFlight === 0 : this.outstanding === 0) break;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    while (this.recording > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.fatal !== undefined) throw this.fatal;
  }

  /** Records buffered or in flight. */
  get pending(): number {
    return this.outstanding;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private pump(): void {
    while (
      this.fatal === undefined &&
      !this.o.signal.aborted &&
      this.inFlight < this.o.concurrency &&
      this.ready.length > 0 &&
      // A full buffer sends partial batches: with repeated keys (only a key's oldest op is
      // ready) a full batch might never form, and `push` would wait forever.
      (this.ready.length >= this.o.batchSize || this.partialOk || this.outstanding >= this.highWater)
    ) {
      const batch = this.ready.splice(0, this.o.batchSize);
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        this.pump();
        this.wake();
      });
    }
  }

  private async send(batch: Entry<T>[]): Promise<void> {
    let release: (() => void) | null = () => undefined;
    if (this.o.countWrites) release = await this.o.budget.hold(this.o.signal);
    if (release === null || this.o.signal.aborted || this.fatal !== undefined) {
      release?.();
      return this.drop(batch);
    }
    for (const e of batch) {
      e.attempts++;
      const id = this.learned.get(e.item.op.key);
      if (id === null) delete e.item.op.destinationId;
      else if (id !== undefined) e.item.op.destinationId = id;
    }
    let results: RecordResult[];
    try {
      if (this.o.beforeWrite) {
        try {
          await this.o.beforeWrite(batch.map((e) => e.item));
        } catch (err) {
          release();
          this.fail(err);
          return this.drop(batch);
        }
      }
      results = await this.o.write(batch.map((e) => e.item.op));
      this.o.afterWrite?.();
      if (!Array.isArray(results) || results.length !== batch.length) {
        throw new OutflowError(
          'OUTFLOW_DESTINATION',
          `the destination returned ${Array.isArray(results) ? results.length : 'no'} results for ${batch.length} records`,
        );
      }
    } catch (err) {
      // The request is over: its place in the budget is freed before any halves are sent.
      release();
      return this.batchFailed(batch, err);
    }
    release();
    const settled: DeliveryOutcome<T>[] = [];
    for (let i = 0; i < batch.length; i++) {
      const entry = batch[i]!;
      const result = results[i]!;
      if (!result.ok && result.retryable && this.tooLong(result.retryAfterMs) && this.o.onExhausted === 'fail') {
        // Not waited for in this run: the record stays failed (retryable) and the next run sends it.
        settled.push({ item: entry.item, result: { ...result, reason: this.waitRefused(result.reason, result.retryAfterMs!) }, attempts: entry.attempts });
      } else if (!result.ok && result.retryable && entry.attempts < this.o.maxAttempts && !this.o.signal.aborted) {
        this.retryLater([entry], result.retryAfterMs, result.reason);
      } else {
        settled.push({ item: entry.item, result, attempts: entry.attempts });
      }
    }
    this.settle(settled);
  }

  private async batchFailed(batch: Entry<T>[], thrown: unknown): Promise<void> {
    // A plain throw says nothing about what was applied: it is an unknown outcome, retried
    // where re-sending is safe.
    const err = isOutflowError(thrown)
      ? thrown
      : new OutflowError('OUTFLOW_DESTINATION', `the connector failed: ${describeError(thrown)}`, { retryable: true, cause: thrown });
    if (err.retryable) {
      if (err.retryAfterMs !== undefined) this.o.budget.pause(err.retryAfterMs);
      // Stopping: nothing is retried now. The batch was logged as sent, so the next run
      // sends it again (or, where re-sending is unsafe, looks it up or parks it).
      if (this.o.signal.aborted) return this.drop(batch);
      if (!this.o.resendSafe && !err.notApplied) return this.unknownOutcome(batch, err);
      if (this.tooLong(err.retryAfterMs) && this.o.onExhausted === 'fail') {
        this.fail(new OutflowError('OUTFLOW_DESTINATION', this.waitRefused(err.message, err.retryAfterMs!), { retryable: true, cause: err }));
        return this.drop(batch);
      }
      const attempts = Math.max(...batch.map((e) => e.attempts));
      if (attempts >= this.o.maxAttempts && this.o.onExhausted === 'fail') {
        this.fail(
          new OutflowError('OUTFLOW_DESTINATION', `gave up after ${attempts} attempts: ${err.message}`, {
            retryable: true,
            cause: err,
          }),
        );
        return this.drop(batch);
      }
      this.retryLater(batch, err.retryAfterMs, err.message);
      return;
    }
    if (batch.length === 1) {
      const entry = batch[0]!;
      this.settle([{ item: entry.item, result: { ok: false, reason: err.message, retryable: false }, attempts: entry.attempts }]);
      return;
    }
    // The destination refused the batch as a whole: halve it until the refusal is pinned on
    // the records that cause it, and let the rest land.
    const mid = Math.ceil(batch.length / 2);
    for (const e of batch) e.attempts--;
    await this.send(batch.slice(0, mid));
    await this.send(batch.slice(mid));
  }

  /**
   * A batch that may or may not have been applied, at a destination where re-sending is
   * unsafe: what the destination's lookup says was applied is settled as delivered, what it
   * says is absent is sent again, and the rest is parked as "outcome unknown".
   */
  private async unknownOutcome(batch: Entry<T>[], err: OutflowError): Promise<void> {
    const found = await this.o.lookup?.(batch.map((e) => e.item.op));
    const settled: DeliveryOutcome<T>[] = [];
    const again: Entry<T>[] = [];
    batch.forEach((entry, i) => {
      const f = found?.[i];
      if (f?.state === 'applied') {
        settled.push({ item: entry.item, result: { ok: true, ...(f.destinationId ? { destinationId: f.destinationId } : {}) }, attempts: entry.attempts });
      } else if (f?.state === 'absent' && entry.attempts < this.o.maxAttempts) {
        again.push(entry);
      } else {
        settled.push({ item: entry.item, result: { ok: false, retryable: false, reason: outcomeUnknown(err.message) }, attempts: entry.attempts });
      }
    });
    this.settle(settled);
    if (again.length) this.retryLater(again, err.retryAfterMs, err.message);
  }

  private get maxWaitMs(): number {
    return this.o.budget.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
  }

  /** True when the destination asked for a wait longer than the connection allows. */
  private tooLong(retryAfterMs: number | undefined): boolean {
    return retryAfterMs !== undefined && retryAfterMs > this.maxWaitMs;
  }

  private waitRefused(reason: string, retryAfterMs: number): string {
    return `${reason}; the destination asked to wait ${formatWait(retryAfterMs)} before trying again, longer than the connection's maxWait (${formatWait(this.maxWaitMs)}), so this run does not wait and the next run sends it`;
  }

  private retryLater(entries: Entry<T>[], retryAfterMs: number | undefined, reason: string): void {
    const attempt = Math.max(...entries.map((e) => e.attempts));
    const exp = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.max(0, attempt - 1));
    const jittered = exp / 2 + Math.random() * (exp / 2);
    // A stream waits at most maxWait and tries again; nothing waits past a timer's limit.
    const delay = Math.min(this.maxWaitMs, MAX_PAUSE_MS, Math.max(retryAfterMs ?? 0, jittered));
    this.o.onRetry?.(reason, delay);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.o.signal.aborted || this.fatal !== undefined) return this.drop(entries);
      // Retried records go to the front: they are the oldest, and their keys are blocked.
      this.ready.unshift(...entries);
      this.partialOk = true;
      this.pump();
    }, delay);
    this.timers.add(timer);
  }

  private settle(outcomes: DeliveryOutcome<T>[]): void {
    if (outcomes.length === 0) return;
    // A key's next operation was made before this one's answer came back: it learns the
    // record's id (or that the record is gone) now, so an update does not create the record
    // again and a delete can address it.
    for (const { item, result } of outcomes) {
      if (!result.ok) continue;
      const id = item.op.kind === 'delete' ? null : result.destinationId;
      if (id === undefined) continue;
      this.learned.set(item.op.key, id);
    }
    // Handed over before the keys are freed, so the caller orders what it records of them
    // before anything their next operations record. Acknowledged records are recorded even
    // after a fatal error: the destination has them.
    let recording: Promise<void>;
    try {
      recording = this.o.onOutcomes(outcomes);
    } catch (err) {
      recording = Promise.reject(err);
    }
    this.recording++;
    void recording
      .catch((err: unknown) => this.fail(err))
      .then(() => {
        this.recording--;
        this.wake();
      });
    this.release(outcomes.map((o) => o.item.op.key));
  }

  /** Frees each key for its next queued operation. */
  private release(keys: string[]): void {
    for (const key of keys) {
      const queue = this.byKey.get(key);
      this.outstanding--;
      if (!queue) continue;
      queue.shift();
      if (queue.length === 0) this.byKey.delete(key);
      else this.ready.push(queue[0]!);
    }
    this.wake();
  }

  /**
   * Forgets records that will not be sent in this run (abort or fatal error). Their state
   * does not advance, so the next run or the resumed stream sends them again.
   */
  private drop(_entries: Entry<T>[]): void {
    this.wake();
  }

  private dropQueued(): void {
    this.ready.splice(0);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.wake();
  }

  private fail(err: unknown): void {
    if (this.fatal !== undefined) return;
    this.fatal = err instanceof Error ? err : new OutflowError('OUTFLOW_INTERNAL', describeError(err));
    this.dropQueued();
  }
}

/** A wait as people read it: `1500 ms`, `45 s`, `12 min`, `3 h`, `2 d`. */
export function formatWait(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 172_800_000) return `${Math.round(ms / 3_600_000)} h`;
  return `${Math.round(ms / 86_400_000)} d`;
}

/** The reason a record is parked with when its outcome cannot be known. */
export function outcomeUnknown(cause: string): string {
  return `outcome unknown: the destination may have applied this write (${cause}); it cannot dedupe a re-send, so check it there, then send it again with \`outflow retry\``;
}
