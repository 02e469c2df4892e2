import { describe, expect, it } from 'vitest';
import { sourceAcceptance, sourceChecks, startSource, type SourceDriver } from '../src/index.js';
import { memorySource, PEOPLE, TOKEN, type MemoryConfig } from './memory.js';

function driverFor(connector: ReturnType<typeof memorySource>): SourceDriver<MemoryConfig> {
  return {
    connector,
    config: { token: TOKEN, batchSize: 4 },
    model: { table: 'people', primaryKey: ['id'] },
    expectedRows: PEOPLE,
    badConfigs: [{ name: 'a wrong token', config: { token: 'wrong-token' } }],
  };
}

sourceAcceptance(driverFor(memorySource()));

describe('when the driver knows only the row count', () => {
  const { expectedRows: _rows, ...byCount } = driverFor(memorySource());
  sourceAcceptance({ ...byCount, expectedCount: PEOPLE.length });
});

describe('the source suite catches a broken source', () => {
  it('fails read when a row is yielded twice', async () => {
    const h = await startSource(driverFor(memorySource({ duplicateFirst: true })));
    try {
      await expect(sourceChecks.read(h)).rejects.toThrow(/yielded key "1" twice/);
    } finally {
      await h.close();
    }
  });

  it('fails read when a row differs from the expected one', async () => {
    const driver = { ...driverFor(memorySource()), expectedRows: PEOPLE.map((r) => (r['id'] === 3 ? { ...r, name: 'Someone else' } : r)) };
    const h = await startSource(driver);
    try {
      await expect(sourceChecks.read(h)).rejects.toThrow(/row "3" is .*"Person 3".*expected .*"Someone else"/);
    } finally {
      await h.close();
    }
  });

  it('fails abort when reading goes on after the signal aborts', async () => {
    const h = await startSource(driverFor(memorySource({ ignoreAbort: true })));
    try {
      await expect(sourceChecks.abort(h)).rejects.toThrow(/with an already aborted signal yielded 4 rows/);
    } finally {
      await h.close();
    }
  });
});
