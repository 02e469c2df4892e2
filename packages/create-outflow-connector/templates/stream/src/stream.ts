import {
  OutflowError,
  keyOf,
  type Change,
  type ChangeBatch,
  type ChangeStream,
  type Checkpoint,
  type ConnectorContext,
  type Model,
  type Row,
  type Stream,
} from '@outflow/core';
import { failure, send } from './client.js';
import type { __Name__Config } from './config.js';
import { tableOf } from './source.js';

/** How long one poll waits for a change (a long poll), at most. */
const POLL_WAIT_MS = 1_000;
const PAGE = 500;

interface WireChange {
  position: string;
  op: Change['op'];
  key: Row;
  row?: Row;
  committedAt: string;
}

/** Where the position secured for a reconcile waits, per sync and table (in the ledger's kv store). */
const securedKey = (table: string, sync: string | undefined) => `stream:${sync ?? ''}:${table}:secured`;

/**
 * The stale-stream handshake: secure a position that keeps every change from now on (the
 * log's head), remember it, then report stale. The engine reconciles by a diff read through
 * the source and opens the stream again with `reconciled`, which resumes there.
 */
async function reportStale(ctx: ConnectorContext<__Name__Config>, table: string, sync: string | undefined, why: string): Promise<never> {
  const answer = await send(ctx, { method: 'GET', path: `/v1/tables/${encodeURIComponent(table)}/changes/head` }, 'OUTFLOW_SOURCE');
  if (answer.status !== 200) throw failure(ctx, answer, 'OUTFLOW_SOURCE', `the change log head of ${table}`);
  const position = (answer.body as { position: string }).position;
  await ctx.kv.set(securedKey(table, sync), position);
  throw new OutflowError('OUTFLOW_STREAM_STALE', `${why}: a diff reconciles ${table}, then the stream resumes at position ${position}`);
}

/** A change log followed by polling, from one position on. */
class LogStream implements ChangeStream {
  // Every change in commit order: a row deleted and inserted again reads as both.
  readonly changes = 'log' as const;
  private readonly closing = new AbortController();
  private stale = false;
  private lagMs = 0;
  private secured: string | undefined;

  constructor(
    private readonly ctx: ConnectorContext<__Name__Config>,
    private readonly model: Model,
    private position: string,
    private readonly sync: string | undefined,
    /** The secured position this stream resumed at, forgotten at its first commit. */
    resumedAt: string | undefined,
  ) {
    this.secured = resumedAt;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ChangeBatch> {
    const { ctx, model } = this;
    const table = tableOf(model);
    const waitMs = Math.min(POLL_WAIT_MS, Math.floor((ctx.config.timeoutMs ?? 30_000) / 2));
    while (!this.closing.signal.aborted) {
      const query = { after: this.position, limit: PAGE, waitMs };
      let answer;
      try {
        answer = await send(ctx, { method: 'GET', path: `/v1/tables/${encodeURIComponent(table)}/changes`, query, signal: this.closing.signal }, 'OUTFLOW_SOURCE');
      } catch (err) {
        if (this.closing.signal.aborted) return;
        throw err;
      }
      if (answer.status === 410) {
        this.stale = true;
        await reportStale(ctx, table, this.sync, `the change log no longer holds position ${this.position}`);
      }
      if (answer.status !== 200) throw failure(ctx, answer, 'OUTFLOW_SOURCE', `the changes of ${table}`);
      const wire = (answer.body as { changes: WireChange[] }).changes;
      const last = wire[wire.length - 1];
      this.lagMs = last === undefined ? 0 : Math.max(0, Date.now() - Date.parse(last.committedAt));
      if (last === undefined) continue;
      this.position = last.position;
      yield { changes: wire.map((c) => this.change(c)), checkpoint: last.position };
    }
  }

  private change(c: WireChange): Change {
    const key = keyOf(c.row ?? c.key, this.model.primaryKey);
    if (key === undefined) throw new OutflowError('OUTFLOW_SOURCE', `a change at position ${c.position} has no primary key ${this.model.primaryKey.join(', ')}`);
    return { op: c.op, key, ...(c.row === undefined ? {} : { after: c.row }), position: c.position, committedAt: c.committedAt };
  }

  // Called in checkpoint order once everything up to `checkpoint` is delivered or parked.
  // This log keeps changes for a retention period whatever is read, so there is nothing to
  // free; a vendor that keeps changes until acknowledged would acknowledge here.
  async commit(_checkpoint: Checkpoint): Promise<void> {
    if (this.secured === undefined) return;
    await this.ctx.kv.delete(securedKey(tableOf(this.model), this.sync));
    this.secured = undefined;
  }

  // Asked while iterating; answers from what the last poll saw, without a request.
  async health(): Promise<{ stale: boolean; lagMs?: number }> {
    return { stale: this.stale, lagMs: this.lagMs };
  }

  // Ends a waiting poll at once: the iteration then finishes.
  async close(): Promise<void> {
    this.closing.abort();
  }
}

export const stream: Stream<__Name__Config> = {
  /**
   * Called once per stream run; a throw fails the run. `from` is the last checkpoint
   * committed, or null. This log holds no snapshot, so a first open(null) asks for a diff
   * (OUTFLOW_STREAM_STALE), which delivers the rows already there; the engine then opens
   * again with `reconciled` and the stream starts where it secured its position.
   */
  async open(ctx, model, from, options) {
    const table = tableOf(model);
    const sync = options?.sync;
    if (from !== null) {
      // A position past the log's retention is reported now rather than at the first poll.
      const probe = await send(ctx, { method: 'GET', path: `/v1/tables/${encodeURIComponent(table)}/changes`, query: { after: from, limit: 1 } }, 'OUTFLOW_SOURCE');
      if (probe.status === 410) await reportStale(ctx, table, sync, `the change log no longer holds checkpoint ${from}`);
      if (probe.status !== 200) throw failure(ctx, probe, 'OUTFLOW_SOURCE', `the changes of ${table}`);
      return new LogStream(ctx, model, from, sync, undefined);
    }
    const secured = await ctx.kv.get(securedKey(table, sync));
    if (secured !== undefined && options?.reconciled) return new LogStream(ctx, model, secured, sync, secured);
    // A secured position still waits for its reconcile: keep it, and ask for the reconcile again.
    if (secured !== undefined) throw new OutflowError('OUTFLOW_STREAM_STALE', `a reconcile of ${table} is pending: a diff runs first, then the stream resumes at position ${secured}`);
    return reportStale(ctx, table, sync, `a new stream of ${table} starts from a diff of the rows already there`);
  },
};
