import { RecentMap } from '@outflow/core';
import type { JournalRow } from './ack-journal.js';

/** A key's delivered row as the ack log leaves it (absent: null). Fingerprints as decimal strings. */
export interface KeyRow {
  fp: string | null;
  destId: string | null;
  parkedFp: string | null;
  sentFp: string | null;
  /** The match of a write in doubt, as JSON. */
  sentMatch: string | null;
}

/** What a stream asks of a key: its delivered row and its latest settled position. */
export interface KeyState {
  row: KeyRow | null;
  pos: { pos: string; gone: boolean } | null;
}

/**
 * The delivered state of the keys a stream touched lately, kept in step with every ack this
 * process records, so each change batch does not read the state back from DuckDB. Acks
 * change a row as the ack log's fold does (`MERGED` in sql-diff.ts): a delivery sets the
 * fingerprint, clears a parked version and a write in doubt, and keeps the destination id
 * unless it brings one; a refusal parks its version; a send puts the write in doubt; a
 * delete or forget removes the row. At least the last `max` keys set are held, older ones
 * are dropped; a key not held is read from DuckDB again.
 */
export class KeyStates {
  private readonly states: RecentMap<string, KeyState>;

  constructor(max = 100_000) {
    this.states = new RecentMap(max);
  }

  get(key: string): KeyState | undefined {
    return this.states.get(key);
  }

  /** Holds a key's state as read from DuckDB (or known absent). */
  set(key: string, state: KeyState): void {
    this.states.set(key, state);
  }

  /** Applies one ack to a key held; `absent`: the key is known to be nowhere in the state yet. */
  apply(r: JournalRow, absent = false): void {
    const key = r[1];
    let s = this.states.get(key);
    if (s === undefined) {
      if (!absent) return;
      s = { row: null, pos: null };
      this.set(key, s);
    }
    const [, , kind, fp, destId, match, pos] = r;
    if (pos !== null) s.pos = { pos, gone: kind === 'deleted' || kind === 'forget' };
    const row = s.row ?? { fp: null, destId: null, parkedFp: null, sentFp: null, sentMatch: null };
    switch (kind) {
      case 'sent':
        s.row = { ...row, sentFp: fp, sentMatch: match };
        break;
      case 'delivered':
        s.row = { fp, destId: destId ?? row.destId, parkedFp: null, sentFp: null, sentMatch: null };
        break;
      case 'parked':
        s.row = { ...row, parkedFp: fp };
        break;
      default:
        // deleted, forget
        s.row = null;
    }
  }

  /** Forgets every key (the state was changed other than by acks). */
  clear(): void {
    this.states.clear();
  }
}
