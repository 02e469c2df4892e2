export type { Ledger, RowError, RunCounts, RunRecord, RunStatus } from './ledger.js';
export { SqliteLedger, openSqliteLedger } from './sqlite.js';
