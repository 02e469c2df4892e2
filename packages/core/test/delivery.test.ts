import { afterEach, describe, expect, it, vi } from 'vitest';
import { OutflowError, destinationError, isOutflowError, type Operation, type RecordResult } from '../src/index.js';
import { Delivery, type DeliveryOptions, type DeliveryOutcome } from '../src/delivery/pipeline.js';
import { ConnectionBudget } from '../src/delivery/rate-budget.js';

afterEach(() => {
  vi.useRealTimers();
});

const seqOf = (op: Operation) => op.fields!['seq'] as number;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls (in real time) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await sleep(1);
  }
  throw new Error(`timed out waiting until ${what}`);
}

interface Call {
  ops: Operation[];
  start: number;
  end: number;
}

interface FakeOptions {
  /** Milliseconds one write takes; by call number (0-based). */
  latency?: (call: number) => number;
  /** Runs before the answer; throw here to fail the whole batch. */
  batch?: (ops: Operation[], call: number) => void | Promise<void>;
  /** The answer for one op; `sent` counts the times this op was written, this one included. */
  reply?: (op: Operation, sent: number) => RecordResult;
}

/**
 * A destination in memory. It records every write (its ops, when it started and ended),
 * applies the ops it accepts in the order it accepts them, and notes any moment when one
 * key is in flight twice.
 */
function fakeDestination(options: FakeOptions = {}) {
  const calls: Call[] = [];
  const applied: Operation[] = [];
  const sentCount = new Map<number, number>();
  const keysInFlight = new Set<string>();
  const overlaps: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;

  async function write(ops: Operation[]): Promise<RecordResult[]> {
    const call: Call = { ops, start: Date.now(), end: Number.NaN };
    const n = calls.push(call) - 1;
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    const mine: string[] = [];
    for (const op of ops) {
      if (keysInFlight.has(op.key)) overlaps.push(op.key);
      else mine.push(op.key);
      keysInFlight.add(op.key);
    }
    try {
      const ms = options.latency?.(n) ?? 0;
      await (ms > 0 ? sleep(ms) : Promise.resolve());
      await options.batch?.(ops, n);
      return ops.map((op) => {
        const sent = (sentCount.get(seqOf(op)) ?? 0) + 1;
        sentCount.set(seqOf(op), sent);
        const result = options.reply?.(op, sent) ?? { ok: true, destinationId: `d-${seqOf(op)}` };
        if (result.ok) applied.push(op);
        return result;
      });
    } finally {
      inFlight--;
      for (const key of mine) keysInFlight.delete(key);
      call.end = Date.now();
    }
  }

  return { write, calls, applied, overlaps, sentCount, maxInFlight: () => maxInFlight };
}

type Options = Partial<Omit<DeliveryOptions<number>, 'write' | 'signal' | 'onOutcomes'>>;

/** A `Delivery` around `write` whose outcomes are collected; each pushed op carries a sequence number. */
function pipeline(write: DeliveryOptions<number>['write'], options: Options = {}) {
  const outcomes: DeliveryOutcome<number>[] = [];
  const retries: string[] = [];
  const controller = new AbortController();
  const delivery = new Delivery<number>({
    write,
    batchSize: 10,
    concurrency: 1,
    budget: new ConnectionBudget([]),
    countWrites: true,
    resendSafe: true,
    maxAttempts: 3,
    onExhausted: 'fail',
    backoff: { baseMs: 1, maxMs: 4 },
    signal: controller.signal,
    onOutcomes: async (settled) => void outcomes.push(...settled),
    onRetry: (reason) => void retries.push(reason),
    ...options,
  });
  let seq = 0;
  const push = (key: string) => {
    const s = seq++;
    return delivery.push({ op: { kind: 'upsert', key, fields: { seq: s }, idempotencyKey: `${key}#${s}` }, tag: s });
  };
  const pushAll = async (keys: string[]) => {
    for (const key of keys) await push(key);
  };
  const outcomeOf = (key: string) => outcomes.filter((o) => o.item.op.key === key);
  return { delivery, outcomes, retries, controller, push, pushAll, outcomeOf };
}

