export { PostgresLedger, openPostgresLedger, type PostgresLedgerOptions } from './postgres.js';
