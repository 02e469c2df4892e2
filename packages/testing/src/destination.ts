import { randomUUID } from 'node:crypto';
import { describe } from 'vitest';
import {
  describeError,
  isOutflowError,
  type AnyConnector,
  type Capabilities,
  type Destination,
  type FieldInfo,
  type Idempotency,
  type Operation,
  type OperationKind,
  type RateLimit,
  type RecordResult,
  type Row,
} from '@outflow/core';
import type { KitFaults } from '@outflow/core/emulator-kit';
import {
  AcceptanceFailure,
  differingFields,
  fail,
  openDestination,
  registerChecks,
  runChecks,
  show,
  within,
  type Check,
  type CheckReport,
  type ConnectionDriver,
} from './harness.js';

export type { CheckReport } from './harness.js';
import {
  BASE,
  byIdOnly,
  CHANGED,
  changed,
  chunks,
  createKind,
  creates,
  creatingKinds,
  declares,
  deliver,
  expectAllOk,
  expectHeld,
  expectId,
  expectLanded,
  heldOnce,
  idOf,
  opFor,
  readAll,
  records,
  requireCreate,
  requireIds,
  sameFields,
  updateKind,
  write,
  writeAll,
  writeOk,
} from './destination-kit.js';
import { faultChecks, needsFaults, needsHold } from './destination-faults.js';
import { limitChecks, needsLimits } from './destination-limits.js';
import { specCheckList, type SpecHarness } from './spec.js';

/** A record the driver makes up for the destination under test. */
export interface TestRecord {
  /** The model key; distinct for distinct `i` in {@link DestinationDriver.record}. */
  key: string;
  /** The match key fields, when the destination matches records by them. */
  match?: Row;
  /** The fields to write; they must differ between records of different `i`. */
  fields: Row;
}

/** One record as the destination holds it, as {@link DestinationDriver.readAll} reports it. */
export interface HeldRecord {
  /**
   * The model key the record was written for: read where the destination keeps it, or
   * worked out from the record's match fields.
   */
  key: string;
  /** The destination's id for the record, when it assigns ids. */
  id?: string;
  /** The record's fields as the destination holds them. */
  fields: Row;
}

/** What {@link destinationAcceptance} needs to exercise a destination. */
export interface DestinationDriver<C = unknown> extends ConnectionDriver<C> {
  connector: AnyConnector;
  /** The destination object written to, e.g. `contacts`. */
  object: string;
  /**
   * Every record of `object` the destination holds, read through its API or an emulator's
   * inspection API: one entry per record, so a record created twice shows up twice. Never
   * read into a map by key, which hides duplicates; where the destination itself can hold
   * only one record per key (a table with that primary key), say so beside the driver.
   * Against a system that holds other data, return only the records whose keys carry this
   * run's id.
   */
  readAll(): Promise<HeldRecord[]>;
  /** A valid record for index `i`; the suite uses indexes up to about twenty-two million. */
  record(i: number): TestRecord;
  /**
   * Whether the destination assigns ids to records. When it does, every `ok` insert and
   * upsert must return one as `destinationId`, and an operation carrying it must address
   * that record; when it does not, records are addressed by match key (or model key) only.
   */
  assignsIds: boolean;
  /** A record the destination rejects on its own (e.g. an invalid email). */
  badRecord?(): TestRecord;
  /**
   * Why the destination has no invalid input, when there is no `badRecord`. Accepted only
   * when discover() shows no constraint on the object's fields (required, read-only, a list
   * of options, a type other than free text or JSON); otherwise `bad-record` fails.
   */
  noBadRecord?: string;
  /** Why `capabilities().rateLimits` is empty, when it is (e.g. a database has no request limit). */
  noRateLimits?: string;
  /**
   * Sets the faults of the emulator the connection talks to, replacing those set before
   * (`{}` clears them): the emulator kit's knobs — `status429Every`, `failRequests` (503),
   * `errorRate` (5xx), `latencyMs`, and `lostAnswerRate` with `lostAnswer` (the write is
   * applied, then its answer is lost). The fault checks (`throttle`, `server-error`,
   * `timeout`, `abort`, `lost-answer`) drive the destination through it.
   */
  faults?(faults: KitFaults): void | Promise<void>;
  /** Why there is no `faults()` (e.g. a database reached without an emulator); the fault checks are then skipped with it. */
  noFaults?: string;
  /**
   * Without `faults()`: holds back every write the destination receives until the returned
   * function is called — e.g. a lock on the table taken in another session. The `abort`
   * check then stops a held write.
   */
  stall?(): Promise<() => Promise<void>>;
  /**
   * How long the connector, with the working config, waits for an answer before it gives
   * up on a request. The `timeout` and `lost-answer` checks hold answers back beyond it, so
   * set it short in the config (a second or two). Required with `faults()`.
   */
  requestTimeoutMs?: number;
  /**
   * The rate limits the service (or its emulator) enforces on this connection, in its
   * requests: `rate-limits` compares the declared limits with them and probes the service.
   */
  enforcedLimits?(): RateLimit[] | Promise<RateLimit[]>;
  /**
   * The service counts requests in fixed windows that start at multiples of the window's
   * length since the Unix epoch (Intercom's 10-second windows), not in a rolling window: a
   * burst crossing a window's start is then taken up to twice the limit, so `rate-limits`
   * starts its probe just after a window starts.
   */
  fixedWindows?: boolean;
  /**
   * Why the declared limits cannot be compared with enforced ones (e.g. the limit is the
   * user's own setting and the emulator enforces none); `rate-limits` is then skipped with it.
   */
  noEnforcedLimits?: string;
}

/** A started destination under test. */
export interface DestinationHarness<C = unknown> extends SpecHarness<C> {
  driver: DestinationDriver<C>;
  destination: Destination<C>;
  capabilities: Capabilities;
  /** A fresh idempotency key for one operation. */
  idempotencyKey(kind: OperationKind, key: string): string;
}

