import { destinationError, failpoint, isOutflowError, type OutflowError } from '@outflow/core';
import { salesforceCode } from './session.js';
import { forgetJob, pendingJobsFor, rememberJob, settleKeys } from './bulk-jobs.js';
import { parseCsv, writeCsv } from './csv.js';
import { DEFAULTS } from './config.js';
import { csvCell } from './values.js';
import { recordFailure, reject, type Prepared, type Results, type SfRecordError, type Write } from './write.js';

export type BulkOperation = 'insert' | 'update' | 'upsert' | 'delete';

interface JobInfo {
  id: string;
  state: string;
  errorMessage?: string;
  numberRecordsProcessed?: number;
  numberRecordsFailed?: number;
}

const POLL_START_MS = 200;
const POLL_MAX_MS = 5_000;
/** Failures of one poll or result read tolerated in a row before the batch is given up as in doubt. */
const READ_RETRIES = 5;

/** `STATUS_CODE:message:field,field --` of a failed result row, as errors. */
function errorsOf(text: string): SfRecordError[] {
  return text
    .split(/\s--\s*/)
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => {
      const m = /^([A-Z_]+):(.*?)(?::([\w,]*))?$/s.exec(part);
      return m === null ? { statusCode: 'UNKNOWN_EXCEPTION', message: part } : { statusCode: m[1]!, message: m[2]!, fields: m[3] ? m[3].split(',') : [] };
    });
}

const rowKey = (cells: string[]) => cells.join('\u0000');

/** The column a job addresses records by: the external id of an upsert, `Id` of an update or delete, none for an insert. */
const keyColumn = (operation: BulkOperation, columns: string[]): string | undefined => (operation === 'insert' ? undefined : columns[0]);

/** The CSV row an item is uploaded as. */
function rowOf(operation: BulkOperation, columns: string[], item: Prepared): string[] {
  const key = keyColumn(operation, columns);
  return columns.map((c) => (c === 'Id' ? item.id! : c === key && operation === 'upsert' ? csvCell(item.keyValue!) : c in item.fields ? csvCell(item.fields[c]!) : ''));
}

/**
 * One Bulk API 2.0 ingest job for `items`: create the job (its id kept in the connection's
 * key-value store, see bulk-jobs.ts), upload the CSV, mark it UploadComplete, poll until it
 * is done, and read its successful, failed and unprocessed results, paired with the
 * operations by the row each one sent. What cannot be known is never guessed: a job whose
 * upload failed is aborted (nothing applied); a job whose UploadComplete answer was lost is
 * read back to see whether it was closed; a job left unread (the run stopped, the process
 * died) is read by {@link recoverJobs} when its operations come again.
 */
