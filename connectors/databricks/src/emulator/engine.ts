/**
 * Runs Databricks SQL on DuckDB. Statements the emulator knows are read here (CREATE / DROP
 * / ALTER TABLE, CREATE SCHEMA and CATALOG, CREATE and REFRESH MATERIALIZED VIEW / STREAMING
 * TABLE, INSERT / UPDATE / DELETE / MERGE, DESCRIBE HISTORY, SHOW CATALOGS / SCHEMAS /
 * TABLES, USE, queries); other statements are refused
 * by name, and text that is no statement at all as a syntax error. Queries and DML bodies are
 * printed as DuckDB SQL by {@link translate}; every write commits a table version
 * (delta.ts), recording row images when the table has the change data feed on.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { DuckDBResultReader, DuckDBType, DuckDBValue } from '@duckdb/node-api';
import type { TSparkParameter } from '@databricks/sql/thrift/TCLIService_types.js';
import { informationSchemaView, showCatalogsSql, showSchemasSql, showTablesSql } from './catalog-views.js';
import {
  applyRetention,
  allTables,
  attachCatalog,
  catalogs,
  cdfEnabled,
  cdfRangeErrors,
  changeTable,
  columnsOf,
  dropTable,
  findTable,
  firstVersionWithoutChanges,
  historySql,
  nextCommit,
  qualified,
  recordCommit,
  registerTable,
  requireTable,
  setDefinition,
  setProperties,
  duckCatalog,
  timestampLiteral,
  versionAt,
  type DeltaTable,
  type Definition,
  type Run,
  type TableName,
} from './delta.js';
import { Duck } from './duck.js';
import { bindParameters } from './parameters.js';
import { carriedAsJson, carriedAsText } from './rowset.js';
import { DatabricksSqlError, backticked, fromDuckDb, schemaNotFound, syntaxError, tableNotFound, unsupported } from './errors.js';
import { Cursor, isName, isPunct, isWord, literal, quote, render, tokenize, type Token } from './sql.js';

/** A row as {@link Engine.admin} answers it: column name to a JS value (BIGINT as bigint). */
export type Row = Record<string, unknown>;

/** The catalog and schema a session's unqualified names resolve in. */
export interface Namespace {
  catalog: string;
  schema: string;
}

/** A statement's result: its columns and values, column by column. */
export interface Result {
  names: string[];
  types: DuckDBType[];
  /** `columns[c][r]`. */
  columns: DuckDBValue[][];
  rowCount: number;
}

const EMPTY: Result = { names: [], types: [], columns: [], rowCount: 0 };

/**
 * Runs a query for the wire. Columns that travel as text (DECIMAL, DATE, TIMESTAMP …) are
 * rendered by DuckDB, many times faster than value by value in JS; the result keeps their
 * types for the schema.
 */
async function runQuery(run: Run, sql: string): Promise<Result> {
  const shape = await run(`SELECT * FROM (${sql}) LIMIT 0`);
  const types = shape.columnTypes();
  if (!types.some(carriedAsText)) return toResult(await run(sql));
  const names = shape.columnNames();
  const rendered = (i: number) => (carriedAsJson(types[i]!) ? `CAST(to_json(#${i + 1}) AS VARCHAR)` : carriedAsText(types[i]!) ? `CAST(#${i + 1} AS VARCHAR)` : `#${i + 1}`);
  const select = names.map((name, i) => `${rendered(i)} AS ${quote(name)}`);
  const r = await run(`SELECT ${select.join(', ')} FROM (${sql})`);
  return { names, types, columns: valuesOf(r), rowCount: r.currentRowCount };
}

/** Every column's values; a result without rows has an empty list per column. */
const valuesOf = (r: DuckDBResultReader): DuckDBValue[][] => {
  const columns = r.getColumns();
  return r.columnNames().map((_, i) => columns[i] ?? []);
};

const toResult = (r: DuckDBResultReader): Result => ({
  names: r.columnNames(),
  types: r.columnTypes(),
  columns: valuesOf(r),
  rowCount: r.currentRowCount,
});

/** Words after a relation that start the next clause, so an information_schema view gets its own name as alias. */
const CLAUSE_WORDS = new Set(['WHERE', 'JOIN', 'LEFT', 'RIGHT', 'INNER', 'FULL', 'CROSS', 'ON', 'ORDER', 'GROUP', 'LIMIT', 'UNION', 'HAVING', 'WINDOW', 'QUALIFY', 'EXCEPT', 'INTERSECT', 'USING', 'NATURAL', 'LATERAL', 'OFFSET']);
/** Words that start a Databricks SQL statement: those the emulator lacks are refused as unsupported, anything else is a syntax error. */
const STATEMENT_WORDS = new Set([
  'ALTER', 'ANALYZE', 'CACHE', 'CLEAR', 'COMMENT', 'CONVERT', 'COPY', 'CREATE', 'DELETE', 'DESC', 'DESCRIBE', 'DROP', 'EXPLAIN', 'FSCK', 'GRANT',
  'INSERT', 'LIST', 'MERGE', 'MSCK', 'OPTIMIZE', 'REFRESH', 'REORG', 'REPAIR', 'RESET', 'RESTORE', 'REVOKE', 'SET', 'SHOW', 'SYNC', 'TRUNCATE',
  'UNCACHE', 'UNDROP', 'UPDATE', 'USE', 'VACUUM',
]);
/**
 * Words Databricks lets name a column but DuckDB's grammar reserves: a bare one is quoted
 * (unless it calls a function).
 */
const DUCKDB_RESERVED = new Set([
  'ANALYSE', 'ASOF', 'ASYMMETRIC', 'AT', 'AUTHORIZATION', 'COLLATION', 'COLUMNS', 'CONCURRENTLY', 'DEFERRABLE', 'DESCRIBE', 'DO', 'FREEZE',
  'INITIALLY', 'LAMBDA', 'PIVOT_LONGER', 'PIVOT_WIDER', 'PLACING', 'POSITIONAL', 'RETURNING', 'SHOW', 'SUMMARIZE', 'SYMMETRIC', 'UNPACK',
  'VARIADIC', 'VERBOSE',
]);
/** Databricks type names DuckDB spells differently. */
const TYPE_WORDS: Record<string, string> = { TIMESTAMP_NTZ: 'TIMESTAMP', TIMESTAMP_LTZ: 'TIMESTAMP', LONG: 'BIGINT', SHORT: 'SMALLINT', BYTE: 'TINYINT', BINARY: 'BLOB', STRING: 'VARCHAR' };

