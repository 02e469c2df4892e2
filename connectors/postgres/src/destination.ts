import pg from 'pg';
import {
  OutflowError,
  describeError,
  destinationError,
  isOutflowError,
  type Capabilities,
  type DestinationCatalog,
  type Destination,
  type FieldInfo,
  type ObjectInfo,
  type Operation,
  type RecordResult,
  type Row,
  type Value,
} from '@outflow/core';
import { DEFAULTS, type PostgresConfig } from './config.js';
import { clientConfig, isTransient, resolveTable, type Ctx, type ResolvedTable } from './db.js';
import { check } from './source.js';
import { ident } from './values.js';

interface Target extends ResolvedTable {
  /** Column sets with a unique index (primary key included), each sorted. */
  uniqueKeys: string[][];
  columnNames: Set<string>;
}

const pools = new WeakMap<object, pg.Pool>();
const targets = new WeakMap<object, Map<string, Promise<Target>>>();

/** One pool per connection context; it lets the process exit when idle. */
function poolOf(ctx: Ctx): pg.Pool {
  let pool = pools.get(ctx);
  if (!pool) {
    const max = ctx.config.writeConcurrency ?? DEFAULTS.writeConcurrency;
    pool = new pg.Pool({ ...clientConfig(ctx), max: max + 1, idleTimeoutMillis: 5_000, allowExitOnIdle: true });
    pool.on('error', (err) => ctx.logger.warn({ connection: ctx.connection, err: describeError(err) }, 'PostgreSQL pool error'));
    pools.set(ctx, pool);
  }
  return pool;
}

/** Ends the connection's pool (the engine calls it once the connection is closed). */
export async function closePool(ctx: Ctx): Promise<void> {
  const pool = pools.get(ctx);
  pools.delete(ctx);
  targets.delete(ctx);
  await pool?.end();
}

async function loadTarget(client: pg.ClientBase, object: string, where: string): Promise<Target> {
  const table = await resolveTable(client as pg.Client, object, where);
  const r = await client.query<{ cols: string[] }>(
    `SELECT array_agg(a.attname::text ORDER BY a.attname) AS cols FROM pg_index i
       JOIN LATERAL unnest(i.indkey) AS k(attnum) ON true
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
      GROUP BY i.indexrelid`,
    [table.oid],
  );
  return { ...table, uniqueKeys: r.rows.map((x) => x.cols), columnNames: new Set(table.columns.map((c) => c.name)) };
}

function targetOf(ctx: Ctx, client: pg.ClientBase, object: string): Promise<Target> {
  let byName = targets.get(ctx);
  if (!byName) targets.set(ctx, (byName = new Map()));
  let t = byName.get(object);
  if (!t) {
    t = loadTarget(client, object, `connection "${ctx.connection}"`);
    byName.set(object, t);
    t.catch(() => byName.delete(object));
  }
  return t;
}

const DISCOVER_SQL = `
  SELECT n.nspname AS schema, c.relname AS name, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
         a.attnotnull AND a.atthasdef = false AND a.attidentity = '' AS required,
         a.attgenerated <> '' OR a.attidentity = 'a' AS read_only,
         EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indnatts = 1
                   AND i.indkey[0] = a.attnum AND i.indpred IS NULL) AS is_unique
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', $1)
     AND n.nspname NOT LIKE 'pg_temp%' AND has_table_privilege(c.oid, 'INSERT')
   ORDER BY 1, 2, a.attnum`;

async function discover(ctx: Ctx): Promise<DestinationCatalog> {
  const client = await poolOf(ctx).connect();
  try {
    const r = await client.query<{ schema: string; name: string; column: string; type: string; required: boolean; read_only: boolean; is_unique: boolean }>(
      DISCOVER_SQL,
      [ctx.config.stateSchema ?? DEFAULTS.stateSchema],
    );
    const objects = new Map<string, ObjectInfo>();
    for (const row of r.rows) {
      const name = row.schema === 'public' ? row.name : `${row.schema}.${row.name}`;
      let o = objects.get(name);
      if (!o) objects.set(name, (o = { name, fields: [], matchKeys: [], modes: ['upsert', 'update', 'insert', 'mirror'] }));
      const f: FieldInfo = { name: row.column, type: row.type };
      if (row.required) f.required = true;
      if (row.read_only) f.readOnly = true;
      if (row.is_unique) {
        f.unique = true;
        o.matchKeys.push(row.column);
      }
      o.fields.push(f);
    }
    return { objects: [...objects.values()] };
  } catch (err) {
    throw new OutflowError('OUTFLOW_DESTINATION', `connection "${ctx.connection}": listing tables failed: ${describeError(err)}`, {
      retryable: isTransient(err),
      cause: err,
    });
  } finally {
    client.release();
  }
}

function capabilities(ctx: Ctx): Capabilities {
  return {
    operations: ['upsert', 'update', 'insert', 'delete'],
    maxBatchSize: ctx.config.writeBatchSize ?? DEFAULTS.writeBatchSize,
    rateLimits: [],
    concurrency: ctx.config.writeConcurrency ?? DEFAULTS.writeConcurrency,
    idempotency: 'match',
  };
}

