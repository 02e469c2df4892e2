import { createRequire } from 'node:module';
import { defineConnector } from '@outflow/core';
import { configSchema } from './config.js';
import { closeSession } from './client.js';
import { destination } from './destination.js';

export { configSchema, type BrazeConfig } from './config.js';

// The manifest's version is the package's, from src/ (tests) and dist/ alike, so a release
// never leaves it behind.
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/**
 * The Braze connector: `connector: braze` in outflow.yaml. Outflow checks the
 * installed core against this package's peer dependency on @outflow/core.
 */
export default defineConnector({
  name: 'braze',
  version,
  description: 'Sends user attributes, events and purchases, and API-triggered campaigns and Canvases, to Braze.',
  config: configSchema,
  destination,
  // Releases the connection's pool of connections to the instance.
  close: closeSession,
  // Loaded only when a connection sets `sandbox: true` (or a test starts it).
  emulator: () => import('./emulator/index.js'),
});
