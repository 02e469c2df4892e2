import { describe, expect, it } from 'vitest';
import { AcceptanceFailure, destinationAcceptance, destinationChecks, startDestination, type DestinationDriver } from '../src/index.js';
import { memoryDestination, TOKEN, type MemoryConfig } from './memory.js';

function driverFor(memory: ReturnType<typeof memoryDestination>): DestinationDriver<MemoryConfig> {
  return {
    connector: memory.connector,
    config: { token: TOKEN, batchSize: 8 },
    object: 'contacts',
    badConfigs: [{ name: 'a wrong token', config: { token: 'not-the-token' } }],
    readBack: memory.readBack,
    record: memory.record,
    badRecord: () => ({ key: 'bad', fields: { email: 'no-at-sign', name: 'Bad' } }),
  };
}

destinationAcceptance(driverFor(memoryDestination()));

describe('the destination suite catches a broken destination', () => {
  it('fails create when an acknowledged record was dropped', async () => {
    const h = await startDestination(driverFor(memoryDestination({ dropAt: 1 })));
    try {
      await expect(destinationChecks.create(h)).rejects.toThrow(/record "k1000001" was acknowledged but is not in the destination/);
    } finally {
      await h.close();
    }
  });

  it('fails order when results come back reversed', async () => {
    const h = await startDestination(driverFor(memoryDestination({ reverseResults: true })));
    try {
      const failure = await destinationChecks.order(h).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(AcceptanceFailure);
      expect((failure as Error).message).toMatch(/results are out of order/);
    } finally {
      await h.close();
    }
  });
});
