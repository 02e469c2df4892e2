import {
  OutflowError,
  instantOf,
  keyOf,
  type Change,
  type ChangeBatch,
  type ChangeStream,
  type Checkpoint,
  type ConnectorContext,
  type Model,
  type Row,
  type Stream,
} from '@outflow/core';
import { DatabricksSession, databricksError, errorText, ident, str } from './client.js';
import type { DatabricksConfig } from './config.js';
import { relationType, tableParts } from './source.js';

type Ctx = ConnectorContext<DatabricksConfig>;

/** Change rows delivered per batch (one chunk fetched through the SDK). */
export const PAGE_ROWS = 5_000;
/** While idle, polling for a new commit backs off from the first to the second. */
export const POLL_MS = { min: 100, max: 1_000 } as const;

/** The columns `table_changes` adds to the table's own. */
const CHANGE_TYPE = '_change_type';
const COMMIT_VERSION = '_commit_version';
const COMMIT_TIMESTAMP = '_commit_timestamp';

/** A model's table, as written in the sync: `table_changes` and statements resolve it in the session's catalog and schema. */
interface Table {
  name: string;
  /** The same, each part quoted, for statements. */
  sql: string;
}

function tableOf(model: Model): Table {
  return { name: model.table ?? '', sql: tableParts(model).map(ident).join('.') };
}

/** The ledger key holding the version secured for a reconcile, per sync and table. */
const securedKey = (model: Model, sync: string | undefined) => `databricks:secured:${sync ?? ''}:${model.table ?? ''}`;

/**
 * Where a stream resumes: after commit version `done`, and past the first `skip` changes of
 * the version after it (a batch may end inside a commit). Written `<done>` when `skip` is 0,
 * else `<done + 1>.<skip>`.
 */
interface Resume {
  done: number;
  skip: number;
}

function checkpointOf({ done, skip }: Resume): Checkpoint {
  return skip === 0 ? String(done) : `${done + 1}.${skip}`;
}

/** The resume point a checkpoint names, or undefined when it is not one of ours. */
function parseCheckpoint(checkpoint: Checkpoint): Resume | undefined {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(checkpoint);
  if (m === null) return undefined;
  return m[2] === undefined ? { done: Number(m[1]), skip: 0 } : { done: Number(m[1]) - 1, skip: Number(m[2]) };
}

/** A change's position: its commit version and its place in that commit, zero-padded so they order as strings. */
function positionOf(version: number, index: number): string {
  return `${String(version).padStart(20, '0')}.${String(index).padStart(10, '0')}`;
}

function staleError(table: Table, why: string, secured: number): OutflowError {
  return new OutflowError(
    'OUTFLOW_STREAM_STALE',
    `the change data feed of ${table.name} ${why}; a diff reconciles the table, then the stream resumes after version ${secured}`,
    { details: { table: table.name, version: secured } },
  );
}

/** The latest commit version, and the earliest one the table's history still holds. */
async function history(session: DatabricksSession, table: Table): Promise<{ earliest: number; latest: number }> {
  const rows = await session.query(`DESCRIBE HISTORY ${table.sql}`);
  const versions = rows.map((r) => Number(r['version'])).filter(Number.isSafeInteger);
  if (versions.length === 0) throw new OutflowError('OUTFLOW_SOURCE', `Databricks: DESCRIBE HISTORY ${table.name} answered no versions`);
  return { earliest: Math.min(...versions), latest: Math.max(...versions) };
}

async function latestVersion(session: DatabricksSession, table: Table): Promise<number> {
  const [row] = await session.query(`DESCRIBE HISTORY ${table.sql} LIMIT 1`);
  const version = Number(row?.['version']);
  if (!Number.isSafeInteger(version)) throw new OutflowError('OUTFLOW_SOURCE', `Databricks: DESCRIBE HISTORY ${table.name} answered no version`);
  return version;
}

/**
 * Fails, saying how to enable it, unless the table recorded change data at its latest
 * version: an empty read of that version's changes, which Databricks refuses
 * (`DELTA_MISSING_CHANGE_DATA`) when the change data feed was off.
 */
