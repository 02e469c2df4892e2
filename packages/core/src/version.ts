import { readFileSync } from 'node:fs';

/**
 * The version of @outflow/core, read from its package.json so that a release (`changeset
 * version`) changes it in one place; connector manifests declare a `coreVersion` range that
 * must include it.
 */
export const CORE_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
