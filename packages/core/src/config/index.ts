export * from './schema.js';
export * from './connectors.js';
export * from './load.js';
export { MAX_INTERVAL_MS, parseInterval } from './interval.js';
export { MAX_CONFIG_BYTES } from './yaml.js';
