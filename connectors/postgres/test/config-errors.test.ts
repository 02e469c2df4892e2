import { afterEach, describe, expect, it } from 'vitest';
import postgres, { type PostgresConfig } from '@outflow/connector-postgres';
import { isOutflowError, OutflowError, type ConnectorContext } from '@outflow/core';
import { createTestContext } from '@outflow/testing';
import { createDatabase } from './helpers.js';

// Configuration mistakes the connector reports clearly, before anything is written.

const PASSWORD = 'pa55-w0rd-s3cret';
const BAD = [`postgres://app:${PASSWORD}@db.internal:port/app`, `postgres://app:${PASSWORD}@[db/app`];

const contexts: { dispose(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of contexts.splice(0)) await c.dispose();
});

function context(url: string): ConnectorContext<PostgresConfig> {
  const ctx = createTestContext({ url } as PostgresConfig, { connection: 'warehouse' });
  contexts.push(ctx);
  return ctx;
}

async function thrown(call: () => Promise<unknown>): Promise<OutflowError> {
  const err = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutflowError);
  return err as OutflowError;
}

describe('a connection string pg cannot read', () => {
  for (const url of BAD) {
    it(`is OUTFLOW_CONFIG_INVALID naming the connection, from the source and the destination (${url.replace(PASSWORD, '…')})`, async () => {
      const errors = [
        await thrown(() => postgres.source!.check(context(url))),
        await thrown(() => postgres.destination!.check(context(url))),
        await thrown(() => postgres.destination!.write(context(url), 'people', [{ kind: 'upsert', key: '1', match: { id: 1 }, fields: { id: 1 }, idempotencyKey: 'ik' }])),
      ];
      for (const err of errors) {
        expect(err.code).toBe('OUTFLOW_CONFIG_INVALID');
        expect(err.retryable).toBe(false);
        expect(err.message).toMatch(/^connection "warehouse": url is not a valid PostgreSQL connection string/);
        expect(err.message).not.toContain(PASSWORD);
        expect(JSON.stringify(err)).not.toContain(PASSWORD);
      }
    });
  }
});

describe('model columns named like the pushed-down diff’s own', () => {
  it('are refused with OUTFLOW_MAPPING naming them', async () => {
    const url = await createDatabase('reserved');
    const ctx = context(url);
    for (const column of ['outflow_key', 'outflow_op', 'outflow_sent_match']) {
      const store = await postgres.source!.diff!.open(ctx, { sql: `SELECT 1 AS id, 'x' AS ${column}`, primaryKey: ['id'] }, { sync: 's', readOnly: false, columns: null });
      const err = await store.computeChanges().then(
        () => new Error('diffed'),
        (e: unknown) => e,
      );
      await store.close();
      expect(isOutflowError(err, 'OUTFLOW_MAPPING'), String(err)).toBe(true);
      expect((err as Error).message).toContain(`has a column named "${column}", which the diff reserves for itself`);
    }
    await postgres.close?.(ctx as never);
  });
});
