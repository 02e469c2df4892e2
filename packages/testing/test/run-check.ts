/**
 * Running one check the way the suite does — on a harness whose calls are watched for
 * secrets — and the drivers of the memory connectors the negative tests share.
 */
import type { AnyConnector } from '@outflow/core';
import { expect } from 'vitest';
import { AcceptanceFailure, type DestinationDriver, type SourceDriver } from '../src/index.js';
import { instrument, withoutLeaks } from '../src/secrets.js';
import { memoryDestination, PEOPLE, TOKEN, type MemoryConfig } from './memory.js';

/** Runs `check` on `harness` as registerChecks does, closes the harness, and returns what the check resolved to. */
export async function runCheck<H extends { close(): Promise<void> }, R>(harness: H, check: (h: H) => Promise<R>): Promise<R> {
  const h = instrument(harness);
  try {
    return await withoutLeaks(h, () => check(h));
  } finally {
    await h.close();
  }
}

/** Runs `check` as {@link runCheck} does and returns the message of the AcceptanceFailure it must throw. */
export async function failureOf<H extends { close(): Promise<void> }>(harness: H, check: (h: H) => Promise<unknown>): Promise<string> {
  const err = await runCheck(harness, check).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the check passed against a broken connector').toBeInstanceOf(AcceptanceFailure);
  return (err as Error).message;
}

/** A driver for the memory source's `people`, or for a broken variant of it. */
export function sourceDriverFor(connector: AnyConnector, overrides: Partial<SourceDriver<MemoryConfig>> = {}): SourceDriver<MemoryConfig> {
  return {
    connector,
    config: { token: TOKEN, batchSize: 10 },
    model: { table: 'people', primaryKey: ['id'] },
    expectedRows: PEOPLE,
    badConfigs: [{ name: 'a wrong token', config: { token: 'wrong-token' } }],
    ...overrides,
  };
}

/** A driver for the memory destination's `contacts` through `connector` (the memory destination's own, or a broken variant of it). */
export function destinationDriverFor(connector: AnyConnector, memory: ReturnType<typeof memoryDestination>): DestinationDriver<MemoryConfig> {
  return {
    connector,
    config: { token: TOKEN, batchSize: 8 },
    object: 'contacts',
    badConfigs: [{ name: 'a wrong token', config: { token: 'not-the-token' } }],
    readAll: memory.readAll,
    record: memory.record,
    assignsIds: true,
    badRecord: () => ({ key: 'bad', match: { email: 'no-at-sign' }, fields: { email: 'no-at-sign', name: 'Bad' } }),
  };
}
