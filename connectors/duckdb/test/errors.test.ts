import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import duckdb, { type DuckDBConfig } from '@outflow/connector-duckdb';
import { isOutflowError, type Model, type RowBatch } from '@outflow/core';
import { createFixtures, type Fixtures } from './fixtures.js';
import { context, otherProcess, readRows, stop } from './helpers.js';

const source = duckdb.source!;
let f: Fixtures;
const children: ChildProcess[] = [];

beforeAll(async () => {
  f = await createFixtures();
});

afterEach(async () => {
  await Promise.all(children.splice(0).map(stop));
});

const model = (m: Partial<Model>): Model => ({ primaryKey: ['id'], ...m });

async function readError(m: Model, config: Partial<DuckDBConfig> = { path: f.db }, signal?: AbortSignal): Promise<unknown> {
  return readRows(source.read(context(config, signal), m)).then(
    () => new Error('the read succeeded'),
    (e: unknown) => e,
  );
}

describe('invalid models', () => {
  it('rejects a model with none, or more than one, of table, sql and file', async () => {
    const none = await readError(model({}));
    expect(isOutflowError(none, 'OUTFLOW_CONFIG_INVALID'), String(none)).toBe(true);
    expect((none as Error).message).toMatch(/exactly one of `table`, `sql` or `file`, but none was given/);

    const two = await readError(model({ table: 'people', sql: 'SELECT 1 AS id' }));
    expect(isOutflowError(two, 'OUTFLOW_CONFIG_INVALID'), String(two)).toBe(true);
    expect((two as Error).message).toMatch(/`table` and `sql` were given/);

    const columns = await source.columns!(context({ path: f.db }), model({ sql: 'SELECT 1', file: f.csv })).catch((e: unknown) => e);
    expect(isOutflowError(columns, 'OUTFLOW_CONFIG_INVALID'), String(columns)).toBe(true);
  });

  it('rejects a file that is not CSV, TSV or Parquet, and a malformed table name', async () => {
    const json = await readError(model({ file: 'people.json' }), {});
    expect(isOutflowError(json, 'OUTFLOW_CONFIG_INVALID'), String(json)).toBe(true);
    expect((json as Error).message).toContain('.csv, .csv.gz, .tsv, .tsv.gz or .parquet');

    for (const table of ['a..b', '"unclosed', 'a.b.c.d']) {
      const err = await readError(model({ table }));
      expect(isOutflowError(err, 'OUTFLOW_CONFIG_INVALID'), `${table}: ${String(err)}`).toBe(true);
    }
  });

  it('refuses SQL that is not one query, so a writable database is never changed', async () => {
    const writable = { path: f.db, readOnly: false };
    for (const sql of ['DELETE FROM numbers', 'SELECT 1 AS id; DROP TABLE numbers', 'CREATE TABLE x AS SELECT 1 AS id']) {
      const err = await readError(model({ sql }), writable);
      expect(isOutflowError(err, 'OUTFLOW_CONFIG_INVALID'), `${sql}: ${String(err)}`).toBe(true);
    }
    const rows = await readRows(source.read(context(writable), model({ sql: 'SELECT count(*) AS n FROM numbers' })));
    expect(rows).toEqual([{ n: 25_000 }]);
  });

  it('refuses a query whose columns share a name', async () => {
    const err = await readError(model({ sql: 'SELECT p.id, a.id FROM people p JOIN accounts a USING (id)' }));
    expect(isOutflowError(err, 'OUTFLOW_CONFIG_INVALID'), String(err)).toBe(true);
    expect((err as Error).message).toContain('"id" more than once');
  });
});

