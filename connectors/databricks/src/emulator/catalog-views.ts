/**
 * What Databricks shows of its catalog, built over DuckDB's: `information_schema` views
 * (tables, columns, table_constraints, key_column_usage) and the rows of the TCLIService
 * metadata calls (GetCatalogs, GetSchemas, GetTables, GetColumns, GetPrimaryKeys) and of
 * SHOW CATALOGS / SCHEMAS / TABLES, with
 * Databricks' type names. The emulator's own records (`__delta`) never show.
 */
import { INTERNAL_SCHEMA } from './delta.js';
import { literal, quote } from './sql.js';

/** DuckDB's type name as Databricks names it (`VARCHAR` is `STRING`). */
const TYPE_NAME = `CASE
  WHEN c.data_type = 'VARCHAR' THEN 'STRING'
  WHEN c.data_type = 'INTEGER' THEN 'INT'
  WHEN c.data_type = 'BLOB' THEN 'BINARY'
  WHEN c.data_type LIKE 'TIMESTAMP%' THEN 'TIMESTAMP'
  ELSE c.data_type END`;

/** The JDBC type code of a Databricks type, as GetColumns gives it in DATA_TYPE. */
const JDBC_TYPE = `CASE
  WHEN c.data_type = 'BOOLEAN' THEN 16 WHEN c.data_type = 'TINYINT' THEN -6 WHEN c.data_type = 'SMALLINT' THEN 5
  WHEN c.data_type = 'INTEGER' THEN 4 WHEN c.data_type = 'BIGINT' THEN -5 WHEN c.data_type = 'FLOAT' THEN 6
  WHEN c.data_type = 'DOUBLE' THEN 8 WHEN c.data_type LIKE 'DECIMAL%' THEN 3 WHEN c.data_type = 'DATE' THEN 91
  WHEN c.data_type LIKE 'TIMESTAMP%' THEN 93 WHEN c.data_type = 'BLOB' THEN -2 ELSE 12 END`;

const USER_COLUMNS = `FROM duckdb_columns() c WHERE starts_with(c.database_name, 'uc_') AND c.schema_name <> '${INTERNAL_SCHEMA}'`;

/** `information_schema.columns`: ordinal positions count from 0, as Databricks numbers them. */
export const columnsView = (): string =>
  `SELECT substr(c.database_name, 4) AS table_catalog, c.schema_name AS table_schema, c.table_name, c.column_name, ` +
  `(c.column_index - 1)::INT AS ordinal_position, NULL::VARCHAR AS column_default, CASE WHEN c.is_nullable THEN 'YES' ELSE 'NO' END AS is_nullable, ` +
  `regexp_replace(${TYPE_NAME}, '\\(.*$', '') AS data_type, lower(${TYPE_NAME}) AS full_data_type, ` +
  `c.numeric_precision::INT AS numeric_precision, c.numeric_precision_radix::INT AS numeric_precision_radix, c.numeric_scale::INT AS numeric_scale, ` +
  `NULL::VARCHAR AS comment ${USER_COLUMNS}`;

/**
 * `information_schema.tables`: `table_type` is `MATERIALIZED_VIEW` or `STREAMING_TABLE` for
 * those (known from the catalogs' records when `catalogs` are given), else `MANAGED`.
 */
export const tablesView = (catalogs: readonly string[] = []): string => {
  const kinds = catalogs
    .map((c) => `SELECT ${literal(`uc_${c}`)} AS database_name, schema_name, table_name, kind FROM ${quote(`uc_${c}`)}.${INTERNAL_SCHEMA}.tables WHERE kind IS NOT NULL`)
    .join(' UNION ALL ');
  return (
    `SELECT substr(t.database_name, 4) AS table_catalog, t.schema_name AS table_schema, t.table_name, ${kinds ? `coalesce(k.kind, 'MANAGED')` : `'MANAGED'`} AS table_type, ` +
    `'DELTA' AS data_source_format, NULL::VARCHAR AS comment FROM duckdb_tables() t ` +
    (kinds ? `LEFT JOIN (${kinds}) k ON k.database_name = t.database_name AND k.schema_name = t.schema_name AND k.table_name = t.table_name ` : '') +
    `WHERE starts_with(t.database_name, 'uc_') AND t.schema_name <> '${INTERNAL_SCHEMA}'`
  );
};

