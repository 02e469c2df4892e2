import { describe, expect, it } from 'vitest';
import { destinationAcceptance, runDestinationChecks, type CheckReport } from '../src/index.js';
import { referenceDriver, type Bugs } from './reference-destination.js';

destinationAcceptance(referenceDriver());

/** The checks that did not pass, with their messages. */
function failures(reports: CheckReport[]): string[] {
  return reports.filter((r) => r.status === 'failed').map((r) => r.message ?? r.id);
}

async function runAll(bugs: Bugs, overrides: Parameters<typeof referenceDriver>[1] = {}): Promise<CheckReport[]> {
  return runDestinationChecks(referenceDriver(bugs, overrides));
}

describe('the destination suite passes a correct destination', () => {
  it('with a maxBatchSize of 1: no check needs bigger batches', async () => {
    const reports = await runAll({}, { config: { token: 'reference-token-0123456789', batchSize: 1 } });
    expect(failures(reports)).toEqual([]);
    expect(reports.filter((r) => r.status === 'skipped')).toEqual([{ id: 'order', status: 'skipped', message: 'maxBatchSize is 1, so every result is alone in its batch' }]);
  });

  it('with a maxBatchSize of 2', async () => {
    expect(failures(await runAll({}, { config: { token: 'reference-token-0123456789', batchSize: 2 } }))).toEqual([]);
  });

  it('declaring idempotency match', async () => {
    expect(failures(await runAll({ idempotency: 'match' }))).toEqual([]);
  });

  it('declaring idempotency none, with an honest lookup(): writes in doubt are looked up', async () => {
    const reports = await runAll({ idempotency: 'none', lookup: 'honest' });
    expect(failures(reports)).toEqual([]);
  });

  it('declaring idempotency none without lookup(): writes in doubt are parked, with a note', async () => {
    const reports = await runAll({ idempotency: 'none' });
    expect(failures(reports)).toEqual([]);
    expect(reports.find((r) => r.id === 'lost-answer')?.message).toMatch(/parked as "outcome unknown"/);
    expect(reports.find((r) => r.id === 'idempotency')?.message).toMatch(/parks the record as "outcome unknown"/);
  });

  it('assigning no ids, addressed by match alone', async () => {
    const reports = await runAll({ noDestinationId: true }, { assignsIds: false });
    expect(failures(reports)).toEqual([]);
    expect(reports.filter((r) => r.status === 'skipped').map((r) => r.id)).toEqual(['destination-id', 'precedence']);
  });

  it('declaring only upsert and delete', async () => {
    const reports = await runAll({ operations: ['upsert', 'delete'] });
    expect(failures(reports)).toEqual([]);
    expect(reports.filter((r) => r.status === 'skipped').map((r) => r.id)).toEqual(['missing-update', 'insert-existing']);
  });

  it('with no emulator (abort stops a write held back by stall()), no rate limits and no invalid input, each said by the driver', async () => {
    const reports = await runAll(
      { rateLimits: [], enforced: { requests: 1_000_000, perMs: 1000 } },
      {
        faults: undefined,
        noFaults: 'reached without an emulator',
        noRateLimits: 'no request limit',
        badRecord: undefined,
        noBadRecord: 'every value is free text',
      },
    );
    expect(failures(reports)).toEqual([]);
    const skipped = Object.fromEntries(reports.filter((r) => r.status === 'skipped').map((r) => [r.id, r.message]));
    expect(skipped).toEqual({
      throttle: 'reached without an emulator',
      'server-error': 'reached without an emulator',
      timeout: 'reached without an emulator',
      'lost-answer': 'reached without an emulator',
      'rate-limits': 'no request limit',
    });
    expect(reports.find((r) => r.id === 'bad-record')?.message).toMatch(/no bad record: every value is free text/);
    expect(reports.find((r) => r.id === 'abort')?.status).toBe('passed');
  });
});
