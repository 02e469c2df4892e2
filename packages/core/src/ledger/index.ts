export type { Ledger, RowError, RunCounts, RunRecord, RunStatus } from './ledger.js';
