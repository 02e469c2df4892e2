import type { KeyValueStore } from '../contracts.js';

export type RunStatus = 'running' | 'succeeded' | 'partial' | 'failed' | 'aborted';

export interface RunCounts {
  inserted: number;
  updated: number;
  deleted: number;
  /** Records the destination rejected for good; parked in the row-error table. */
  rejected: number;
  /** Changes the sync mode does not send (e.g. updates in insert mode). */
  skipped: number;
}

export interface RunRecord extends RunCounts {
  id: number;
  sync: string;
  capture: 'diff' | 'stream';
  status: RunStatus;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  /** Why the run failed; redacted. */
  error?: string;
}

/** A sync's lease as granted to one owner. */
export interface LeaseGrant {
  sync: string;
  owner: string;
  /**
   * The fencing token: greater than the token of every earlier grant of this sync, by any
   * instance of the ledger; renewals keep it.
   */
  token: number;
  /** When the lease expires unless renewed, by the ledger's clock (ISO 8601, UTC). */
  expiresAt: string;
}

/** The current holder of a sync's lease. */
export interface LeaseHolder {
  owner: string;
  token: number;
  expiresAt: string;
  /** The lease has expired by the ledger's clock: anyone may take it over. */
  expired: boolean;
}

export interface RowError {
  sync: string;
  key: string;
  op: string;
  reason: string;
  retryable: boolean;
  /** Runs that tried this version of the row and failed (a new version starts again at 1). */
  attempts: number;
  /**
   * True: the row waits until it changes or a person sends it again (`outflow retry`).
   * False: the next run sends it again (a retryable error under the sync's maxRowAttempts).
   */
  parked: boolean;
  firstSeen: string;
  lastSeen: string;
}

/**
 * Outflow's durable state: syncs, runs, checkpoints, row errors and a per-connection
 * key-value store (`@outflow/ledger-sqlite` implements it). Delivered state — what each key
 * was delivered as — is not here but in a state store (see state/store.ts). Every method
 * may be called concurrently; implementations serialise writes themselves. What people read
 * (run errors, row-error reasons) is redacted before it is written; machine state
 * (checkpoints, key-value entries) is stored exactly as given, so it reads back unchanged.
 *
 * Leases keep one sync running in one runner at a time, even when several runners share a
 * ledger: a run takes its sync's lease, renews it while it runs, and passes the lease's
 * fencing token with the writes a deposed holder must not make — checkpoint writes and the
 * run's finish. Row errors and run counts are not fenced: they record what the destination
 * answered to writes that were made, whoever made them.
 */
export interface Ledger {
  /** Records that a sync exists with this configuration fingerprint. */
  registerSync(sync: string, configHash: string): Promise<{ previousHash?: string }>;
  startRun(sync: string, capture: 'diff' | 'stream'): Promise<number>;
  /** Updates the counts of a run in progress (for `status` while it runs). */
  updateRun(id: number, counts: RunCounts): Promise<void>;
  /**
   * Records how a run ended. With `fence` (the token of the sync's lease the run holds) the
   * ledger first checks that the lease is still that one and refuses with
   * `OUTFLOW_LEASE_LOST` otherwise, recording nothing: a runner deposed while its run went on
   * leaves the run as the new holder marked it (`abandonRunningRuns`).
   */
  finishRun(id: number, status: Exclude<RunStatus, 'running'>, counts: RunCounts, error?: string, fence?: number): Promise<void>;
  /** Newest first. */
  listRuns(options?: { sync?: string; limit?: number }): Promise<RunRecord[]>;
  /** Marks runs left `running` by a process that died as `aborted`. */
  abandonRunningRuns(sync: string): Promise<number>;

  getCheckpoint(sync: string): Promise<string | undefined>;
  /**
   * Saves the sync's checkpoint. With `fence`, atomically with a check that the sync's
   * current lease carries that token (held, not released, not taken over): a stale token is
   * refused with `OUTFLOW_LEASE_LOST` and the checkpoint is left as it is. The engine always
   * passes its lease's token; a write without one (a tool holding no lease) is not checked.
   */
  setCheckpoint(sync: string, checkpoint: string, fence?: number): Promise<void>;
  /** Removes the sync's checkpoint; `fence` as for {@link setCheckpoint}. */
  clearCheckpoint(sync: string, fence?: number): Promise<void>;

  /**
   * Adds or refreshes a row error: attempts + 1 (back to 1 when `version`, the fingerprint
   * of the row tried, differs from the one recorded), lastSeen now. The row is parked when
   * the error is not retryable, or when its attempts reach `maxAttempts` (never, without
   * it). Returns the row error as recorded.
   */
  recordRowError(
    sync: string,
    error: { key: string; op: string; reason: string; retryable: boolean; version?: string | null; maxAttempts?: number },
  ): Promise<RowError>;
  /** Removes the row errors of these keys (they were delivered, or left the model). */
  resolveRowErrors(sync: string, keys: string[]): Promise<void>;
  listRowErrors(options?: { sync?: string; limit?: number }): Promise<RowError[]>;
  /** Row errors of a sync; with `parked`, only the parked ones (true) or the ones the next run sends again (false). */
  countRowErrors(sync: string, options?: { parked?: boolean }): Promise<number>;

  /** A key-value store scoped to `scope` (a connection name). */
  kv(scope: string): KeyValueStore;

  /**
   * Takes the sync's lease for `owner` for `ttlMs`, measured by the ledger's clock (a
   * shared ledger never trusts a runner's clock). Returns undefined when another owner holds
   * an unexpired lease. A lease that expired or was released may be taken by anyone, and
   * each such grant carries a fencing token greater than every earlier token of the sync.
   * Asked again by the owner holding it, it is extended and keeps its token. Concurrent
   * calls, from any number of processes, grant the lease to one owner at most.
   */
  acquireLease(sync: string, owner: string, ttlMs: number): Promise<LeaseGrant | undefined>;
  /**
   * Extends the lease by `ttlMs` from now (the heartbeat of the holder). Refused with
   * `OUTFLOW_LEASE_LOST` unless the sync's lease is still this owner's with this token: once
   * released, or taken over after it expired, it cannot be renewed. A lease that expired
   * and was not taken over is renewed: no one else wrote under it.
   */
  renewLease(lease: Pick<LeaseGrant, 'sync' | 'owner' | 'token'>, ttlMs: number): Promise<LeaseGrant>;
  /** Gives up the lease if `owner` holds it (else does nothing); its token is no longer valid. */
  releaseLease(sync: string, owner: string): Promise<void>;
  /** Who holds the sync's lease, if anyone (expired leases included, `expired` by the ledger's clock). */
  leaseHolder(sync: string): Promise<LeaseHolder | undefined>;

  close(): Promise<void>;
}