const KINDS: readonly OperationKind[] = ['upsert', 'update', 'insert', 'delete', 'event'];
const MODES = ['upsert', 'update', 'insert', 'mirror', 'event'];
const IDEMPOTENCY: readonly Idempotency[] = ['key', 'match', 'none'];
/** Field types a record cannot break: free text and JSON. */
const FREE_FORM = /^(string|text|varchar|character varying|json|jsonb|object|any|variant)$/i;

/**
 * Starts the driver's connection and reads the destination's capabilities for its object.
 * The harness's context keeps to the declared rate limits, as the engine's budget does.
 */
export async function startDestination<C>(driver: DestinationDriver<C>): Promise<DestinationHarness<C>> {
  const opened = await openDestination<C>(driver.connector, driver, driver.object);
  const run = randomUUID();
  let seq = 0;
  return {
    ...opened,
    driver,
    idempotencyKey: (kind, key) => `acceptance:${run}:${++seq}:${kind}:${key}`,
  };
}

/** Creates `rec`, deletes it by its destinationId, and returns that id, now stale. */
async function createAndDelete(h: DestinationHarness, rec: TestRecord, what: string): Promise<string> {
  const create = opFor(h, createKind(h), rec);
  const [created] = await writeOk(h, [create], `a create of ${what}`);
  const id = expectId(h, created!, create, `the create of ${what}`)!;
  await writeOk(h, [opFor(h, 'delete', rec, id)], `a delete of ${what}`);
  return id;
}

function expectNotFound(result: RecordResult, what: string): void {
  if (result.ok) fail(`${what} was acknowledged; an update must not create a record (update mode never creates)`);
  if (result.retryable) {
    fail(`${what} was rejected as retryable (${show(result.reason)}); a missing record does not appear by waiting, so retryable must be false`);
  }
  if (!/not found/i.test(result.reason)) fail(`${what} was rejected with the reason ${show(result.reason)}, which must say the record was "not found"`);
}

/** A way to get an operation the destination refuses: the driver's bad record, else an update of a missing record. */
function refusal(h: DestinationHarness): ((n: number) => Operation) | undefined {
  const bad = h.driver.badRecord?.();
  if (bad !== undefined) return () => opFor(h, createKind(h), bad);
  if (declares(h, 'update')) return (n) => opFor(h, 'update', h.driver.record(BASE.order + 100 + n));
  return undefined;
}

/** What a field's declaration lets a record break, if anything. */
function constraintOf(f: FieldInfo): string | undefined {
  if (f.required) return `${f.name} is required`;
  if (f.readOnly) return `${f.name} is read-only`;
  if (f.options !== undefined && f.options.length > 0) return `${f.name} takes one of ${f.options.length} options`;
  if (!FREE_FORM.test(f.type)) return `${f.name} is of type ${f.type}`;
  return undefined;
}

/** `noBadRecord` holds only for an object whose fields, as discover() lists them, constrain nothing. */
async function expectNoConstraints(h: DestinationHarness, why: string): Promise<string> {
  const catalog = await within(h.destination.discover(h.ctx), h.timeoutMs, 'discover()');
  const object = catalog?.objects?.find((o) => o.name === h.driver.object) ?? catalog?.objects?.find((o) => o.name === '*');
  const constraints = (object?.fields ?? []).flatMap((f) => constraintOf(f) ?? []);
  if (constraints.length > 0) {
    fail(
      `the driver gives noBadRecord (${show(why)}) instead of badRecord(), but discover() shows that ${show(h.driver.object)} validates its input: ` +
        `${constraints.slice(0, 5).join('; ')}; give badRecord() with a record that breaks one of these`,
    );
  }
  return `no bad record: ${why} (discover() lists no constraint on ${show(h.driver.object)}'s fields)`;
}

/** lookup() answers `applied` for an operation it applied, `absent` for one never sent, and applies nothing. */
async function checkLookup(h: DestinationHarness): Promise<void> {
  const lookup = h.destination.lookup!;
  const kind = createKind(h);
  const [sentRec, unsentRec] = records(h, BASE.lookup, 2);
  const sent = opFor(h, kind, sentRec!);
  const [result] = await writeOk(h, [sent], `a ${kind} to look up`);
  const unsent = opFor(h, kind, unsentRec!);
  const answers = await within(lookup.call(h.destination, h.ctx, h.driver.object, [sent, unsent]), h.timeoutMs, 'lookup()');
  if (!Array.isArray(answers) || answers.length !== 2) fail(`lookup() of 2 operations returned ${show(answers)}, not 2 results`);
  const [applied, absent] = answers;
  if (applied?.state !== 'applied') {
    fail(`lookup() answered ${show(applied)} for the ${kind} of ${show(sent.key)}, which was applied; expected { state: 'applied' }`);
  }
  const id = idOf(result!);
  if (applied.destinationId !== undefined && id !== undefined && applied.destinationId !== id) {
    fail(`lookup() answered id ${show(applied.destinationId)} for the ${kind} of ${show(sent.key)}, which write() answered with id ${show(id)}`);
  }
  if (absent?.state !== 'absent') {
    fail(`lookup() answered ${show(absent)} for the ${kind} of ${show(unsent.key)}, which was never sent; expected { state: 'absent' }`);
  }
  if (heldOnce(await readAll(h), unsent.key, 'after lookup()') !== undefined) {
    fail(`lookup() applied the operation it was asked about: record ${show(unsent.key)} is now in the destination`);
  }
}

