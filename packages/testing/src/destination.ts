import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { describe } from 'vitest';
import {
  describeError,
  isOutflowError,
  type AnyConnector,
  type Capabilities,
  type Destination,
  type Operation,
  type OperationKind,
  type RecordResult,
  type Row,
} from '@outflow/core';
import { differingFields, fail, openConnection, registerChecks, show, within, type Check, type ConnectionDriver } from './harness.js';
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

/** What {@link destinationAcceptance} needs to exercise a destination. */
export interface DestinationDriver<C = unknown> extends ConnectionDriver<C> {
  connector: AnyConnector;
  /** The destination object written to, e.g. `contacts`. */
  object: string;
  /**
   * Reads the record with model key `key` back from the destination (through its API or an
   * emulator's inspection API); undefined when there is none.
   */
  readBack(key: string): Promise<Row | undefined>;
  /** A valid record for index `i`; the suite uses indexes up to a few million. */
  record(i: number): TestRecord;
  /** A record the destination rejects on its own (e.g. an invalid email). */
  badRecord?(): TestRecord;
}

/** A started destination under test. */
export interface DestinationHarness<C = unknown> extends SpecHarness<C> {
  driver: DestinationDriver<C>;
  destination: Destination<C>;
  capabilities: Capabilities;
  /** A fresh idempotency key for one operation. */
  idempotencyKey(kind: OperationKind, key: string): string;
}

const KINDS: readonly OperationKind[] = ['upsert', 'update', 'insert', 'delete'];
const MODES = ['upsert', 'update', 'insert', 'mirror'];

// Each check writes its own range of record indexes, so checks never touch each other's records.
const BASE = { create: 1_000_000, update: 2_000_000, delete: 3_000_000, bad: 4_000_000, idem: 5_000_000, order: 6_000_000, batch: 7_000_000 };
const CHANGED = 500_000;

/** Starts the driver's connection and reads the destination's capabilities for its object. */
export async function startDestination<C>(driver: DestinationDriver<C>): Promise<DestinationHarness<C>> {
  const connector = driver.connector;
  const destination = connector.destination as Destination<C> | undefined;
  if (destination === undefined) fail(`connector "${connector.name}" provides no destination`);
  const connection = await openConnection<C>(connector, driver);
  try {
    const capabilities = await within(
      Promise.resolve(destination.capabilities(connection.ctx, driver.object)),
      connection.timeoutMs,
      'capabilities()',
    );
    const run = randomUUID();
    let seq = 0;
    return {
      ...connection,
      connector,
      driver,
      destination,
      capabilities,
      idempotencyKey: (kind, key) => `acceptance:${run}:${++seq}:${kind}:${key}`,
    };
  } catch (err) {
    await connection.close();
    throw err;
  }
}

function creates(h: DestinationHarness): OperationKind | undefined {
  const ops = h.capabilities.operations;
  return ops.includes('upsert') ? 'upsert' : ops.includes('insert') ? 'insert' : undefined;
}

function createKind(h: DestinationHarness): OperationKind {
  return creates(h) ?? fail('the destination declares neither upsert nor insert');
}

function updateKind(h: DestinationHarness): OperationKind | undefined {
  const ops = h.capabilities.operations;
  return ops.includes('update') ? 'update' : ops.includes('upsert') ? 'upsert' : undefined;
}

function opFor(h: DestinationHarness, kind: OperationKind, rec: TestRecord, destinationId?: string): Operation {
  const op: Operation = { kind, key: rec.key, idempotencyKey: h.idempotencyKey(kind, rec.key) };
  if (rec.match !== undefined) op.match = rec.match;
  if (kind !== 'delete') op.fields = rec.fields;
  if (destinationId !== undefined) op.destinationId = destinationId;
  return op;
}

/** Calls write() and checks the answer's shape: one well-formed result per operation. */
async function write(h: DestinationHarness, ops: Operation[], what: string): Promise<RecordResult[]> {
  const results = await within(h.destination.write(h.ctx, h.driver.object, ops), h.timeoutMs, `write() of ${what}`);
  if (!Array.isArray(results)) fail(`write() of ${what} returned ${show(results)}, not an array of results`);
  if (results.length !== ops.length) fail(`write() of ${what} returned ${results.length} results for ${ops.length} operations`);
  results.forEach((r, i) => {
    const where = `write() of ${what}: result ${i} (key ${ops[i]!.key})`;
    if (r === null || typeof r !== 'object' || typeof r.ok !== 'boolean') fail(`${where} is ${show(r)}, not { ok: boolean }`);
    if (!r.ok) {
      if (typeof r.reason !== 'string' || r.reason.trim() === '') fail(`${where} is a rejection without a reason`);
      if (typeof r.retryable !== 'boolean') fail(`${where} is a rejection without a boolean retryable`);
    }
  });
  return results;
}

