import pg from 'pg';
import {
  OutflowError,
  isOutflowError,
  leaseLostError,
  redact,
  registerSecret,
  type KeyValueStore,
  type LeaseGrant,
  type LeaseHolder,
  type Ledger,
  type RowError,
  type RunCounts,
  type RunRecord,
  type RunStatus,
} from '@outflow/core';

/** Where the ledger lives. */
export interface PostgresLedgerOptions {
  /** A `postgres://user:password@host:port/database` connection string; a secret, never shown. */
  url: string;
  /** The schema holding the ledger's tables, created if missing; `outflow` by default. */
  schema?: string;
}

const DEFAULT_SCHEMA = 'outflow';
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Schema migrations, in order: entry `i` takes the ledger from version `i` to `i + 1`.
 * `{s}` stands for the quoted schema. Append new versions; never edit a released one.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE {s}.syncs (
    name        text PRIMARY KEY,
    config_hash text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
  );
  CREATE TABLE {s}.runs (
    id          bigserial PRIMARY KEY,
    sync        text NOT NULL,
    capture     text NOT NULL CHECK (capture IN ('diff', 'stream')),
    status      text NOT NULL CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'aborted')),
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    duration_ms bigint,
    inserted    bigint NOT NULL DEFAULT 0,
    updated     bigint NOT NULL DEFAULT 0,
    deleted     bigint NOT NULL DEFAULT 0,
    rejected    bigint NOT NULL DEFAULT 0,
    skipped     bigint NOT NULL DEFAULT 0,
    error       text
  );
  CREATE INDEX runs_by_sync ON {s}.runs (sync, id);
  CREATE INDEX runs_running ON {s}.runs (sync) WHERE status = 'running';
  CREATE TABLE {s}.checkpoints (
    sync       text PRIMARY KEY,
    checkpoint text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
  );
  CREATE TABLE {s}.row_errors (
    sync       text NOT NULL,
    key        text NOT NULL,
    op         text NOT NULL,
    reason     text NOT NULL,
    retryable  boolean NOT NULL,
    attempts   integer NOT NULL,
    parked     boolean NOT NULL,
    version    text,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (sync, key)
  );
  CREATE INDEX row_errors_by_last_seen ON {s}.row_errors (last_seen);
  CREATE TABLE {s}.kv (
    scope text NOT NULL,
    key   text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (scope, key)
  );
  -- One row per sync ever leased, kept when released (owner NULL) so tokens only grow.
  CREATE TABLE {s}.leases (
    sync        text PRIMARY KEY,
    owner       text,
    lease_until timestamptz,
    token       bigint NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT clock_timestamp()
  );
  `,
];

const ABANDONED = 'the process running it stopped before it finished';
/** Keys per DELETE when resolving row errors. */
const RESOLVE_CHUNK = 5000;
/** SQLSTATEs worth another try: the connection or the server (class 08, 53, 57P), a lost race (40), a lock timeout. */
const TRANSIENT_SQLSTATE = /^(08|53|57P|40|55P03)/;
/** Socket-level failures (`ECONNREFUSED`, `ETIMEDOUT` …) and pg's own connection messages. */
const TRANSIENT_MESSAGE = /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|Connection terminated|timeout exceeded|connection.*closed/i;

interface RunRow {
  id: string;
  sync: string;
  capture: 'diff' | 'stream';
  status: RunStatus;
  started_at: Date;
  finished_at: Date | null;
  duration_ms: string | null;
  inserted: string;
  updated: string;
  deleted: string;
  rejected: string;
  skipped: string;
  error: string | null;
}

interface RowErrorRow {
  sync: string;
  key: string;
  op: string;
  reason: string;
  retryable: boolean;
  attempts: number;
  parked: boolean;
  first_seen: Date;
  last_seen: Date;
}

interface LeaseRow {
  owner: string;
  token: string;
  lease_until: Date;
  expired: boolean;
}

type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

function toRun(row: RunRow): RunRecord {
  const run: RunRecord = {
    id: Number(row.id),
    sync: row.sync,
    capture: row.capture,
    status: row.status,
    startedAt: row.started_at.toISOString(),
    inserted: Number(row.inserted),
    updated: Number(row.updated),
    deleted: Number(row.deleted),
    rejected: Number(row.rejected),
    skipped: Number(row.skipped),
  };
  if (row.finished_at !== null) run.finishedAt = row.finished_at.toISOString();
  if (row.duration_ms !== null) run.durationMs = Number(row.duration_ms);
  if (row.error !== null) run.error = row.error;
  return run;
}

function toRowError(row: RowErrorRow): RowError {
  return {
    sync: row.sync,
    key: row.key,
    op: row.op,
    reason: row.reason,
    retryable: row.retryable,
    attempts: row.attempts,
    parked: row.parked,
    firstSeen: row.first_seen.toISOString(),
    lastSeen: row.last_seen.toISOString(),
  };
}

/** `postgres://user@host:port/database`: where the server is, without the password or options. */
function serverName(url: string): string {
  try {
    const u = new URL(url);
    const user = u.username ? `${decodeURIComponent(u.username)}@` : '';
    return `${u.protocol}//${user}${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return 'the PostgreSQL server (its URL could not be read)';
  }
}


/**
 * A ledger in PostgreSQL, shared by every runner pointed at it. Its tables live in one
 * schema (`outflow` by default), created and migrated on first use under an advisory lock,
 * so runners starting together migrate once. Times — run starts and ends, row errors, and
 * every lease's expiry — come from the database's clock, never a runner's.
 *
 * A sync's lease is a row: taking it is one `INSERT … ON CONFLICT DO UPDATE` that locks the
 * row and succeeds only when the lease is free, released or past `lease_until`, bumping the
 * sync's fencing token for a new owner. A fenced write (a checkpoint, a run's finish) locks
 * the lease row `FOR SHARE` in the write's transaction and checks the token first, so a
 * takeover and a stale write can never interleave.
 *
 * Failures are {@link OutflowError}s with code `OUTFLOW_LEDGER` naming the server (never the
 * password) and the operation; those of the connection or the server's load are retryable.
 */
export class PostgresLedger implements Ledger {
  /** Where the ledger is, for messages: `postgres://user@host:port/database`. */
  readonly server: string;
  readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly s: string;
  private ready: Promise<void> | undefined;
  private closed = false;

  /** Connects lazily: nothing is sent until the first call. */
  constructor(options: PostgresLedgerOptions) {
    this.server = serverName(options.url);
    registerSecret(options.url);
    try {
      const password = new URL(options.url).password;
      if (password) registerSecret(decodeURIComponent(password));
    } catch {
      // An unreadable URL fails below, without quoting it.
    }
    this.schema = options.schema ?? DEFAULT_SCHEMA;
    if (!SCHEMA_NAME.test(this.schema)) {
      throw new OutflowError(
        'OUTFLOW_LEDGER',
        `Ledger ${this.server}: schema "${this.schema}" is not a plain PostgreSQL name (lower-case letters, digits and underscores, at most 63)`,
        { details: { server: this.server, schema: this.schema } },
      );
    }
    this.s = `"${this.schema}"`;
    try {
      this.pool = new pg.Pool({
        connectionString: options.url,
        max: 4,
        connectionTimeoutMillis: 10_000,
        idleTimeoutMillis: 30_000,
        query_timeout: 30_000,
        keepAlive: true,
        application_name: 'outflow-ledger',
      });
    } catch (err) {
      throw new OutflowError('OUTFLOW_LEDGER', `Ledger ${this.server}: the URL is not a valid PostgreSQL connection string`, { details: { server: this.server }, cause: err });
    }
    // An idle connection dropped by the server: the pool replaces it at the next call.
    this.pool.on('error', () => undefined);
  }

  private fail(operation: string, cause: unknown): OutflowError {
    if (isOutflowError(cause)) return cause;
    const reason = cause instanceof Error ? cause.message || cause.name : String(cause);
    const code = (cause as { code?: unknown } | null)?.code;
    const sqlstate = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
    const retryable = sqlstate ? TRANSIENT_SQLSTATE.test(sqlstate) : TRANSIENT_MESSAGE.test(`${String(code)} ${reason}`);
    return new OutflowError('OUTFLOW_LEDGER', redact(`Ledger ${this.server} (schema ${this.schema}): could not ${operation}: ${reason}`), {
      retryable,
      details: { server: this.server, schema: this.schema, operation, ...(typeof code === 'string' ? { pgCode: code } : {}) },
      cause,
    });
  }

  /** Runs `fn` once the schema is up to date; failures become `OUTFLOW_LEDGER` errors. */
  private async run<T>(operation: string, fn: (db: Queryable) => Promise<T>): Promise<T> {
    try {
      if (this.closed) throw new Error('the ledger is closed');
      await (this.ready ??= this.migrate().catch((err: unknown) => {
        this.ready = undefined;
        throw err;
      }));
      return await fn(this.pool);
    } catch (err) {
      throw this.fail(operation, err);
    }
  }

  /** Runs `fn` in a transaction of its own. */
  private tx<T>(operation: string, fn: (db: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.run(operation, async () => {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => (broken = e));
        throw err;
      } finally {
        client.release(broken);
      }
    });
  }

  private async migrate(): Promise<void> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      // Runners opening a new ledger together: one migrates, the others wait and see it done.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`outflow-ledger:${this.schema}`]);
      // Created only when missing: a user without CREATE on the database may own the schema.
      const exists = (await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schema])).rowCount! > 0;
      if (!exists) await client.query(`CREATE SCHEMA ${this.s}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.s}.schema_version (version integer NOT NULL)`);
      const from = (await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${this.s}.schema_version`)).rows[0]?.v ?? 0;
      if (from > MIGRATIONS.length) {
        throw new OutflowError(
          'OUTFLOW_LEDGER',
          `Ledger ${this.server} (schema ${this.schema}) has schema version ${from}, newer than this Outflow understands (${MIGRATIONS.length}); upgrade Outflow.`,
          { details: { server: this.server, schema: this.schema, version: from } },
        );
      }
      for (let v = from; v < MIGRATIONS.length; v++) {
        await client.query(MIGRATIONS[v]!.replaceAll('{s}', this.s));
        await client.query(`INSERT INTO ${this.s}.schema_version (version) VALUES ($1)`, [v + 1]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** Locks the sync's lease row until the transaction ends and refuses a token that is not its current one. */
  private async checkFence(db: pg.PoolClient, sync: string, fence: number): Promise<void> {
    const row = (
      await db.query<LeaseRow>(
        `SELECT owner, token, lease_until, lease_until <= clock_timestamp() AS expired FROM ${this.s}.leases WHERE sync = $1 FOR SHARE`,
        [sync],
      )
    ).rows[0];
    if (row === undefined || row.owner === null || Number(row.token) !== fence) {
      throw leaseLostError(sync, fence, row === undefined || row.owner === null ? undefined : { owner: row.owner, token: Number(row.token) });
    }
  }

  /**
   * Records the sync's configuration fingerprint. `previousHash` is set only when the sync
   * was registered before with a different fingerprint.
   */
  registerSync(sync: string, configHash: string): Promise<{ previousHash?: string }> {
    return this.tx(`register sync "${sync}"`, async (db) => {
      const previous = (await db.query<{ config_hash: string }>(`SELECT config_hash FROM ${this.s}.syncs WHERE name = $1 FOR UPDATE`, [sync])).rows[0]?.config_hash;
      await db.query(
        `INSERT INTO ${this.s}.syncs (name, config_hash) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET config_hash = EXCLUDED.config_hash, updated_at = clock_timestamp()
         WHERE syncs.config_hash <> EXCLUDED.config_hash`,
        [sync, configHash],
      );
      return previous !== undefined && previous !== configHash ? { previousHash: previous } : {};
    });
  }

  startRun(sync: string, capture: 'diff' | 'stream'): Promise<number> {
    return this.run(`start a run of sync "${sync}"`, async (db) =>
      Number((await db.query<{ id: string }>(`INSERT INTO ${this.s}.runs (sync, capture, status) VALUES ($1, $2, 'running') RETURNING id`, [sync, capture])).rows[0]!.id),
    );
  }

  updateRun(id: number, counts: RunCounts): Promise<void> {
    return this.run(`update run ${id}`, async (db) => {
      const r = await db.query(
        `UPDATE ${this.s}.runs SET inserted = $2, updated = $3, deleted = $4, rejected = $5, skipped = $6 WHERE id = $1`,
        [id, counts.inserted, counts.updated, counts.deleted, counts.rejected, counts.skipped],
      );
      if (r.rowCount === 0) throw new Error(`there is no run ${id}`);
    });
  }

  finishRun(id: number, status: Exclude<RunStatus, 'running'>, counts: RunCounts, error?: string, fence?: number): Promise<void> {
    return this.tx(`finish run ${id}`, async (db) => {
      const run = (await db.query<{ sync: string }>(`SELECT sync FROM ${this.s}.runs WHERE id = $1`, [id])).rows[0];
      if (run === undefined) throw new Error(`there is no run ${id}`);
      if (fence !== undefined) await this.checkFence(db, run.sync, fence);
      await db.query(
        `UPDATE ${this.s}.runs SET status = $2, finished_at = clock_timestamp(),
           duration_ms = greatest(0, round(extract(epoch FROM clock_timestamp() - started_at) * 1000)),
           inserted = $3, updated = $4, deleted = $5, rejected = $6, skipped = $7, error = $8
         WHERE id = $1`,
        [id, status, counts.inserted, counts.updated, counts.deleted, counts.rejected, counts.skipped, error === undefined ? null : redact(error)],
      );
    });
  }

  listRuns(options: { sync?: string; limit?: number } = {}): Promise<RunRecord[]> {
    return this.run('list runs', async (db) =>
      (
        await db.query<RunRow>(`SELECT * FROM ${this.s}.runs WHERE ($1::text IS NULL OR sync = $1) ORDER BY id DESC LIMIT $2`, [
          options.sync ?? null,
          options.limit ?? null,
        ])
      ).rows.map(toRun),
    );
  }

  abandonRunningRuns(sync: string): Promise<number> {
    return this.run(`abandon the running runs of sync "${sync}"`, async (db) =>
      (
        await db.query(`UPDATE ${this.s}.runs SET status = 'aborted', finished_at = clock_timestamp(), error = $2 WHERE sync = $1 AND status = 'running'`, [
          sync,
          ABANDONED,
        ])
      ).rowCount ?? 0,
    );
  }

  getCheckpoint(sync: string): Promise<string | undefined> {
    return this.run(`read the checkpoint of sync "${sync}"`, async (db) =>
      (await db.query<{ checkpoint: string }>(`SELECT checkpoint FROM ${this.s}.checkpoints WHERE sync = $1`, [sync])).rows[0]?.checkpoint,
    );
  }

  setCheckpoint(sync: string, checkpoint: string, fence?: number): Promise<void> {
    const write = async (db: Queryable) => {
      await db.query(
        `INSERT INTO ${this.s}.checkpoints (sync, checkpoint) VALUES ($1, $2)
         ON CONFLICT (sync) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, updated_at = clock_timestamp()`,
        [sync, checkpoint],
      );
    };
    const operation = `save the checkpoint of sync "${sync}"`;
    if (fence === undefined) return this.run(operation, write);
    return this.tx(operation, async (db) => {
      await this.checkFence(db, sync, fence);
      await write(db);
    });
  }

  clearCheckpoint(sync: string, fence?: number): Promise<void> {
    const write = async (db: Queryable) => {
      await db.query(`DELETE FROM ${this.s}.checkpoints WHERE sync = $1`, [sync]);
    };
    const operation = `clear the checkpoint of sync "${sync}"`;
    if (fence === undefined) return this.run(operation, write);
    return this.tx(operation, async (db) => {
      await this.checkFence(db, sync, fence);
      await write(db);
    });
  }

  recordRowError(
    sync: string,
    error: { key: string; op: string; reason: string; retryable: boolean; version?: string | null; maxAttempts?: number },
  ): Promise<RowError> {
    return this.run(`record a row error of sync "${sync}"`, async (db) => {
      // A new version of the row starts its attempts again; parked follows the attempts.
      const r = await db.query<RowErrorRow>(
        `INSERT INTO ${this.s}.row_errors AS e (sync, key, op, reason, retryable, attempts, parked, version, first_seen, last_seen)
         VALUES ($1, $2, $3, $4, $5::boolean, 1, NOT $5::boolean OR 1 >= coalesce($7::integer, 2147483647), $6, clock_timestamp(), clock_timestamp())
         ON CONFLICT (sync, key) DO UPDATE SET op = EXCLUDED.op, reason = EXCLUDED.reason, retryable = EXCLUDED.retryable,
           attempts = CASE WHEN e.version IS NOT DISTINCT FROM EXCLUDED.version THEN e.attempts + 1 ELSE 1 END,
           parked = NOT EXCLUDED.retryable
             OR (CASE WHEN e.version IS NOT DISTINCT FROM EXCLUDED.version THEN e.attempts + 1 ELSE 1 END) >= coalesce($7::integer, 2147483647),
           version = EXCLUDED.version, last_seen = EXCLUDED.last_seen
         RETURNING *`,
        [sync, error.key, error.op, redact(error.reason), error.retryable, error.version ?? null, error.maxAttempts ?? null],
      );
      return toRowError(r.rows[0]!);
    });
  }

  resolveRowErrors(sync: string, keys: string[]): Promise<void> {
    if (keys.length === 0) return Promise.resolve();
    return this.tx(`resolve row errors of sync "${sync}"`, async (db) => {
      for (let i = 0; i < keys.length; i += RESOLVE_CHUNK) {
        await db.query(`DELETE FROM ${this.s}.row_errors WHERE sync = $1 AND key = ANY($2::text[])`, [sync, keys.slice(i, i + RESOLVE_CHUNK)]);
      }
    });
  }

  listRowErrors(options: { sync?: string; limit?: number } = {}): Promise<RowError[]> {
    return this.run('list row errors', async (db) =>
      (
        await db.query<RowErrorRow>(
          `SELECT * FROM ${this.s}.row_errors WHERE ($1::text IS NULL OR sync = $1) ORDER BY last_seen DESC, sync, key LIMIT $2`,
          [options.sync ?? null, options.limit ?? null],
        )
      ).rows.map(toRowError),
    );
  }

  countRowErrors(sync: string, options: { parked?: boolean } = {}): Promise<number> {
    return this.run(`count row errors of sync "${sync}"`, async (db) =>
      Number(
        (
          await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.s}.row_errors WHERE sync = $1 AND ($2::boolean IS NULL OR parked = $2)`, [
            sync,
            options.parked ?? null,
          ])
        ).rows[0]!.n,
      ),
    );
  }

  kv(scope: string): KeyValueStore {
    return {
      get: (key) =>
        this.run(`read key "${key}" of "${scope}"`, async (db) =>
          (await db.query<{ value: string }>(`SELECT value FROM ${this.s}.kv WHERE scope = $1 AND key = $2`, [scope, key])).rows[0]?.value,
        ),
      set: (key, value) =>
        this.run(`write key "${key}" of "${scope}"`, async (db) => {
          await db.query(
            `INSERT INTO ${this.s}.kv (scope, key, value) VALUES ($1, $2, $3) ON CONFLICT (scope, key) DO UPDATE SET value = EXCLUDED.value`,
            [scope, key, value],
          );
        }),
      delete: (key) =>
        this.run(`delete key "${key}" of "${scope}"`, async (db) => {
          await db.query(`DELETE FROM ${this.s}.kv WHERE scope = $1 AND key = $2`, [scope, key]);
        }),
    };
  }

  acquireLease(sync: string, owner: string, ttlMs: number): Promise<LeaseGrant | undefined> {
    return this.run(`acquire the lease of sync "${sync}"`, async (db) => {
      const row = (
        await db.query<{ token: string; lease_until: Date }>(
          `INSERT INTO ${this.s}.leases AS l (sync, owner, lease_until, token)
           VALUES ($1, $2, clock_timestamp() + $3::double precision * interval '1 millisecond', 1)
           ON CONFLICT (sync) DO UPDATE SET
             token = CASE WHEN l.owner = EXCLUDED.owner THEN l.token ELSE l.token + 1 END,
             granted_at = CASE WHEN l.owner = EXCLUDED.owner THEN l.granted_at ELSE clock_timestamp() END,
             owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
           WHERE l.owner IS NULL OR l.owner = EXCLUDED.owner OR l.lease_until <= clock_timestamp()
           RETURNING token, lease_until`,
          [sync, owner, ttlMs],
        )
      ).rows[0];
      return row ? { sync, owner, token: Number(row.token), expiresAt: row.lease_until.toISOString() } : undefined;
    });
  }

  renewLease(lease: Pick<LeaseGrant, 'sync' | 'owner' | 'token'>, ttlMs: number): Promise<LeaseGrant> {
    const { sync, owner, token } = lease;
    return this.run(`renew the lease of sync "${sync}"`, async (db) => {
      const row = (
        await db.query<{ lease_until: Date }>(
          `UPDATE ${this.s}.leases SET lease_until = clock_timestamp() + $4::double precision * interval '1 millisecond'
           WHERE sync = $1 AND owner = $2 AND token = $3 RETURNING lease_until`,
          [sync, owner, token, ttlMs],
        )
      ).rows[0];
      if (!row) {
        const holder = await this.holderRow(db, sync);
        throw leaseLostError(sync, token, holder && { owner: holder.owner, token: Number(holder.token) });
      }
      return { sync, owner, token, expiresAt: row.lease_until.toISOString() };
    });
  }

  releaseLease(sync: string, owner: string): Promise<void> {
    return this.run(`release the lease of sync "${sync}"`, async (db) => {
      await db.query(`UPDATE ${this.s}.leases SET owner = NULL, lease_until = NULL WHERE sync = $1 AND owner = $2`, [sync, owner]);
    });
  }

  leaseHolder(sync: string): Promise<LeaseHolder | undefined> {
    return this.run(`read the lease of sync "${sync}"`, async (db) => {
      const row = await this.holderRow(db, sync);
      return row ? { owner: row.owner, token: Number(row.token), expiresAt: row.lease_until.toISOString(), expired: row.expired } : undefined;
    });
  }

  private async holderRow(db: Queryable, sync: string): Promise<LeaseRow | undefined> {
    return (
      await db.query<LeaseRow>(
        `SELECT owner, token, lease_until, lease_until <= clock_timestamp() AS expired FROM ${this.s}.leases WHERE sync = $1 AND owner IS NOT NULL`,
        [sync],
      )
    ).rows[0];
  }

  /** Closes the connections; later calls fail with `OUTFLOW_LEDGER`. Closing twice is harmless. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }
}

/** Opens (lazily: nothing is sent until the first call) the PostgreSQL ledger at `options.url`. */
export function openPostgresLedger(options: PostgresLedgerOptions): PostgresLedger {
  return new PostgresLedger(options);
}
