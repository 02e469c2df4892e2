import { createRequire } from 'node:module';
import { defineConnector } from '@outflow/core';
import { configSchema } from './config.js';
import { destination } from './destination.js';

export { configSchema, type SlackConfig } from './config.js';
export { MAX_BATCH, POST_LIMIT } from './destination.js';

// The manifest's version is the package's, from src/ (tests) and dist/ alike, so a release
// never leaves it behind.
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/**
 * The Slack connector: `connector: slack` in outflow.yaml, a destination for event mode
 * that posts messages with @slack/web-api. Outflow checks the installed core against this
 * package's peer dependency on @outflow/core.
 */
export default defineConnector({
  name: 'slack',
  version,
  description: 'Posts messages to Slack channels (event mode) with @slack/web-api.',
  config: configSchema,
  destination,
  // Loaded only when a connection sets `sandbox: true` (or a test starts it).
  emulator: () => import('./emulator/index.js'),
});