function expectAllOk(results: RecordResult[], ops: Operation[], what: string): void {
  const failed = results.flatMap((r, i) => (r.ok ? [] : [`${ops[i]!.kind} ${ops[i]!.key}: ${r.reason}`]));
  if (failed.length > 0) fail(`write() of ${what} rejected ${failed.length} of ${ops.length} valid operations: ${failed.slice(0, 5).join('; ')}`);
}

/** Writes `ops` in batches of at most maxBatchSize and expects every one to succeed. */
async function writeOk(h: DestinationHarness, ops: Operation[], what: string): Promise<RecordResult[]> {
  const out: RecordResult[] = [];
  for (let i = 0; i < ops.length; i += h.capabilities.maxBatchSize) {
    const chunk = ops.slice(i, i + h.capabilities.maxBatchSize);
    const results = await write(h, chunk, what);
    expectAllOk(results, chunk, what);
    out.push(...results);
  }
  return out;
}

async function readBack(h: DestinationHarness, key: string): Promise<Row | undefined> {
  return within(h.driver.readBack(key), h.timeoutMs, `readBack(${show(key)})`);
}

async function expectLanded(h: DestinationHarness, rec: TestRecord, what: string): Promise<Row> {
  const row = await readBack(h, rec.key);
  if (row === undefined) fail(`${what}: record ${show(rec.key)} was acknowledged but is not in the destination`);
  const differing = differingFields(row, rec.fields);
  if (differing.length > 0) {
    fail(`${what}: record ${show(rec.key)} reads back with ${differing.map((f) => `${f}=${show(row[f])} (wrote ${show(rec.fields[f])})`).join(', ')}`);
  }
  return row;
}

function records(h: DestinationHarness, base: number, n: number): TestRecord[] {
  return Array.from({ length: n }, (_, i) => h.driver.record(base + i));
}

/** Record `rec` with fields changed to another record's values, keeping its match fields. */
function changed(h: DestinationHarness, rec: TestRecord, index: number): TestRecord {
  const other = h.driver.record(index + CHANGED);
  const kept = Object.fromEntries(Object.keys(rec.match ?? {}).filter((k) => k in rec.fields).map((k) => [k, rec.fields[k]!]));
  const fields = { ...other.fields, ...kept };
  if (differingFields(rec.fields, fields).length === 0) {
    fail(`driver.record(${index}) and driver.record(${index + CHANGED}) have the same fields; records must differ so updates can be seen`);
  }
  return { ...rec, fields };
}

function requireCreate(h: DestinationHarness): string | undefined {
  return creates(h) === undefined ? 'the destination declares neither upsert nor insert, so records cannot be created' : undefined;
}

