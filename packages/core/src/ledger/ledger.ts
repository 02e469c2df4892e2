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
  attempts: number;
  firstSeen: string;
  lastSeen: string;
}

/**
 * Outflow's durable state: syncs, runs, checkpoints, row errors and a per-connection
 * key-value store (`@outflow/ledger-sqlite` implements it). Delivered state — what each key
 * was delivered as — is not here but in a state store (see state/store.ts). Every method
 * may be called concurrently; implementations serialise writes themselves. Every string
 * written is redacted first.
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

  /** Adds or refreshes a row error: attempts + 1, lastSeen now. */
  recordRowError(sync: string, error: { key: string; op: string; reason: string; retryable: boolean }): Promise<void>;
  /** Removes the row errors of these keys (they were delivered, or left the model). */
  resolveRowErrors(sync: string, keys: string[]): Promise<void>;
  listRowErrors(options?: { sync?: string; limit?: number }): Promise<RowError[]>;
  countRowErrors(sync: string): Promise<number>;

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