/** The data folders engines of this process have open. */
const DIRS_IN_USE = new Set<string>();

export interface EngineOptions {
  /** A folder for the catalogs' DuckDB files; memory when absent. */
  dir?: string;
  /** The catalog and schema `admin()` statements run in. */
  namespace: Namespace;
  /** How many newest versions each table keeps; unlimited when absent. */
  keepVersions?: number;
}

export class Engine {
  private keepVersions: number | undefined;

  private constructor(
    private readonly duck: Duck,
    private readonly options: EngineOptions,
  ) {
    this.keepVersions = options.keepVersions;
  }

  static async open(options: EngineOptions): Promise<Engine> {
    // DuckDB's file locks hold between processes only: two engines of one process on the
    // same files would each write them.
    const dir = options.dir === undefined ? undefined : resolvePath(options.dir);
    if (dir !== undefined && DIRS_IN_USE.has(dir)) throw new Error('the folder is in use by another emulator of this process');
    if (dir !== undefined) DIRS_IN_USE.add(dir);
    const duck = await Duck.open().catch((err: unknown) => {
      if (dir !== undefined) DIRS_IN_USE.delete(dir);
      throw err;
    });
    const engine = new Engine(duck, options);
    const attachAll = duck.exclusive(async (run) => {
      const names = new Set([options.namespace.catalog]);
      if (options.dir !== undefined) {
        mkdirSync(options.dir, { recursive: true });
        for (const f of readdirSync(options.dir)) {
          const m = /^catalog-(.+)\.duckdb$/.exec(f);
          if (m) names.add(m[1]!);
        }
      }
      for (const name of names) await attachCatalog(run, name, options.dir);
    });
    await attachAll.catch(async (err: unknown) => {
      await engine.close();
      throw err;
    });
    return engine;
  }

  async close(): Promise<void> {
    await this.duck.close();
    if (this.options.dir !== undefined) DIRS_IN_USE.delete(resolvePath(this.options.dir));
  }

  /** Runs one statement as the warehouse's admin in the default namespace; rows as JS values. */
  async admin(statement: string): Promise<Row[]> {
    const result = await this.execute(statement, { ...this.options.namespace });
    const rows: Row[] = [];
    for (let r = 0; r < result.rowCount; r++) {
      const row: Row = {};
      result.names.forEach((name, c) => {
        row[name] = toJs(result.columns[c]![r]);
      });
      rows.push(row);
    }
    return rows;
  }

  /** Changes how many versions tables keep, cleaning up what falls outside at once. */
  async setRetention(retention: { versions?: number }): Promise<void> {
    this.keepVersions = retention.versions;
    await this.duck.exclusive(async (run) => {
      for (const t of await allTables(run)) await applyRetention(run, t, this.keepVersions);
    });
  }

  /** Checks that a namespace exists (a session's initial one). */
  async checkNamespace(ns: Namespace): Promise<void> {
    await this.duck.exclusive((run) => this.use(run, ns));
  }

  /** Runs a TCLIService metadata call's query, built by catalog-views.ts from the catalogs attached. */
  metadata(build: (catalogs: readonly string[]) => string): Promise<Result> {
    return this.duck.exclusive(async (run) => toResult(await run(build(await catalogs(run)))));
  }

  /**
   * Runs one statement in a session's namespace, its parameters bound. `USE` changes `ns` in place. A refusal
   * throws a {@link DatabricksSqlError}.
   */
  async execute(statement: string, ns: Namespace, parameters?: readonly TSparkParameter[] | null): Promise<Result> {
    const statements = splitStatements(bindParameters(tokenize(statement), parameters));
    if (statements.length === 0) throw syntaxError('end of input');
    if (statements.length > 1) throw new DatabricksSqlError('PARSE_SYNTAX_ERROR', '42601', "Syntax error at or near ';': one statement per request.");
    const c = new Cursor(statements[0]!);
    const head = c.peek();
    try {
      if (isWord(head, 'SELECT', 'WITH', 'VALUES', 'FROM') || isPunct(head, '(')) {
        return await this.duck.exclusive(async (run) => {
          await this.use(run, ns);
          return runQuery(run, await this.translate(run, c.rest(), ns));
        });
      }
      if (c.accept('USE')) return await this.useStatement(c, ns);
      if (c.accept('SHOW')) return await this.show(c, ns);
      if (c.accept('CREATE')) return await this.create(c, ns);
      if (c.accept('DROP', 'TABLE')) return await this.drop(c, ns);
      if (c.accept('REFRESH', 'MATERIALIZED', 'VIEW')) return await this.refresh(c, ns, 'MATERIALIZED_VIEW');
      if (c.accept('REFRESH', 'STREAMING', 'TABLE')) return await this.refresh(c, ns, 'STREAMING_TABLE');
      if (c.accept('ALTER', 'TABLE')) return await this.alter(c, ns);
      if (c.accept('DESCRIBE', 'HISTORY') || c.accept('DESC', 'HISTORY')) {
        const name = this.resolve(c.name(), ns);
        let limit: number | undefined;
        if (c.accept('LIMIT')) {
          const n = c.next();
          if (n.kind !== 'number' || !/^\d+$/.test(n.value)) throw syntaxError(n.text);
          limit = Number(n.value);
        }
        if (!c.done) throw syntaxError(c.peek()!.text);
        return await this.duck.exclusive(async (run) => toResult(await run(historySql(await requireTable(run, name), limit))));
      }
      if (isWord(head, 'INSERT', 'UPDATE', 'DELETE', 'MERGE')) return await this.write(c, ns);
    } catch (err) {
      throw fromDuckDb(err);
    }
    if (head !== undefined && head.kind === 'word' && STATEMENT_WORDS.has(head.value.toUpperCase())) {
      throw unsupported(`${head.text.toUpperCase()} ${c.peek(1)?.kind === 'word' ? c.peek(1)!.text.toUpperCase() + ' ' : ''}statements`);
    }
    throw syntaxError(head?.text ?? 'end of input');
  }

  /** Sets DuckDB's current catalog and schema to a session's. */
  private async use(run: Run, ns: Namespace): Promise<void> {
    if (!(await schemaExists(run, ns))) throw schemaNotFound([ns.catalog, ns.schema]);
    await run(`USE ${duckCatalog(ns.catalog)}.${quote(ns.schema)}`);
  }

