import { createRequire } from 'node:module';
import { defineConnector } from '@outflow/core';
import { configSchema } from './config.js';
import { pushdown } from './pushdown.js';
import { source } from './source.js';
import { stream } from './stream.js';

export { configSchema, type DatabricksConfig } from './config.js';
export { BATCH_ROWS } from './source.js';
export { STATE_SCHEMA } from './pushdown.js';
export { PAGE_ROWS, POLL_MS } from './stream.js';

// The manifest's version is the package's, from src/ (tests) and dist/ alike, so a release
// never leaves it behind.
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/**
 * The Databricks connector: `connector: databricks` in outflow.yaml. Outflow checks the
 * installed core against this package's peer dependency on @outflow/core.
 */
export default defineConnector({
  name: 'databricks',
  version,
  description: 'Reads Databricks tables, views and queries through the SQL warehouse API, follows Delta tables through their change data feed, and diffs in Databricks.',
  config: configSchema,
  source: { ...source, diff: pushdown },
  stream,
  emulator: () => import('./emulator/index.js'),
});
