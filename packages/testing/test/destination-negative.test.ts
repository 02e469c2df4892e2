import { describe, expect, it } from 'vitest';
import { destinationCheckList, runDestinationChecks, type DestinationDriver, type HeldRecord } from '../src/index.js';
import { LIMIT, reference, referenceDriver, type Bugs, type ReferenceConfig } from './reference-destination.js';

interface Variant {
  /** The id of the check that must fail. */
  check: string;
  /** What is broken, as the test name says it. */
  what: string;
  bugs?: Bugs;
  driver?: Partial<DestinationDriver<ReferenceConfig>>;
  /** What the failure must say (after the check's id in brackets). */
  message: RegExp;
}

/** A driver whose readAll() keeps one record per key, as one reading into a map would: duplicates are hidden. */
function keyedReadAll(bugs: Bugs): Partial<DestinationDriver<ReferenceConfig>> {
  const ref = reference(bugs);
  const base = referenceDriver(bugs);
  return {
    connector: ref.connector,
    faults: (f) => ref.service.faults.set(f),
    enforcedLimits: () => [ref.service.limit],
    readAll: async () => [...new Map(ref.service.records().map((r): [string, HeldRecord] => [r.key, r])).values()],
    record: base.record,
  };
}

const variants: Variant[] = [
  { check: 'check', what: 'fails check() with the working config', bugs: { checkFails: true }, message: /the service is not reachable/ },
  { check: 'bad-configs', what: 'accepts any token', bugs: { checkIgnoresToken: true }, message: /check\(\) accepted bad config "a wrong token"/ },
  { check: 'bad-configs', what: 'is driven with no bad config', driver: { badConfigs: [] }, message: /the driver gives no bad configs/ },
  { check: 'discover', what: 'lists a match key that is not a field', bugs: { strayMatchKey: true }, message: /match keys \["phone"\] that are not among its fields/ },
  { check: 'capabilities', what: 'declares no rate limits, with no reason from the driver', bugs: { rateLimits: [] }, message: /rateLimits is empty/ },
  { check: 'capabilities', what: 'declares a maxBatchSize of 0', bugs: { maxBatchSize: 0 }, message: /maxBatchSize must be a positive integer, got 0/ },
  { check: 'create', what: 'acknowledges a record it drops', bugs: { dropAt: 1 }, message: /record "k1000001" was acknowledged but is not in the destination/ },
  { check: 'create', what: 'answers one result too few', bugs: { dropResult: true }, message: /returned 4 results for 5 operations/ },
  { check: 'create', what: 'declares insert beside upsert but refuses every insert', bugs: { refuseInserts: true }, message: /5 inserts of new records rejected 5 of 5 valid operations: insert k1000100/ },
  {
    check: 'create',
    what: 'is read back by a driver that lists one record twice',
    driver: { readAll: async () => [{ key: 'k1', id: 'r1', fields: {} }, { key: 'k1', id: 'r1', fields: {} }] },
    message: /readAll\(\) returned the record with id "r1" twice/,
  },
  { check: 'update', what: 'acknowledges updates without applying them', bugs: { ignoreUpdates: true }, message: /after the update of a created record: record "k2000000" reads back with name=/ },
  { check: 'delete', what: 'acknowledges deletes but keeps the record', bugs: { ignoreDeletes: true }, message: /record "k3000000" still reads back after its delete was acknowledged/ },
  { check: 'missing-update', what: 'creates the record an update does not find', bugs: { updateCreates: true }, message: /was acknowledged; an update must not create a record/ },
  { check: 'missing-delete', what: 'refuses a delete of a missing record', bugs: { deleteMissingFails: true }, message: /which does not exist, was rejected .* must be ok/ },
  { check: 'destination-id', what: 'answers another id than the record’s', bugs: { wrongId: true }, message: /answered destinationId "r\d+-other", but the destination holds the record with id "r\d+"/ },
  { check: 'destination-id', what: 'answers no destinationId though it assigns ids', bugs: { noDestinationId: true }, message: /carries no destinationId/ },
  { check: 'precedence', what: 'lets the match win over the destinationId', bugs: { ignoreDestinationId: true }, message: /the destinationId addresses the record/ },
  { check: 'precedence', what: 'refuses an upsert whose destinationId is stale', bugs: { staleIdRejected: true }, message: /must fall back to its match key/ },
  { check: 'insert-existing', what: 'lets an insert overwrite an existing record', bugs: { insertOverwrites: true }, message: /was acknowledged; it must be rejected with retryable: false/ },
  {
    check: 'upsert-existing',
    what: 'creates a record on every upsert, never updating an existing one',
    bugs: { upsertAlwaysCreates: true },
    message: /the upsert of "k15000000", whose record already existed with id "r\d+", answered id "r\d+": it created another record/,
  },
  {
    check: 'upsert-existing',
    what: 'creates on every upsert, read back by a driver that hides duplicates',
    bugs: { upsertAlwaysCreates: true },
    driver: keyedReadAll({ upsertAlwaysCreates: true }),
    message: /it created another record instead of updating the one with its match key/,
  },
  {
    check: 'upsert-existing',
    what: 'creates on every upsert, at a destination that assigns no ids',
    bugs: { upsertAlwaysCreates: true, noDestinationId: true },
    driver: { assignsIds: false },
    message: /whose record already existed, created a second one: the destination holds 2 records/,
  },
  { check: 'bad-record', what: 'accepts an invalid email', bugs: { acceptInvalid: true }, message: /the bad record "bad" .* was accepted/ },
  { check: 'bad-record', what: 'rejects a bad record as retryable', bugs: { invalidRetryable: true }, message: /rejected as retryable .* retryable must be false/ },
  { check: 'bad-record', what: 'fails a whole batch with a bad record, retryably', bugs: { invalidFailsBatch: true }, message: /failed as a whole .* a retryable error is sent again forever/ },
  { check: 'bad-record', what: 'is driven without a bad record or a reason', driver: { badRecord: undefined }, message: /the driver gives no badRecord\(\)/ },
  {
    check: 'bad-record',
    what: 'is driven with noBadRecord though discover() shows a typed field',
    bugs: { extraField: { name: 'age', type: 'integer' } },
    driver: { badRecord: undefined, noBadRecord: 'anything goes' },
    message: /discover\(\) shows that "contacts" validates its input: age is of type integer/,
  },
  {
    check: 'idempotency',
    what: 'declares key but refuses a re-sent insert as existing',
    bugs: { noDedupe: true },
    message: /the re-sent insert of "k5000010" \(same idempotency key\) was rejected \("record already exists"\); with idempotency "key" a re-send must succeed/,
  },
  {
    check: 'idempotency',
    what: 'declares key but creates again on a re-sent upsert',
    bugs: { noDedupe: true, upsertAlwaysCreates: true },
    message: /the re-sent upsert of "k5000000" answered id "r\d+", the first time "r\d+"/,
  },
  {
    check: 'idempotency',
    what: 'declares match but creates again on a re-sent upsert',
    bugs: { noDedupe: true, upsertAlwaysCreates: true, idempotency: 'match' },
    message: /the re-sent upsert of "k5000000" answered id "r\d+", the first time/,
  },
  { check: 'idempotency', what: 'declares an idempotency that does not exist', bugs: { idempotency: 'exactly-once' }, message: /must be one of key, match, none; got "exactly-once"/ },
  { check: 'idempotency', what: 'offers a lookup() that lies', bugs: { idempotency: 'none', lookup: 'lies' }, message: /lookup\(\) answered .*which was applied/ },
  { check: 'idempotency', what: 'offers a lookup() that applies what it is asked about', bugs: { idempotency: 'none', lookup: 'applies' }, message: /lookup\(\) applied the operation it was asked about/ },
  { check: 'order', what: 'answers results in reverse order', bugs: { reverseResults: true }, message: /results are out of order/ },
  {
    check: 'order',
    what: 'answers results in reverse order, with no bad record and no ids',
    bugs: { reverseResults: true, noDestinationId: true },
    driver: { badRecord: undefined, assignsIds: false },
    message: /results are out of order/,
  },
  {
    check: 'order',
    what: 'gives nothing to tell results apart by',
    bugs: { operations: ['upsert', 'delete'], noDestinationId: true },
    driver: { badRecord: undefined, assignsIds: false },
    message: /result order cannot be checked/,
  },
  {
    check: 'key-order',
    what: 're-sends the previous call after each call (a retry queue that reorders)',
    bugs: { replaysPrevious: true },
    message: /operations on one key must be applied in the order of the calls that carry them/,
  },
  { check: 'max-batch', what: 'declares maxBatchSize 8 but refuses batches of more than one', bugs: { singleOnly: true }, message: /a full batch of 8 \(maxBatchSize\) was refused as a whole/ },
  { check: 'throttle', what: 'takes a 429 as a permanent rejection', bugs: { permanent429: true }, message: /a 429 \(Too Many Requests\) surfaced as a permanent rejection/ },
  { check: 'server-error', what: 'takes a 5xx as a permanent rejection', bugs: { permanent5xx: true }, message: /a 503 \(Service Unavailable\) surfaced as a permanent rejection/ },
  { check: 'server-error', what: 'acknowledges a batch the service failed', bugs: { okOn5xx: true }, message: /was acknowledged .* though the service answered every request with a 503/ },
  { check: 'timeout', what: 'waits for an answer forever', bugs: { noTimeout: true }, message: /did not give up on a request left unanswered for \d+ ms/ },
  { check: 'timeout', what: 'takes a timeout as a permanent rejection', bugs: { permanentTimeout: true }, message: /surfaced as a permanent rejection: write\(\) threw a non-retryable OUTFLOW_DESTINATION/ },
  { check: 'timeout', what: 'is driven with faults() but no requestTimeoutMs', driver: { requestTimeoutMs: undefined }, message: /no requestTimeoutMs/ },
  { check: 'abort', what: 'keeps waiting when the run stops', bugs: { ignoresAbort: true, noTimeout: true }, message: /write\(\) did not stop when the run stopped/ },
  { check: 'abort', what: 'answers an abort with its own timeout error', bugs: { ignoresAbort: true }, message: /it must reject with an OutflowError whose code is OUTFLOW_ABORTED/ },
  {
    check: 'abort',
    what: 'keeps waiting on a write held back by stall() (no emulator) when the run stops',
    bugs: { ignoresAbort: true, noTimeout: true },
    driver: { faults: undefined, noFaults: 'no emulator' },
    message: /did not stop when the run stopped: .* \(for a write the destination holds back \(driver\.stall\(\)\)\)/,
  },
  { check: 'abort', what: 'is driven with neither faults() nor stall() nor a reason', driver: { faults: undefined, stall: undefined }, message: /the driver gives neither faults\(\) nor noFaults/ },
  {
    check: 'lost-answer',
    what: 'declares key, but a re-send after a lost answer creates the record again',
    bugs: { noDedupe: true, upsertAlwaysCreates: true },
    message: /holds 2 records for key "k20000000": sending the upsert again applied it twice, which idempotency "key" promises never happens/,
  },
  {
    check: 'lost-answer',
    what: 'declares match, but a re-send after a lost answer creates the record again',
    bugs: { noDedupe: true, upsertAlwaysCreates: true, idempotency: 'match' },
    message: /applied it twice, which idempotency "match" promises never happens/,
  },
  { check: 'lost-answer', what: 'marks a lost answer as notApplied', bugs: { lossNotApplied: true }, message: /marked notApplied .* may have applied the write/ },
  {
    check: 'lost-answer',
    what: 'declares none, marks a lost answer notApplied, and the engine re-sends',
    bugs: { idempotency: 'none', lossNotApplied: true, noDedupe: true },
    message: /marked notApplied/,
  },
  { check: 'lost-answer', what: 'is driven with no faults() and no reason', driver: { faults: undefined }, message: /the driver gives neither faults\(\) nor noFaults/ },
  {
    check: 'rate-limits',
    what: 'declares limits above what the service enforces',
    bugs: { rateLimits: [{ requests: 60, perMs: LIMIT.perMs }] },
    message: /declares 60 requests per 300 ms, above the 40 requests per 300 ms the service enforces/,
  },
  {
    check: 'rate-limits',
    what: 'declares limits far below what the service enforces',
    bugs: { rateLimits: [{ requests: 20, perMs: LIMIT.perMs }] },
    message: /under 80% of the 40 requests per 300 ms the service enforces: the engine would leave 50% of the service's capacity unused/,
  },
  {
    check: 'rate-limits',
    what: 'declares a limit the service does not have',
    bugs: { rateLimits: [LIMIT, { requests: 5, perMs: 60_000 }] },
    message: /declares 5 requests per 60000 ms, which the service does not enforce/,
  },
  {
    check: 'rate-limits',
    what: 'is refused at its declared limit (the driver’s enforcedLimits() is wrong)',
    bugs: { enforced: { requests: 30, perMs: LIMIT.perMs } },
    driver: { enforcedLimits: () => [LIMIT] },
    message: /the service refused request 3\d of 40 sent within 300 ms/,
  },
  {
    check: 'rate-limits',
    what: 'leaves most of what the service takes unused (the driver’s enforcedLimits() is wrong)',
    bugs: { enforced: { requests: 100, perMs: LIMIT.perMs } },
    driver: { enforcedLimits: () => [LIMIT] },
    message: /the service took 51 requests within \d+ ms without refusing one/,
  },
  { check: 'rate-limits', what: 'is driven with no enforcedLimits() and no reason', driver: { enforcedLimits: undefined }, message: /the driver gives neither enforcedLimits\(\)/ },
];

describe('the destination suite catches a broken destination', () => {
  it('has a broken variant for every check', () => {
    const covered = new Set(variants.map((v) => v.check));
    expect(destinationCheckList().map((c) => c.id).filter((id) => !covered.has(id))).toEqual([]);
  });

  for (const v of variants) {
    it(`${v.check} fails a destination that ${v.what}`, async () => {
      const [report] = await runDestinationChecks(referenceDriver(v.bugs, v.driver), [v.check]);
      expect(report?.status, report?.message).toBe('failed');
      expect(report!.message!.startsWith(`[${v.check}] `), report!.message).toBe(true);
      expect(report!.message).toMatch(v.message);
    });
  }
});
