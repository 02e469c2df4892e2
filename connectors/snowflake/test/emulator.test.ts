import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start, type SnowflakeEmulator } from '@outflow/connector-snowflake/emulator';
import { connect, destroy, exec, execStatement, type Connection } from './sdk.js';

let emu: SnowflakeEmulator;
let conn: Connection;

beforeAll(async () => {
  emu = await start({ longQueryMs: 200, chunkRows: 3000, inlineRows: 500 });
  conn = await connect(emu.config);
});
afterAll(async () => {
  await destroy(conn);
  await emu.stop();
});

async function failure(p: Promise<unknown>): Promise<{ code?: string; sqlState?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; sqlState?: string; message: string };
  }
  throw new Error('expected the statement to fail');
}

describe('login', () => {
  it('accepts the password and names the session database', async () => {
    expect(await exec(conn, 'select 1 as one, current_database() as db, current_schema() as s')).toEqual([{ ONE: 1, DB: 'ANALYTICS', S: 'PUBLIC' }]);
  });

  it('refuses a wrong password with Snowflake’s code', async () => {
    const err = await failure(connect({ ...emu.config, password: 'wrong-password' }));
    expect(err.code).toBe('390100');
    expect(err.message).toMatch(/Incorrect username or password/);
  });

  it('verifies a key-pair JWT against the registered public key', async () => {
    const good = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    emu.addUser('KEYUSER', { publicKey: good.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    const pem = (k: typeof good) => k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const c = await connect({ ...emu.config, username: 'keyuser', password: undefined as never, privateKey: pem(good) });
    expect(await exec(c, 'select current_user() as u')).toEqual([{ U: 'KEYUSER' }]);
    await destroy(c);
    const err = await failure(connect({ ...emu.config, username: 'keyuser', password: undefined as never, privateKey: pem(other) }));
    expect(err.code).toBe('390144');
  });

  it('deletes the session when the connection is destroyed', async () => {
    const c = await connect(emu.config);
    const before = emu.sessionCount;
    await destroy(c);
    expect(emu.sessionCount).toBe(before - 1);
    expect(emu.requests.some((r) => r.path === '/session')).toBe(true);
  });
});

describe('queries', () => {
  it('upper-cases unquoted identifiers and keeps quoted ones', async () => {
    await exec(conn, 'create or replace table people (id number, name varchar, "mixedCase" varchar, score float, active boolean, born date, seen timestamp_ntz, extra variant)');
    await exec(conn, `insert into people values (1, 'Ada', 'x', 1.5, true, '1815-12-10', '2024-01-02 03:04:05.123', parse_json('{"a":1}'))`);
    const rows = await exec(conn, 'select * from people');
    expect(Object.keys(rows[0]!)).toEqual(['ID', 'NAME', 'mixedCase', 'SCORE', 'ACTIVE', 'BORN', 'SEEN', 'EXTRA']);
    expect(rows[0]!['ID']).toBe(1);
    expect(rows[0]!['SCORE']).toBe(1.5);
    expect(rows[0]!['ACTIVE']).toBe(true);
    expect(rows[0]!['EXTRA']).toEqual({ a: 1 });
    expect((rows[0]!['BORN'] as Date).toJSON()).toMatch(/^1815-12-10/);
    expect((rows[0]!['SEEN'] as Date).getTime()).toBe(Date.UTC(2024, 0, 2, 3, 4, 5, 123));
  });

  it('binds positional values, and arrays of rows', async () => {
    await exec(conn, 'create or replace table binds (id int, name text)');
    const { stmt } = await execStatement(conn, 'insert into binds values (?, ?)', [[1, 'a'], [2, "b'quote"], [3, null]]);
    expect(stmt.getNumUpdatedRows()).toBe(3);
    expect(await exec(conn, 'select name from binds where id = ? or id = :1 + 1 order by id', [1])).toEqual([{ NAME: 'a' }, { NAME: "b'quote" }]);
  });

  it('answers SQL errors with Snowflake codes and SQL states', async () => {
    const missing = await failure(exec(conn, 'select * from no_such_table'));
    expect(missing.code).toBe('002003');
    expect(missing.sqlState).toBe('42S02');
    expect(missing.message).toMatch(/NO_SUCH_TABLE.*does not exist/);
    const syntax = await failure(exec(conn, 'selec 1'));
    expect(syntax.code).toBe('001003');
    const unsupported = await failure(exec(conn, 'create task t1 as select 1'));
    expect(unsupported.sqlState).toBe('42000');
    expect(unsupported.message).toMatch(/CREATE TASK is unsupported in the Outflow emulator/);
    const two = await failure(exec(conn, 'select 1; select 2'));
    expect(two.code).toBe('000008');
  });

  it('streams a large result in chunks the driver downloads', async () => {
    await exec(conn, "create or replace table big as select n as id, 'row ' || n as label from (select seq4() as n from table(generator(rowcount => 20000)))");
    const stmt = conn.execute({ sqlText: 'select id, label from big order by id', streamResult: true });
    let n = 0;
    let sum = 0;
    await new Promise<void>((resolve, reject) => {
      stmt.streamRows().on('data', (row: Record<string, unknown>) => {
        n++;
        sum += row['ID'] as number;
      }).on('error', reject).on('end', () => resolve());
    });
    expect(n).toBe(20_000);
    expect(sum).toBe((19_999 * 20_000) / 2);
    expect(emu.requests.filter((r) => r.path.startsWith('/outflow-chunks/')).length).toBeGreaterThanOrEqual(6);
  });

  it('keeps a long query running and the driver polls for its result', async () => {
    const rows = await exec(conn, 'select system$wait(1) as w');
    expect(rows).toEqual([{ W: 'waited 1 seconds' }]);
    expect(emu.requests.some((r) => r.method === 'GET' && /^\/queries\/.+\/result$/.test(r.path))).toBe(true);
  });

  it('renews an expired session token and replays the query', async () => {
    emu.expireSessions();
    expect(await exec(conn, 'select 2 as two')).toEqual([{ TWO: 2 }]);
    expect(emu.requests.some((r) => r.path === '/session/token-request')).toBe(true);
  });

  it('answers heartbeats', async () => {
    // heartbeat() is in the driver but not in its type declarations.
    const driver = conn as unknown as { heartbeat(cb: (err?: Error) => void): void };
    await new Promise<void>((resolve, reject) => driver.heartbeat((err) => (err ? reject(err) : resolve())));
    expect(emu.requests.some((r) => r.path === '/session/heartbeat')).toBe(true);
  });

  it('lists tables and columns in INFORMATION_SCHEMA and primary keys with SHOW', async () => {
    await exec(conn, 'create or replace table keyed (id int primary key, email varchar not null, n number(10,2))');
    const tables = await exec(conn, `select table_name, table_type from information_schema.tables where table_schema = 'PUBLIC' and table_name = 'KEYED'`);
    expect(tables).toEqual([{ TABLE_NAME: 'KEYED', TABLE_TYPE: 'BASE TABLE' }]);
    const cols = await exec(conn, `select column_name, data_type, is_nullable, numeric_scale from analytics.information_schema.columns where table_name = 'KEYED' order by ordinal_position`);
    expect(cols).toEqual([
      { COLUMN_NAME: 'ID', DATA_TYPE: 'NUMBER', IS_NULLABLE: 'NO', NUMERIC_SCALE: 0 },
      { COLUMN_NAME: 'EMAIL', DATA_TYPE: 'TEXT', IS_NULLABLE: 'NO', NUMERIC_SCALE: null },
      { COLUMN_NAME: 'N', DATA_TYPE: 'NUMBER', IS_NULLABLE: 'YES', NUMERIC_SCALE: 2 },
    ]);
    const pks = await exec(conn, 'show primary keys in schema analytics.public');
    expect(pks.filter((r) => r['table_name'] === 'KEYED').map((r) => r['column_name'])).toEqual(['ID']);
  });
});

describe('faults', () => {
  it('answers query requests 503 on request and the driver retries them; other requests are not faulted', async () => {
    const faulty = await start({ faults: { failRequests: 1 } });
    try {
      const c = await connect(faulty.config);
      expect(await exec(c, 'select 1 as one')).toEqual([{ ONE: 1 }]);
      expect(faulty.requests.filter((r) => r.path === '/queries/v1/query-request')).toHaveLength(2);
      await destroy(c);
    } finally {
      await faulty.stop();
    }
  });

  it('refuses a malformed body with 400, an unknown path with 404, both in Snowflake shape', async () => {
    const malformed = await fetch(`${emu.url}/session/v1/login-request`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":' });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ success: false, code: '390000', message: expect.stringMatching(/not valid JSON/) });
    const unknown = await fetch(`${emu.url}/nothing/here`, { method: 'POST' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ success: false, code: '390400' });
  });
});

describe('streams', () => {
  it('returns the net change since the offset with METADATA$ columns', async () => {
    await exec(conn, 'create or replace table items (id int primary key, name varchar)');
    await exec(conn, `insert into items values (1, 'one'), (2, 'two'), (3, 'three')`);
    await exec(conn, 'create or replace stream items_s on table items');
    expect(await exec(conn, `select system$stream_has_data('ITEMS_S') as h`)).toEqual([{ H: false }]);
    await exec(conn, `insert into items values (4, 'four')`);
    await exec(conn, `update items set name = 'uno' where id = 1`);
    await exec(conn, `update items set name = 'UNO' where id = 1`);
    await exec(conn, `delete from items where id = 2`);
    await exec(conn, `insert into items values (5, 'five')`);
    await exec(conn, `delete from items where id = 5`);
    const rows = await exec(conn, 'select id, name, metadata$action as a, metadata$isupdate as u from items_s order by id, a');
    expect(rows).toEqual([
      { ID: 1, NAME: 'one', A: 'DELETE', U: true },
      { ID: 1, NAME: 'UNO', A: 'INSERT', U: true },
      { ID: 2, NAME: 'two', A: 'DELETE', U: false },
      { ID: 4, NAME: 'four', A: 'INSERT', U: false },
    ]);
    const ids = await exec(conn, 'select distinct metadata$row_id as r from items_s where id = 1');
    expect(ids).toHaveLength(1);
  });

  it('a SELECT does not consume; a committed DML does; a rollback keeps the offset', async () => {
    await exec(conn, 'create or replace table ev (id int, v varchar)');
    await exec(conn, 'create or replace stream ev_s on table ev');
    await exec(conn, 'create or replace table ev_sink (id int, v varchar, action varchar)');
    await exec(conn, `insert into ev values (1, 'a')`);
    expect(await exec(conn, 'select id from ev_s')).toEqual([{ ID: 1 }]);
    expect(await exec(conn, 'select id from ev_s')).toEqual([{ ID: 1 }]);

    await exec(conn, 'begin');
    await exec(conn, 'insert into ev_sink select id, v, metadata$action from ev_s');
    await exec(conn, 'rollback');
    expect(await exec(conn, 'select id from ev_s')).toEqual([{ ID: 1 }]);
    expect(await exec(conn, `select system$stream_has_data('ev_s') as h`)).toEqual([{ H: true }]);

    await exec(conn, 'begin');
    await exec(conn, 'insert into ev_sink select id, v, metadata$action from ev_s');
    // Another session's change committed while this transaction is open stays for the next read.
    const other = await connect(emu.config);
    await exec(other, `insert into ev values (2, 'b')`);
    await destroy(other);
    await exec(conn, 'commit');
    expect(await exec(conn, 'select id, v from ev_sink')).toEqual([{ ID: 1, V: 'a' }]);
    expect(await exec(conn, 'select id from ev_s')).toEqual([{ ID: 2 }]);
    await exec(conn, 'insert into ev_sink select id, v, metadata$action from ev_s');
    expect(await exec(conn, `select system$stream_has_data('EV_S') as h`)).toEqual([{ H: false }]);
  });

  it('a stream whose offset falls outside the retention period goes stale', async () => {
    await exec(conn, 'create or replace table st (id int)');
    await exec(conn, 'create or replace stream st_s on table st');
    emu.setRetention(50);
    try {
      await new Promise((r) => setTimeout(r, 120));
      const shown = await exec(conn, `show streams like 'ST_S'`);
      expect(shown).toHaveLength(1);
      expect(shown[0]!['stale']).toBe('true');
      expect(shown[0]!['table_name']).toBe('ANALYTICS.PUBLIC.ST');
      const err = await failure(exec(conn, 'select * from st_s'));
      expect(err.message).toMatch(/stale/);
      await exec(conn, 'create or replace stream st_s on table st');
      expect((await exec(conn, `show streams like 'st_s'`))[0]!['stale']).toBe('false');
    } finally {
      emu.setRetention(14 * 86_400_000);
    }
  });

  it('streams on a dynamic table see its refreshes', async () => {
    await exec(conn, 'create or replace table orders (id int, customer varchar, amount number(10,2))');
    await exec(conn, `insert into orders values (1, 'a', 10), (2, 'a', 5), (3, 'b', 7)`);
    await exec(conn, `create or replace dynamic table totals target_lag = '1 minute' warehouse = compute_wh as select customer, sum(amount) as total from orders group by customer`);
    await exec(conn, 'create or replace stream totals_s on dynamic table totals');
    await exec(conn, `insert into orders values (4, 'b', 1), (5, 'c', 2)`);
    expect(await exec(conn, 'select * from totals_s')).toEqual([]);
    await emu.refreshDynamicTables();
    const rows = await exec(conn, 'select customer, total, metadata$action as a from totals_s order by customer, a');
    expect(rows).toEqual([
      { CUSTOMER: 'b', TOTAL: 7, A: 'DELETE' },
      { CUSTOMER: 'b', TOTAL: 8, A: 'INSERT' },
      { CUSTOMER: 'c', TOTAL: 2, A: 'INSERT' },
    ]);
    const lag = await failure(exec(conn, `create or replace dynamic table fast target_lag = '10 seconds' warehouse = w as select 1 as x`));
    expect(lag.message).toMatch(/minimum target lag/);
  });
});
