import { describe, expect, it } from 'vitest';
import {
  AcceptanceFailure,
  destinationAcceptance,
  destinationCheckList,
  destinationChecks,
  startDestination,
  type DestinationDriver,
  type DestinationHarness,
} from '../src/index.js';
import { memoryDestination, TOKEN, type DestinationFaults, type MemoryConfig } from './memory.js';

function driverFor(memory: ReturnType<typeof memoryDestination>, overrides: Partial<DestinationDriver<MemoryConfig>> = {}): DestinationDriver<MemoryConfig> {
  return {
    connector: memory.connector,
    config: { token: TOKEN, batchSize: 8 },
    object: 'contacts',
    badConfigs: [{ name: 'a wrong token', config: { token: 'not-the-token' } }],
    readAll: memory.readAll,
    record: memory.record,
    assignsIds: true,
    badRecord: () => ({ key: 'bad', match: { email: 'no-at-sign' }, fields: { email: 'no-at-sign', name: 'Bad' } }),
    ...overrides,
  };
}

type CheckFn = (h: DestinationHarness) => Promise<void | string>;

/** Runs one check against a memory destination with `faults`, and returns what it resolved to. */
async function run(check: CheckFn, faults: DestinationFaults = {}, overrides: Partial<DestinationDriver<MemoryConfig>> = {}): Promise<void | string> {
  const h = await startDestination(driverFor(memoryDestination(faults), overrides));
  try {
    return await check(h);
  } finally {
    await h.close();
  }
}

/** The message of the AcceptanceFailure `check` throws against a memory destination with `faults`. */
async function failure(check: CheckFn, faults: DestinationFaults = {}, overrides: Partial<DestinationDriver<MemoryConfig>> = {}): Promise<string> {
  const err = await run(check, faults, overrides).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the check passed against a broken destination').toBeInstanceOf(AcceptanceFailure);
  return (err as Error).message;
}

destinationAcceptance(driverFor(memoryDestination()));

