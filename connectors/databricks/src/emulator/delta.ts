/**
 * Delta tables on DuckDB: each Databricks catalog is a DuckDB database (`uc_<name>`) whose
 * schema `__delta` holds the emulator's own records — every table's properties and
 * informational primary key, its versions (`DESCRIBE HISTORY`), and for tables with the
 * change data feed on, a change table of row images per version. A write and its records
 * commit in one DuckDB transaction, so a version never shows without its changes.
 */
import type { DuckDBResultReader } from '@duckdb/node-api';
import { join } from 'node:path';
import { backticked, DatabricksSqlError, tableNotFound } from './errors.js';
import { literal, quote } from './sql.js';

export type Run = (sql: string) => Promise<DuckDBResultReader>;

/** A table's three-part name, lower case as Unity Catalog keeps it. */
export interface TableName {
  catalog: string;
  schema: string;
  name: string;
}

/** What a table is, as `information_schema.tables` names it. */
export type TableKind = 'MANAGED' | 'MATERIALIZED_VIEW' | 'STREAMING_TABLE';

/**
 * How a materialized view or streaming table is refreshed: its query as written, and for a
 * streaming table the table it reads with `STREAM` and the last row id of it already read.
 */
export interface Definition {
  query: string;
  stream?: { source: TableName; after: number };
}

export interface DeltaTable extends TableName {
  id: number;
  kind: TableKind;
  definition?: Definition;
  properties: Record<string, string>;
  primaryKey: string[];
  /** The primary key constraint's name; empty without one. */
  pkName: string;
  latest: number;
  /** The oldest version still in the log; older ones were cleaned up by retention. */
  earliest: number;
}

const CDF_PROPERTY = 'delta.enableChangeDataFeed';
/** The schema, in every catalog's database, that holds the emulator's records. */
export const INTERNAL_SCHEMA = '__delta';

export const duckCatalog = (catalog: string): string => quote(`uc_${catalog}`);
export const qualified = (t: TableName): string => `${duckCatalog(t.catalog)}.${quote(t.schema)}.${quote(t.name)}`;
const internal = (catalog: string, name: string) => `${duckCatalog(catalog)}.${INTERNAL_SCHEMA}.${quote(name)}`;
export const changeTable = (t: DeltaTable): string => internal(t.catalog, `changes_${t.id}`);

/** A table property's value; keys compare without case, as Delta's do. */
const property = (properties: Record<string, string>, key: string): string | undefined =>
  Object.entries(properties).find(([k]) => k.toLowerCase() === key.toLowerCase())?.[1];

export const cdfEnabled = (properties: Record<string, string>): boolean => property(properties, CDF_PROPERTY)?.toLowerCase() === 'true';

/** A commit's time, as a DuckDB TIMESTAMP literal in UTC. */
export const timestampLiteral = (ms: number): string => `TIMESTAMP ${literal(new Date(ms).toISOString().replace('T', ' ').replace('Z', ''))}`;

/** Attaches a catalog (a file under `dir`, or memory) and makes sure its records exist. */
export async function attachCatalog(run: Run, name: string, dir: string | undefined): Promise<void> {
  const location = dir === undefined ? ':memory:' : join(dir, `catalog-${name}.duckdb`);
  await run(`ATTACH IF NOT EXISTS ${literal(location)} AS ${duckCatalog(name)}`);
  await run(`CREATE SCHEMA IF NOT EXISTS ${duckCatalog(name)}.${INTERNAL_SCHEMA}`);
  await run(`CREATE SCHEMA IF NOT EXISTS ${duckCatalog(name)}."default"`);
  await run(
    `CREATE TABLE IF NOT EXISTS ${internal(name, 'tables')} (id INTEGER, schema_name VARCHAR, table_name VARCHAR, properties VARCHAR, primary_key VARCHAR[], pk_name VARCHAR, latest BIGINT, earliest BIGINT)`,
  );
  // Catalog files written before materialized views and streaming tables were known.
  await run(`ALTER TABLE ${internal(name, 'tables')} ADD COLUMN IF NOT EXISTS kind VARCHAR`);
  await run(`ALTER TABLE ${internal(name, 'tables')} ADD COLUMN IF NOT EXISTS definition VARCHAR`);
  await run(
    `CREATE TABLE IF NOT EXISTS ${internal(name, 'history')} (table_id INTEGER, version BIGINT, ts TIMESTAMP, operation VARCHAR, parameters VARCHAR, metrics VARCHAR, cdf BOOLEAN)`,
  );
}

