export type { Ledger, LeaseGrant, LeaseHolder, RowError, RunCounts, RunRecord, RunStatus } from './ledger.js';
export { leaseLostError } from './lease-lost.js';
