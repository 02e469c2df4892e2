import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { sourceAliases, workspacePackages } from './scripts/workspaces.mjs';

const root = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Tests import workspace packages from src/, so they need no build; the runner's
// subprocess tests use the built CLI, which `npm test` builds first. The aliases and the
// projects come from the workspaces' package.json files (scripts/workspaces.mjs): a new
// package's `exports` entries map to its src/, and its test/ folder is a project.
// Exported for tests/chaos/vitest.config.ts, which runs outside these projects.
export const alias: Record<string, string> = Object.fromEntries(sourceAliases().map(([specifier, source]) => [specifier, root(`./${source}`)]));

const setupFiles = [root('./packages/testing/src/network-guard.ts'), root('./packages/testing/src/vitest-setup.ts')];
const postgres = { globalSetup: [root('./connectors/postgres/test/global-setup.ts')] };

/** What a project needs beyond the defaults, by project name. */
const extras: Record<string, Record<string, unknown>> = {
  'connector-postgres': postgres,
  'connector-snowflake': { env: { SNOWFLAKE_DISABLE_PLATFORM_DETECTION: 'true' } },
};

const project = (name: string, dir: string, extra: Record<string, unknown> = {}) => ({
  resolve: { alias },
  test: {
    name,
    root: root(dir),
    include: ['test/**/*.test.ts'],
    setupFiles,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    ...extra,
  },
});

export default defineConfig({
  test: {
    projects: [
      ...workspacePackages()
        .filter((p) => p.hasTests)
        .map((p) => project(p.project, p.dir, extras[p.project])),
      // The failpoint matrix: the built CLI killed at each crash point, across connectors.
      project('crash', 'tests/crash', { include: ['**/*.test.ts'], ...postgres }),
      // Packages published to a local npm registry and installed as a user would.
      project('registry', 'tests/registry', { include: ['**/*.test.ts'], testTimeout: 15 * 60_000 }),
    ],
  },
});
