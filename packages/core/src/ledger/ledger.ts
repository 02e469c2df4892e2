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
 */
export interface Ledger {
  /** Records that a sync exists with this configuration fingerprint. */
  registerSync(sync: string, configHash: string): Promise<{ previousHash?: string }>;
  startRun(sync: string, capture: 'diff' | 'stream'): Promise<number>;
  /** Updates the counts of a run in progress (for `status` while it runs). */
  updateRun(id: number, counts: RunCounts): Promise<void>;
  finishRun(id: number, status: Exclude<RunStatus, 'running'>, counts: RunCounts, error?: string): Promise<void>;
  /** Newest first. */
  listRuns(options?: { sync?: string; limit?: number }): Promise<RunRecord[]>;
  /** Marks runs left `running` by a process that died as `aborted`. */
  abandonRunningRuns(sync: string): Promise<number>;

  getCheckpoint(sync: string): Promise<string | undefined>;
  setCheckpoint(sync: string, checkpoint: string): Promise<void>;
  clearCheckpoint(sync: string): Promise<void>;

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
   * Takes the sync's lease for `owner` for `ttlMs`, or renews it. Returns false when another
   * owner holds an unexpired lease.
   */
  acquireLease(sync: string, owner: string, ttlMs: number): Promise<boolean>;
  releaseLease(sync: string, owner: string): Promise<void>;
  /** Who holds the sync's lease, if anyone (expired leases included). */
  leaseHolder(sync: string): Promise<{ owner: string; expiresAt: string } | undefined>;

  close(): Promise<void>;
}
