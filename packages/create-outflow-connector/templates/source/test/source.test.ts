import { sourceAcceptance } from '@outflow/testing';
import connector, { type __Name__Config } from '../src/index.js';
import { start, type __Name__Emulator } from '../src/emulator/index.js';

const TABLE = 'customers';
const rows = Array.from({ length: 45 }, (_, i) => ({ id: i + 1, email: `c${i + 1}@example.com`, name: i % 5 === 0 ? null : `Customer ${i + 1}` }));
let emulator: __Name__Emulator;

// Reads the model and checks every row comes once, with its values, and that a read stops
// when the run stops. A page size of 10 gives the abort check several pages to stop between.
sourceAcceptance<__Name__Config>({
  connector,
  model: { table: TABLE, primaryKey: ['id'] },
  async setup() {
    emulator = await start();
    for (const row of rows) emulator.tables.apply(TABLE, 'insert', row);
    return { ...emulator.config, pageSize: 10 };
  },
  teardown: () => emulator.stop(),
  expectedRows: rows,
  badConfigs: (config) => [
    { name: 'a token the API refuses', config: { ...config, token: 'not-the-sandbox-token' } },
    // Port 9 (discard) has no listener on loopback: the connection is refused.
    { name: 'an API that is not listening', config: { ...config, baseUrl: 'http://127.0.0.1:9' } },
  ],
});
