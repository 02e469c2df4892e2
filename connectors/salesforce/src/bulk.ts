import { destinationError, isOutflowError, type OutflowError } from '@outflow/core';
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

/**
 * One Bulk API 2.0 ingest job for `items`: create the job, upload the CSV, mark it
 * UploadComplete, poll until it is done, and read its successful, failed and unprocessed
 * results, paired with the operations by the row each one sent. What cannot be known is
 * never guessed: a job whose upload failed is aborted (nothing applied); a job whose
 * UploadComplete answer was lost is read back to see whether it was closed.
 */
export async function runBulkJob(w: Write, operation: BulkOperation, items: Prepared[]): Promise<Results> {
  const { ctx, session, object } = w;
  const key = operation === 'upsert' ? items[0]!.key!.name : operation === 'insert' ? undefined : 'Id';
  const columns = key === 'Id' && operation === 'delete' ? ['Id'] : [...new Set([...(key === undefined ? [] : [key]), ...items.flatMap((i) => Object.keys(i.fields))])];
  const rows = items.map((item) =>
    columns.map((c) => (c === 'Id' ? item.id! : c === key && operation === 'upsert' ? csvCell(item.keyValue!) : c in item.fields ? csvCell(item.fields[c]!) : '')),
  );
  const byRow = new Map<string, Prepared[]>();
  rows.forEach((r, k) => byRow.set(rowKey(r), [...(byRow.get(rowKey(r)) ?? []), items[k]!]));

  const job = await session.call<JobInfo>(ctx, `the creation of a Bulk API job (${operation} of ${items.length} ${object})`, {
    method: 'POST',
    path: '/jobs/ingest',
    body: { object, operation, contentType: 'CSV', lineEnding: 'LF', ...(operation === 'upsert' ? { externalIdFieldName: key } : {}) },
  });
  ctx.logger.info({ job: job.id, operation, records: items.length }, `Salesforce Bulk API 2.0 job ${job.id}: ${operation} of ${items.length} ${object}`);
  const abort = async (cause: unknown): Promise<never> => {
    try {
      await session.call(ctx, `the abort of Bulk API job ${job.id}`, { method: 'PATCH', path: `/jobs/ingest/${job.id}`, body: { state: 'Aborted' } });
    } catch {
      throw cause;
    }
    // Aborted before it was closed: Salesforce processed none of it.
    const err = cause as OutflowError;
    throw destinationError(`${err.message} (Bulk API job ${job.id} aborted; nothing was applied)`, { retryable: isOutflowError(cause) ? cause.retryable : true, notApplied: true, cause });
  };
  try {
    await session.call(ctx, `the upload of Bulk API job ${job.id}`, { method: 'PUT', path: `/jobs/ingest/${job.id}/batches`, body: writeCsv(columns, rows), csv: true });
  } catch (err) {
    return abort(err);
  }
  try {
    await session.call(ctx, `the close of Bulk API job ${job.id}`, { method: 'PATCH', path: `/jobs/ingest/${job.id}`, body: { state: 'UploadComplete' } });
  } catch (err) {
    // Closed or not? Only Salesforce knows: read the job.
    const info = await session.call<JobInfo>(ctx, `the state of Bulk API job ${job.id}`, { method: 'GET', path: `/jobs/ingest/${job.id}` }).catch(() => undefined);
    if (info === undefined) throw err;
    if (info.state === 'Open') return abort(err);
  }

  const info = await poll(w, job.id);
  if (info.state !== 'JobComplete') {
    // A Failed job read none of its rows (an unknown column, a bad key column): nothing was applied.
    throw destinationError(`Salesforce Bulk API job ${job.id} ended ${info.state}: ${info.errorMessage ?? 'no reason given'}`, {
      retryable: info.state === 'Aborted',
      notApplied: (info.numberRecordsProcessed ?? 0) === 0,
    });
  }
  const out: Results = new Map();
  const take = (cells: string[]): Prepared | undefined => {
    const list = byRow.get(rowKey(cells));
    return list?.shift();
  };
  const kind = operation === 'delete' ? 'delete' : operation === 'update' ? 'update' : 'create';
  for (const row of parseCsv(await readResults(w, job.id, 'successfulResults')).slice(1)) {
    const item = take(row.slice(2));
    if (item !== undefined) out.set(item.index, operation === 'delete' ? { ok: true } : { ok: true, destinationId: row[0]! });
  }
  for (const row of parseCsv(await readResults(w, job.id, 'failedResults')).slice(1)) {
    const item = take(row.slice(2));
    if (item !== undefined) out.set(item.index, recordFailure(errorsOf(row[1] ?? ''), kind));
  }
  for (const row of parseCsv(await readResults(w, job.id, 'unprocessedrecords')).slice(1)) {
    const item = take(row);
    if (item !== undefined) out.set(item.index, reject(`Salesforce did not process this record in Bulk API job ${job.id}; it is sent again`, true));
  }
  ctx.logger.info({ job: job.id, processed: info.numberRecordsProcessed, failed: info.numberRecordsFailed }, `Salesforce Bulk API 2.0 job ${job.id} complete`);
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

async function readResults(w: Write, id: string, which: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await w.session.call<string>(w.ctx, `the ${which} of Bulk API job ${id}`, { method: 'GET', path: `/jobs/ingest/${id}/${which}`, text: true });
    } catch (err) {
      if (!isOutflowError(err) || !err.retryable || attempt >= READ_RETRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, POLL_START_MS * (attempt + 1)));
    }
  }
}