describe('SQL errors', () => {
  it("surfaces a binder error as OUTFLOW_SOURCE naming the model and DuckDB's message", async () => {
    const err = await readError(model({ sql: 'SELECT id, no_such_column FROM people' }));
    expect(isOutflowError(err, 'OUTFLOW_SOURCE'), String(err)).toBe(true);
    expect((err as Error).message).toContain('sql "SELECT id, no_such_column FROM people"');
    expect((err as Error).message).toContain('Referenced column "no_such_column" not found');
  });

  it('surfaces a syntax error and a missing table the same way', async () => {
    const syntax = await readError(model({ sql: 'SELEC id FROM people' }));
    expect(isOutflowError(syntax, 'OUTFLOW_SOURCE'), String(syntax)).toBe(true);
    expect((syntax as Error).message).toMatch(/syntax error at or near "SELEC"/);

    const table = await readError(model({ table: 'crm.missing' }));
    expect(isOutflowError(table, 'OUTFLOW_SOURCE'), String(table)).toBe(true);
    expect((table as Error).message).toContain('table "crm.missing"');
  });

  it('surfaces an error raised while rows stream, after earlier batches were read', async () => {
    const sql = `SELECT id, CASE WHEN id < 20000 THEN id ELSE CAST('not a number ' || id AS INTEGER) END AS n FROM numbers ORDER BY id`;
    const seen: RowBatch[] = [];
    const err = await (async () => {
      for await (const batch of source.read(context({ path: f.db }), model({ sql }))) seen.push(batch);
    })().then(
      () => new Error('the read succeeded'),
      (e: unknown) => e,
    );
    expect(isOutflowError(err, 'OUTFLOW_SOURCE'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/Could not convert string 'not a number \d+' to INT32/);
    expect(seen.flatMap((b) => b.rows).length).toBeLessThan(20_000);
  });

  it('reports a missing data file as OUTFLOW_SOURCE naming it', async () => {
    const err = await readError(model({ file: `${f.dir}/absent.parquet` }), {});
    expect(isOutflowError(err, 'OUTFLOW_SOURCE'), String(err)).toBe(true);
    expect((err as Error).message).toContain('absent.parquet');
  });
});

describe('abort', () => {
  it('stops between batches with OUTFLOW_ABORTED when the signal aborts', async () => {
    const ac = new AbortController();
    const batches = source.read(context({ path: f.db }, ac.signal), model({ table: 'numbers' }))[Symbol.asyncIterator]();
    const first = await batches.next();
    expect(first.done).toBe(false);
    ac.abort();
    const err = await batches.next().catch((e: unknown) => e);
    expect(isOutflowError(err, 'OUTFLOW_ABORTED'), String(err)).toBe(true);
    expect((err as Error).message).toContain('table "numbers"');
  });

  it('interrupts a long-running query rather than waiting for it', async () => {
    const ac = new AbortController();
    // Without an interrupt this query would run for hours, so the test would time out.
    const sql = 'SELECT sum(hash(i)) AS h, 1 AS id FROM range(1000000000000) t(i)';
    const pending = readError(model({ sql }), { path: f.db }, ac.signal);
    setTimeout(() => ac.abort(), 200);
    const err = await pending;
    expect(isOutflowError(err, 'OUTFLOW_ABORTED'), String(err)).toBe(true);
  });

  it('does not start reading when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await readError(model({ table: 'numbers' }), { path: f.db }, ac.signal);
    expect(isOutflowError(err, 'OUTFLOW_ABORTED'), String(err)).toBe(true);
  });
});

describe('the database file', () => {
  it('is released when the consumer stops early, so a writer can open it again', async () => {
    const batches = source.read(context({ path: f.db }), model({ table: 'numbers' }))[Symbol.asyncIterator]();
    await batches.next();

    const whileReading = await otherProcess(f.db);
    children.push(whileReading.child);
    expect(whileReading.error).toMatch(/lock/i);

    await batches.return!(undefined);
    const afterwards = await otherProcess(f.db);
    children.push(afterwards.child);
    expect(afterwards.error).toBeUndefined();
  });

  it('cannot be read while another process writes it, and the error says so', async () => {
    const writer = await otherProcess(f.db);
    children.push(writer.child);
    expect(writer.error).toBeUndefined();

    const err = await readError(model({ table: 'numbers' }));
    expect(isOutflowError(err, 'OUTFLOW_SOURCE'), String(err)).toBe(true);
    expect((err as Error).message).toContain(`"${f.db}" is open for writing in another process`);
    expect((err as { retryable: boolean }).retryable).toBe(true);

    const checkErr = await source.check(context({ path: f.db })).catch((e: unknown) => e);
    expect(isOutflowError(checkErr, 'OUTFLOW_CHECK_FAILED'), String(checkErr)).toBe(true);

    // A pushed-down diff names the warehouse file too, not its own diff state.
    const diffErr = await duckdb.source!.diff!.open(context({ path: f.db }), model({ table: 'numbers' }), { sync: 'locked', columns: null, readOnly: false }).catch((e: unknown) => e);
    expect(isOutflowError(diffErr, 'OUTFLOW_SOURCE'), String(diffErr)).toBe(true);
    expect((diffErr as Error).message).toContain(`"${f.db}" is open for writing in another process`);
    expect((diffErr as { retryable: boolean }).retryable).toBe(true);
  });

  it('can be read by several processes at once when all open it read-only', async () => {
    const reader = await otherProcess(f.db, true);
    children.push(reader.child);
    expect(reader.error).toBeUndefined();
    expect(await readRows(source.read(context({ path: f.db }), model({ table: 'accounts' })))).toHaveLength(2);
  });
});
