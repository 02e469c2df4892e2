import { Type, defineConnector, type Row } from '@outflow/core';

/**
 * A source whose model is held in memory: `rows()` is read afresh on every run, in batches
 * of `batchSize`. For testing a destination through the real engine (`createEngine`) without a
 * warehouse.
 */
export function memorySource(rows: () => Row[], batchSize = 250) {
  return defineConnector({
    name: 'memory-source',
    version: '1.0.0',
    coreVersion: '^1.0.0',
    description: 'A model held in memory (tests).',
    config: Type.Object({}, { additionalProperties: false }),
    source: {
      async check() {},
      async discover() {
        return { tables: [] };
      },
      async *read() {
        const all = rows();
        for (let i = 0; i < all.length; i += batchSize) yield { rows: all.slice(i, i + batchSize) };
      },
    },
  });
}
