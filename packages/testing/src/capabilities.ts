import { isDeepStrictEqual } from 'node:util';
import { describeError, isOutflowError, type Operation, type OperationKind, type RecordResult, type SyncMode } from '@outflow/core';
import type { DestinationHarness, HeldRecord, TestRecord } from './destination.js';
import { changed, createKind, creates, opFor, readAll } from './destination-kit.js';
import { AcceptanceFailure, differingFields, fail, show, within, type Check } from './harness.js';

const KINDS: readonly OperationKind[] = ['upsert', 'update', 'insert', 'delete'];
const IDEMPOTENCY = ['key', 'match', 'none'];
const BUDGETS = ['write', 'connector'];

// Record indexes of these checks: 13 000 000 to 13 999 999, kept for them by the destination suite.
const BASE = { operations: 13_000_000, undeclared: 13_100_000, concurrency: 13_200_000 };
/** Records the secret checks write with a config that must fail (spec.ts), from here to 13 999 999. */
export const WRONG_CONFIG_RECORDS = 13_900_000;

/** The operations a sync in `mode` (deletes ignored; `mirror` deletes) needs, as core checks them before a run. */
function needs(mode: SyncMode, declared: readonly OperationKind[]): OperationKind[] {
  const creating: OperationKind[] = declared.includes('upsert') ? ['upsert'] : ['insert', 'update'];
  switch (mode) {
    case 'insert':
      return ['insert'];
    case 'update':
      return ['update'];
    case 'upsert':
      return creating;
    case 'mirror':
      return [...creating, 'delete'];
    case 'event':
      return ['event'];
  }
}

/** True for a harness of the destination suite, which these checks need. */
export function isDestinationHarness(h: unknown): h is DestinationHarness {
  const d = h as Partial<DestinationHarness>;
  return d.destination !== undefined && d.capabilities !== undefined && typeof d.driver?.readAll === 'function';
}

/** `an upsert`, `a delete`. */
function a(kind: OperationKind): string {
  return `${kind === 'delete' ? 'a' : 'an'} ${kind}`;
}

type Outcome = { ok: true; result: RecordResult } | { ok: false; reason: string; retryable: boolean };

/** Sends one operation and says what became of it; a thrown error is a refusal of the batch. */
async function attempt(h: DestinationHarness, op: Operation, what: string): Promise<Outcome> {
  try {
    const results = await within(h.destination.write(h.ctx, h.driver.object, [op]), h.timeoutMs, `write() of ${what}`);
    const result = Array.isArray(results) ? results[0] : undefined;
    if (result === undefined || typeof result !== 'object' || typeof result.ok !== 'boolean') fail(`write() of ${what} answered ${show(results)}, not one result`);
    return result.ok ? { ok: true, result } : { ok: false, reason: `rejected: ${result.reason}`, retryable: result.retryable };
  } catch (err) {
    if (err instanceof AcceptanceFailure) throw err;
    return { ok: false, reason: `threw ${describeError(err)}`, retryable: isOutflowError(err) && err.retryable };
  }
}

async function heldFor(h: DestinationHarness, key: string): Promise<HeldRecord | undefined> {
  return (await readAll(h)).find((r) => r.key === key);
}

/** Creates `rec` with a declared create kind and returns its destinationId, if any. */
async function create(h: DestinationHarness, rec: TestRecord, why: string): Promise<string | undefined> {
  const kind = createKind(h);
  const outcome = await attempt(h, opFor(h, kind, rec), `${a(kind)} of ${show(rec.key)} ${why}`);
  if (!outcome.ok) fail(`${a(kind)} of ${show(rec.key)} ${why} was refused (${outcome.reason})`);
  return outcome.result.ok ? outcome.result.destinationId : undefined;
}

