/**
 * What the destination checks share: the record ranges, operations built from the driver's
 * records, `write()` with its answer's shape checked, reading back, and delivery the way
 * the engine does it (re-sending, bisecting, looking up or parking per the contract).
 */
import { isDeepStrictEqual } from 'node:util';
import {
  describeError,
  isOutflowError,
  type Capabilities,
  type ConnectorContext,
  type Destination,
  type Operation,
  type OperationKind,
  type RecordResult,
} from '@outflow/core';
import type { KitFaults } from '@outflow/core/emulator-kit';
import { AcceptanceFailure, differingFields, fail, show, within } from './harness.js';
import type { DestinationHarness, HeldRecord, TestRecord } from './destination.js';

// Each check writes its own range of record indexes, so checks never touch each other's records.
export const BASE = {
  create: 1_000_000,
  update: 2_000_000,
  delete: 3_000_000,
  bad: 4_000_000,
  idem: 5_000_000,
  order: 6_000_000,
  batch: 7_000_000,
  missing: 8_000_000,
  destinationId: 9_000_000,
  precedence: 10_000_000,
  insertExisting: 11_000_000,
  lookup: 12_000_000,
  // 13 000 000 to 13 999 999: the capability checks (capabilities.ts).
  keyOrder: 14_000_000,
  upsertExisting: 15_000_000,
  throttle: 16_000_000,
  serverError: 17_000_000,
  timeout: 18_000_000,
  abort: 19_000_000,
  lostAnswer: 20_000_000,
  rateLimits: 21_000_000,
};
/** Added to a record's index to get the fields of its changed version. */
export const CHANGED = 500_000;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

export function declares(h: DestinationHarness, kind: OperationKind): boolean {
  return h.capabilities.operations.includes(kind);
}

/** The kinds that create a record, in the order the checks prefer them. */
export function creatingKinds(h: DestinationHarness): OperationKind[] {
  return (['upsert', 'insert'] as const).filter((k) => declares(h, k));
}

export function creates(h: DestinationHarness): OperationKind | undefined {
  return creatingKinds(h)[0];
}

export function createKind(h: DestinationHarness): OperationKind {
  return creates(h) ?? fail('the destination declares neither upsert nor insert');
}

export function updateKind(h: DestinationHarness): OperationKind | undefined {
  return declares(h, 'update') ? 'update' : declares(h, 'upsert') ? 'upsert' : undefined;
}

export function requireCreate(h: DestinationHarness): string | undefined {
  return creates(h) === undefined ? 'the destination declares neither upsert nor insert, so records cannot be created' : undefined;
}

export function requireIds(h: DestinationHarness): string | undefined {
  return h.driver.assignsIds ? requireCreate(h) : 'the driver says the destination assigns no ids: records are addressed by match key only';
}

export function opFor(h: DestinationHarness, kind: OperationKind, rec: TestRecord, destinationId?: string): Operation {
  const op: Operation = { kind, key: rec.key, idempotencyKey: h.idempotencyKey(kind, rec.key) };
  if (rec.match !== undefined) op.match = rec.match;
  if (kind !== 'delete') op.fields = rec.fields;
  if (destinationId !== undefined) op.destinationId = destinationId;
  return op;
}

/** The operation addressed by its destinationId alone. */
export function byIdOnly(op: Operation): Operation {
  const { match: _match, ...rest } = op;
  return rest;
}

export function records(h: DestinationHarness, base: number, n: number): TestRecord[] {
  return Array.from({ length: n }, (_, i) => h.driver.record(base + i));
}

/** Record `rec` with the fields of record `index + offset`, keeping its match fields. */
export function changed(h: DestinationHarness, rec: TestRecord, index: number, offset = CHANGED): TestRecord {
  const other = h.driver.record(index + offset);
  const kept = Object.fromEntries(Object.keys(rec.match ?? {}).filter((k) => k in rec.fields).map((k) => [k, rec.fields[k]!]));
  const fields = { ...other.fields, ...kept };
  if (differingFields(rec.fields, fields).length === 0) {
    fail(`driver.record(${index}) and driver.record(${index + offset}) have the same fields; records must differ so updates can be seen`);
  }
  return { ...rec, fields };
}

