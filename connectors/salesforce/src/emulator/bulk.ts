/**
 * Bulk API 2.0 ingest jobs: create a job (Open), upload its CSV data once, mark it
 * UploadComplete, and the job is processed in the background (InProgress, then JobComplete,
 * or Failed when the data cannot be read at all: an unknown column, a missing key column).
 * Rows are applied in internal batches of 10,000, each row alone: a row's failure is its
 * own. The results are CSV: successfulResults (`sf__Id`, `sf__Created`, the row),
 * failedResults (`sf__Id`, `sf__Error`, the row), unprocessedrecords (the row). Jobs are kept
 * in the store's log, so a sandbox restarted mid-job answers for it.
 */
import { ApiError, type RecordError } from './errors.js';
import { Dml, type SaveResult } from './dml.js';
import { parseCsv, writeCsv } from '../csv.js';
import { fieldOf, type FieldDef, type SObjectDef } from './schema.js';
import { sfDateTime, type OrgStore } from './store.js';
import { readCsvRow } from './validation.js';

export type JobState = 'Open' | 'UploadComplete' | 'InProgress' | 'JobComplete' | 'Failed' | 'Aborted';
const OPERATIONS = ['insert', 'update', 'upsert', 'delete', 'hardDelete'] as const;
type Operation = (typeof OPERATIONS)[number];

/** Rows Salesforce processes together; duplicate keys inside one are refused. */
export const INTERNAL_BATCH = 10_000;

interface Job {
  id: string;
  object: string;
  operation: Operation;
  externalIdFieldName?: string;
  lineEnding: 'LF' | 'CRLF';
  state: JobState;
  createdDate: string;
  systemModstamp: string;
  apiVersion: number;
  data?: string;
  numberRecordsProcessed: number;
  numberRecordsFailed: number;
  errorMessage?: string;
  totalProcessingTime: number;
  results?: { successful: string; failed: string; unprocessed: string };
}

const invalidJob = (message: string) => new ApiError(400, 'INVALIDJOB', message);
const invalidState = (message: string) => new ApiError(409, 'INVALIDJOBSTATE', message);

/** A Bulk API error line: `STATUS_CODE:message:field,field --`. */
function errorText(e: RecordError): string {
  return `${e.statusCode}:${e.message}:${e.fields.join(',')} --`;
}

export class BulkJobs {
  private readonly jobs = new Map<string, Job>();
  private seq = 1;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Jobs processed since start, for tests. */
  processed = 0;

  constructor(
    private readonly store: OrgStore,
    private readonly processingMs: () => number,
  ) {
    for (const [key, value] of store.meta) {
      if (!key.startsWith('job:')) continue;
      const job = value as Job & { deleted?: boolean };
      if (job.deleted === true) continue;
      this.jobs.set(job.id, job);
      this.seq = Math.max(this.seq, Number.parseInt(job.id.slice(5, 15), 36) + 1);
      // A job closed before a restart is processed once the emulator is back.
      if (job.state === 'UploadComplete' || job.state === 'InProgress') this.schedule(job);
    }
  }

  create(body: unknown, version: string): Record<string, unknown> {
    if (typeof body !== 'object' || body === null) throw invalidJob('InvalidJob : the request body must be a JSON object');
    const b = body as Record<string, unknown>;
    const object = typeof b['object'] === 'string' ? this.store.object(b['object']) : undefined;
    if (object === undefined) throw invalidJob(`InvalidJob : Unable to find object: ${String(b['object'] ?? '')}`);
    const operation = b['operation'] as Operation;
    if (!OPERATIONS.includes(operation)) throw invalidJob(`InvalidJob : Invalid operation: ${String(operation)}`);
    const contentType = b['contentType'] ?? 'CSV';
    if (contentType !== 'CSV') throw invalidJob(`InvalidJob : Invalid content type: ${String(contentType)}; only CSV is supported`);
    let externalIdFieldName: string | undefined;
    if (operation === 'upsert') {
      const named = typeof b['externalIdFieldName'] === 'string' ? b['externalIdFieldName'] : '';
      if (named === '') throw invalidJob('InvalidJob : External ID was blank for upsert');
      const field = fieldOf(object, named);
      if (field === undefined || !field.idLookup) throw invalidJob(`InvalidJob : Field name provided, ${named} is not an External ID or indexed field for ${object.name}`);
      externalIdFieldName = field.name;
    }
    const at = sfDateTime(Date.now());
    const id15 = `7505g${(this.seq++).toString(36).toUpperCase().padStart(10, '0')}`;
    const job: Job = {
      id: id15 + 'AAA',
      object: object.name,
      operation,
      ...(externalIdFieldName === undefined ? {} : { externalIdFieldName }),
      lineEnding: b['lineEnding'] === 'CRLF' ? 'CRLF' : 'LF',
      state: 'Open',
      createdDate: at,
      systemModstamp: at,
      apiVersion: Number(version),
      numberRecordsProcessed: 0,
      numberRecordsFailed: 0,
      totalProcessingTime: 0,
    };
    this.save(job);
    return this.info(job, version);
  }

