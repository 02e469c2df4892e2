/**
 * The records API of the emulator: `POST /v1/objects/:object/batch` applies up to
 * {@link MAX_BATCH} operations and answers one result per operation, in order. A
 * malformed request is refused whole (400); a record the API refuses gets its own error
 * result while the rest of the batch is applied. Each idempotency key is applied once.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Row, Value } from '@outflow/core';
import { jsonLinesLog, type AppAnswer, type EmulatorApp } from '@outflow/core/emulator-kit';
import { refusal } from './api.js';

export const MAX_BATCH = 100;
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;

/** The objects the API has, their properties and how each is validated (undefined: valid). */
const OBJECTS: Record<string, { unique: string[]; properties: Record<string, (value: Value) => string | undefined> }> = {
  contacts: {
    unique: ['email'],
    properties: {
      email: (v) => (typeof v === 'string' && EMAIL.test(v) ? undefined : `email ${JSON.stringify(v)} is not a valid email address`),
      name: (v) => (v === null || typeof v === 'string' ? undefined : 'name must be a string'),
    },
  },
};

export interface StoredRecord {
  id: string;
  /** The id the client keeps for the record (Outflow's model key). */
  externalId: string;
  properties: Row;
}

interface WireOperation {
  op: 'upsert' | 'update' | 'insert' | 'delete';
  idempotencyKey: string;
  externalId: string;
  id?: string;
  match?: Row;
  properties?: Row;
}

type WireResult = { status: 'ok'; id?: string } | { status: 'error'; code: string; message: string; retryable: boolean };

type LogEntry = { t: 'put'; object: string; record: StoredRecord; key: string } | { t: 'del'; object: string; id: string; key: string };

const isRow = (v: unknown): v is Row => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A batch body as the API takes it, or what is wrong with it. */
function parseBatch(body: unknown): WireOperation[] | string {
  const ops = isRow(body) ? body['operations'] : undefined;
  if (!Array.isArray(ops)) return 'the body must be { "operations": [...] }';
  if (ops.length === 0 || ops.length > MAX_BATCH) return `a batch holds 1 to ${MAX_BATCH} operations, not ${ops.length}`;
  for (const [i, op] of ops.entries()) {
    if (!isRow(op) || !['upsert', 'update', 'insert', 'delete'].includes(op['op'] as string)) return `operations[${i}].op must be upsert, update, insert or delete`;
    if (typeof op['idempotencyKey'] !== 'string' || op['idempotencyKey'] === '') return `operations[${i}].idempotencyKey must be a non-empty string`;
    if (typeof op['externalId'] !== 'string') return `operations[${i}].externalId must be a string`;
    if (op['id'] !== undefined && typeof op['id'] !== 'string') return `operations[${i}].id must be a string`;
    if (op['match'] !== undefined && !isRow(op['match'])) return `operations[${i}].match must be an object`;
    if (op['properties'] !== undefined && !isRow(op['properties'])) return `operations[${i}].properties must be an object`;
  }
  return ops as unknown as WireOperation[];
}

export class Records {
  private readonly objects = new Map<string, Map<string, StoredRecord>>();
  /** Results of the idempotency keys applied: a key sent again is answered, not applied. */
  private readonly applied = new Map<string, WireResult>();
  private nextId = 1;

  constructor(private readonly logFile: string | undefined) {
    if (logFile !== undefined) jsonLinesLog.replay<LogEntry>(logFile, '__name__', (entry) => this.commit(entry));
  }

  route(app: EmulatorApp): void {
    app.on('POST', '/v1/objects/:object/batch', ({ params, body }) => this.batch(params['object']!, body));
  }

  /** Every record `object` holds, one entry per record. */
  list(object: string): StoredRecord[] {
    return [...(this.objects.get(object)?.values() ?? [])].map((r) => structuredClone(r));
  }

  /** The batch endpoint; the answer is `write`, so the faults may lose it once applied. */
  private batch(object: string, body: unknown): AppAnswer {
    if (OBJECTS[object] === undefined) throw refusal(404, 'object_not_found', `there is no object "${object}"`);
    const ops = parseBatch(body);
    if (typeof ops === 'string') throw refusal(400, 'invalid_request', ops);
    const entries: LogEntry[] = [];
    const results = ops.map((op) => this.apply(object, op, entries));
    // On disk before the answer, so an acknowledged write survives a restart.
    if (this.logFile !== undefined) jsonLinesLog.append(this.logFile, entries);
    return { body: { results }, write: true };
  }

  /** One operation, by the API's rules: what it finds, creates, changes or refuses. */
  private apply(object: string, op: WireOperation, entries: LogEntry[]): WireResult {
    const earlier = this.applied.get(op.idempotencyKey);
    if (earlier !== undefined) return earlier;
    const refuse = (code: string, message: string): WireResult => ({ status: 'error', code, message, retryable: false });
    const spec = OBJECTS[object]!;
    const records = this.objects.get(object) ?? new Map<string, StoredRecord>();
    const byMatch = (match: Row) => [...records.values()].find((r) => Object.entries(match).every(([k, v]) => isDeepStrictEqual(r.properties[k], v)));
    // Addressed by id first; only an upsert whose id is gone falls back to its match.
    let found = op.id === undefined ? undefined : records.get(op.id);
    if (found === undefined && (op.id === undefined || op.op === 'upsert')) {
      found = op.match !== undefined ? byMatch(op.match) : [...records.values()].find((r) => r.externalId === op.externalId);
    }
    if (op.op === 'delete') {
      if (found !== undefined) this.log(entries, { t: 'del', object, id: found.id, key: op.idempotencyKey });
      return this.done(op, { status: 'ok' });
    }
    if (op.op === 'update' && found === undefined) return refuse('not_found', 'record not found');
    if (op.op === 'insert' && found !== undefined) return refuse('conflict', `a record with ${JSON.stringify(op.match ?? op.externalId)} already exists`);
    const properties = { ...found?.properties, ...op.match, ...op.properties };
    for (const [name, value] of Object.entries(properties)) {
      const check = spec.properties[name];
      if (check === undefined) return refuse('unknown_property', `"${object}" has no property "${name}"`);
      const problem = check(value);
      if (problem !== undefined) return refuse('invalid_property', problem);
    }
    for (const name of spec.unique) {
      const holder = properties[name] === undefined ? undefined : byMatch({ [name]: properties[name]! });
      if (holder !== undefined && holder.id !== found?.id) return refuse('conflict', `another record has this ${name}`);
    }
    const record = { id: found?.id ?? `rec_${this.nextId}`, externalId: found?.externalId ?? op.externalId, properties };
    this.log(entries, { t: 'put', object, record, key: op.idempotencyKey });
    return this.done(op, { status: 'ok', id: record.id });
  }

  private done(op: WireOperation, result: WireResult): WireResult {
    this.applied.set(op.idempotencyKey, result);
    return result;
  }

  private log(entries: LogEntry[], entry: LogEntry): void {
    entries.push(entry);
    this.commit(entry);
  }

  /** Applies one logged change to memory: live, and when replaying the log at start. */
  private commit(entry: LogEntry): void {
    let records = this.objects.get(entry.object);
    if (records === undefined) this.objects.set(entry.object, (records = new Map()));
    if (entry.t === 'del') {
      records.delete(entry.id);
      this.applied.set(entry.key, { status: 'ok' });
      return;
    }
    records.set(entry.record.id, entry.record);
    this.applied.set(entry.key, { status: 'ok', id: entry.record.id });
    this.nextId = Math.max(this.nextId, Number(entry.record.id.slice('rec_'.length)) + 1);
  }
}