/** An operation ready for SQL: the record's column values and which of them match. */
interface Prepared {
  index: number;
  op: Operation;
  match: string[];
  record: Row;
}

/** Works out the match columns and the record of one operation, or why it cannot be written. */
function prepare(t: Target, op: Operation, index: number): Prepared | string {
  const record: Row = { ...(op.kind === 'delete' ? {} : (op.fields ?? {})) };
  let match: string[];
  if (op.match && Object.keys(op.match).length > 0) {
    match = Object.keys(op.match).sort();
    Object.assign(record, op.match);
  } else {
    if (t.primaryKey.length === 0) return `table ${t.schema}.${t.name} has no primary key; give the sync a matchKey`;
    match = [...t.primaryKey].sort();
    if (match.some((c) => record[c] === undefined || record[c] === null)) {
      let values: Value[] = [op.key];
      if (t.primaryKey.length > 1) {
        try {
          values = JSON.parse(op.key) as Value[];
        } catch {
          return `key ${JSON.stringify(op.key)} is not a composite key of ${t.primaryKey.join(', ')}`;
        }
      }
      t.primaryKey.forEach((c, i) => (record[c] ??= values[i] ?? null));
    }
  }
  const unknown = Object.keys(record).filter((c) => !t.columnNames.has(c));
  if (unknown.length) return `table ${t.schema}.${t.name} has no column ${unknown.join(', ')}`;
  if (op.kind === 'upsert' && !t.uniqueKeys.some((k) => k.join() === match.join())) {
    return `table ${t.schema}.${t.name} has no unique index on (${match.join(', ')}), which an upsert needs to match records`;
  }
  return { index, op, match, record };
}

const cols = (names: string[]) => names.map(ident).join(', ');
const eq = (names: string[], l: string, r: string) => names.map((c) => `${l}.${ident(c)} = ${r}.${ident(c)}`).join(' AND ');

/**
 * One statement for a group of operations of one kind with the same columns. The records
 * arrive as one JSON array, expanded by json_populate_recordset into the table's own row
 * type, so every value is converted by PostgreSQL's input functions. Returns the ordinals
 * (1-based positions in the group) of the records the statement applied.
 */
async function runGroup(client: pg.ClientBase, t: Target, kind: Operation['kind'], match: string[], group: Prepared[]): Promise<Set<number>> {
  const fields = [...new Set(group.flatMap((p) => Object.keys(p.record)))].sort();
  const others = fields.filter((c) => !match.includes(c));
  const src = `json_populate_recordset(NULL::${t.sql}, $1::json) WITH ORDINALITY AS r`;
  const json = JSON.stringify(group.map((p) => p.record));
  const unique = t.uniqueKeys.some((k) => k.join() === match.join());
  let sql: string;
  switch (kind) {
    case 'upsert':
      sql = `INSERT INTO ${t.sql} AS t (${cols(fields)}) SELECT ${fields.map((c) => `r.${ident(c)}`).join(', ')} FROM ${src}
             ON CONFLICT (${cols(match)}) DO ${others.length ? `UPDATE SET ${others.map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(', ')}` : 'NOTHING'}`;
      await client.query(sql, [json]);
      return new Set(group.map((_, i) => i + 1));
    case 'insert':
      // A re-sent insert of the same record (after a crash, a lost answer) is a no-op, not a
      // second row; an insert over a different record with the same key is refused. Without
      // a unique index on the match columns the check is made by the statement itself (the
      // engine never has two operations of one key in flight, so no other writer races it).
      sql = `WITH src AS (SELECT * FROM ${src}),
                  ins AS (INSERT INTO ${t.sql} AS t (${cols(fields)}) SELECT ${fields.map((c) => `src.${ident(c)}`).join(', ')} FROM src
                          ${unique ? `ON CONFLICT (${cols(match)}) DO NOTHING` : `WHERE NOT EXISTS (SELECT 1 FROM ${t.sql} t WHERE ${eq(match, 't', 'src')})`}
                          RETURNING ${cols(match)})
             SELECT src.ordinality AS n FROM src
              WHERE EXISTS (SELECT 1 FROM ins WHERE ${eq(match, 'ins', 'src')})
                 OR EXISTS (SELECT 1 FROM ${t.sql} t WHERE ${eq(match, 't', 'src')} AND ${fields.map((c) => `t.${ident(c)}::text IS NOT DISTINCT FROM src.${ident(c)}::text`).join(' AND ')})`;
      break;
    case 'update':
      sql = `UPDATE ${t.sql} AS t SET ${(others.length ? others : match).map((c) => `${ident(c)} = r.${ident(c)}`).join(', ')}
               FROM ${src} WHERE ${eq(match, 't', 'r')} RETURNING r.ordinality AS n`;
      break;
    case 'delete':
      await client.query(`DELETE FROM ${t.sql} AS t USING ${src} WHERE ${eq(match, 't', 'r')}`, [json]);
      return new Set(group.map((_, i) => i + 1));    case 'event':
      throw new Error('a PostgreSQL table takes record operations, not events (mode: event)');
  }
  const r = await client.query<{ n: string }>(sql, [json]);
  return new Set(r.rows.map((x) => Number(x.n)));
}

