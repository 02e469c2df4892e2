import { createRequire } from 'node:module';
import { defineConnector } from '@outflow/core';
import { configSchema } from './config.js';
import { destination } from './destination.js';

export { configSchema, limitOf, type IntercomConfig } from './config.js';
export { MAX_BATCH } from './destination.js';

// The manifest's version is the package's, from src/ (tests) and dist/ alike, so a release
// never leaves it behind.
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/**
 * The Intercom connector: `connector: intercom` in outflow.yaml. Outflow checks the
 * installed core against this package's peer dependency on @outflow/core.
 */
export default defineConnector({
  name: 'intercom',
  version,
  description: 'Writes contacts (users) to Intercom with intercom-client.',
  config: configSchema,
  destination,
  // Loaded only when a connection sets `sandbox: true` (or a test starts it).
  emulator: () => import('./emulator/index.js'),
});
