import { streamAcceptance } from '@outflow/testing';
import connector, { type DatabricksConfig } from '../src/index.js';
import { startDatabricksEmulator } from '../src/emulator/index.js';
import { configOf, type Emulator } from './helpers.js';

let emulator: Emulator;

// Changes committed to a Delta table with its change data feed on arrive in order, resume
// from a commit version without replaying or losing any, and a feed past its retention
// goes through the stale-stream handshake.
streamAcceptance<DatabricksConfig>({
  connector,
  model: { table: 'items', primaryKey: ['id'] },
  row: (i, version) => ({ id: i, name: `item ${i} v${version}` }),
  async mutate(kind, row) {
    if (kind === 'insert') await emulator.sql(`INSERT INTO items VALUES (${String(row['id'])}, '${String(row['name'])}')`);
    else if (kind === 'update') await emulator.sql(`UPDATE items SET name = '${String(row['name'])}' WHERE id = ${String(row['id'])}`);
    else await emulator.sql(`DELETE FROM items WHERE id = ${String(row['id'])}`);
  },
  // Retention removes the versions after the stream's position: two commits land while the
  // table keeps only its newest version. Answers are held back meanwhile, so no poll of the
  // stream reads the first commit before the second removes it.
  async makeStale() {
    emulator.setFaults({ latencyMs: 300 });
    await emulator.setRetention({ versions: 1 });
    await emulator.sql(`ALTER TABLE items SET TBLPROPERTIES ('outflow.test.filler' = '1')`);
    await emulator.sql(`ALTER TABLE items SET TBLPROPERTIES ('outflow.test.filler' = '2')`);
    await emulator.setRetention({});
    emulator.setFaults({});
  },
  async setup() {
    emulator = await startDatabricksEmulator();
    await emulator.sql('CREATE TABLE items (id BIGINT, name STRING) TBLPROPERTIES (delta.enableChangeDataFeed = true)');
    return configOf(emulator);
  },
  teardown: () => emulator.stop(),
  badConfigs: (config) => [{ name: 'a token the warehouse refuses', config: { ...config, token: 'dapi-not-the-token' } }],
});