/** The catalogs attached, by their Databricks names. */
export async function catalogs(run: Run): Promise<string[]> {
  const r = await run(`SELECT substr(database_name, 4) AS name FROM duckdb_databases() WHERE starts_with(database_name, 'uc_') ORDER BY 1`);
  return r.getRowObjectsJS().map((row) => String(row['name']));
}

export async function findTable(run: Run, t: TableName): Promise<DeltaTable | undefined> {
  const r = await run(
    `SELECT id, properties, primary_key, pk_name, latest, earliest, kind, definition FROM ${internal(t.catalog, 'tables')} WHERE schema_name = ${literal(t.schema)} AND table_name = ${literal(t.name)}`,
  );
  const row = r.getRowObjectsJS()[0];
  if (row === undefined) return undefined;
  return {
    ...t,
    id: Number(row['id']),
    kind: (row['kind'] as TableKind | null) ?? 'MANAGED',
    ...(row['definition'] === null || row['definition'] === undefined ? {} : { definition: JSON.parse(String(row['definition'])) as Definition }),
    properties: JSON.parse(String(row['properties'])) as Record<string, string>,
    primaryKey: (row['primary_key'] as string[] | null) ?? [],
    pkName: String(row['pk_name'] ?? ''),
    latest: Number(row['latest']),
    earliest: Number(row['earliest']),
  };
}

export async function requireTable(run: Run, t: TableName): Promise<DeltaTable> {
  const found = await findTable(run, t);
  if (found === undefined) throw tableNotFound([t.catalog, t.schema, t.name]);
  return found;
}

/** The columns of a table, in order, quoted for DuckDB. */
export async function columnsOf(run: Run, t: TableName): Promise<string[]> {
  const r = await run(
    `SELECT column_name FROM duckdb_columns() WHERE database_name = ${literal(`uc_${t.catalog}`)} AND schema_name = ${literal(t.schema)} AND table_name = ${literal(t.name)} ORDER BY column_index`,
  );
  return r.getRowObjectsJS().map((row) => quote(String(row['column_name'])));
}

/** Records a new table at version 0 (its creation). */
export async function registerTable(
  run: Run,
  t: TableName,
  properties: Record<string, string>,
  primaryKey: string[],
  pkName: string,
  kind: TableKind = 'MANAGED',
  definition?: Definition,
): Promise<DeltaTable> {
  const r = await run(`SELECT coalesce(max(id), 0) + 1 AS id FROM ${internal(t.catalog, 'tables')}`);
  const id = Number(r.getRowObjectsJS()[0]!['id']);
  await run(
    `INSERT INTO ${internal(t.catalog, 'tables')} (id, schema_name, table_name, properties, primary_key, pk_name, latest, earliest, kind, definition) ` +
      `VALUES (${id}, ${literal(t.schema)}, ${literal(t.name)}, ${literal(JSON.stringify(properties))}, ` +
      `[${primaryKey.map(literal).join(', ')}]::VARCHAR[], ${literal(pkName)}, -1, 0, ${literal(kind)}, ${definition === undefined ? 'NULL' : literal(JSON.stringify(definition))})`,
  );
  const table: DeltaTable = { ...t, id, kind, ...(definition === undefined ? {} : { definition }), properties, primaryKey, pkName, latest: -1, earliest: 0 };
  if (cdfEnabled(properties)) await ensureChangeTable(run, table);
  return table;
}

/** Creates the change table of a table whose change data feed was just turned on. */
export async function ensureChangeTable(run: Run, t: DeltaTable): Promise<void> {
  await run(
    `CREATE TABLE IF NOT EXISTS ${changeTable(t)} AS SELECT *, ''::VARCHAR AS _change_type, 0::BIGINT AS _commit_version, ` +
      `TIMESTAMP '1970-01-01' AS _commit_timestamp, 0::BIGINT AS _seq FROM ${qualified(t)} LIMIT 0`,
  );
}

