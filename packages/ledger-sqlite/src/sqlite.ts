import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  OutflowError,
  isOutflowError,
  leaseLostError,
  makePrivateDir,
  makePrivateFile,
  redact,
  type KeyValueStore,
  type LeaseGrant,
  type LeaseHolder,
  type Ledger,
  type RowError,
  type RunCounts,
  type RunRecord,
  type RunStatus,
} from '@outflow/core';

/**
 * Schema migrations, in order: entry `i` takes the ledger from version `i` to `i + 1`.
 * Append new versions; never edit a released one.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE syncs (
    name        TEXT PRIMARY KEY,
    config_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sync        TEXT NOT NULL,
    capture     TEXT NOT NULL CHECK (capture IN ('diff', 'stream')),
    status      TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'aborted')),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    duration_ms INTEGER,
    inserted    INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    error       TEXT
  );
  CREATE INDEX runs_by_sync ON runs (sync, id);
  CREATE INDEX runs_running ON runs (sync) WHERE status = 'running';
  CREATE TABLE checkpoints (
    sync       TEXT PRIMARY KEY,
    checkpoint TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE TABLE row_errors (
    sync       TEXT NOT NULL,
    key        TEXT NOT NULL,
    op         TEXT NOT NULL,
    reason     TEXT NOT NULL,
    retryable  INTEGER NOT NULL CHECK (retryable IN (0, 1)),
    attempts   INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    PRIMARY KEY (sync, key)
  );
  CREATE INDEX row_errors_by_last_seen ON row_errors (last_seen);
  CREATE TABLE kv (
    scope TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (scope, key)
  );
  CREATE TABLE leases (
    sync       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at TEXT NOT NULL
  );
  `,
  // Row errors say whether the row waits for a change or a retry (parked) or is sent again by
  // the next run, and which version of the row their attempts count.
  `
  ALTER TABLE row_errors ADD COLUMN parked INTEGER NOT NULL DEFAULT 1 CHECK (parked IN (0, 1));
  ALTER TABLE row_errors ADD COLUMN version TEXT;
  UPDATE row_errors SET parked = 1 - retryable;
  `,
  // Leases carry a fencing token per sync. A released lease keeps its row (owner NULL), so
  // the next grant's token is still greater than every earlier one.
  `
  CREATE TABLE leases_v3 (
    sync       TEXT PRIMARY KEY,
    owner      TEXT,
    expires_at TEXT,
    token      INTEGER NOT NULL
  );
  INSERT INTO leases_v3 (sync, owner, expires_at, token) SELECT sync, owner, expires_at, 1 FROM leases;
  DROP TABLE leases;
  ALTER TABLE leases_v3 RENAME TO leases;
  `,
];

const ABANDONED = 'the process running it stopped before it finished';
/** Keys per DELETE when resolving row errors, to keep each statement's JSON argument small. */
const RESOLVE_CHUNK = 1000;
/** How long a write waits for another process's lock on the same file before failing. */
const BUSY_TIMEOUT_MS = 5000;

interface RunRow {
  id: number;
  sync: string;
  capture: 'diff' | 'stream';
  status: RunStatus;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  inserted: number;
  updated: number;
  deleted: number;
  rejected: number;
  skipped: number;
  error: string | null;
}

interface RowErrorRow {
  sync: string;
  key: string;
  op: string;
  reason: string;
  retryable: number;
  attempts: number;
  parked: number;
  first_seen: string;
  last_seen: string;
}

const now = (): string => new Date().toISOString();

// better-sqlite3 rejects named-parameter objects carrying properties a statement does not use.
function pickCounts(c: RunCounts): RunCounts {
  return { inserted: c.inserted, updated: c.updated, deleted: c.deleted, rejected: c.rejected, skipped: c.skipped };
}

function toRun(row: RunRow): RunRecord {
  const run: RunRecord = {
    id: row.id,
    sync: row.sync,
    capture: row.capture,
    status: row.status,
    startedAt: row.started_at,
    inserted: row.inserted,
    updated: row.updated,
    deleted: row.deleted,
    rejected: row.rejected,
    skipped: row.skipped,
  };
  if (row.finished_at !== null) run.finishedAt = row.finished_at;
  if (row.duration_ms !== null) run.durationMs = row.duration_ms;
  if (row.error !== null) run.error = row.error;
  return run;
}

function toRowError(row: RowErrorRow): RowError {
  return {
    sync: row.sync,
    key: row.key,
    op: row.op,
    reason: row.reason,
    retryable: row.retryable === 1,
    attempts: row.attempts,
    parked: row.parked === 1,
    firstSeen: row.first_seen,
    lastSeen: row.last_seen,
  };
}