  get(id: string, version: string): Record<string, unknown> {
    return this.info(this.job(id), version);
  }

  upload(id: string, contentType: string | undefined, data: string): void {
    const job = this.job(id);
    if (!/^text\/csv/i.test(contentType ?? '')) throw new ApiError(400, 'INVALIDJOB', `InvalidJob : Content-Type must be text/csv, not ${contentType ?? 'none'}`);
    if (job.state !== 'Open') throw invalidState(`InvalidJobState : Job ${id} is ${job.state}; data can be uploaded only while it is Open`);
    if (job.data !== undefined) throw invalidState(`InvalidJobState : Job ${id} already has its data; a job takes one upload`);
    job.data = data;
    this.save(job);
  }

  patch(id: string, body: unknown, version: string): Record<string, unknown> {
    const job = this.job(id);
    const state = (body as { state?: unknown } | undefined)?.state;
    if (state === 'UploadComplete') {
      if (job.state !== 'Open') throw invalidState(`InvalidJobState : Job ${id} is ${job.state}, not Open`);
      job.state = 'UploadComplete';
      this.save(job);
      this.schedule(job);
    } else if (state === 'Aborted') {
      if (job.state === 'JobComplete' || job.state === 'Failed' || job.state === 'Aborted') throw invalidState(`InvalidJobState : Job ${id} is ${job.state} and can no longer be aborted`);
      job.state = 'Aborted';
      this.save(job);
    } else {
      throw invalidJob(`InvalidJob : Invalid state: ${String(state)}; UploadComplete or Aborted`);
    }
    return this.info(job, version);
  }

  remove(id: string): void {
    const job = this.job(id);
    if (job.state === 'Open' || job.state === 'UploadComplete' || job.state === 'InProgress') throw invalidState(`InvalidJobState : Job ${id} is ${job.state}; abort it before deleting it`);
    this.jobs.delete(id);
    this.store.putMeta(`job:${id}`, { id, deleted: true });
    this.store.flush();
  }

  results(id: string, kind: 'successful' | 'failed' | 'unprocessed'): string {
    const job = this.job(id);
    if (kind === 'unprocessed' && (job.state === 'Aborted' || job.state === 'Failed') && job.results === undefined) {
      const rows = parseCsv(job.data ?? '');
      return rows.length === 0 ? '' : writeCsv(rows[0]!, rows.slice(1));
    }
    if (job.state !== 'JobComplete' && job.state !== 'Failed') throw invalidState(`InvalidJobState : Job ${id} is ${job.state}; results are ready once it is JobComplete or Failed`);
    return job.results?.[kind] ?? '';
  }

