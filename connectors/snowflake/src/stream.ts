import { createHash } from 'node:crypto';
import {
  OutflowError,
  failpoint,
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
import { SnowflakeSession, ident, isStaleError, snowflakeError, str, tableParts } from './client.js';
import type { SnowflakeConfig } from './config.js';

type Ctx = ConnectorContext<SnowflakeConfig>;

/** Staged rows delivered per batch (an update pair is never split). */
export const PAGE_ROWS = 5000;
/** Polling backs off from the first to the second while the stream is idle. */
export const POLL_MS = { min: 50, max: 500 } as const;

const SEQ = 'OUTFLOW_SEQ';
const MOVE = 'OUTFLOW_MOVE';
const ACTION = 'OUTFLOW_ACTION';
const ISUPDATE = 'OUTFLOW_ISUPDATE';
const OWN_COLUMNS = new Set([SEQ, MOVE, ACTION, ISUPDATE]);

/** A staged change's position: its sequence number, zero-padded so positions order as strings. */
function positionOf(r: Row): string {
  return String(r[SEQ]).padStart(20, '0');
}

interface Names {
  table: string;
  /** The base table as written in messages, DB.SCHEMA.NAME. */
  tableLabel: string;
  schema: string;
  streamName: string;
  stream: string;
  stage: string;
  database: string;
  ownSchema: string;
}

function namesFor(ctx: Ctx, model: Model, sync?: string): Names {
  if (model.table === undefined) {
    throw new OutflowError('OUTFLOW_CONFIG_INVALID', 'a Snowflake change stream reads a table or a dynamic table; give `table`, not `sql`', {
      details: { connection: ctx.connection },
    });
  }
  const parts = tableParts(model.table);
  if (!parts) throw new OutflowError('OUTFLOW_CONFIG_INVALID', `"${model.table}" is not a Snowflake table name`);
  const database = parts.length === 3 ? parts[0]! : ctx.config.database.toUpperCase();
  const schema = parts.length >= 2 ? parts[parts.length - 2]! : ctx.config.schema.toUpperCase();
  const name = parts[parts.length - 1]!;
  const own = ctx.config.outflowSchema.toUpperCase();
  const id = createHash('sha256')
    // Per sync when core names it, so two syncs on one table never share a STREAM.
    .update(JSON.stringify(sync === undefined ? [ctx.connection, database, schema, name, model.primaryKey] : [sync, ctx.connection, database, schema, name]))
    .digest('hex')
    .slice(0, 16)
    .toUpperCase();
  const ownSchema = `${ident(ctx.config.database.toUpperCase())}.${ident(own)}`;
  return {
    table: `${ident(database)}.${ident(schema)}.${ident(name)}`,
    tableLabel: `${database}.${schema}.${name}`,
    schema,
    streamName: `OUTFLOW_STREAM_${id}`,
    stream: `${ownSchema}.${ident(`OUTFLOW_STREAM_${id}`)}`,
    stage: `${ownSchema}.${ident(`OUTFLOW_STAGE_${id}`)}`,
    database,
    ownSchema,
  };
}

interface Position {
  stream: string;
  seq: number;
}

function checkpointOf(p: Position): Checkpoint {
  return JSON.stringify({ stream: p.stream, seq: p.seq });
}

function parseCheckpoint(cp: Checkpoint): Position {
  try {
    const p = JSON.parse(cp) as Partial<Position>;
    if (typeof p.stream === 'string' && typeof p.seq === 'number') return { stream: p.stream, seq: p.seq };
  } catch {
    // fall through
  }
  throw new OutflowError('OUTFLOW_STREAM_STALE', `the checkpoint ${cp.slice(0, 80)} is not a Snowflake stream position; reconcile the sync`);
}

function staleError(n: Names, why: string): OutflowError {
  return new OutflowError(
    'OUTFLOW_STREAM_STALE',
    `the Snowflake stream ${n.streamName} on ${n.tableLabel} ${why}; changes since the last checkpoint cannot be read, so the sync must be reconciled by a diff`,
    { details: { stream: n.streamName, table: n.tableLabel } },
  );
}

/** The ledger key marking a stream recreated after it went stale, for open(null) to resume. */
const preparedKey = (n: Names) => `prepared:${n.streamName}`;

/**
 * For a stream sync's reconciling diff: a query of the model's table as it was at the offset
 * of the STREAM that waits for the reconcile (created, or recreated after it went stale), or
 * undefined when none waits. A STREAM read outside DML does not move its offset and holds
 * each changed row's net change since the offset, so the table then is the table now without
 * the rows the STREAM shows inserted (new rows, and the new side of updates), plus the rows it
 * shows deleted (with the values they had). One statement reads both at one point in time.
 * The diff then delivers the table as of the offset and the STREAM everything after it: a row
 * inserted and deleted in between is seen by neither, one changed is delivered once.
 */
export async function tableAtStreamOffset(ctx: Ctx, session: SnowflakeSession, model: Model, sync: string): Promise<string | undefined> {
  if (model.table === undefined) return undefined;
  const n = namesFor(ctx, model, sync);
  if ((await ctx.kv.get(preparedKey(n))) === undefined) return undefined;
  const columns = (await session.describe(`SELECT * FROM ${n.table}`)).map((c) => ident(c.name));
  const on = model.primaryKey.map((k) => `s.${ident(k)} = t.${ident(k)}`).join(' AND ');
  return `SELECT ${columns.map((c) => `t.${c}`).join(', ')} FROM ${n.table} t
    WHERE NOT EXISTS (SELECT 1 FROM ${n.stream} s WHERE s."METADATA$ACTION" = 'INSERT' AND ${on})
    UNION ALL
    SELECT ${columns.join(', ')} FROM ${n.stream} WHERE "METADATA$ACTION" = 'DELETE'`;
}

/**
 * After the stream went stale: a new stream from now (so nothing after this moment is missed),
 * an empty staging table, and a mark in the ledger so that `open(null)` resumes this stream
 * once core has reconciled by a diff, instead of starting another one.
 */
async function prepareAfterStale(ctx: Ctx, session: SnowflakeSession, n: Names, dynamic: boolean, why: 'stale' | 'created' = 'stale'): Promise<void> {
  await createStage(session, n);
  await session.query(`CREATE OR REPLACE STREAM ${n.stream} ON ${dynamic ? 'DYNAMIC TABLE' : 'TABLE'} ${n.table}`);
  await ctx.kv.set(preparedKey(n), new Date().toISOString());
  if (why === 'created') ctx.logger.info({ stream: n.streamName, table: n.tableLabel }, 'created a Snowflake stream; the table is delivered by a diff first');
  else ctx.logger.warn({ stream: n.streamName, table: n.tableLabel }, 'the Snowflake stream was stale; recreated it, the sync must be reconciled by a diff');
}

async function createStage(session: SnowflakeSession, n: Names): Promise<void> {
  await session.query(
    `CREATE OR REPLACE TABLE ${n.stage} AS SELECT CAST(NULL AS NUMBER(38,0)) AS ${SEQ}, CAST(NULL AS NUMBER(38,0)) AS ${MOVE},
       CAST(NULL AS VARCHAR) AS ${ACTION}, CAST(NULL AS BOOLEAN) AS ${ISUPDATE}, t.* FROM ${n.table} t WHERE 1 = 0`,
  );
}

async function streamStatus(session: SnowflakeSession, n: Names): Promise<'fresh' | 'stale' | 'missing'> {
  const rows = await session.query(`SHOW STREAMS LIKE ${str(n.streamName)} IN SCHEMA ${n.ownSchema}`);
  const row = rows.find((r) => r['name'] === n.streamName);
  if (!row) return 'missing';
  return String(row['stale']).toLowerCase() === 'true' ? 'stale' : 'fresh';
}

/**
 * A change stream over a Snowflake STREAM owned by Outflow. Consumption runs in step with
 * acknowledgements: each poll moves the STREAM's net changes into a staging table in one
 * committed transaction (which advances the STREAM's offset), batches are delivered from
 * the staging table, and staged rows are deleted only when core commits their checkpoint.
 * A crash at any step re-delivers at most the staged rows after the last checkpoint.
 */
class SnowflakeChangeStream implements ChangeStream {
  /** A STREAM gives each row's net change between two reads. */
  readonly changes = 'net';
  private closed = false;
  private wake: (() => void) | null = null;
  private caughtUpAt = Date.now();
  /** The new stream secured after this one went stale, once begun. */
  private secured: Promise<void> | undefined;

  constructor(
    private readonly ctx: Ctx,
    private readonly session: SnowflakeSession,
    private readonly n: Names,
    private readonly model: Model,
    private readonly columns: string[],
    private cursor: number,
    private maxSeq: number,
    private readonly handoff: boolean,
    private readonly dynamic: boolean,
    private resumedPrepared: boolean,
  ) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<ChangeBatch> {
    // The first checkpoint of a new stream is recorded at once, so a crash before any change
    // arrives resumes this stream instead of creating another.
    if (this.handoff) yield { changes: [], checkpoint: checkpointOf({ stream: this.n.streamName, seq: this.cursor }) };
    let idle: number = POLL_MS.min;
    while (!this.closed && !this.ctx.signal.aborted) {
      try {
        if (this.maxSeq > this.cursor) {
          const batch = await this.page();
          if (batch) {
            yield batch;
            continue;
          }
        }
        const [row] = await this.session.query(`SELECT SYSTEM$STREAM_HAS_DATA(${str(`${this.n.database}.${this.ctx.config.outflowSchema.toUpperCase()}.${this.n.streamName}`)}) AS H`);
        if (row?.['H'] === true && (await this.move()) > 0) {
          idle = POLL_MS.min;
          continue;
        }
        this.caughtUpAt = Date.now();
        this.ctx.metrics.gauge('stream_lag_ms', 0, { connection: this.ctx.connection });
      } catch (err) {
        if (this.closed || this.ctx.signal.aborted) return;
        throw await this.failure(err);
      }
      await this.sleep(idle);
      idle = Math.min(idle * 2, POLL_MS.max);
    }
  }

  private async failure(err: unknown): Promise<OutflowError> {
    let status: 'fresh' | 'stale' | 'missing' | 'unknown' = 'unknown';
    try {
      status = await streamStatus(this.session, this.n);
    } catch {
      // report the original failure below
    }
    if (status === 'stale' || status === 'missing' || (status === 'unknown' && isStaleError(err))) {
      this.secured ??= prepareAfterStale(this.ctx, this.session, this.n, this.dynamic);
      await this.secured.catch(() => undefined);
      return staleError(this.n, status === 'missing' ? 'was dropped' : 'went stale (its offset fell outside the table’s data retention)');
    }
    return snowflakeError('OUTFLOW_SOURCE', `reading the stream on ${this.n.tableLabel}`, err);
  }

  /** Moves the stream's net changes into the staging table in one transaction; returns rows moved. */
  private move(): Promise<number> {
    return this.session.exclusive(async () => {
      const base = this.maxSeq;
      const cols = this.columns.map(ident).join(', ');
      const order = [...this.model.primaryKey.map(ident), '"METADATA$ACTION"'].join(', ');
      await this.session.queryNow('BEGIN');
      try {
        const moved = await this.session.updateNow(
          `INSERT INTO ${this.n.stage} (${SEQ}, ${MOVE}, ${ACTION}, ${ISUPDATE}, ${cols})
           SELECT ${base} + ROW_NUMBER() OVER (ORDER BY ${order}), ${base}, "METADATA$ACTION", "METADATA$ISUPDATE", ${cols}
           FROM ${this.n.stream}`,
        );
        await this.session.queryNow('COMMIT');
        if (moved > 0) failpoint('snowflake.after-stage');
        this.maxSeq = base + moved;
        return moved;
      } catch (err) {
        await this.session.queryNow('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  /** The next batch of staged rows after the cursor; update pairs fold into one update. */
  private async page(): Promise<ChangeBatch | null> {
    const rows = await this.session.query(`SELECT * FROM ${this.n.stage} WHERE ${SEQ} > ${this.cursor} ORDER BY ${SEQ} LIMIT ${PAGE_ROWS + 1}`);
    if (rows.length === 0) {
      this.maxSeq = this.cursor;
      return null;
    }
    const pk = this.model.primaryKey;
    const data = (r: Row): Row => {
      const out: Row = {};
      for (const [k, v] of Object.entries(r)) if (!OWN_COLUMNS.has(k)) out[k] = v;
      return out;
    };
    const keyFor = (r: Row): string => {
      const key = keyOf(r, pk);
      if (key === undefined) {
        throw new OutflowError('OUTFLOW_MODEL_KEY', `a change of ${this.n.tableLabel} has a null primary key (${pk.join(', ')}); every row needs one`);
      }
      return key;
    };
    if (rows.length > PAGE_ROWS) {
      const [prev, last] = [rows[PAGE_ROWS - 1]!, rows[PAGE_ROWS]!];
      const pair = prev[MOVE] === last[MOVE] && keyFor(data(prev)) === keyFor(data(last));
      if (!pair) rows.pop();
    }
    const changes: Change[] = [];
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const row = data(r);
      const key = keyFor(row);
      const next = rows[i + 1];
      const position = positionOf(r);
      if (r[ACTION] === 'DELETE' && next && next[ACTION] === 'INSERT' && next[MOVE] === r[MOVE] && keyFor(data(next)) === key) {
        changes.push({ op: 'update', key, before: row, after: data(next), position: positionOf(next) });
        i++;
      } else if (r[ACTION] === 'DELETE') {
        changes.push({ op: 'delete', key, before: row, position });
      } else {
        changes.push({ op: r[ISUPDATE] === true ? 'update' : 'insert', key, after: row, position });
      }
    }
    const seq = Number(rows[rows.length - 1]![SEQ]);
    this.cursor = seq;
    return { changes, checkpoint: checkpointOf({ stream: this.n.streamName, seq }) };
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

  async commit(checkpoint: Checkpoint): Promise<void> {
    const p = parseCheckpoint(checkpoint);
    if (this.closed) return;
    if (this.resumedPrepared) {
      await this.ctx.kv.delete(preparedKey(this.n));
      this.resumedPrepared = false;
    }
    failpoint('snowflake.before-unstage');
    try {
      await this.session.exclusive(() => this.session.updateNow(`DELETE FROM ${this.n.stage} WHERE ${SEQ} <= ${p.seq}`));
    } catch (err) {
      // The ledger already holds the checkpoint; rows left staged are deleted on the next open.
      if (!this.closed) throw snowflakeError('OUTFLOW_SOURCE', `freeing delivered changes of ${this.n.tableLabel}`, err);
    }
  }

  async health(): Promise<{ stale: boolean; lagMs?: number }> {
    if (this.secured) {
      await this.secured;
      return { stale: true };
    }
    const status = await streamStatus(this.session, this.n).catch((err: unknown) => {
      throw snowflakeError('OUTFLOW_SOURCE', `checking the stream on ${this.n.tableLabel}`, err);
    });
    if (status !== 'fresh') {
      // A new stream is secured before stale is reported: the engine closes this one as soon
      // as it hears it (see Stream.open's handshake), and open(null) resumes the new one.
      this.secured ??= prepareAfterStale(this.ctx, this.session, this.n, this.dynamic);
      await this.secured;
      return { stale: true };
    }
    return { stale: false, lagMs: this.maxSeq > this.cursor ? Date.now() - this.caughtUpAt : 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    await this.session.close();
  }
}

async function open(ctx: Ctx, model: Model, from: Checkpoint | null, options?: { sync?: string; reconciled?: boolean }): Promise<ChangeStream> {
  const n = namesFor(ctx, model, options?.sync);
  const session = await SnowflakeSession.open(ctx);
  try {
    const found = await session.query(
      `SELECT IS_DYNAMIC FROM ${ident(n.database)}.INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
      [n.schema, n.tableLabel.split('.')[2]!],
    );
    if (found.length === 0) {
      throw new OutflowError('OUTFLOW_SOURCE', `Snowflake: table ${n.tableLabel} does not exist or the role cannot read it`, { details: { table: n.tableLabel } });
    }
    const dynamic = found[0]!['IS_DYNAMIC'] === 'YES';
    await session.query(`CREATE SCHEMA IF NOT EXISTS ${n.ownSchema}`);
    let cursor = 0;
    let resumedPrepared = false;
    if (from === null) {
      const prepared = (await ctx.kv.get(preparedKey(n))) !== undefined && (await streamStatus(session, n)) === 'fresh';
      if (prepared && !options?.reconciled) {
        // Secured, but the engine has not recorded a completed reconcile: ask for it again.
        throw staleError(n, 'waits for the reconciling diff (it was secured before the last run stopped)');
      }
      if (prepared) {
        // Recreated when the old stream went stale; core has reconciled since, so resume it.
        resumedPrepared = true;
        ctx.logger.info({ stream: n.streamName, table: n.tableLabel }, 'resuming the Snowflake stream recreated after it went stale');
      } else {
        // A STREAM reads changes from its creation on, never the rows already there. So a new
        // stream is created first (nothing after this moment is missed) and reported with the
        // stale-stream handshake: core delivers the table as it is by a diff, then opens again
        // and this stream resumes, as after a stream that went stale.
        await prepareAfterStale(ctx, session, n, dynamic, 'created');
        throw staleError(n, 'was just created: the rows already in the table are delivered by a diff first, then the stream follows every change from its creation on');
      }
    } else {
      const p = parseCheckpoint(from);
      const status = p.stream !== n.streamName ? 'foreign' : await streamStatus(session, n);
      if (status !== 'fresh') {
        await prepareAfterStale(ctx, session, n, dynamic);
        throw staleError(
          n,
          status === 'foreign' ? `does not match the checkpoint (which belongs to ${p.stream})` : status === 'stale' ? 'went stale (its offset fell outside the table’s data retention)' : 'was dropped',
        );
      }
      await session.query(`DELETE FROM ${n.stage} WHERE ${SEQ} <= ${p.seq}`);
      cursor = p.seq;
    }
    const cols = (await session.describe(`SELECT * FROM ${n.stage}`)).map((c) => c.name).filter((c) => !OWN_COLUMNS.has(c));
    const missing = model.primaryKey.filter((k) => !cols.includes(k));
    if (missing.length) {
      throw new OutflowError('OUTFLOW_MAPPING', `${n.tableLabel} has no primary key column ${missing.join(', ')} (columns: ${cols.join(', ')})`);
    }
    const [max] = await session.query(`SELECT COALESCE(MAX(${SEQ}), 0) AS M FROM ${n.stage}`);
    const maxSeq = Math.max(cursor, Number(max?.['M'] ?? 0));
    return new SnowflakeChangeStream(ctx, session, n, model, cols, cursor, maxSeq, from === null, dynamic, resumedPrepared);
  } catch (err) {
    await session.close();
    throw snowflakeError('OUTFLOW_SOURCE', `opening the change stream of ${n.tableLabel}`, err);
  }
}

export const stream: Stream<SnowflakeConfig> = { open };
