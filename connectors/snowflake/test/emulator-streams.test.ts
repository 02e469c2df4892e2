import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start, type SnowflakeEmulator } from '@outflow/connector-snowflake/emulator';
import { connect, destroy, exec, type Connection } from './sdk.js';

/** Streams, time travel and MERGE as Snowflake documents them, through the real snowflake-sdk. */

let emu: SnowflakeEmulator;
let conn: Connection;

beforeAll(async () => {
  emu = await start();
  conn = await connect(emu.config);
});
afterAll(async () => {
  await destroy(conn);
  await emu.stop();
});

const changes = (stream: string, cols = 'ID, V') =>
  exec(conn, `select ${cols}, metadata$action as a, metadata$isupdate as u from ${stream} order by id, a`);

async function failure(sqlText: string): Promise<{ code?: string; message: string }> {
  try {
    await exec(conn, sqlText);
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error(`expected the emulator to refuse: ${sqlText}`);
}

describe('streams', () => {
  it('marks both rows of an update pair METADATA$ISUPDATE = TRUE, on a table without a key too', async () => {
    await exec(conn, 'create table nokey (id int, v varchar)');
    await exec(conn, "insert into nokey values (1, 'a'), (2, 'b')");
    await exec(conn, 'create stream nokey_s on table nokey');
    await exec(conn, "update nokey set v = 'a2' where id = 1");
    await exec(conn, 'delete from nokey where id = 2');
    await exec(conn, "insert into nokey values (3, 'c')");
    expect(await changes('nokey_s')).toEqual([
      { ID: 1, V: 'a', A: 'DELETE', U: true },
      { ID: 1, V: 'a2', A: 'INSERT', U: true },
      { ID: 2, V: 'b', A: 'DELETE', U: false },
      { ID: 3, V: 'c', A: 'INSERT', U: false },
    ]);
    const [del, ins] = await exec(conn, 'select metadata$row_id as r from nokey_s where id = 1 order by metadata$action');
    expect(del!['R']).toBe(ins!['R']);
  });

  it('shows an append-only stream the inserted rows, even those updated or deleted since', async () => {
    await exec(conn, 'create table events (id int primary key, v varchar)');
    await exec(conn, "insert into events values (1, 'old')");
    await exec(conn, 'create stream events_s on table events append_only = true');
    await exec(conn, "insert into events values (2, 'x'), (3, 'y')");
    await exec(conn, "update events set v = 'changed' where id in (1, 2)");
    await exec(conn, 'delete from events where id = 3');
    expect(await changes('events_s')).toEqual([
      { ID: 2, V: 'x', A: 'INSERT', U: false },
      { ID: 3, V: 'y', A: 'INSERT', U: false },
    ]);
    const [shown] = await exec(conn, "show streams like 'EVENTS_S'");
    expect(shown).toMatchObject({ name: 'EVENTS_S', mode: 'APPEND_ONLY', stale: 'false', table_name: 'ANALYTICS.PUBLIC.EVENTS' });
    expect(shown!['stale_after']).toBeTruthy();
  });

  it('returns the rows at creation first with SHOW_INITIAL_ROWS = TRUE, until a DML consumes them', async () => {
    await exec(conn, 'create table seed (id int primary key, v varchar)');
    await exec(conn, "insert into seed values (1, 'a'), (2, 'b')");
    await exec(conn, 'create stream seed_s on table seed show_initial_rows = true');
    await exec(conn, "update seed set v = 'b2' where id = 2");
    expect(await changes('seed_s')).toEqual([
      { ID: 1, V: 'a', A: 'INSERT', U: false },
      { ID: 2, V: 'b2', A: 'INSERT', U: false },
    ]);
    await exec(conn, 'create table seed_copy as select id, v from seed_s');
    expect(await changes('seed_s')).toEqual([]);
    await exec(conn, 'delete from seed where id = 1');
    expect(await changes('seed_s')).toEqual([{ ID: 1, V: 'a', A: 'DELETE', U: false }]);
  });

  it('starts a stream at another stream’s offset with AT(STREAM => …), and refuses AT(STREAM => …) in a plain query as Snowflake does', async () => {
    await exec(conn, 'create table tt (id int primary key, v varchar)');
    await exec(conn, "insert into tt values (1, 'a')");
    await exec(conn, 'create stream tt_s on table tt');
    await exec(conn, "insert into tt values (2, 'b')");
    await exec(conn, "update tt set v = 'a2' where id = 1");
    // Snowflake takes STREAM => only in CREATE STREAM and with the CHANGES clause.
    expect(await failure("select id, v from tt at(stream => 'tt_s') order by id")).toMatchObject({ code: '001003', message: expect.stringMatching(/only in CREATE STREAM/) });
    expect(await exec(conn, 'select id, v from tt order by id')).toEqual([{ ID: 1, V: 'a2' }, { ID: 2, V: 'b' }]);
    await exec(conn, "create stream tt_s2 on table tt at(stream => 'tt_s')");
    expect(await changes('tt_s2')).toEqual(await changes('tt_s'));
    // An hour ago the table did not exist: Snowflake's time travel error.
    expect((await failure('select count(*) as n from tt at(offset => -3600)')).code).toBe('000707');
  });

  it('refuses stream options it does not implement by name, and unknown ones as Snowflake does', async () => {
    await exec(conn, 'create table ext_like (id int)');
    expect((await failure('create stream s_io on table ext_like insert_only = true')).message).toMatch(/INSERT_ONLY streams .* unsupported in the Outflow emulator/);
    expect((await failure('create stream s_bad on table ext_like bogus = 1')).code).toBe('001003');
    await exec(conn, 'create view v_ext as select id from ext_like');
    expect((await failure('create stream s_view on view v_ext')).message).toMatch(/streams ON VIEW is unsupported in the Outflow emulator/);
  });
});

describe('MERGE', () => {
  it('updates, deletes and inserts by the ON condition and reports the rows it changed', async () => {
    await exec(conn, 'create table target (k int, v varchar)');
    await exec(conn, "insert into target values (1, 'one'), (2, 'two'), (3, 'three')");
    await exec(
      conn,
      `merge into target t using (select * from values (1, 'uno'), (2, null), (4, 'cuatro')) s (k, v) on t.k = s.k
       when matched and s.v is null then delete
       when matched then update set v = s.v
       when not matched then insert (k, v) values (s.k, s.v)`,
    );
    expect(await exec(conn, 'select k, v from target order by k')).toEqual([
      { K: 1, V: 'uno' },
      { K: 3, V: 'three' },
      { K: 4, V: 'cuatro' },
    ]);
  });
});
