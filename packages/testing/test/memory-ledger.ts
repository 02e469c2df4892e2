/**
 * A ledger in memory, for the ledger suite's own tests: the reference the suite passes, and
 * the base of the deliberately broken ledgers it must catch. Instances opened over one
 * store name share that store, as runners sharing a ledger do.
 */
import { OutflowError, leaseLostError, redact, type KeyValueStore, type LeaseGrant, type LeaseHolder, type Ledger, type RowError, type RunCounts, type RunRecord, type RunStatus } from '@outflow/core';

export interface MemoryStore {
  syncs: Map<string, string>;
  runs: RunRecord[];
  checkpoints: Map<string, string>;
  rowErrors: Map<string, RowError & { version: string | null }>;
  kv: Map<string, string>;
  leases: Map<string, { owner: string | null; expiresAt: number; token: number }>;
}

const newStore = (): MemoryStore => ({ syncs: new Map(), runs: [], checkpoints: new Map(), rowErrors: new Map(), kv: new Map(), leases: new Map() });

export class MemoryLedgers {
  readonly stores = new Map<string, MemoryStore>();
  open(name: string): MemoryLedger {
    let store = this.stores.get(name);
    if (!store) this.stores.set(name, (store = newStore()));
    return new MemoryLedger(store);
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

export class MemoryLedger implements Ledger {
  private closed = false;
  constructor(readonly store: MemoryStore) {}

  private use(): MemoryStore {
    if (this.closed) throw new OutflowError('OUTFLOW_LEDGER', 'the memory ledger is closed');
    return this.store;
  }

  private run(id: number): RunRecord {
    const run = this.use().runs.find((r) => r.id === id);
    if (!run) throw new OutflowError('OUTFLOW_LEDGER', `memory ledger: there is no run ${id}`);
    return run;
  }

  checkFence(sync: string, fence: number | undefined): void {
    if (fence === undefined) return;
    const lease = this.use().leases.get(sync);
    if (!lease || lease.owner === null || lease.token !== fence) {
      throw leaseLostError(sync, fence, lease?.owner ? { owner: lease.owner, token: lease.token } : undefined);
    }
  }

  async registerSync(sync: string, configHash: string): Promise<{ previousHash?: string }> {
    const previous = this.use().syncs.get(sync);
    this.store.syncs.set(sync, configHash);
    return previous !== undefined && previous !== configHash ? { previousHash: previous } : {};
  }

  async startRun(sync: string, capture: 'diff' | 'stream'): Promise<number> {
    const id = (this.use().runs.at(-1)?.id ?? 0) + 1;
    this.store.runs.push({ id, sync, capture, status: 'running', startedAt: iso(Date.now()), inserted: 0, updated: 0, deleted: 0, rejected: 0, skipped: 0 });
    return id;
  }

  async updateRun(id: number, counts: RunCounts): Promise<void> {
    Object.assign(this.run(id), pickCounts(counts));
  }

  async finishRun(id: number, status: Exclude<RunStatus, 'running'>, counts: RunCounts, error?: string, fence?: number): Promise<void> {
    const run = this.run(id);
    this.checkFence(run.sync, fence);
    const now = Date.now();
    Object.assign(run, pickCounts(counts), { status, finishedAt: iso(now), durationMs: Math.max(0, now - Date.parse(run.startedAt)) });
    if (error !== undefined) run.error = redact(error);
  }

  async listRuns(options: { sync?: string; limit?: number } = {}): Promise<RunRecord[]> {
    const runs = this.use().runs.filter((r) => options.sync === undefined || r.sync === options.sync).reverse();
    return structuredClone(runs.slice(0, options.limit ?? runs.length));
  }

  async abandonRunningRuns(sync: string): Promise<number> {
    const running = this.use().runs.filter((r) => r.sync === sync && r.status === 'running');
    for (const r of running) Object.assign(r, { status: 'aborted', finishedAt: iso(Date.now()), error: 'the process running it stopped before it finished' });
    return running.length;
  }

  async getCheckpoint(sync: string): Promise<string | undefined> {
    return this.use().checkpoints.get(sync);
  }

  async setCheckpoint(sync: string, checkpoint: string, fence?: number): Promise<void> {
    this.checkFence(sync, fence);
    this.use().checkpoints.set(sync, checkpoint);
  }

  async clearCheckpoint(sync: string, fence?: number): Promise<void> {
    this.checkFence(sync, fence);
    this.use().checkpoints.delete(sync);
  }

  async recordRowError(
    sync: string,
    error: { key: string; op: string; reason: string; retryable: boolean; version?: string | null; maxAttempts?: number },
  ): Promise<RowError> {
    const id = `${sync}\0${error.key}`;
    const before = this.use().rowErrors.get(id);
    const version = error.version ?? null;
    const attempts = before && before.version === version ? before.attempts + 1 : 1;
    const now = iso(Date.now());
    const row = {
      sync,
      key: error.key,
      op: error.op,
      reason: redact(error.reason),
      retryable: error.retryable,
      attempts,
      parked: !error.retryable || attempts >= (error.maxAttempts ?? Infinity),
      firstSeen: before?.firstSeen ?? now,
      lastSeen: now,
      version,
    };
    this.store.rowErrors.set(id, row);
    return toRowError(row);
  }

  async resolveRowErrors(sync: string, keys: string[]): Promise<void> {
    for (const key of keys) this.use().rowErrors.delete(`${sync}\0${key}`);
  }

  async listRowErrors(options: { sync?: string; limit?: number } = {}): Promise<RowError[]> {
    const rows = [...this.use().rowErrors.values()].filter((e) => options.sync === undefined || e.sync === options.sync);
    rows.sort((a, b) => b.lastSeen.localeCompare(a.lastSeen));
    return rows.slice(0, options.limit ?? rows.length).map(toRowError);
  }

  async countRowErrors(sync: string, options: { parked?: boolean } = {}): Promise<number> {
    return [...this.use().rowErrors.values()].filter((e) => e.sync === sync && (options.parked === undefined || e.parked === options.parked)).length;
  }

  kv(scope: string): KeyValueStore {
    const id = (key: string) => `${scope}\0${key}`;
    return {
      get: async (key) => this.use().kv.get(id(key)),
      set: async (key, value) => void this.use().kv.set(id(key), value),
      delete: async (key) => void this.use().kv.delete(id(key)),
    };
  }

  async acquireLease(sync: string, owner: string, ttlMs: number): Promise<LeaseGrant | undefined> {
    const now = Date.now();
    const lease = this.use().leases.get(sync);
    if (lease && lease.owner !== null && lease.owner !== owner && lease.expiresAt > now) return undefined;
    const token = lease ? (lease.owner === owner ? lease.token : lease.token + 1) : 1;
    this.store.leases.set(sync, { owner, expiresAt: now + ttlMs, token });
    return { sync, owner, token, expiresAt: iso(now + ttlMs) };
  }

  async renewLease(grant: Pick<LeaseGrant, 'sync' | 'owner' | 'token'>, ttlMs: number): Promise<LeaseGrant> {
    const lease = this.use().leases.get(grant.sync);
    if (!lease || lease.owner !== grant.owner || lease.token !== grant.token) {
      throw leaseLostError(grant.sync, grant.token, lease?.owner ? { owner: lease.owner, token: lease.token } : undefined);
    }
    lease.expiresAt = Date.now() + ttlMs;
    return { sync: grant.sync, owner: grant.owner, token: lease.token, expiresAt: iso(lease.expiresAt) };
  }

  async releaseLease(sync: string, owner: string): Promise<void> {
    const lease = this.use().leases.get(sync);
    if (lease?.owner === owner) lease.owner = null;
  }

  async leaseHolder(sync: string): Promise<LeaseHolder | undefined> {
    const lease = this.use().leases.get(sync);
    if (!lease || lease.owner === null) return undefined;
    return { owner: lease.owner, token: lease.token, expiresAt: iso(lease.expiresAt), expired: lease.expiresAt <= Date.now() };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function pickCounts(c: RunCounts): RunCounts {
  return { inserted: c.inserted, updated: c.updated, deleted: c.deleted, rejected: c.rejected, skipped: c.skipped };
}

function toRowError(row: RowError & { version: string | null }): RowError {
  const { version: _version, ...rest } = row;
  return { ...rest };
}