function ledgerError(file: string, operation: string, cause: unknown): OutflowError {
  if (isOutflowError(cause)) return cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown } | null)?.code;
  return new OutflowError('OUTFLOW_LEDGER', redact(`Ledger ${file}: could not ${operation}: ${reason}`), {
    // Another process holding the write lock past busy_timeout is worth another try.
    retryable: code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED',
    details: { file, operation, ...(typeof code === 'string' ? { sqliteCode: code } : {}) },
    cause,
  });
}

function prepareStatements(db: Database.Database) {
  return {
    getSync: db.prepare<[string], { config_hash: string }>('SELECT config_hash FROM syncs WHERE name = ?'),
    upsertSync: db.prepare<[{ name: string; hash: string; at: string }]>(
      `INSERT INTO syncs (name, config_hash, created_at, updated_at) VALUES (@name, @hash, @at, @at)
       ON CONFLICT (name) DO UPDATE SET config_hash = excluded.config_hash, updated_at = excluded.updated_at
       WHERE syncs.config_hash <> excluded.config_hash`,
    ),
    insertRun: db.prepare<[string, string, string]>(
      `INSERT INTO runs (sync, capture, status, started_at) VALUES (?, ?, 'running', ?)`,
    ),
    updateRun: db.prepare<[RunCounts & { id: number }]>(
      `UPDATE runs SET inserted = @inserted, updated = @updated, deleted = @deleted, rejected = @rejected,
         skipped = @skipped
       WHERE id = @id`,
    ),
    getRunStart: db.prepare<[number], { started_at: string }>('SELECT started_at FROM runs WHERE id = ?'),
    finishRun: db.prepare<
      [RunCounts & { id: number; status: string; finishedAt: string; durationMs: number; error: string | null }]
    >(
      `UPDATE runs SET status = @status, finished_at = @finishedAt, duration_ms = @durationMs,
         inserted = @inserted, updated = @updated, deleted = @deleted, rejected = @rejected,
         skipped = @skipped, error = @error
       WHERE id = @id`,
    ),
    listRuns: db.prepare<[number], RunRow>('SELECT * FROM runs ORDER BY id DESC LIMIT ?'),
    listRunsOfSync: db.prepare<[string, number], RunRow>('SELECT * FROM runs WHERE sync = ? ORDER BY id DESC LIMIT ?'),
    abandonRuns: db.prepare<[string, string, string]>(
      `UPDATE runs SET status = 'aborted', finished_at = ?, error = ? WHERE sync = ? AND status = 'running'`,
    ),
    getCheckpoint: db.prepare<[string], { checkpoint: string }>('SELECT checkpoint FROM checkpoints WHERE sync = ?'),
    setCheckpoint: db.prepare<[string, string, string]>(
      `INSERT INTO checkpoints (sync, checkpoint, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (sync) DO UPDATE SET checkpoint = excluded.checkpoint, updated_at = excluded.updated_at`,
    ),
    clearCheckpoint: db.prepare<[string]>('DELETE FROM checkpoints WHERE sync = ?'),
    // A new version of the row starts its attempts again; parked follows the attempts.
    recordRowError: db.prepare<
      [{ sync: string; key: string; op: string; reason: string; retryable: number; version: string | null; max: number | null; at: string }],
      RowErrorRow
    >(
      `INSERT INTO row_errors (sync, key, op, reason, retryable, attempts, first_seen, last_seen, parked, version)
       VALUES (@sync, @key, @op, @reason, @retryable, 1, @at, @at,
         CASE WHEN @retryable = 0 OR 1 >= coalesce(@max, 9e18) THEN 1 ELSE 0 END, @version)
       ON CONFLICT (sync, key) DO UPDATE SET op = excluded.op, reason = excluded.reason,
         retryable = excluded.retryable,
         attempts = CASE WHEN row_errors.version IS excluded.version THEN row_errors.attempts + 1 ELSE 1 END,
         parked = CASE WHEN excluded.retryable = 0
           OR (CASE WHEN row_errors.version IS excluded.version THEN row_errors.attempts + 1 ELSE 1 END) >= coalesce(@max, 9e18)
           THEN 1 ELSE 0 END,
         version = excluded.version, last_seen = excluded.last_seen
       RETURNING *`,
    ),
    deleteRowErrors: db.prepare<[string, string]>(
      'DELETE FROM row_errors WHERE sync = ? AND key IN (SELECT value FROM json_each(?))',
    ),
    listRowErrors: db.prepare<[number], RowErrorRow>('SELECT * FROM row_errors ORDER BY last_seen DESC, sync, key LIMIT ?'),
    listRowErrorsOfSync: db.prepare<[string, number], RowErrorRow>(
      'SELECT * FROM row_errors WHERE sync = ? ORDER BY last_seen DESC, key LIMIT ?',
    ),
    countRowErrors: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM row_errors WHERE sync = ?'),
    countRowErrorsParked: db.prepare<[string, number], { n: number }>('SELECT count(*) AS n FROM row_errors WHERE sync = ? AND parked = ?'),
    kvGet: db.prepare<[string, string], { value: string }>('SELECT value FROM kv WHERE scope = ? AND key = ?'),
    kvSet: db.prepare<[string, string, string]>(
      'INSERT INTO kv (scope, key, value) VALUES (?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value',
    ),
    kvDelete: db.prepare<[string, string]>('DELETE FROM kv WHERE scope = ? AND key = ?'),
    // One statement, so atomic on its own: insert, or take over only when the lease is ours,
    // released or expired; a new owner gets the next token. ISO-8601 UTC strings of equal
    // length compare in time order.
    acquireLease: db.prepare<[{ sync: string; owner: string; expiresAt: string; now: string }], { token: number; expires_at: string }>(
      `INSERT INTO leases (sync, owner, expires_at, token) VALUES (@sync, @owner, @expiresAt, 1)
       ON CONFLICT (sync) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
         token = CASE WHEN leases.owner IS excluded.owner THEN leases.token ELSE leases.token + 1 END
       WHERE leases.owner IS excluded.owner OR leases.owner IS NULL OR leases.expires_at <= @now
       RETURNING token, expires_at`,
    ),
    renewLease: db.prepare<[{ sync: string; owner: string; token: number; expiresAt: string }], { token: number; expires_at: string }>(
      `UPDATE leases SET expires_at = @expiresAt WHERE sync = @sync AND owner = @owner AND token = @token
       RETURNING token, expires_at`,
    ),
    releaseLease: db.prepare<[string, string]>('UPDATE leases SET owner = NULL, expires_at = NULL WHERE sync = ? AND owner = ?'),
    leaseHolder: db.prepare<[string], { owner: string; expires_at: string; token: number }>(
      'SELECT owner, expires_at, token FROM leases WHERE sync = ? AND owner IS NOT NULL',
    ),
    fenceHolds: db.prepare<[string, number], { held: number }>(
      'SELECT 1 AS held FROM leases WHERE sync = ? AND token = ? AND owner IS NOT NULL',
    ),
    syncOfRun: db.prepare<[number], { sync: string }>('SELECT sync FROM runs WHERE id = ?'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** Refuses a write under a lease token that is no longer the sync's current one. */
function checkFence(stmt: Statements, sync: string, fence: number): void {
  if (stmt.fenceHolds.get(sync, fence) === undefined) throw leaseLostError(sync, fence, stmt.leaseHolder.get(sync));
}


/** Writes of several statements; called with `.immediate()` so the write lock comes first. */
function prepareTransactions(db: Database.Database, stmt: Statements) {
  return {
    registerSync: db.transaction((sync: string, configHash: string): { previousHash?: string } => {
      const previous = stmt.getSync.get(sync)?.config_hash;
      stmt.upsertSync.run({ name: sync, hash: configHash, at: now() });
      return previous !== undefined && previous !== configHash ? { previousHash: previous } : {};
    }),
    finishRun: db.transaction((id: number, status: string, counts: RunCounts, error: string | null, fence: number | undefined) => {
      const start = stmt.getRunStart.get(id);
      if (start === undefined) throw new Error(`there is no run ${id}`);
      if (fence !== undefined) checkFence(stmt, stmt.syncOfRun.get(id)!.sync, fence);
      const finished = new Date();
      stmt.finishRun.run({
        id,
        status,
        finishedAt: finished.toISOString(),
        durationMs: Math.max(0, finished.getTime() - Date.parse(start.started_at)),
        error,
        ...pickCounts(counts),
      });
    }),
    setCheckpoint: db.transaction((sync: string, checkpoint: string, fence: number | undefined) => {
      if (fence !== undefined) checkFence(stmt, sync, fence);
      stmt.setCheckpoint.run(sync, checkpoint, now());
    }),
    clearCheckpoint: db.transaction((sync: string, fence: number | undefined) => {
      if (fence !== undefined) checkFence(stmt, sync, fence);
      stmt.clearCheckpoint.run(sync);
    }),
    resolveRowErrors: db.transaction((sync: string, keys: string[]) => {
      for (let i = 0; i < keys.length; i += RESOLVE_CHUNK) {
        stmt.deleteRowErrors.run(sync, JSON.stringify(keys.slice(i, i + RESOLVE_CHUNK)));
      }
    }),
  };
}

type Transactions = ReturnType<typeof prepareTransactions>;

/**
 * The embedded ledger: one SQLite file in WAL mode, safe to open from several processes at
 * once (e.g. `outflow status` while `outflow run` writes). Calls run synchronously inside
 * better-sqlite3, so writes from one process are serialised by the event loop and writes
 * from several by SQLite's lock. Failures are {@link OutflowError}s with code
 * `OUTFLOW_LEDGER` naming the file and the operation.
 */
export class SqliteLedger implements Ledger {
  /** The path of the SQLite file. */
  readonly file: string;
  private readonly db: Database.Database;
  private readonly stmt: Statements;
  private readonly tx: Transactions;

  /** Opens (creating if needed) the ledger file at `file` and brings its schema up to date. */
  constructor(file: string) {
    this.file = file;
    let db: Database.Database | undefined;
    try {
      // Created private first: SQLite gives its -wal and -shm files the same mode.
      makePrivateFile(file);
      db = new Database(file);
      // busy_timeout first, so that switching to WAL waits for a concurrent opener.
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db, file);
      this.stmt = prepareStatements(db);
      this.tx = prepareTransactions(db, this.stmt);
      this.db = db;
    } catch (err) {
      db?.close();
      throw ledgerError(file, 'open it', err);
    }
  }

  private run<T>(operation: string, fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(ledgerError(this.file, operation, err));
    }
  }

  /**
   * Records the sync's configuration fingerprint. `previousHash` is set only when the sync
   * was registered before with a different fingerprint.
   */
  registerSync(sync: string, configHash: string): Promise<{ previousHash?: string }> {
    return this.run(`register sync "${sync}"`, () => this.tx.registerSync.immediate(sync, configHash));
  }

  startRun(sync: string, capture: 'diff' | 'stream'): Promise<number> {
    return this.run(`start a run of sync "${sync}"`, () =>
      Number(this.stmt.insertRun.run(sync, capture, now()).lastInsertRowid),
    );
  }

  updateRun(id: number, counts: RunCounts): Promise<void> {
    return this.run(`update run ${id}`, () => {
      if (this.stmt.updateRun.run({ id, ...pickCounts(counts) }).changes === 0) {
        throw new Error(`there is no run ${id}`);
      }
    });
  }

  finishRun(id: number, status: Exclude<RunStatus, 'running'>, counts: RunCounts, error?: string, fence?: number): Promise<void> {
    return this.run(`finish run ${id}`, () =>
      this.tx.finishRun.immediate(id, status, counts, error === undefined ? null : redact(error), fence),
    );
  }

  listRuns(options: { sync?: string; limit?: number } = {}): Promise<RunRecord[]> {
    // SQLite reads a negative LIMIT as no limit.
    const limit = options.limit ?? -1;
    return this.run('list runs', () =>
      (options.sync === undefined
        ? this.stmt.listRuns.all(limit)
        : this.stmt.listRunsOfSync.all(options.sync, limit)
      ).map(toRun),
    );
  }

  abandonRunningRuns(sync: string): Promise<number> {
    return this.run(`abandon the running runs of sync "${sync}"`, () =>
      this.stmt.abandonRuns.run(now(), ABANDONED, sync).changes,
    );
  }

  getCheckpoint(sync: string): Promise<string | undefined> {
    return this.run(`read the checkpoint of sync "${sync}"`, () => this.stmt.getCheckpoint.get(sync)?.checkpoint);
  }

  setCheckpoint(sync: string, checkpoint: string, fence?: number): Promise<void> {
    return this.run(`save the checkpoint of sync "${sync}"`, () => this.tx.setCheckpoint.immediate(sync, checkpoint, fence));
  }

  clearCheckpoint(sync: string, fence?: number): Promise<void> {
    return this.run(`clear the checkpoint of sync "${sync}"`, () => this.tx.clearCheckpoint.immediate(sync, fence));
  }

  recordRowError(
    sync: string,
    error: { key: string; op: string; reason: string; retryable: boolean; version?: string | null; maxAttempts?: number },
  ): Promise<RowError> {
    return this.run(`record a row error of sync "${sync}"`, () =>
      toRowError(
        this.stmt.recordRowError.get({
          sync,
          key: error.key,
          op: error.op,
          reason: redact(error.reason),
          retryable: error.retryable ? 1 : 0,
          version: error.version ?? null,
          max: error.maxAttempts ?? null,
          at: now(),
        })!,
      ),
    );
  }

  resolveRowErrors(sync: string, keys: string[]): Promise<void> {
    if (keys.length === 0) return Promise.resolve();
    return this.run(`resolve row errors of sync "${sync}"`, () => this.tx.resolveRowErrors.immediate(sync, keys));
  }

  listRowErrors(options: { sync?: string; limit?: number } = {}): Promise<RowError[]> {
    const limit = options.limit ?? -1;
    return this.run('list row errors', () =>
      (options.sync === undefined
        ? this.stmt.listRowErrors.all(limit)
        : this.stmt.listRowErrorsOfSync.all(options.sync, limit)
      ).map(toRowError),
    );
  }

  countRowErrors(sync: string, options: { parked?: boolean } = {}): Promise<number> {
    return this.run(`count row errors of sync "${sync}"`, () =>
      (options.parked === undefined ? this.stmt.countRowErrors.get(sync) : this.stmt.countRowErrorsParked.get(sync, options.parked ? 1 : 0))?.n ?? 0,
    );
  }

  kv(scope: string): KeyValueStore {
    return {
      get: (key) => this.run(`read key "${key}" of "${scope}"`, () => this.stmt.kvGet.get(scope, key)?.value),
      set: (key, value) =>
        this.run(`write key "${key}" of "${scope}"`, () => {
          this.stmt.kvSet.run(scope, key, value);
        }),
      delete: (key) =>
        this.run(`delete key "${key}" of "${scope}"`, () => {
          this.stmt.kvDelete.run(scope, key);
        }),
    };
  }

  /**
   * Takes or extends the sync's lease (see `Ledger.acquireLease`). The clock is this
   * machine's: every process sharing the file runs on it.
   */
  acquireLease(sync: string, owner: string, ttlMs: number): Promise<LeaseGrant | undefined> {
    return this.run(`acquire the lease of sync "${sync}"`, () => {
      const at = Date.now();
      const row = this.stmt.acquireLease.get({ sync, owner, expiresAt: new Date(at + ttlMs).toISOString(), now: new Date(at).toISOString() });
      return row ? { sync, owner, token: row.token, expiresAt: row.expires_at } : undefined;
    });
  }

  renewLease(lease: Pick<LeaseGrant, 'sync' | 'owner' | 'token'>, ttlMs: number): Promise<LeaseGrant> {
    const { sync, owner, token } = lease;
    return this.run(`renew the lease of sync "${sync}"`, () => {
      const row = this.stmt.renewLease.get({ sync, owner, token, expiresAt: new Date(Date.now() + ttlMs).toISOString() });
      if (!row) throw leaseLostError(sync, token, this.stmt.leaseHolder.get(sync));
      return { sync, owner, token: row.token, expiresAt: row.expires_at };
    });
  }

  leaseHolder(sync: string): Promise<LeaseHolder | undefined> {
    return this.run(`read the lease of sync "${sync}"`, () => {
      const row = this.stmt.leaseHolder.get(sync);
      return row ? { owner: row.owner, token: row.token, expiresAt: row.expires_at, expired: row.expires_at <= now() } : undefined;
    });
  }

  releaseLease(sync: string, owner: string): Promise<void> {
    return this.run(`release the lease of sync "${sync}"`, () => {
      this.stmt.releaseLease.run(sync, owner);
    });
  }

  /** Closes the file; later calls fail with `OUTFLOW_LEDGER`. Closing twice is harmless. */
  close(): Promise<void> {
    return this.run('close it', () => {
      if (this.db.open) this.db.close();
    });
  }
}

function migrate(db: Database.Database, file: string): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const current = (): number =>
    (db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null }).v ?? 0;
  // IMMEDIATE takes the write lock before reading the version, so two processes opening a
  // new file at once cannot both apply the same migration.
  db.transaction(() => {
    const from = current();
    if (from > MIGRATIONS.length) {
      throw new OutflowError(
        'OUTFLOW_LEDGER',
        `Ledger ${file} has schema version ${from}, newer than this Outflow understands (${MIGRATIONS.length}); upgrade Outflow.`,
        { details: { file, version: from } },
      );
    }
    for (let v = from; v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v]);
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v + 1);
    }
  }).immediate();
}

/** Opens the SQLite ledger `<dir>/ledger.db`, creating `dir` and the file if needed. */
export function openSqliteLedger(dir: string): SqliteLedger {
  try {
    makePrivateDir(dir);
  } catch (err) {
    throw ledgerError(join(dir, 'ledger.db'), `create its folder ${dir}`, err);
  }
  return new SqliteLedger(join(dir, 'ledger.db'));
}