async function requireChangeDataFeed(session: DatabricksSession, table: Table, latest: number, type: string | undefined): Promise<void> {
  try {
    await session.query(`SELECT * FROM table_changes(${str(table.name)}, ${latest}, ${latest}) LIMIT 0`);
    return;
  } catch (err) {
    if (!/MISSING_CHANGE_DATA|change data was not recorded|CHANGE_TABLE_FEED_DISABLED/i.test(errorText(err))) throw err;
  }
  const enable =
    type === 'STREAMING_TABLE'
      ? `TBLPROPERTIES (delta.enableChangeDataFeed = true) in the statement that defines the streaming table`
      : `ALTER TABLE ${table.sql} SET TBLPROPERTIES (delta.enableChangeDataFeed = true)`;
  throw new OutflowError(
    'OUTFLOW_SOURCE',
    `Databricks: ${table.name} does not record its change data feed, which a stream sync follows. Enable it with ${enable}, or sync the table with capture: diff`,
    { details: { table: table.name } },
  );
}

/**
 * A materialized view is refused: its refreshes may recompute it whole, and Outflow follows
 * no change feed of one. A diff sync covers it, in Databricks.
 */
function refuseMaterializedView(table: Table): never {
  throw new OutflowError(
    'OUTFLOW_CONFIG_INVALID',
    `Databricks: ${table.name} is a materialized view, which a stream sync cannot follow (Outflow reads no change data feed of materialized views). ` +
      'Sync it with capture: diff: each run diffs it in Databricks against what was delivered and sends only the rows that changed; give the sync a schedule to follow its refreshes',
    { details: { table: table.name } },
  );
}

/** Whether a failed `table_changes` read asked for versions no longer retained (VACUUM, log retention). */
function isRetentionError(err: unknown): boolean {
  return /VERSION_NOT_FOUND|FILE_NOT_FOUND|retention|vacuum|no longer available|cannot time travel|earliest available/i.test(errorText(err));
}

/**
 * Secures the latest commit version for the stale-stream handshake: remembered in the
 * ledger, so that `open(null)` after the reconcile resumes right after it.
 */
async function secure(ctx: Ctx, session: DatabricksSession, model: Model, table: Table, sync: string | undefined, latest?: number): Promise<number> {
  const version = latest ?? (await latestVersion(session, table));
  await ctx.kv.set(securedKey(model, sync), String(version));
  return version;
}

/**
 * A change stream over a Delta table's change data feed, polled with
 * `table_changes(table, from, to)` for the versions committed since the cursor. A batch's
 * checkpoint covers every change in it and none after: the last commit version it holds
 * whole, and how far it got into the next one, which a restart reads again from its start,
 * skipping what was delivered.
 */
class ChangeFeedStream implements ChangeStream {
  /** Every change in commit order: a row deleted and inserted again reads as both. */
  readonly changes = 'log';
  private closed = false;
  private stale = false;
  private behindSince: number | undefined;
  private wake: (() => void) | null = null;

  constructor(
    private readonly ctx: Ctx,
    private readonly session: DatabricksSession,
    private readonly model: Model,
    private readonly table: Table,
    private readonly sync: string | undefined,
    /** How far delivery got: the next read starts there. */
    private cursor: Resume,
    /** Resumed at a secured version: its first checkpoint is recorded at once, and the secured mark dropped at its commit. */
    private resumedSecured: boolean,
  ) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<ChangeBatch> {
    if (this.resumedSecured) yield { changes: [], checkpoint: checkpointOf(this.cursor) };
    let idle: number = POLL_MS.min;
    while (!this.closed && !this.ctx.signal.aborted) {
      try {
        const latest = await latestVersion(this.session, this.table);
        if (latest > this.cursor.done) {
          this.behindSince ??= Date.now();
          yield* this.read(latest);
          this.cursor = { done: latest, skip: 0 };
          idle = POLL_MS.min;
          continue;
        }
        this.behindSince = undefined;
        this.ctx.metrics.gauge('stream_lag_ms', 0, { connection: this.ctx.connection });
      } catch (err) {
        if (this.closed || this.ctx.signal.aborted) return;
        throw await this.failure(err);
      }
      await this.sleep(idle);
      idle = Math.min(idle * 2, POLL_MS.max);
    }
  }

