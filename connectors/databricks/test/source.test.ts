import type { Row } from '@outflow/core';
import { sourceAcceptance } from '@outflow/testing';
import connector, { BATCH_ROWS, type DatabricksConfig } from '../src/index.js';
import { startDatabricksEmulator } from '../src/emulator/index.js';
import { configOf, type Emulator } from './helpers.js';

// More rows than two batches, so aborting after the first batch leaves a read in progress.
const ROWS = BATCH_ROWS * 2 + 500;

const expectedRows: Row[] = Array.from({ length: ROWS }, (_, n) => {
  const id = n + 1;
  return { id, email: id % 7 === 0 ? null : `customer${id}@example.com`, name: `Customer ${id}`, score: id / 4, active: id % 3 !== 0 };
});

const literal = (v: Row[string]) => (v === null ? 'NULL' : typeof v === 'string' ? `'${v}'` : String(v));

let emulator: Emulator;

sourceAcceptance<DatabricksConfig>({
  connector,
  model: { table: 'customers', primaryKey: ['id'] },
  expectedRows,
  async setup() {
    emulator = await startDatabricksEmulator();
    await emulator.sql('CREATE TABLE customers (id BIGINT, email STRING, name STRING, score DOUBLE, active BOOLEAN)');
    for (let i = 0; i < ROWS; i += 2_000) {
      const values = expectedRows.slice(i, i + 2_000).map((r) => `(${[r['id'], r['email'], r['name'], r['score'], r['active']].map(literal).join(', ')})`);
      await emulator.sql(`INSERT INTO customers VALUES ${values.join(', ')}`);
    }
    return configOf(emulator);
  },
  teardown: () => emulator.stop(),
  badConfigs: (config) => [
    { name: 'a token the warehouse refuses', config: { ...config, token: 'dapi-not-the-token' } },
    { name: 'a warehouse whose certificate is not trusted (no caCert)', config: { ...config, caCert: undefined } },
    { name: 'both a token and OAuth client credentials', config: { ...config, clientId: 'svc', clientSecret: 'oauth-secret-value' } },
    { name: 'a schema that does not exist', config: { ...config, schema: 'nope' } },
  ],
});
