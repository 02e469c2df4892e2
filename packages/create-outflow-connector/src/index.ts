/** Scaffolds Outflow connector packages; the CLI (`npm create outflow-connector`) calls {@link generate}. */
export { defaultDir, findMonorepo, generate, monorepoFor, type GenerateOptions, type Generated } from './generate.js';
export { resolveNames, resolveRoles, ROLES, UsageError, type Names, type Role } from './names.js';
export { VERSIONS } from './versions.js';
export { run, type CliIo } from './cli.js';
