import { defineConnector } from '@outflow/core';
import { describe, expect, it } from 'vitest';
import { sourceCheckList, sourceChecks, startSource, type SourceDriver } from '../src/index.js';
import { acceptingSource } from './broken.js';
import { memorySource, TOKEN, type MemoryConfig } from './memory.js';
import { failureOf, sourceDriverFor as driverFor } from './run-check.js';

async function failure(driver: SourceDriver<MemoryConfig>): Promise<string> {
  return failureOf(await startSource(driver), sourceChecks.badConfigs);
}

describe('bad-configs is required and catches a source that accepts a bad config', () => {
  it('fails when check() accepts a wrong token', async () => {
    expect(await failure(driverFor(acceptingSource(memorySource())))).toMatch(/check\(\) accepted bad config "a wrong token"/);
  });

  it('fails when check() refuses with a plain Error instead of an OutflowError', async () => {
    const source = memorySource().source!;
    const plain = defineConnector({
      ...memorySource(),
      source: {
        ...source,
        check: async (ctx) => {
          if ((ctx.config as MemoryConfig).token !== TOKEN) throw new Error('no');
        },
      },
    });
    expect(await failure(driverFor(plain))).toMatch(/check\(\) with bad config "a wrong token" threw a non-OutflowError: no/);
  });

  it('fails when the driver gives no bad configs', async () => {
    expect(await failure(driverFor(memorySource(), { badConfigs: undefined }))).toMatch(/the driver gives no bad configs; .* or `noBadConfigs` saying why none exists/);
  });

  it('is skipped with the reason the driver gives when no config can fail', async () => {
    const h = await startSource(driverFor(memorySource(), { badConfigs: undefined, noBadConfigs: 'the memory source needs no credentials' }));
    try {
      expect(sourceCheckList(h.driver).find((c) => c.id === 'bad-configs')!.notApplicable?.(h)).toBe('the memory source needs no credentials');
    } finally {
      await h.close();
    }
  });
});
