import { join } from 'node:path';
import type { StateStore } from '@outflow/core';
import { EmbeddedDiffStore } from './embedded.js';
import { withPlanTempDir } from './plan-temp.js';

export { EmbeddedDiffStore, type EmbeddedOptions } from './embedded.js';
export { SqlDiffStore, type DiffStats, type SqlDiffOptions, type SqlModel } from './sql-diff.js';
export { withPlanTempDir } from './plan-temp.js';
export { assertNoReservedColumns, RESERVED_COLUMNS } from './reserved.js';

export interface DuckDBStateStoreOptions {
  /** The state folder (`.outflow`): each sync's state is `diff/<sync>.duckdb` in it. */
  dir: string;
  /** DuckDB memory limit per open store; the diff spills to `<dir>/tmp` beyond it. */
  memoryLimit?: string;
  threads?: number;
}

function safeName(sync: string): string {
  return sync.replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** Path of a sync's delivered-state file in a state folder. */
export function stateFileOf(dir: string, sync: string): string {
  return join(dir, 'diff', `${safeName(sync)}.duckdb`);
}

/**
 * The embedded delivered-state store: one DuckDB file per sync under `<dir>/diff/`. A dry
 * run opens it read-only (a missing file reads as empty) and spills to a temp folder of its
 * own (see {@link withPlanTempDir}), so it writes nothing under `dir`.
 */
export function duckdbStateStore(o: DuckDBStateStoreOptions): StateStore {
  // The engine hands over each row's fingerprint of the delivered fields, so columns are not needed.
  const open = (sync: string, readOnly: boolean, tempDir: string) =>
    EmbeddedDiffStore.open({
      stateFile: stateFileOf(o.dir, sync),
      readOnly,
      tempDir,
      ...(o.memoryLimit ? { memoryLimit: o.memoryLimit } : {}),
      ...(o.threads ? { threads: o.threads } : {}),
    });
  return {
    open: ({ sync, readOnly }) => (readOnly ? withPlanTempDir((tmp) => open(sync, true, tmp)) : open(sync, false, join(o.dir, 'tmp'))),
  };
}
