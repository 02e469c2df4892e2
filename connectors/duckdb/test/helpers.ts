import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { type ConnectorContext, type Row, type RowBatch } from '@outflow/core';
import { createTestContext } from '@outflow/testing';
import type { DuckDBConfig } from '@outflow/connector-duckdb';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

/** A connector context built by hand: in-memory kv, no-op metrics, a temp state dir. */
export function context(
  config: Partial<DuckDBConfig>,
  signal: AbortSignal = new AbortController().signal,
): ConnectorContext<DuckDBConfig> {
  const ctx = createTestContext({ readOnly: true, ...config }, { connection: 'warehouse' });
  return { ...ctx, signal };
}

/** Runs SQL statements against a database file with a writable instance, then closes it. */
export async function runSql(path: string, sql: string): Promise<void> {
  const instance = await DuckDBInstance.create(path);
  const connection = await instance.connect();
  try {
    await connection.run(sql);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** Reads every batch of an async iterable. */
export async function collect(batches: AsyncIterable<RowBatch>): Promise<RowBatch[]> {
  const out: RowBatch[] = [];
  for await (const batch of batches) out.push(batch);
  return out;
}

export async function readRows(batches: AsyncIterable<RowBatch>): Promise<Row[]> {
  return (await collect(batches)).flatMap((b) => b.rows);
}

/**
 * Starts another Node process that opens `path` with DuckDB (read-write unless `readOnly`)
 * and keeps it open until killed. Resolves once the database is open, or with the error
 * DuckDB gave.
 */
export function otherProcess(path: string, readOnly = false): Promise<{ child: ChildProcess; error?: string }> {
  const script = `
    import { DuckDBInstance } from '@duckdb/node-api';
    try {
      // Kept reachable: a collected instance closes its file and drops its lock.
      globalThis.db = await DuckDBInstance.create(process.argv[1], ${readOnly ? "{ access_mode: 'READ_ONLY' }" : '{}'});
      globalThis.connection = await globalThis.db.connect();
      process.stdout.write('open\\n');
      setInterval(() => {}, 1 << 30);
    } catch (err) {
      process.stdout.write('error ' + err.message + '\\n');
      process.exit(0);
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, path], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!out.includes('\n')) return;
      const line = out.split('\n')[0]!;
      resolve(line === 'open' ? { child } : { child, error: line.slice('error '.length) });
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (!out.includes('\n')) reject(new Error(`helper process exited with ${code} before opening the database`));
    });
  });
}

/** Stops a process started by {@link otherProcess} and waits for it to exit. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill();
  await exited;
}
