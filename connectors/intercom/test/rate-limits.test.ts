import { afterEach, expect, it } from 'vitest';
import type { SyncConfig } from '@outflow/core';
import { openSqliteLedger } from '@outflow/ledger-sqlite';
import { duckdbStateStore } from '@outflow/state-duckdb';
import intercom from '@outflow/connector-intercom';
import { start, type IntercomEmulator } from '@outflow/connector-intercom/emulator';
import { createTestEngine, memorySource } from '@outflow/testing';

let emu: IntercomEmulator | undefined;
afterEach(() => emu?.stop());

// The app's real limit is lower than the config says: the first answers' X-RateLimit-Limit
// lowers the budget, and each 429 pauses every sender until X-RateLimit-Reset.
it('learns a lower limit from the headers and waits out 429s until the window resets; every contact is created once', async () => {
  emu = await start({ limits: { requests: 4, perMs: 10_000 } });
  const rows = Array.from({ length: 10 }, (_, i) => ({ id: `u${i}`, email: `p${i}@example.com` }));
  const { engine, close } = createTestEngine({
    connections: { src: memorySource(() => rows), crm: { connector: intercom, config: { ...emu.config, rateLimitPerMinute: 10_000 } } },
    ledger: openSqliteLedger,
    stateStore: (dir) => duckdbStateStore({ dir }),
  });
  try {
    const sync = {
      name: 'people',
      from: { connection: 'src', table: 'people', primaryKey: 'id' },
      capture: 'diff',
      to: { connection: 'crm', object: 'contacts', mode: 'upsert', deletes: 'ignore', matchKey: { external_id: 'id' } },
      mappings: { email: 'email' },
      delivery: { maxAttempts: 10 },
    } as SyncConfig;
    const summary = await engine.run(sync, { backoff: { baseMs: 1, maxMs: 5 } });
    expect(summary.status).toBe('succeeded');
    expect(emu.stats().byStatus['429']).toBeGreaterThan(0);
    const creates = emu.records.writes().filter((w) => w.op === 'create').map((w) => w.contact?.['external_id']);
    expect(creates.sort()).toEqual(rows.map((r) => String(r.id)).sort());
  } finally {
    await close();
  }
});
