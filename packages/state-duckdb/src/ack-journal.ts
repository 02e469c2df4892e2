import { closeSync, copyFileSync, existsSync, fdatasync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, statSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** One ack as the journal keeps it: seq, key, kind, fingerprint, destination id, match JSON, position. */
export type JournalRow = [seq: string, key: string, kind: string, fp: string | null, destId: string | null, match: string | null, pos: string | null];

/** The journal files of a state file: written in turn, so one can be emptied while the other takes acks. */
export function journalFiles(stateFile: string): [string, string] {
  return [`${stateFile}.acks-0`, `${stateFile}.acks-1`];
}

function isRow(v: unknown): v is JournalRow {
  return Array.isArray(v) && v.length === 7 && typeof v[0] === 'string' && typeof v[1] === 'string' && typeof v[2] === 'string';
}

/** The length of a file's complete lines: up to and including its last newline. */
function completeLength(file: string): number {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const chunk = Buffer.alloc(64 * 1024);
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - chunk.length);
      const n = readSync(fd, chunk, 0, end - start, start);
      const at = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (at >= 0) return start + at + 1;
      end = start;
    }
    return 0;
  } finally {
    closeSync(fd);
  }
}

/**
 * The journal files an earlier process left, each with a file that holds their complete
 * lines only: a last line cut short (the process stopped while writing it, so its apply
 * never returned) is left out, by copying the lines before it into `scratchDir`. The journal
 * itself is not written.
 */
export function leftJournals(stateFile: string, scratchDir: string): { file: string; lines: string }[] {
  const out: { file: string; lines: string }[] = [];
  journalFiles(stateFile).forEach((file, i) => {
    if (!existsSync(file)) return;
    const complete = completeLength(file);
    if (complete === 0) return;
    if (complete === statSync(file).size) return out.push({ file, lines: file });
    const lines = join(scratchDir, `${basename(stateFile)}.acks-${i}.complete`);
    copyFileSync(file, lines);
    truncateSync(lines, complete);
    out.push({ file, lines });
  });
  return out;
}

/** Names the first line of a journal's complete lines that is not an ack (for an error), if one is not. */
export function journalDamage(file: string, lines: string): string | undefined {
  const text = readFileSync(lines, 'utf8').split('\n');
  text.pop();
  for (let i = 0; i < text.length; i++) {
    let row: unknown;
    try {
      row = JSON.parse(text[i]!);
    } catch {
      row = undefined;
    }
    if (!isRow(row)) return `the delivered-state journal ${file} is damaged at line ${i + 1}; restore the state folder from a backup, or remove the sync's state files to resync`;
  }
  return undefined;
}

/**
 * The write-ahead journal in front of a DuckDB delivered state: acks are appended to a file
 * and flushed to disk (fdatasync) — durable in well under a millisecond, where a DuckDB
 * commit takes a few — and moved into DuckDB in bulk before the state is next read. The flush
 * runs off the main thread, and appends made while one runs share the next (group commit).
 * Two
 * files take acks in turn: moving switches to the other one first, so acks keep coming
 * while the moved ones are written to DuckDB, and the old file is emptied only once they are
 * there. After a crash both files are read back ({@link leftJournals}); acks moved twice are
 * harmless, since applying the same acks again leaves the same state.
 */
export class AckJournal {
  private readonly files: [string, string];
  private readonly fds: [number, number];
  private active: 0 | 1 = 0;
  /** Acks written to the active file since it was last taken. */
  private pending = 0;
  /** Whether a flush is running. */
  private flushing = false;
  /** The flush after the running one: the files written since it began, and who waits on it. */
  private next: { fds: Set<number>; waiters: { resolve(): void; reject(err: unknown): void }[] } | undefined;

  constructor(stateFile: string) {
    this.files = journalFiles(stateFile);
    // Owner only, as the rest of the state folder: acks hold destination ids and match keys.
    this.fds = [openSync(this.files[0], 'a', 0o600), openSync(this.files[1], 'a', 0o600)];
    // The files' names are durable before anything is trusted to them.
    const dir = openSync(dirname(stateFile), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  /** Acks appended and not moved into DuckDB yet. */
  get size(): number {
    return this.pending;
  }

  /**
   * Appends rows, written to the file when it returns (a failure to write throws); the
   * promise resolves once they are durable, and rejects when the flush failed.
   */
  append(rows: JournalRow[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    let text = '';
    for (const r of rows) text += JSON.stringify(r) + '\n';
    const fd = this.fds[this.active];
    const buf = Buffer.from(text);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off);
    this.pending += rows.length;
    return new Promise((resolve, reject) => {
      this.next ??= { fds: new Set(), waiters: [] };
      this.next.fds.add(fd);
      this.next.waiters.push({ resolve, reject });
      if (!this.flushing) this.flush();
    });
  }

  /** Flushes the files written since the last flush began, then the next group, if any. */
  private flush(): void {
    const round = this.next;
    this.next = undefined;
    if (round === undefined) {
      this.flushing = false;
      return;
    }
    this.flushing = true;
    let left = round.fds.size;
    let failed: unknown;
    const done = () => {
      for (const w of round.waiters) {
        if (failed === undefined) w.resolve();
        else w.reject(failed);
      }
      this.flush();
    };
    if (left === 0) return done();
    for (const fd of round.fds) {
      fdatasync(fd, (err) => {
        if (err) failed ??= err;
        if (--left === 0) done();
      });
    }
  }

  /** Resolves once no flush runs (before the files are closed). */
  drained(): Promise<void> {
    if (!this.flushing) return Promise.resolve();
    return new Promise((resolve) => {
      this.next ??= { fds: new Set(), waiters: [] };
      this.next.waiters.push({ resolve, reject: () => resolve() });
    });
  }

  /**
   * Takes the file holding the pending acks — every line of it, each complete — for moving
   * into DuckDB, and sends later acks to the other file. Call {@link moved} once they are
   * durable there.
   */
  take(): { file: string; count: number } {
    const taken = { file: this.files[this.active], count: this.pending };
    this.pending = 0;
    this.active = this.active === 0 ? 1 : 0;
    return taken;
  }

  /**
   * The acks taken last are durable in DuckDB: their file is emptied, durably before the
   * promise resolves, so that no crash reads back acks older than what DuckDB folded since.
   */
  moved(): Promise<void> {
    const fd = this.fds[this.active === 0 ? 1 : 0];
    ftruncateSync(fd, 0);
    return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }

  /** Empties both files: every ack they held is durable in DuckDB (read back after a crash). */
  clear(): void {
    for (const fd of this.fds) {
      ftruncateSync(fd, 0);
      fdatasyncSync(fd);
    }
  }

  /** Closes the files; removes them when every ack is in DuckDB. */
  close(removeFiles: boolean): void {
    for (const fd of this.fds) {
      try {
        closeSync(fd);
      } catch {
        /* closed */
      }
    }
    if (!removeFiles) return;
    for (const f of this.files) {
      try {
        unlinkSync(f);
      } catch {
        /* gone */
      }
    }
  }
}
