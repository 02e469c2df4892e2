import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';

/**
 * Creates `dir` (and its missing parents) readable by its owner only, and narrows an
 * existing one to that: Outflow's state holds row data, delivered state and sandbox logs.
 */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/**
 * Creates `file` empty if it does not exist, readable and writable by its owner only, and
 * narrows an existing one to that. SQLite creates its journal files with the mode of the
 * database file, so a ledger made this way keeps them private too.
 */
export function makePrivateFile(file: string): void {
  closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
}