export const schemataView = (): string =>
  `SELECT substr(s.database_name, 4) AS catalog_name, s.schema_name, NULL::VARCHAR AS comment FROM duckdb_schemas() s ` +
  `WHERE starts_with(s.database_name, 'uc_') AND s.schema_name NOT IN ('${INTERNAL_SCHEMA}', 'main')`;

/** One row per primary key column, over every catalog's records. */
const keyColumns = (catalogs: readonly string[]): string =>
  catalogs.length === 0
    ? `SELECT NULL::VARCHAR AS catalog, NULL::VARCHAR AS schema_name, NULL::VARCHAR AS table_name, NULL::VARCHAR AS pk_name, NULL::VARCHAR AS column_name, NULL::INT AS position WHERE false`
    : catalogs
        .map(
          (c) =>
            `SELECT ${literal(c)} AS catalog, schema_name, table_name, pk_name, unnest(primary_key) AS column_name, unnest(generate_series(1, len(primary_key)))::INT AS position ` +
            `FROM ${quote(`uc_${c}`)}.${INTERNAL_SCHEMA}.tables WHERE len(primary_key) > 0`,
        )
        .join(' UNION ALL ');

export const tableConstraintsView = (catalogs: readonly string[]): string =>
  `SELECT DISTINCT catalog AS constraint_catalog, schema_name AS constraint_schema, pk_name AS constraint_name, catalog AS table_catalog, ` +
  `schema_name AS table_schema, table_name, 'PRIMARY KEY' AS constraint_type, 'NO' AS is_deferrable, 'NO' AS initially_deferred, 'NO' AS enforced ` +
  `FROM (${keyColumns(catalogs)})`;

export const keyColumnUsageView = (catalogs: readonly string[]): string =>
  `SELECT catalog AS constraint_catalog, schema_name AS constraint_schema, pk_name AS constraint_name, catalog AS table_catalog, ` +
  `schema_name AS table_schema, table_name, column_name, position AS ordinal_position, NULL::INT AS position_in_unique_constraint ` +
  `FROM (${keyColumns(catalogs)})`;

/** The SQL of an information_schema view by name, or undefined for one the emulator lacks. */
export function informationSchemaView(view: string, catalogs: readonly string[]): string | undefined {
  switch (view.toLowerCase()) {
    case 'columns':
      return columnsView();
    case 'tables':
      return tablesView(catalogs);
    case 'schemata':
      return schemataView();
    case 'table_constraints':
      return tableConstraintsView(catalogs);
    case 'key_column_usage':
      return keyColumnUsageView(catalogs);
    default:
      return undefined;
  }
}

/** A JDBC-style pattern (`%`, `_`) as a SQL condition on `column`; no condition for an absent one. */
export function matches(column: string, pattern: string | null | undefined): string {
  if (pattern === undefined || pattern === null || pattern === '' || pattern === '%' || pattern === '*') return 'true';
  return `${column} ILIKE ${literal(pattern.replace(/\*/g, '%'))}`;
}

export const getCatalogsSql = (): string =>
  `SELECT substr(database_name, 4) AS TABLE_CAT FROM duckdb_databases() WHERE starts_with(database_name, 'uc_') ORDER BY 1`;

export const getSchemasSql = (catalog?: string | null, schema?: string | null): string =>
  `SELECT schema_name AS TABLE_SCHEM, catalog_name AS TABLE_CATALOG FROM (${schemataView()}) ` +
  `WHERE ${matches('catalog_name', catalog)} AND ${matches('schema_name', schema)} ORDER BY 2, 1`;

