import { afterEach, expect, it } from 'vitest';
import type { Row, SyncConfig } from '@outflow/core';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import { createTestEngine, memorySource } from '@outflow/testing';
import slack from '../src/index.js';
import { start, type SlackEmulator } from '../src/emulator/index.js';

let emu: SlackEmulator | undefined;
afterEach(() => emu?.stop());

const sync = {
  name: 'big-orders',
  from: { connection: 'warehouse', table: 'orders', primaryKey: 'id' },
  capture: 'diff',
  to: {
    connection: 'slack',
    object: '#sales',
    mode: 'event',
    triggers: [{ name: 'big-order', on: 'insert', when: 'amount > 1000', payload: { text: 'Order {{ after.id }}: {{ after.amount }} EUR' } }],
  },
} as unknown as SyncConfig;

// Event mode end to end: the engine fires the trigger, the connector posts, and a message
// whose answer was lost is looked up rather than posted again. Counted in the emulator's log.
it('posts one message per event, none again on the next run, and none twice after a lost answer', async () => {
  emu = await start();
  let rows: Row[] = [
    { id: 1, amount: 1500 },
    { id: 2, amount: 20 },
    { id: 3, amount: 2500 },
  ];
  const { engine, close } = createTestEngine({
    connections: { warehouse: memorySource(() => rows), slack: { connector: slack, config: { ...emu.config, timeoutMs: 1_000 } } },
    ledger: openSqliteLedger,
    stateStore: (dir) => duckdbStateStore({ dir }),
  });
  try {
    expect((await engine.run(sync)).status).toBe('succeeded');
    expect(emu.messages().map((m) => m.text)).toEqual(['Order 1: 1500 EUR', 'Order 3: 2500 EUR']);
    expect((await engine.run(sync)).status).toBe('succeeded');
    expect(emu.messages()).toHaveLength(2);
    rows = [...rows, { id: 4, amount: 4000 }];
    emu.setFaults({ loseAnswers: 1 });
    // Posted, the answer lost: the engine asks lookup, which finds it in the channel's history.
    expect(await engine.run(sync)).toMatchObject({ status: 'succeeded', inserted: 1, parked: 0 });
    expect(emu.requests().filter((r) => r.method === 'conversations.history')).toHaveLength(1);
    expect((await engine.run(sync)).status).toBe('succeeded');
    expect(emu.messages().map((m) => m.text)).toEqual(['Order 1: 1500 EUR', 'Order 3: 2500 EUR', 'Order 4: 4000 EUR']);
  } finally {
    await close();
  }
});
