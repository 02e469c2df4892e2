import { afterEach, expect, it } from 'vitest';
import type { Row, SyncConfig } from '@outflow/core';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import { createTestEngine, memorySource } from '@outflow/testing';
import braze from '@outflow/connector-braze';
import { SANDBOX_CAMPAIGN, start, type BrazeEmulator } from '@outflow/connector-braze/emulator';

let emu: BrazeEmulator | undefined;
afterEach(() => emu?.stop());

const syncTo = (name: string, object: string, payload: Record<string, unknown>) =>
  ({
    name,
    from: { connection: 'warehouse', table: 'orders', primaryKey: 'id' },
    capture: 'diff',
    to: { connection: 'braze', object, mode: 'event', triggers: [{ name: 'order-placed', on: 'insert', payload }] },
  }) as unknown as SyncConfig;

const events = syncTo('orders-as-events', 'users/track', { external_id: '{{ after.user }}', event: { name: 'order_placed', properties: { total: '{{ after.total }}' } } });
const receipts = syncTo('order-receipts', `campaign:${SANDBOX_CAMPAIGN}`, { external_user_id: '{{ after.user }}', trigger_properties: { total: '{{ after.total }}' } });
const attributes = syncTo('last-order', 'users/attributes', { external_id: '{{ after.user }}', attributes: { last_total: '{{ after.total }}' } });

// Event mode end to end, counted in the emulator's logs: a custom event or a triggered send
// whose answer was lost is parked as "outcome unknown", never sent twice; an attribute
// update whose answer was lost is simply sent again.
it('never sends an event or a campaign twice after a lost answer, and sends attributes again', async () => {
  emu = await start();
  let rows: Row[] = [{ id: 1, user: 'u1', total: 15 }];
  const { engine, close } = createTestEngine({
    connections: { warehouse: memorySource(() => rows), braze: { connector: braze, config: { ...emu.config, timeoutMs: 1_000 } } },
    ledger: openSqliteLedger,
    stateStore: (dir) => duckdbStateStore({ dir }),
  });
  try {
    for (const sync of [events, receipts, attributes]) expect((await engine.run(sync)).status).toBe('succeeded');
    expect(emu.events().map((e) => e.object['properties'])).toEqual([{ total: 15, outflow_idempotency_key: expect.any(String) }]);
    expect(emu.sends().map((s) => s.recipient)).toEqual([{ external_user_id: 'u1', trigger_properties: { total: 15 } }]);

    rows = [...rows, { id: 2, user: 'u2', total: 25 }];
    for (const sync of [events, receipts]) {
      emu.setFaults({ loseAnswers: 1 });
      expect(await engine.run(sync)).toMatchObject({ parked: 1 });
    }
    emu.setFaults({ loseAnswers: 1 });
    expect(await engine.run(attributes)).toMatchObject({ status: 'succeeded', parked: 0 });
    emu.setFaults({});
    for (const sync of [events, receipts, attributes]) await engine.run(sync);

    // Each applied once, though its answer was lost; the parked ones were not sent again.
    expect(emu.events().map((e) => e.object['external_id'])).toEqual(['u1', 'u2']);
    expect(emu.sends().map((s) => s.recipient['external_user_id'])).toEqual(['u1', 'u2']);
    expect(emu.users().find((u) => u.identifiers['external_id'] === 'u2')?.attributes).toEqual({ last_total: 25 });
    expect(emu.requests().filter((r) => r.path === '/users/track').map((r) => r.status)).toEqual([201, 201, 0, 0, 201]);
  } finally {
    await close();
  }
});
