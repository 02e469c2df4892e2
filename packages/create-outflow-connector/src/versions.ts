/**
 * The versions a generated package depends on: Outflow's packages and the tools this
 * repository builds and tests with. A test compares them with the repository's own, so a
 * release that moves one fails until this file follows.
 */
export const VERSIONS = {
  '@outflow/core': '^1.0.0',
  '@outflow/testing': '^1.0.0',
  '@types/node': '^20.19.0',
  typescript: '~5.9.3',
  vitest: '~4.1.9',
} as const;

export const NODE_ENGINE = '>=20';