const keys = (n: number, prefix = 'k') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const tagsOf = (outcomes: DeliveryOutcome<number>[]) => outcomes.map((o) => o.item.tag).sort((a, b) => a - b);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('batching and settlement', () => {
  it('sends batches of at most batchSize, keeps the partial rest until close, and settles every record once', async () => {
    const dest = fakeDestination();
    const p = pipeline(dest.write, { batchSize: 4 });
    await p.pushAll(keys(10));
    await sleep(5);
    expect(dest.calls.map((c) => c.ops.length)).toEqual([4, 4]);
    await p.delivery.close();
    expect(dest.calls.map((c) => c.ops.length)).toEqual([4, 4, 2]);
    expect(tagsOf(p.outcomes)).toEqual(range(10));
    expect(p.outcomes.every((o) => o.result.ok && o.attempts === 1)).toBe(true);
    expect(p.delivery.pending).toBe(0);
  });

  it('sends a partial batch on flush without waiting for close', async () => {
    const dest = fakeDestination();
    const p = pipeline(dest.write, { batchSize: 5 });
    await p.pushAll(keys(3));
    await sleep(5);
    expect(dest.calls).toHaveLength(0);
    p.delivery.flush();
    await until(() => p.outcomes.length === 3, 'the flushed records settle');
    expect(dest.calls.map((c) => c.ops.map((o) => o.key))).toEqual([['k0', 'k1', 'k2']]);
    await p.delivery.close();
    expect(dest.calls).toHaveLength(1);
  });

  it('attributes each result to the operation it answers', async () => {
    const dest = fakeDestination({
      latency: (n) => (n % 2 ? 3 : 1),
      reply: (op) =>
        seqOf(op) % 3 === 0
          ? { ok: false, reason: `record ${seqOf(op)} is invalid`, retryable: false }
          : { ok: true, destinationId: `d-${seqOf(op)}` },
    });
    const p = pipeline(dest.write, { batchSize: 4, concurrency: 2 });
    await p.pushAll(keys(13));
    await p.delivery.close();
    expect(tagsOf(p.outcomes)).toEqual(range(13));
    for (const { item, result } of p.outcomes) {
      expect(seqOf(item.op)).toBe(item.tag);
      expect(result).toEqual(
        item.tag % 3 === 0
          ? { ok: false, reason: `record ${item.tag} is invalid`, retryable: false }
          : { ok: true, destinationId: `d-${item.tag}` },
      );
    }
  });
});

describe('concurrency and per-key order', () => {
  it('never has more than `concurrency` writes in flight', async () => {
    const dest = fakeDestination({ latency: (n) => 1 + (n % 3) });
    const p = pipeline(dest.write, { batchSize: 2, concurrency: 3 });
    await p.pushAll(keys(40));
    await p.delivery.close();
    expect(dest.maxInFlight()).toBe(3);
    expect(tagsOf(p.outcomes)).toEqual(range(40));
  });

  it('keeps one op per key in flight and applies each key’s ops in push order, also across retries', async () => {
    const dest = fakeDestination({
      latency: (n) => n % 3,
      // Every fourth op fails once, retryably, so later ops of its key must wait for its retry.
      reply: (op, sent) =>
        seqOf(op) % 4 === 1 && sent === 1 ? { ok: false, reason: 'try later', retryable: true } : { ok: true },
    });
    const p = pipeline(dest.write, { batchSize: 3, concurrency: 3 });
    const order: string[] = [];
    for (let round = 0; round < 6; round++) order.push(...keys(5));
    await p.pushAll(order);
    await p.delivery.close();

    expect(dest.overlaps).toEqual([]);
    for (const call of dest.calls) expect(new Set(call.ops.map((o) => o.key)).size).toBe(call.ops.length);
    expect([...dest.sentCount.values()].filter((n) => n > 1)).not.toHaveLength(0);
    expect(p.outcomes).toHaveLength(30);
    expect(p.outcomes.every((o) => o.result.ok)).toBe(true);
    for (const key of keys(5)) {
      const pushed = order.flatMap((k, seq) => (k === key ? [seq] : []));
      expect(dest.applied.filter((o) => o.key === key).map(seqOf)).toEqual(pushed);
      expect(p.outcomeOf(key).map((o) => o.item.tag)).toEqual(pushed);
    }
  });
});

