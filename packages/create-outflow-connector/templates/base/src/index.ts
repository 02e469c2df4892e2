import { createRequire } from 'node:module';
import { defineConnector } from '@outflow/core';
import { configSchema } from './config.js';
// #if destination
import { destination } from './destination.js';
// #endif
// #if source
import { source } from './source.js';
// #endif
// #if stream
import { stream } from './stream.js';
// #endif

export { configSchema, type __Name__Config } from './config.js';

// The manifest's version is the package's, from src/ (tests) and dist/ alike, so a release
// never leaves it behind.
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/**
 * The __Name__ connector: `connector: __connector__` in outflow.yaml. Outflow checks the
 * installed core against this package's peer dependency on @outflow/core.
 */
export default defineConnector({
  name: '__name__',
  version,
  description: '__description__',
  config: configSchema,
  // #if source
  source,
  // #endif
  // #if stream
  stream,
  // #endif
  // #if destination
  destination,
  // #endif
  // Loaded only when a connection sets `sandbox: true` (or a test starts it).
  emulator: () => import('./emulator/index.js'),
});
