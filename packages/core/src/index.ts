export * from './contracts.js';
export * from './errors.js';
export * from './redact.js';
export * from './schema.js';
export { createLogger, silentLogger, type Logger, type LoggerOptions } from './logger.js';
export const CORE_VERSION = '1.0.0';
