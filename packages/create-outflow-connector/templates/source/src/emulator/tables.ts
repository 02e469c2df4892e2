/**
 * The tables API of the emulator: `GET /v1/tables` lists tables and columns, and
 * `GET /v1/tables/:table/rows?limit=&after=` pages through a table's rows in primary key
 * order (`next` is the cursor of the following page, null on the last).
 * #if stream
 * `GET /v1/tables/:table/changes?after=&limit=&waitMs=` reads the change log after a
 * position, waiting up to `waitMs` for one. When retention passes, every position given
 * out so far is refused with 410 `cursor_expired`. `GET /v1/tables/:table/changes/head` is
 * the latest position: every change after it is kept until retention passes again.
 * #endif
 */
import { EventEmitter } from 'node:events';
import type { Row } from '@outflow/core';
import { jsonLinesLog, type EmulatorApp } from '@outflow/core/emulator-kit';
import { refusal } from './api.js';
// #if stream
import type { AppAnswer, AppRequest } from '@outflow/core/emulator-kit';
// #endif

export interface Column {
  name: string;
  type: 'integer' | 'string' | 'boolean' | 'number' | 'json';
  nullable: boolean;
}

export interface Table {
  name: string;
  primaryKey: string[];
  columns: Column[];
}

/** The tables the API has; a test or a sandbox user fills them through {@link Tables.apply}. */
const TABLES: Table[] = [
  {
    name: 'customers',
    primaryKey: ['id'],
    columns: [
      { name: 'id', type: 'integer', nullable: false },
      { name: 'email', type: 'string', nullable: false },
      { name: 'name', type: 'string', nullable: true },
    ],
  },
];

const MAX_PAGE = 1000;
// #if stream
const MAX_WAIT_MS = 10_000;
// #endif

/** One change of a table, as the change log gives it. */
export interface Change {
  /** `<retention epoch>-<sequence>`, zero-padded, so positions compare as strings. */
  position: string;
  op: 'insert' | 'update' | 'delete';
  /** The primary key values. */
  key: Row;
  /** The row after the change; absent for a delete. */
  row?: Row;
  committedAt: string;
}

type LogEntry = { t: 'change'; table: string; change: Change } | { t: 'expire' };

const keyText = (table: Table, row: Row) => JSON.stringify(table.primaryKey.map((k) => row[k]));
const POSITION = /^(\d{6})-(\d{20})$/;

export class Tables {
  private readonly rows = new Map<string, Map<string, Row>>(TABLES.map((t) => [t.name, new Map()]));
  private readonly log: { table: string; change: Change }[] = [];
  /** Bumped when retention passes: positions of an earlier epoch can no longer be resumed. */
  private epoch = 0;
  /** The sequence number of the latest change. */
  private head = 0;
  private readonly changed = new EventEmitter();

  constructor(private readonly logFile: string | undefined) {
    this.changed.setMaxListeners(0);
    if (logFile !== undefined) jsonLinesLog.replay<LogEntry>(logFile, '__name__', (entry) => this.commit(entry));
  }

  route(app: EmulatorApp): void {
    app.on('GET', '/v1/tables', () => ({ body: { tables: TABLES } }));
    app.on('GET', '/v1/tables/:table/rows', ({ params, query }) => {
      const table = TABLES.find((t) => t.name === params['table']);
      if (table === undefined) throw refusal(404, 'table_not_found', `there is no table "${params['table']}"`);
      const limit = Number(query.get('limit') ?? 100);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw refusal(400, 'invalid_request', `limit must be an integer from 1 to ${MAX_PAGE}`);
      const after = query.get('after');
      const keys = [...this.rows.get(table.name)!.keys()].sort();
      const from = after === null ? 0 : keys.findIndex((k) => k > Buffer.from(after, 'base64url').toString());
      const page = from < 0 ? [] : keys.slice(from, from + limit);
      const next = from >= 0 && from + limit < keys.length ? Buffer.from(page[page.length - 1]!).toString('base64url') : null;
      return { body: { rows: page.map((k) => this.rows.get(table.name)!.get(k)), next } };
    });
    // #if stream
    app.on('GET', '/v1/tables/:table/changes/head', () => ({ body: { position: this.position(this.head) } }));
    app.on('GET', '/v1/tables/:table/changes', (r) => this.changes(r));
    // #endif
  }

  /** Inserts, updates or deletes a row, as the vendor's users do; every change is logged. */
  apply(tableName: string, op: Change['op'], row: Row): void {
    const table = TABLES.find((t) => t.name === tableName);
    if (table === undefined) throw new Error(`there is no table "${tableName}"`);
    const key = Object.fromEntries(table.primaryKey.map((k) => [k, row[k] ?? null]));
    const entry: LogEntry = {
      t: 'change',
      table: table.name,
      change: { position: this.position(this.head + 1), op, key, ...(op === 'delete' ? {} : { row: { ...row } }), committedAt: new Date().toISOString() },
    };
    if (this.logFile !== undefined) jsonLinesLog.append(this.logFile, [entry]);
    this.commit(entry);
  }

  // #if stream
  /** Retention passes: the log so far is dropped, and no position given out so far can be resumed. */
  expire(): void {
    const entry: LogEntry = { t: 'expire' };
    if (this.logFile !== undefined) jsonLinesLog.append(this.logFile, [entry]);
    this.commit(entry);
  }

  private async changes({ req, params, query }: AppRequest): Promise<AppAnswer> {
    const tableName = params['table']!;
    if (!TABLES.some((t) => t.name === tableName)) throw refusal(404, 'table_not_found', `there is no table "${tableName}"`);
    const after = POSITION.exec(query.get('after') ?? '');
    const limit = Number(query.get('limit') ?? 100);
    const waitMs = Math.min(Number(query.get('waitMs') ?? 0), MAX_WAIT_MS);
    if (after === null) throw refusal(400, 'invalid_request', 'after must be a position from this API');
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw refusal(400, 'invalid_request', `limit must be an integer from 1 to ${MAX_PAGE}`);
    const read = () => {
      if (Number(after[1]) !== this.epoch) return undefined;
      return this.log.filter((e) => e.table === tableName && e.change.position > after[0]).slice(0, limit).map((e) => e.change);
    };
    let found = read();
    if (found !== undefined && found.length === 0 && waitMs > 0) {
      // A long poll: answer as soon as a change comes, or when the wait is over.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.changed.off('change', done);
          req.socket.off('close', done);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        this.changed.on('change', done);
        // The client hung up: stop waiting for it.
        req.socket.on('close', done);
      });
      found = read();
    }
    if (found === undefined) throw refusal(410, 'cursor_expired', `position ${query.get('after')} is older than the change log keeps`);
    return { body: { changes: found, head: this.position(this.head) } };
  }
  // #endif

  private position(sequence: number): string {
    return `${String(this.epoch).padStart(6, '0')}-${String(sequence).padStart(20, '0')}`;
  }

  /** Applies one logged entry to memory: live, and when replaying the log at start. */
  private commit(entry: LogEntry): void {
    if (entry.t === 'expire') {
      this.log.length = 0;
      this.epoch++;
      return;
    }
    const { table: name, change } = entry;
    const table = TABLES.find((t) => t.name === name)!;
    const rows = this.rows.get(name)!;
    if (change.op === 'delete') rows.delete(keyText(table, change.key));
    else rows.set(keyText(table, change.row!), change.row!);
    this.head = Number(POSITION.exec(change.position)![2]);
    this.log.push({ table: name, change });
    this.changed.emit('change');
  }
}