function notApplied(t: Target, p: Prepared): RecordResult {
  const at = JSON.stringify(Object.fromEntries(p.match.map((c) => [c, p.record[c] ?? null])));
  return p.op.kind === 'insert'
    ? { ok: false, reason: `a different record with ${at} already exists in ${t.schema}.${t.name}`, retryable: false }
    : { ok: false, reason: `record not found: no record in ${t.schema}.${t.name} matches ${at}`, retryable: false };
}

/** Groups operations by kind and columns, in first-seen order. */
function groupsOf(prepared: Prepared[]): { kind: Operation['kind']; match: string[]; items: Prepared[] }[] {
  const groups = new Map<string, { kind: Operation['kind']; match: string[]; items: Prepared[] }>();
  for (const p of prepared) {
    const id = `${p.op.kind}|${p.match.join()}|${Object.keys(p.record).sort().join()}`;
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { kind: p.op.kind, match: p.match, items: [] }));
    g.items.push(p);
  }
  return [...groups.values()];
}

/** Errors about the statement's data (constraint violations, bad values): the records' fault. */
function isRecordError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^(22|23|42)/.test(code) && !isTransient(err);
}

/**
 * Cancels the statement `client` is running (as psql's Ctrl-C does), from another
 * connection of the pool; the statement then fails and its transaction rolls back.
 */
async function cancelStatement(ctx: Ctx, client: pg.PoolClient): Promise<void> {
  const pid = (client as unknown as { processID?: number }).processID;
  if (pid === undefined) return;
  const other = await poolOf(ctx).connect();
  try {
    await other.query('SELECT pg_cancel_backend($1)', [pid]);
  } finally {
    other.release();
  }
}

function aborted(ctx: Ctx, object: string): OutflowError {
  return new OutflowError('OUTFLOW_ABORTED', `connection "${ctx.connection}": the write to ${object} was cancelled because the run is stopping`, { retryable: true });
}

async function write(ctx: Ctx, object: string, ops: Operation[]): Promise<RecordResult[]> {
  if (ctx.signal.aborted) throw aborted(ctx, object);
  const results: RecordResult[] = new Array(ops.length);
  let client: pg.PoolClient;
  try {
    client = await poolOf(ctx).connect();
  } catch (err) {
    if (isOutflowError(err, 'OUTFLOW_CONFIG_INVALID')) throw err;
    throw destinationError(`connection "${ctx.connection}": cannot connect to PostgreSQL: ${describeError(err)}`, { retryable: true, cause: err });
  }
  let broken: unknown;
  // A stopping run does not wait for a statement (one held by a lock could wait forever):
  // it is cancelled, rolled back, and the batch is sent again by the next run.
  const onAbort = () => void cancelStatement(ctx, client).catch(() => undefined);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    let t: Target;
    try {
      t = await targetOf(ctx, client, object);
    } catch (err) {
      if (isOutflowError(err)) throw destinationError(err.message, { retryable: false, cause: err });
      throw destinationError(`connection "${ctx.connection}": reading table ${object} failed: ${describeError(err)}`, { retryable: isTransient(err), cause: err });
    }
    const prepared: Prepared[] = [];
    ops.forEach((op, i) => {
      const p = prepare(t, op, i);
      if (typeof p === 'string') results[i] = { ok: false, reason: p, retryable: false };
      else prepared.push(p);
    });
    const groups = groupsOf(prepared);
    try {
      await client.query('BEGIN');
      for (const g of groups) {
        const applied = await runGroup(client, t, g.kind, g.match, g.items);
        g.items.forEach((p, i) => (results[p.index] = applied.has(i + 1) ? { ok: true } : notApplied(t, p)));
      }
      await client.query('COMMIT');
      return results;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (!isRecordError(err)) throw err;
    }
    // Some record broke the batch: apply each alone under a savepoint, so only the
    // offending records are refused, each with the database's own message.
    await client.query('BEGIN');
    for (const p of prepared) {
      await client.query('SAVEPOINT outflow_record');
      try {
        const applied = await runGroup(client, t, p.op.kind, p.match, [p]);
        results[p.index] = applied.has(1) ? { ok: true } : notApplied(t, p);
        await client.query('RELEASE SAVEPOINT outflow_record');
      } catch (err) {
        if (!isRecordError(err)) throw err;
        await client.query('ROLLBACK TO SAVEPOINT outflow_record');
        results[p.index] = { ok: false, reason: describeError(err), retryable: false };
      }
    }
    await client.query('COMMIT');
    return results;
  } catch (err) {
    broken = err;
    await client.query('ROLLBACK').catch(() => undefined);
    if (ctx.signal.aborted) throw aborted(ctx, object);
    if (isOutflowError(err)) throw err;
    throw destinationError(`connection "${ctx.connection}": writing to ${object} failed: ${describeError(err)}`, {
      retryable: isTransient(err),
      cause: err,
    });
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    client.release(broken !== undefined && isTransient(broken) ? (broken as Error) : undefined);
  }
}

export const destination: Destination<PostgresConfig> = { check, discover, capabilities, write };