describe('destination ids learned from answers', () => {
  it('sends a later op of a key with the id its earlier op was answered with, queued or pushed after that answer, and none after a delete', async () => {
    let next = 0;
    const ids = new Map<string, string>();
    const sent: { key: string; kind: string; destinationId: string | undefined }[] = [];
    const write: DeliveryOptions<number>['write'] = async (ops) => {
      await sleep(5);
      return ops.map((op) => {
        sent.push({ key: op.key, kind: op.kind, destinationId: op.destinationId });
        if (op.kind === 'delete') return { ok: true };
        const id = op.destinationId ?? `id${next++}`;
        ids.set(op.key, id);
        return { ok: true, destinationId: id };
      });
    };
    const p = pipeline(write, { batchSize: 1 });
    // Queued behind the create while it is in flight.
    await p.push('a');
    await p.push('a');
    p.delivery.flush();
    await until(() => p.outcomes.length === 2, 'both ops of a');
    // Pushed after the create's answer, as a stream does with a change it read from a state
    // that did not have the answer yet.
    await p.push('a');
    p.delivery.flush();
    await until(() => p.outcomes.length === 3, 'the third op of a');
    await p.delivery.push({ op: { kind: 'delete', key: 'a', idempotencyKey: 'a#del' }, tag: 99 });
    p.delivery.flush();
    await until(() => p.outcomes.length === 4, 'the delete of a');
    await p.push('a');
    await p.delivery.close();
    expect(sent.map((s) => `${s.kind} ${s.destinationId ?? '-'}`)).toEqual(['upsert -', 'upsert id0', 'upsert id0', 'delete id0', 'upsert -']);
  });
});

describe('per-record retries', () => {
  it('retries a retryable record up to maxAttempts, then settles it as failed; a non-retryable one settles at once', async () => {
    const dest = fakeDestination({
      reply: (op, sent) => {
        if (op.key === 'flaky') return { ok: false, reason: 'rate limited', retryable: true };
        if (op.key === 'recovers' && sent === 1) return { ok: false, reason: 'timeout', retryable: true };
        if (op.key === 'bad') return { ok: false, reason: 'email is invalid', retryable: false };
        return { ok: true };
      },
    });
    const p = pipeline(dest.write, { maxAttempts: 3 });
    await p.pushAll(['flaky', 'recovers', 'bad', 'good']);
    await p.delivery.close();

    expect(p.outcomeOf('flaky')).toMatchObject([{ result: { ok: false, reason: 'rate limited', retryable: true }, attempts: 3 }]);
    expect(p.outcomeOf('recovers')).toMatchObject([{ result: { ok: true }, attempts: 2 }]);
    expect(p.outcomeOf('bad')).toMatchObject([{ result: { ok: false, reason: 'email is invalid', retryable: false }, attempts: 1 }]);
    expect(p.outcomeOf('good')).toMatchObject([{ result: { ok: true }, attempts: 1 }]);
    expect(dest.calls.filter((c) => c.ops.some((o) => o.key === 'flaky'))).toHaveLength(3);
    expect(dest.calls.filter((c) => c.ops.some((o) => o.key === 'bad'))).toHaveLength(1);
    expect(p.retries.sort()).toEqual(['rate limited', 'rate limited', 'timeout']);
  });

  it('waits at least a record’s retryAfterMs before sending it again', async () => {
    vi.useFakeTimers();
    const dest = fakeDestination({
      reply: (op, sent) => (op.key === 'slow' && sent === 1 ? { ok: false, reason: '429', retryable: true, retryAfterMs: 300 } : { ok: true }),
    });
    const p = pipeline(dest.write);
    await p.pushAll(['slow', 'other']);
    const closed = p.delivery.close();
    await vi.runAllTimersAsync();
    await closed;

    const sends = dest.calls.filter((c) => c.ops.some((o) => o.key === 'slow'));
    expect(sends).toHaveLength(2);
    expect(sends[1]!.start - sends[0]!.end).toBeGreaterThanOrEqual(300);
    expect(p.outcomeOf('slow')).toMatchObject([{ result: { ok: true }, attempts: 2 }]);
    expect(p.outcomeOf('other')).toMatchObject([{ result: { ok: true }, attempts: 1 }]);
  });
});

