import { defineConnector } from '@outflow/core';
import { configSchema } from './config.js';
import { closePool, destination } from './destination.js';
import { source } from './source.js';
import { stream } from './stream.js';

export { configSchema, type PostgresConfig } from './config.js';
export { dropStream, formatLsn, parseLsn, streamName } from './stream.js';
export { stateTableName } from './pushdown.js';
export { parserFor, parseArray } from './values.js';

/**
 * The PostgreSQL connector: a snapshot source with a diff pushed down into the database, a
 * logical-replication change stream, and a destination that writes with one statement per
 * batch.
 */
export default defineConnector({
  name: 'postgres',
  version: '1.0.0',
  description: 'PostgreSQL: snapshot source with pushdown diff, logical-replication change stream, and destination.',
  config: configSchema,
  source,
  stream,
  destination,
  async close(ctx) {
    await closePool(ctx);
  },
});
