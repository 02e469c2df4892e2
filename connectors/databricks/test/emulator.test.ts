/**
 * The Databricks emulator on its own, driven through the real @databricks/sql client:
 * what a warehouse answers is what the connector's tests can rely on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DBSQLClient } from '@databricks/sql';
import { startDatabricksEmulator, type DatabricksEmulator } from '@outflow/connector-databricks/emulator';
import { connect, failure, query, type Session } from './emulator-sdk.js';

let emu: DatabricksEmulator;
let client: DBSQLClient;
let session: Session;

beforeAll(async () => {
  emu = await startDatabricksEmulator();
  client = await connect(emu);
  session = await client.openSession();
});
afterAll(async () => {
  await session.close();
  await client.close();
  await emu.stop();
});

const CDF = `TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`;

describe('sessions', () => {
  it('opens a session in the initial namespace asked for, and closes it', async () => {
    await emu.sql('CREATE SCHEMA sales');
    await emu.sql('CREATE TABLE sales.orders (id BIGINT)');
    const before = emu.sessionCount;
    const s = await client.openSession({ initialCatalog: 'main', initialSchema: 'sales' });
    expect(emu.sessionCount).toBe(before + 1);
    expect(await query(s, 'SELECT count(*) AS n FROM orders')).toEqual([{ n: 0 }]);
    await s.close();
    expect(emu.sessionCount).toBe(before);
  });

  it('refuses a session in a schema that does not exist', async () => {
    const err = await failure(client.openSession({ initialCatalog: 'main', initialSchema: 'nowhere' }));
    expect(err.message).toMatch(/\[SCHEMA_NOT_FOUND\].*`main`\.`nowhere`/);
  });

  it('refuses a wrong token with 403 and a missing one with 401', async () => {
    const wrong = await connect(emu, 'dapi-not-the-token');
    expect(await failure(wrong.openSession())).toMatchObject({ statusCode: 403 });
    await wrong.close();
    const missing = await connect(emu, '');
    expect(await failure(missing.openSession())).toMatchObject({ statusCode: 401 });
    await missing.close();
  });
});

describe('queries', () => {
  beforeAll(async () => {
    await emu.sql('CREATE TABLE typed (id BIGINT, ratio DOUBLE, price DECIMAL(10,2), name STRING, active BOOLEAN, born DATE, seen TIMESTAMP)');
    await emu.sql(
      `INSERT INTO typed SELECT i, i / 4, i * 1.25, 'n' || i, i % 2 = 0, DATE '2024-01-01' + CAST(i % 28 AS INT), TIMESTAMP '2024-01-01 00:00:00' + to_seconds(i) FROM range(1, 2501) AS r(i)`,
    );
    await emu.sql('UPDATE typed SET ratio = NULL, price = NULL, name = NULL, active = NULL, born = NULL, seen = NULL WHERE id % 7 = 0');
  });

  it('types every column as Databricks does, nulls included', async () => {
    const rows = await query(session, 'SELECT * FROM main.default.typed WHERE id IN (6, 7) ORDER BY id');
    expect(rows).toEqual([
      { id: 6, ratio: 1.5, price: 7.5, name: 'n6', active: true, born: '2024-01-07', seen: '2024-01-01 00:00:06' },
      { id: 7, ratio: null, price: null, name: null, active: null, born: null, seen: null },
    ]);
    const op = await session.executeStatement('SELECT id, price, seen FROM typed LIMIT 1');
    const schema = await op.getSchema();
    await op.close();
    expect(schema?.columns.map((c) => [c.columnName, c.typeDesc.types[0]?.primitiveEntry?.type])).toEqual([
      ['id', 4 /* BIGINT_TYPE */],
      ['price', 15 /* DECIMAL_TYPE */],
      ['seen', 8 /* TIMESTAMP_TYPE */],
    ]);
  });

  it('pages a result with FETCH_NEXT, honouring maxRows', async () => {
    const op = await session.executeStatement('SELECT id, name FROM typed ORDER BY id', { maxRows: 1000 });
    const pages: number[] = [];
    const ids: number[] = [];
    let nulls = 0;
    do {
      const page = (await op.fetchChunk({ maxRows: 1000, disableBuffering: true })) as { id: number; name: string | null }[];
      pages.push(page.length);
      for (const r of page) {
        ids.push(r.id);
        if (r.name === null) nulls++;
      }
    } while (await op.hasMoreRows());
    await op.close();
    expect(pages.filter((n) => n > 0)).toEqual([1000, 1000, 500]);
    expect(ids).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
    expect(nulls).toBe(Math.floor(2500 / 7));
  });

  it('answers an empty result with its columns', async () => {
    const op = await session.executeStatement('SELECT id, price FROM typed WHERE id < 0');
    expect(await op.fetchAll()).toEqual([]);
    expect((await op.getSchema())?.columns.map((c) => c.columnName)).toEqual(['id', 'price']);
    await op.close();
  });

  it('creates a table from a query in the session namespace, and refuses one in a missing schema', async () => {
    await query(session, 'CREATE TABLE sales.top AS SELECT id, name FROM typed WHERE id <= 3');
    expect(await query(session, 'SELECT id, name FROM main.sales.top ORDER BY id')).toEqual([
      { id: 1, name: 'n1' },
      { id: 2, name: 'n2' },
      { id: 3, name: 'n3' },
    ]);
    const err = await failure(query(session, 'CREATE TABLE nowhere.t (id BIGINT)'));
    expect(err.message).toMatch(/^\[SCHEMA_NOT_FOUND\] The schema `main`\.`nowhere` cannot be found/);
  });

  it('binds named parameters', async () => {
    expect(await query(session, 'SELECT name FROM typed WHERE id = :id', { namedParameters: { id: 12 } })).toEqual([{ name: 'n12' }]);
  });

  it('answers DML with its counts', async () => {
    await emu.sql('CREATE TABLE counted (id BIGINT, v STRING)');
    expect(await query(session, "INSERT INTO counted VALUES (1, 'a'), (2, 'b')")).toEqual([{ num_affected_rows: 2, num_inserted_rows: 2 }]);
    expect(await query(session, "UPDATE counted SET v = 'z' WHERE id = 2")).toEqual([{ num_affected_rows: 1 }]);
    expect(
      await query(session, "MERGE INTO counted t USING (SELECT 1 AS id, 'q' AS v UNION ALL SELECT 3, 'c') s ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"),
    ).toEqual([{ num_affected_rows: 2, num_updated_rows: 1, num_deleted_rows: 0, num_inserted_rows: 1 }]);
    expect(await query(session, 'DELETE FROM counted WHERE id > 1')).toEqual([{ num_affected_rows: 2 }]);
  });
});