/** The destination checks, as plain async functions over a {@link DestinationHarness}. */
export const destinationChecks = {
  /** check() passes with the working config. */
  async check(h: DestinationHarness): Promise<void> {
    await within(h.destination.check(h.ctx), h.timeoutMs, 'check()');
  },

  /** check() refuses every bad config with an OutflowError. */
  async badConfigs(h: DestinationHarness): Promise<void> {
    if (h.badConfigs.length === 0) fail('the driver gives no bad configs; give at least one config check() must refuse (a wrong secret, an unreachable host)');
    for (const bad of h.badConfigs) {
      let error: unknown;
      try {
        await within(h.destination.check(h.context(bad.config)), h.timeoutMs, `check() with bad config "${bad.name}"`);
      } catch (err) {
        error = err;
      }
      if (error === undefined) fail(`check() accepted bad config "${bad.name}"`);
      if (!isOutflowError(error)) fail(`check() with bad config "${bad.name}" threw a non-OutflowError: ${describeError(error)}`);
      if (error.message.trim() === '') fail(`check() with bad config "${bad.name}" threw an error without a message`);
    }
  },

  /** discover() lists well-formed objects. */
  async discover(h: DestinationHarness): Promise<void> {
    const catalog = await within(h.destination.discover(h.ctx), h.timeoutMs, 'discover()');
    if (!Array.isArray(catalog?.objects) || catalog.objects.length === 0) fail(`discover() returned no objects: ${show(catalog)}`);
    for (const o of catalog.objects) {
      if (typeof o.name !== 'string' || o.name === '') fail(`discover() returned an object without a name: ${show(o)}`);
      if (!Array.isArray(o.fields) || o.fields.some((f) => typeof f?.name !== 'string' || typeof f.type !== 'string')) {
        fail(`discover(): object "${o.name}" must list fields as { name, type }`);
      }
      if (!Array.isArray(o.matchKeys) || !Array.isArray(o.modes)) fail(`discover(): object "${o.name}" must list matchKeys and modes`);
      const unknownModes = o.modes.filter((m) => !MODES.includes(m));
      if (unknownModes.length > 0) fail(`discover(): object "${o.name}" lists unknown modes ${show(unknownModes)}`);
      const names = new Set(o.fields.map((f) => f.name));
      const stray = o.fields.length === 0 ? [] : o.matchKeys.filter((k) => !names.has(k));
      if (stray.length > 0) fail(`discover(): object "${o.name}" has match keys ${show(stray)} that are not among its fields`);
    }
  },

  /** capabilities() declares known operations, a batch size, rate limits (or the driver says why none) and concurrency. */
  async capabilities(h: DestinationHarness): Promise<void> {
    const c = h.capabilities;
    if (!Array.isArray(c.operations) || c.operations.length === 0) fail(`capabilities() declares no operations: ${show(c)}`);
    const unknown = c.operations.filter((k) => !KINDS.includes(k));
    if (unknown.length > 0) fail(`capabilities() declares unknown operations ${show(unknown)}`);
    if (!Number.isInteger(c.maxBatchSize) || c.maxBatchSize < 1) fail(`capabilities().maxBatchSize must be a positive integer, got ${show(c.maxBatchSize)}`);
    if (!Number.isInteger(c.concurrency) || c.concurrency < 1) fail(`capabilities().concurrency must be a positive integer, got ${show(c.concurrency)}`);
    if (!Array.isArray(c.rateLimits) || c.rateLimits.some((r) => !(r.requests > 0) || !(r.perMs > 0))) {
      fail(`capabilities().rateLimits must be a list of { requests > 0, perMs > 0 }, got ${show(c.rateLimits)}`);
    }
    if (c.rateLimits.length === 0 && h.driver.noRateLimits === undefined) {
      fail("capabilities().rateLimits is empty: declare the vendor's limits, or give the driver `noRateLimits` saying why the destination has none");
    }
  },

  /**
   * Records created by each declared creating kind — upserts of new records, and inserts
   * when insert is declared beside upsert — read back once each, with the fields written.
   */
  async create(h: DestinationHarness): Promise<void> {
    for (const [n, kind] of creatingKinds(h).entries()) {
      const recs = records(h, BASE.create + 100 * n, 5);
      await writeOk(h, recs.map((r) => opFor(h, kind, r)), `5 ${kind}s of new records`);
      await expectLanded(h, recs, `after ${kind}s of new records`);
    }
  },

  /** An update, and an upsert, of a created record (carrying its destinationId) change its fields. */
  async update(h: DestinationHarness): Promise<void> {
    const kinds = (['update', 'upsert'] as const).filter((k) => declares(h, k));
    for (const [n, kind] of kinds.entries()) {
      const index = BASE.update + n;
      const rec = h.driver.record(index);
      const [created] = await writeOk(h, [opFor(h, createKind(h), rec)], `a create before an ${kind}`);
      await expectLanded(h, [rec], `before the ${kind}`);
      const next = changed(h, rec, index);
      await writeOk(h, [opFor(h, kind, next, idOf(created!))], `an ${kind} of a created record`);
      await expectLanded(h, [next], `after the ${kind} of a created record`);
    }
  },

  /** A delete removes a created record. */
  async delete(h: DestinationHarness): Promise<void> {
    const rec = h.driver.record(BASE.delete);
    const [created] = await writeOk(h, [opFor(h, createKind(h), rec)], 'a create before a delete');
    await expectLanded(h, [rec], 'before the delete');
    await writeOk(h, [opFor(h, 'delete', rec, idOf(created!))], 'a delete');
    const after = heldOnce(await readAll(h), rec.key, 'after the delete');
    if (after !== undefined) fail(`record ${show(rec.key)} still reads back after its delete was acknowledged: ${show(after.fields)}`);
  },

  /**
   * An update of a record that does not exist (by match key, and by a destinationId that no
   * longer exists) is rejected, not retryable, as "not found", and creates nothing.
   */
  async missingUpdate(h: DestinationHarness): Promise<void> {
    const rec = h.driver.record(BASE.missing);
    const before = await readAll(h);
    const [result] = await write(h, [opFor(h, 'update', rec)], 'an update of a record that does not exist');
    expectNotFound(result!, `an update of record ${show(rec.key)}, which does not exist,`);
    const after = await readAll(h);
    if (heldOnce(after, rec.key, 'after an update of a missing record') !== undefined || after.length !== before.length) {
      fail(`an update of record ${show(rec.key)}, which does not exist, created a record (the destination held ${before.length}, now ${after.length})`);
    }
    if (!h.driver.assignsIds || creates(h) === undefined || !declares(h, 'delete')) return;
    const gone = h.driver.record(BASE.missing + 1);
    const id = await createAndDelete(h, gone, 'a record to update after its delete');
    const [stale] = await write(h, [byIdOnly(opFor(h, 'update', changed(h, gone, BASE.missing + 1), id))], 'an update by a deleted destinationId');
    expectNotFound(stale!, `an update of record ${show(gone.key)} by destinationId ${show(id)}, deleted before,`);
    if (heldOnce(await readAll(h), gone.key, 'after an update of a deleted record') !== undefined) {
      fail(`an update of record ${show(gone.key)} by destinationId ${show(id)}, deleted before, brought the record back`);
    }
  },

  /** A delete of a record that does not exist (by match key, and by a stale destinationId) is ok. */
  async missingDelete(h: DestinationHarness): Promise<void> {
    const rec = h.driver.record(BASE.missing + 2);
    const before = await readAll(h);
    const [result] = await write(h, [opFor(h, 'delete', rec)], 'a delete of a record that does not exist');
    if (!result!.ok) {
      fail(`a delete of record ${show(rec.key)}, which does not exist, was rejected (${show(result!.reason)}); a missing record is already deleted, so the result must be ok`);
    }
    const after = await readAll(h);
    if (after.length !== before.length) fail(`a delete of a record that does not exist changed the number of records from ${before.length} to ${after.length}`);
    if (!h.driver.assignsIds || creates(h) === undefined) return;
    const gone = h.driver.record(BASE.missing + 3);
    const id = await createAndDelete(h, gone, 'a record to delete twice');
    const [again] = await write(h, [byIdOnly(opFor(h, 'delete', gone, id))], 'a delete by a deleted destinationId');
    if (!again!.ok) {
      fail(`a delete of record ${show(gone.key)} by destinationId ${show(id)}, deleted before, was rejected (${show(again!.reason)}); it must be ok`);
    }
  },

  /**
   * Each ok insert and upsert carries the record's destinationId, and an update or delete
   * carrying only that id (no match) acts on the record.
   */
  async destinationId(h: DestinationHarness): Promise<void> {
    const created: { rec: TestRecord; op: Operation; id: string }[] = [];
    for (const [n, kind] of (['upsert', 'insert'] as const).filter((k) => declares(h, k)).entries()) {
      const recs = records(h, BASE.destinationId + 10 * n, 2);
      const ops = recs.map((r) => opFor(h, kind, r));
      const results = await writeOk(h, ops, `2 ${kind}s`);
      results.forEach((r, i) => created.push({ rec: recs[i]!, op: ops[i]!, id: expectId(h, r, ops[i]!, `${kind} of a new record`)! }));
    }
    const ids = created.map((c) => c.id);
    if (new Set(ids).size !== ids.length) fail(`distinct records were given the same destination ids: ${show(ids)}`);
    const all = await readAll(h);
    for (const c of created) {
      const held = expectHeld(all, c.rec, `after ${c.op.kind}`);
      if (held.id !== undefined && held.id !== c.id) {
        fail(`the ${c.op.kind} of ${show(c.rec.key)} answered destinationId ${show(c.id)}, but the destination holds the record with id ${show(held.id)}`);
      }
    }
    const [first, second] = created as [(typeof created)[number], (typeof created)[number]];
    if (declares(h, 'update')) {
      const next = changed(h, first.rec, BASE.destinationId);
      const [result] = await write(h, [byIdOnly(opFor(h, 'update', next, first.id))], 'an update carrying only a destinationId');
      if (!result!.ok) {
        fail(`an update of ${show(next.key)} carrying only destinationId ${show(first.id)} (no match) was rejected (${show(result!.reason)}); the id must address the record`);
      }
      const after = await readAll(h);
      expectHeld(after, next, 'after an update carrying only a destinationId');
      if (after.length !== all.length) fail(`an update carrying only a destinationId changed the number of records from ${all.length} to ${after.length}`);
    }
    if (declares(h, 'delete')) {
      const [result] = await write(h, [byIdOnly(opFor(h, 'delete', second.rec, second.id))], 'a delete carrying only a destinationId');
      if (!result!.ok) fail(`a delete of ${show(second.rec.key)} carrying only destinationId ${show(second.id)} was rejected (${show(result!.reason)})`);
      const left = heldOnce(await readAll(h), second.rec.key, 'after a delete carrying only a destinationId');
      if (left !== undefined) fail(`a delete carrying only destinationId ${show(second.id)} was acknowledged, but record ${show(second.rec.key)} is still there`);
    }
  },

  /**
   * An update (and an upsert) carrying both a destinationId and a changed match acts on the
   * record with that id and sets the new match values on it; an upsert whose destinationId
   * no longer exists falls back to its match key.
   */
  async precedence(h: DestinationHarness): Promise<void> {
    for (const [n, kind] of (['update', 'upsert'] as const).filter((k) => declares(h, k)).entries()) {
      const index = BASE.precedence + 10 * n;
      const rec = h.driver.record(index);
      const other = h.driver.record(index + CHANGED);
      const create = opFor(h, createKind(h), rec);
      const [created] = await writeOk(h, [create], `a create before an ${kind} with a changed match`);
      const id = expectId(h, created!, create, `the create before an ${kind} with a changed match`)!;
      const count = (await readAll(h)).length;
      const match = other.match ?? fail(`driver.record(${index + CHANGED}) gives no match fields`);
      const op: Operation = { kind, key: rec.key, match, fields: other.fields, destinationId: id, idempotencyKey: h.idempotencyKey(kind, rec.key) };
      const [result] = await write(h, [op], `an ${kind} carrying a destinationId and a changed match`);
      if (!result!.ok) {
        fail(
          `an ${kind} of ${show(rec.key)} carrying destinationId ${show(id)} and the changed match ${show(other.match)} was rejected (${show(result!.reason)}); ` +
            'the destinationId addresses the record and the match only carries values to set',
        );
      }
      if (result!.destinationId !== undefined && result!.destinationId !== id) {
        fail(`an ${kind} carrying destinationId ${show(id)} and a changed match answered id ${show(result!.destinationId)}: it acted on another record`);
      }
      const all = await readAll(h);
      if (all.length !== count) {
        fail(`an ${kind} carrying destinationId ${show(id)} and a changed match changed the number of records from ${count} to ${all.length}; it must change the record with that id, not create one`);
      }
      const holding = all.filter((r) => differingFields(r.fields, other.fields).length === 0);
      if (holding.length !== 1 || (holding[0]!.id !== undefined && holding[0]!.id !== id)) {
        fail(`after an ${kind} carrying destinationId ${show(id)} and a changed match, the record with that id should hold ${show(other.fields)}; records holding it: ${show(holding)}`);
      }
    }
    if (!declares(h, 'upsert') || !declares(h, 'delete')) return;
    const rec = h.driver.record(BASE.precedence + 100);
    const id = await createAndDelete(h, rec, 'a record to upsert after its delete');
    const op = opFor(h, 'upsert', rec, id);
    const [result] = await write(h, [op], 'an upsert whose destinationId no longer exists');
    if (!result!.ok) {
      fail(`an upsert of ${show(rec.key)} whose destinationId ${show(id)} no longer exists was rejected (${show(result!.reason)}); it must fall back to its match key and create the record`);
    }
    expectId(h, result!, op, 'an upsert whose destinationId no longer exists');
    expectHeld(await readAll(h), rec, 'after an upsert whose destinationId no longer exists');
  },

  /** An insert of a record whose match key exists is rejected, not retryable, and changes nothing. */
  async insertExisting(h: DestinationHarness): Promise<void> {
    const rec = h.driver.record(BASE.insertExisting);
    await writeOk(h, [opFor(h, createKind(h), rec)], 'a create before an insert of the same record');
    const next = changed(h, rec, BASE.insertExisting);
    const [result] = await write(h, [opFor(h, 'insert', next)], 'an insert of a record that exists');
    const what = `an insert of ${show(rec.key)}, whose match key ${show(rec.match ?? rec.key)} already exists, with new fields`;
    if (result!.ok) fail(`${what} was acknowledged; it must be rejected with retryable: false, neither overwriting the record nor creating another`);
    if (result!.retryable) fail(`${what} was rejected as retryable (${show(result!.reason)}); the record does not go away by waiting, so retryable must be false`);
    expectHeld(await readAll(h), rec, 'after a refused insert over it');
  },

  /**
   * A bad record is rejected alone, for good, with a reason, while the rest of its batch
   * lands: in a batch of up to five (fewer when maxBatchSize is smaller), the bad record in
   * the middle. A batch refused as a whole with a non-retryable error is bisected, as the
   * engine does. Without badRecord(), `noBadRecord` must say why, and discover() must show
   * nothing a record could break.
   */
  async badRecord(h: DestinationHarness): Promise<string | void> {
    const bad = h.driver.badRecord?.();
    if (bad === undefined) {
      const why = h.driver.noBadRecord ?? fail('the driver gives no badRecord(); give one, or `noBadRecord` saying why the destination has no invalid input');
      return expectNoConstraints(h, why);
    }
    const kind = createKind(h);
    const good = records(h, BASE.bad, 4);
    const size = Math.min(5, h.capabilities.maxBatchSize);
    const at = Math.floor(size / 2);
    const inBatch = [...good.slice(0, at), bad, ...good.slice(at, size - 1)];
    const ops = inBatch.map((r) => opFor(h, kind, r));
    const what = `a batch of ${size} with a bad record at position ${at}`;
    const first = await write(h, ops, what).then(
      (results) => ({ results }),
      (error: unknown) => ({ error }),
    );
    if ('error' in first && !(isOutflowError(first.error) && !first.error.retryable)) {
      fail(
        `${what} failed as a whole (${describeError(first.error)}); a bad record is the record's fault: reject it alone with a result, ` +
          'or refuse the batch with a non-retryable OutflowError (the engine then bisects it) — a retryable error is sent again forever',
      );
    }
    if ('results' in first) {
      const r = first.results[at]!;
      if (!r.ok && r.retryable) fail(`the bad record ${show(bad.key)} was rejected as retryable (${show(r.reason)}); invalid input does not become valid by waiting, so retryable must be false`);
    }
    const outcomes = await deliver(h, ops, what, first);
    if (outcomes[at]!.state === 'ok') fail(`the bad record ${show(bad.key)} (${show(bad.fields)}) was accepted`);
    outcomes.forEach((o, i) => {
      if (i !== at && o.state !== 'ok') fail(`beside a bad record, the valid ${kind} of ${show(ops[i]!.key)} was not applied: ${show(o)}`);
    });
    await writeOk(h, good.slice(size - 1).map((r) => opFor(h, kind, r)), `${kind}s after a bad record`);
    const all = await readAll(h);
    for (const rec of good) expectHeld(all, rec, 'beside a rejected record');
    const landed = heldOnce(all, bad.key, 'after the rejection');
    if (landed !== undefined) fail(`the rejected record ${show(bad.key)} reads back from the destination: ${show(landed.fields)}`);
  },

  /**
   * The declared idempotency is one of key, match, none, and holds: with `key` or `match`,
   * sending the same operations again (same idempotency keys) leaves one record per key,
   * unchanged; `lookup()`, when offered, tells applied from absent. With `none` and no
   * lookup, the check passes with a note: the engine parks records in doubt.
   */
  async idempotency(h: DestinationHarness): Promise<string | undefined> {
    const declared = h.capabilities.idempotency;
    if (!IDEMPOTENCY.includes(declared)) fail(`capabilities().idempotency must be one of ${IDEMPOTENCY.join(', ')}; got ${show(declared)}`);
    const kind = creates(h);
    if (kind === undefined) return 'the destination cannot create records, so there is nothing to send again';
    if (h.destination.lookup !== undefined) await checkLookup(h);
    if (declared === 'none') {
      return h.destination.lookup !== undefined
        ? undefined
        : 'idempotency is `none` and there is no lookup(): the engine never sends an operation in doubt again; it parks the record as "outcome unknown"';
    }
    const recs = records(h, BASE.idem, 3);
    const steps: { what: string; ops: Operation[] }[] = [{ what: `3 ${kind}s`, ops: recs.map((r) => opFor(h, kind, r)) }];
    if (kind !== 'insert' && declares(h, 'insert')) {
      const inserted = records(h, BASE.idem + 10, 2);
      recs.push(...inserted);
      steps.push({ what: '2 inserts', ops: inserted.map((r) => opFor(h, 'insert', r)) });
    }
    const upd = updateKind(h);
    const later: Operation[] = [];
    if (upd !== undefined) later.push(opFor(h, upd, changed(h, recs[0]!, BASE.idem)));
    if (declares(h, 'delete')) later.push(opFor(h, 'delete', recs[1]!));
    if (later.length > 0) steps.push({ what: later.map((o) => o.kind).join(' and '), ops: later });

    for (const step of steps) {
      const first = await writeOk(h, step.ops, step.what);
      const before = await readAll(h);
      const again = await writeAll(h, step.ops, `${step.what} sent again`);
      again.forEach((r, i) => {
        const op = step.ops[i]!;
        const earlier = first[i]!;
        if (!r.ok) {
          // Idempotency `match` may refuse a re-sent insert as existing: no second record either way.
          if (declared === 'match' && op.kind === 'insert' && !r.retryable) return;
          fail(`the re-sent ${op.kind} of ${show(op.key)} (same idempotency key) was rejected (${show(r.reason)}); with idempotency "${declared}" a re-send must succeed`);
        }
        if (earlier.ok && earlier.destinationId !== undefined && r.destinationId !== earlier.destinationId) {
          fail(`the re-sent ${op.kind} of ${show(op.key)} answered id ${show(r.destinationId)}, the first time ${show(earlier.destinationId)}`);
        }
      });
      const after = await readAll(h);
      for (const rec of recs) {
        const was = heldOnce(before, rec.key, `before sending ${step.what} again`);
        const is = heldOnce(after, rec.key, `after sending ${step.what} again`);
        if (!sameFields(is, was)) {
          fail(`sending ${step.what} again changed record ${show(rec.key)}: ${show(was?.fields)} became ${show(is?.fields)}`);
        }
      }
      if (after.length !== before.length) {
        fail(`sending ${step.what} again changed the number of records the destination holds from ${before.length} to ${after.length}`);
      }
    }
    return undefined;
  },

  /**
   * Results come back in the order of the operations: a refused operation (the bad record,
   * else an update of a missing record) is answered at its own position, and, when the
   * destination assigns ids, updates in reverse order answer with their own records' ids.
   */
  async order(h: DestinationHarness): Promise<void> {
    const kind = createKind(h);
    const max = h.capabilities.maxBatchSize;
    let checked = false;
    const refused = refusal(h);
    if (refused !== undefined) {
      const size = Math.min(3, max);
      const good = records(h, BASE.order, 2 * (size - 1)).map((r) => opFor(h, kind, r));
      const batches: [Operation[], number][] = [
        [[refused(0), ...good.slice(0, size - 1)], 0],
        [[...good.slice(size - 1), refused(1)], size - 1],
      ];
      for (const [ops, badAt] of batches) {
        const what = `a batch with a refused operation at position ${badAt}`;
        const answer = await write(h, ops, what).then(
          (results) => ({ results }),
          (error: unknown) => ({ error }),
        );
        // A destination that refuses such a batch as a whole answers no per-record results to order.
        if ('error' in answer) {
          if (isOutflowError(answer.error) && !answer.error.retryable) break;
          throw answer.error;
        }
        answer.results.forEach((r, i) => {
          if (r.ok === (i === badAt)) fail(`results are out of order: with the refused operation at position ${badAt}, result ${i} is ${show(r)}`);
        });
        checked = true;
      }
    }
    if (h.driver.assignsIds) {
      const n = Math.min(4, max);
      const recs = records(h, BASE.order + 10, n);
      const ops = recs.map((r) => opFor(h, kind, r));
      const first = await writeOk(h, ops, `${n} ${kind}s`);
      const ids = first.map((r, i) => expectId(h, r, ops[i]!, `${n} ${kind}s`)!);
      if (new Set(ids).size < n) {
        fail(`${n} ${kind}s of distinct records gave ${new Set(ids).size} distinct destination ids (${show(ids)}); results cannot be told apart`);
      }
      const upd = updateKind(h);
      if (upd !== undefined) {
        const reversed = [...recs].reverse();
        const again = await writeOk(h, reversed.map((r, i) => opFor(h, upd, r, ids[n - 1 - i])), `${n} ${upd}s in reverse order`);
        again.forEach((r, i) => {
          const expected = ids[n - 1 - i];
          if (r.ok && r.destinationId !== undefined && r.destinationId !== expected) {
            fail(`results are out of order: result ${i} (key ${show(reversed[i]!.key)}) has id ${show(r.destinationId)}, expected ${show(expected)}`);
          }
        });
      }
      checked = true;
    }
    if (!checked) {
      fail(
        'result order cannot be checked: no operation is refused on its own (the driver gives no badRecord(), or the destination refuses its batch as a whole, ' +
          'and it declares no update, whose refusal of a missing record would do) and the destination assigns no ids',
      );
    }
  },

  /**
   * Operations on one key are applied in the order of the write() calls that carry them:
   * several keys go through create, updates, a delete and a create again (as declared),
   * staggered so that every call holds one operation per key at a different step, each
   * call acknowledged before the next (the engine never has two operations of one key in
   * flight, so never two in one batch). Each key ends up held once, with its last fields.
   */
  async keyOrder(h: DestinationHarness): Promise<void> {
    const create = createKind(h);
    const update = updateKind(h);
    const steps: OperationKind[] = [create];
    if (update !== undefined) steps.push(update, update);
    if (declares(h, 'delete')) steps.push('delete', create);
    if (update !== undefined) steps.push(update);
    const keys = records(h, BASE.keyOrder, 3);
    const version = (k: number, step: number): TestRecord => (step === 0 ? keys[k]! : changed(h, keys[k]!, BASE.keyOrder + k, 100_000 * step));
    const ids = new Map<number, string>();
    const calls = steps.length + keys.length - 1;
    for (let call = 0; call < calls; call++) {
      const due = keys.flatMap((_, k) => (call - k >= 0 && call - k < steps.length ? [{ k, step: call - k }] : []));
      for (const part of chunks(due, h.capabilities.maxBatchSize)) {
        const ops = part.map(({ k, step }) => {
          // As the engine does: the id of the key's record, when it has one (none after its delete).
          return opFor(h, steps[step]!, version(k, step), ids.get(k));
        });
        const results = await write(h, ops, `write call ${call + 1} of ${calls} (one operation per key)`);
        results.forEach((r, i) => {
          const { k, step } = part[i]!;
          const op = ops[i]!;
          if (!r.ok) fail(`the ${op.kind} of ${show(op.key)} (its operation ${step + 1} of ${steps.length}: ${steps.join(', ')}) was rejected: ${show(r.reason)}`);
          if (op.kind === 'delete') ids.delete(k);
          else if (op.kind !== 'update') {
            const id = expectId(h, r, op, `operation ${step + 1} of ${show(op.key)}`);
            if (id !== undefined) ids.set(k, id);
          }
        });
      }
    }
    const all = await readAll(h);
    keys.forEach((rec, k) => {
      const last = version(k, steps.length - 1);
      const copies = all.filter((r) => r.key === rec.key);
      const sequence = `${steps.join(', ')}, each in its own write() call`;
      if (copies.length !== 1) {
        fail(`after ${sequence}, the destination holds ${copies.length} records for key ${show(rec.key)}; expected exactly one: ${show(copies)}`);
      }
      const differing = differingFields(copies[0]!.fields, last.fields);
      if (differing.length > 0) {
        fail(
          `after ${sequence}, record ${show(rec.key)} reads back with ${differing.map((f) => `${f}=${show(copies[0]!.fields[f])} (its last ${steps[steps.length - 1]} wrote ${show(last.fields[f])})`).join(', ')}: ` +
            'operations on one key must be applied in the order of the calls that carry them, and acknowledged only once applied',
        );
      }
    });
  },

  /**
   * An upsert (carrying no destinationId, as on a first sync) of records that already exist
   * — created by an earlier write with a different idempotency key, by insert when declared
   * — updates them: the number of records does not change, each key is held once with the
   * new fields, and the answer carries the existing record's id.
   */
  async upsertExisting(h: DestinationHarness): Promise<void> {
    const before = declares(h, 'insert') ? 'insert' : 'upsert';
    const recs = records(h, BASE.upsertExisting, 2);
    const created = await writeOk(h, recs.map((r) => opFor(h, before, r)), `${before}s of records that exist before the sync`);
    const count = (await readAll(h)).length;
    const next = recs.map((r, i) => changed(h, r, BASE.upsertExisting + i));
    const ops = next.map((r) => opFor(h, 'upsert', r));
    const results = await writeOk(h, ops, 'upserts of records that already exist (no destinationId)');
    results.forEach((r, i) => {
      const id = expectId(h, r, ops[i]!, 'an upsert of a record that already exists');
      const existing = idOf(created[i]!);
      if (id !== undefined && existing !== undefined && id !== existing) {
        fail(`the upsert of ${show(ops[i]!.key)}, whose record already existed with id ${show(existing)}, answered id ${show(id)}: it created another record instead of updating the one with its match key`);
      }
    });
    const all = await readAll(h);
    for (const rec of next) {
      const copies = all.filter((r) => r.key === rec.key);
      if (copies.length > 1) {
        fail(`the upsert of ${show(rec.key)}, whose record already existed, created a second one: the destination holds ${copies.length} records for the key: ${show(copies)}`);
      }
      expectHeld(all, rec, 'after an upsert of a record that already existed');
    }
    if (all.length !== count) fail(`upserts of 2 records that already existed changed the number of records from ${count} to ${all.length}; an upsert of an existing record must update it`);
  },

  /** A batch of exactly maxBatchSize operations is accepted. */
  async maxBatch(h: DestinationHarness): Promise<void> {
    const kind = createKind(h);
    const n = h.capabilities.maxBatchSize;
    const recs = records(h, BASE.batch, n);
    const ops = recs.map((r) => opFor(h, kind, r));
    const what = `a full batch of ${n} (maxBatchSize)`;
    const results = await write(h, ops, what).catch((err: unknown) => {
      if (err instanceof AcceptanceFailure) throw err;
      return fail(`${what} was refused as a whole: ${describeError(err)}; capabilities().maxBatchSize must be a batch write() accepts`);
    });
    expectAllOk(results, ops, what);
    await expectLanded(h, [...new Set([0, Math.floor(n / 2), n - 1])].map((i) => recs[i]!), 'in a full batch');
  },
  ...faultChecks,
  ...limitChecks,
};