describe('bounded waits', () => {
  // A Retry-After of 10^9 seconds, as a hostile or broken server may send.
  const forever = 1e12;

  it("fails a batch asked to wait longer than the connection's maxWait at once, as retryable, saying how long was asked", async () => {
    const dest = fakeDestination({
      batch: (ops) => {
        if (ops.some((o) => o.key === 'k1')) throw destinationError('HTTP 429: slow down', { retryable: true, retryAfterMs: forever, status: 429 });
      },
    });
    const budget = new ConnectionBudget([], undefined, 60_000);
    const p = pipeline(dest.write, { batchSize: 1, budget, onExhausted: 'fail' });
    await p.pushAll(keys(3));
    const error = await p.delivery.close().then(
      () => undefined,
      (err: unknown) => err,
    );

    expect(isOutflowError(error, 'OUTFLOW_DESTINATION')).toBe(true);
    expect((error as OutflowError).retryable).toBe(true);
    expect((error as OutflowError).message).toMatch(/HTTP 429: slow down; the destination asked to wait \d+ d .*maxWait \(60 s\)/);
    // Sent once, not retried in this run; what came before it is acknowledged.
    expect(dest.calls.filter((c) => c.ops[0]!.key === 'k1')).toHaveLength(1);
    expect(p.outcomeOf('k0')).toMatchObject([{ result: { ok: true } }]);
  });

  it('settles a record asked to wait too long as a retryable failure without waiting', async () => {
    const dest = fakeDestination({
      reply: (op) => (op.key === 'slow' ? { ok: false, reason: 'busy', retryable: true, retryAfterMs: forever } : { ok: true }),
    });
    const p = pipeline(dest.write, { budget: new ConnectionBudget([], undefined, 1000) });
    await p.pushAll(['slow', 'other']);
    await p.delivery.close();

    expect(p.outcomeOf('slow')).toMatchObject([{ result: { ok: false, retryable: true }, attempts: 1 }]);
    expect((p.outcomeOf('slow')[0]!.result as { reason: string }).reason).toMatch(/^busy; the destination asked to wait .*maxWait \(1 s\)/);
    expect(p.outcomeOf('other')).toMatchObject([{ result: { ok: true } }]);
  });

  it('keeps a stream waiting at most maxWait before it tries again, and pauses the connection no longer', async () => {
    let n = 0;
    const dest = fakeDestination({
      batch: () => {
        if (n++ === 0) throw destinationError('HTTP 429', { retryable: true, retryAfterMs: forever, status: 429 });
      },
    });
    const budget = new ConnectionBudget([], undefined, 50);
    const p = pipeline(dest.write, { budget, onExhausted: 'retry-forever' });
    await p.pushAll(['a']);
    await p.delivery.close();

    expect(dest.calls).toHaveLength(2);
    expect(dest.calls[1]!.start - dest.calls[0]!.end).toBeGreaterThanOrEqual(45);
    expect(p.outcomeOf('a')).toMatchObject([{ result: { ok: true }, attempts: 2 }]);
    // The connection was not paused for the wait it refused: a request may start now.
    const at = Date.now();
    expect(await budget.take()).toBe(true);
    expect(Date.now() - at).toBeLessThan(40);
  });
});

