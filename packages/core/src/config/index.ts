export * from './schema.js';
export * from './connectors.js';
export * from './load.js';
