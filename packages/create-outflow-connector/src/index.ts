/** Scaffolds Outflow connector packages; the CLI (`npm create outflow-connector`) calls {@link generate}. */
export { defaultDir, findMonorepo, generate, monorepoFor, type GenerateOptions, type Generated } from './generate.js';
export { resolveNames, resolveRoles, resolveWrites, ROLES, UsageError, WRITES, type Names, type Role, type Writes } from './names.js';
export { VERSIONS } from './versions.js';
export { run, type CliIo } from './cli.js';
