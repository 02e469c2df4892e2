import { describe, expect, it } from 'vitest';
import { OutflowError, type Source } from '@outflow/core';
import { AcceptanceFailure, sourceAcceptance, sourceChecks, startSource, type SourceDriver, type SourceHarness } from '../src/index.js';
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

/** The memory source with some of its methods replaced: a deliberately broken source. */
function brokenSource(patch: (source: Source<MemoryConfig>) => Partial<Source<MemoryConfig>>): SourceDriver<MemoryConfig> {
  const connector = memorySource();
  const source = connector.source!;
  return driverFor({ ...connector, source: { ...source, ...patch(source) } });
}

async function failure(check: (h: SourceHarness) => Promise<void>, driver: SourceDriver<MemoryConfig>): Promise<string> {
  const h = await startSource(driver);
  try {
    return await check(h).then(
      () => 'the check passed',
      (err: unknown) => (err instanceof AcceptanceFailure ? err.message : `not an AcceptanceFailure: ${String(err)}`),
    );
  } finally {
    await h.close();
  }
}

describe('the source suite catches a broken source', () => {
  it('fails check when check() refuses the working config', async () => {
    const driver = brokenSource(() => ({ check: () => Promise.reject(new OutflowError('OUTFLOW_CHECK_FAILED', 'the token was refused')) }));
    expect(await failure(sourceChecks.check, driver)).toMatch(/the token was refused/);
  });

  it('fails bad-configs when check() accepts a wrong token', async () => {
    const driver = brokenSource(() => ({ check: async () => undefined }));
    expect(await failure(sourceChecks.badConfigs, driver)).toMatch(/a wrong token/);
  });

  it("fails discover when discover() does not list the model's table", async () => {
    const driver = brokenSource(() => ({ discover: async () => ({ tables: [{ name: 'others', columns: [{ name: 'id', type: 'INTEGER' }] }] }) }));
    expect(await failure(sourceChecks.discover, driver)).toMatch(/does not list table "people"/);
  });

  it('fails read-repeatable when a second read gives other rows', async () => {
    let reads = 0;
    const driver = brokenSource((source) => ({
      async *read(ctx, model) {
        const n = reads++;
        for await (const batch of source.read(ctx, model)) yield n === 0 ? batch : { rows: batch.rows.map((r) => (r['id'] === 2 ? { ...r, name: 'changed' } : r)) };
      },
    }));
    expect(await failure(sourceChecks.repeatable, driver)).toMatch(/a second read\(\) .*row "2"/);
  });

  it("fails columns when columns() leaves out one of the model's columns", async () => {
    const driver = brokenSource((source) => ({ columns: async (ctx, model) => (await source.columns!(ctx, model)).filter((c) => c.name !== 'active') }));
    expect(await failure(sourceChecks.columns, driver)).toMatch(/columns\(\) does not list \["active"\]/);
  });

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