  /** A table name of one, two or three parts, completed from the namespace. */
  private resolve(parts: string[], ns: Namespace): TableName {
    const p = parts.map((x) => x.toLowerCase());
    if (p.length === 1) return { catalog: ns.catalog, schema: ns.schema, name: p[0]! };
    if (p.length === 2) return { catalog: ns.catalog, schema: p[0]!, name: p[1]! };
    if (p.length === 3) return { catalog: p[0]!, schema: p[1]!, name: p[2]! };
    throw syntaxError(parts.join('.'));
  }

  /** SHOW CATALOGS, SHOW SCHEMAS [IN catalog], SHOW TABLES [IN [catalog.]schema], each with an optional [LIKE] pattern. */
  private async show(c: Cursor, ns: Namespace): Promise<Result> {
    const pattern = (): string | undefined => {
      c.accept('LIKE');
      const p = c.done ? undefined : c.next();
      if (p !== undefined && p.kind !== 'string') throw syntaxError(p.text);
      if (!c.done) throw syntaxError(c.peek()!.text);
      return p?.value;
    };
    const within = (): string[] | undefined => (c.accept('IN') || c.accept('FROM') ? c.name().map((x) => x.toLowerCase()) : undefined);
    let sql: string;
    if (c.accept('CATALOGS')) sql = showCatalogsSql(pattern());
    else if (c.accept('SCHEMAS') || c.accept('DATABASES')) sql = showSchemasSql(within()?.[0] ?? ns.catalog, pattern());
    else if (c.accept('TABLES')) {
      const where = within();
      const [catalog, schema] = where === undefined ? [ns.catalog, ns.schema] : where.length === 2 ? [where[0]!, where[1]!] : [ns.catalog, where[0]!];
      sql = showTablesSql(catalog, schema, pattern());
    } else throw unsupported(`SHOW ${c.peek()?.text.toUpperCase() ?? ''}`);
    return this.duck.exclusive(async (run) => toResult(await run(sql)));
  }

  private async useStatement(c: Cursor, ns: Namespace): Promise<Result> {
    const kind = c.accept('CATALOG') ? 'catalog' : c.accept('SCHEMA') || c.accept('DATABASE') ? 'schema' : 'any';
    const parts = c.name().map((x) => x.toLowerCase());
    const next: Namespace =
      kind === 'catalog' ? { catalog: parts[0]!, schema: 'default' } : parts.length === 2 ? { catalog: parts[0]!, schema: parts[1]! } : { catalog: ns.catalog, schema: parts[0]! };
    await this.duck.exclusive((run) => this.use(run, next));
    Object.assign(ns, next);
    return EMPTY;
  }

  private async create(c: Cursor, ns: Namespace): Promise<Result> {
    if (c.accept('CATALOG')) {
      const ifNotExists = c.accept('IF', 'NOT', 'EXISTS');
      const name = c.name()[0]!.toLowerCase();
      await this.duck.exclusive(async (run) => {
        if ((await catalogs(run)).includes(name)) {
          if (ifNotExists) return;
          throw new DatabricksSqlError('CATALOG_ALREADY_EXISTS', '42000', `Cannot create catalog \`${name}\` because it already exists.`);
        }
        await attachCatalog(run, name, this.options.dir);
      });
      return EMPTY;
    }
    if (c.accept('SCHEMA') || c.accept('DATABASE')) {
      const ifNotExists = c.accept('IF', 'NOT', 'EXISTS');
      const parts = c.name().map((x) => x.toLowerCase());
      const [catalog, schema] = parts.length === 2 ? [parts[0]!, parts[1]!] : [ns.catalog, parts[0]!];
      await this.duck.exclusive(async (run) => {
        if (await schemaExists(run, { catalog, schema })) {
          if (ifNotExists) return;
          throw new DatabricksSqlError('SCHEMA_ALREADY_EXISTS', '42P06', `Cannot create schema \`${schema}\` because it already exists.`);
        }
        await run(`CREATE SCHEMA ${duckCatalog(catalog)}.${quote(schema)}`);
      });
      return EMPTY;
    }
    if (c.accept('OR', 'REPLACE')) throw unsupported(`CREATE OR REPLACE ${c.peek()?.text.toUpperCase() ?? ''}`);
    if (c.accept('OR', 'REFRESH')) throw unsupported('CREATE OR REFRESH STREAMING TABLE (a pipeline definition)');
    const kind = c.accept('MATERIALIZED', 'VIEW') ? 'MATERIALIZED_VIEW' : c.accept('STREAMING', 'TABLE') ? 'STREAMING_TABLE' : c.accept('TABLE') ? 'MANAGED' : undefined;
    if (kind === undefined) throw unsupported(`CREATE ${c.peek()?.text.toUpperCase() ?? ''}`);
    const ifNotExists = c.accept('IF', 'NOT', 'EXISTS');
    const name = this.resolve(c.name(), ns);
    const def = readTableDefinition(c, name.name);
    if (kind !== 'MANAGED') return this.createRefreshed(name, kind, def, ifNotExists, ns);
    return this.duck.transaction(async (run) => {
      await this.use(run, ns);
      if (!(await schemaExists(run, name))) throw schemaNotFound([name.catalog, name.schema]);
      if ((await findTable(run, name)) !== undefined) {
        if (ifNotExists) return EMPTY;
        throw new DatabricksSqlError('TABLE_OR_VIEW_ALREADY_EXISTS', '42P07', `Cannot create table or view \`${name.catalog}\`.\`${name.schema}\`.\`${name.name}\` because it already exists.`);
      }
      const body = def.as === undefined ? `(${def.columns.join(', ')})` : `AS ${await this.translate(run, def.as, ns)}`;
      await run(`CREATE TABLE ${qualified(name)} ${body}`);
      const table = await registerTable(run, name, def.properties, def.primaryKey, def.pkName);
      const commit = await nextCommit(run, table);
      let inserted = 0;
      if (def.as !== undefined) {
        inserted = Number((await run(`SELECT count(*) AS n FROM ${qualified(name)}`)).getRowObjectsJS()[0]!['n']);
        if (cdfEnabled(def.properties)) await this.recordInserts(run, table, commit, 'true');
      }
      const operation = def.as === undefined ? 'CREATE TABLE' : 'CREATE TABLE AS SELECT';
      await recordCommit(run, table, { ...commit, operation, parameters: { isManaged: 'true', properties: JSON.stringify(def.properties) }, metrics: def.as === undefined ? {} : { numOutputRows: inserted }, cdf: cdfEnabled(def.properties) }, this.keepVersions);
      return EMPTY;
    });
  }

