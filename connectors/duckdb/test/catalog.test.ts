import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import duckdb, { configSchema } from '@outflow/connector-duckdb';
import { isOutflowError, type Model } from '@outflow/core';
import { createFixtures, type Fixtures } from './fixtures.js';
import { context } from './helpers.js';

const source = duckdb.source!;
let f: Fixtures;

beforeAll(async () => {
  f = await createFixtures();
});

const model = (m: Partial<Model>): Model => ({ primaryKey: ['id'], ...m });

describe('manifest', () => {
  it('declares its name, versions and a documented, closed config schema', () => {
    expect(duckdb.name).toBe('duckdb');
    expect(duckdb.version).toBe('1.0.0');
    // The core range is the package's peer dependency, which the runner checks when it loads it.
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { peerDependencies: Record<string, string> };
    expect(pkg.peerDependencies['@outflow/core']).toBe('^1.0.0');
    expect(duckdb.config.additionalProperties).toBe(false);
    const props = configSchema.properties as Record<string, { description?: string }>;
    expect(Object.keys(props).sort()).toEqual(['memoryLimit', 'path', 'readOnly', 'threads']);
    for (const [name, prop] of Object.entries(props)) expect(prop.description?.length, name).toBeGreaterThan(20);
    expect(configSchema.properties.readOnly.default).toBe(true);
  });
});

describe('check', () => {
  it('passes for a DuckDB file, with threads and a memory limit', async () => {
    await expect(source.check(context({ path: f.db, threads: 1, memoryLimit: '256MB' }))).resolves.toBeUndefined();
  });

  it('passes for an in-memory database', async () => {
    await expect(source.check(context({}))).resolves.toBeUndefined();
  });

  it('fails with OUTFLOW_CHECK_FAILED naming a missing file, and creates nothing', async () => {
    const missing = join(f.dir, 'nope.duckdb');
    for (const readOnly of [true, false]) {
      const err = await source.check(context({ path: missing, readOnly })).catch((e: unknown) => e);
      expect(isOutflowError(err, 'OUTFLOW_CHECK_FAILED'), String(err)).toBe(true);
      expect((err as Error).message).toContain(missing);
      expect((err as Error).message).toContain('does not exist');
    }
    await expect(source.check(context({ path: missing, readOnly: false }))).rejects.toThrow(/does not exist/);
  });

  it('fails with OUTFLOW_CHECK_FAILED for a folder or a file that is not a DuckDB database', async () => {
    const folder = join(f.dir, 'a-folder');
    mkdirSync(folder);
    const text = join(f.dir, 'notes.duckdb');
    writeFileSync(text, 'these are not the bytes you are looking for\n'.repeat(200));
    for (const path of [folder, text]) {
      const err = await source.check(context({ path })).catch((e: unknown) => e);
      expect(isOutflowError(err, 'OUTFLOW_CHECK_FAILED'), String(err)).toBe(true);
      expect((err as Error).message).toContain(path);
    }
  });
});

describe('discover', () => {
  it('lists tables and views with column types, nullability and primary keys, and no internal schemas', async () => {
    const { tables } = await source.discover(context({ path: f.db }));
    expect(tables.map((t) => `${t.schema}.${t.name}`).sort()).toEqual([
      'crm.Deal Book',
      'main.accounts',
      'main.active_people',
      'main.numbers',
      'main.people',
    ]);
    const get = (name: string) => tables.find((t) => t.name === name)!;
    expect(get('accounts')).toEqual({
      schema: 'main',
      name: 'accounts',
      columns: [
        { name: 'region', type: 'VARCHAR', nullable: false },
        { name: 'id', type: 'INTEGER', nullable: false },
        { name: 'name', type: 'VARCHAR', nullable: false },
      ],
      primaryKey: ['region', 'id'],
    });
    expect(get('Deal Book').primaryKey).toEqual(['deal_id']);
    expect(get('active_people')).toEqual({
      schema: 'main',
      name: 'active_people',
      columns: [
        { name: 'id', type: 'BIGINT', nullable: true },
        { name: 'name', type: 'VARCHAR', nullable: true },
      ],
    });
    const people = get('people');
    expect(people.primaryKey).toBeUndefined();
    expect(people.columns.map((c) => [c.name, c.type])).toEqual([
      ['id', 'BIGINT'],
      ['big', 'BIGINT'],
      ['ratio', 'DOUBLE'],
      ['price', 'DECIMAL(18,2)'],
      ['name', 'VARCHAR'],
      ['active', 'BOOLEAN'],
      ['born', 'DATE'],
      ['seen', 'TIMESTAMP'],
      ['seen_tz', 'TIMESTAMP WITH TIME ZONE'],
      ['tags', 'VARCHAR[]'],
      ['address', 'STRUCT(city VARCHAR, zip INTEGER)'],
      ['attrs', 'MAP(VARCHAR, INTEGER)'],
      ['payload', 'VARCHAR'],
      ['huge', 'HUGEINT'],
      ['exact', 'DECIMAL(38,2)'],
      ['photo', 'BLOB'],
    ]);
  });

  it('finds nothing in an empty in-memory database', async () => {
    expect(await source.discover(context({}))).toEqual({ tables: [] });
  });
});

describe('columns', () => {
  it("lists a table's columns with declared nullability", async () => {
    expect(await source.columns!(context({ path: f.db }), model({ table: 'accounts' }))).toEqual([
      { name: 'region', type: 'VARCHAR', nullable: false },
      { name: 'id', type: 'INTEGER', nullable: false },
      { name: 'name', type: 'VARCHAR', nullable: false },
    ]);
  });

  it("lists a SQL model's and a file model's columns", async () => {
    expect(
      await source.columns!(
        context({ path: f.db }),
        model({ sql: 'SELECT id, price * 2 AS doubled, tags[1] AS first_tag FROM people -- a comment\n;' }),
      ),
    ).toEqual([
      { name: 'id', type: 'BIGINT', nullable: true },
      { name: 'doubled', type: 'DECIMAL(18,2)', nullable: true },
      { name: 'first_tag', type: 'VARCHAR', nullable: true },
    ]);
    expect(await source.columns!(context({}), model({ file: f.csv }))).toEqual([
      { name: 'id', type: 'BIGINT', nullable: true },
      { name: 'name', type: 'VARCHAR', nullable: true },
      { name: 'price', type: 'DOUBLE', nullable: true },
      { name: 'born', type: 'DATE', nullable: true },
    ]);
  });

  it('reports a model that does not bind as OUTFLOW_SOURCE', async () => {
    const err = await source.columns!(context({ path: f.db }), model({ table: 'missing_table' })).catch((e: unknown) => e);
    expect(isOutflowError(err, 'OUTFLOW_SOURCE'), String(err)).toBe(true);
    expect((err as Error).message).toContain('table "missing_table"');
    expect((err as Error).message).toMatch(/Table with name missing_table does not exist/);
  });
});
