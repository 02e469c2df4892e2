import { defineConnector } from '@outflow/core';
import { configSchema } from './config.js';
import { pushdown } from './pushdown.js';
import { source } from './source.js';
import { stream } from './stream.js';

export { configSchema, type SnowflakeConfig } from './config.js';
export { BATCH_SIZE, modelSql } from './source.js';
export { PAGE_ROWS, POLL_MS } from './stream.js';

export default defineConnector({
  name: 'snowflake',
  version: '1.0.0',
  description: 'Reads Snowflake tables, views, dynamic tables and queries; streams changes through Snowflake STREAMs; diffs in Snowflake.',
  config: configSchema,
  source: { ...source, diff: pushdown },
  stream,
  emulator: () => import('./emulator.js'),
});