  /**
   * The changes after the cursor up to version `to`, in commit order, an update's pre- and
   * post-image folded into one change; within a commit by primary key, so that a commit
   * read again orders alike and its first changes can be skipped.
   */
  private async *read(to: number): AsyncGenerator<ChangeBatch> {
    const pk = this.model.primaryKey;
    const from = this.cursor.done + 1;
    const rank = `CASE ${CHANGE_TYPE} WHEN 'delete' THEN 0 WHEN 'update_preimage' THEN 1 WHEN 'update_postimage' THEN 2 ELSE 3 END`;
    const sql = `SELECT * FROM table_changes(${str(this.table.name)}, ${from}, ${to}) ORDER BY ${COMMIT_VERSION}, ${pk.map(ident).join(', ')}, ${rank}`;
    let version = from;
    let index = 0;
    let preimage: Row | undefined;
    for await (const rows of this.session.stream(sql, PAGE_ROWS)) {
      const changes: Change[] = [];
      for (const r of rows) {
        const v = Number(r[COMMIT_VERSION]);
        if (v !== version) [version, index] = [v, 0];
        const type = String(r[CHANGE_TYPE]);
        const row = this.data(r);
        if (type === 'update_preimage') {
          preimage = row;
          continue;
        }
        const key = this.keyFor(row, v);
        const position = positionOf(v, index++);
        const before = preimage !== undefined && keyOf(preimage, pk) === key ? preimage : undefined;
        preimage = undefined;
        if (v === from && index <= this.cursor.skip) continue;
        const committedAt = this.instant(r[COMMIT_TIMESTAMP]);
        const at = { position, ...(committedAt === undefined ? {} : { committedAt }) };
        if (type === 'insert') changes.push({ op: 'insert', key, after: row, ...at });
        else if (type === 'delete') changes.push({ op: 'delete', key, before: row, ...at });
        else if (type === 'update_postimage') changes.push({ op: 'update', key, ...(before === undefined ? {} : { before }), after: row, ...at });
        else throw new OutflowError('OUTFLOW_SOURCE', `Databricks: table_changes of ${this.table.name} answered an unknown ${CHANGE_TYPE} "${type}" at version ${v}`);
      }
      if (changes.length > 0) yield { changes, checkpoint: checkpointOf({ done: version - 1, skip: index }) };
    }
    yield { changes: [], checkpoint: checkpointOf({ done: to, skip: 0 }) };
  }

  private data(r: Row): Row {
    const { [CHANGE_TYPE]: _type, [COMMIT_VERSION]: _version, [COMMIT_TIMESTAMP]: _at, ...row } = r;
    return row;
  }

  private keyFor(row: Row, version: number): string {
    const key = keyOf(row, this.model.primaryKey);
    if (key === undefined) {
      throw new OutflowError('OUTFLOW_MODEL_KEY', `a change of ${this.table.name} at version ${version} has a null primary key (${this.model.primaryKey.join(', ')}); every row needs one`);
    }
    return key;
  }

  private instant(value: Row[string] | undefined): string | undefined {
    const ms = value === undefined ? undefined : instantOf(value);
    return ms === undefined ? undefined : new Date(ms).toISOString();
  }