/** The destination checks, as plain async functions over a {@link DestinationHarness}. */
export const destinationChecks = {
  /** check() passes with the working config. */
  async check(h: DestinationHarness): Promise<void> {
    await within(h.destination.check(h.ctx), h.timeoutMs, 'check()');
  },

  /** check() refuses every bad config with an OutflowError. */
  async badConfigs(h: DestinationHarness): Promise<void> {
    if (h.badConfigs.length === 0) fail('the driver gives no bad configs');
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

  /** capabilities() declares known operations, a batch size, rate limits and concurrency. */
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
  },

  /** Created records (by upsert, else insert) read back with the fields written. */
  async create(h: DestinationHarness): Promise<void> {
    const kind = createKind(h);
    const recs = records(h, BASE.create, 5);
    await writeOk(h, recs.map((r) => opFor(h, kind, r)), `5 ${kind}s`);
    for (const rec of recs) await expectLanded(h, rec, `after ${kind}`);
  },

  /** An update (or, without update, an upsert) of a created record changes its fields. */
  async update(h: DestinationHarness): Promise<void> {
    const kind = updateKind(h) ?? fail('the destination declares neither update nor upsert');
    const rec = h.driver.record(BASE.update);
    const [created] = await writeOk(h, [opFor(h, createKind(h), rec)], 'a create before an update');
    await expectLanded(h, rec, 'before the update');
    const next = changed(h, rec, BASE.update);
    await writeOk(h, [opFor(h, kind, next, created!.ok ? created!.destinationId : undefined)], `an ${kind}`);
    await expectLanded(h, next, `after the ${kind}`);
  },

  /** A delete removes a created record. */
  async delete(h: DestinationHarness): Promise<void> {
    const rec = h.driver.record(BASE.delete);
    const [created] = await writeOk(h, [opFor(h, createKind(h), rec)], 'a create before a delete');
    await expectLanded(h, rec, 'before the delete');
    await writeOk(h, [opFor(h, 'delete', rec, created!.ok ? created!.destinationId : undefined)], 'a delete');
    const after = await readBack(h, rec.key);
    if (after !== undefined) fail(`record ${show(rec.key)} still reads back after its delete was acknowledged: ${show(after)}`);
  },

  /** A bad record in a batch of five is rejected with a reason; the other four land. */
  async badRecord(h: DestinationHarness): Promise<void> {
    const bad = h.driver.badRecord?.() ?? fail('the driver gives no badRecord()');
    const kind = createKind(h);
    const good = records(h, BASE.bad, 4);
    const batch = [good[0]!, good[1]!, bad, good[2]!, good[3]!];
    if (h.capabilities.maxBatchSize < batch.length) fail(`maxBatchSize ${h.capabilities.maxBatchSize} is below 5; a batch of five cannot be sent`);
    const ops = batch.map((r) => opFor(h, kind, r));
    const results = await write(h, ops, 'a batch with one bad record');
    if (results[2]!.ok) fail(`the bad record ${show(bad.key)} (${show(bad.fields)}) was accepted`);
    expectAllOk([...results.slice(0, 2), ...results.slice(3)], [...ops.slice(0, 2), ...ops.slice(3)], 'the good records beside a bad one');
    for (const rec of good) await expectLanded(h, rec, 'beside a rejected record');
    const landed = await readBack(h, bad.key);
    if (landed !== undefined) fail(`the rejected record ${show(bad.key)} reads back from the destination: ${show(landed)}`);
  },

  /** Sending the same operations again (same idempotency keys) succeeds and changes nothing. */
  async idempotent(h: DestinationHarness): Promise<void> {
    const kind = createKind(h);
    const recs = records(h, BASE.idem, 3);
    const steps: { what: string; ops: Operation[] }[] = [];
    const createOps = recs.map((r) => opFor(h, kind, r));
    steps.push({ what: `3 ${kind}s`, ops: createOps });
    const upd = updateKind(h);
    const later: Operation[] = [];
    if (upd !== undefined) later.push(opFor(h, upd, changed(h, recs[0]!, BASE.idem)));
    if (h.capabilities.operations.includes('delete')) later.push(opFor(h, 'delete', recs[1]!));
    if (later.length > 0) steps.push({ what: later.map((o) => o.kind).join(' and '), ops: later });

    for (const step of steps) {
      const first = await writeOk(h, step.ops, step.what);
      const before = await Promise.all(recs.map((r) => readBack(h, r.key)));
      const again = await writeOk(h, step.ops, `${step.what} sent again`);
      again.forEach((r, i) => {
        const earlier = first[i]!;
        if (r.ok && earlier.ok && earlier.destinationId !== undefined && r.destinationId !== earlier.destinationId) {
          fail(`re-sent ${step.ops[i]!.kind} of ${show(step.ops[i]!.key)} answered id ${show(r.destinationId)}, first time ${show(earlier.destinationId)}`);
        }
      });
      const after = await Promise.all(recs.map((r) => readBack(h, r.key)));
      recs.forEach((r, i) => {
        if (!isDeepStrictEqual(after[i], before[i])) {
          fail(`re-sending ${step.what} changed record ${show(r.key)}: ${show(before[i])} became ${show(after[i])}`);
        }
      });
    }
  },

  /** Results come back in the order of the operations. */
  async order(h: DestinationHarness): Promise<void> {
    const kind = createKind(h);
    const max = h.capabilities.maxBatchSize;
    const bad = h.driver.badRecord?.();
    if (bad !== undefined && max >= 3) {
      const [a, b, c, d] = records(h, BASE.order, 4);
      for (const [batch, badAt] of [[[bad, a!, b!], 0], [[c!, d!, bad], 2]] as const) {
        const ops = batch.map((r) => opFor(h, kind, r));
        const results = await write(h, ops, `a batch with the bad record at position ${badAt}`);
        results.forEach((r, i) => {
          if (r.ok === (i === badAt)) {
            fail(`results are out of order: with the bad record at position ${badAt}, result ${i} is ${show(r)}`);
          }
        });
      }
    }
    const n = Math.min(4, max);
    if (n < 2) return;
    const recs = records(h, BASE.order + 10, n);
    const first = await writeOk(h, recs.map((r) => opFor(h, kind, r)), `${n} ${kind}s`);
    const ids = first.map((r) => (r.ok ? r.destinationId : undefined));
    if (ids.some((id) => id === undefined)) return;
    if (new Set(ids).size !== ids.length) fail(`distinct records were given the same destination ids: ${show(ids)}`);
    const upd = updateKind(h);
    if (upd === undefined) return;
    const reversed = [...recs].reverse();
    const again = await writeOk(h, reversed.map((r, i) => opFor(h, upd, r, ids[n - 1 - i])), `${n} ${upd}s in reverse order`);
    again.forEach((r, i) => {
      const expected = ids[n - 1 - i];
      if (r.ok && r.destinationId !== undefined && r.destinationId !== expected) {
        fail(`results are out of order: result ${i} (key ${show(reversed[i]!.key)}) has id ${show(r.destinationId)}, expected ${show(expected)}`);
      }
    });
  },

  /** A batch of exactly maxBatchSize operations is accepted. */
  async maxBatch(h: DestinationHarness): Promise<void> {
    const kind = createKind(h);
    const n = h.capabilities.maxBatchSize;
    const recs = records(h, BASE.batch, n);
    const ops = recs.map((r) => opFor(h, kind, r));
    expectAllOk(await write(h, ops, `a full batch of ${n}`), ops, `a full batch of ${n}`);
    for (const i of new Set([0, Math.floor(n / 2), n - 1])) await expectLanded(h, recs[i]!, 'in a full batch');
  },
};

