/**
 * The systems of the crash matrix: where a sync reads (PostgreSQL with the embedded diff or
 * the pushed-down one, a PostgreSQL or Snowflake change stream) and where it writes (the
 * webhook receiver, a PostgreSQL table, HubSpot). Each destination is read back twice: what
 * it holds now, and its own write log — the receiver's log of applied writes, a trigger on
 * the table, the HubSpot emulator's log of created records — where a record created twice
 * shows up twice.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { start as startSnowflake, type SnowflakeEmulator } from '@outflow/connector-snowflake/emulator';
import { start as startWebhook, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { start as startHubSpot, type HubSpotEmulator } from '@outflow/connector-hubspot/emulator';

/** One row of every model: an id, and two fields that change. */
export interface Item {
  name: string;
  score: number;
}

export type Rows = Map<string, Item>;

export interface Source {
  readonly kind: SourceKind;
  readonly capture: 'diff' | 'stream';
  /** The `connections.src` entry and the sync's `from` block, as YAML flow maps. */
  connection: string;
  from: string;
  /** The model's columns (an id, two fields that change, and an email made from the id). */
  columns: Columns;
  env: Record<string, string>;
  /** Creates the model with ids 1..n. */
  seed(n: number): Promise<void>;
  /** One round of changes: some inserts, updates and deletes (`all`), or only inserts. */
  change(round: number, what: Workload): Promise<void>;
  rows(): Promise<Rows>;
  /** Makes the change stream stale behind the runner's back (drops its slot). */
  dropStream?(): Promise<void>;
  close(): Promise<void>;
}

export interface Columns {
  id: string;
  name: string;
  score: string;
  email: string;
}

/**
 * The outflow.yaml of one sync, `items`, from a model into `dst`; a diff sync with
 * `scheduleMs` repeats on that schedule under `run --watch`.
 */
export function syncYaml(
  src: { connection: string; from: string; capture: 'diff' | 'stream'; columns: Columns },
  dst: Sink,
  o: { batchSize: number; concurrency: number; scheduleMs?: number },
): string {
  return `version: 1
connections:
  src: ${src.connection}
  dst: ${dst.connection}
syncs:
  - name: items
    from: ${src.from}
    capture: ${src.capture}
${o.scheduleMs !== undefined && src.capture === 'diff' ? `    schedule: { every: ${o.scheduleMs}ms }\n` : ''}    to: ${dst.to(src.columns)}
    mappings: ${dst.mappings(src.columns)}
    delivery: { batchSize: ${o.batchSize}, concurrency: ${o.concurrency} }
`;
}

export interface Sink {
  readonly kind: SinkKind;
  connection: string;
  /** The sync's `to` block and mappings for a model with these columns, as YAML flow maps. */
  to(c: Columns): string;
  mappings(c: Columns): string;
  env: Record<string, string>;
  /** What the destination holds, by id. */
  held(): Promise<Rows>;
  /** Records created per id, counted in the destination's own write log. */
  creates(): Promise<Map<string, number>>;
  /** Every write the destination's log holds (creates, changes, deletes). */
  writes(): Promise<number>;
  close(): Promise<void>;
}

export type Workload = 'all' | 'inserts';

export type SourceKind = 'diff-embedded' | 'diff-pushdown' | 'stream-postgres' | 'stream-snowflake';
export type SinkKind = 'webhook' | 'postgres' | 'hubspot';

const suffix = () => randomBytes(4).toString('hex');

// ---------------------------------------------------------------------------------------
// PostgreSQL: one server for the run (the project's global setup), a database per system.
// ---------------------------------------------------------------------------------------