export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Settles with `promise`, or fails with `onHang()`'s message after `ms`. */
export async function settleWithin<T>(promise: Promise<T>, ms: number, onHang: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AcceptanceFailure(onHang())), ms);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

function checkShape(results: unknown, ops: Operation[], what: string): RecordResult[] {
  if (!Array.isArray(results)) fail(`write() of ${what} returned ${show(results)}, not an array of results`);
  if (results.length !== ops.length) fail(`write() of ${what} returned ${results.length} results for ${ops.length} operations`);
  results.forEach((r: RecordResult, i) => {
    const where = `write() of ${what}: result ${i} (key ${ops[i]!.key})`;
    if (r === null || typeof r !== 'object' || typeof r.ok !== 'boolean') fail(`${where} is ${show(r)}, not { ok: boolean }`);
    if (!r.ok) {
      if (typeof r.reason !== 'string' || r.reason.trim() === '') fail(`${where} is a rejection without a reason`);
      if (typeof r.retryable !== 'boolean') fail(`${where} is a rejection without a boolean retryable`);
    }
  });
  return results as RecordResult[];
}

/** What writing to a destination under test takes: the harness of the destination suite or the event suite. */
export interface WriteHarness {
  destination: Destination<unknown>;
  ctx: ConnectorContext<unknown>;
  capabilities: Capabilities;
  timeoutMs: number;
  driver: {
    object: string;
    faults?(faults: KitFaults): void | Promise<void>;
  };
}

export interface WriteOptions {
  /** The context to write with; the harness's own by default. */
  ctx?: ConnectorContext;
  /** How long the call may take; the harness's timeout by default. */
  ms?: number;
  /** The failure message when the call has not settled after `ms`. */
  onHang?: () => string;
}

/**
 * Calls write() once and checks the answer's shape: one well-formed result per operation.
 * With `budget: 'write'` the call draws one request from the context's budget, as the
 * engine does; with `connector`, the connector draws for itself.
 */
export async function write(h: WriteHarness, ops: Operation[], what: string, o: WriteOptions = {}): Promise<RecordResult[]> {
  const ctx = o.ctx ?? h.ctx;
  const call = () => h.destination.write(ctx, h.driver.object, ops);
  const sent = h.capabilities.budget === 'connector' ? call() : ctx.rateBudget.request(call);
  const ms = o.ms ?? h.timeoutMs;
  const results = await (o.onHang === undefined ? within(sent, ms, `write() of ${what}`) : settleWithin(sent, ms, o.onHang));
  return checkShape(results, ops, what);
}

/** What one write() call came to: its results, or what it threw. */
export type Answer = { results: RecordResult[] } | { error: unknown };

/** Calls write() once and keeps what it threw; a broken answer shape still fails the check. */
export async function attempt(h: WriteHarness, ops: Operation[], what: string, o: WriteOptions = {}): Promise<Answer> {
  try {
    return { results: await write(h, ops, what, o) };
  } catch (error) {
    if (error instanceof AcceptanceFailure) throw error;
    return { error };
  }
}

export function expectAllOk(results: RecordResult[], ops: Operation[], what: string): void {
  const failed = results.flatMap((r, i) => (r.ok ? [] : [`${ops[i]!.kind} ${ops[i]!.key}: ${r.reason}`]));
  if (failed.length > 0) fail(`write() of ${what} rejected ${failed.length} of ${ops.length} valid operations: ${failed.slice(0, 5).join('; ')}`);
}

/** Writes `ops` in batches of at most maxBatchSize and returns every result. */
export async function writeAll(h: DestinationHarness, ops: Operation[], what: string): Promise<RecordResult[]> {
  const out: RecordResult[] = [];
  for (const chunk of chunks(ops, h.capabilities.maxBatchSize)) out.push(...(await write(h, chunk, what)));
  return out;
}

