import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { alias } from '../../vitest.config.js';
import { concurrency } from './options.js';

const root = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// The chaos harness (`npm run chaos`): outside the root config's projects, so `npm test`
// never runs it. Same aliases, network guard and PostgreSQL cluster as the crash matrix.
export default defineConfig({
  resolve: { alias },
  // vitest's cache (results of earlier runs) beside the repo's, not in tests/chaos.
  cacheDir: root('../../node_modules/.vite/chaos'),
  test: {
    name: 'chaos',
    root: root('.'),
    include: ['chaos.ts'],
    setupFiles: [root('../../packages/testing/src/network-guard.ts'), root('../../packages/testing/src/vitest-setup.ts')],
    globalSetup: [root('../../connectors/postgres/test/global-setup.ts')],
    testTimeout: 30 * 60_000,
    hookTimeout: 120_000,
    // Scenarios run side by side (describe.concurrent), CHAOS_CONCURRENCY at a time.
    maxConcurrency: concurrency(),
    reporters: ['verbose'],
  },
});