async function database(prefix: string): Promise<string> {
  const server = inject('pgUrl');
  const name = `${prefix}_${suffix()}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(server);
  u.pathname = `/${name}`;
  return u.toString();
}

/** A new, empty database on the run's PostgreSQL server: its URL (for harnesses beyond the matrix, e.g. tests/chaos). */
export function freshDatabase(prefix: string): Promise<string> {
  return database(prefix);
}

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

/** The SQL of a round of changes to table `t` with columns id, name, score. */
function roundSql(t: string, round: number, what: Workload): string[] {
  const base = 10_000 * round;
  const inserts = `INSERT INTO ${t} (id, name, score) SELECT ${base} + i, 'new ' || (${base} + i), i FROM generate_series(1, 15) AS i`;
  if (what === 'inserts') return [inserts];
  const updates = `UPDATE ${t} SET score = score + 1000, name = name || '+' WHERE id % 7 = ${round % 7}`;
  return [updates, inserts, `DELETE FROM ${t} WHERE id IN (SELECT id FROM ${t} WHERE id < 10000 AND id % 11 = ${round % 11} ORDER BY id LIMIT 3)`];
}

export async function postgresSource(kind: Exclude<SourceKind, 'stream-snowflake'>): Promise<Source> {
  const url = await database('crash_src');
  const db = await connect(url);
  const table = 'items';
  return {
    kind,
    capture: kind === 'stream-postgres' ? 'stream' : 'diff',
    connection: `{ connector: postgres, config: { url: "${url}" } }`,
    from: `{ connection: src, table: ${table}, primaryKey: id${kind === 'diff-embedded' ? ', pushdown: false' : ''} }`,
    columns: { id: 'id', name: 'name', score: 'score', email: 'email' },
    env: {},
    async seed(n) {
      await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, name text NOT NULL, score int NOT NULL, email text GENERATED ALWAYS AS ('item' || id || '@example.com') STORED)`);
      await db.query(`INSERT INTO ${table} SELECT i, 'item ' || i, i FROM generate_series(1, ${n}) AS i`);
    },
    async change(round, what) {
      await db.query('BEGIN');
      for (const sql of roundSql(table, round, what)) await db.query(sql);
      await db.query('COMMIT');
    },
    async rows() {
      const r = await db.query<{ id: number; name: string; score: number }>(`SELECT id, name, score FROM ${table}`);
      return new Map(r.rows.map((x) => [String(x.id), { name: x.name, score: x.score }]));
    },
    async dropStream() {
      const slots = await db.query<{ slot_name: string }>(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`);
      for (const s of slots.rows) await db.query('SELECT pg_drop_replication_slot($1)', [s.slot_name]);
    },
    async close() {
      await db.end();
    },
  };
}

export async function snowflakeSource(): Promise<Source> {
  const sf: SnowflakeEmulator = await startSnowflake();
  const t = '"ANALYTICS"."PUBLIC"."ITEMS"';
  return {
    kind: 'stream-snowflake',
    capture: 'stream',
    connection: `{ connector: snowflake, config: { account: ${sf.config.account}, username: ${sf.config.username}, password: "\${env:SF_PASSWORD}", database: ANALYTICS, warehouse: COMPUTE_WH, accessUrl: "${sf.url}" } }`,
    from: '{ connection: src, table: ITEMS, primaryKey: ID }',
    columns: { id: 'ID', name: 'NAME', score: 'SCORE', email: 'EMAIL' },
    env: { SF_PASSWORD: sf.config.password! },
    async seed(n) {
      await sf.sql(`CREATE TABLE ${t} (ID INTEGER PRIMARY KEY, NAME VARCHAR NOT NULL, SCORE INTEGER NOT NULL, EMAIL VARCHAR)`);
      await sf.sql(`INSERT INTO ${t} SELECT i, 'item ' || i, i, 'item' || i || '@example.com' FROM (SELECT SEQ4() + 1 AS i FROM TABLE(GENERATOR(ROWCOUNT => ${n})))`);
    },
    async change(round, what) {
      const base = 10_000 * round;
      await sf.sql(`INSERT INTO ${t} SELECT ${base} + i, 'new ' || (${base} + i), i, 'item' || (${base} + i) || '@example.com' FROM (SELECT SEQ4() + 1 AS i FROM TABLE(GENERATOR(ROWCOUNT => 15)))`);
      if (what === 'inserts') return;
      await sf.sql(`UPDATE ${t} SET SCORE = SCORE + 1000, NAME = NAME || '+' WHERE ID % 7 = ${round % 7}`);
      await sf.sql(`DELETE FROM ${t} WHERE ID IN (SELECT ID FROM ${t} WHERE ID < 10000 AND ID % 11 = ${round % 11} ORDER BY ID LIMIT 3)`);
    },
    async rows() {
      const r = await sf.sql(`SELECT ID, NAME, SCORE FROM ${t}`);
      return new Map(r.map((x) => [String(x['ID']), { name: String(x['NAME']), score: Number(x['SCORE']) }]));
    },
    close: () => sf.stop(),
  };
}

export function source(kind: SourceKind): Promise<Source> {
  return kind === 'stream-snowflake' ? snowflakeSource() : postgresSource(kind);
}

// ---------------------------------------------------------------------------------------
// Destinations
// ---------------------------------------------------------------------------------------

export async function webhookSink(): Promise<Sink> {
  const receiver: WebhookEmulator = await startWebhook();
  const object = 'items';
  return {
    kind: 'webhook',
    connection: `{ connector: webhook, config: { url: "${receiver.url}", secret: "\${env:HOOK_SECRET}" } }`,
    to: () => `{ connection: dst, object: ${object}, mode: upsert, deletes: delete }`,
    mappings: (c) => `{ id: ${c.id}, name: ${c.name}, score: ${c.score} }`,
    env: { HOOK_SECRET: receiver.config.secret },
    async held() {
      return new Map(receiver.records(object).map((r) => [r.key, { name: String(r.fields['name']), score: Number(r.fields['score']) }]));
    },
    async creates() {
      const n = new Map<string, number>();
      for (const w of receiver.writes(object)) if (w.t === 'put' && w.created) n.set(w.key, (n.get(w.key) ?? 0) + 1);
      return n;
    },
    async writes() {
      return receiver.writes(object).length;
    },
    close: () => receiver.stop(),
  };
}

/**
 * A PostgreSQL table with a trigger that logs every row written to it. `keyed`: the table
 * has a primary key (upserts); otherwise it has no unique index at all, so nothing but the
 * connector keeps a re-sent insert from adding a second row.
 */
export async function postgresSink(keyed: boolean, connector = 'postgres'): Promise<Sink> {
  const url = await database('crash_dst');
  const db = await connect(url);
  await db.query(`CREATE TABLE items (id int ${keyed ? 'PRIMARY KEY' : 'NOT NULL'}, name text, score int)`);
  await db.query(`CREATE TABLE write_log (seq bigserial, op text NOT NULL, id int NOT NULL)`);
  await db.query(`CREATE FUNCTION log_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO write_log (op, id) VALUES (TG_OP, CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
      RETURN NULL;
    END $$`);
  await db.query(`CREATE TRIGGER log_write AFTER INSERT OR UPDATE OR DELETE ON items FOR EACH ROW EXECUTE FUNCTION log_write()`);
  return {
    kind: 'postgres',
    connection: `{ connector: "${connector}", config: { url: "${url}" } }`,
    to: (c) => (keyed ? '{ connection: dst, object: items, mode: upsert, deletes: delete }' : `{ connection: dst, object: items, mode: insert, matchKey: { id: ${c.id} } }`),
    mappings: (c) => `{ id: ${c.id}, name: ${c.name}, score: ${c.score} }`,
    env: {},
    async held() {
      const r = await db.query<{ id: number; name: string; score: number }>('SELECT id, name, score FROM items');
      const out: Rows = new Map();
      // A second row of one id is a duplicate; keep the count visible to the caller.
      for (const x of r.rows) out.set(out.has(String(x.id)) ? `${x.id}#dup${r.rows.indexOf(x)}` : String(x.id), { name: x.name, score: x.score });
      return out;
    },
    async creates() {
      const r = await db.query<{ id: number; n: string }>(`SELECT id, count(*) AS n FROM write_log WHERE op = 'INSERT' GROUP BY id`);
      return new Map(r.rows.map((x) => [String(x.id), Number(x.n)]));
    },
    async writes() {
      return Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM write_log')).rows[0]!.n);
    },
    close: () => db.end(),
  };
}