/** The destination checks that apply to `driver`, in the order they run. */
export function destinationCheckList<C>(driver: DestinationDriver<C>): Check<DestinationHarness<C>>[] {
  const has = (kind: OperationKind) => (h: DestinationHarness) =>
    h.capabilities.operations.includes(kind) ? requireCreate(h) : `the destination does not declare ${kind}`;
  const list: (Check<DestinationHarness> | false)[] = [
    { id: 'check', title: 'check() passes with the working config', run: destinationChecks.check },
    driver.badConfigs !== undefined && { id: 'bad-configs', title: 'check() refuses each bad config with an OutflowError', run: destinationChecks.badConfigs },
    { id: 'discover', title: 'discover() lists well-formed objects', run: destinationChecks.discover },
    { id: 'capabilities', title: 'capabilities() declares operations, batch size, rate limits, concurrency', run: destinationChecks.capabilities },
    { id: 'create', title: 'created records read back with the fields written', notApplicable: requireCreate, run: destinationChecks.create },
    {
      id: 'update',
      title: 'an update changes the fields of a record',
      notApplicable: (h) => (updateKind(h) === undefined ? 'the destination declares neither update nor upsert' : requireCreate(h)),
      run: destinationChecks.update,
    },
    { id: 'delete', title: 'a delete removes the record', notApplicable: has('delete'), run: destinationChecks.delete },
    driver.badRecord !== undefined && {
      id: 'bad-record',
      title: 'a bad record is rejected with a reason while the rest of its batch lands',
      notApplicable: requireCreate,
      run: destinationChecks.badRecord,
    },
    { id: 'idempotent', title: 'sending the same operations again changes nothing', notApplicable: requireCreate, run: destinationChecks.idempotent },
    { id: 'order', title: 'one result per operation, in order', notApplicable: requireCreate, run: destinationChecks.order },
    { id: 'max-batch', title: 'a batch of exactly maxBatchSize is accepted', notApplicable: requireCreate, run: destinationChecks.maxBatch },
  ];
  return list.filter((c): c is Check<DestinationHarness> => c !== false) as Check<DestinationHarness<C>>[];
}

/**
 * Registers the destination acceptance suite for a connector as vitest tests: the spec
 * checks, then check(), discover(), capabilities() and writes of every declared operation,
 * read back through `driver.readBack`. Call it at the top level of a test file.
 */
export function destinationAcceptance<C>(driver: DestinationDriver<C>): void {
  describe(`destination acceptance: ${driver.connector.name}`, () => {
    registerChecks<DestinationHarness<C>>(
      () => startDestination(driver),
      [...(specCheckList(driver.connector) as Check<DestinationHarness<C>>[]), ...destinationCheckList(driver)],
      driver.skip,
    );
  });
}