  /**
   * CREATE MATERIALIZED VIEW / CREATE STREAMING TABLE … AS query: a Delta table filled with
   * the query's rows now and again at each REFRESH. A streaming table's query reads one table
   * with `STREAM(t)` (or `STREAM t`): a refresh appends what the query makes of the rows added
   * to `t` since the last one. Schedules and pipelines are not emulated: a refresh is a statement.
   */
  private async createRefreshed(name: TableName, kind: 'MATERIALIZED_VIEW' | 'STREAMING_TABLE', def: TableDefinition, ifNotExists: boolean, ns: Namespace): Promise<Result> {
    if (def.as === undefined) throw unsupported(`${kind === 'MATERIALIZED_VIEW' ? 'a materialized view' : 'a streaming table'} without AS query`);
    const query = def.as;
    let exists = false;
    const created = await this.duck.transaction(async (run) => {
      await this.use(run, ns);
      if (!(await schemaExists(run, name))) throw schemaNotFound([name.catalog, name.schema]);
      if ((await findTable(run, name)) !== undefined) {
        exists = true;
        if (ifNotExists) return EMPTY;
        throw new DatabricksSqlError('TABLE_OR_VIEW_ALREADY_EXISTS', '42P07', `Cannot create table or view \`${name.catalog}\`.\`${name.schema}\`.\`${name.name}\` because it already exists.`);
      }
      const definition: Definition = { query: query.map((t) => t.text).join(' ') };
      let body = query;
      if (kind === 'STREAMING_TABLE') {
        const source = streamSource(query);
        const t = await requireTable(run, this.resolve(source.name, ns));
        definition.stream = { source: { catalog: t.catalog, schema: t.schema, name: t.name }, after: -1 };
        body = [...query.slice(0, source.at), ...tokenize(`(SELECT * FROM ${backticked([t.catalog, t.schema, t.name])} WHERE 1 = 0)`), ...query.slice(source.end)];
      }
      await run(`CREATE TABLE ${qualified(name)} AS ${await this.translate(run, body, ns)}`);
      const table = await registerTable(run, name, def.properties, def.primaryKey, def.pkName, kind, definition);
      const commit = await nextCommit(run, table);
      const rows = Number((await run(`SELECT count(*) AS n FROM ${qualified(name)}`)).getRowObjectsJS()[0]!['n']);
      await recordCommit(run, table, { ...commit, operation: 'CREATE TABLE AS SELECT', parameters: { isManaged: 'true' }, metrics: { numOutputRows: rows }, cdf: cdfEnabled(def.properties) }, this.keepVersions);
      return EMPTY;
    });
    // A streaming table's first update reads its source from the start.
    if (kind === 'STREAMING_TABLE' && !exists) await this.refresh(new Cursor(tokenize(backticked([name.catalog, name.schema, name.name]))), ns, kind);
    return created;
  }

  /**
   * REFRESH MATERIALIZED VIEW (its rows replaced by the query's, one version) or REFRESH
   * STREAMING TABLE (the query's rows over what its source gained since, appended).
   */
  private async refresh(c: Cursor, ns: Namespace, kind: 'MATERIALIZED_VIEW' | 'STREAMING_TABLE'): Promise<Result> {
    const name = this.resolve(c.name(), ns);
    if (!c.done) throw unsupported(`REFRESH … ${c.peek()!.text.toUpperCase()}`);
    return this.duck.transaction(async (run) => {
      await this.use(run, ns);
      const t = await requireTable(run, name);
      if (t.kind !== kind || t.definition === undefined) throw unsupported(`REFRESH of ${backticked([t.catalog, t.schema, t.name])}, which is not a ${kind === 'MATERIALIZED_VIEW' ? 'materialized view' : 'streaming table'}`);
      const def = t.definition;
      const target = qualified(t);
      const commit = await nextCommit(run, t);
      const cdf = cdfEnabled(t.properties);
      let query = tokenize(def.query);
      let next: Definition = def;
      if (def.stream !== undefined) {
        const source = await requireTable(run, def.stream.source);
        const upTo = Number((await run(`SELECT coalesce(max(rowid), -1) AS m FROM ${qualified(source)}`)).getRowObjectsJS()[0]!['m']);
        const at = streamSource(new Cursor(query).tokens);
        query = [...new Cursor(query).tokens.slice(0, at.at), ...tokenize(`(SELECT * FROM ${backticked([source.catalog, source.schema, source.name])} WHERE rowid > ${def.stream.after} AND rowid <= ${upTo})`), ...new Cursor(query).tokens.slice(at.end)];
        next = { ...def, stream: { ...def.stream, after: upTo } };
      } else await run(`DELETE FROM ${target}`);
      const before = Number((await run(`SELECT coalesce(max(rowid), -1) AS m FROM ${target}`)).getRowObjectsJS()[0]!['m']);
      const count = await affected(run, `INSERT INTO ${target} ${await this.translate(run, query, ns)}`);
      if (cdf && def.stream !== undefined) await this.recordInserts(run, t, commit, `rowid > ${before}`);
      if (next !== def) await setDefinition(run, t, next);
      const streaming = def.stream !== undefined;
      await recordCommit(run, t, { ...commit, operation: streaming ? 'STREAMING UPDATE' : 'WRITE', parameters: { mode: streaming ? 'Append' : 'Overwrite' }, metrics: { numOutputRows: count }, cdf: cdf && streaming }, this.keepVersions);
      return EMPTY;
    });
  }

  private async drop(c: Cursor, ns: Namespace): Promise<Result> {
    const ifExists = c.accept('IF', 'EXISTS');
    const name = this.resolve(c.name(), ns);
    return this.duck.transaction(async (run) => {
      const t = await findTable(run, name);
      if (t === undefined) {
        if (ifExists) return EMPTY;
        await requireTable(run, name);
      }
      await dropTable(run, t!);
      return EMPTY;
    });
  }

