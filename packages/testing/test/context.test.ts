import { existsSync } from 'node:fs';
import { isOutflowError } from '@outflow/core';
import { describe, expect, it } from 'vitest';
import { createTestContext } from '../src/index.js';
import { memoryConfig, TOKEN } from './memory.js';

describe('createTestContext', () => {
  it('freezes a copy of the config', () => {
    const config = { token: TOKEN, nested: { a: 1 } };
    const ctx = createTestContext(config);
    expect(ctx.config).toEqual(config);
    expect(ctx.config).not.toBe(config);
    expect(Object.isFrozen(ctx.config)).toBe(true);
    expect(Object.isFrozen(ctx.config.nested)).toBe(true);
  });

  it('applies schema defaults, and refuses a config that does not match the schema', () => {
    expect(createTestContext({ token: TOKEN }, { schema: memoryConfig }).config).toEqual({ token: TOKEN, batchSize: 10 });
    let error: unknown;
    try {
      createTestContext({ token: TOKEN, extra: 1 }, { schema: memoryConfig });
    } catch (err) {
      error = err;
    }
    expect(isOutflowError(error, 'OUTFLOW_CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toContain('must NOT have additional properties');
  });

  it('records metrics and key-value entries for inspection', async () => {
    const ctx = createTestContext({});
    ctx.metrics.count('rows_read', 3, { table: 'people' });
    ctx.metrics.count('rows_read');
    ctx.metrics.gauge('lag_ms', 10);
    ctx.metrics.gauge('lag_ms', 4);
    expect(ctx.metrics.total('rows_read')).toBe(4);
    expect(ctx.metrics.counts[0]).toEqual({ name: 'rows_read', value: 3, labels: { table: 'people' } });
    expect(ctx.metrics.lastGauge('lag_ms')).toBe(4);
    await ctx.kv.set('slot', 'a');
    expect(await ctx.kv.get('slot')).toBe('a');
    await ctx.kv.delete('slot');
    expect(await ctx.kv.get('slot')).toBeUndefined();
    await ctx.dispose();
  });

  it('gives a signal the controller aborts and a state folder dispose() removes', async () => {
    const ctx = createTestContext({});
    expect(ctx.signal.aborted).toBe(false);
    ctx.controller.abort();
    expect(ctx.signal.aborted).toBe(true);
    expect(existsSync(ctx.stateDir)).toBe(true);
    await ctx.dispose();
    expect(existsSync(ctx.stateDir)).toBe(false);
  });
});