describe('metadata', () => {
  beforeAll(async () => {
    await emu.sql('CREATE TABLE customers (id BIGINT NOT NULL, region STRING NOT NULL, email STRING, score DECIMAL(10,2), CONSTRAINT customers_pk PRIMARY KEY (region, id))');
  });

  const all = async (op: Promise<{ fetchAll(): Promise<unknown[]>; close(): Promise<unknown> }>) => {
    const o = await op;
    const rows = (await o.fetchAll()) as Record<string, unknown>[];
    await o.close();
    return rows;
  };

  it('lists catalogs, schemas and tables', async () => {
    expect((await all(session.getCatalogs())).map((r) => r['TABLE_CAT'])).toContain('main');
    expect((await all(session.getSchemas({ catalogName: 'main' }))).map((r) => r['TABLE_SCHEM'])).toEqual(expect.arrayContaining(['default', 'sales']));
    const tables = await all(session.getTables({ catalogName: 'main', schemaName: 'default', tableName: 'cust%' }));
    expect(tables.map((r) => [r['TABLE_SCHEM'], r['TABLE_NAME'], r['TABLE_TYPE']])).toEqual([['default', 'customers', 'TABLE']]);
  });

  it('describes columns with Databricks type names, and the primary key in key order', async () => {
    const columns = await all(session.getColumns({ catalogName: 'main', schemaName: 'default', tableName: 'customers' }));
    expect(columns.map((c) => [c['COLUMN_NAME'], c['TYPE_NAME'], c['NULLABLE'], c['ORDINAL_POSITION']])).toEqual([
      ['id', 'BIGINT', 0, 0],
      ['region', 'STRING', 0, 1],
      ['email', 'STRING', 1, 2],
      ['score', 'DECIMAL(10,2)', 1, 3],
    ]);
    const keys = await all(session.getPrimaryKeys({ catalogName: 'main', schemaName: 'default', tableName: 'customers' }));
    expect(keys.map((k) => [k['COLUMN_NAME'], k['KEY_SEQ'], k['PK_NAME']])).toEqual([
      ['region', 1, 'customers_pk'],
      ['id', 2, 'customers_pk'],
    ]);
  });

  it('answers SHOW CATALOGS, SCHEMAS and TABLES', async () => {
    expect(await query(session, 'SHOW CATALOGS')).toEqual([{ catalog: 'main' }]);
    expect(await query(session, "SHOW SCHEMAS IN main LIKE 'sal*'")).toEqual([{ databaseName: 'sales' }]);
    expect(await query(session, "SHOW TABLES IN main.sales LIKE 'ord*'")).toEqual([{ database: 'sales', tableName: 'orders', isTemporary: false }]);
  });

  it('answers information_schema queries for discovery', async () => {
    expect(
      await query(session, "SELECT column_name, data_type, ordinal_position FROM main.information_schema.columns WHERE table_schema = 'default' AND table_name = 'customers' ORDER BY ordinal_position"),
    ).toEqual([
      { column_name: 'id', data_type: 'BIGINT', ordinal_position: 0 },
      { column_name: 'region', data_type: 'STRING', ordinal_position: 1 },
      { column_name: 'email', data_type: 'STRING', ordinal_position: 2 },
      { column_name: 'score', data_type: 'DECIMAL', ordinal_position: 3 },
    ]);
    expect(
      await query(
        session,
        `SELECT k.column_name FROM information_schema.table_constraints c JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name
         WHERE c.table_name = 'customers' AND c.constraint_type = 'PRIMARY KEY' ORDER BY k.ordinal_position`,
      ),
    ).toEqual([{ column_name: 'region' }, { column_name: 'id' }]);
    const tables = await query(session, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'sales' ORDER BY 1");
    expect(tables).toEqual([{ table_name: 'orders' }, { table_name: 'top' }]);
  });
});

describe('change data feed', () => {
  it('gives every write a version, and table_changes its row images in commit order', async () => {
    await emu.sql(`CREATE TABLE people (id BIGINT, name STRING) ${CDF}`);
    await query(session, "INSERT INTO people VALUES (1, 'ada'), (2, 'bob')");
    await query(session, "UPDATE people SET name = 'bea' WHERE id = 2");
    await query(session, 'DELETE FROM people WHERE id = 1');
    const changes = await query(session, "SELECT id, name, _change_type, _commit_version FROM table_changes('people', 1)");
    expect(changes).toEqual([
      { id: 1, name: 'ada', _change_type: 'insert', _commit_version: 1 },
      { id: 2, name: 'bob', _change_type: 'insert', _commit_version: 1 },
      { id: 2, name: 'bob', _change_type: 'update_preimage', _commit_version: 2 },
      { id: 2, name: 'bea', _change_type: 'update_postimage', _commit_version: 2 },
      { id: 1, name: 'ada', _change_type: 'delete', _commit_version: 3 },
    ]);
    expect(await query(session, "SELECT _change_type FROM table_changes('main.default.people', 2, 2)")).toEqual([
      { _change_type: 'update_preimage' },
      { _change_type: 'update_postimage' },
    ]);
    // Every row an UPDATE matches has its images, whether or not its values change.
    await query(session, 'UPDATE people SET name = name WHERE id = 2');
    expect(await query(session, "SELECT _change_type FROM table_changes('people', 4)")).toEqual([
      { _change_type: 'update_preimage' },
      { _change_type: 'update_postimage' },
    ]);
    const [stamp] = await query(session, "SELECT typeof(_commit_timestamp) AS t FROM table_changes('people', 3)");
    expect(stamp).toEqual({ t: 'TIMESTAMP' });
  });

  it('takes a commit timestamp from DESCRIBE HISTORY as a start', async () => {
    const history = await query(session, 'DESCRIBE HISTORY people');
    const second = history.find((h) => h['version'] === 2)!['timestamp'] as string;
    const changes = await query(session, `SELECT DISTINCT _commit_version FROM table_changes('people', '${second}') ORDER BY 1`);
    expect(changes).toEqual([{ _commit_version: 2 }, { _commit_version: 3 }, { _commit_version: 4 }]);
  });

  it('records a MERGE as inserts and update images', async () => {
    await emu.sql(`CREATE TABLE stock (sku STRING, qty BIGINT) ${CDF}`);
    await emu.sql("INSERT INTO stock VALUES ('a', 1), ('b', 2)");
    const [counts] = await query(
      session,
      "MERGE INTO stock AS t USING (SELECT 'b' AS sku, 5 AS qty UNION ALL SELECT 'c', 7) AS s ON t.sku = s.sku WHEN MATCHED THEN UPDATE SET qty = s.qty WHEN NOT MATCHED THEN INSERT (sku, qty) VALUES (s.sku, s.qty)",
    );
    expect(counts).toEqual({ num_affected_rows: 2, num_updated_rows: 1, num_deleted_rows: 0, num_inserted_rows: 1 });
    const changes = await query(session, "SELECT sku, qty, _change_type FROM table_changes('stock', 2) ORDER BY _change_type, sku");
    expect(changes).toEqual([
      { sku: 'c', qty: 7, _change_type: 'insert' },
      { sku: 'b', qty: 5, _change_type: 'update_postimage' },
      { sku: 'b', qty: 2, _change_type: 'update_preimage' },
    ]);
  });

  it('lists versions newest first in DESCRIBE HISTORY', async () => {
    const history = await query(session, 'DESCRIBE HISTORY people');
    expect(history.map((h) => [h['version'], h['operation']])).toEqual([
      [4, 'UPDATE'],
      [3, 'DELETE'],
      [2, 'UPDATE'],
      [1, 'WRITE'],
      [0, 'CREATE TABLE'],
    ]);
    expect((await query(session, 'DESCRIBE HISTORY main.default.people LIMIT 1')).map((h) => h['version'])).toEqual([4]);
  });

  it('records changes only after the version that turned the feed on', async () => {
    await emu.sql('CREATE TABLE late (id BIGINT)');
    await emu.sql('INSERT INTO late VALUES (1)');
    await emu.sql("ALTER TABLE late SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')");
    await emu.sql('INSERT INTO late VALUES (2)');
    expect(await query(session, "SELECT id, _commit_version FROM table_changes('late', 3)")).toEqual([{ id: 2, _commit_version: 3 }]);
    const err = await failure(query(session, "SELECT * FROM table_changes('late', 1)"));
    expect(err.message).toMatch(/^\[DELTA_MISSING_CHANGE_DATA\] .*range \[1 , 3\].*not recorded for version \[1\]/);
    expect(err.sqlState).toBe('KD002');
  });
});

describe('refusals', () => {
  it('refuses table_changes on a table without the change data feed', async () => {
    await emu.sql('CREATE TABLE plain (id BIGINT)');
    await emu.sql('INSERT INTO plain VALUES (1)');
    const err = await failure(query(session, "SELECT * FROM table_changes('plain', 0)"));
    expect(err.message).toMatch(/^\[DELTA_MISSING_CHANGE_DATA\] .*not recorded for version \[0\]/);
  });

  it('refuses a start version after the latest', async () => {
    const err = await failure(query(session, "SELECT * FROM table_changes('people', 9)"));
    expect(err.message).toMatch(/Provided Start version\(9\) for reading change data is invalid\. Start version cannot be greater than the latest version of the table\(4\)/);
  });

  it('refuses a start version older than retention keeps', async () => {
    const kept = await startDatabricksEmulator({ retention: { versions: 2 } });
    try {
      await kept.sql(`CREATE TABLE t (id BIGINT) ${CDF}`);
      for (let i = 1; i <= 4; i++) await kept.sql(`INSERT INTO t VALUES (${i})`);
      const c = await connect(kept);
      const s = await c.openSession();
      const err = await failure(query(s, "SELECT * FROM table_changes('t', 1)"));
      expect(err.message).toBe('[DELTA_VERSION_NOT_FOUND] Cannot time travel Delta table to version 1. Available versions: [3, 4].');
      expect(await query(s, "SELECT id FROM table_changes('t', 3)")).toEqual([{ id: 3 }, { id: 4 }]);
      expect((await query(s, 'DESCRIBE HISTORY t')).map((h) => h['version'])).toEqual([4, 3]);
      await s.close();
      await c.close();
    } finally {
      await kept.stop();
    }
  });

  it('refuses options it could not honour, naming them', async () => {
    await expect(startDatabricksEmulator({ retention: { versions: 0 } })).rejects.toThrow(/retention\.versions must be a whole number of versions, 1 or more \(got 0\)/);
    await expect(startDatabricksEmulator({ token: '' })).rejects.toThrow(/`token` must be a non-empty string/);
  });

  it('names unsupported statements and missing tables instead of failing obscurely', async () => {
    const optimize = await failure(query(session, 'OPTIMIZE people'));
    expect(optimize.message).toMatch(/^\[UNSUPPORTED_FEATURE\] .*OPTIMIZE/);
    expect(optimize.sqlState).toBe('0A000');
    const missing = await failure(query(session, 'SELECT * FROM main.default.nowhere'));
    expect(missing.message).toMatch(/^\[TABLE_OR_VIEW_NOT_FOUND\]/);
    expect(missing.sqlState).toBe('42P01');
    const syntax = await failure(query(session, 'SELEC 1'));
    expect(syntax.message).toBe("[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'.");
    expect(syntax.sqlState).toBe('42601');
  });
});

describe('the statements a pushed-down diff runs', () => {
  it('creates tables with STRUCT columns, fingerprints rows with md5(to_json(named_struct(…))) and merges several clauses in one commit', async () => {
    await query(session, 'CREATE SCHEMA IF NOT EXISTS pd');
    await query(session, 'CREATE TABLE IF NOT EXISTS pd.people (id INT, tags STRUCT<a: STRING, b: ARRAY<INT>>) USING DELTA');
    await query(session, `INSERT INTO pd.people VALUES (1, named_struct('a', 'x', 'b', array(1, 2))), (2, NULL)`);
    const fps = await query(session, `SELECT id, md5(to_json(named_struct('id', id, 'tags', tags))) AS fp, to_json(array(CAST(id AS STRING), 'k')) AS k FROM pd.people ORDER BY id`);
    expect(fps.map((r) => [r['id'], String(r['fp']).length, r['k']])).toEqual([
      [1, 32, '["1","k"]'],
      [2, 32, '["2","k"]'],
    ]);
    expect(fps[0]!['fp']).not.toBe(fps[1]!['fp']);

    await query(session, 'CREATE TABLE pd.state (key STRING NOT NULL, fp STRING) USING DELTA');
    await query(session, `INSERT INTO pd.state VALUES ('1', 'old'), ('2', 'gone')`);
    const merged = await query(
      session,
      `MERGE INTO pd.state AS d USING (VALUES ('1', 'delivered', 'new'), ('2', 'deleted', CAST(NULL AS STRING)), ('3', 'delivered', 'f3')) AS a(key, kind, fp) ON d.key = a.key
       WHEN MATCHED AND a.kind = 'deleted' THEN DELETE
       WHEN MATCHED AND a.kind = 'delivered' THEN UPDATE SET fp = a.fp
       WHEN NOT MATCHED AND a.kind = 'delivered' THEN INSERT (key, fp) VALUES (a.key, a.fp)`,
    );
    expect(merged).toEqual([{ num_affected_rows: 3, num_updated_rows: 1, num_deleted_rows: 1, num_inserted_rows: 1 }]);
    expect(await query(session, 'SELECT key, fp FROM pd.state ORDER BY key')).toEqual([
      { key: '1', fp: 'new' },
      { key: '3', fp: 'f3' },
    ]);
    const history = await query(session, 'DESCRIBE HISTORY pd.state LIMIT 1');
    expect(history[0]!['operation']).toBe('MERGE');
  });
});

describe('materialized views and streaming tables', () => {
  it('fills a materialized view at creation and at each REFRESH, and lists it as MATERIALIZED_VIEW', async () => {
    await query(session, 'CREATE TABLE mv_src (k STRING, n INT)');
    await query(session, `INSERT INTO mv_src VALUES ('a', 1), ('a', 2)`);
    await query(session, 'CREATE MATERIALIZED VIEW mv_sum AS SELECT k, sum(n) AS total FROM mv_src GROUP BY k');
    await query(session, `INSERT INTO mv_src VALUES ('b', 5)`);
    expect(await query(session, 'SELECT k, total FROM mv_sum ORDER BY k')).toEqual([{ k: 'a', total: 3 }]);
    await query(session, 'REFRESH MATERIALIZED VIEW mv_sum');
    expect(await query(session, 'SELECT k, total FROM mv_sum ORDER BY k')).toEqual([
      { k: 'a', total: 3 },
      { k: 'b', total: 5 },
    ]);
    expect(await query(session, `SELECT table_type FROM information_schema.tables WHERE table_name IN ('mv_src', 'mv_sum') ORDER BY table_name`)).toEqual([
      { table_type: 'MANAGED' },
      { table_type: 'MATERIALIZED_VIEW' },
    ]);
    expect((await failure(query(session, `INSERT INTO mv_sum VALUES ('c', 1)`))).message).toMatch(/^\[UNSUPPORTED_FEATURE\] .*INSERT into a materialized view/);
    expect((await failure(query(session, 'SELECT * FROM table_changes(\'mv_sum\', 0)'))).message).toMatch(/^\[UNSUPPORTED_FEATURE\] .*table_changes on a materialized view/);
    expect((await failure(query(session, 'CREATE OR REPLACE MATERIALIZED VIEW mv_sum AS SELECT 1 AS k'))).message).toMatch(/^\[UNSUPPORTED_FEATURE\] .*CREATE OR REPLACE MATERIALIZED/);
  });

  it('appends to a streaming table at each REFRESH only the rows its STREAM source gained, recording them in its change data feed', async () => {
    await query(session, 'CREATE TABLE st_src (id INT, name STRING)');
    await query(session, `INSERT INTO st_src VALUES (1, 'a')`);
    await query(session, `CREATE STREAMING TABLE st ${CDF} AS SELECT id, upper(name) AS name FROM STREAM(st_src)`);
    await query(session, `INSERT INTO st_src VALUES (2, 'b')`);
    await query(session, 'REFRESH STREAMING TABLE st');
    await query(session, 'REFRESH STREAMING TABLE st');
    expect(await query(session, 'SELECT id, name FROM st ORDER BY id')).toEqual([
      { id: 1, name: 'A' },
      { id: 2, name: 'B' },
    ]);
    const changes = await query(session, `SELECT id, _change_type, _commit_version FROM table_changes('st', 0) ORDER BY _commit_version, id`);
    expect(changes.map((c) => [c['id'], c['_change_type'], c['_commit_version']])).toEqual([
      [1, 'insert', 1],
      [2, 'insert', 2],
    ]);
    expect(await query(session, `SELECT table_type FROM information_schema.tables WHERE table_name = 'st'`)).toEqual([{ table_type: 'STREAMING_TABLE' }]);
    expect((await failure(query(session, 'CREATE OR REFRESH STREAMING TABLE st AS SELECT * FROM STREAM(st_src)'))).message).toMatch(/^\[UNSUPPORTED_FEATURE\] .*CREATE OR REFRESH STREAMING TABLE/);
    expect((await failure(query(session, 'CREATE STREAMING TABLE st2 AS SELECT * FROM st_src'))).message).toMatch(/^\[UNSUPPORTED_FEATURE\] .*STREAM/);
  });
});

describe('faults', () => {
  it('answers 503 with Retry-After; the SDK retries the calls it may repeat', async () => {
    emu.setFaults({ failRequests: 1 });
    const op = await session.getCatalogs();
    expect((await op.fetchAll()).length).toBeGreaterThan(0);
    await op.close();
    emu.setFaults({ failRequests: 1 });
    expect(await failure(session.executeStatement('SELECT 1'))).toMatchObject({ statusCode: 503 });
    emu.setFaults({});
  });

  it('throttles with 429 and Retry-After', async () => {
    emu.setFaults({ status429Every: 1 });
    const answer = await new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
      const req = request(
        { host: emu.host, port: emu.port, path: emu.path, method: 'POST', ca: emu.caCert, headers: { authorization: `Bearer ${emu.token}`, 'content-type': 'application/x-thrift' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    emu.setFaults({});
    expect(answer).toEqual({ status: 429, retryAfter: '1' });
  });

  it('runs a statement whose answer it then loses', async () => {
    await emu.sql('CREATE TABLE lost (id BIGINT)');
    emu.setFaults({ loseAnswers: 1 });
    await failure(session.executeStatement('INSERT INTO lost VALUES (1)'));
    emu.setFaults({});
    expect(await emu.sql('SELECT id FROM lost')).toEqual([{ id: 1n }]);
    expect(emu.requests.filter((r) => r.statement === 'INSERT INTO lost VALUES (1)')).toHaveLength(1);
  });
});

describe('state under a folder', () => {
  it('keeps tables, versions and changes across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outflow-databricks-'));
    try {
      const first = await startDatabricksEmulator({ dir });
      await first.sql(`CREATE TABLE kept (id BIGINT) ${CDF}`);
      await first.sql('INSERT INTO kept VALUES (1)');
      await first.stop();
      const second = await startDatabricksEmulator({ dir });
      await expect(startDatabricksEmulator({ dir })).rejects.toThrow(/databricks emulator could not open its data in/);
      await second.sql('INSERT INTO kept VALUES (2)');
      expect(await second.sql("SELECT id, _commit_version FROM table_changes('kept', 0)")).toEqual([
        { id: 1n, _commit_version: 1n },
        { id: 2n, _commit_version: 2n },
      ]);
      await second.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