/** The destination checks, in the order they run. */
export function destinationCheckList<C>(): Check<DestinationHarness<C>>[] {
  const declared = (kind: OperationKind) => (h: DestinationHarness) => (declares(h, kind) ? undefined : `the destination declares no ${kind}`);
  const has = (kind: OperationKind) => (h: DestinationHarness) => declared(kind)(h) ?? requireCreate(h);
  const faulty = (h: DestinationHarness) => requireCreate(h) ?? needsFaults(h);
  const list: Check<DestinationHarness>[] = [
    { id: 'check', title: 'check() passes with the working config', run: destinationChecks.check },
    { id: 'bad-configs', title: 'check() refuses each bad config with an OutflowError', run: destinationChecks.badConfigs },
    { id: 'discover', title: 'discover() lists well-formed objects', run: destinationChecks.discover },
    { id: 'capabilities', title: 'capabilities() declares operations, batch size, rate limits, concurrency', run: destinationChecks.capabilities },
    {
      id: 'create',
      title: 'records created by upsert, and by insert, read back once each with the fields written',
      notApplicable: requireCreate,
      run: destinationChecks.create,
    },
    {
      id: 'update',
      title: 'an update, and an upsert, change the fields of a created record',
      notApplicable: (h) => (updateKind(h) === undefined ? 'the destination declares neither update nor upsert' : requireCreate(h)),
      run: destinationChecks.update,
    },
    { id: 'delete', title: 'a delete removes the record', notApplicable: has('delete'), run: destinationChecks.delete },
    {
      id: 'missing-update',
      title: 'an update of a missing record is rejected as not found, not retryable, and creates nothing',
      notApplicable: declared('update'),
      run: destinationChecks.missingUpdate,
    },
    {
      id: 'missing-delete',
      title: 'a delete of a missing record is ok',
      notApplicable: declared('delete'),
      run: destinationChecks.missingDelete,
    },
    {
      id: 'destination-id',
      title: 'creates return the destinationId, and an update or delete carrying only it addresses the record',
      notApplicable: requireIds,
      run: destinationChecks.destinationId,
    },
    {
      id: 'precedence',
      title: 'a destinationId addresses the record ahead of a changed match; a stale one makes an upsert fall back to the match',
      notApplicable: (h) =>
        requireIds(h) ??
        (updateKind(h) === undefined
          ? 'the destination declares neither update nor upsert'
          : h.driver.record(BASE.precedence).match === undefined
            ? 'driver.record() gives no match fields'
            : undefined),
      run: destinationChecks.precedence,
    },
    {
      id: 'insert-existing',
      title: 'an insert over an existing record is rejected, not retryable, and changes nothing',
      notApplicable: has('insert'),
      run: destinationChecks.insertExisting,
    },
    {
      id: 'upsert-existing',
      title: 'an upsert of a record that exists before the sync updates it, creating nothing',
      notApplicable: has('upsert'),
      run: destinationChecks.upsertExisting,
    },
    {
      id: 'bad-record',
      title: 'a bad record is rejected alone, for good, with a reason, while the rest of its batch lands',
      notApplicable: requireCreate,
      run: destinationChecks.badRecord,
    },
    { id: 'idempotency', title: 'the declared idempotency holds (re-sends leave one record per key; lookup tells applied from absent)', run: destinationChecks.idempotency },
    {
      id: 'order',
      title: 'one result per operation, in order',
      notApplicable: (h) => requireCreate(h) ?? (h.capabilities.maxBatchSize < 2 ? 'maxBatchSize is 1, so every result is alone in its batch' : undefined),
      run: destinationChecks.order,
    },
    {
      id: 'key-order',
      title: 'operations on one key, in successive write() calls, are applied in order',
      notApplicable: (h) =>
        requireCreate(h) ?? (updateKind(h) === undefined && !declares(h, 'delete') ? 'the destination only creates, so a key has no second operation' : undefined),
      run: destinationChecks.keyOrder,
    },
    { id: 'max-batch', title: 'a batch of exactly maxBatchSize is accepted', notApplicable: requireCreate, run: destinationChecks.maxBatch },
    {
      id: 'throttle',
      title: 'a 429 surfaces as retryable, never as a permanent rejection, and sent again every record is held once',
      notApplicable: faulty,
      run: destinationChecks.throttle,
    },
    {
      id: 'server-error',
      title: 'a 503 and a 500 surface as retryable, never as permanent rejections, and sent again every record is held once',
      notApplicable: faulty,
      run: destinationChecks.serverError,
    },
    {
      id: 'timeout',
      title: 'a request left unanswered is given up as retryable, and sent again every record is held once',
      notApplicable: faulty,
      run: destinationChecks.timeout,
    },
    {
      id: 'abort',
      title: 'an abort stops write() promptly with OUTFLOW_ABORTED, and sent again every record is held once',
      notApplicable: (h) => requireCreate(h) ?? needsHold(h),
      run: destinationChecks.abort,
    },
    {
      id: 'lost-answer',
      title: 'a write applied whose answer is lost is in doubt, and sent again per the idempotency no record is lost or duplicated',
      notApplicable: faulty,
      run: destinationChecks.lostAnswer,
    },
    {
      id: 'rate-limits',
      title: 'the declared rate limits are what the service enforces: paced at them nothing is refused, and little capacity is left unused',
      notApplicable: (h) => requireCreate(h) ?? needsLimits(h),
      run: destinationChecks.rateLimits,
    },
  ];
  return list as Check<DestinationHarness<C>>[];
}

/**
 * Registers the destination acceptance suite for a connector as vitest tests: the spec
 * checks, then check(), discover(), capabilities(), writes of every declared operation,
 * read back through `driver.readAll`, the faults the emulator injects, and the declared
 * rate limits. Call it at the top level of a test file.
 */
export function destinationAcceptance<C>(driver: DestinationDriver<C>): void {
  describe(`destination acceptance: ${driver.connector.name}`, () => {
    registerChecks<DestinationHarness<C>>(
      () => startDestination(driver),
      [...(specCheckList(driver.connector) as Check<DestinationHarness<C>>[]), ...destinationCheckList<C>()],
      driver.skip,
    );
  });
}

/**
 * Runs destination checks without vitest, on one harness started from `driver`, and
 * reports each instead of throwing: all of them in order, or those named in `ids`. For
 * trying a connector by hand, and for the suite's own tests of broken connectors.
 */
export async function runDestinationChecks<C>(driver: DestinationDriver<C>, ids?: string[]): Promise<CheckReport[]> {
  return runChecks(() => startDestination(driver), destinationCheckList<C>(), ids, driver.skip);
}
