import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { OutflowError, describeError, type ErrorCode } from '@outflow/core';
import type { DuckDBConfig } from './config.js';

/** What {@link openDuckDB} needs; `readOnly` defaults to true as in the config schema. */
export type OpenOptions = Omit<DuckDBConfig, 'readOnly'> & { readOnly?: boolean };

/** A connection to an open database, released by `close()`. */
export interface OpenDuckDB {
  connection: DuckDBConnection;
  /** The absolute database file, or `:memory:`. */
  location: string;
  /**
   * Closes the connection, and the instance when no other caller uses it; safe to call more
   * than once. A streaming result still being read keeps the file open (and locked) until it
   * is finished or garbage-collected, so finish or interrupt and drain it first.
   */
  close(): void;
}

const IN_MEMORY = ':memory:';

/** The absolute file a config points at, or `:memory:` when it names none. */
export function databaseLocation(config: OpenOptions): string {
  return config.path === undefined || config.path === IN_MEMORY ? IN_MEMORY : resolve(process.cwd(), config.path);
}

/**
 * Connects to the database of `config`, opened read-only unless `readOnly: false`. Callers
 * in one process share one instance per file, closed when the last of them closes.
 * Failures are {@link OutflowError}s with `code` that name the file: it does not exist, is
 * not a readable file, or another process holds it open for writing (retryable). A missing
 * file is an error even when writable, so a typo never creates an empty warehouse.
 */
export async function openDuckDB(config: OpenOptions, code: ErrorCode = 'OUTFLOW_SOURCE'): Promise<OpenDuckDB> {
  const location = databaseLocation(config);
  const options: Record<string, string> = {};
  if (location !== IN_MEMORY) {
    await assertReadableFile(location, code);
    if (config.readOnly !== false) options['access_mode'] = 'READ_ONLY';
  }
  if (config.threads !== undefined) options['threads'] = String(config.threads);
  if (config.memoryLimit !== undefined) options['memory_limit'] = config.memoryLimit;

  const key = location === IN_MEMORY ? null : JSON.stringify([location, options]);
  const instance = await acquire(key, location, options, code);
  let connection: DuckDBConnection;
  try {
    connection = await instance.connect();
  } catch (err) {
    release(key, instance);
    throw openError(location, err, code);
  }
  let closed = false;
  return {
    connection,
    location,
    close() {
      if (closed) return;
      closed = true;
      connection.closeSync();
      release(key, instance);
    },
  };
}

/**
 * Instances of database files open in this process, shared by concurrent callers. DuckDB
 * locks files with POSIX record locks, which a process loses on all its descriptors of a
 * file as soon as it closes any one of them; one instance per file keeps the lock held
 * for as long as anyone reads.
 */
const shared = new Map<string, { instance: Promise<DuckDBInstance>; users: number }>();

async function acquire(
  key: string | null,
  location: string,
  options: Record<string, string>,
  code: ErrorCode,
): Promise<DuckDBInstance> {
  let entry = key === null ? undefined : shared.get(key);
  if (!entry) {
    const created = { instance: DuckDBInstance.create(location, options), users: 0 };
    if (key !== null) {
      shared.set(key, created);
      created.instance.catch(() => {
        if (shared.get(key) === created) shared.delete(key);
      });
    }
    entry = created;
  }
  entry.users++;
  try {
    return await entry.instance;
  } catch (err) {
    throw openError(location, err, code);
  }
}

function release(key: string | null, instance: DuckDBInstance): void {
  const entry = key === null ? undefined : shared.get(key);
  if (!entry) {
    instance.closeSync();
    return;
  }
  if (--entry.users > 0) return;
  shared.delete(key!);
  instance.closeSync();
}

export async function assertReadableFile(location: string, code: ErrorCode): Promise<void> {
  const details = { path: location };
  let info;
  try {
    info = await stat(location);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${describeError(err)})`;
    throw new OutflowError(code, `DuckDB database file "${location}" ${reason}; set \`path\` to an existing DuckDB file`, {
      details,
      cause: err,
    });
  }
  if (!info.isFile()) {
    throw new OutflowError(code, `DuckDB database path "${location}" is not a file`, { details });
  }
}

/** The error of a failed open of a DuckDB file: a lock held by another process is retryable. */
export function openError(location: string, err: unknown, code: ErrorCode): OutflowError {
  const message = describeError(err);
  if (/Could not set lock|Conflicting lock/i.test(message)) {
    return new OutflowError(
      code,
      `DuckDB database file "${location}" is open for writing in another process, so it cannot be opened now; close that process or point \`path\` at a copy (${message})`,
      { retryable: true, details: { path: location }, cause: err },
    );
  }
  return new OutflowError(code, `could not open DuckDB database "${location}": ${message}`, {
    details: { path: location },
    cause: err,
  });
}
