import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBType } from '@duckdb/node-api';
import type { Expr, FromItem, Query, Statement, TimeTravel } from './ast.js';
import { DuckPrinter, type PrintHooks } from './duckdb.js';
import { DATA_TYPE_SQL, encodeCell, isNested, snowflakeType, type RowType } from './encode.js';
import { SnowflakeError, compilation, syntaxError, unsupported } from './errors.js';
import { MACROS, snowflakeTypeName } from './functions.js';
import { Parser } from './parser.js';
import { SqlSyntaxError, callArgs, identName, literal, quote, render, significant, splitStatements, tokenize, unquoteString, type Token } from './sql.js';

export { SnowflakeError, unsupported };

/** A bind as snowflake-sdk sends it. */
export interface Bind {
  type: string;
  value: unknown;
}

export interface QueryResult {
  rowtype: RowType[];
  rows: (string | null)[][];
  statementTypeId: number;
}

export interface SessionInit {
  user: string;
  database?: string | undefined;
  schema?: string | undefined;
  warehouse?: string | undefined;
  role?: string | undefined;
}

/** One SQL session: its own DuckDB connection and transaction. */
export interface EngineSession {
  conn: DuckDBConnection;
  user: string;
  database: string | null;
  schema: string | null;
  warehouse: string | null;
  role: string | null;
  inTx: boolean;
  /** The change version this session's open transaction reads streams at. */
  txVersion: number;
  /** Offsets to move when the open transaction commits (stream → version). */
  pendingOffsets: Map<string, number>;
}

interface Tracked {
  id: number;
  /** Fully qualified, e.g. DB.SCHEMA.T */
  table: string;
  columns: string[];
  rid: string;
  /** The version change capture started at: time travel reaches back to it, no further. */
  since: number;
  broken?: string;
}

interface StreamDef {
  name: string;
  database: string;
  schema: string;
  table: string;
  sourceType: 'Table' | 'Dynamic Table';
  mode: 'DEFAULT' | 'APPEND_ONLY';
  offset: number;
  /** SHOW_INITIAL_ROWS = TRUE and not consumed yet: the rows at creation come first, as inserts. */
  initial: boolean;
  /** The table holding the rows at creation (SHOW_INITIAL_ROWS). */
  initialRows: string | null;
  /** When the offset last moved or was confirmed empty: staleness counts from it. */
  offsetTime: number;
  createdOn: number;
  stale: boolean;
  invalidReason: string | null;
  comment: string | null;
}

interface DynamicDef {
  table: string;
  database: string;
  schema: string;
  query: string;
  /** The statement as written (SHOW DYNAMIC TABLES' text). */
  text: string;
  createdOn: number;
  lagMs: number | null;
  warehouse: string;
  lastRefresh: number;
}

const TYPE_SELECT = 0x1000;
const TYPE_INSERT = 0x3100;
const TYPE_UPDATE = 0x3200;
const TYPE_DELETE = 0x3300;
const TYPE_MERGE = 0x3400;
const TYPE_DDL = 0x6000;
const TYPE_TX = 0x5000;
const TYPE_OTHER = 0x4000;

const HIDDEN = '__EMU';

/** Snowflake commands the emulator knows exist but does not implement. */
const KNOWN_COMMANDS = new Set(['COPY', 'PUT', 'GET', 'GRANT', 'REVOKE', 'CALL', 'EXECUTE', 'UNDROP', 'LIST', 'LS', 'REMOVE', 'RM', 'EXPLAIN', 'UNSET', 'SET', 'COMMENT', 'REMOVE']);
const DAY = 86_400_000;

/** Run in every DuckDB connection: Snowflake's session time zone and the function macros. */
const SESSION_SETUP = [`SET TimeZone = 'UTC'`, ...MACROS];


function splitName(text: string): string[] {
  const tokens = significant(tokenize(text)).filter((t) => t.text !== '.');
  return tokens.map(identName);
}

function likeToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replaceAll('%', '.*').replaceAll('_', '.');
  return new RegExp(`^${body}$`, 'i');
}

function parseLag(text: string): number | null {
  if (text.toUpperCase() === 'DOWNSTREAM') return null;
  const m = /^\s*(\d+)\s*(second|seconds|minute|minutes|hour|hours|day|days)\s*$/i.exec(text);
  if (!m) throw new SnowflakeError('001003', '42000', `SQL compilation error:\ninvalid value '${text}' for property 'TARGET_LAG'`);
  const unit = m[2]!.toLowerCase().replace(/s$/, '');
  const ms = Number(m[1]) * ({ second: 1000, minute: 60_000, hour: 3_600_000, day: DAY } as Record<string, number>)[unit]!;
  if (ms < 60_000) {
    throw new SnowflakeError('001003', '42000', `SQL compilation error:\ninvalid value '${text}' for property 'TARGET_LAG': the minimum target lag is 1 minute`);
  }
  return ms;
}

/** Maps a DuckDB error to a Snowflake-shaped one. */
function fromDuckDB(err: unknown): SnowflakeError {
  if (err instanceof SnowflakeError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (/^Catalog Error/.test(msg)) {
    const m = /with name "?([^"\s!]+)"? does not exist/.exec(msg);
    return compilation(m ? `Object '${m[1]}' does not exist or not authorized.` : msg.replace(/^Catalog Error:\s*/, ''));
  }
  if (/^Binder Error/.test(msg)) {
    const m = /column "([^"]+)" not found|Referenced column "([^"]+)" not found/.exec(msg);
    return new SnowflakeError('000904', '42000', `SQL compilation error: error line 0 at position 0\ninvalid identifier '${m?.[1] ?? m?.[2] ?? msg.replace(/^Binder Error:\s*/, '')}'`);
  }
  if (/^Parser Error/.test(msg)) return new SnowflakeError('001003', '42000', `SQL compilation error:\nsyntax error: ${msg.replace(/^Parser Error:\s*/, '')}`);
  if (/^Constraint Error/.test(msg)) return new SnowflakeError('100072', '22000', msg.replace(/^Constraint Error:\s*/, ''));
  if (/^Conversion Error/.test(msg)) return new SnowflakeError('100038', '22018', msg.replace(/^Conversion Error:\s*/, ''));
  if (/^TransactionContext Error|Transaction conflict/.test(msg)) return new SnowflakeError('000625', '57014', `Statement reached its statement or warehouse timeout / conflict: ${msg}`);
  return new SnowflakeError('100090', '42000', msg);
}

/** Snowflake's status line for a DDL statement. */
function ddlStatus(st: Statement): string {
  const last = (parts: { name: string }[]) => parts[parts.length - 1]!.name;
  switch (st.k) {
    case 'createTable':
      return `Table ${last(st.name)} successfully created.`;
    case 'createView':
      return `View ${last(st.name)} successfully created.`;
    case 'createSchema':
      return `Schema ${last(st.name)} successfully created.`;
    case 'drop':
      return `${last(st.name)} successfully dropped.`;
    default:
      return 'Statement executed successfully.';
  }
}

/** The literal SQL of one bind value. */
function bindLiteral(b: Bind | undefined, marker: string): string {
  if (b === undefined) throw new SnowflakeError('002049', '42601', `SQL compilation error: Bind variable ${marker} not set.`);
  const v = b.value;
  if (v === null || v === undefined) return 'NULL';
  const type = String(b.type).toUpperCase();
  if (Array.isArray(v)) throw unsupported('array binding in this position');
  const s = String(v);
  switch (type) {
    case 'FIXED':
    case 'REAL':
      if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new SnowflakeError('100038', '22018', `Numeric value '${s}' is not recognized`);
      return s;
    case 'BOOLEAN':
      return /^(true|1)$/i.test(s) ? 'TRUE' : 'FALSE';
    case 'DATE':
      return `CAST(to_timestamp(${Number(s) / 1000}) AS DATE)`;
    case 'TIMESTAMP_LTZ':
    case 'TIMESTAMP_TZ':
    case 'TIMESTAMP_NTZ':
      return /^\d+$/.test(s) ? `CAST(make_timestamp(${BigInt(s) / 1000n}) AS TIMESTAMP)` : `CAST(${literal(s)} AS TIMESTAMP)`;
    default:
      return literal(s);
  }
}

/**
 * The SQL engine behind the emulator: DuckDB with Snowflake's names, per-session
 * transactions, change tracking for streams, and dynamic tables. Statements run one at a
 * time (a global lock), so change capture always sees a consistent, committed state.
 */
export class Engine {
  version = 0;
  retentionMs = 14 * DAY;
  private readonly versionTimes = new Map<number, number>();
  private readonly tracked = new Map<string, Tracked>();
  private readonly streams = new Map<string, StreamDef>();
  private readonly dynamic = new Map<string, DynamicDef>();
  private readonly databases = new Set<string>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly startedAt = Date.now();
  /** View definitions as written (SHOW VIEWS' text), by qualified name. */
  private readonly viewText = new Map<string, string>();
  private nextId = 1;
  private timer: NodeJS.Timeout | null = null;

