/**
 * Bulk API 2.0 jobs in flight, kept in the connection's key-value store (in the ledger)
 * from the moment a job is created until its results are read. A process killed in
 * between — after the upload, after `UploadComplete`, while polling — leaves the entry
 * behind; when the engine sends those operations again (or looks them up), the connector
 * finds the job by their idempotency keys and reads its results instead of uploading them
 * a second time.
 *
 * Keys: `bulk-jobs` lists the ids of the jobs in flight; `bulk-job:<id>` holds one job.
 * They hold no values of records, only column names and idempotency keys.
 */
import type { ConnectorContext, KeyValueStore } from '@outflow/core';
import type { BulkOperation } from './bulk.js';

/** A job created and not yet read to the end. */
export interface PendingJob {
  id: string;
  object: string;
  operation: BulkOperation;
  /** The CSV columns the job was uploaded with, in order. */
  columns: string[];
  /** The idempotency keys of the operations whose results are still to be told, one per row. */
  keys: string[];
}

const INDEX = 'bulk-jobs';
const entry = (id: string) => `bulk-job:${id}`;

/** Index updates of one store, one at a time: writes of one connection run concurrently. */
const queues = new WeakMap<KeyValueStore, Promise<unknown>>();

function serially<T>(kv: KeyValueStore, work: () => Promise<T>): Promise<T> {
  const next = (queues.get(kv) ?? Promise.resolve()).then(work, work);
  queues.set(
    kv,
    next.catch(() => undefined),
  );
  return next;
}

async function index(kv: KeyValueStore): Promise<string[]> {
  const raw = await kv.get(INDEX);
  if (raw === undefined) return [];
  const ids: unknown = JSON.parse(raw);
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) throw new Error(`the key-value entry ${INDEX} is not a list of Bulk API job ids`);
  return ids as string[];
}

/** Records a job just created, before anything is uploaded to it. */
export function rememberJob(ctx: ConnectorContext, job: PendingJob): Promise<void> {
  return serially(ctx.kv, async () => {
    await ctx.kv.set(entry(job.id), JSON.stringify(job));
    const ids = await index(ctx.kv);
    if (!ids.includes(job.id)) await ctx.kv.set(INDEX, JSON.stringify([...ids, job.id]));
  });
}

/** Forgets a job whose results have all been told (or that applied nothing). */
export function forgetJob(ctx: ConnectorContext, id: string): Promise<void> {
  return serially(ctx.kv, async () => {
    await ctx.kv.delete(entry(id));
    const ids = await index(ctx.kv);
    if (ids.includes(id)) await ctx.kv.set(INDEX, JSON.stringify(ids.filter((i) => i !== id)));
  });
}

/** Keeps only the keys of a job still to be told; forgets the job when none is left. */
export async function settleKeys(ctx: ConnectorContext, job: PendingJob, told: Set<string>): Promise<void> {
  const keys = job.keys.filter((k) => !told.has(k));
  if (keys.length === 0) return forgetJob(ctx, job.id);
  await serially(ctx.kv, () => ctx.kv.set(entry(job.id), JSON.stringify({ ...job, keys })));
}

/** The jobs in flight on `object` that hold any of `keys`. */
export async function pendingJobsFor(ctx: ConnectorContext, object: string, keys: Set<string>): Promise<PendingJob[]> {
  const out: PendingJob[] = [];
  for (const id of await index(ctx.kv)) {
    const raw = await ctx.kv.get(entry(id));
    if (raw === undefined) continue;
    const job = JSON.parse(raw) as PendingJob;
    if (job.object === object && job.keys.some((k) => keys.has(k))) out.push(job);
  }
  return out;
}