describe('the destination suite catches a broken destination', () => {
  it('fails bad-configs when the driver gives none', async () => {
    expect(await failure(destinationChecks.badConfigs, {}, { badConfigs: [] })).toMatch(/the driver gives no bad configs/);
  });

  it('fails capabilities when no rate limits are declared and the driver does not say why', async () => {
    expect(await failure(destinationChecks.capabilities, { noRateLimits: true })).toMatch(/rateLimits is empty/);
    await expect(run(destinationChecks.capabilities, { noRateLimits: true }, { noRateLimits: 'memory has no request limit' })).resolves.toBeUndefined();
  });

  it('fails create when an acknowledged record was dropped', async () => {
    expect(await failure(destinationChecks.create, { dropAt: 1 })).toMatch(/record "k1000001" was acknowledged but is not in the destination/);
  });

  it('fails create when a record is created twice', async () => {
    expect(await failure(destinationChecks.create, { createTwice: true })).toMatch(/holds 2 records for key "k1000000"/);
  });

  it('fails update when an update is acknowledged but not applied', async () => {
    expect(await failure(destinationChecks.update, { ignoreUpdates: true })).toMatch(/after the update: record "k2000000" reads back with name=/);
  });

  it('fails delete when a delete is acknowledged but the record stays', async () => {
    expect(await failure(destinationChecks.delete, { ignoreDeletes: true })).toMatch(/record "k3000000" still reads back after its delete was acknowledged/);
  });

  it('fails max-batch when a record of the full batch was dropped', async () => {
    expect(await failure(destinationChecks.maxBatch, { dropAt: 0 })).toMatch(/in a full batch: record "k7000000" was acknowledged but is not in the destination/);
  });

  it('fails missing-update when an update creates the missing record', async () => {
    expect(await failure(destinationChecks.missingUpdate, { updateCreates: true })).toMatch(/was acknowledged; an update must not create a record/);
  });

  it('fails missing-update when the refusal is retryable', async () => {
    expect(await failure(destinationChecks.missingUpdate, { missingRetryable: true })).toMatch(/retryable must be false/);
  });

  it('fails missing-delete when a delete of a missing record is rejected', async () => {
    expect(await failure(destinationChecks.missingDelete, { deleteMissingFails: true })).toMatch(/which does not exist, was rejected .* must be ok/);
  });

  it('fails destination-id when results carry no destinationId', async () => {
    expect(await failure(destinationChecks.destinationId, { noDestinationId: true })).toMatch(/carries no destinationId/);
  });

  it('fails destination-id when an operation carrying only the id is not addressed by it', async () => {
    expect(await failure(destinationChecks.destinationId, { ignoreDestinationId: true })).toMatch(/carrying only destinationId "m\d+" \(no match\) was rejected/);
  });

  it('fails precedence when the match wins over the destinationId', async () => {
    expect(await failure(destinationChecks.precedence, { ignoreDestinationId: true })).toMatch(/the destinationId addresses the record/);
  });

  it('fails precedence when an upsert with a stale destinationId does not fall back to its match', async () => {
    expect(await failure(destinationChecks.precedence, { staleIdRejected: true })).toMatch(/must fall back to its match key/);
  });

  it('fails insert-existing when an insert overwrites the existing record', async () => {
    expect(await failure(destinationChecks.insertExisting, { insertOverwrites: true })).toMatch(/was acknowledged; it must be rejected with retryable: false/);
  });

  it('fails bad-record when the bad record is accepted', async () => {
    expect(await failure(destinationChecks.badRecord, { acceptInvalid: true })).toMatch(/the bad record "bad" .* was accepted/);
  });

  it('requires a bad record unless the driver says why there is none', async () => {
    expect(await failure(destinationChecks.badRecord, {}, { badRecord: undefined })).toMatch(/the driver gives no badRecord\(\)/);
    const check = destinationCheckList().find((c) => c.id === 'bad-record')!;
    const h = await startDestination(driverFor(memoryDestination(), { badRecord: undefined, noBadRecord: 'every value is valid' }));
    try {
      expect(check.notApplicable?.(h)).toBe('every value is valid');
    } finally {
      await h.close();
    }
  });

  it('fails idempotency when a re-send creates a second record', async () => {
    expect(await failure(destinationChecks.idempotency, { resendCreates: true })).toMatch(/holds 2 records for key "k5000000"/);
    expect(await failure(destinationChecks.idempotency, { resendCreates: true, idempotency: 'match' })).toMatch(/holds 2 records/);
  });

  it('fails idempotency when the declaration is not one of key, match, none', async () => {
    expect(await failure(destinationChecks.idempotency, { idempotency: 'exactly-once' })).toMatch(/must be one of key, match, none; got "exactly-once"/);
  });

  it('fails idempotency when lookup() lies', async () => {
    expect(await failure(destinationChecks.idempotency, { idempotency: 'none', lookup: 'lies' })).toMatch(/lookup\(\) answered .*which was applied/);
    expect(await failure(destinationChecks.idempotency, { idempotency: 'key', lookup: 'lies' })).toMatch(/lookup\(\) answered/);
  });

  it('fails idempotency when lookup() applies what it was asked about', async () => {
    expect(await failure(destinationChecks.idempotency, { idempotency: 'none', lookup: 'applies' })).toMatch(/lookup\(\) applied the operation it was asked about/);
  });

  it('passes idempotency none with an honest lookup(), and without one only with a note', async () => {
    await expect(run(destinationChecks.idempotency, { idempotency: 'none', lookup: 'honest' })).resolves.toBeUndefined();
    // A destination that cannot dedupe is not sent anything twice by the check.
    await expect(run(destinationChecks.idempotency, { idempotency: 'none', resendCreates: true })).resolves.toMatch(/parks the record as "outcome unknown"/);
  });

  it('fails order when results come back reversed', async () => {
    expect(await failure(destinationChecks.order, { reverseResults: true })).toMatch(/results are out of order/);
  });

  it('fails order when the destination says it assigns ids but answers none', async () => {
    expect(await failure(destinationChecks.order, { noDestinationId: true })).toMatch(/carries no destinationId/);
  });

  it('checks order by an update of a missing record when there is no bad record', async () => {
    expect(await failure(destinationChecks.order, { reverseResults: true }, { badRecord: undefined, assignsIds: false })).toMatch(/results are out of order/);
    await expect(run(destinationChecks.order, {}, { badRecord: undefined, assignsIds: false })).resolves.toBeUndefined();
  });
});