  /** Every job kept, in creation order: its id, object, operation, state and records processed. */
  list(): { id: string; object: string; operation: string; state: JobState; numberRecordsProcessed: number }[] {
    return [...this.jobs.values()].map((j) => ({ id: j.id, object: j.object, operation: j.operation, state: j.state, numberRecordsProcessed: j.numberRecordsProcessed }));
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private job(id: string): Job {
    const job = this.jobs.get(id) ?? (id.length === 15 ? this.jobs.get(id + 'AAA') : undefined);
    if (job === undefined) throw new ApiError(404, 'NOT_FOUND', `The requested resource does not exist: job ${id}`);
    return job;
  }

  private save(job: Job): void {
    job.systemModstamp = sfDateTime(Date.now());
    this.jobs.set(job.id, job);
    this.store.putMeta(`job:${job.id}`, job);
    this.store.flush();
  }

  private schedule(job: Job): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (job.state !== 'UploadComplete') return;
      job.state = 'InProgress';
      this.save(job);
      const t2 = setTimeout(() => {
        this.timers.delete(t2);
        if (job.state === 'InProgress') this.process(job);
      }, this.processingMs());
      this.timers.add(t2);
    }, this.processingMs());
    this.timers.add(t);
  }

  private process(job: Job): void {
    const started = Date.now();
    const object = this.store.object(job.object)!;
    const rows = job.data === undefined ? [] : parseCsv(job.data);
    const header = rows[0] ?? [];
    const data = rows.slice(1).filter((r) => !(r.length === 1 && r[0] === ''));
    const fail = (message: string) => {
      job.state = 'Failed';
      job.errorMessage = message;
      job.results = { successful: writeCsv(['sf__Id', 'sf__Created', ...header], []), failed: writeCsv(['sf__Id', 'sf__Error', ...header], []), unprocessed: writeCsv(header, data) };
      this.save(job);
    };
    if (header.length === 0) return fail('InvalidBatch : Failed to parse CSV: no header row');
    const columns: FieldDef[] = [];
    for (const name of header) {
      const field = fieldOf(object, name);
      if (field === undefined) return fail(`InvalidBatch : Field name not found : ${name}`);
      columns.push(field);
    }
    const keyName = job.operation === 'upsert' ? job.externalIdFieldName! : job.operation === 'insert' ? undefined : 'Id';
    const keyAt = keyName === undefined ? -1 : columns.findIndex((c) => c.name === keyName);
    if (keyName !== undefined && keyAt < 0) return fail(`InvalidBatch : Field name not found : ${keyName}`);
    const dml = new Dml(this.store, 'bulk');
    const successful: string[][] = [];
    const failed: string[][] = [];
    let seen = new Set<string>();
    data.forEach((row, n) => {
      if (n % INTERNAL_BATCH === 0) seen = new Set();
      const result = this.applyRow(dml, object, job, columns, row, keyAt, seen);
      if (result.success) successful.push([result.id ?? '', String(result.created ?? job.operation === 'insert'), ...row]);
      else failed.push([result.id ?? '', result.errors.map(errorText).join(' '), ...row]);
    });
    job.state = 'JobComplete';
    job.numberRecordsProcessed = data.length;
    job.numberRecordsFailed = failed.length;
    job.totalProcessingTime = Date.now() - started;
    job.results = { successful: writeCsv(['sf__Id', 'sf__Created', ...header], successful), failed: writeCsv(['sf__Id', 'sf__Error', ...header], failed), unprocessed: writeCsv(header, []) };
    delete job.data;
    this.processed++;
    this.save(job);
  }

  private applyRow(dml: Dml, object: SObjectDef, job: Job, columns: FieldDef[], row: string[], keyAt: number, seen: Set<string>): SaveResult {
    const read = readCsvRow(columns, row);
    if ('error' in read) return { success: false, errors: [read.error] };
    const values = read.values;
    if (keyAt >= 0) {
      const key = (row[keyAt] ?? '').toLowerCase();
      if (key !== '' && seen.has(key)) {
        const field = columns[keyAt]!;
        return { success: false, errors: [{ statusCode: 'DUPLICATE_VALUE', message: `Duplicate ${field.name === 'Id' ? 'id' : 'external id'} specified: ${row[keyAt]}`, fields: [field.name] }] };
      }
      if (key !== '') seen.add(key);
    }
    switch (job.operation) {
      case 'insert':
        return dml.create(object, values);
      case 'update': {
        const { Id: id, ...rest } = values;
        return { ...dml.update(object, id, rest), created: false };
      }
      case 'upsert':
        return dml.upsert(object, columns[keyAt]!, values);
      case 'delete':
      case 'hardDelete': {
        const result = dml.delete(object, String(values['Id'] ?? ''));
        return { ...result, created: false };
      }
    }
  }

  private info(job: Job, version: string): Record<string, unknown> {
    return {
      id: job.id,
      operation: job.operation,
      object: job.object,
      createdById: '0055g00000EMULAAA',
      createdDate: job.createdDate,
      systemModstamp: job.systemModstamp,
      state: job.state,
      ...(job.externalIdFieldName === undefined ? {} : { externalIdFieldName: job.externalIdFieldName }),
      concurrencyMode: 'Parallel',
      contentType: 'CSV',
      apiVersion: job.apiVersion,
      jobType: 'V2Ingest',
      contentUrl: `services/data/v${version}/jobs/ingest/${job.id}/batches`,
      lineEnding: job.lineEnding,
      columnDelimiter: 'COMMA',
      numberRecordsProcessed: job.numberRecordsProcessed,
      numberRecordsFailed: job.numberRecordsFailed,
      retries: 0,
      totalProcessingTime: job.totalProcessingTime,
      apiActiveProcessingTime: job.totalProcessingTime,
      apexProcessingTime: 0,
      ...(job.errorMessage === undefined ? {} : { errorMessage: job.errorMessage }),
    };
  }
}