/** Writes `ops` in batches of at most maxBatchSize and expects every one to succeed. */
export async function writeOk(h: DestinationHarness, ops: Operation[], what: string): Promise<RecordResult[]> {
  const out: RecordResult[] = [];
  for (const chunk of chunks(ops, h.capabilities.maxBatchSize)) {
    const results = await write(h, chunk, what);
    expectAllOk(results, chunk, what);
    out.push(...results);
  }
  return out;
}

/** The destinationId an ok result carries, if any. */
export function idOf(result: RecordResult): string | undefined {
  return result.ok ? result.destinationId : undefined;
}

/** The id an ok result carries; fails when the destination assigns ids and this result has none. */
export function expectId(h: DestinationHarness, result: RecordResult, op: Operation, what: string): string | undefined {
  const id = idOf(result);
  if (h.driver.assignsIds && (typeof id !== 'string' || id === '')) {
    fail(`${what}: the ok ${op.kind} of ${show(op.key)} carries no destinationId (${show(result)}), though the driver says the destination assigns ids`);
  }
  return id;
}

/** Every record the driver reads back, checked to be a list of distinct records. */
export async function readAll(h: DestinationHarness): Promise<HeldRecord[]> {
  const all = await within(h.driver.readAll(), h.timeoutMs, 'readAll()');
  if (!Array.isArray(all)) fail(`readAll() returned ${show(all)}, not an array of records`);
  const ids = new Set<string>();
  for (const r of all) {
    if (r === null || typeof r !== 'object' || typeof r.key !== 'string' || r.fields === null || typeof r.fields !== 'object') {
      fail(`readAll() returned ${show(r)}; each record must be { key: string, id?, fields: object }`);
    }
    if (r.id !== undefined) {
      if (ids.has(r.id)) fail(`readAll() returned the record with id ${show(r.id)} twice; it must list each record once, so that counts are true`);
      ids.add(r.id);
    }
  }
  return all;
}

/** The one record held for `key`; fails when the destination holds several. */
export function heldOnce(all: HeldRecord[], key: string, what: string): HeldRecord | undefined {
  const copies = all.filter((r) => r.key === key);
  if (copies.length > 1) {
    fail(`${what}: the destination holds ${copies.length} records for key ${show(key)}, so it created the record more than once: ${show(copies)}`);
  }
  return copies[0];
}

export function fieldsDiffer(held: HeldRecord, rec: TestRecord): string | undefined {
  const differing = differingFields(held.fields, rec.fields);
  return differing.length === 0 ? undefined : differing.map((f) => `${f}=${show(held.fields[f])} (wrote ${show(rec.fields[f])})`).join(', ');
}

export function expectHeld(all: HeldRecord[], rec: TestRecord, what: string): HeldRecord {
  const held = heldOnce(all, rec.key, what);
  if (held === undefined) fail(`${what}: record ${show(rec.key)} was acknowledged but is not in the destination`);
  const differing = fieldsDiffer(held, rec);
  if (differing !== undefined) fail(`${what}: record ${show(rec.key)} reads back with ${differing}`);
  return held;
}

export async function expectLanded(h: DestinationHarness, recs: TestRecord[], what: string): Promise<HeldRecord[]> {
  const all = await readAll(h);
  return recs.map((rec) => expectHeld(all, rec, what));
}

/** Sets the emulator's faults through the driver (`{}` clears them). */
export async function setFaults(h: WriteHarness, faults: KitFaults): Promise<void> {
  const set =
    h.driver.faults ??
    fail("the driver gives neither faults() nor noFaults: give faults(f) setting the emulator's faults, or noFaults saying why there is no emulator to inject faults into");
  await within(Promise.resolve(set.call(h.driver, faults)), h.timeoutMs, `driver.faults(${show(faults)})`);
}

