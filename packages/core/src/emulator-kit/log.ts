import { appendFileSync, mkdirSync, readFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { OutflowError } from '../errors.js';

/**
 * The append-only JSON-lines log emulators keep their state in (one line per applied
 * change), so a sandbox survives restarts. Appends are synchronous: a change is on disk
 * before the emulator answers for it.
 */
export const jsonLinesLog = {
  /** The log file `name` in `dataDir` (created if need be); undefined keeps state in memory. */
  fileIn(dataDir: string | undefined, name: string): string | undefined {
    if (dataDir === undefined) return undefined;
    mkdirSync(dataDir, { recursive: true });
    return join(dataDir, name);
  },

  append(file: string, entries: readonly unknown[]): void {
    if (entries.length) appendFileSync(file, entries.map((e) => JSON.stringify(e) + '\n').join(''));
  },

  /**
   * Replays every complete line of `file` in order (a missing file is an empty log). A last
   * line without its newline is a write cut short by a crash and never acknowledged: it is
   * dropped and cut off, so later appends start on a fresh line.
   */
  replay<T>(file: string, emulator: string, onEntry: (entry: T) => void): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new OutflowError('OUTFLOW_EMULATOR', `${emulator} emulator could not read ${file}: ${(err as Error).message}`, { cause: err });
    }
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    if (complete.length < text.length) truncateSync(file, Buffer.byteLength(complete));
    complete.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      let entry: T;
      try {
        entry = JSON.parse(line) as T;
      } catch (err) {
        throw new OutflowError('OUTFLOW_EMULATOR', `${emulator} emulator log ${file} line ${i + 1} is not valid JSON`, { cause: err });
      }
      onEntry(entry);
    });
  },
};

/**
 * An emulator's store changes as a list of entries, each applied to memory by `apply`: the
 * entries of `file` replayed at start, then each new one applied and appended (on disk before
 * the emulator answers for it). `entries` holds them all, oldest first: the write log tests
 * read back.
 */
export class ChangeLog<E> {
  readonly entries: E[] = [];

  constructor(
    private readonly file: string | undefined,
    emulator: string,
    private readonly apply: (entry: E) => void,
  ) {
    if (file !== undefined) jsonLinesLog.replay<E>(file, emulator, (entry) => this.take(entry));
  }

  /** Applies `entries` in order and appends them to the file. */
  add(...entries: E[]): void {
    for (const entry of entries) this.take(entry);
    if (this.file !== undefined) jsonLinesLog.append(this.file, entries);
  }

  private take(entry: E): void {
    this.apply(entry);
    this.entries.push(entry);
  }
}