  /** A failed poll: versions past retention make the stream stale (after securing a new version); anything else fails. */
  private async failure(err: unknown): Promise<OutflowError> {
    let gone = isRetentionError(err);
    try {
      gone ||= (await history(this.session, this.table)).earliest > this.cursor.done + 1;
      if (!gone) return databricksError('OUTFLOW_SOURCE', `reading the change data feed of ${this.table.name}`, err);
      const secured = await secure(this.ctx, this.session, this.model, this.table, this.sync);
      this.stale = true;
      this.ctx.logger.warn({ table: this.table.name, after: this.cursor.done, secured }, 'the change data feed no longer holds the versions after the checkpoint; reconciling by a diff');
      return staleError(this.table, `no longer holds the versions after ${this.cursor.done} (retention or VACUUM removed them)`, secured);
    } catch (again) {
      return databricksError('OUTFLOW_SOURCE', `reading the change data feed of ${this.table.name}`, gone ? again : err);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.ctx.signal.removeEventListener('abort', done);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
      this.ctx.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Called in checkpoint order; the feed keeps changes for its retention whatever is read, so only the secured mark is freed. */
  async commit(_checkpoint: Checkpoint): Promise<void> {
    if (!this.resumedSecured) return;
    await this.ctx.kv.delete(securedKey(this.model, this.sync));
    this.resumedSecured = false;
  }

  /** Answers from what the polls saw, without a request. */
  async health(): Promise<{ stale: boolean; lagMs?: number }> {
    return { stale: this.stale, lagMs: this.behindSince === undefined ? 0 : Date.now() - this.behindSince };
  }

  /** Ends a waiting poll at once; the iteration then finishes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    await this.session.close();
  }
}

/**
 * Opens the change data feed of the model's table (`from`: the last commit version
 * acknowledged). The feed holds no snapshot of the rows already there, so a first
 * `open(null)` secures the latest version and answers with the stale-stream handshake: the
 * engine delivers the table by a diff, then opens again with
 * `reconciled` and the stream follows every commit after it. A checkpoint whose next
 * versions retention removed goes through the same handshake. A table without the change
 * data feed fails, saying how to enable it.
 */
async function open(ctx: Ctx, model: Model, from: Checkpoint | null, options?: { sync?: string; reconciled?: boolean }): Promise<ChangeStream> {
  if (model.table === undefined) {
    throw new OutflowError('OUTFLOW_CONFIG_INVALID', 'a Databricks stream follows a table\'s change data feed: give `table`, not `sql` (a query is synced with capture: diff)', {
      details: { connection: ctx.connection },
    });
  }
  const sync = options?.sync;
  const table = tableOf(model);
  const session = await DatabricksSession.open(ctx);
  try {
    const type = await relationType(session, ctx, model);
    if (type === 'MATERIALIZED_VIEW') refuseMaterializedView(table);
    const { earliest, latest } = await history(session, table);
    await requireChangeDataFeed(session, table, latest, type);
    let cursor: Resume;
    let resumedSecured = false;
    if (from === null) {
      const value = await ctx.kv.get(securedKey(model, sync));
      const secured = value === undefined ? undefined : Number(value);
      if (secured !== undefined && !options?.reconciled) throw staleError(table, 'waits for its reconciling diff (the version was secured before the last run stopped)', secured);
      if (secured === undefined) {
        const version = await secure(ctx, session, model, table, sync, latest);
        ctx.logger.info({ table: table.name, version }, 'following a new change data feed; the rows already in the table are delivered by a diff first');
        throw staleError(table, 'is followed from now on', version);
      }
      cursor = { done: secured, skip: 0 };
      resumedSecured = true;
    } else {
      const resume = parseCheckpoint(from);
      if (resume === undefined) throw staleError(table, `cannot resume from checkpoint "${from.slice(0, 40)}", which is not a commit version`, await secure(ctx, session, model, table, sync, latest));
      cursor = resume;
      if (earliest > cursor.done + 1) {
        const secured = await secure(ctx, session, model, table, sync, latest);
        throw staleError(table, `no longer holds the versions after ${cursor.done} (the earliest retained is ${earliest})`, secured);
      }
    }
    return new ChangeFeedStream(ctx, session, model, table, sync, cursor, resumedSecured);
  } catch (err) {
    await session.close();
    throw databricksError('OUTFLOW_SOURCE', `opening the change data feed of ${table.name}`, err);
  }
}

export const stream: Stream<DatabricksConfig> = { open };
