import type { Capabilities, Model } from '../contracts.js';
import type { SyncConfig } from '../config/schema.js';
import type { Ledger, RunCounts } from '../ledger/ledger.js';
import type { Logger } from '../logger.js';
import type { ConnectionHandle } from './connections.js';
import type { ConnectionBudget } from '../delivery/rate-budget.js';
import type { Mapper } from '../mapping/mapper.js';
import type { HeldLease } from './lease.js';

/** Progress of one sync run, as reported to `RunOptions.onProgress`. */
export interface Progress {
  sync: string;
  phase: 'reading' | 'diffing' | 'delivering' | 'streaming' | 'done';
  read: number;
  /** Changes to deliver in this run, once known. */
  total?: number;
  settled: number;
  counts: RunCounts;
}

/** Everything one sync run works with: resolved once, when the run starts. */
export interface RunScope {
  sync: SyncConfig;
  from: ConnectionHandle;
  to: ConnectionHandle;
  /** The destination connection's request budget, shared by every sync writing through it. */
  budget: ConnectionBudget;
  model: Model;
  mapper: Mapper;
  caps: Capabilities;
  ledger: Ledger;
  logger: Logger;
  /** Aborted when the run should stop (the engine stops, or the sync's lease is lost): reading stops, batches in flight settle. */
  signal: AbortSignal;
  /**
   * The sync's lease while a run holds it; its token fences checkpoint writes and the run's
   * finish. Absent in dry runs, which write nothing.
   */
  lease?: HeldLease;
  /** Changes to deliver in this run, once known. */
  total?: number;
  /** The run is a stream sync's reconciling diff (its reads say so: `ReadOptions.reconcile`). */
  reconcile?: boolean;
  /** A diff run may delete more than the sync's `maxDeletes.pct` (`--allow-deletes`). */
  allowDeletes: boolean;
  progress(p: Omit<Progress, 'sync'>): void;
}

/** The scope of a run that holds its sync's lease (every run but a dry run). */
export type LeasedScope = RunScope & { lease: HeldLease };

/** The model a sync reads, from its `from` block. */
export function modelOf(sync: SyncConfig): Model {
  const primaryKey = typeof sync.from.primaryKey === 'string' ? [sync.from.primaryKey] : [...sync.from.primaryKey];
  return {
    primaryKey,
    ...(sync.from.table ? { table: sync.from.table } : {}),
    ...(sync.from.sql ? { sql: sync.from.sql } : {}),
    ...(sync.from.file ? { file: sync.from.file } : {}),
  };
}
