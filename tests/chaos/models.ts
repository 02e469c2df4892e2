/**
 * The models the chaos harness changes at random while the CLI runs: a PostgreSQL table
 * (read by the embedded diff, the pushed-down diff or the change stream), a Snowflake table
 * in the emulator (change stream), and a DuckDB file (pushed-down diff). Every model has the
 * same columns — id, name, score, and an email derived from the id for HubSpot contacts —
 * and applies a list of changes at once, in one transaction where the system has them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import pg from 'pg';
import { DuckDBInstance } from '@duckdb/node-api';
import type { FailpointName } from '@outflow/core';
import { start as startSnowflake } from '@outflow/connector-snowflake/emulator';
import { tempDir } from '../crash/cli.js';
import { freshDatabase, type Columns, type Rows } from '../crash/systems.js';

export type ModelKind = 'pg-embedded' | 'pg-pushdown' | 'pg-stream' | 'snowflake-stream' | 'duckdb';

/** One change to the model. An update sets the fields it carries. */
export type Change =
  | { op: 'insert'; id: number; name: string; score: number }
  | { op: 'update'; id: number; name?: string; score?: number }
  | { op: 'delete'; id: number };

export interface Model {
  readonly kind: ModelKind;
  readonly capture: 'diff' | 'stream';
  /** The `connections.src` entry and the sync's `from` block, as YAML flow maps. */
  readonly connection: string;
  readonly from: string;
  readonly env: Record<string, string>;
  /** What the model calls its columns (Snowflake in capitals). */
  readonly columns: Columns;
  /** The crash points a run over this model passes (the reconcile ones only after {@link dropStream}). */
  readonly failpoints: readonly FailpointName[];
  /** Creates the table holding `rows` (all inserts). */
  create(rows: Extract<Change, { op: 'insert' }>[]): Promise<void>;
  /** Applies changes, at once where the system has transactions. */
  apply(changes: Change[]): Promise<void>;
  /** What the model holds now: the truth the destination is compared with. */
  rows(): Promise<Rows>;
  /** Makes the change stream stale behind the runner's back (PostgreSQL: drops its slot). */
  dropStream?(): Promise<void>;
  close(): Promise<void>;
}

/** The email a record of this id has: unique per id, never changed (as the crash matrix's HubSpot sink reads it). */
export function emailOf(id: number | string): string {
  return `item${id}@example.com`;
}

const DIFF_EMBEDDED: FailpointName[] = ['diff.after-snapshot', 'delivery.after-write', 'state.before-fold', 'state.inside-fold'];
const STREAM_STATE: FailpointName[] = ['delivery.after-write', 'stream.checkpoint-saved', 'state.before-fold', 'state.inside-fold'];

const FAILPOINTS: Record<ModelKind, FailpointName[]> = {
  'pg-embedded': DIFF_EMBEDDED,
  'pg-pushdown': ['diff.after-snapshot', 'delivery.after-write', 'state.inside-apply'],
  duckdb: DIFF_EMBEDDED,
  'pg-stream': [...STREAM_STATE, 'postgres.before-slot-advance'],
  'snowflake-stream': [...STREAM_STATE, 'snowflake.after-stage', 'snowflake.before-unstage'],
};

/** The crash points of a reconciling diff, passed only after a stream went stale. */
export const RECONCILE_FAILPOINTS: FailpointName[] = ['reconcile.after-write', 'reconcile.after-diff'];

const LOWER: Columns = { id: 'id', name: 'name', score: 'score', email: 'email' };
const UPPER: Columns = { id: 'ID', name: 'NAME', score: 'SCORE', email: 'EMAIL' };
const sqlText = (s: string) => `'${s.replace(/'/g, "''")}'`;

export function openModel(kind: ModelKind): Promise<Model> {
  switch (kind) {
    case 'pg-embedded':
    case 'pg-pushdown':
    case 'pg-stream':
      return postgresModel(kind);
    case 'snowflake-stream':
      return snowflakeModel();
    case 'duckdb':
      return duckdbModel();
  }
}