/** The capability checks, as plain async functions over a destination harness. */
export const capabilityChecks = {
  /**
   * The declaration is coherent: an idempotency of key, match or none, a known budget, no
   * operation twice, the same answer for the same config, and every mode discover() offers
   * for the object served by the declared operations.
   */
  async coherent(h: DestinationHarness): Promise<void> {
    const c = h.capabilities;
    const object = h.driver.object;
    if (c === null || typeof c !== 'object' || !Array.isArray(c.operations)) fail(`capabilities() for ${show(object)} answered ${show(c)}, not { operations, … }`);
    const problems: string[] = [];
    if (!IDEMPOTENCY.includes(c.idempotency)) problems.push(`idempotency must be declared as one of ${IDEMPOTENCY.join(', ')}; got ${show(c.idempotency)}`);
    if (c.budget !== undefined && !BUDGETS.includes(c.budget)) problems.push(`budget must be "write" or "connector" when given; got ${show(c.budget)}`);
    const twice = c.operations.filter((k, i) => c.operations.indexOf(k) !== i);
    if (twice.length > 0) problems.push(`operations lists ${show([...new Set(twice)])} more than once`);
    const catalog = await within(h.destination.discover(h.ctx), h.timeoutMs, 'discover()');
    const listed = (catalog?.objects ?? []).find((o) => o.name.toLowerCase() === object.toLowerCase() || o.name.toLowerCase().endsWith(`.${object.toLowerCase()}`)) ??
      (catalog?.objects ?? []).find((o) => o.name === '*');
    for (const mode of listed?.modes ?? []) {
      const missing = needs(mode, c.operations).filter((k) => !c.operations.includes(k));
      if (missing.length > 0) {
        problems.push(`discover() offers mode "${mode}" for ${show(listed!.name)}, which needs ${missing.join(' and ')}, but operations are ${show(c.operations)}`);
      }
    }
    if (problems.length > 0) fail(`capabilities() for ${show(object)}: ${problems.join('; ')}`);
    const again = await within(Promise.resolve(h.destination.capabilities(h.context(h.config), object)), h.timeoutMs, 'capabilities()');
    if (!isDeepStrictEqual(again, c)) fail(`capabilities() for ${show(object)} answered differently for the same config: first ${show(c)}, then ${show(again)}`);
  },

  /**
   * write() accepts every declared operation: an insert or upsert of a new record creates
   * it, an update changes a created record, a delete removes it.
   */
  async operations(h: DestinationHarness): Promise<string | void> {
    const declared = h.capabilities.operations;
    let next = BASE.operations;
    const notes: string[] = [];
    const refused = (kind: OperationKind, outcome: Outcome, what: string): never =>
      fail(`capabilities() declares "${kind}", but write() refused ${what}: ${outcome.ok ? '' : outcome.reason}`);
    for (const kind of declared) {
      const index = next++;
      const rec = h.driver.record(index);
      if (kind === 'insert' || kind === 'upsert') {
        const outcome = await attempt(h, opFor(h, kind, rec), `${a(kind)} of a new record`);
        if (!outcome.ok) refused(kind, outcome, `${a(kind)} of new record ${show(rec.key)}`);
        const held = await heldFor(h, rec.key);
        if (held === undefined) fail(`capabilities() declares "${kind}", and write() acknowledged ${a(kind)} of new record ${show(rec.key)}, but it is not in the destination`);
        continue;
      }
      if (creates(h) === undefined) {
        notes.push(`"${kind}" was not tried: without upsert or insert no record can be made for it`);
        continue;
      }
      const id = await create(h, rec, `before ${a(kind)}`);
      if (kind === 'update') {
        const update = changed(h, rec, index);
        const outcome = await attempt(h, opFor(h, 'update', update, id), 'an update of a created record');
        if (!outcome.ok) refused(kind, outcome, `an update of created record ${show(rec.key)}`);
        const held = await heldFor(h, rec.key);
        const differing = held === undefined ? ['(the record is gone)'] : differingFields(held.fields, update.fields);
        if (differing.length > 0) fail(`capabilities() declares "update", and write() acknowledged an update of ${show(rec.key)}, but its fields ${differing.join(', ')} did not change`);
      } else {
        const outcome = await attempt(h, opFor(h, 'delete', rec, id), 'a delete of a created record');
        if (!outcome.ok) refused(kind, outcome, `a delete of created record ${show(rec.key)}`);
        if ((await heldFor(h, rec.key)) !== undefined) fail(`capabilities() declares "delete", and write() acknowledged a delete of ${show(rec.key)}, but the record is still there`);
      }
    }
    return notes.length > 0 ? notes.join('; ') : undefined;
  },

  /**
   * write() refuses an operation capabilities() does not declare, with `retryable: false` or a
   * non-retryable error, and leaves the destination as it was: it neither performs it nor
   * answers ok.
   */
  async undeclared(h: DestinationHarness): Promise<string | void> {
    const declared = h.capabilities.operations;
    const notes: string[] = [];
    let next = BASE.undeclared;
    const expectRefused = (outcome: Outcome, what: string, performed: string | undefined): void => {
      const list = `capabilities() declares only ${show(declared)}`;
      if (outcome.ok) fail(`write() answered ok to ${what}, though ${list}${performed ? `, and ${performed}` : ''}; an undeclared operation must be refused`);
      if (performed) fail(`write() refused ${what} (${outcome.reason}), but ${performed}`);
      if (outcome.retryable) fail(`write() refused ${what} as retryable (${outcome.reason}); an operation the object does not support does not become supported by waiting`);
    };
    for (const kind of KINDS.filter((k) => !declared.includes(k))) {
      const index = next++;
      const rec = h.driver.record(index);
      if (kind === 'insert' || kind === 'upsert') {
        const outcome = await attempt(h, opFor(h, kind, rec), `an undeclared ${kind}`);
        const held = await heldFor(h, rec.key);
        expectRefused(outcome, `${a(kind)} of new record ${show(rec.key)}`, held === undefined ? undefined : 'it created the record');
        continue;
      }
      if (creates(h) === undefined) {
        notes.push(`"${kind}" was not tried: without upsert or insert no record can be made for it`);
        continue;
      }
      const id = await create(h, rec, `before an undeclared ${kind}`);
      const op = kind === 'update' ? opFor(h, 'update', changed(h, rec, index), id) : opFor(h, 'delete', rec, id);
      const outcome = await attempt(h, op, `an undeclared ${kind}`);
      const held = await heldFor(h, rec.key);
      const performed =
        held === undefined ? 'the record is gone' : differingFields(held.fields, rec.fields).length > 0 ? `the record's fields changed to ${show(held.fields)}` : undefined;
      expectRefused(outcome, `${a(kind)} of created record ${show(rec.key)}`, performed);
    }
    return notes.length > 0 ? notes.join('; ') : undefined;
  },

  /** As many write() calls as `concurrency` allows (up to 8), sent at once, all succeed and land. */
  async concurrency(h: DestinationHarness): Promise<void> {
    const kind = createKind(h);
    const n = Math.min(h.capabilities.concurrency, 8);
    const recs = Array.from({ length: n }, (_, i) => h.driver.record(BASE.concurrency + i));
    const settled = await Promise.allSettled(
      recs.map((rec) => within(h.destination.write(h.ctx, h.driver.object, [opFor(h, kind, rec)]), h.timeoutMs, `one of ${n} write() calls at once`)),
    );
    const all = `${n} write() calls at once (capabilities().concurrency is ${h.capabilities.concurrency})`;
    settled.forEach((s, i) => {
      if (s.status === 'rejected') {
        if (s.reason instanceof AcceptanceFailure) throw s.reason;
        fail(`of ${all}, the ${kind} of ${show(recs[i]!.key)} threw ${describeError(s.reason)}`);
      }
      const result = s.value[0];
      if (!result?.ok) fail(`of ${all}, the ${kind} of ${show(recs[i]!.key)} was rejected: ${show(result)}`);
    });
    const held = await readAll(h);
    const missing = recs.filter((r) => !held.some((x) => x.key === r.key)).map((r) => r.key);
    if (missing.length > 0) fail(`of ${all}, the records ${show(missing)} were acknowledged but are not in the destination`);
  },
};