/**
 * HubSpot contacts matched by email. The write log is the emulator's log of writes it
 * applied through the API, where a contact created twice would show as two creates (HubSpot
 * itself refuses a second contact with one email, as the emulator does).
 */
export async function hubspotSink(): Promise<Sink> {
  const hubspot: HubSpotEmulator = await startHubSpot();
  const idOf = (email: string | undefined) => /^item(\d+)@example\.com$/.exec(email ?? '')?.[1] ?? `?${email}`;
  return {
    kind: 'hubspot',
    connection: `{ connector: hubspot, config: { accessToken: "\${env:HUBSPOT_TOKEN}", basePath: "${hubspot.url}" } }`,
    to: (c) => `{ connection: dst, object: contacts, mode: upsert, deletes: delete, matchKey: { email: ${c.email} } }`,
    mappings: (c) => `{ firstname: ${c.name}, total_revenue: ${c.score} }`,
    env: { HUBSPOT_TOKEN: hubspot.config.accessToken },
    async held() {
      return new Map(hubspot.records('contacts').map((r) => [idOf(r.properties['email']), { name: r.properties['firstname'] ?? '', score: Number(r.properties['total_revenue']) }]));
    },
    async creates() {
      const n = new Map<string, number>();
      for (const w of hubspot.stats().writes) if (w.object === 'contacts' && w.op === 'create') n.set(idOf(w.properties?.['email']), (n.get(idOf(w.properties?.['email'])) ?? 0) + 1);
      return n;
    },
    async writes() {
      return hubspot.stats().writes.length;
    },
    close: () => hubspot.stop(),
  };
}

export function sink(kind: SinkKind | 'postgres-append'): Promise<Sink> {
  switch (kind) {
    case 'webhook':
      return webhookSink();
    case 'postgres':
      return postgresSink(true);
    case 'postgres-append':
      return postgresSink(false);
    case 'hubspot':
      return hubspotSink();
  }
}
