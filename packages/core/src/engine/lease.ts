import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { describeError, isOutflowError, OutflowError } from '../errors.js';
import type { Ledger, LeaseGrant, RunCounts, RunStatus } from '../ledger/ledger.js';
import type { Logger } from '../logger.js';
import { isAlive } from './alive.js';

/** How long a sync's lease lasts without a heartbeat, unless the engine is told otherwise. */
export const DEFAULT_LEASE_MS = 60_000;

/**
 * The lease a run holds on its sync, as the run sees it: the fencing token its writes
 * carry, and a signal that aborts the moment the lease is lost.
 */
export interface HeldLease {
  readonly token: number;
  /** Aborted when the lease is lost: another runner took the sync over, or it could not be renewed in time. */
  readonly signal: AbortSignal;
  /** Why the lease was lost (`OUTFLOW_LEASE_LOST`), once it was. */
  readonly lost: OutflowError | undefined;
  /** Saves the sync's checkpoint under the lease's token (see `Ledger.setCheckpoint`). */
  setCheckpoint(checkpoint: string): Promise<void>;
  /** Records the end of run `id` under the lease's token (see `Ledger.finishRun`). */
  finishRun(id: number, status: Exclude<RunStatus, 'running'>, counts: RunCounts, error?: string): Promise<void>;
}

/**
 * A sync's lease, held for one `engine.run` (a diff run, or a stream with its reconciles):
 * renewed every third of its length, and lost — its signal aborted, so the run stops
 * reading and starting batches at once — when a renewal or a fenced write is refused with
 * `OUTFLOW_LEASE_LOST`, or when no renewal succeeded within the lease's length (measured on
 * this process's monotonic clock from when the last successful renewal was sent, which is
 * never later than the ledger started counting it).
 */
export class SyncLease implements HeldLease {
  private readonly abort = new AbortController();
  private lostError: OutflowError | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private deadline: NodeJS.Timeout | undefined;
  private renewing = false;
  private released = false;

  private constructor(
    private readonly ledger: Ledger,
    private grant: LeaseGrant,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    sentAt: number,
  ) {
    this.armDeadline(sentAt);
    this.heartbeat = setInterval(() => void this.renew(), Math.max(1, Math.floor(ttlMs / 3)));
    this.heartbeat.unref();
  }

  /**
   * Takes the sync's lease, or fails with `OUTFLOW_LOCKED` naming who holds it. A lease held
   * by a process of this host that no longer exists (killed, crashed) is taken over at once
   * instead of waiting for it to expire.
   */
  static async take(ledger: Ledger, sync: string, logger: Logger, ttlMs = DEFAULT_LEASE_MS): Promise<SyncLease> {
    const owner = `${hostname()}/${process.pid}/${randomUUID()}`;
    const sentAt = performance.now();
    let grant = await ledger.acquireLease(sync, owner, ttlMs);
    if (!grant) {
      const holder = await ledger.leaseHolder(sync);
      if (holder && isGoneLocally(holder.owner)) {
        await ledger.releaseLease(sync, holder.owner);
        logger.warn({ sync, previousOwner: holder.owner }, 'took over the lease of a process that is gone');
      }
      grant = await ledger.acquireLease(sync, owner, ttlMs);
      if (!grant) {
        const now = await ledger.leaseHolder(sync);
        throw new OutflowError(
          'OUTFLOW_LOCKED',
          `sync "${sync}" is held by another runner${now ? ` (${now.owner}, lease until ${now.expiresAt})` : ''}: it runs there; this runner leaves it alone`,
          { details: { sync, ...(now ? { holder: now.owner, expiresAt: now.expiresAt } : {}) } },
        );
      }
    }
    return new SyncLease(ledger, grant, ttlMs, logger, sentAt);
  }

  get token(): number {
    return this.grant.token;
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get lost(): OutflowError | undefined {
    return this.lostError;
  }

  setCheckpoint(checkpoint: string): Promise<void> {
    return this.fenced(this.ledger.setCheckpoint(this.grant.sync, checkpoint, this.grant.token));
  }

  finishRun(id: number, status: Exclude<RunStatus, 'running'>, counts: RunCounts, error?: string): Promise<void> {
    return this.fenced(this.ledger.finishRun(id, status, counts, error, this.grant.token));
  }

  /** Stops the heartbeat and gives the lease up (releasing only ever frees it while it is still this owner's). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.deadline);
    await this.ledger.releaseLease(this.grant.sync, this.grant.owner).catch(() => undefined);
  }

  private async fenced<T>(write: Promise<T>): Promise<T> {
    try {
      return await write;
    } catch (err) {
      if (isOutflowError(err, 'OUTFLOW_LEASE_LOST')) this.lose(err);
      throw err;
    }
  }

  private async renew(): Promise<void> {
    if (this.renewing || this.released || this.lostError) return;
    this.renewing = true;
    const sentAt = performance.now();
    try {
      this.grant = await this.ledger.renewLease(this.grant, this.ttlMs);
      if (!this.released && !this.lostError) this.armDeadline(sentAt);
    } catch (err) {
      if (isOutflowError(err, 'OUTFLOW_LEASE_LOST')) this.lose(err);
      else this.logger.warn({ sync: this.grant.sync, err: describeError(err) }, 'could not renew the lease of the sync; trying again');
    } finally {
      this.renewing = false;
    }
  }

  /** The lease counts as lost `ttlMs` after `sentAt` unless a later renewal succeeds. */
  private armDeadline(sentAt: number): void {
    clearTimeout(this.deadline);
    const left = Math.max(0, sentAt + this.ttlMs - performance.now());
    this.deadline = setTimeout(() => {
      this.lose(
        new OutflowError(
          'OUTFLOW_LEASE_LOST',
          `sync "${this.grant.sync}": the lease could not be renewed within ${this.ttlMs} ms, so another runner may take the sync over; this runner stops delivering it`,
          { details: { sync: this.grant.sync, token: this.grant.token } },
        ),
      );
    }, left);
    this.deadline.unref();
  }

  private lose(err: OutflowError): void {
    if (this.lostError || this.released) return;
    this.lostError = err;
    clearInterval(this.heartbeat);
    clearTimeout(this.deadline);
    this.logger.warn({ sync: this.grant.sync, err: err.message }, 'lost the lease of the sync: stopping its run');
    this.abort.abort(err);
  }
}

/** The owner names a process of this host that no longer exists. */
function isGoneLocally(owner: string): boolean {
  const [host, pid] = owner.split('/');
  return host === hostname() && !!pid && /^\d+$/.test(pid) && !isAlive(Number(pid));
}
