import { streamAcceptance } from '@outflow/testing';
import connector, { type __Name__Config } from '../src/index.js';
import { start, type __Name__Emulator } from '../src/emulator/index.js';

const TABLE = 'customers';
let emulator: __Name__Emulator;

// Changes arrive in order, resume from a checkpoint without replaying or losing any, and a
// log past its retention goes through the stale-stream handshake.
streamAcceptance<__Name__Config>({
  connector,
  model: { table: TABLE, primaryKey: ['id'] },
  async setup() {
    emulator = await start();
    return { ...emulator.config };
  },
  teardown: () => emulator.stop(),
  row: (i, version) => ({ id: i, email: `c${i}@example.com`, name: `Customer ${i} v${version}` }),
  mutate: async (kind, row) => emulator.tables.apply(TABLE, kind, row),
  // Retention passes: every position read so far can no longer be resumed.
  makeStale: async () => emulator.tables.expire(),
  badConfigs: (config) => [
    { name: 'a token the API refuses', config: { ...config, token: 'not-the-sandbox-token' } },
    { name: 'an API that is not listening', config: { ...config, baseUrl: 'http://127.0.0.1:9' } },
  ],
});
