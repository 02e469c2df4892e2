import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import snowflake, { configSchema, type SnowflakeConfig } from '@outflow/connector-snowflake';
import { start, type SnowflakeEmulator } from '@outflow/connector-snowflake/emulator';
import { isOutflowError } from '@outflow/core';
import { createTestContext, type TestContext } from '@outflow/testing';

// The pushed-down diff adds OUTFLOW_* columns beside the model's; a model column of such a
// name would collide with one or be dropped from the rows sent.

let sf: SnowflakeEmulator;
let ctx: TestContext<SnowflakeConfig>;

beforeAll(async () => {
  sf = await start();
  ctx = createTestContext<SnowflakeConfig>({ ...sf.config }, { schema: configSchema, connection: 'warehouse' });
});

afterAll(async () => {
  await ctx?.dispose();
  await sf?.stop();
});

describe('model columns named like the diff’s own', () => {
  it('are refused with OUTFLOW_MAPPING naming them', async () => {
    for (const column of ['OUTFLOW_KEY', 'OUTFLOW_OP', 'outflow_fp']) {
      const err = await snowflake
        .source!.diff!.open(ctx, { sql: `SELECT 1 AS ID, 'x' AS "${column}"`, primaryKey: ['ID'] }, { sync: 's', readOnly: true, columns: null })
        .then(
          () => new Error('opened'),
          (e: unknown) => e,
        );
      expect(isOutflowError(err, 'OUTFLOW_MAPPING'), String(err)).toBe(true);
      expect((err as Error).message).toContain(`named "${column}": names starting with OUTFLOW_ (in any case) are reserved`);
    }
  });
});