async function postgresModel(kind: 'pg-embedded' | 'pg-pushdown' | 'pg-stream'): Promise<Model> {
  const url = await freshDatabase('chaos_src');
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  return {
    kind,
    capture: kind === 'pg-stream' ? 'stream' : 'diff',
    connection: `{ connector: postgres, config: { url: "${url}" } }`,
    from: `{ connection: src, table: items, primaryKey: id${kind === 'pg-embedded' ? ', pushdown: false' : ''} }`,
    env: {},
    columns: LOWER,
    failpoints: FAILPOINTS[kind],
    async create(rows) {
      await db.query('CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, score int NOT NULL, email text NOT NULL)');
      await db.query('INSERT INTO items (id, name, score, email) SELECT * FROM unnest($1::int[], $2::text[], $3::int[], $4::text[])', [
        rows.map((r) => r.id),
        rows.map((r) => r.name),
        rows.map((r) => r.score),
        rows.map((r) => emailOf(r.id)),
      ]);
    },
    async apply(changes) {
      await db.query('BEGIN');
      try {
        for (const c of changes) {
          if (c.op === 'insert') await db.query('INSERT INTO items (id, name, score, email) VALUES ($1, $2, $3, $4)', [c.id, c.name, c.score, emailOf(c.id)]);
          else if (c.op === 'delete') await db.query('DELETE FROM items WHERE id = $1', [c.id]);
          else await db.query('UPDATE items SET name = coalesce($2, name), score = coalesce($3, score) WHERE id = $1', [c.id, c.name ?? null, c.score ?? null]);
        }
        await db.query('COMMIT');
      } catch (err) {
        await db.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    },
    async rows() {
      const r = await db.query<{ id: number; name: string; score: number }>('SELECT id, name, score FROM items');
      return new Map(r.rows.map((x) => [String(x.id), { name: x.name, score: x.score }]));
    },
    async dropStream() {
      // A slot still held by a walsender of a killed runner is let go once PostgreSQL notices.
      for (let attempt = 0; ; attempt++) {
        try {
          const slots = await db.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots WHERE database = current_database()');
          for (const s of slots.rows) await db.query('SELECT pg_drop_replication_slot($1)', [s.slot_name]);
          return;
        } catch (err) {
          if (attempt >= 50) throw err;
          await sleep(200);
        }
      }
    },
    close: () => db.end(),
  };
}

/** Statements that apply `changes` to `table` (columns in capitals for Snowflake). */
function changeSql(table: string, changes: Change[], col: Columns): string[] {
  const out: string[] = [];
  const inserts = changes.filter((c): c is Extract<Change, { op: 'insert' }> => c.op === 'insert');
  // Inserts first is safe: a change list never touches one id twice (see workload.ts).
  if (inserts.length) {
    out.push(
      `INSERT INTO ${table} (${col.id}, ${col.name}, ${col.score}, ${col.email}) VALUES ${inserts
        .map((c) => `(${c.id}, ${sqlText(c.name)}, ${c.score}, ${sqlText(emailOf(c.id))})`)
        .join(', ')}`,
    );
  }
  for (const c of changes) {
    if (c.op === 'delete') out.push(`DELETE FROM ${table} WHERE ${col.id} = ${c.id}`);
    if (c.op === 'update') {
      const sets = [c.name === undefined ? '' : `${col.name} = ${sqlText(c.name)}`, c.score === undefined ? '' : `${col.score} = ${c.score}`].filter(Boolean);
      out.push(`UPDATE ${table} SET ${sets.join(', ')} WHERE ${col.id} = ${c.id}`);
    }
  }
  return out;
}

async function snowflakeModel(): Promise<Model> {
  const sf = await startSnowflake();
  const t = '"ANALYTICS"."PUBLIC"."ITEMS"';
  return {
    kind: 'snowflake-stream',
    capture: 'stream',
    connection: `{ connector: snowflake, config: { account: ${sf.config.account}, username: ${sf.config.username}, password: "\${env:SF_PASSWORD}", database: ANALYTICS, warehouse: COMPUTE_WH, accessUrl: "${sf.url}" } }`,
    from: '{ connection: src, table: ITEMS, primaryKey: ID }',
    env: { SF_PASSWORD: sf.config.password },
    columns: UPPER,
    failpoints: FAILPOINTS['snowflake-stream'],
    async create(rows) {
      await sf.sql(`CREATE TABLE ${t} (ID INTEGER PRIMARY KEY, NAME VARCHAR NOT NULL, SCORE INTEGER NOT NULL, EMAIL VARCHAR NOT NULL)`);
      for (let i = 0; i < rows.length; i += 500) for (const s of changeSql(t, rows.slice(i, i + 500), UPPER)) await sf.sql(s);
    },
    async apply(changes) {
      for (const s of changeSql(t, changes, UPPER)) await sf.sql(s);
    },
    async rows() {
      const r = await sf.sql(`SELECT ID, NAME, SCORE FROM ${t}`);
      return new Map(r.map((x) => [String(x['ID']), { name: String(x['NAME']), score: Number(x['SCORE']) }]));
    },
    close: () => sf.stop(),
  };
}

/**
 * A DuckDB file. The runner opens it read-only for each diff, and DuckDB lets one process
 * write a file or several read it, never both: a change waits until no read holds the file
 * (and a run that finds it held for writing fails that read, retryably).
 */
async function duckdbModel(): Promise<Model> {
  const path = join(tempDir('chaos-duckdb'), 'warehouse.duckdb');
  const withFile = async <T>(fn: (run: (sql: string) => Promise<Record<string, unknown>[]>) => Promise<T>): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      let instance: DuckDBInstance | undefined;
      try {
        instance = await DuckDBInstance.create(path);
      } catch (err) {
        if (attempt >= 600 || !/lock/i.test(String(err))) throw err;
        await sleep(50);
        continue;
      }
      const connection = await instance.connect();
      try {
        return await fn(async (sql) => (await connection.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[]);
      } finally {
        connection.closeSync();
        instance.closeSync();
      }
    }
  };
  return {
    kind: 'duckdb',
    capture: 'diff',
    connection: `{ connector: duckdb, config: { path: "${path}", threads: 1 } }`,
    from: '{ connection: src, table: items, primaryKey: id }',
    env: {},
    columns: LOWER,
    failpoints: FAILPOINTS.duckdb,
    create: (rows) =>
      withFile(async (run) => {
        await run('CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, score INTEGER NOT NULL, email VARCHAR NOT NULL)');
        for (let i = 0; i < rows.length; i += 500) for (const s of changeSql('items', rows.slice(i, i + 500), LOWER)) await run(s);
      }),
    apply: (changes) =>
      withFile(async (run) => {
        await run('BEGIN TRANSACTION');
        for (const s of changeSql('items', changes, LOWER)) await run(s);
        await run('COMMIT');
      }),
    rows: () =>
      withFile(async (run) => new Map((await run('SELECT id, name, score FROM items')).map((x) => [String(x['id']), { name: String(x['name']), score: Number(x['score']) }]))),
    close: async () => undefined,
  };
}
