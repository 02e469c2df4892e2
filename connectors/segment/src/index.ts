import { createRequire } from 'node:module';
import { defineConnector } from '@outflow/core';
import { configSchema } from './config.js';
import { destination } from './destination.js';

export { configSchema, type SegmentConfig } from './config.js';

// The manifest's version is the package's, from src/ (tests) and dist/ alike, so a release
// never leaves it behind.
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/**
 * The Segment connector: `connector: segment` in outflow.yaml. Outflow checks the
 * installed core against this package's peer dependency on @outflow/core.
 */
export default defineConnector({
  name: 'segment',
  version,
  description: 'Sends events (track, identify, page, group) to a Segment source through analytics-node.',
  config: configSchema,
  destination,
  // Loaded only when a connection sets `sandbox: true` (or a test starts it).
  emulator: () => import('./emulator/index.js'),
});