export async function setProperties(run: Run, t: DeltaTable, properties: Record<string, string>): Promise<void> {
  await run(`UPDATE ${internal(t.catalog, 'tables')} SET properties = ${literal(JSON.stringify(properties))} WHERE id = ${t.id}`);
  t.properties = properties;
  if (cdfEnabled(properties)) await ensureChangeTable(run, t);
}

/** Records how far a streaming table has read its source. */
export async function setDefinition(run: Run, t: DeltaTable, definition: Definition): Promise<void> {
  await run(`UPDATE ${internal(t.catalog, 'tables')} SET definition = ${literal(JSON.stringify(definition))} WHERE id = ${t.id}`);
  t.definition = definition;
}

export async function dropTable(run: Run, t: DeltaTable): Promise<void> {
  await run(`DROP TABLE IF EXISTS ${changeTable(t)}`);
  await run(`DELETE FROM ${internal(t.catalog, 'history')} WHERE table_id = ${t.id}`);
  await run(`DELETE FROM ${internal(t.catalog, 'tables')} WHERE id = ${t.id}`);
  await run(`DROP TABLE ${qualified(t)}`);
}

/** The version a commit to `t` gets, and its time: later than the table's last commit, as Delta keeps them. */
export async function nextCommit(run: Run, t: DeltaTable): Promise<{ version: number; ms: number }> {
  const r = await run(`SELECT epoch_ms(max(ts)) AS last FROM ${internal(t.catalog, 'history')} WHERE table_id = ${t.id}`);
  const last = r.getRowObjectsJS()[0]?.['last'];
  const ms = Math.max(Date.now(), last === null || last === undefined ? 0 : Number(last) + 1);
  return { version: t.latest + 1, ms };
}

export interface Commit {
  version: number;
  ms: number;
  operation: string;
  parameters: Record<string, string>;
  metrics: Record<string, number>;
  /** Whether change data was recorded for this version. */
  cdf: boolean;
}

/** Records a committed version and applies retention: versions older than `keep` newest ones leave the log. */
export async function recordCommit(run: Run, t: DeltaTable, c: Commit, keep: number | undefined): Promise<void> {
  await run(
    `INSERT INTO ${internal(t.catalog, 'history')} VALUES (${t.id}, ${c.version}, ${timestampLiteral(c.ms)}, ${literal(c.operation)}, ` +
      `${literal(JSON.stringify(c.parameters))}, ${literal(JSON.stringify(Object.fromEntries(Object.entries(c.metrics).map(([k, v]) => [k, String(v)]))))}, ${c.cdf})`,
  );
  t.latest = c.version;
  await run(`UPDATE ${internal(t.catalog, 'tables')} SET latest = ${c.version} WHERE id = ${t.id}`);
  await applyRetention(run, t, keep);
}

export async function applyRetention(run: Run, t: DeltaTable, keep: number | undefined): Promise<void> {
  if (keep === undefined || t.latest - keep + 1 <= t.earliest) return;
  t.earliest = t.latest - keep + 1;
  await run(`UPDATE ${internal(t.catalog, 'tables')} SET earliest = ${t.earliest} WHERE id = ${t.id}`);
  await run(`DELETE FROM ${internal(t.catalog, 'history')} WHERE table_id = ${t.id} AND version < ${t.earliest}`);
  const exists = await run(
    `SELECT count(*) AS n FROM duckdb_tables() WHERE database_name = ${literal(`uc_${t.catalog}`)} AND schema_name = '${INTERNAL_SCHEMA}' AND table_name = ${literal(`changes_${t.id}`)}`,
  );
  if (Number(exists.getRowObjectsJS()[0]!['n']) > 0) await run(`DELETE FROM ${changeTable(t)} WHERE _commit_version < ${t.earliest}`);
}

