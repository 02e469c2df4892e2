import { join } from 'node:path';
import { OutflowError, describeError, type ConnectorContext, type DiffStore, type Model, type PushdownDiff } from '@outflow/core';
import { assertNoReservedColumns, SqlDiffStore, withPlanTempDir, type SqlModel } from '@outflow/state-duckdb';
import type { DuckDBConfig } from './config.js';
import { modelQuery } from './model.js';
import { assertReadableFile, databaseLocation, openError } from './open.js';
import { toValue } from './values.js';

const INTEGER_TYPES = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'UTINYINT', 'USMALLINT', 'UINTEGER']);
const q = (id: string) => `"${id.replaceAll('"', '""')}"`;

/**
 * The in-engine diff: the model is read by DuckDB where it lives (the warehouse file is
 * attached read-only; CSV and Parquet files are read directly), fingerprinted and compared
 * with the delivered state in SQL. Only changed rows come out into JavaScript. The delivered
 * state is Outflow's own DuckDB file in the connection's state folder.
 */
export const pushdown: PushdownDiff<DuckDBConfig> = {
  async open(ctx: ConnectorContext<DuckDBConfig>, model: Model, options): Promise<DiffStore> {
    const query = modelQuery(model);
    const location = databaseLocation(ctx.config);
    if (location !== ':memory:') await assertReadableFile(location, 'OUTFLOW_SOURCE');
    const safe = options.sync.replace(/[^A-Za-z0-9_.-]/g, '_');
    let describe: { name: string; type: string }[] = [];
    const setup = async (conn: import('@duckdb/node-api').DuckDBConnection) => {
      if (location !== ':memory:') {
        // A failure here concerns the warehouse file, not the diff state the store opens.
        await conn.run(`ATTACH '${location.replaceAll("'", "''")}' AS wh (READ_ONLY)`).catch((err: unknown) => {
          throw openError(location, err, 'OUTFLOW_SOURCE');
        });
        await conn.run(`USE wh`);
      }
      const rows = (await conn.runAndReadAll(query.describe)).getRowObjectsJS();
      describe = rows.map((r) => ({ name: String(r['column_name']), type: String(r['column_type']) }));
    };
    const sqlModel: SqlModel = { relation: query.sql, key: { kind: 'text', expr: 'NULL' }, fingerprint: [] };
    let store: SqlDiffStore;
    const openStore = (tempDir: string) =>
      SqlDiffStore.open(sqlModel, {
        stateFile: join(ctx.stateDir, `diff-${safe}.duckdb`),
        readOnly: options.readOnly,
        tempDir,
        ...(ctx.config.memoryLimit ? { memoryLimit: ctx.config.memoryLimit } : {}),
        ...(ctx.config.threads ? { threads: ctx.config.threads } : {}),
        setup,
        convert: toValue as never,
        keyKind: () => keyOf(model.primaryKey, describe, query.label),
      });
    try {
      // A dry run spills to a private temp folder of its own, removed when the store closes.
      store = await (options.readOnly ? withPlanTempDir(openStore) : openStore(join(ctx.stateDir, 'tmp')));
    } catch (err) {
      if (err instanceof OutflowError) throw err;
      throw new OutflowError('OUTFLOW_SOURCE', `DuckDB could not diff ${query.label}: ${describeError(err)}`, { cause: err });
    }
    const names = new Set(describe.map((c) => c.name));
    try {
      assertNoReservedColumns(names, query.label);
    } catch (err) {
      await store.close();
      throw err;
    }
    const missing = (options.columns ?? []).filter((c) => !names.has(c));
    if (missing.length) {
      await store.close();
      throw new OutflowError('OUTFLOW_MAPPING', `${query.label} has no column ${missing.join(', ')}`);
    }
    store.setFingerprint(options.columns ?? describe.map((c) => c.name));
    return store;
  },
};

/** Native integer keys are diffed by key blocks; anything else by its text. */
function keyOf(primaryKey: string[], columns: { name: string; type: string }[], label: string): SqlModel['key'] {
  const types = new Map(columns.map((c) => [c.name, c.type]));
  const missing = primaryKey.filter((c) => !types.has(c));
  if (missing.length) {
    throw new OutflowError('OUTFLOW_MAPPING', `${label} has no primary key column ${missing.join(', ')}`);
  }
  if (primaryKey.length === 1 && INTEGER_TYPES.has(types.get(primaryKey[0]!)!)) return { kind: 'int', column: primaryKey[0]! };
  const expr =
    primaryKey.length === 1
      ? `CAST(${q(primaryKey[0]!)} AS VARCHAR)`
      : `to_json([${primaryKey.map((c) => `CAST(${q(c)} AS VARCHAR)`).join(', ')}])::VARCHAR`;
  return { kind: 'text', expr };
}
