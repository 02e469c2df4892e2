import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Tests import workspace packages from src/, so they need no build; the runner's
// subprocess tests use the built CLI, which `npm test` builds first. Exported for
// tests/chaos/vitest.config.ts, which runs outside these projects.
export const alias = {
  '@outflow/core/emulator-kit': root('./packages/core/src/emulator-kit/index.ts'),
  '@outflow/core': root('./packages/core/src/index.ts'),
  '@outflow/ledger-sqlite': root('./packages/ledger-sqlite/src/index.ts'),
  '@outflow/state-duckdb': root('./packages/state-duckdb/src/index.ts'),
  '@outflow/testing/network-guard': root('./packages/testing/src/network-guard.ts'),
  '@outflow/testing': root('./packages/testing/src/index.ts'),
  '@outflow/connector-duckdb': root('./connectors/duckdb/src/index.ts'),
  '@outflow/connector-webhook/emulator': root('./connectors/webhook/src/emulator.ts'),
  '@outflow/connector-webhook': root('./connectors/webhook/src/index.ts'),
  '@outflow/connector-postgres/testing': root('./connectors/postgres/src/testing.ts'),
  '@outflow/connector-postgres': root('./connectors/postgres/src/index.ts'),
  '@outflow/connector-hubspot/emulator': root('./connectors/hubspot/src/emulator/index.ts'),
  '@outflow/connector-hubspot': root('./connectors/hubspot/src/index.ts'),
  '@outflow/connector-snowflake/emulator': root('./connectors/snowflake/src/emulator.ts'),
  '@outflow/connector-snowflake': root('./connectors/snowflake/src/index.ts'),
};

const project = (name: string, dir: string, extra: Record<string, unknown> = {}) => ({
  resolve: { alias },
  test: {
    name,
    root: root(dir),
    include: ['test/**/*.test.ts'],
    setupFiles: [root('./packages/testing/src/network-guard.ts'), root('./packages/testing/src/vitest-setup.ts')],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    ...extra,
  },
});

export default defineConfig({
  test: {
    projects: [
      project('core', 'packages/core'),
      project('ledger-sqlite', 'packages/ledger-sqlite'),
      project('state-duckdb', 'packages/state-duckdb'),
      project('testing', 'packages/testing'),
      project('connector-duckdb', 'connectors/duckdb'),
      project('connector-webhook', 'connectors/webhook'),
      project('connector-postgres', 'connectors/postgres', { globalSetup: [root('./connectors/postgres/test/global-setup.ts')] }),
      project('connector-hubspot', 'connectors/hubspot'),
      project('connector-snowflake', 'connectors/snowflake', { env: { SNOWFLAKE_DISABLE_PLATFORM_DETECTION: 'true' } }),
      project('runner', 'apps/runner'),
      // The failpoint matrix: the built CLI killed at each crash point, across connectors.
      project('crash', 'tests/crash', { include: ['**/*.test.ts'], globalSetup: [root('./connectors/postgres/test/global-setup.ts')] }),
    ],
  },
});