export async function runBulkJob(w: Write, operation: BulkOperation, items: Prepared[]): Promise<Results> {
  const { ctx, session, object } = w;
  const key = operation === 'upsert' ? items[0]!.key!.name : operation === 'insert' ? undefined : 'Id';
  const columns = key === 'Id' && operation === 'delete' ? ['Id'] : [...new Set([...(key === undefined ? [] : [key]), ...items.flatMap((i) => Object.keys(i.fields))])];

  const job = await session.call<JobInfo>(ctx, `the creation of a Bulk API job (${operation} of ${items.length} ${object})`, {
    method: 'POST',
    path: '/jobs/ingest',
    body: { object, operation, contentType: 'CSV', lineEnding: 'LF', ...(operation === 'upsert' ? { externalIdFieldName: key } : {}) },
  });
  await rememberJob(ctx, { id: job.id, object, operation, columns, keys: items.map((i) => i.op.idempotencyKey) });
  ctx.logger.info({ job: job.id, operation, records: items.length }, `Salesforce Bulk API 2.0 job ${job.id}: ${operation} of ${items.length} ${object}`);
  const abort = async (cause: unknown): Promise<never> => {
    try {
      await abortJob(w, job.id);
    } catch {
      throw cause;
    }
    const err = cause as OutflowError;
    throw destinationError(`${err.message} (Bulk API job ${job.id} aborted; nothing was applied)`, { retryable: isOutflowError(cause) ? cause.retryable : true, notApplied: true, cause });
  };
  try {
    const csv = writeCsv(columns, items.map((item) => rowOf(operation, columns, item)));
    await session.call(ctx, `the upload of Bulk API job ${job.id}`, { method: 'PUT', path: `/jobs/ingest/${job.id}/batches`, body: csv, csv: true });
  } catch (err) {
    return abort(err);
  }
  failpoint('salesforce.bulk-uploaded');
  try {
    await session.call(ctx, `the close of Bulk API job ${job.id}`, { method: 'PATCH', path: `/jobs/ingest/${job.id}`, body: { state: 'UploadComplete' } });
  } catch (err) {
    // Closed or not? Only Salesforce knows: read the job.
    const info = await session.call<JobInfo>(ctx, `the state of Bulk API job ${job.id}`, { method: 'GET', path: `/jobs/ingest/${job.id}` }).catch(() => undefined);
    if (info === undefined) throw err;
    if (info.state === 'Open') return abort(err);
  }
  failpoint('salesforce.bulk-closed');

  const info = await poll(w, job.id);
  if (appliedNothing(info)) {
    await forgetJob(ctx, job.id);
    // A Failed job that read none of its rows (an unknown column, a bad key column), or one aborted by someone else.
    throw destinationError(`Salesforce Bulk API job ${job.id} ended ${info.state}: ${info.errorMessage ?? 'no reason given'}; nothing of it was applied`, {
      retryable: info.state === 'Aborted',
      notApplied: true,
    });
  }
  if (info.state === 'Aborted') throw destinationError(`Salesforce Bulk API job ${job.id} was aborted after processing ${info.numberRecordsProcessed} records; its results cannot be read, so its records are in doubt`, { retryable: true });
  const out = await readResults(w, job.id, operation, columns, items);
  await forgetJob(ctx, job.id);
  ctx.logger.info({ job: job.id, processed: info.numberRecordsProcessed, failed: info.numberRecordsFailed }, `Salesforce Bulk API 2.0 job ${job.id} ${info.state === 'Failed' ? 'failed part-way' : 'complete'}`);
  return out;
}

/** A job that ended without applying anything: Failed or Aborted before processing a record. */
const appliedNothing = (info: JobInfo) => (info.state === 'Failed' || info.state === 'Aborted') && (info.numberRecordsProcessed ?? 0) === 0;

async function abortJob(w: Write, id: string): Promise<void> {
  await w.session.call(w.ctx, `the abort of Bulk API job ${id}`, { method: 'PATCH', path: `/jobs/ingest/${id}`, body: { state: 'Aborted' } });
  // Aborted before it was closed: Salesforce processes none of it.
  await forgetJob(w.ctx, id);
}

/**
 * Operations that a Bulk job in flight holds — its results never read because the run
 * stopped or the process died — are told from that job instead of being uploaded again.
 * The job is read: still `Open` (never closed) it is aborted, having applied nothing;
 * closed, it is polled to its end; a job that applied nothing, or that Salesforce no longer
 * has, tells nothing. Returned are the results of the operations the job applied or refused
 * for good; every other operation is sent as usual.
 */