describe('whole-batch failures', () => {
  it('bisects a batch the destination refuses as a whole down to the offending records', async () => {
    const bad = new Set(['k3', 'k11']);
    const dest = fakeDestination({
      batch: (ops) => {
        const offender = ops.find((o) => bad.has(o.key));
        if (offender) throw destinationError(`400: ${offender.key} has an invalid email`, { retryable: false, status: 400 });
      },
    });
    const p = pipeline(dest.write, { batchSize: 16 });
    await p.pushAll(keys(16));
    await p.delivery.close();

    expect(tagsOf(p.outcomes)).toEqual(range(16));
    for (const key of bad) {
      expect(p.outcomeOf(key)).toMatchObject([{ result: { ok: false, reason: `400: ${key} has an invalid email`, retryable: false } }]);
      expect(dest.calls.some((c) => c.ops.length === 1 && c.ops[0]!.key === key)).toBe(true);
    }
    const good = p.outcomes.filter((o) => !bad.has(o.item.op.key));
    expect(good.every((o) => o.result.ok && o.attempts === 1)).toBe(true);
    expect(dest.applied.map((o) => o.key).sort()).toEqual(keys(16).filter((k) => !bad.has(k)).sort());
    // Halving finds each offender in about log2(n) steps: far fewer writes than one per record.
    expect(dest.calls.length).toBeLessThanOrEqual(1 + 2 * bad.size * Math.log2(16));
  });

  it('fails a batch answered with the wrong number of results, down to a reason for each record', async () => {
    const dest = fakeDestination();
    const short = async (ops: Operation[]) => (await dest.write(ops)).slice(1);
    const p = pipeline(short, { batchSize: 4 });
    await p.pushAll(keys(4));
    await p.delivery.close();

    expect(tagsOf(p.outcomes)).toEqual(range(4));
    for (const o of p.outcomes) {
      expect(o.result).toMatchObject({ ok: false, retryable: false, reason: 'the destination returned 0 results for 1 records' });
      expect(o.attempts).toBe(1);
    }
    for (const key of keys(4)) expect(dest.calls.some((c) => c.ops.length === 1 && c.ops[0]!.key === key)).toBe(true);
  });

  it('pauses every send for a whole-batch Retry-After', async () => {
    vi.useFakeTimers();
    let pausedAt = Number.NaN;
    const dest = fakeDestination({
      latency: () => 10,
      batch: (ops, n) => {
        if (n === 0) {
          pausedAt = Date.now();
          throw destinationError('429 too many requests', { retryable: true, retryAfterMs: 500, status: 429 });
        }
      },
    });
    const p = pipeline(dest.write, { batchSize: 1, concurrency: 2 });
    await p.pushAll(keys(4));
    const closed = p.delivery.close();
    await vi.runAllTimersAsync();
    await closed;

    // The first two writes were under way before the 429 came back; every later one waited.
    const later = dest.calls.slice(2);
    expect(later.map((c) => c.ops[0]!.key).sort()).toEqual(['k0', 'k2', 'k3']);
    for (const call of later) expect(call.start).toBeGreaterThanOrEqual(pausedAt + 500);
    expect(tagsOf(p.outcomes)).toEqual(range(4));
    expect(p.outcomes.every((o) => o.result.ok)).toBe(true);
  });

  it("stops with OUTFLOW_DESTINATION after maxAttempts when onExhausted is 'fail', keeping what was acknowledged", async () => {
    const dest = fakeDestination({
      batch: (ops) => {
        if (ops.some((o) => o.key === 'k2')) throw destinationError('503 service unavailable', { retryable: true, status: 503 });
      },
    });
    const p = pipeline(dest.write, { batchSize: 2, maxAttempts: 3, onExhausted: 'fail' });
    await p.pushAll(keys(4));
    const error = await p.delivery.close().then(
      () => undefined,
      (err: unknown) => err,
    );

    expect(isOutflowError(error, 'OUTFLOW_DESTINATION')).toBe(true);
    expect((error as OutflowError).message).toContain('503 service unavailable');
    expect(dest.calls.filter((c) => c.ops.some((o) => o.key === 'k2'))).toHaveLength(3);
    expect(p.outcomes.map((o) => [o.item.op.key, o.result.ok])).toEqual([
      ['k0', true],
      ['k1', true],
    ]);
    await expect(p.push('k9')).rejects.toBe(error);
  });

  it("keeps retrying past maxAttempts when onExhausted is 'retry-forever'", async () => {
    const dest = fakeDestination({
      batch: (_ops, n) => {
        if (n < 7) throw destinationError('502 bad gateway', { retryable: true, status: 502 });
      },
    });
    const p = pipeline(dest.write, { batchSize: 3, maxAttempts: 2, onExhausted: 'retry-forever' });
    await p.pushAll(keys(3));
    await p.delivery.close();

    expect(dest.calls).toHaveLength(8);
    expect(tagsOf(p.outcomes)).toEqual(range(3));
    expect(p.outcomes.every((o) => o.result.ok && o.attempts === 8)).toBe(true);
  });

  it('retries a batch whose write threw a plain error, where re-sending is safe', async () => {
    let thrown = 0;
    const dest = fakeDestination({
      batch: (ops) => {
        if (ops[0]!.key === 'k1' && thrown++ === 0) throw new TypeError('socket hang up');
      },
    });
    const p = pipeline(dest.write, { batchSize: 1, concurrency: 2 });
    await p.pushAll(keys(4));
    await p.delivery.close();

    expect(dest.calls.filter((c) => c.ops[0]!.key === 'k1')).toHaveLength(2);
    expect(p.outcomes.every((o) => o.result.ok)).toBe(true);
    expect(p.outcomeOf('k1')[0]!.attempts).toBe(2);
  });
});

