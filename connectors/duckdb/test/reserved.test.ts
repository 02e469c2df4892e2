import { describe, expect, it } from 'vitest';
import duckdb from '@outflow/connector-duckdb';
import { isOutflowError } from '@outflow/core';
import { context } from './helpers.js';

// The pushed-down diff adds columns of its own beside the model's; a model column of the
// same name would collide with one or be dropped from the rows sent.

describe('model columns named like the diff’s own', () => {
  it('are refused with OUTFLOW_MAPPING naming them, in any case; other names starting with __ are fine', async () => {
    const open = (sql: string) =>
      duckdb.source!.diff!.open(context({ path: ':memory:' }), { sql, primaryKey: ['id'] }, { sync: 's', readOnly: true, columns: null });
    for (const column of ['__fp', '__K', '__op', '__sent_match']) {
      const err = await open(`SELECT 1 AS id, 'x' AS ${column}`).then(
        () => new Error('opened'),
        (e: unknown) => e,
      );
      expect(isOutflowError(err, 'OUTFLOW_MAPPING'), String(err)).toBe(true);
      expect((err as Error).message).toContain(`named "${column}", which the diff reserves for itself`);
    }
    const store = await open(`SELECT 1 AS id, 'x' AS __id2`);
    await store.close();
  });
});