  private async alter(c: Cursor, ns: Namespace): Promise<Result> {
    const name = this.resolve(c.name(), ns);
    const set = c.accept('SET', 'TBLPROPERTIES');
    if (!set && !c.accept('UNSET', 'TBLPROPERTIES')) throw unsupported(`ALTER TABLE … ${c.peek()?.text.toUpperCase() ?? ''}`);
    const ifExists = !set && c.accept('IF', 'EXISTS');
    const given = set ? c.properties() : unsetList(c);
    if (!c.done) throw syntaxError(c.peek()!.text);
    return this.duck.transaction(async (run) => {
      const t = await requireTable(run, name);
      const before = cdfEnabled(t.properties);
      const properties = { ...t.properties };
      for (const [k, v] of given) {
        const existing = Object.keys(properties).find((p) => p.toLowerCase() === k.toLowerCase());
        if (existing !== undefined) delete properties[existing];
        if (set) properties[k] = v;
        else if (existing === undefined && !ifExists) throw new DatabricksSqlError('UNSET_NONEXISTENT_PROPERTIES', '42K0J', `Attempted to unset non-existent properties [\`${k}\`] in table ${qualified(t)}.`);
      }
      const commit = await nextCommit(run, t);
      await setProperties(run, t, properties);
      const after = cdfEnabled(properties);
      await recordCommit(run, t, { ...commit, operation: set ? 'SET TBLPROPERTIES' : 'UNSET TBLPROPERTIES', parameters: { properties: JSON.stringify(Object.fromEntries(given)) }, metrics: {}, cdf: before && after }, this.keepVersions);
      return EMPTY;
    });
  }

  /** INSERT, UPDATE, DELETE or MERGE: one new version of the target table. */
  private async write(c: Cursor, ns: Namespace): Promise<Result> {
    const verb = c.next().value.toUpperCase();
    if (verb === 'INSERT') {
      if (c.accept('OVERWRITE')) throw unsupported('INSERT OVERWRITE');
      c.expect('INTO');
      c.accept('TABLE');
    } else if (verb === 'DELETE') c.expect('FROM');
    else if (verb === 'MERGE') c.expect('INTO');
    const name = this.resolve(c.name(), ns);
    const rest = c.rest();
    return this.duck.transaction(async (run) => {
      await this.use(run, ns);
      const t = await requireTable(run, name);
      if (t.kind === 'MATERIALIZED_VIEW') throw unsupported(`${verb} into a materialized view (its rows come from its query)`);
      const cdf = cdfEnabled(t.properties);
      const commit = await nextCommit(run, t);
      const body = await this.translate(run, rest, ns);
      const target = qualified(t);
      const cols = await columnsOf(run, t);
      let metrics: Record<string, number>;
      if (verb === 'INSERT') {
        const before = Number((await run(`SELECT coalesce(max(rowid), -1) AS m FROM ${target}`)).getRowObjectsJS()[0]!['m']);
        const count = await affected(run, `INSERT INTO ${target} ${body}`);
        if (cdf) await this.recordInserts(run, t, commit, `rowid > ${before}`);
        metrics = { numOutputRows: count };
      } else if (verb === 'MERGE' && !cdf) {
        // Without change data to record, a MERGE's counts are what its clauses did, row by row.
        const actions = (await run(`MERGE INTO ${target} ${body} RETURNING merge_action`)).getRowObjectsJS();
        const n = (action: string) => actions.filter((a) => a['merge_action'] === action).length;
        metrics = { numAffectedRows: actions.length, numUpdatedRows: n('UPDATE'), numDeletedRows: n('DELETE'), numInsertedRows: n('INSERT') };
      } else {
        // The rows the statement may touch, with their row ids, before it runs: the WHERE
        // clause's for UPDATE and DELETE, every row for MERGE (whose counts come from the
        // comparison).
        const snapshot = cdf;
        if (snapshot) {
          const { alias, where } = verb === 'MERGE' ? { alias: undefined, where: undefined } : splitAliasWhere(rest);
          const ref = quote(alias ?? t.name);
          await run(`CREATE OR REPLACE TEMP TABLE __before AS SELECT ${ref}.rowid AS __rid, ${ref}.* FROM ${target} AS ${ref}${where ? ` WHERE ${await this.translate(run, where, ns)}` : ''}`);
        }
        const count = await affected(run, `${verb === 'DELETE' ? 'DELETE FROM' : verb === 'MERGE' ? 'MERGE INTO' : 'UPDATE'} ${target} ${body}`);
        const compared = snapshot ? await this.compare(run, t, commit, cols, verb === 'MERGE', cdf) : undefined;
        if (snapshot) await run('DROP TABLE __before');
        metrics = verb === 'UPDATE' ? { numUpdatedRows: count } : verb === 'DELETE' ? { numDeletedRows: count } : compared!;
      }
      const operation = verb === 'INSERT' ? 'WRITE' : verb;
      await recordCommit(run, t, { ...commit, operation, parameters: verb === 'INSERT' ? { mode: 'Append' } : {}, metrics, cdf }, this.keepVersions);
      return toResult(await run(dmlAnswer(verb, metrics)));
    });
  }

  private async recordInserts(run: Run, t: DeltaTable, commit: { version: number; ms: number }, where: string): Promise<void> {
    await run(`INSERT INTO ${changeTable(t)} SELECT *, 'insert', ${commit.version}, ${timestampLiteral(commit.ms)}, rowid * 2 FROM ${qualified(t)} WHERE ${where}`);
  }

  /**
   * Compares the rows before a write (`__before`) with the table after it: rows gone are
   * deleted, rows still there updated (for MERGE, those whose values differ), new rows
   * inserted (MERGE only). With `record`, their images go to the change table; the counts
   * are returned either way.
   */
  private async compare(run: Run, t: DeltaTable, commit: { version: number; ms: number }, cols: string[], merge: boolean, record: boolean): Promise<Record<string, number>> {
    const stamp = `${commit.version}, ${timestampLiteral(commit.ms)}`;
    const b = cols.map((c) => `b.${c}`).join(', ');
    const a = cols.map((c) => `a.${c}`).join(', ');
    const changed = merge ? `WHERE ${cols.map((c) => `b.${c} IS DISTINCT FROM a.${c}`).join(' OR ')}` : '';
    const after = `(SELECT rowid AS __rid, * FROM ${qualified(t)})`;
    const rows = async (select: string) => {
      const r = await run(record ? `INSERT INTO ${changeTable(t)} ${select}` : `SELECT count(*) AS "Count" FROM (${select})`);
      return Number(r.getRowObjectsJS()[0]!['Count'] ?? 0);
    };
    const deleted = await rows(`SELECT ${b}, 'delete', ${stamp}, b.__rid * 2 FROM __before b ANTI JOIN ${after} a ON a.__rid = b.__rid`);
    const updated =
      (await rows(
        `SELECT * FROM (SELECT ${b}, 'update_preimage', ${stamp}, b.__rid * 2 FROM __before b JOIN ${after} a ON a.__rid = b.__rid ${changed} ` +
          `UNION ALL SELECT ${a}, 'update_postimage', ${stamp}, b.__rid * 2 + 1 FROM __before b JOIN ${after} a ON a.__rid = b.__rid ${changed})`,
      )) / 2;
    const inserted = merge ? await rows(`SELECT ${a}, 'insert', ${stamp}, a.__rid * 2 FROM ${after} a ANTI JOIN __before b ON a.__rid = b.__rid`) : 0;
    return { numAffectedRows: deleted + updated + inserted, numUpdatedRows: updated, numDeletedRows: deleted, numInsertedRows: inserted };
  }