/** Every table of every catalog, for retention changes. */
export async function allTables(run: Run): Promise<DeltaTable[]> {
  const out: DeltaTable[] = [];
  for (const catalog of await catalogs(run)) {
    const r = await run(`SELECT schema_name, table_name FROM ${internal(catalog, 'tables')}`);
    for (const row of r.getRowObjectsJS()) out.push(await requireTable(run, { catalog, schema: String(row['schema_name']), name: String(row['table_name']) }));
  }
  return out;
}

/** The history rows of a table, newest first (the newest `limit` only, when given), as `DESCRIBE HISTORY` shows them. */
export function historySql(t: DeltaTable, limit?: number): string {
  return (
    `SELECT version, ts AS "timestamp", 'outflow-sandbox' AS userId, 'sandbox@outflow.local' AS userName, operation, ` +
    `parameters AS operationParameters, CASE WHEN version = 0 THEN NULL ELSE version - 1 END AS readVersion, 'WriteSerializable' AS isolationLevel, ` +
    `operation = 'WRITE' AS isBlindAppend, metrics AS operationMetrics, NULL::VARCHAR AS userMetadata, 'Outflow-Emulator' AS engineInfo ` +
    `FROM ${internal(t.catalog, 'history')} WHERE table_id = ${t.id} ORDER BY version DESC${limit === undefined ? '' : ` LIMIT ${limit}`}`
  );
}

/** Which versions in [start, end] were committed without change data; the first such, or undefined. */
export async function firstVersionWithoutChanges(run: Run, t: DeltaTable, start: number, end: number): Promise<number | undefined> {
  const r = await run(`SELECT min(version) AS v FROM ${internal(t.catalog, 'history')} WHERE table_id = ${t.id} AND version BETWEEN ${start} AND ${end} AND NOT cdf`);
  const v = r.getRowObjectsJS()[0]?.['v'];
  return v === null || v === undefined ? undefined : Number(v);
}

/** The version committed at or after `ms` (first) or at or before it (last). */
export async function versionAt(run: Run, t: DeltaTable, ms: number, which: 'first' | 'last'): Promise<number | undefined> {
  const r = await run(
    which === 'first'
      ? `SELECT min(version) AS v FROM ${internal(t.catalog, 'history')} WHERE table_id = ${t.id} AND ts >= ${timestampLiteral(ms)}`
      : `SELECT max(version) AS v FROM ${internal(t.catalog, 'history')} WHERE table_id = ${t.id} AND ts <= ${timestampLiteral(ms)}`,
  );
  const v = r.getRowObjectsJS()[0]?.['v'];
  return v === null || v === undefined ? undefined : Number(v);
}

export const cdfRangeErrors = {
  afterLatest: (start: number, latest: number) =>
    new DatabricksSqlError(
      '',
      '22003',
      `Provided Start version(${start}) for reading change data is invalid. Start version cannot be greater than the latest version of the table(${latest}).`,
    ),
  endBeforeStart: (start: number, end: number) =>
    new DatabricksSqlError('DELTA_INVALID_CDC_RANGE', '22003', `CDC range from start ${start} to end ${end} was invalid. End cannot be before start.`),
  expired: (version: number, t: DeltaTable) =>
    new DatabricksSqlError('DELTA_VERSION_NOT_FOUND', '22003', `Cannot time travel Delta table to version ${version}. Available versions: [${t.earliest}, ${t.latest}].`),
  notRecorded: (start: number, end: number, version: number) =>
    new DatabricksSqlError(
      'DELTA_MISSING_CHANGE_DATA',
      'KD002',
      `Error getting change data for range [${start} , ${end}] as change data was not recorded for version [${version}]. ` +
        'If you enabled the change data feed on this table, use `DESCRIBE HISTORY` to see when it was first enabled. ' +
        'Otherwise, to start recording change data, use `ALTER TABLE table_name SET TBLPROPERTIES (delta.enableChangeDataFeed=true)`.',
    ),
  timestampAfterLatest: (given: string, t: DeltaTable) =>
    new DatabricksSqlError(
      'DELTA_TIMESTAMP_GREATER_THAN_COMMIT',
      '42816',
      `The provided timestamp (${given}) is after the latest version available to this table ${backticked([t.catalog, t.schema, t.name])}. Please use a timestamp before or at the latest commit.`,
    ),
};