  private hookSession: Promise<EngineSession> | undefined;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly sys: DuckDBConnection,
    private readonly dataDir: string | undefined,
    private readonly defaults: { database: string; schema: string },
  ) {}

  static async create(options: { dataDir?: string | undefined; database: string; schema: string }): Promise<Engine> {
    const instance = await DuckDBInstance.create(':memory:');
    const sys = await instance.connect();
    if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
    const engine = new Engine(instance, sys, options.dataDir, { database: options.database, schema: options.schema });
    // Row ids identify rows of tables without a key for streams: no automatic checkpoint may renumber them.
    await sys.run(`SET checkpoint_threshold = '1000GB'`);
    await sys.run(`ATTACH ':memory:' AS ${quote(HIDDEN)}`);
    for (const m of SESSION_SETUP) await sys.run(m);
    await engine.createDatabase(options.database);
    await sys.run(`CREATE SCHEMA IF NOT EXISTS ${quote(options.database)}.${quote(options.schema)}`);
    engine.timer = setInterval(() => void engine.refreshDue().catch(() => undefined), 250);
    engine.timer.unref();
    return engine;
  }

  /** Runs `fn` while no other statement runs. */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.chain;
    if (this.hookSession) (await this.hookSession).conn.closeSync();
    this.sys.closeSync();
    this.instance.closeSync();
  }

  private async createDatabase(name: string): Promise<void> {
    if (this.databases.has(name)) return;
    const file = this.dataDir ? join(this.dataDir, `${name.replace(/[^A-Za-z0-9_]/g, '_')}.duckdb`) : ':memory:';
    await this.sys.run(`ATTACH ${literal(file)} AS ${quote(name)}`);
    await this.sys.run(`CREATE SCHEMA IF NOT EXISTS ${quote(name)}.PUBLIC`);
    this.databases.add(name);
  }

  async openSession(init: SessionInit): Promise<EngineSession> {
    const conn = await this.instance.connect();
    for (const m of SESSION_SETUP) await conn.run(m);
    const s: EngineSession = {
      conn,
      user: init.user,
      database: null,
      schema: null,
      warehouse: init.warehouse ? splitName(init.warehouse)[0]! : null,
      role: init.role ? splitName(init.role)[0]! : 'PUBLIC',
      inTx: false,
      txVersion: 0,
      pendingOffsets: new Map(),
    };
    const db = init.database ? splitName(init.database)[0] : undefined;
    if (db && this.databases.has(db)) {
      s.database = db;
      const schema = init.schema ? splitName(init.schema)[0]! : 'PUBLIC';
      const exists = await this.schemaExists(db, schema);
      s.schema = exists ? schema : null;
      await conn.run(`USE ${quote(db)}.${quote(exists ? schema : 'PUBLIC')}`);
    }
    return s;
  }

  async closeSession(s: EngineSession): Promise<void> {
    await this.locked(async () => {
      if (s.inTx) await s.conn.run('ROLLBACK').catch(() => undefined);
      s.conn.closeSync();
    });
  }

  private async schemaExists(db: string, schema: string): Promise<boolean> {
    const r = await this.sys.runAndReadAll(`SELECT 1 FROM duckdb_schemas() WHERE database_name = $1 AND schema_name = $2`, [db, schema]);
    return r.getRows().length > 0;
  }

  /** Resolves a possibly partial name against the session's database and schema. */
  private resolve(parts: string[], s: EngineSession): { database: string; schema: string; name: string; fq: string } {
    let database: string | null;
    let schema: string | null;
    let name: string;
    if (parts.length >= 3) [database, schema, name] = parts.slice(-3) as [string, string, string];
    else if (parts.length === 2) [database, schema, name] = [s.database, parts[0]!, parts[1]!];
    else [database, schema, name] = [s.database, s.schema, parts[0]!];
    if (!database) throw new SnowflakeError('090105', '22000', 'Cannot perform operation. This session does not have a current database. Call \'USE DATABASE\', or use a qualified name.');
    if (!schema) throw new SnowflakeError('090106', '22000', 'Cannot perform operation. This session does not have a current schema. Call \'USE SCHEMA\', or use a qualified name.');
    return { database, schema, name, fq: `${database}.${schema}.${name}` };
  }

  private sqlName(r: { database: string; schema: string; name: string }): string {
    return `${quote(r.database)}.${quote(r.schema)}.${quote(r.name)}`;
  }

  // -------------------------------------------------------------------------------------
  // Statements
  // -------------------------------------------------------------------------------------

  /** Executes one statement of a session. */
  async execute(s: EngineSession, sqlText: string, binds: Record<string, Bind> | undefined): Promise<QueryResult> {
    let statements: Token[][];
    try {
      statements = splitStatements(tokenize(sqlText));
    } catch (err) {
      if (err instanceof SqlSyntaxError) throw new SnowflakeError('001003', '42000', `SQL compilation error:\nsyntax error: ${err.message}`);
      throw err;
    }
    if (statements.length !== 1) {
      throw new SnowflakeError('000008', '0A000', `Actual statement count ${statements.length} did not match the desired statement count 1.`);
    }
    const tokens = statements[0]!;
    const sig = significant(tokens);
    // SYSTEM$WAIT sleeps outside the lock, so a long query does not stall other sessions.
    const waitAt = sig.findIndex((t) => t.kind === 'word' && t.text.toUpperCase() === 'SYSTEM$WAIT');
    if (waitAt >= 0 && sig[waitAt + 1]?.text === '(') {
      const { args } = callArgs(sig, waitAt + 1);
      const amount = Number(args[0] ?? 0);
      const unit = args[1] ? unquoteString(args[1]).toUpperCase() : 'SECONDS';
      await new Promise((r) => setTimeout(r, amount * (unit.startsWith('MILLI') ? 1 : unit.startsWith('MIN') ? 60_000 : 1000)));
    }
    const positional = binds ? Object.keys(binds).sort((a, b) => Number(a) - Number(b)).map((k) => binds[k]!) : [];
    const arrayBind = positional.find((b) => Array.isArray(b.value));
    if (arrayBind) {
      const rows = (arrayBind.value as unknown[]).length;
      let total = 0;
      let last: QueryResult | undefined;
      for (let r = 0; r < rows; r++) {
        const one = positional.map((b) => ({ type: b.type, value: Array.isArray(b.value) ? b.value[r] : b.value }));
        last = await this.locked(() => this.run(s, tokens, one));
        total += Number(last.rows[0]?.[0] ?? 0);
      }
      return last ? { ...last, rows: [[String(total)]] } : this.status('0 rows', TYPE_INSERT);
    }
    return this.locked(() => this.run(s, tokens, positional));
  }

  private async run(s: EngineSession, tokens: Token[], binds: Bind[]): Promise<QueryResult> {
    await this.prepareHasData(s, tokens);
    return this.dispatch(s, tokens, binds);
  }

  private status(message: string, statementTypeId = TYPE_DDL): QueryResult {
    return {
      rowtype: [{ name: 'status', database: '', schema: '', table: '', type: 'text', scale: null, precision: null, length: 16_777_216, byteLength: 16_777_216, nullable: true, collation: null }],
      rows: [[message]],
      statementTypeId,
    };
  }

  private async dispatch(s: EngineSession, tokens: Token[], binds: Bind[]): Promise<QueryResult> {
    const sig = significant(tokens);
    const w = sig.map((t) => (t.kind === 'word' ? t.text.toUpperCase() : t.text));
    const starts = (...words: string[]) => words.every((x, i) => w[i] === x);

    if (starts('BEGIN') || starts('START', 'TRANSACTION')) {
      if (!s.inTx) {
        await s.conn.run('BEGIN TRANSACTION');
        s.inTx = true;
        s.txVersion = this.version;
        s.pendingOffsets.clear();
      }
      return this.status('Statement executed successfully.', TYPE_TX);
    }
    if (starts('COMMIT')) {
      await this.commit(s);
      return this.status('Statement executed successfully.', TYPE_TX);
    }
    if (starts('ROLLBACK') || starts('ABORT')) {
      if (s.inTx) {
        await s.conn.run('ROLLBACK').catch(() => undefined);
        s.inTx = false;
        s.pendingOffsets.clear();
      }
      return this.status('Statement executed successfully.', TYPE_TX);
    }
    if (starts('ALTER', 'SESSION')) return this.status('Statement executed successfully.', TYPE_OTHER);
    if (starts('USE')) return this.use(s, sig);
    if (starts('SHOW')) return this.show(s, sig, w);
    if (starts('DESCRIBE') || starts('DESC')) return this.describe(s, sig, w);

    const ddl = ['CREATE', 'DROP', 'ALTER', 'TRUNCATE', 'UNDROP'].includes(w[0]!);
    // Snowflake commits an open transaction before any DDL statement.
    if (ddl && s.inTx) await this.commit(s);

    if (starts('CREATE')) {
      let i = 1;
      const orReplace = w[1] === 'OR' && w[2] === 'REPLACE';
      if (orReplace) i = 3;
      if (w[i] === 'STREAM') return this.createStream(s, sig, w, i + 1, orReplace);
      if (w[i] === 'DYNAMIC' && w[i + 1] === 'TABLE') return this.createDynamic(s, tokens, sig, w, i + 2, orReplace);
      if (w[i] === 'DATABASE') {
        const ifNot = w[i + 1] === 'IF';
        const name = identName(sig[ifNot ? i + 4 : i + 1]!);
        if (this.databases.has(name) && !ifNot && !orReplace) throw new SnowflakeError('002002', '42710', `SQL compilation error:\nObject '${name}' already exists.`);
        await this.createDatabase(name);
        return this.status(`Database ${name} successfully created.`);
      }
    } else if (starts('DROP')) {
      if (w[1] === 'STREAM') return this.dropStream(s, sig, w);
      if (w[1] === 'DYNAMIC' && w[2] === 'TABLE') return this.dropDynamic(s, sig, w);
    } else if (starts('ALTER')) {
      if (w[1] === 'DYNAMIC' && w[2] === 'TABLE') return this.alterDynamic(s, sig, w);
    } else if (KNOWN_COMMANDS.has(w[0]!)) {
      throw unsupported(`the statement ${w.slice(0, 2).join(' ')}`);
    }
    const statement = new Parser(render(tokens), tokens).statement();
    return this.passthrough(s, statement, binds);
  }

  private async commit(s: EngineSession): Promise<void> {
    if (!s.inTx) return;
    try {
      await s.conn.run('COMMIT');
    } catch (err) {
      s.inTx = false;
      s.pendingOffsets.clear();
      await s.conn.run('ROLLBACK').catch(() => undefined);
      throw fromDuckDB(err);
    }
    s.inTx = false;
    for (const [name, version] of s.pendingOffsets) {
      const st = this.streams.get(name);
      if (st) this.advance(st, version);
    }
    s.pendingOffsets.clear();
    await this.capture();
  }

  private async use(s: EngineSession, sig: Token[]): Promise<QueryResult> {
    const kind = sig[1]?.kind === 'word' ? sig[1].text.toUpperCase() : '';
    const rest = ['WAREHOUSE', 'ROLE', 'DATABASE', 'SCHEMA'].includes(kind) ? sig.slice(2) : sig.slice(1);
    const parts = rest.filter((t) => t.text !== '.').map(identName);
    if (kind === 'WAREHOUSE') s.warehouse = parts[0] ?? null;
    else if (kind === 'ROLE') s.role = parts[0] ?? null;
    else if (kind === 'SCHEMA' || (kind !== 'DATABASE' && parts.length === 2)) {
      const db = parts.length === 2 ? parts[0]! : s.database;
      const schema = parts[parts.length - 1]!;
      if (!db || !(await this.schemaExists(db, schema))) throw compilation(`Object does not exist, or operation cannot be performed.`);
      await s.conn.run(`USE ${quote(db)}.${quote(schema)}`);
      s.database = db;
      s.schema = schema;
    } else {
      const db = parts[0]!;
      if (!this.databases.has(db)) throw compilation(`Object does not exist, or operation cannot be performed.`);
      await s.conn.run(`USE ${quote(db)}.PUBLIC`);
      s.database = db;
      s.schema = 'PUBLIC';
    }
    return this.status('Statement executed successfully.', TYPE_OTHER);
  }

  /** A printer whose hooks resolve streams, INFORMATION_SCHEMA, time travel and session functions for `s`. */
  private printer(s: EngineSession, binds: Bind[], at: number, readStreams: Set<string>): DuckPrinter {
    const hooks: PrintHooks = {
      bind: (i, marker) => bindLiteral(binds[i], marker),
      relation: (ref) => this.relation(s, ref, at, readStreams),
      systemFunction: (name, args) => this.systemFunction(s, name, args),
      sessionFunction: (name) => this.sessionFunction(s, name),
    };
    return new DuckPrinter(hooks);
  }

  /** Prints and runs a parsed statement on the session's DuckDB connection. */
  private async passthrough(s: EngineSession, st: Statement, binds: Bind[]): Promise<QueryResult> {
    const readStreams = new Set<string>();
    const at = s.inTx ? s.txVersion : this.version;
    const sql = this.printer(s, binds, at, readStreams).statement(st);
    if (readStreams.size > 0 && st.k === 'createView') throw unsupported('views over streams');
    const statementTypeId = {
      query: TYPE_SELECT,
      insert: TYPE_INSERT,
      update: TYPE_UPDATE,
      delete: TYPE_DELETE,
      merge: TYPE_MERGE,
    }[st.k as string] ?? TYPE_DDL;

    let result: QueryResult;
    try {
      if (st.k === 'truncate' && st.ifExists && (await this.relationKind(this.resolve(st.name.map((p) => p.name), s))) === null) {
        return this.status('Statement executed successfully.');
      }
      let last: Awaited<ReturnType<DuckDBConnection['run']>> | undefined;
      for (const one of sql) last = await s.conn.run(one);
      if (statementTypeId === TYPE_SELECT) {
        result = await this.read(last!);
      } else if (statementTypeId === TYPE_DDL) {
        result = this.status(ddlStatus(st));
      } else {
        const name = statementTypeId === TYPE_INSERT ? 'number of rows inserted' : statementTypeId === TYPE_DELETE ? 'number of rows deleted' : 'number of rows updated';
        result = {
          rowtype: [{ name, database: '', schema: '', table: '', type: 'fixed', scale: 0, precision: 19, length: null, byteLength: null, nullable: false, collation: null }],
          rows: [[String(last!.rowsChanged)]],
          statementTypeId,
        };
      }
    } catch (err) {
      throw fromDuckDB(err);
    }
    if (statementTypeId !== TYPE_SELECT) {
      if (readStreams.size > 0) {
        for (const name of readStreams) {
          if (s.inTx) s.pendingOffsets.set(name, at);
          else this.advance(this.streams.get(name)!, at);
        }
      }
      if (!s.inTx) await this.capture();
      if (st.k === 'createView') {
        const r = this.resolve(st.name.map((p) => p.name), s);
        this.viewText.set(r.fq, st.text);
      }
      if (st.k === 'alterTable' && st.action.k === 'setChangeTracking' && st.action.on) {
        const r = this.resolve(st.name.map((p) => p.name), s);
        if ((await this.relationKind(r)) === null) throw compilation(`Table '${r.fq}' does not exist or not authorized.`);
        await this.track(r.fq, this.sqlName(r));
      }
      if (st.k === 'drop' || (st.k === 'createTable' && st.orReplace) || (st.k === 'alterTable' && st.action.k !== 'setChangeTracking')) {
        await this.capture();
        this.forgetDropped();
      }
    }
    return result;
  }

  /** Moves a stream's offset (a consuming DML committed). */
  private advance(st: StreamDef, version: number): void {
    if (st.stale) return;
    if (version > st.offset || st.initial) {
      st.offset = Math.max(st.offset, version);
      st.initial = false;
    }
    st.offsetTime = Date.now();
  }

  /** Reads a DuckDB result into Snowflake's row type and encoded rows. */
  private async read(r: Awaited<ReturnType<DuckDBConnection['run']>>): Promise<QueryResult> {
    const names = r.columnNames();
    const types = r.columnTypes();
    const rows = await r.getRows();
    const nested = types.some(isNested);
    const json = nested ? await r.getRowsJson() : null;
    const rowtype = names.map((name, c) => {
      const t = snowflakeType(types[c]!);
      const text = t.type === 'text' || t.type === 'variant';
      return {
        name,
        database: '',
        schema: '',
        table: '',
        type: t.type,
        scale: t.scale,
        precision: t.precision,
        length: text ? 16_777_216 : null,
        byteLength: text ? 16_777_216 : null,
        nullable: true,
        collation: null,
      } satisfies RowType;
    });
    const out: (string | null)[][] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const enc: (string | null)[] = new Array(row.length);
      for (let c = 0; c < row.length; c++) enc[c] = encodeCell(row[c]!, types[c] as DuckDBType, json?.[i]?.[c]);
      out[i] = enc;
    }
    return { rowtype, rows: out, statementTypeId: TYPE_SELECT };
  }

  private sessionFunction(s: EngineSession, name: string): string | undefined {
    const lit = (v: string | null) => (v === null ? 'CAST(NULL AS VARCHAR)' : literal(v));
    switch (name) {
      case 'CURRENT_USER':
        return lit(s.user);
      case 'CURRENT_ROLE':
        return lit(s.role);
      case 'CURRENT_WAREHOUSE':
        return lit(s.warehouse);
      case 'CURRENT_DATABASE':
        return lit(s.database);
      case 'CURRENT_SCHEMA':
        return lit(s.schema);
      case 'CURRENT_ACCOUNT':
        return lit('OUTFLOW');
      case 'CURRENT_REGION':
        return lit('OUTFLOW_EMULATOR');
      default:
        return undefined;
    }
  }

  private systemFunction(s: EngineSession, name: string, args: Expr[]): string {
    if (name === 'SYSTEM$WAIT') {
      const unit = args[1]?.k === 'str' ? args[1].v.toLowerCase() : 'seconds';
      return literal(`waited ${args[0]?.k === 'num' ? args[0].v : 0} ${unit}`);
    }
    if (name === 'SYSTEM$STREAM_HAS_DATA') {
      const arg = args[0];
      if (arg?.k !== 'str') throw new SnowflakeError('001044', '42P13', 'SQL compilation error:\nSYSTEM$STREAM_HAS_DATA takes the stream name as a string literal');
      const st = this.findStream(s, splitName(arg.v));
      this.assertFresh(st);
      // Computed synchronously by the caller: see hasDataCache.
      const has = this.hasDataCache.get(st.name);
      if (has === undefined) throw new Error('internal: stream data not precomputed');
      if (!has) st.offsetTime = Date.now();
      return has ? 'TRUE' : 'FALSE';
    }
    if (name === 'SYSTEM$TYPEOF') throw unsupported(name);
    throw new SnowflakeError('002140', '42601', `SQL compilation error:\nUnknown function ${name}`);
  }

  private readonly hasDataCache = new Map<string, boolean>();

  private findStream(s: EngineSession, parts: string[]): StreamDef {
    const r = this.resolve(parts, s);
    const st = this.streams.get(r.fq);
    if (!st) throw compilation(`Stream '${r.fq}' does not exist or not authorized.`);
    return st;
  }

  private isStale(st: StreamDef): boolean {
    if (!st.stale && Date.now() - st.offsetTime > this.retentionMs) st.stale = true;
    return st.stale;
  }

  private assertFresh(st: StreamDef): void {
    if (this.isStale(st)) {
      throw new SnowflakeError(
        '091901',
        '55000',
        `Stream ${st.name} has become stale: its offset is outside the data retention period of ${st.table}${st.invalidReason ? ` (${st.invalidReason})` : ''}. Recreate the stream to read from it again.`,
      );
    }
  }

  /** Replaces a relation that names a stream or an INFORMATION_SCHEMA view, or reads a table at a point in time. */
  private relation(s: EngineSession, ref: Extract<FromItem, { k: 'table' }>, at: number, readStreams: Set<string>): string | undefined {
    const parts = ref.name.map((p) => p.name);
    if (ref.changes) throw unsupported('CHANGES (use a stream)');
    if (parts.length >= 2 && parts[parts.length - 2] === 'INFORMATION_SCHEMA') {
      if (ref.at) throw unsupported('time travel on INFORMATION_SCHEMA');
      const db = parts.length === 3 ? parts[0]! : s.database;
      if (!db) throw new SnowflakeError('090105', '22000', 'Cannot perform SELECT. This session does not have a current database.');
      return this.informationSchema(db, parts[parts.length - 1]!);
    }
    let r;
    try {
      r = this.resolve(parts, s);
    } catch (err) {
      if (ref.at) throw err;
      return undefined;
    }
    const st = this.streams.get(r.fq);
    if (st) {
      if (ref.at) throw unsupported('time travel on a stream');
      this.assertFresh(st);
      readStreams.add(st.name);
      return this.netChangeSql(st, at);
    }
    if (ref.at) return this.timeTravelSql(s, r.fq, ref.at);
    return undefined;
  }

  private informationSchema(db: string, view: string): string {
    const dynamic = [...this.dynamic.values()].filter((d) => d.database === db).map((d) => `(${literal(d.schema)}, ${literal(d.table.split('.')[2]!)})`);
    const isDynamic = dynamic.length ? `CASE WHEN (schema_name, table_name) IN (${dynamic.join(', ')}) THEN 'YES' ELSE 'NO' END` : `'NO'`;
    const hidden = `schema_name NOT IN ('information_schema', 'pg_catalog')`;
    switch (view) {
      case 'TABLES':
        return `SELECT database_name AS TABLE_CATALOG, schema_name AS TABLE_SCHEMA, table_name AS TABLE_NAME,
            CASE WHEN temporary THEN 'TEMPORARY TABLE' ELSE 'BASE TABLE' END AS TABLE_TYPE, ${isDynamic} AS IS_DYNAMIC,
            CAST(estimated_size AS BIGINT) AS ROW_COUNT, comment AS COMMENT
          FROM duckdb_tables() WHERE database_name = ${literal(db)} AND ${hidden}
          UNION ALL
          SELECT database_name, schema_name, view_name, 'VIEW', 'NO', NULL, comment
          FROM duckdb_views() WHERE database_name = ${literal(db)} AND NOT internal AND ${hidden}`;
      case 'COLUMNS':
        return `SELECT database_name AS TABLE_CATALOG, schema_name AS TABLE_SCHEMA, table_name AS TABLE_NAME,
            column_name AS COLUMN_NAME, CAST(column_index AS BIGINT) AS ORDINAL_POSITION, column_default AS COLUMN_DEFAULT,
            CASE WHEN is_nullable THEN 'YES' ELSE 'NO' END AS IS_NULLABLE, ${DATA_TYPE_SQL} AS DATA_TYPE,
            CASE WHEN data_type = 'VARCHAR' THEN 16777216 END AS CHARACTER_MAXIMUM_LENGTH,
            CASE WHEN ${DATA_TYPE_SQL} = 'NUMBER' THEN coalesce(numeric_precision, 38) END AS NUMERIC_PRECISION,
            CASE WHEN ${DATA_TYPE_SQL} = 'NUMBER' THEN coalesce(numeric_scale, 0) END AS NUMERIC_SCALE,
            comment AS COMMENT
          FROM duckdb_columns() WHERE database_name = ${literal(db)} AND ${hidden}`;
      case 'SCHEMATA':
        return `SELECT database_name AS CATALOG_NAME, schema_name AS SCHEMA_NAME FROM duckdb_schemas() WHERE database_name = ${literal(db)} AND ${hidden}`;
      default:
        throw unsupported(`INFORMATION_SCHEMA.${view}`);
    }
  }

  // -------------------------------------------------------------------------------------
  // SHOW
  // -------------------------------------------------------------------------------------

  private async show(s: EngineSession, sig: Token[], w: string[]): Promise<QueryResult> {
    let i = 1;
    if (w[i] === 'TERSE') i++;
    const what = w[i] === 'PRIMARY' && w[i + 1] === 'KEYS' ? 'PRIMARY KEYS' : w[i] === 'DYNAMIC' && w[i + 1] === 'TABLES' ? 'DYNAMIC TABLES' : w[i];
    i += what?.includes(' ') ? 2 : 1;
    let like: RegExp | null = null;
    if (w[i] === 'LIKE') {
      like = likeToRegExp(unquoteString(sig[i + 1]!.text));
      i += 2;
    }
    let scope: { database?: string; schema?: string; table?: string } = {};
    if (w[i] === 'IN') {
      i++;
      const kind = w[i];
      if (kind === 'ACCOUNT') scope = {};
      else {
        if (['DATABASE', 'SCHEMA', 'TABLE'].includes(kind!)) i++;
        const parts = sig.slice(i).filter((t) => t.text !== '.').map(identName);
        if (kind === 'DATABASE') scope = { database: parts[0] ?? s.database ?? '' };
        else if (kind === 'TABLE') {
          const r = this.resolve(parts, s);
          scope = { database: r.database, schema: r.schema, table: r.name };
        } else {
          const r = parts.length === 2 ? { database: parts[0]!, schema: parts[1]! } : { database: s.database ?? '', schema: parts[0] ?? s.schema ?? '' };
          scope = r;
        }
      }
    } else if (s.database) scope = s.schema && what !== 'SCHEMAS' ? { database: s.database, schema: s.schema } : { database: s.database };
    if (what === 'DATABASES') scope = {};
    const inScope = (db: string, schema: string, table?: string) =>
      (scope.database === undefined || scope.database === db) &&
      (scope.schema === undefined || scope.schema === schema) &&
      (scope.table === undefined || scope.table === table);

    const hidden = (db: string, schema: string) => db === HIDDEN || db === 'system' || db === 'temp' || schema === 'information_schema' || schema === 'pg_catalog';
    const owner = s.role ?? 'PUBLIC';
    if (what === 'TABLES') {
      const r = await this.sys.runAndReadAll(
        `SELECT database_name, schema_name, table_name, comment, CAST(estimated_size AS BIGINT), temporary FROM duckdb_tables() ORDER BY 1, 2, 3`,
      );
      const rows: unknown[][] = [];
      for (const [db, schema, name, comment, count] of (await r.getRowsJS()) as [string, string, string, string | null, bigint][]) {
        if (hidden(db, schema) || !inScope(db, schema) || (like && !like.test(name))) continue;
        const fq = `${db}.${schema}.${name}`;
        rows.push([
          new Date(this.startedAt), name, db, schema, 'TABLE', comment ?? '', '', Number(count), 0, owner, '1', 'OFF',
          this.tracked.has(fq) ? 'ON' : 'OFF', 'OFF', null, null, 'N', 'N', 'ROLE', 'N', null, 'N', 'N', this.dynamic.has(fq) ? 'Y' : 'N', 'N',
        ]);
      }
      return this.values(
        [
          ['created_on', 'TIMESTAMPTZ'], ['name', 'VARCHAR'], ['database_name', 'VARCHAR'], ['schema_name', 'VARCHAR'], ['kind', 'VARCHAR'],
          ['comment', 'VARCHAR'], ['cluster_by', 'VARCHAR'], ['rows', 'BIGINT'], ['bytes', 'BIGINT'], ['owner', 'VARCHAR'], ['retention_time', 'VARCHAR'],
          ['automatic_clustering', 'VARCHAR'], ['change_tracking', 'VARCHAR'], ['search_optimization', 'VARCHAR'], ['search_optimization_progress', 'BIGINT'],
          ['search_optimization_bytes', 'BIGINT'], ['is_external', 'VARCHAR'], ['enable_schema_evolution', 'VARCHAR'], ['owner_role_type', 'VARCHAR'],
          ['is_event', 'VARCHAR'], ['budget', 'VARCHAR'], ['is_hybrid', 'VARCHAR'], ['is_iceberg', 'VARCHAR'], ['is_dynamic', 'VARCHAR'], ['is_immutable', 'VARCHAR'],
        ],
        rows,
      );
    }
    if (what === 'VIEWS') {
      const r = await this.sys.runAndReadAll(`SELECT database_name, schema_name, view_name, comment, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1, 2, 3`);
      const rows: unknown[][] = [];
      for (const [db, schema, name, comment] of (await r.getRowsJS()) as [string, string, string, string | null, string][]) {
        if (hidden(db, schema) || !inScope(db, schema) || (like && !like.test(name))) continue;
        rows.push([new Date(this.startedAt), name, '', 'VIEW', db, schema, owner, comment ?? '', this.viewText.get(`${db}.${schema}.${name}`) ?? '', 'false', 'false', 'ROLE', 'OFF']);
      }
      return this.values(
        [
          ['created_on', 'TIMESTAMPTZ'], ['name', 'VARCHAR'], ['reserved', 'VARCHAR'], ['kind', 'VARCHAR'], ['database_name', 'VARCHAR'], ['schema_name', 'VARCHAR'],
          ['owner', 'VARCHAR'], ['comment', 'VARCHAR'], ['text', 'VARCHAR'], ['is_secure', 'VARCHAR'], ['is_materialized', 'VARCHAR'], ['owner_role_type', 'VARCHAR'], ['change_tracking', 'VARCHAR'],
        ],
        rows,
      );
    }
    if (what === 'SCHEMAS') {
      const r = await this.sys.runAndReadAll(`SELECT database_name, schema_name, comment FROM duckdb_schemas() ORDER BY 1, 2`);
      const rows: unknown[][] = [];
      for (const [db, schema, comment] of (await r.getRowsJS()) as [string, string, string | null][]) {
        if (hidden(db, schema) || schema === 'main' || !inScope(db, schema) || (like && !like.test(schema))) continue;
        rows.push([new Date(this.startedAt), schema, 'N', db === s.database && schema === s.schema ? 'Y' : 'N', db, owner, comment ?? '', '', '1', 'ROLE', null, null]);
      }
      return this.values(
        [
          ['created_on', 'TIMESTAMPTZ'], ['name', 'VARCHAR'], ['is_default', 'VARCHAR'], ['is_current', 'VARCHAR'], ['database_name', 'VARCHAR'], ['owner', 'VARCHAR'],
          ['comment', 'VARCHAR'], ['options', 'VARCHAR'], ['retention_time', 'VARCHAR'], ['owner_role_type', 'VARCHAR'], ['budget', 'VARCHAR'],
          ['object_visibility', 'VARCHAR'],
        ],
        rows,
      );
    }
    if (what === 'DATABASES') {
      const rows = [...this.databases]
        .filter((db) => !like || like.test(db))
        .sort()
        .map((db) => [new Date(this.startedAt), db, 'N', db === s.database ? 'Y' : 'N', '', owner, '', '', '1', 'STANDARD', null, 'ROLE', null]);
      return this.values(
        [
          ['created_on', 'TIMESTAMPTZ'], ['name', 'VARCHAR'], ['is_default', 'VARCHAR'], ['is_current', 'VARCHAR'], ['origin', 'VARCHAR'], ['owner', 'VARCHAR'],
          ['comment', 'VARCHAR'], ['options', 'VARCHAR'], ['retention_time', 'VARCHAR'], ['kind', 'VARCHAR'], ['budget', 'VARCHAR'],
          ['owner_role_type', 'VARCHAR'], ['object_visibility', 'VARCHAR'],
        ],
        rows,
      );
    }
    if (what === 'COLUMNS') {
      const r = await this.sys.runAndReadAll(
        `SELECT database_name, schema_name, table_name, column_name, data_type, is_nullable, column_default, comment FROM duckdb_columns() ORDER BY 1, 2, 3, column_index`,
      );
      const rows: unknown[][] = [];
      for (const [db, schema, table, column, type, nullable, def, comment] of (await r.getRowsJS()) as [string, string, string, string, string, boolean, string | null, string | null][]) {
        if (hidden(db, schema) || !inScope(db, schema, table) || (like && !like.test(column))) continue;
        const t = snowflakeTypeName(type);
        rows.push([table, schema, column, JSON.stringify({ ...t.json, nullable }), nullable ? 'true' : 'false', def ?? '', 'COLUMN', '', comment ?? '', db, '', null]);
      }
      return this.values(
        [
          ['table_name', 'VARCHAR'], ['schema_name', 'VARCHAR'], ['column_name', 'VARCHAR'], ['data_type', 'VARCHAR'], ['null?', 'VARCHAR'], ['default', 'VARCHAR'],
          ['kind', 'VARCHAR'], ['expression', 'VARCHAR'], ['comment', 'VARCHAR'], ['database_name', 'VARCHAR'], ['autoincrement', 'VARCHAR'],
          ['schema_evolution_record', 'VARCHAR'],
        ],
        rows,
      );
    }
    if (what === 'STREAMS') {
      const rows = [...this.streams.values()]
        .filter((st) => inScope(st.database, st.schema) && (!like || like.test(st.name.split('.')[2]!)))
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((st) => {
          const stale = this.isStale(st);
          return [
            new Date(st.createdOn), st.name.split('.')[2]!, st.database, st.schema, s.role ?? 'PUBLIC', st.comment ?? '', st.table,
            st.sourceType, st.table, 'DELTA', stale ? 'true' : 'false', st.mode, new Date(st.offsetTime + this.retentionMs),
            st.invalidReason, 'ROLE',
          ];
        });
      return this.values(
        [
          ['created_on', 'TIMESTAMPTZ'], ['name', 'VARCHAR'], ['database_name', 'VARCHAR'], ['schema_name', 'VARCHAR'], ['owner', 'VARCHAR'],
          ['comment', 'VARCHAR'], ['table_name', 'VARCHAR'], ['source_type', 'VARCHAR'], ['base_tables', 'VARCHAR'], ['type', 'VARCHAR'],
          ['stale', 'VARCHAR'], ['mode', 'VARCHAR'], ['stale_after', 'TIMESTAMPTZ'], ['invalid_reason', 'VARCHAR'], ['owner_role_type', 'VARCHAR'],
        ],
        rows,
      );
    }
    if (what === 'PRIMARY KEYS') {
      const r = await this.sys.runAndReadAll(
        `SELECT database_name, schema_name, table_name, constraint_column_names FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'`,
      );
      const rows: unknown[][] = [];
      for (const [db, schema, table, cols] of (await r.getRowsJS()) as [string, string, string, string[]][]) {
        if (db === HIDDEN || !inScope(db, schema, table) || (like && !like.test(table))) continue;
        cols.forEach((c, k) => rows.push([new Date(0), db, schema, table, c, k + 1, `PK_${table}`, 'false', null]));
      }
      return this.values(
        [
          ['created_on', 'TIMESTAMPTZ'], ['database_name', 'VARCHAR'], ['schema_name', 'VARCHAR'], ['table_name', 'VARCHAR'], ['column_name', 'VARCHAR'],
          ['key_sequence', 'BIGINT'], ['constraint_name', 'VARCHAR'], ['rely', 'VARCHAR'], ['comment', 'VARCHAR'],
        ],
        rows,
      );
    }
    if (what === 'DYNAMIC TABLES') {
      const rows: unknown[][] = [];
      for (const d of [...this.dynamic.values()].sort((a, b) => a.table.localeCompare(b.table))) {
        const name = d.table.split('.')[2]!;
        if (!inScope(d.database, d.schema) || (like && !like.test(name))) continue;
        const count = await this.sys.runAndReadAll(`SELECT count(*) FROM ${quote(d.database)}.${quote(d.schema)}.${quote(name)}`);
        rows.push([
          new Date(d.createdOn), name, d.database, d.schema, '', Number(count.getRows()[0]![0]), 0, owner, d.lagMs === null ? 'DOWNSTREAM' : `${d.lagMs / 1000} seconds`,
          'FULL', null, d.warehouse, '', d.text, 'OFF', 'RUNNING', null, 'false', 'false', 'false', new Date(d.lastRefresh), 'ROLE', null, null,
        ]);
      }
      return this.values(
        [
          ['created_on', 'TIMESTAMPTZ'], ['name', 'VARCHAR'], ['database_name', 'VARCHAR'], ['schema_name', 'VARCHAR'], ['cluster_by', 'VARCHAR'], ['rows', 'BIGINT'],
          ['bytes', 'BIGINT'], ['owner', 'VARCHAR'], ['target_lag', 'VARCHAR'], ['refresh_mode', 'VARCHAR'], ['refresh_mode_reason', 'VARCHAR'], ['warehouse', 'VARCHAR'],
          ['comment', 'VARCHAR'], ['text', 'VARCHAR'], ['automatic_clustering', 'VARCHAR'], ['scheduling_state', 'VARCHAR'], ['last_suspended_on', 'TIMESTAMPTZ'],
          ['is_clone', 'VARCHAR'], ['is_replica', 'VARCHAR'], ['is_iceberg', 'VARCHAR'], ['data_timestamp', 'TIMESTAMPTZ'], ['owner_role_type', 'VARCHAR'],
          ['immutable_where', 'VARCHAR'], ['execute_as_user', 'VARCHAR'],
        ],
        rows,
      );
    }
    throw unsupported(`SHOW ${what ?? ''}`.trim());
  }

  /** DESCRIBE TABLE | VIEW: one row per column, with Snowflake's column names. */
  private async describe(s: EngineSession, sig: Token[], w: string[]): Promise<QueryResult> {
    let i = 1;
    const kind = w[i] === 'TABLE' || w[i] === 'VIEW' ? w[i] : undefined;
    if (kind) i++;
    else if (!(sig[i]?.kind === 'word' || sig[i]?.kind === 'qident')) throw syntaxError(1, 0, sig[i]?.text ?? '<EOF>');
    else if (['STREAM', 'DYNAMIC', 'SCHEMA', 'DATABASE', 'RESULT', 'WAREHOUSE', 'USER', 'STAGE', 'FUNCTION', 'PROCEDURE', 'TASK'].includes(w[i] ?? '')) {
      throw unsupported(`DESCRIBE ${w[i]!}`);
    }
    const parser = new Parser(render(sig.slice(i)), sig.slice(i));
    const parts = parser.name().map((p) => p.name);
    const r = this.resolve(parts, s);
    const found = await this.relationKind(r);
    if (found === null || (kind === 'VIEW' && found !== 'view')) throw compilation(`${kind === 'VIEW' ? 'View' : 'Table'} '${r.fq}' does not exist or not authorized.`);
    const cols = await this.sys.runAndReadAll(
      `SELECT column_name, data_type, is_nullable, column_default, comment FROM duckdb_columns() WHERE database_name = $1 AND schema_name = $2 AND table_name = $3 ORDER BY column_index`,
      [r.database, r.schema, r.name],
    );
    const pk = await this.sys.runAndReadAll(
      `SELECT constraint_column_names, constraint_type FROM duckdb_constraints() WHERE database_name = $1 AND schema_name = $2 AND table_name = $3 AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')`,
      [r.database, r.schema, r.name],
    );
    const keys = (await pk.getRowsJS()) as [string[], string][];
    const inKey = (c: string, type: string) => keys.some(([names, t]) => t === type && names.includes(c)) ? 'Y' : 'N';
    const rows = ((await cols.getRowsJS()) as [string, string, boolean, string | null, string | null][]).map(([name, type, nullable, def, comment]) => [
      name, snowflakeTypeName(type).type, 'COLUMN', nullable ? 'Y' : 'N', def, inKey(name, 'PRIMARY KEY'), inKey(name, 'UNIQUE'), null, null, comment, null, null,
    ]);
    return this.values(
      [
        ['name', 'VARCHAR'], ['type', 'VARCHAR'], ['kind', 'VARCHAR'], ['null?', 'VARCHAR'], ['default', 'VARCHAR'], ['primary key', 'VARCHAR'], ['unique key', 'VARCHAR'],
        ['check', 'VARCHAR'], ['expression', 'VARCHAR'], ['comment', 'VARCHAR'], ['policy name', 'VARCHAR'], ['privacy domain', 'VARCHAR'],
      ],
      rows,
    );
  }

  /** A result built from values, run through DuckDB so it is encoded like any other. */
  private async values(columns: [string, string][], rows: unknown[][]): Promise<QueryResult> {
    const lit = (v: unknown) =>
      v === null || v === undefined ? 'NULL' : v instanceof Date ? literal(v.toISOString()) : typeof v === 'number' ? String(v) : literal(String(v));
    const select = (row: unknown[] | null) =>
      `SELECT ${columns.map(([name, type], c) => `CAST(${row ? lit(row[c]) : 'NULL'} AS ${type}) AS ${quote(name)}`).join(', ')}`;
    const sql = [`${select(null)} WHERE FALSE`, ...rows.map(select)].join(' UNION ALL ');
    return this.read(await this.sys.run(sql));
  }

  // -------------------------------------------------------------------------------------
  // Streams
  // -------------------------------------------------------------------------------------

  private async relationKind(r: { database: string; schema: string; name: string }): Promise<'table' | 'view' | null> {
    const t = await this.sys.runAndReadAll(
      `SELECT 'table' FROM duckdb_tables() WHERE database_name = $1 AND schema_name = $2 AND table_name = $3
       UNION ALL SELECT 'view' FROM duckdb_views() WHERE database_name = $1 AND schema_name = $2 AND view_name = $3`,
      [r.database, r.schema, r.name],
    );
    const rows = t.getRows();
    return rows.length ? (rows[0]![0] as 'table' | 'view') : null;
  }

  private async createStream(s: EngineSession, sig: Token[], w: string[], i: number, orReplace: boolean): Promise<QueryResult> {
    let ifNotExists = false;
    if (w[i] === 'IF' && w[i + 1] === 'NOT' && w[i + 2] === 'EXISTS') {
      ifNotExists = true;
      i += 3;
    }
    const nameParts: string[] = [identName(sig[i]!)];
    i++;
    while (sig[i]?.text === '.') {
      nameParts.push(identName(sig[i + 1]!));
      i += 2;
    }
    const target = this.resolve(nameParts, s);
    if (w[i] === 'COPY' && w[i + 1] === 'GRANTS') i += 2;
    if (w[i] !== 'ON') throw new SnowflakeError('001003', '42000', 'SQL compilation error:\nsyntax error: expected ON TABLE after the stream name');
    i++;
    let sourceType: StreamDef['sourceType'] = 'Table';
    if (w[i] === 'DYNAMIC' && w[i + 1] === 'TABLE') {
      sourceType = 'Dynamic Table';
      i += 2;
    } else if (w[i] === 'TABLE') i++;
    else throw unsupported(`streams ON ${w[i] ?? ''}`.trim());
    const tableParts: string[] = [identName(sig[i]!)];
    i++;
    while (sig[i]?.text === '.') {
      tableParts.push(identName(sig[i + 1]!));
      i += 2;
    }
    let comment: string | null = null;
    let mode: StreamDef['mode'] = 'DEFAULT';
    let showInitial = false;
    let startAt: number | undefined;
    const bool = (k: number) => {
      if (w[k] === 'TRUE') return true;
      if (w[k] === 'FALSE') return false;
      throw new SnowflakeError('001003', '42000', `SQL compilation error:\ninvalid value [${sig[k]?.text ?? ''}] for parameter '${w[k - 2] ?? ''}'`);
    };
    while (i < sig.length) {
      if ((w[i] === 'AT' || w[i] === 'BEFORE') && sig[i + 1]?.text === '(') {
        const close = callArgs(sig, i + 1).end;
        const p = new Parser(render(sig.slice(i, close + 1)), sig.slice(i, close + 1));
        const tt = p.timeTravelClause();
        startAt = this.versionFor(s, null, tt);
        i = close + 1;
      } else if (sig[i + 1]?.text === '=' && w[i] === 'COMMENT') {
        comment = unquoteString(sig[i + 2]!.text);
        i += 3;
      } else if (sig[i + 1]?.text === '=' && w[i] === 'APPEND_ONLY') {
        mode = bool(i + 2) ? 'APPEND_ONLY' : 'DEFAULT';
        i += 3;
      } else if (sig[i + 1]?.text === '=' && w[i] === 'SHOW_INITIAL_ROWS') {
        showInitial = bool(i + 2);
        i += 3;
      } else if (w[i] === 'INSERT_ONLY') throw unsupported('INSERT_ONLY streams (they are for external tables)');
      else throw new SnowflakeError('001003', '42000', `SQL compilation error:\ninvalid property '${sig[i]!.text}' for 'STREAM'`);
    }
    if (showInitial && startAt !== undefined) throw new SnowflakeError('001003', '42000', 'SQL compilation error:\nSHOW_INITIAL_ROWS cannot be combined with AT | BEFORE');
    const table = this.resolve(tableParts, s);
    const kind = await this.relationKind(table);
    if (kind === null) throw compilation(`Table '${table.fq}' does not exist or not authorized.`);
    if (kind === 'view') throw unsupported('streams on views');
    const isDynamic = this.dynamic.has(table.fq);
    if (sourceType === 'Dynamic Table' && !isDynamic) throw compilation(`Dynamic table '${table.fq}' does not exist or not authorized.`);
    if (sourceType === 'Table' && isDynamic) sourceType = 'Dynamic Table';
    if (this.streams.has(target.fq)) {
      if (ifNotExists) return this.status(`${target.name} already exists, statement succeeded.`);
      if (!orReplace) throw new SnowflakeError('002002', '42710', `SQL compilation error:\nObject '${target.fq}' already exists.`);
    }
    await this.track(table.fq, this.sqlName(table));
    if (startAt !== undefined && startAt < this.tracked.get(table.fq)!.since) throw this.beyondTimeTravel(table.fq);
    const now = Date.now();
    let initialRows: string | null = null;
    if (showInitial) {
      const t = this.tracked.get(table.fq)!;
      initialRows = `${quote(HIDDEN)}.main.initial_${this.nextId++}`;
      await this.sys.run(`CREATE TABLE ${initialRows} AS SELECT * FROM ${quote(HIDDEN)}.main.shadow_${t.id}`);
    }
    const previous = this.streams.get(target.fq);
    if (previous?.initialRows) await this.sys.run(`DROP TABLE IF EXISTS ${previous.initialRows}`);
    this.streams.set(target.fq, {
      name: target.fq,
      database: target.database,
      schema: target.schema,
      table: table.fq,
      sourceType,
      mode,
      initial: showInitial,
      initialRows,
      offset: startAt ?? this.version,
      offsetTime: now,
      createdOn: now,
      stale: false,
      invalidReason: null,
      comment,
    });
    return this.status(`Stream ${target.name} successfully created.`);
  }

  private dropStream(s: EngineSession, sig: Token[], w: string[]): QueryResult {
    let i = 2;
    const ifExists = w[i] === 'IF' && w[i + 1] === 'EXISTS';
    if (ifExists) i += 2;
    const parts = sig.slice(i).filter((t) => t.text !== '.').map(identName);
    const r = this.resolve(parts, s);
    if (!this.streams.delete(r.fq)) {
      if (ifExists) return this.status(`Drop statement executed successfully (${r.name} already dropped).`);
      throw compilation(`Stream '${r.fq}' does not exist or not authorized.`);
    }
    return this.status(`${r.name} successfully dropped.`);
  }

  /** Starts capturing changes of a table (once, however many streams read it). */
  private async track(fq: string, sqlName: string): Promise<void> {
    const existing = this.tracked.get(fq);
    if (existing && !existing.broken) return;
    const [db, schema, name] = fq.split('.') as [string, string, string];
    const cols = await this.sys.runAndReadAll(
      `SELECT column_name FROM duckdb_columns() WHERE database_name = $1 AND schema_name = $2 AND table_name = $3 ORDER BY column_index`,
      [db, schema, name],
    );
    const columns = cols.getRows().map((r) => String(r[0]));
    const pk = await this.sys.runAndReadAll(
      `SELECT constraint_column_names FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' AND database_name = $1 AND schema_name = $2 AND table_name = $3`,
      [db, schema, name],
    );
    const pkCols = ((await pk.getRowsJS())[0]?.[0] as string[] | undefined) ?? [];
    const content = `CAST(to_json(struct_pack(${columns.map((c) => `${quote(c)} := ${quote(c)}`).join(', ')})) AS VARCHAR)`;
    // Row identity: the declared key; for a dynamic table (rewritten by each refresh) the row's
    // content; otherwise DuckDB's row id, which an UPDATE keeps (automatic checkpoints, which
    // would renumber rows after deletes, are off), so an update is one row changing, as in Snowflake.
    const rid = pkCols.length
      ? `md5(concat_ws(chr(31), ${pkCols.map((c) => `CAST(${quote(c)} AS VARCHAR)`).join(', ')}))`
      : this.dynamic.has(fq)
        ? `md5(${content}) || '#' || CAST(row_number() OVER (PARTITION BY ${content}) AS VARCHAR)`
        : `md5(CAST(rowid AS VARCHAR))`;
    const id = this.nextId++;
    const t: Tracked = { id, table: fq, columns, rid, since: this.version };
    await this.sys.run(`CREATE OR REPLACE TABLE ${quote(HIDDEN)}.main.shadow_${id} AS SELECT *, ${rid} AS __RID FROM ${sqlName}`);
    await this.sys.run(
      `CREATE OR REPLACE TABLE ${quote(HIDDEN)}.main.log_${id} AS SELECT CAST(0 AS BIGINT) AS __V, CAST('' AS VARCHAR) AS __RID, CAST('' AS VARCHAR) AS __IMG, * FROM ${sqlName} LIMIT 0`,
    );
    this.tracked.set(fq, t);
  }

  /** Records the committed changes of every tracked table as one new version. */
  private async capture(): Promise<void> {
    if (this.tracked.size === 0) return;
    const v = this.version + 1;
    let changed = false;
    for (const t of this.tracked.values()) {
      if (t.broken) continue;
      try {
        if (await this.captureTable(t, v)) changed = true;
      } catch (err) {
        t.broken = err instanceof Error ? err.message : String(err);
        for (const st of this.streams.values()) {
          if (st.table === t.table) {
            st.stale = true;
            st.invalidReason = `the table changed shape or was dropped`;
          }
        }
      }
    }
    if (changed) {
      this.version = v;
      this.versionTimes.set(v, Date.now());
    }
  }

  private async captureTable(t: Tracked, v: number): Promise<boolean> {
    const [db, schema, name] = t.table.split('.') as [string, string, string];
    const src = `${quote(db)}.${quote(schema)}.${quote(name)}`;
    const shadow = `${quote(HIDDEN)}.main.shadow_${t.id}`;
    const log = `${quote(HIDDEN)}.main.log_${t.id}`;
    const cur = `${quote(HIDDEN)}.main.cur_${t.id}`;
    const cols = t.columns.map(quote);
    const differs = cols.map((c) => `s.${c} IS DISTINCT FROM c.${c}`).join(' OR ') || 'FALSE';
    await this.sys.run(`CREATE OR REPLACE TABLE ${cur} AS SELECT ${cols.join(', ')}, ${t.rid} AS __RID FROM ${src}`);
    const before = await this.sys.run(
      `INSERT INTO ${log} SELECT ${v}, s.__RID, 'B', ${cols.map((c) => `s.${c}`).join(', ')}
       FROM ${shadow} s LEFT JOIN ${cur} c ON s.__RID = c.__RID WHERE c.__RID IS NULL OR ${differs}`,
    );
    const after = await this.sys.run(
      `INSERT INTO ${log} SELECT ${v}, c.__RID, 'A', ${cols.map((c) => `c.${c}`).join(', ')}
       FROM ${cur} c LEFT JOIN ${shadow} s ON s.__RID = c.__RID WHERE s.__RID IS NULL OR ${differs}`,
    );
    const changed = Number(before.rowsChanged) + Number(after.rowsChanged) > 0;
    if (changed) {
      await this.sys.run(`DROP TABLE ${shadow}`);
      await this.sys.run(`ALTER TABLE ${cur} RENAME TO shadow_${t.id}`);
    } else {
      await this.sys.run(`DROP TABLE ${cur}`);
    }
    return changed;
  }

  /**
   * The net change of a stream between its offset and version `upTo`: per row, the image at
   * the offset (DELETE) and the image now (INSERT); an update is both, each marked ISUPDATE.
   * An append-only stream shows the rows inserted since its offset, as inserted; a stream
   * created with SHOW_INITIAL_ROWS shows the rows at its creation first, until consumed.
   */
  private netChangeSql(st: StreamDef, upTo: number): string {
    const t = this.tracked.get(st.table)!;
    const log = `${quote(HIDDEN)}.main.log_${t.id}`;
    const cols = t.columns.map(quote);
    const list = (p: string) => cols.map((c) => `${p}.${c}`).join(', ');
    const e = `e AS (SELECT * FROM ${log} WHERE __V > ${st.offset} AND __V <= ${upTo})`;
    const meta = (action: string, isUpdate: string, rid: string) => `'${action}' AS "METADATA$ACTION", ${isUpdate} AS "METADATA$ISUPDATE", ${rid} AS "METADATA$ROW_ID"`;
    const initial = st.initial && st.initialRows;
    if (st.mode === 'APPEND_ONLY') {
      const appended = `SELECT ${list('a')}, ${meta('INSERT', 'FALSE', 'a.__RID')} FROM e a
        WHERE a.__IMG = 'A' AND NOT EXISTS (SELECT 1 FROM e b WHERE b.__V = a.__V AND b.__RID = a.__RID AND b.__IMG = 'B')`;
      if (!initial) return `WITH ${e} ${appended}`;
      return `WITH ${e} SELECT ${list('i')}, ${meta('INSERT', 'FALSE', 'i.__RID')} FROM ${st.initialRows} i UNION ALL ${appended}`;
    }
    if (initial) {
      return `WITH ${e}, l AS (SELECT __RID, max(__V) AS v1 FROM e GROUP BY __RID)
        SELECT ${list('i')}, ${meta('INSERT', 'FALSE', 'i.__RID')} FROM ${st.initialRows} i WHERE i.__RID NOT IN (SELECT __RID FROM l)
        UNION ALL
        SELECT ${list('e')}, ${meta('INSERT', 'FALSE', 'e.__RID')} FROM e JOIN l ON e.__RID = l.__RID AND e.__V = l.v1 WHERE e.__IMG = 'A'`;
    }
    const same = cols.map((c) => `b.${c} IS NOT DISTINCT FROM a.${c}`).join(' AND ') || 'TRUE';
    return `WITH ${e},
      f AS (SELECT __RID, min(__V) AS v0, max(__V) AS v1 FROM e GROUP BY __RID),
      b AS (SELECT e.* FROM e JOIN f ON e.__RID = f.__RID AND e.__V = f.v0 WHERE e.__IMG = 'B'),
      a AS (SELECT e.* FROM e JOIN f ON e.__RID = f.__RID AND e.__V = f.v1 WHERE e.__IMG = 'A')
      SELECT ${list('b')}, ${meta('DELETE', 'a.__RID IS NOT NULL', 'b.__RID')}
        FROM b LEFT JOIN a ON a.__RID = b.__RID WHERE a.__RID IS NULL OR NOT (${same})
      UNION ALL
      SELECT ${list('a')}, ${meta('INSERT', 'b.__RID IS NOT NULL', 'a.__RID')}
        FROM a LEFT JOIN b ON a.__RID = b.__RID WHERE b.__RID IS NULL OR NOT (${same})`;
  }

  private beyondTimeTravel(fq: string): SnowflakeError {
    return new SnowflakeError(
      '000707',
      '02000',
      `Time travel data is not available for table ${fq.split('.')[2]!}. The requested time is either beyond the allowed time travel period or before the object creation time.`,
    );
  }

  /** The change version an AT | BEFORE clause names. */
  private versionFor(s: EngineSession, fq: string | null, tt: TimeTravel): number {
    if (tt.param === 'STATEMENT') throw unsupported('AT | BEFORE (STATEMENT => …)');
    if (tt.param === 'STREAM') {
      if (tt.kind === 'BEFORE') throw unsupported('BEFORE (STREAM => …)');
      if (tt.e.k !== 'str') throw new SnowflakeError('001003', '42000', 'SQL compilation error:\nSTREAM => takes the stream name as a string literal');
      const st = this.findStream(s, splitName(tt.e.v));
      if (fq !== null && st.table !== fq) throw new SnowflakeError('001003', '42000', `SQL compilation error:\nStream '${st.name}' is not on table '${fq}'`);
      this.assertFresh(st);
      return st.offset;
    }
    let when: number;
    if (tt.param === 'OFFSET') {
      const n = tt.e.k === 'num' ? Number(tt.e.v) : NaN;
      if (Number.isNaN(n)) throw unsupported('OFFSET => an expression that is not a number');
      when = Date.now() + n * 1000;
    } else {
      const e = tt.e.k === 'cast' ? tt.e.e : tt.e;
      const text = e.k === 'str' || e.k === 'typed' ? e.v : undefined;
      if (text === undefined) throw unsupported('TIMESTAMP => an expression that is not a literal');
      when = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text.replace(' ', 'T')}Z`);
      if (Number.isNaN(when)) throw new SnowflakeError('100035', '22007', `Timestamp '${text}' is not recognized`);
    }
    if (when > Date.now()) throw new SnowflakeError('000707', '02000', 'Time travel data is not available: the requested time is in the future.');
    let v = 0;
    for (const [version, time] of this.versionTimes) if ((tt.kind === 'AT' ? time <= when : time < when) && version > v) v = version;
    return v;
  }

  /** A table as it was at an AT | BEFORE point (tables with a stream or change tracking). */
  private timeTravelSql(s: EngineSession, fq: string, tt: TimeTravel): string {
    // Snowflake's reference: STREAM => is supported only when creating a stream or querying
    // change data with CHANGES (which the emulator refuses by name).
    if (tt.param === 'STREAM') {
      throw new SnowflakeError('001003', '42000', 'SQL compilation error:\nAT(STREAM => …) is supported only in CREATE STREAM and with the CHANGES clause');
    }
    const t = this.tracked.get(fq);
    if (!t || t.broken) throw unsupported(`time travel on ${fq} (the emulator keeps history for tables with a stream or CHANGE_TRACKING = TRUE)`);
    const v = this.versionFor(s, fq, tt);
    if (v < t.since) throw this.beyondTimeTravel(fq);
    const log = `${quote(HIDDEN)}.main.log_${t.id}`;
    const shadow = `${quote(HIDDEN)}.main.shadow_${t.id}`;
    const cols = t.columns.map(quote);
    return `WITH e AS (SELECT * FROM ${log} WHERE __V > ${v}), f AS (SELECT __RID, min(__V) AS v0 FROM e GROUP BY __RID)
      SELECT ${cols.join(', ')} FROM ${shadow} WHERE __RID NOT IN (SELECT __RID FROM f)
      UNION ALL
      SELECT ${cols.map((c) => `e.${c}`).join(', ')} FROM e JOIN f ON e.__RID = f.__RID AND e.__V = f.v0 WHERE e.__IMG = 'B'`;
  }

  /** Precomputes SYSTEM$STREAM_HAS_DATA answers for the streams a statement names. */
  private async prepareHasData(s: EngineSession, tokens: Token[]): Promise<void> {
    const sig = significant(tokens);
    for (let i = 0; i < sig.length; i++) {
      if (sig[i]!.kind !== 'word' || sig[i]!.text.toUpperCase() !== 'SYSTEM$STREAM_HAS_DATA' || sig[i + 1]?.text !== '(') continue;
      const arg = sig[i + 2];
      if (arg?.kind !== 'string') continue;
      let st: StreamDef;
      try {
        st = this.findStream(s, splitName(unquoteString(arg.text)));
      } catch {
        continue;
      }
      if (this.isStale(st)) continue;
      const at = s.inTx ? s.txVersion : this.version;
      const r = await this.sys.runAndReadAll(`SELECT count(*) FROM (${this.netChangeSql(st, at)})`);
      this.hasDataCache.set(st.name, Number(r.getRows()[0]![0]) > 0);
    }
  }

  /** Forgets tracked tables that no longer exist (their streams are already marked stale). */
  private forgetDropped(): void {
    for (const st of this.streams.values()) {
      const t = this.tracked.get(st.table);
      if (t?.broken) st.stale = true;
    }
  }

  // -------------------------------------------------------------------------------------
  // Dynamic tables
  // -------------------------------------------------------------------------------------

  private async createDynamic(s: EngineSession, tokens: Token[], sig: Token[], w: string[], i: number, orReplace: boolean): Promise<QueryResult> {
    let ifNotExists = false;
    if (w[i] === 'IF' && w[i + 1] === 'NOT' && w[i + 2] === 'EXISTS') {
      ifNotExists = true;
      i += 3;
    }
    const parts: string[] = [identName(sig[i]!)];
    i++;
    while (sig[i]?.text === '.') {
      parts.push(identName(sig[i + 1]!));
      i += 2;
    }
    const target = this.resolve(parts, s);
    let lag: number | null | undefined;
    let warehouse: string | undefined;
    let asAt = -1;
    while (i < sig.length) {
      if (w[i] === 'AS') {
        asAt = i;
        break;
      }
      if (sig[i + 1]?.text === '=') {
        const key = w[i]!;
        const value = sig[i + 2]!;
        if (key === 'TARGET_LAG') lag = parseLag(value.kind === 'string' ? unquoteString(value.text) : value.text);
        else if (key === 'WAREHOUSE') warehouse = identName(value);
        else if (!['REFRESH_MODE', 'INITIALIZE', 'COMMENT'].includes(key)) throw unsupported(`the dynamic table option ${key}`);
        i += 3;
        continue;
      }
      throw unsupported(`the dynamic table clause ${w[i]}`);
    }
    if (lag === undefined) throw new SnowflakeError('001003', '42000', 'SQL compilation error:\nmissing option TARGET_LAG');
    if (warehouse === undefined) throw new SnowflakeError('001003', '42000', 'SQL compilation error:\nmissing option WAREHOUSE');
    if (asAt < 0) throw new SnowflakeError('001003', '42000', 'SQL compilation error:\nsyntax error: expected AS <query>');
    if (this.dynamic.has(target.fq) && !orReplace) {
      if (ifNotExists) return this.status(`${target.name} already exists, statement succeeded.`);
      throw new SnowflakeError('002002', '42710', `SQL compilation error:\nObject '${target.fq}' already exists.`);
    }
    const start = tokens.indexOf(sig[asAt + 1]!);
    const body = tokens.slice(start);
    const parser = new Parser(render(body), body);
    const parsed: Query = parser.query();
    if (!parser.done) parser.fail();
    const query = new DuckPrinter({
      bind: () => {
        throw unsupported('binds in a dynamic table definition');
      },
      relation: (ref) => {
        if (ref.at || ref.changes) throw unsupported('time travel in a dynamic table definition');
        const parts = ref.name.map((p) => p.name);
        if (parts.length >= 2 && parts[parts.length - 2] === 'INFORMATION_SCHEMA') throw unsupported('dynamic tables over INFORMATION_SCHEMA');
        const r = this.resolve(parts, s);
        if (this.streams.has(r.fq)) throw unsupported('dynamic tables over streams');
        return undefined;
      },
      systemFunction: (name) => {
        throw unsupported(`${name} in a dynamic table definition`);
      },
      sessionFunction: (name) => this.sessionFunction(s, name),
    }).query(parsed);
    try {
      await s.conn.run(`CREATE ${orReplace ? 'OR REPLACE ' : ''}TABLE ${this.sqlName(target)} AS ${query}`);
    } catch (err) {
      throw fromDuckDB(err);
    }
    this.dynamic.set(target.fq, {
      table: target.fq,
      database: target.database,
      schema: target.schema,
      query,
      text: render(tokens).trim(),
      createdOn: Date.now(),
      lagMs: lag,
      warehouse,
      lastRefresh: Date.now(),
    });
    if (orReplace) this.forgetDropped();
    await this.capture();
    return this.status(`Table ${target.name} successfully created.`);
  }

  private async alterDynamic(s: EngineSession, sig: Token[], w: string[]): Promise<QueryResult> {
    const refreshAt = w.indexOf('REFRESH');
    if (refreshAt < 0 || refreshAt !== w.length - 1) throw unsupported(`ALTER DYNAMIC TABLE ${w.slice(3).join(' ')}`);
    const parts = sig.slice(3, refreshAt).filter((t) => t.text !== '.').map(identName);
    const r = this.resolve(parts, s);
    const d = this.dynamic.get(r.fq);
    if (!d) throw compilation(`Dynamic table '${r.fq}' does not exist or not authorized.`);
    await this.refresh(d);
    return this.status('Statement executed successfully.', TYPE_OTHER);
  }

  private async dropDynamic(s: EngineSession, sig: Token[], w: string[]): Promise<QueryResult> {
    let i = 3;
    const ifExists = w[i] === 'IF' && w[i + 1] === 'EXISTS';
    if (ifExists) i += 2;
    const r = this.resolve(sig.slice(i).filter((t) => t.text !== '.').map(identName), s);
    if (!this.dynamic.delete(r.fq)) {
      if (ifExists) return this.status('Drop statement executed successfully.');
      throw compilation(`Dynamic table '${r.fq}' does not exist or not authorized.`);
    }
    await this.sys.run(`DROP TABLE IF EXISTS ${this.sqlName(r)}`);
    await this.capture();
    this.forgetDropped();
    return this.status(`${r.name} successfully dropped.`);
  }

  private async refresh(d: DynamicDef): Promise<void> {
    const [db, schema, name] = d.table.split('.') as [string, string, string];
    await this.sys.run(`USE ${quote(db)}.${quote(schema)}`);
    await this.sys.run('BEGIN TRANSACTION');
    try {
      await this.sys.run(`DELETE FROM ${quote(db)}.${quote(schema)}.${quote(name)}`);
      await this.sys.run(`INSERT INTO ${quote(db)}.${quote(schema)}.${quote(name)} ${d.query}`);
      await this.sys.run('COMMIT');
    } catch (err) {
      await this.sys.run('ROLLBACK').catch(() => undefined);
      throw fromDuckDB(err);
    } finally {
      await this.sys.run(`USE memory.main`);
    }
    d.lastRefresh = Date.now();
    await this.capture();
  }

  private async refreshDue(): Promise<void> {
    const now = Date.now();
    const due = [...this.dynamic.values()].filter((d) => d.lagMs !== null && now - d.lastRefresh >= d.lagMs);
    for (const d of due) await this.locked(() => this.refresh(d));
  }

  /** Refreshes every dynamic table now (a test hook: Snowflake would on its target lag). */
  async refreshDynamicTables(): Promise<void> {
    for (const d of this.dynamic.values()) await this.locked(() => this.refresh(d));
  }

  /**
   * Runs one Snowflake SQL statement as the emulator's own user in the default database and
   * schema (a test hook: no wire protocol), then records the changes streams see. A query
   * returns its rows as JS values; any other statement returns no rows.
   */
  async sql(text: string): Promise<Record<string, unknown>[]> {
    this.hookSession ??= this.openSession({ user: 'OUTFLOW', database: this.defaults.database, schema: this.defaults.schema });
    const s = await this.hookSession;
    return this.locked(async () => {
      let statements: Token[][];
      try {
        statements = splitStatements(tokenize(text));
      } catch (err) {
        if (err instanceof SqlSyntaxError) throw new SnowflakeError('001003', '42000', `SQL compilation error:\nsyntax error: ${err.message}`);
        throw err;
      }
      if (statements.length !== 1) throw new SnowflakeError('000008', '0A000', `Actual statement count ${statements.length} did not match the desired statement count 1.`);
      const tokens = statements[0]!;
      await this.prepareHasData(s, tokens);
      const first = significant(tokens)[0];
      const isQuery = first?.text === '(' || ['SELECT', 'WITH', 'VALUES'].includes(first?.kind === 'word' ? first.text.toUpperCase() : '');
      if (!isQuery) {
        await this.dispatch(s, tokens, []);
        return [];
      }
      const statement = new Parser(render(tokens), tokens).statement();
      const sql = this.printer(s, [], s.inTx ? s.txVersion : this.version, new Set()).statement(statement);
      try {
        const r = await s.conn.runAndReadAll(sql[0]!);
        return r.getRowObjectsJS() as Record<string, unknown>[];
      } catch (err) {
        throw fromDuckDB(err);
      }
    });
  }
}