/** Runs `body` with `faults` set, clearing them afterwards whatever happens. */
export async function underFaults<T>(h: WriteHarness, faults: KitFaults, body: () => Promise<T>): Promise<T> {
  await setFaults(h, faults);
  try {
    return await body();
  } finally {
    await setFaults(h, {});
  }
}

/** How one operation ended up after {@link deliver}. */
export type Outcome =
  | { state: 'ok'; destinationId?: string }
  | { state: 'rejected'; reason: string }
  /** In doubt at a destination that cannot dedupe, with no lookup to tell: a person decides. */
  | { state: 'parked'; reason: string };

/** How many rounds of sending again {@link deliver} allows, with no fault set, before it gives up. */
const ROUNDS = 5;

/**
 * Delivers `ops` the way the engine does, from `first` (the answer to a first attempt)
 * when given: in batches of at most maxBatchSize; a retryable result or a retryable
 * OutflowError is sent again; a non-retryable OutflowError is bisected down to the records
 * at fault; a plain throw is an unknown outcome. An operation in doubt (an unknown outcome,
 * or a retryable error not marked `notApplied`, at a destination whose idempotency is
 * `none`) is asked of `lookup()` — `applied` is done, `absent` is sent again, `unknown` is
 * parked — or parked when there is no lookup. Fails when operations still fail after
 * {@link ROUNDS} rounds with no fault set.
 */
export async function deliver(h: WriteHarness, ops: Operation[], what: string, first?: Answer): Promise<Outcome[]> {
  const out: (Outcome | undefined)[] = new Array(ops.length);
  const resendSafe = h.capabilities.idempotency !== 'none';
  let last = 'none';

  const absorb = (idx: number[], answer: Answer, again: number[], doubt: number[]): number[][] => {
    if ('results' in answer) {
      answer.results.forEach((r, k) => {
        const i = idx[k]!;
        if (r.ok) out[i] = r.destinationId === undefined ? { state: 'ok' } : { state: 'ok', destinationId: r.destinationId };
        else if (r.retryable) {
          again.push(i);
          last = `${ops[i]!.kind} ${ops[i]!.key}: ${r.reason}`;
        } else out[i] = { state: 'rejected', reason: r.reason };
      });
      return [];
    }
    const err = answer.error;
    last = describeError(err);
    if (isOutflowError(err) && !err.retryable) {
      if (idx.length === 1) {
        out[idx[0]!] = { state: 'rejected', reason: err.message };
        return [];
      }
      const half = Math.ceil(idx.length / 2);
      return [idx.slice(0, half), idx.slice(half)];
    }
    (resendSafe || (isOutflowError(err) && err.notApplied) ? again : doubt).push(...idx);
    return [];
  };

  const send = async (idx: number[], again: number[], doubt: number[]): Promise<void> => {
    const answer = await attempt(h, idx.map((i) => ops[i]!), what);
    for (const half of absorb(idx, answer, again, doubt)) await send(half, again, doubt);
  };

  let pending = ops.map((_, i) => i);
  for (let round = 0; pending.length > 0; round++) {
    if (round > ROUNDS) {
      fail(`${what}: ${pending.length} of ${ops.length} operations were still not applied after ${ROUNDS} rounds of sending them again with no fault set; the last answer: ${last}`);
    }
    const again: number[] = [];
    const doubt: number[] = [];
    if (round === 0 && first !== undefined) {
      for (const half of absorb(pending, first, again, doubt)) await send(half, again, doubt);
    } else {
      for (const chunk of chunks(pending, h.capabilities.maxBatchSize)) await send(chunk, again, doubt);
    }
    if (doubt.length > 0) again.push(...(await settleDoubts(h, ops, doubt, out)));
    pending = again;
  }
  return out as Outcome[];
}