  /**
   * Prints a query or a DML body as DuckDB SQL: three-part names find their catalog's
   * database, information_schema views and `table_changes(…)` become subqueries, and
   * Databricks type names DuckDB spells differently are renamed.
   */
  private async translate(run: Run, tokens: readonly Token[], ns: Namespace, catalogsKnown?: ReadonlySet<string>): Promise<string> {
    const known = catalogsKnown ?? new Set(await catalogs(run));
    const out: Token[] = [];
    const t = tokens.filter((x) => x.kind !== 'space');
    for (let i = 0; i < t.length; i++) {
      const tok = t[i]!;
      const prevDot = isPunct(t[i - 1], '.');
      // [catalog.]information_schema.view
      const isAt = (k: number) => isName(t[k]) && t[k]!.value.toLowerCase() === 'information_schema' && isPunct(t[k + 1], '.') && isName(t[k + 2]);
      if (!prevDot && (isAt(i) || (isName(tok) && isPunct(t[i + 1], '.') && isAt(i + 2)))) {
        const withCatalog = !isAt(i);
        const catalog = withCatalog ? tok.value.toLowerCase() : ns.catalog;
        const viewAt = withCatalog ? i + 4 : i + 2;
        const view = t[viewAt]!.value;
        const sql = informationSchemaView(view, [...known]);
        if (sql === undefined) throw tableNotFound([catalog, 'information_schema', view]);
        const column = view.toLowerCase() === 'schemata' ? 'catalog_name' : view.toLowerCase() === 'table_constraints' || view.toLowerCase() === 'key_column_usage' ? 'constraint_catalog' : 'table_catalog';
        const next = t[viewAt + 1];
        const aliased = isWord(next, 'AS') || (isName(next) && !(next.kind === 'word' && CLAUSE_WORDS.has(next.value.toUpperCase())));
        out.push(raw(` (SELECT * FROM (${sql}) WHERE ${column} = ${literal(catalog)})${aliased ? '' : ` AS ${quote(view)}`} `));
        i = viewAt;
        continue;
      }
      if (isWord(tok, 'TABLE_CHANGES') && isPunct(t[i + 1], '(') && !prevDot) {
        const close = matchingParen(t, i + 1);
        out.push(raw(` (${await this.tableChanges(run, t.slice(i + 2, close), ns)}) `));
        i = close;
        continue;
      }
      if (isWord(tok, 'NAMED_STRUCT') && isPunct(t[i + 1], '(') && !prevDot) {
        const close = matchingParen(t, i + 1);
        out.push(raw(` ${await this.namedStruct(run, t.slice(i + 2, close), ns, known)} `));
        i = close;
        continue;
      }
      if (isWord(tok, 'ARRAY') && isPunct(t[i + 1], '(') && !prevDot) {
        out.push(raw('list_value'));
        continue;
      }
      if (isName(tok) && !prevDot && isPunct(t[i + 1], '.') && isName(t[i + 2]) && isPunct(t[i + 3], '.') && isName(t[i + 4]) && known.has(tok.value.toLowerCase())) {
        out.push(raw(duckCatalog(tok.value.toLowerCase())));
        continue;
      }
      if (tok.kind === 'word' && (prevDot || isPunct(t[i + 1], '.') || (DUCKDB_RESERVED.has(tok.value.toUpperCase()) && !isPunct(t[i + 1], '(')))) {
        out.push({ kind: 'ident', text: tok.text, value: tok.value });
        continue;
      }
      if (tok.kind === 'word' && TYPE_WORDS[tok.value.toUpperCase()] !== undefined && !isPunct(t[i + 1], '(')) {
        out.push(raw(TYPE_WORDS[tok.value.toUpperCase()]!));
        continue;
      }
      out.push(tok);
    }
    return render(spaced(out));
  }

  /** `named_struct('a', x, 'b', y, …)` as DuckDB's `struct_pack("a" := x, …)`, its values translated in turn. */
  private async namedStruct(run: Run, args: Token[], ns: Namespace, known: ReadonlySet<string>): Promise<string> {
    const parts = splitArgs(args);
    if (parts.length === 0 || parts.length % 2 !== 0) {
      throw new DatabricksSqlError('WRONG_NUM_ARGS.WITHOUT_SUGGESTION', '42605', `The \`named_struct\` requires 2n (n > 0) parameters but the actual number is ${parts.length}.`);
    }
    const fields: string[] = [];
    for (let k = 0; k < parts.length; k += 2) {
      const name = parts[k]!;
      if (name.length !== 1 || name[0]!.kind !== 'string') {
        throw new DatabricksSqlError('DATATYPE_MISMATCH.CREATE_NAMED_STRUCT_WITHOUT_FOLDABLE_STRING', '42K09', 'Cannot resolve "named_struct": only foldable STRING expressions are allowed to appear at odd position.');
      }
      fields.push(`${quote(name[0]!.value)} := ${await this.translate(run, parts[k + 1]!, ns, known)}`);
    }
    return `struct_pack(${fields.join(', ')})`;
  }

