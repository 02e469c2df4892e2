/**
 * The emulator's DuckDB: one connection, every statement run in turn (a warehouse's commits
 * are ordered per table; one queue keeps versions and change records consistent).
 */
import { DuckDBInstance, type DuckDBConnection, type DuckDBResultReader } from '@duckdb/node-api';

export class Duck {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
  ) {}

  static async open(): Promise<Duck> {
    // Two threads at most: the machine a sandbox runs on is shared with the runner.
    const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
    return new Duck(instance, await instance.connect());
  }

  /** Runs `work` alone on the connection: nothing else runs until it settles. */
  exclusive<T>(work: (run: (sql: string) => Promise<DuckDBResultReader>) => Promise<T>): Promise<T> {
    const run = (sql: string) => this.connection.runAndReadAll(sql);
    const result = this.queue.then(() => work(run));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Runs `work` in a transaction, rolled back when it throws. */
  transaction<T>(work: (run: (sql: string) => Promise<DuckDBResultReader>) => Promise<T>): Promise<T> {
    return this.exclusive(async (run) => {
      await run('BEGIN TRANSACTION');
      try {
        const out = await work(run);
        await run('COMMIT');
        return out;
      } catch (err) {
        await run('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    await this.queue;
    this.connection.closeSync();
    this.instance.closeSync();
  }
}