export async function recoverJobs(w: Write, items: Prepared[]): Promise<Results> {
  const out: Results = new Map();
  const byKey = new Map(items.map((i) => [i.op.idempotencyKey, i]));
  if (byKey.size === 0) return out;
  for (const job of await pendingJobsFor(w.ctx, w.object, new Set(byKey.keys()))) {
    const mine = job.keys.flatMap((k) => byKey.get(k) ?? []);
    let info: JobInfo;
    try {
      info = await w.session.call<JobInfo>(w.ctx, `the state of Bulk API job ${job.id}`, { method: 'GET', path: `/jobs/ingest/${job.id}` });
    } catch (err) {
      if (salesforceCode(err) !== 'NOT_FOUND') throw err;
      // Salesforce keeps jobs for seven days: past that, nothing can be learnt from it.
      w.ctx.logger.warn({ job: job.id }, `Salesforce no longer has Bulk API job ${job.id}; its ${mine.length} operations are handled as any other in doubt`);
      await forgetJob(w.ctx, job.id);
      continue;
    }
    if (info.state === 'Open') {
      await abortJob(w, job.id);
      continue;
    }
    if (info.state === 'UploadComplete' || info.state === 'InProgress') info = await poll(w, job.id);
    w.ctx.logger.info({ job: job.id, state: info.state }, `Salesforce Bulk API 2.0 job ${job.id} was left unread (${info.state}): its results tell ${mine.length} operations sent again`);
    if (appliedNothing(info) || info.state === 'Aborted') {
      if (appliedNothing(info)) await forgetJob(w.ctx, job.id);
      continue;
    }
    const told = await readResults(w, job.id, job.operation, job.columns, mine);
    for (const [index, result] of told) if (result.ok || !result.retryable) out.set(index, result);
    await settleKeys(w.ctx, job, new Set(mine.map((i) => i.op.idempotencyKey)));
  }
  return out;
}

/** A finished job's successful, failed and unprocessed results, paired with `items` by the row each was uploaded as. */
async function readResults(w: Write, id: string, operation: BulkOperation, columns: string[], items: Prepared[]): Promise<Results> {
  const byRow = new Map<string, Prepared[]>();
  for (const item of items) {
    const k = rowKey(rowOf(operation, columns, item));
    byRow.set(k, [...(byRow.get(k) ?? []), item]);
  }
  const take = (cells: string[]): Prepared | undefined => byRow.get(rowKey(cells))?.shift();
  const out: Results = new Map();
  const kind = operation === 'delete' ? 'delete' : operation === 'update' ? 'update' : 'create';
  for (const row of parseCsv(await readResult(w, id, 'successfulResults')).slice(1)) {
    const item = take(row.slice(2));
    if (item !== undefined) out.set(item.index, operation === 'delete' ? { ok: true } : { ok: true, destinationId: row[0]! });
  }
  for (const row of parseCsv(await readResult(w, id, 'failedResults')).slice(1)) {
    const item = take(row.slice(2));
    if (item !== undefined) out.set(item.index, recordFailure(errorsOf(row[1] ?? ''), kind));
  }
  for (const row of parseCsv(await readResult(w, id, 'unprocessedrecords')).slice(1)) {
    const item = take(row);
    if (item !== undefined) out.set(item.index, reject(`Salesforce did not process this record in Bulk API job ${id}; it is sent again`, true));
  }
  return out;
}

async function poll(w: Write, id: string): Promise<JobInfo> {
  const deadline = Date.now() + (w.ctx.config.bulkTimeoutMs ?? DEFAULTS.bulkTimeoutMs);
  let wait = POLL_START_MS;
  let failures = 0;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    if (w.ctx.signal.aborted) throw destinationError(`the run is stopping; Bulk API job ${id} is left to finish in Salesforce`, { retryable: true });
    try {
      const info = await w.session.call<JobInfo>(w.ctx, `the state of Bulk API job ${id}`, { method: 'GET', path: `/jobs/ingest/${id}` });
      failures = 0;
      if (info.state === 'JobComplete' || info.state === 'Failed' || info.state === 'Aborted') return info;
    } catch (err) {
      if (!isOutflowError(err) || !err.retryable || ++failures > READ_RETRIES) throw err;
    }
    if (Date.now() > deadline) throw destinationError(`Salesforce Bulk API job ${id} did not finish within bulkTimeoutMs; its records are in doubt`, { retryable: true });
    wait = Math.min(POLL_MAX_MS, Math.round(wait * 1.5));
  }
}

async function readResult(w: Write, id: string, which: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await w.session.call<string>(w.ctx, `the ${which} of Bulk API job ${id}`, { method: 'GET', path: `/jobs/ingest/${id}/${which}`, text: true });
    } catch (err) {
      if (!isOutflowError(err) || !err.retryable || attempt >= READ_RETRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, POLL_START_MS * (attempt + 1)));
    }
  }
}
