import type { IncomingMessage } from 'node:http';
import type { Faults } from '../contracts.js';

/** The faults every emulator takes: the contract's {@link Faults} and the ones tests lean on. */
export interface KitFaults extends Faults {
  /** The next N requests are answered 503. */
  failRequests?: number;
  /** Every Nth request is answered 429. */
  status429Every?: number;
  /** Seed of the random faults (errorRate, resetRate, lostAnswerRate), so a test sees the same faults every run. */
  seed?: number;
  /**
   * The next N requests that reach their route are applied, and then their answer is lost
   * (see {@link lostAnswer}): the vendor has the write, the client never learns it.
   */
  loseAnswers?: number;
  /** Fraction (0–1) of requests applied and then left without their answer. */
  lostAnswerRate?: number;
  /**
   * How an answer is lost: `reset` drops the connection, `timeout` never answers (the
   * request hangs until the client gives up or the emulator stops), `error` answers a 5xx
   * in the vendor's shape; `mixed` picks one of the three at random. `reset` by default.
   */
  lostAnswer?: LostAnswer | 'mixed';
}

/** How a write's answer is lost after the write was applied. */
export type LostAnswer = 'reset' | 'timeout' | 'error';
const LOST: readonly LostAnswer[] = ['reset', 'timeout', 'error'];

/**
 * What a request gets instead of its answer; the emulator renders each in its vendor's
 * shape: `reset` drops the connection, `unavailable` is a 503 (failRequests), `throttled`
 * a 429 (status429Every), `error` a 5xx (errorRate), `vendor` the emulator's own.
 */
export type Fault<V = never> = { kind: 'reset' } | { kind: 'unavailable' } | { kind: 'throttled' } | { kind: 'error' } | { kind: 'vendor'; fault: V };

/**
 * A vendor's own faults, asked after the kit's counters and before the error rate:
 * `request` counts from 1, `random` is the injector's seeded generator.
 */
export type VendorFaults<V> = (request: number, random: () => number) => V | undefined;

/** mulberry32: a small PRNG in [0, 1) whose sequence depends only on the seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Drops the request's connection without an answer, as a network failure would. */
export function resetConnection(req: IncomingMessage): void {
  req.socket.destroy();
}

/**
 * Decides, request by request, which fault to inject. With a `seed` the random faults
 * follow the same sequence on every run; without one they are seeded at random. `F` is the
 * emulator's faults type, so its own knobs are read back typed from {@link faults}.
 */
export class FaultInjector<F extends KitFaults = KitFaults, V = never> {
  private current: F;
  private random: () => number;
  private failRemaining: number;
  private loseRemaining: number;
  private requests = 0;

  constructor(
    faults: F = {} as F,
    private readonly vendor?: VendorFaults<V>,
  ) {
    this.current = { ...faults };
    this.random = seededRandom(faults.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.failRemaining = faults.failRequests ?? 0;
    this.loseRemaining = faults.loseAnswers ?? 0;
  }

  /** The active faults. */
  get faults(): Readonly<F> {
    return this.current;
  }

  /**
   * Replaces the active faults (`{}` clears them). `failRequests` starts counting again;
   * `loseAnswers` too; the random sequence restarts only when a `seed` is given.
   */
  set(faults: F): void {
    this.current = { ...faults };
    if (faults.seed !== undefined) this.random = seededRandom(faults.seed);
    this.failRemaining = faults.failRequests ?? 0;
    this.loseRemaining = faults.loseAnswers ?? 0;
  }

  /** Waits the configured latency, if any. */
  async delay(): Promise<void> {
    const ms = this.current.latencyMs;
    if (ms) await new Promise((resolve) => setTimeout(resolve, ms));
  }

  /**
   * Counts one request and picks its fault, if any, in a fixed order: reset, unavailable,
   * throttled, vendor, error.
   */
  decide(): Fault<V> | undefined {
    const n = ++this.requests;
    const f = this.current;
    if (f.resetRate && this.random() < f.resetRate) return { kind: 'reset' };
    if (this.failRemaining > 0) {
      this.failRemaining--;
      return { kind: 'unavailable' };
    }
    if (f.status429Every && n % f.status429Every === 0) return { kind: 'throttled' };
    const vendor = this.vendor?.(n, this.random);
    if (vendor !== undefined) return { kind: 'vendor', fault: vendor };
    if (f.errorRate && this.random() < f.errorRate) return { kind: 'error' };
    return undefined;
  }

  /**
   * Asked after a request's write was applied, before it is answered: whether its answer is
   * lost, and how (see {@link KitFaults.loseAnswers}).
   */
  afterApply(): LostAnswer | undefined {
    const f = this.current;
    let lose = false;
    if (this.loseRemaining > 0) {
      this.loseRemaining--;
      lose = true;
    } else if (f.lostAnswerRate && this.random() < f.lostAnswerRate) lose = true;
    if (!lose) return undefined;
    const how = f.lostAnswer ?? 'reset';
    return how === 'mixed' ? LOST[Math.floor(this.random() * LOST.length)]! : how;
  }
}

/**
 * Loses the answer to a request whose write was applied: drops the connection (`reset`),
 * never answers (`timeout`: the request stays open until the client gives up or the
 * server closes), or answers through `renderError` (`error`: the vendor's 5xx).
 */
export function loseAnswer(req: IncomingMessage, how: LostAnswer, renderError: () => void): void {
  if (how === 'reset') resetConnection(req);
  else if (how === 'error') renderError();
  // 'timeout': nothing is written; the socket closes with the client or with the server.
}