describe('destinations that cannot dedupe (idempotency none)', () => {
  const lost = () => new TypeError('the connection closed before an answer came');

  it('parks a batch whose outcome is unknown as "outcome unknown" instead of sending it again', async () => {
    const dest = fakeDestination({
      batch: (ops) => {
        if (ops[0]!.key === 'k1') throw lost();
      },
    });
    const p = pipeline(dest.write, { batchSize: 1, resendSafe: false });
    await p.pushAll(keys(3));
    await p.delivery.close();

    expect(dest.calls.filter((c) => c.ops[0]!.key === 'k1')).toHaveLength(1);
    const [k1] = p.outcomeOf('k1');
    expect(k1!.result).toMatchObject({ ok: false, retryable: false });
    expect(k1!.result.ok ? '' : k1!.result.reason).toMatch(/^outcome unknown/);
    expect(p.outcomeOf('k0')[0]!.result.ok && p.outcomeOf('k2')[0]!.result.ok).toBe(true);
  });

  it('asks lookup: an applied write is settled as delivered, an absent one is sent again', async () => {
    let failed = 0;
    const dest = fakeDestination({
      batch: (ops) => {
        if ((ops[0]!.key === 'k1' || ops[0]!.key === 'k2') && failed++ < 2) throw lost();
      },
    });
    const looked: string[] = [];
    const p = pipeline(dest.write, {
      batchSize: 1,
      resendSafe: false,
      lookup: async (ops) => {
        looked.push(...ops.map((o) => o.key));
        return ops.map((o) => (o.key === 'k1' ? { state: 'applied' as const, destinationId: 'id-k1' } : { state: 'absent' as const }));
      },
    });
    await p.pushAll(keys(3));
    await p.delivery.close();

    expect(looked.sort()).toEqual(['k1', 'k2']);
    expect(dest.calls.filter((c) => c.ops[0]!.key === 'k1')).toHaveLength(1);
    expect(dest.calls.filter((c) => c.ops[0]!.key === 'k2')).toHaveLength(2);
    expect(p.outcomeOf('k1')[0]!.result).toEqual({ ok: true, destinationId: 'id-k1' });
    expect(p.outcomeOf('k2')[0]!.result.ok).toBe(true);
  });

  it('retries a refusal that applied nothing (429)', async () => {
    let refused = 0;
    const dest = fakeDestination({
      batch: (ops) => {
        if (ops[0]!.key === 'k0' && refused++ === 0) throw destinationError('429 slow down', { retryable: true, status: 429 });
      },
    });
    const p = pipeline(dest.write, { batchSize: 1, resendSafe: false });
    await p.pushAll(keys(2));
    await p.delivery.close();

    expect(dest.calls.filter((c) => c.ops[0]!.key === 'k0')).toHaveLength(2);
    expect(p.outcomes.every((o) => o.result.ok)).toBe(true);
  });
});

