import pg from 'pg';
import postgres, { type PostgresConfig } from '@outflow/connector-postgres';
import type { Row } from '@outflow/core';
import { destinationAcceptance, sourceAcceptance, streamAcceptance } from '@outflow/testing';
import { client, createDatabase } from './helpers.js';

// More rows than two read batches, so the abort check has a read in progress to stop.
const ROWS = 2_500;
const READ_BATCH = 1_000;

/** The rows of the source fixture, with the values read() must give for each type. */
const expectedRows: Row[] = Array.from({ length: ROWS }, (_, n) => {
  const id = n + 1;
  return {
    id,
    email: id % 7 === 0 ? null : `customer${id}@example.com`,
    score: id / 4,
    active: id % 3 !== 0,
    big: id === 1 ? '9007199254740993' : id * 1_000_000_000,
    amount: `${id}.50`,
    seen_at: new Date(Date.UTC(2024, 0, 1, 0, 0, id)).toISOString(),
    tags: id % 2 === 0 ? ['even', `n${id}`] : [],
    meta: { n: id, nested: { ok: true } },
  };
});

/** The bad configs every role refuses: nothing listening, and a database that does not exist. */
const badConfigs = (config: PostgresConfig) => {
  const u = new URL(config.url);
  const nothing = new URL(config.url);
  nothing.port = '9';
  u.pathname = '/no_such_database';
  return [
    { name: 'a port nothing listens on', config: { ...config, url: nothing.toString() } },
    { name: 'a database that does not exist', config: { ...config, url: u.toString() } },
  ];
};

sourceAcceptance<PostgresConfig>({
  connector: postgres,
  model: { table: 'customers', primaryKey: ['id'] },
  expectedRows,
  async setup() {
    const url = await createDatabase('source');
    const c = await client(url);
    try {
      await c.query(`CREATE TABLE customers (
        id int PRIMARY KEY, email text, score float8, active boolean, big bigint, amount numeric(12,2),
        seen_at timestamptz, tags text[], meta jsonb)`);
      await c.query(`INSERT INTO customers
        SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'customer' || i || '@example.com' END, i / 4.0, i % 3 <> 0,
               CASE WHEN i = 1 THEN 9007199254740993 ELSE i * 1000000000::bigint END, i + 0.5,
               timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => i),
               CASE WHEN i % 2 = 0 THEN ARRAY['even', 'n' || i] ELSE ARRAY[]::text[] END,
               jsonb_build_object('n', i, 'nested', jsonb_build_object('ok', true))
          FROM generate_series(1, ${ROWS}) AS i`);
    } finally {
      await c.end();
    }
    return { url, readBatchSize: READ_BATCH };
  },
  badConfigs,
});

let streamDb: pg.Client;

streamAcceptance<PostgresConfig>({
  connector: postgres,
  model: { table: 'items', primaryKey: ['id'] },
  row: (i, version) => ({ id: i, name: `item ${i} v${version}`, price: `${i}.${version}0`, tags: [`v${version}`] }),
  async mutate(kind, row) {
    if (kind === 'insert') await streamDb.query('INSERT INTO items VALUES ($1, $2, $3, $4)', [row['id'], row['name'], row['price'], row['tags']]);
    else if (kind === 'update') await streamDb.query('UPDATE items SET name = $2, price = $3, tags = $4 WHERE id = $1', [row['id'], row['name'], row['price'], row['tags']]);
    else await streamDb.query('DELETE FROM items WHERE id = $1', [row['id']]);
  },
  // Drops the stream's replication slot: its position is gone, as when the server invalidates
  // a slot that passed max_slot_wal_keep_size.
  async makeStale() {
    for (let attempt = 0; ; attempt++) {
      try {
        await streamDb.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = current_database() AND active_pid IS NOT NULL');
        await streamDb.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()');
        return;
      } catch (err) {
        // The terminated walsender may hold the slot a moment longer (55006: object in use).
        if ((err as { code?: string }).code !== '55006' || attempt === 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  },
  async setup() {
    const url = await createDatabase('stream');
    streamDb = await client(url);
    await streamDb.query('CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[])');
    return { url };
  },
  teardown: () => streamDb.end(),
  badConfigs,
});

// A pool: the suite reads records back concurrently.
let destDb: pg.Pool;

destinationAcceptance<PostgresConfig>({
  connector: postgres,
  object: 'contacts',
  async setup() {
    const url = await createDatabase('dest');
    destDb = new pg.Pool({ connectionString: url, max: 4 });
    await destDb.query(`CREATE TABLE contacts (
      id text PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL, score int CHECK (score >= 0), vip boolean)`);
    return { url };
  },
  teardown: () => destDb.end(),
  badConfigs,
  // Every row. The table's primary key (id, the model key) and UNIQUE email mean PostgreSQL
  // itself holds at most one row per key: a duplicate is refused, never stored.
  async readAll() {
    const r = await destDb.query<Row>('SELECT * FROM contacts');
    return r.rows.map((row) => ({ key: String(row['id']), fields: row }));
  },
  // Rows are addressed by their match key; the connector returns no ids of its own.
  assignsIds: false,
  noRateLimits: 'a database has no request-rate limit; writeConcurrency bounds the load',
  noFaults: 'PostgreSQL is reached directly, with no emulator to inject 429s, 5xx answers, delays or lost answers into',
  // Holds writes back with a lock on the table, taken in another session; abort stops a held write.
  async stall() {
    const lock = await destDb.connect();
    await lock.query('BEGIN');
    await lock.query('LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE');
    return async () => {
      await lock.query('COMMIT');
      lock.release();
    };
  },
  record: (i) => ({
    key: `contact-${i}`,
    match: { id: `contact-${i}` },
    fields: { id: `contact-${i}`, email: `contact${i}@example.com`, name: `Contact ${i}`, score: i % 1000, vip: i % 2 === 0 },
  }),
  // The CHECK constraint refuses a negative score: only this record is rejected, with PostgreSQL's message.
  badRecord: () => ({ key: 'contact-bad', match: { id: 'contact-bad' }, fields: { id: 'contact-bad', email: 'bad@example.com', name: 'Bad', score: -1 } }),
});