const onlyDestination = (h: unknown): string | undefined =>
  isDestinationHarness(h) ? undefined : 'capabilities are checked by the destination suite, with its driver';

/** The capability checks, for a connector with a destination. */
export function capabilityCheckList<H>(): Check<H>[] {
  const list: Check<DestinationHarness>[] = [
    {
      id: 'capabilities-coherent',
      title: 'capabilities() declares idempotency, a known budget, each operation once, the same answer each time, and operations for every mode discover() offers',
      notApplicable: onlyDestination,
      run: capabilityChecks.coherent,
    },
    {
      id: 'capabilities-operations',
      title: 'write() accepts every declared operation',
      notApplicable: onlyDestination,
      run: capabilityChecks.operations,
    },
    {
      id: 'capabilities-undeclared',
      title: 'write() refuses, and does not perform, an operation capabilities() does not declare',
      notApplicable: (h) =>
        onlyDestination(h) ?? (KINDS.every((k) => h.capabilities.operations.includes(k)) ? 'every operation is declared' : undefined),
      run: capabilityChecks.undeclared,
    },
    {
      id: 'capabilities-concurrency',
      title: 'as many write() calls at once as concurrency allows all succeed',
      notApplicable: (h) =>
        onlyDestination(h) ??
        (h.capabilities.concurrency < 2
          ? 'concurrency is 1'
          : creates(h) === undefined
            ? 'the destination declares neither upsert nor insert'
            : undefined),
      run: capabilityChecks.concurrency,
    },
  ];
  return list as unknown as Check<H>[];
}