  /** `table_changes('t', start[, end])` as a query over the table's recorded changes, after Delta's checks. */
  private async tableChanges(run: Run, args: Token[], ns: Namespace): Promise<string> {
    const parts = splitArgs(args);
    if (parts.length < 2 || parts.length > 3 || parts[0]!.length !== 1 || parts[0]![0]!.kind !== 'string') {
      throw new DatabricksSqlError('WRONG_NUM_ARGS.WITHOUT_SUGGESTION', '42605', `The \`table_changes\` requires 2 or 3 parameters but the actual number is ${parts.length}.`);
    }
    const nameText = parts[0]![0]!.value;
    const name = this.resolve(new Cursor(tokenize(nameText)).name(), ns);
    const t = await requireTable(run, name);
    if (t.kind === 'MATERIALIZED_VIEW') throw unsupported('table_changes on a materialized view');
    const bound = async (arg: Token[], which: 'first' | 'last'): Promise<number> => {
      const tok = arg.length === 1 ? arg[0]! : undefined;
      if (tok?.kind === 'number' && /^\d+$/.test(tok.value)) return Number(tok.value);
      if (tok?.kind === 'string') {
        const ms = Date.parse(tok.value.includes('T') || tok.value.endsWith('Z') ? tok.value : `${tok.value.replace(' ', 'T')}Z`);
        if (Number.isNaN(ms)) throw new DatabricksSqlError('INVALID_CDC_OPTION.INVALID_TIMESTAMP', '42K03', `The timestamp '${tok.value}' cannot be cast to TIMESTAMP type for CDC queries.`);
        const v = await versionAt(run, t, ms, which);
        if (v === undefined && which === 'first') throw cdfRangeErrors.timestampAfterLatest(tok.value, t);
        return v ?? -1;
      }
      throw new DatabricksSqlError('ARGUMENT_NOT_CONSTANT', '42K08', 'The function `table_changes` requires a constant version (an integer) or timestamp (a string) for its start and end.');
    };
    const start = await bound(parts[1]!, 'first');
    const end = parts.length === 3 ? await bound(parts[2]!, 'last') : t.latest;
    if (start > t.latest) throw cdfRangeErrors.afterLatest(start, t.latest);
    if (end < start) throw cdfRangeErrors.endBeforeStart(start, end);
    if (start < t.earliest) throw cdfRangeErrors.expired(start, t);
    const last = Math.min(end, t.latest);
    const missing = await firstVersionWithoutChanges(run, t, start, last);
    if (missing !== undefined) throw cdfRangeErrors.notRecorded(start, last, missing);
    return `SELECT * EXCLUDE (_seq) FROM ${changeTable(t)} WHERE _commit_version BETWEEN ${start} AND ${last} ORDER BY _commit_version, _seq`;
  }
}

/** Where a streaming table's query reads its source: `STREAM(name)` or `STREAM name`, the tokens at [at, end). */
function streamSource(tokens: readonly Token[]): { name: string[]; at: number; end: number } {
  const t = tokens.filter((x) => x.kind !== 'space');
  const found: { name: string[]; at: number; end: number }[] = [];
  for (let i = 0; i < t.length; i++) {
    if (!isWord(t[i], 'STREAM') || isPunct(t[i - 1], '.')) continue;
    const paren = isPunct(t[i + 1], '(');
    const c = new Cursor(t.slice(i + (paren ? 2 : 1)));
    const name = c.name();
    const end = i + (paren ? 2 : 1) + name.length * 2 - 1 + (paren ? 1 : 0);
    if (paren && !isPunct(t[end - 1], ')')) throw unsupported('STREAM of anything but a table name');
    found.push({ name, at: i, end });
  }
  if (found.length !== 1) throw unsupported('a streaming table whose query does not read exactly one table with STREAM(…)');
  return found[0]!;
}

/** Tokens with a space between each two, except around dots. */
function spaced(tokens: readonly Token[]): Token[] {
  const out: Token[] = [];
  tokens.forEach((t, k) => {
    if (k > 0 && !isPunct(t, '.') && !isPunct(tokens[k - 1], '.')) out.push({ kind: 'space', text: ' ', value: ' ' });
    out.push(t);
  });
  return out;
}

const raw = (text: string): Token => ({ kind: 'punct', text, value: text });

async function affected(run: Run, sql: string): Promise<number> {
  const rows = (await run(sql)).getRowObjectsJS();
  return Number(rows[0]?.['Count'] ?? 0);
}

/** The result a DML statement answers, as Databricks names its counts. */
function dmlAnswer(verb: string, m: Record<string, number>): string {
  const n = (k: string) => `${m[k] ?? 0}::BIGINT`;
  if (verb === 'INSERT') return `SELECT ${n('numOutputRows')} AS num_affected_rows, ${n('numOutputRows')} AS num_inserted_rows`;
  if (verb === 'UPDATE') return `SELECT ${n('numUpdatedRows')} AS num_affected_rows`;
  if (verb === 'DELETE') return `SELECT ${n('numDeletedRows')} AS num_affected_rows`;
  return `SELECT ${n('numAffectedRows')} AS num_affected_rows, ${n('numUpdatedRows')} AS num_updated_rows, ${n('numDeletedRows')} AS num_deleted_rows, ${n('numInsertedRows')} AS num_inserted_rows`;
}