describe('abort', () => {
  /** A write that holds every call until released. */
  function gatedDestination() {
    const gates: (() => void)[] = [];
    const dest = fakeDestination({ batch: () => new Promise<void>((resolve) => gates.push(resolve)) });
    return { ...dest, gates };
  }

  it('starts no new write after abort, reports the batches in flight, and closes', { timeout: 5000 }, async () => {
    const dest = gatedDestination();
    const p = pipeline(dest.write, { batchSize: 2, concurrency: 2 });
    await p.pushAll(keys(8));
    await until(() => dest.gates.length === 2, 'two writes are in flight');

    p.controller.abort();
    const closed = p.delivery.close();
    const pending = p.delivery.pending;
    await p.push('late');
    expect(p.delivery.pending).toBe(pending);
    for (const release of dest.gates) release();
    await closed;

    expect(dest.calls.map((c) => c.ops.map((o) => o.key))).toEqual([
      ['k0', 'k1'],
      ['k2', 'k3'],
    ]);
    expect(tagsOf(p.outcomes)).toEqual([0, 1, 2, 3]);
    expect(p.outcomes.every((o) => o.result.ok)).toBe(true);
  });

  it('does not wait for a pending retry once aborted, and leaves no timer behind', async () => {
    vi.useFakeTimers();
    const dest = fakeDestination({ reply: () => ({ ok: false, reason: 'busy', retryable: true }) });
    const p = pipeline(dest.write, { backoff: { baseMs: 60_000, maxMs: 60_000 } });
    await p.pushAll(keys(2));
    p.delivery.flush();
    await vi.advanceTimersByTimeAsync(0);
    expect(p.retries).toEqual(['busy', 'busy']);

    p.controller.abort();
    // Resolves without the clock moving: close does not sit out the retry delay.
    await p.delivery.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(dest.calls).toHaveLength(1);
    expect(p.outcomes).toEqual([]);
  });
});

describe('backpressure', () => {
  it('does not let push resolve while highWater records are buffered or in flight', async () => {
    const gates: (() => void)[] = [];
    const dest = fakeDestination({ batch: () => new Promise<void>((resolve) => gates.push(resolve)) });
    const p = pipeline(dest.write, { batchSize: 2, concurrency: 1, highWater: 4 });
    await p.pushAll(keys(3));
    let pendingWhenResolved = Number.NaN;
    const fourth = p.push('k3').then(() => {
      pendingWhenResolved = p.delivery.pending;
    });
    await until(() => gates.length === 1, 'the first batch is in flight');
    await sleep(10);
    expect(Number.isNaN(pendingWhenResolved)).toBe(true);
    expect(p.delivery.pending).toBe(4);

    gates.shift()!();
    await fourth;
    expect(pendingWhenResolved).toBeLessThan(4);
    const closed = p.delivery.close();
    await until(() => gates.length === 1, 'the second batch is in flight');
    gates.shift()!();
    await closed;
    expect(tagsOf(p.outcomes)).toEqual(range(4));
  });

  it('keeps going when the records filling the buffer cannot fill a batch', { timeout: 5000 }, async () => {
    const dest = fakeDestination();
    const p = pipeline(dest.write, { batchSize: 10, highWater: 4 });
    // Ops for one key go out one at a time, so the buffer fills long before a batch does.
    await p.pushAll(['same', 'same', 'same', 'same', 'same', 'other']);
    await p.delivery.close();
    expect(dest.applied.filter((o) => o.key === 'same').map(seqOf)).toEqual(range(5));
    expect(tagsOf(p.outcomes)).toEqual(range(6));
    expect(p.outcomes.every((o) => o.result.ok)).toBe(true);
  });
});