export const getTablesSql = (catalog?: string | null, schema?: string | null, table?: string | null, types?: readonly string[] | null): string =>
  `SELECT table_catalog AS TABLE_CAT, table_schema AS TABLE_SCHEM, table_name AS TABLE_NAME, 'TABLE' AS TABLE_TYPE, NULL::VARCHAR AS REMARKS, ` +
  `NULL::VARCHAR AS TYPE_CAT, NULL::VARCHAR AS TYPE_SCHEM, NULL::VARCHAR AS TYPE_NAME, NULL::VARCHAR AS SELF_REFERENCING_COL_NAME, NULL::VARCHAR AS REF_GENERATION ` +
  `FROM (${tablesView()}) WHERE ${matches('table_catalog', catalog)} AND ${matches('table_schema', schema)} AND ${matches('table_name', table)} ` +
  `${types && types.length > 0 && !types.some((t) => t.toUpperCase() === 'TABLE') ? 'AND false ' : ''}ORDER BY 1, 2, 3`;

export const getColumnsSql = (catalog?: string | null, schema?: string | null, table?: string | null, column?: string | null): string =>
  `SELECT substr(c.database_name, 4) AS TABLE_CAT, c.schema_name AS TABLE_SCHEM, c.table_name AS TABLE_NAME, c.column_name AS COLUMN_NAME, ` +
  `(${JDBC_TYPE})::INT AS DATA_TYPE, ${TYPE_NAME} AS TYPE_NAME, c.numeric_precision::INT AS COLUMN_SIZE, NULL::INT AS BUFFER_LENGTH, ` +
  `c.numeric_scale::INT AS DECIMAL_DIGITS, c.numeric_precision_radix::INT AS NUM_PREC_RADIX, CASE WHEN c.is_nullable THEN 1 ELSE 0 END::INT AS NULLABLE, ` +
  `NULL::VARCHAR AS REMARKS, NULL::VARCHAR AS COLUMN_DEF, NULL::INT AS SQL_DATA_TYPE, NULL::INT AS SQL_DATETIME_SUB, NULL::INT AS CHAR_OCTET_LENGTH, ` +
  `(c.column_index - 1)::INT AS ORDINAL_POSITION, CASE WHEN c.is_nullable THEN 'YES' ELSE 'NO' END AS IS_NULLABLE, NULL::VARCHAR AS SCOPE_CATALOG, ` +
  `NULL::VARCHAR AS SCOPE_SCHEMA, NULL::VARCHAR AS SCOPE_TABLE, NULL::SMALLINT AS SOURCE_DATA_TYPE, 'NO' AS IS_AUTO_INCREMENT ` +
  `${USER_COLUMNS} AND ${matches('substr(c.database_name, 4)', catalog)} AND ${matches('c.schema_name', schema)} AND ${matches('c.table_name', table)} ` +
  `AND ${matches('c.column_name', column)} ORDER BY 1, 2, 3, c.column_index`;

export const getPrimaryKeysSql = (catalogs: readonly string[], catalog: string, schema: string, table: string): string =>
  `SELECT table_catalog AS TABLE_CAT, table_schema AS TABLE_SCHEM, table_name AS TABLE_NAME, column_name AS COLUMN_NAME, ` +
  `ordinal_position AS KEY_SEQ, constraint_name AS PK_NAME FROM (${keyColumnUsageView(catalogs)}) ` +
  `WHERE table_catalog = ${literal(catalog.toLowerCase())} AND table_schema = ${literal(schema.toLowerCase())} AND table_name = ${literal(table.toLowerCase())} ORDER BY KEY_SEQ`;

/** SHOW CATALOGS: one column, `catalog`. */
export const showCatalogsSql = (pattern?: string): string =>
  `SELECT TABLE_CAT AS catalog FROM (${getCatalogsSql()}) WHERE ${matches('TABLE_CAT', pattern)} ORDER BY 1`;

/** SHOW SCHEMAS: one column, `databaseName`, as Databricks names it. */
export const showSchemasSql = (catalog: string, pattern?: string): string =>
  `SELECT schema_name AS databaseName FROM (${schemataView()}) WHERE catalog_name = ${literal(catalog)} AND ${matches('schema_name', pattern)} ORDER BY 1`;

/** SHOW TABLES: `database` (the schema), `tableName`, `isTemporary`. */
export const showTablesSql = (catalog: string, schema: string, pattern?: string): string =>
  `SELECT table_schema AS database, table_name AS tableName, false AS isTemporary FROM (${tablesView()}) ` +
  `WHERE table_catalog = ${literal(catalog)} AND table_schema = ${literal(schema)} AND ${matches('table_name', pattern)} ORDER BY 2`;