/** A DuckDB value as plain JS: numbers, bigints, strings, booleans, null; others as their text. */
function toJs(v: DuckDBValue): unknown {
  if (v === null || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string' || typeof v === 'boolean') return v;
  return String(v);
}

/** Whether a catalog and schema exist; a catalog that does not is refused as Databricks does. */
async function schemaExists(run: Run, ns: Namespace): Promise<boolean> {
  if (!(await catalogs(run)).includes(ns.catalog)) {
    throw new DatabricksSqlError('NO_SUCH_CATALOG_EXCEPTION', '42704', `Catalog '${ns.catalog}' was not found. Please verify the catalog name and then retry the query or command again.`);
  }
  const r = await run(`SELECT count(*) AS n FROM duckdb_schemas() WHERE database_name = ${literal(`uc_${ns.catalog}`)} AND schema_name = ${literal(ns.schema)}`);
  return Number(r.getRowObjectsJS()[0]!['n']) > 0;
}

/** Statements split at top-level semicolons, empty ones dropped. */
function splitStatements(tokens: Token[]): Token[][] {
  const out: Token[][] = [[]];
  for (const t of tokens) {
    if (isPunct(t, ';')) out.push([]);
    else out[out.length - 1]!.push(t);
  }
  return out.filter((s) => s.some((t) => t.kind !== 'space'));
}

function matchingParen(t: readonly Token[], open: number): number {
  let depth = 0;
  for (let k = open; k < t.length; k++) {
    if (isPunct(t[k], '(')) depth++;
    else if (isPunct(t[k], ')') && --depth === 0) return k;
  }
  throw syntaxError('(');
}

/** Comma-separated arguments at the top level; with `types`, commas inside `<…>` (STRUCT<a: T, b: U>) too are inner. */
function splitArgs(t: readonly Token[], types = false): Token[][] {
  const out: Token[][] = [[]];
  let depth = 0;
  for (const tok of t) {
    if (isPunct(tok, '(') || (types && isPunct(tok, '<'))) depth++;
    if (isPunct(tok, ')') || (types && isPunct(tok, '>'))) depth--;
    if (depth === 0 && isPunct(tok, ',')) out.push([]);
    else out[out.length - 1]!.push(tok);
  }
  return out.filter((a) => a.length > 0);
}

/** An UPDATE's or DELETE's alias and WHERE condition, from the tokens after the table name. */
function splitAliasWhere(rest: readonly Token[]): { alias: string | undefined; where: Token[] | undefined } {
  let i = 0;
  if (isWord(rest[i], 'AS')) i++;
  const alias = isName(rest[i]) && !isWord(rest[i], 'SET', 'WHERE') ? rest[i++]!.value : undefined;
  let depth = 0;
  for (let k = i; k < rest.length; k++) {
    if (isPunct(rest[k], '(')) depth++;
    else if (isPunct(rest[k], ')')) depth--;
    else if (depth === 0 && isWord(rest[k], 'WHERE')) return { alias, where: rest.slice(k + 1) };
  }
  return { alias, where: undefined };
}

function unsetList(c: Cursor): Map<string, string> {
  const out = new Map<string, string>();
  c.expectPunct('(');
  do {
    const k = c.peek();
    const key = k?.kind === 'string' ? (c.next(), k.value) : c.name().join('.');
    out.set(key, '');
  } while (c.acceptPunct(','));
  c.expectPunct(')');
  return out;
}

interface TableDefinition {
  /** Column definitions as DuckDB SQL. */
  columns: string[];
  as: Token[] | undefined;
  properties: Record<string, string>;
  primaryKey: string[];
  pkName: string;
}

/**
 * The rest of CREATE TABLE: columns (types renamed, COMMENTs dropped, primary keys kept as
 * the informational constraint Unity Catalog has), USING DELTA, COMMENT, TBLPROPERTIES and
 * AS. Partitioning, clustering and locations are refused by name.
 */
function readTableDefinition(c: Cursor, table: string): TableDefinition {
  const def: TableDefinition = { columns: [], as: undefined, properties: {}, primaryKey: [], pkName: '' };
  if (isPunct(c.peek(), '(')) for (const element of splitArgs(c.parenthesised(), true)) readColumnOrConstraint(element, def, table);
  while (!c.done) {
    if (c.accept('USING')) {
      const format = c.next().value;
      if (format.toUpperCase() !== 'DELTA') throw unsupported(`tables USING ${format.toUpperCase()} (tables here are Delta tables)`);
    } else if (c.accept('COMMENT')) c.next();
    else if (c.accept('TBLPROPERTIES')) for (const [k, v] of c.properties()) def.properties[k] = v;
    else if (c.accept('AS')) def.as = c.rest();
    else throw unsupported(`CREATE TABLE … ${c.peek()!.text.toUpperCase()}`);
  }
  if (def.columns.length === 0 && def.as === undefined) throw syntaxError('end of input');
  return def;
}

function readColumnOrConstraint(element: Token[], def: TableDefinition, table: string): void {
  const c = new Cursor(element);
  if (c.accept('CONSTRAINT')) {
    def.pkName = c.next().value;
    readPrimaryKey(c, def);
    return;
  }
  if (isWord(c.peek(), 'PRIMARY')) {
    def.pkName = `${table}_pk`;
    readPrimaryKey(c, def);
    return;
  }
  const name = c.next();
  if (!isName(name)) throw syntaxError(name.text);
  const type: Token[] = [];
  while (!c.done && !isWord(c.peek(), 'NOT', 'NULL', 'COMMENT', 'PRIMARY', 'DEFAULT', 'GENERATED', 'CONSTRAINT')) type.push(c.next());
  const typeText = type.some((t) => isPunct(t, '<'))
    ? duckType(type)
    : type.map((t) => (t.kind === 'word' ? (TYPE_WORDS[t.value.toUpperCase()] ?? t.text) : t.text)).join('');
  let sql = `${quote(name.value)} ${typeText}`;
  while (!c.done) {
    if (c.accept('NOT', 'NULL')) sql += ' NOT NULL';
    else if (c.accept('NULL')) continue;
    else if (c.accept('COMMENT')) c.next();
    else if (c.accept('PRIMARY', 'KEY')) {
      def.primaryKey = [name.value.toLowerCase()];
      def.pkName = `${table}_pk`;
    } else if (c.accept('DEFAULT')) sql += ` DEFAULT ${render(c.rest())}`;
    else throw unsupported(`column option ${c.peek()!.text.toUpperCase()}`);
  }
  def.columns.push(sql);
}

/**
 * A complex column type as DuckDB spells it: `STRUCT<a: T, …>` (the colon optional) is
 * `STRUCT(a T, …)`, `ARRAY<T>` is `T[]`, `MAP<K, V>` is `MAP(K, V)`, nested at will.
 */
function duckType(tokens: readonly Token[]): string {
  const t = tokens.filter((x) => x.kind !== 'space');
  let i = 0;
  const expect = (p: string) => {
    if (!isPunct(t[i], p)) throw syntaxError(t[i]?.text ?? 'end of input');
    i++;
  };
  const type = (): string => {
    const head = t[i++];
    if (head === undefined || !isName(head)) throw syntaxError(head?.text ?? 'end of input');
    const word = head.value.toUpperCase();
    if (!isPunct(t[i], '<')) {
      let text = TYPE_WORDS[word] ?? head.text;
      if (isPunct(t[i], '(')) {
        const close = matchingParen(t, i);
        text += t.slice(i, close + 1).map((x) => x.text).join('');
        i = close + 1;
      }
      return text;
    }
    i++;
    let out: string;
    if (word === 'ARRAY') out = `${type()}[]`;
    else if (word === 'MAP') {
      const key = type();
      expect(',');
      out = `MAP(${key}, ${type()})`;
    } else if (word === 'STRUCT') {
      const fields: string[] = [];
      do {
        const field = t[i++];
        if (field === undefined || !isName(field)) throw syntaxError(field?.text ?? 'end of input');
        if (isPunct(t[i], ':')) i++;
        fields.push(`${quote(field.value)} ${type()}`);
      } while (isPunct(t[i], ',') && ++i);
      out = `STRUCT(${fields.join(', ')})`;
    } else throw unsupported(`column type ${word}<…>`);
    expect('>');
    return out;
  };
  const out = type();
  if (i < t.length) throw syntaxError(t[i]!.text);
  return out;
}

function readPrimaryKey(c: Cursor, def: TableDefinition): void {
  c.expect('PRIMARY', 'KEY');
  c.expectPunct('(');
  const cols: string[] = [];
  do cols.push(c.name()[0]!.toLowerCase());
  while (c.acceptPunct(','));
  c.expectPunct(')');
  def.primaryKey = cols;
}
