export { SqliteLedger, openSqliteLedger } from './sqlite.js';
