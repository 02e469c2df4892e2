import { afterEach, expect, it } from 'vitest';
import type { Row, SyncConfig } from '@outflow/core';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import { createTestEngine, memorySource } from '@outflow/testing';
import segment from '@outflow/connector-segment';
import { start, type SegmentEmulator } from '@outflow/connector-segment/emulator';

let emu: SegmentEmulator | undefined;
afterEach(() => emu?.stop());

const sync = {
  name: 'orders-to-segment',
  from: { connection: 'warehouse', table: 'orders', primaryKey: 'id' },
  capture: 'diff',
  to: {
    connection: 'segment',
    object: 'track',
    mode: 'event',
    triggers: [
      { name: 'order-placed', on: 'insert', payload: { userId: '{{ after.user }}', event: 'Order Placed', properties: { order: '{{ key }}', total: '{{ after.total }}' } } },
      { name: 'customer', on: 'insert', object: 'identify', payload: { userId: '{{ after.user }}', traits: { last_total: '{{ after.total }}' } } },
    ],
  },
} as unknown as SyncConfig;

// Event mode end to end: the engine fires the triggers, analytics-node batches the calls,
// and a batch whose answer was lost is sent again with the same messageIds, which Segment
// keeps once. Counted in the emulator's logs.
it('sends each event once across runs and after a lost answer, the re-send visible only in the request log', async () => {
  emu = await start();
  let rows: Row[] = [
    { id: 1, user: 'u1', total: 15 },
    { id: 2, user: 'u2', total: 25 },
  ];
  const { engine, close } = createTestEngine({
    connections: { warehouse: memorySource(() => rows), segment: { connector: segment, config: { ...emu.config, timeoutMs: 1_000 } } },
    ledger: openSqliteLedger,
    stateStore: (dir) => duckdbStateStore({ dir }),
  });
  try {
    expect((await engine.run(sync)).status).toBe('succeeded');
    expect(emu.calls().map((c) => [c.type, c.userId])).toEqual(
      expect.arrayContaining([
        ['track', 'u1'],
        ['track', 'u2'],
        ['identify', 'u1'],
        ['identify', 'u2'],
      ]),
    );
    expect(emu.calls().find((c) => c.type === 'track' && c.userId === 'u2')).toMatchObject({ event: 'Order Placed', properties: { order: '2', total: 25 } });
    expect((await engine.run(sync)).status).toBe('succeeded');
    expect(emu.calls()).toHaveLength(4);

    rows = [...rows, { id: 3, user: 'u3', total: 35 }];
    emu.setFaults({ loseAnswers: 1 });
    expect(await engine.run(sync)).toMatchObject({ status: 'succeeded', parked: 0 });
    const calls = emu.calls();
    expect(calls).toHaveLength(6);
    const sentTwice = emu.requests().flatMap((r) => r.messageIds).filter((id, i, all) => all.indexOf(id) !== i);
    expect(sentTwice.length).toBeGreaterThan(0);
    expect(sentTwice.every((id) => calls.filter((c) => c.messageId === id).length === 1)).toBe(true);
  } finally {
    await close();
  }
});