/** Settles operations in doubt by lookup() or by parking them; returns those to send again. */
async function settleDoubts(h: WriteHarness, ops: Operation[], doubt: number[], out: (Outcome | undefined)[]): Promise<number[]> {
  const lookup = h.destination.lookup;
  if (lookup === undefined) {
    for (const i of doubt) out[i] = { state: 'parked', reason: 'outcome unknown: idempotency is none and there is no lookup()' };
    return [];
  }
  const asked = doubt.map((i) => ops[i]!);
  let answers: unknown;
  try {
    answers = await within(lookup.call(h.destination, h.ctx, h.driver.object, asked), h.timeoutMs, 'lookup()');
  } catch (err) {
    if (err instanceof AcceptanceFailure) throw err;
    for (const i of doubt) out[i] = { state: 'parked', reason: `outcome unknown: lookup() failed: ${describeError(err)}` };
    return [];
  }
  if (!Array.isArray(answers) || answers.length !== asked.length) fail(`lookup() of ${asked.length} operations returned ${show(answers)}, not ${asked.length} results`);
  const again: number[] = [];
  (answers as { state?: unknown; destinationId?: string }[]).forEach((a, k) => {
    const i = doubt[k]!;
    if (a?.state === 'applied') out[i] = a.destinationId === undefined ? { state: 'ok' } : { state: 'ok', destinationId: a.destinationId };
    else if (a?.state === 'absent') again.push(i);
    else if (a?.state === 'unknown') out[i] = { state: 'parked', reason: 'outcome unknown: lookup() could not tell' };
    else fail(`lookup() answered ${show(a)} for the ${asked[k]!.kind} of ${show(asked[k]!.key)}; expected { state: 'applied' | 'absent' | 'unknown' }`);
  });
  return again;
}

/**
 * After a fault and delivery per the contract: every record is held exactly once, with the
 * fields written — nothing lost, nothing duplicated. A parked record may be missing (a
 * person decides); with idempotency `match`, a re-sent insert may be refused as existing
 * when the record is there. Returns a note on parked records.
 */
export async function expectDeliveredOnce(
  h: DestinationHarness,
  recs: TestRecord[],
  ops: Operation[],
  outcomes: Outcome[],
  what: string,
): Promise<string | undefined> {
  const all = await readAll(h);
  const parked: string[] = [];
  recs.forEach((rec, i) => {
    const op = ops[i]!;
    const outcome = outcomes[i]!;
    const copies = all.filter((r) => r.key === rec.key);
    if (copies.length > 1) {
      fail(
        `${what}: the destination holds ${copies.length} records for key ${show(rec.key)}: sending the ${op.kind} again applied it twice, ` +
          `which idempotency ${show(h.capabilities.idempotency)} promises never happens: ${show(copies)}`,
      );
    }
    if (outcome.state === 'rejected' && !(h.capabilities.idempotency === 'match' && op.kind === 'insert' && copies.length === 1)) {
      fail(`${what}: the valid ${op.kind} of ${show(rec.key)} was rejected for good (${show(outcome.reason)}); once the fault is gone it must be applied`);
    }
    const held = copies[0];
    if (held === undefined) {
      if (outcome.state === 'parked') return void parked.push(rec.key);
      fail(`${what}: record ${show(rec.key)} was acknowledged but is not in the destination: it was lost`);
    }
    const differing = fieldsDiffer(held, rec);
    if (differing !== undefined) fail(`${what}: record ${show(rec.key)} reads back with ${differing}`);
    if (outcome.state === 'parked') parked.push(rec.key);
  });
  return parked.length === 0
    ? undefined
    : `${parked.length} of ${recs.length} records were parked as "outcome unknown" (idempotency none${h.destination.lookup ? ', lookup() could not tell' : ', no lookup()'}), as the engine would park them; none was duplicated`;
}

/** Whether `a` and `b` hold the same fields, for comparing reads before and after. */
export function sameFields(a: HeldRecord | undefined, b: HeldRecord | undefined): boolean {
  return isDeepStrictEqual(a?.fields, b?.fields);
}
