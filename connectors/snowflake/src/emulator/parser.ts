/**
 * A recursive-descent grammar for the Snowflake SQL the emulator runs: queries (WITH,
 * set operations, joins, LATERAL and table functions, QUALIFY, semi-structured paths,
 * WITHIN GROUP, window functions, time travel), INSERT, UPDATE, DELETE, MERGE and the table,
 * view and schema DDL. What it does not know is a syntax error with Snowflake's code and
 * position, never passed on for DuckDB to guess at.
 */
import type { ColumnDef, Expr, FnArg, FromItem, Ident, MergeClause, OrderItem, PathStep, Query, Select, SelectItem, SetBody, Statement, TimeTravel, TypeName, WindowSpec } from './ast.js';
import { SnowflakeError, syntaxError, unsupported } from './errors.js';
import { unquoteString, type Token } from './sql.js';

interface Tok extends Token {
  pos: number;
  /** Upper-cased text for words, the text otherwise. */
  u: string;
}

/** Snowflake's reserved keywords: never an unquoted identifier. */
const RESERVED = new Set(
  (
    'ALL ALTER AND ANY AS BETWEEN BY CASE CAST CHECK COLUMN CONNECT CONSTRAINT CREATE CROSS CURRENT DELETE DISTINCT DROP ELSE EXISTS FALSE ' +
    'FOLLOWING FOR FROM FULL GRANT GROUP HAVING ILIKE IN INCREMENT INNER INSERT INTERSECT INTO IS JOIN LATERAL LEFT LIKE MINUS NATURAL NOT NULL ' +
    'OF ON OR ORDER QUALIFY REGEXP REVOKE RIGHT RLIKE ROW ROWS SELECT SET SOME START TABLE THEN TO TRIGGER TRUE TRY_CAST UNION UNIQUE ' +
    'UPDATE USING VALUES VIEW WHEN WHENEVER WHERE WITH'
  ).split(' '),
);

/** Words that end a table or select item rather than alias it. */
const NOT_ALIAS = new Set([
  ...RESERVED,
  'LIMIT', 'OFFSET', 'FETCH', 'WINDOW', 'AT', 'BEFORE', 'CHANGES', 'SAMPLE', 'TABLESAMPLE', 'PIVOT', 'UNPIVOT', 'MATCH_RECOGNIZE', 'EXCEPT',
  'START', 'CONNECT', 'OUTER', 'ASOF', 'END',
]);

/** Type names that take a second word. */
const TWO_WORD_TYPES: Record<string, string[]> = { DOUBLE: ['PRECISION'], CHAR: ['VARYING'], CHARACTER: ['VARYING'], NCHAR: ['VARYING'] };

const COMPARISON = new Set(['=', '!=', '<>', '<', '<=', '>', '>=']);

export class Parser {
  private readonly t: Tok[];
  private i = 0;
  private bindCount = 0;

  constructor(
    private readonly source: string,
    tokens: Token[],
  ) {
    let pos = 0;
    const out: Tok[] = [];
    for (const tok of tokens) {
      if (tok.kind !== 'ws' && tok.kind !== 'comment') out.push({ ...tok, pos, u: tok.kind === 'word' ? tok.text.toUpperCase() : tok.text });
      pos += tok.text.length;
    }
    this.t = out;
  }

  // -------------------------------------------------------------------------------------
  // Token helpers
  // -------------------------------------------------------------------------------------

  private peek(k = 0): Tok | undefined {
    return this.t[this.i + k];
  }

  private word(k = 0): string | undefined {
    const t = this.peek(k);
    return t?.kind === 'word' ? t.u : undefined;
  }

  private isWord(...ws: string[]): boolean {
    return ws.every((w, k) => this.word(k) === w);
  }

  private eatWord(...ws: string[]): boolean {
    if (!this.isWord(...ws)) return false;
    this.i += ws.length;
    return true;
  }

  private expectWord(...ws: string[]): void {
    for (const w of ws) if (!this.eatWord(w)) this.fail();
  }

  private isPunct(p: string, k = 0): boolean {
    const t = this.peek(k);
    return t?.kind === 'punct' && t.text === p;
  }

  private eatPunct(p: string): boolean {
    if (!this.isPunct(p)) return false;
    this.i++;
    return true;
  }

  private expectPunct(p: string): void {
    if (!this.eatPunct(p)) this.fail();
  }

  /** Throws Snowflake's syntax error at the current token. */
  fail(at = this.peek()): never {
    if (!at) {
      const lines = this.source.split('\n');
      throw syntaxError(lines.length, lines[lines.length - 1]!.length, '<EOF>');
    }
    const before = this.source.slice(0, at.pos).split('\n');
    throw syntaxError(before.length, before[before.length - 1]!.length, at.text);
  }

  get done(): boolean {
    return this.i >= this.t.length;
  }

  private isIdentStart(k = 0): boolean {
    const t = this.peek(k);
    return t !== undefined && (t.kind === 'qident' || (t.kind === 'word' && !RESERVED.has(t.u)));
  }

  ident(): Ident {
    const t = this.peek();
    if (t?.kind === 'qident') {
      this.i++;
      return { name: t.text.slice(1, -1).replaceAll('""', '"'), quoted: true };
    }
    if (t?.kind === 'word' && !RESERVED.has(t.u)) {
      this.i++;
      return { name: t.u, quoted: false };
    }
    return this.fail();
  }

  /** A dotted object name: `a`, `s.a`, `db.s.a` (and `db..a`). */
  name(): Ident[] {
    const parts = [this.ident()];
    while (this.isPunct('.')) {
      this.i++;
      if (this.isPunct('.')) {
        this.i++;
        parts.push({ name: 'PUBLIC', quoted: false });
      }
      parts.push(this.ident());
    }
    if (parts.length > 3) this.fail();
    return parts;
  }

  private identList(): Ident[] {
    this.expectPunct('(');
    const out = [this.ident()];
    while (this.eatPunct(',')) out.push(this.ident());
    this.expectPunct(')');
    return out;
  }

  private optionalAlias(): Ident | undefined {
    if (this.eatWord('AS')) return this.ident();
    const t = this.peek();
    if (t?.kind === 'qident') return this.ident();
    if (t?.kind === 'word' && !NOT_ALIAS.has(t.u)) return this.ident();
    return undefined;
  }

  private stringLiteral(): string {
    const t = this.peek();
    if (t?.kind !== 'string') return this.fail();
    this.i++;
    return unquoteString(t.text);
  }

  private integer(): number {
    const t = this.peek();
    if (t?.kind !== 'number' || !/^\d+$/.test(t.text)) return this.fail();
    this.i++;
    return Number(t.text);
  }

  /** The text of tokens [from, to) as Snowflake names an unaliased column: words upper-cased. */
  private textOf(from: number, to: number): string {
    let out = '';
    for (let k = from; k < to; k++) {
      const tok = this.t[k]!;
      const prev = this.t[k - 1];
      if (k > from && prev && this.source.slice(prev.pos + prev.text.length, tok.pos).trim() === '' && prev.pos + prev.text.length < tok.pos) out += ' ';
      out += tok.kind === 'word' ? tok.u : tok.text;
    }
    return out;
  }

  // -------------------------------------------------------------------------------------
  // Statements
  // -------------------------------------------------------------------------------------

  /** Parses one whole statement. */
  statement(): Statement {
    const s = this.statementBody();
    if (!this.done) this.fail();
    return s;
  }

  private statementBody(): Statement {
    const w = this.word();
    if (w === 'SELECT' || w === 'WITH' || w === 'VALUES' || this.isPunct('(')) return { k: 'query', q: this.query() };
    if (w === 'INSERT') return this.insert();
    if (w === 'UPDATE') return this.update();
    if (w === 'DELETE') return this.delete();
    if (w === 'MERGE') return this.merge();
    if (w === 'CREATE') return this.create();
    if (w === 'DROP') return this.drop();
    if (w === 'TRUNCATE') {
      this.i++;
      this.eatWord('TABLE');
      const ifExists = this.eatWord('IF', 'EXISTS');
      return { k: 'truncate', ifExists, name: this.name() };
    }
    if (w === 'ALTER') return this.alter();
    return this.fail();
  }

  private insert(): Statement {
    this.expectWord('INSERT');
    const overwrite = this.eatWord('OVERWRITE');
    if (this.isWord('ALL') || this.isWord('FIRST')) throw unsupported('multi-table INSERT');
    this.expectWord('INTO');
    const table = this.name();
    let columns: Ident[] | undefined;
    if (this.isPunct('(') && !(this.word(1) === 'SELECT' || this.word(1) === 'WITH')) columns = this.identList();
    const source = this.query();
    return { k: 'insert', overwrite, table, ...(columns ? { columns } : {}), source };
  }

  private assignments(): [Ident, Expr][] {
    const sets: [Ident, Expr][] = [];
    do {
      const parts = this.name();
      this.expectPunct('=');
      sets.push([parts[parts.length - 1]!, this.expr()]);
    } while (this.eatPunct(','));
    return sets;
  }

  private update(): Statement {
    this.expectWord('UPDATE');
    const table = this.name();
    const alias = this.isWord('SET') ? undefined : this.optionalAlias();
    this.expectWord('SET');
    const sets = this.assignments();
    const from = this.eatWord('FROM') ? this.fromList() : [];
    const where = this.eatWord('WHERE') ? this.expr() : undefined;
    return { k: 'update', table, ...(alias ? { alias } : {}), sets, from, ...(where ? { where } : {}) };
  }

  private delete(): Statement {
    this.expectWord('DELETE', 'FROM');
    const table = this.name();
    const alias = this.optionalAlias();
    const using = this.eatWord('USING') ? this.fromList() : [];
    const where = this.eatWord('WHERE') ? this.expr() : undefined;
    return { k: 'delete', table, ...(alias ? { alias } : {}), using, ...(where ? { where } : {}) };
  }

  private merge(): Statement {
    this.expectWord('MERGE', 'INTO');
    const table = this.name();
    const alias = this.isWord('USING') ? undefined : this.optionalAlias();
    this.expectWord('USING');
    const source = this.fromPrimary();
    this.expectWord('ON');
    const on = this.expr();
    const clauses: MergeClause[] = [];
    while (this.eatWord('WHEN')) {
      const matched = !this.eatWord('NOT');
      this.expectWord('MATCHED');
      const cond = this.eatWord('AND') ? this.expr() : undefined;
      this.expectWord('THEN');
      let action: MergeClause['action'];
      if (matched && this.eatWord('UPDATE')) {
        this.expectWord('SET');
        action = { k: 'update', sets: this.assignments() };
      } else if (matched && this.eatWord('DELETE')) action = { k: 'delete' };
      else if (!matched && this.eatWord('INSERT')) {
        const columns = this.isPunct('(') ? this.identList() : undefined;
        this.expectWord('VALUES');
        this.expectPunct('(');
        const values = this.exprList();
        this.expectPunct(')');
        action = { k: 'insert', ...(columns ? { columns } : {}), values };
      } else return this.fail();
      clauses.push({ matched, ...(cond ? { cond } : {}), action });
    }
    if (clauses.length === 0) this.fail();
    return { k: 'merge', table, ...(alias ? { alias } : {}), source, on, clauses };
  }

  private create(): Statement {
    this.expectWord('CREATE');
    const orReplace = this.eatWord('OR', 'REPLACE');
    let temporary = false;
    for (;;) {
      if (this.eatWord('LOCAL') || this.eatWord('GLOBAL')) continue;
      if (this.eatWord('TEMPORARY') || this.eatWord('TEMP') || this.eatWord('VOLATILE')) {
        temporary = true;
        continue;
      }
      if (this.eatWord('TRANSIENT')) continue;
      if (this.eatWord('SECURE') || this.eatWord('RECURSIVE')) continue;
      break;
    }
    if (this.eatWord('SCHEMA')) {
      const ifNotExists = this.eatWord('IF', 'NOT', 'EXISTS');
      const name = this.name();
      this.tableOptions();
      return { k: 'createSchema', orReplace, ifNotExists, name };
    }
    if (this.eatWord('VIEW')) {
      const ifNotExists = this.eatWord('IF', 'NOT', 'EXISTS');
      const name = this.name();
      const columns = this.isPunct('(') ? this.identList() : undefined;
      this.tableOptions();
      this.expectWord('AS');
      const from = this.i;
      const as = this.query();
      return { k: 'createView', orReplace, ifNotExists, name, ...(columns ? { columns } : {}), as, text: this.textOf(from, this.i) };
    }
    if (!this.eatWord('TABLE')) {
      const what = this.word();
      if (what) throw unsupported(`CREATE ${what}`);
      return this.fail();
    }
    const ifNotExists = this.eatWord('IF', 'NOT', 'EXISTS');
    const name = this.name();
    if (this.eatWord('LIKE')) return { k: 'createTable', orReplace, ifNotExists, temporary, name, like: this.name() };
    if (this.isWord('CLONE')) throw unsupported('CREATE TABLE … CLONE');
    let columns: ColumnDef[] | undefined;
    let primaryKey: Ident[] | undefined;
    if (this.isPunct('(')) {
      this.i++;
      columns = [];
      do {
        if (this.isWord('PRIMARY') || this.isWord('CONSTRAINT') || this.isWord('UNIQUE') || this.isWord('FOREIGN')) {
          if (this.eatWord('CONSTRAINT')) this.ident();
          if (this.eatWord('PRIMARY', 'KEY')) primaryKey = this.identList();
          else if (this.eatWord('UNIQUE')) this.identList();
          else if (this.eatWord('FOREIGN', 'KEY')) {
            this.identList();
            this.expectWord('REFERENCES');
            this.name();
            if (this.isPunct('(')) this.identList();
          } else this.fail();
          continue;
        }
        columns.push(this.columnDef());
      } while (this.eatPunct(','));
      this.expectPunct(')');
    }
    const comment = this.tableOptions();
    let as: Query | undefined;
    if (this.eatWord('AS')) as = this.query();
    if (!columns && !as) this.fail();
    return {
      k: 'createTable',
      orReplace,
      ifNotExists,
      temporary,
      name,
      ...(columns ? { columns } : {}),
      ...(primaryKey ? { primaryKey } : {}),
      ...(as ? { as } : {}),
      ...(comment !== undefined ? { comment } : {}),
    };
  }

  /** Table and schema properties: COMMENT is kept, the ones without effect here are accepted, others refused by name. */
  private tableOptions(): string | undefined {
    let comment: string | undefined;
    for (;;) {
      if (this.isWord('COPY', 'GRANTS')) {
        this.i += 2;
        continue;
      }
      if (this.isWord('WITH') && !this.isWord('WITH', 'RECURSIVE') && this.word(1) !== undefined && this.isPunct('=', 2)) {
        this.i++;
        continue;
      }
      if (this.isWord('CLUSTER', 'BY')) {
        this.i += 2;
        this.expectPunct('(');
        this.exprList();
        this.expectPunct(')');
        continue;
      }
      const w = this.word();
      if (w && this.isPunct('=', 1)) {
        if (!['COMMENT', 'DATA_RETENTION_TIME_IN_DAYS', 'MAX_DATA_EXTENSION_TIME_IN_DAYS', 'CHANGE_TRACKING', 'DEFAULT_DDL_COLLATION'].includes(w)) {
          throw unsupported(`the property ${w}`);
        }
        this.i += 2;
        const v = this.peek();
        if (!v) this.fail();
        if (w === 'COMMENT') comment = this.stringLiteral();
        else this.i++;
        continue;
      }
      return comment;
    }
  }

  dataType(): TypeName {
    const t = this.peek();
    if (t?.kind !== 'word') return this.fail();
    this.i++;
    let name = t.u;
    const second = TWO_WORD_TYPES[name];
    if (second && this.word() && second.includes(this.word()!)) {
      name = `${name} ${this.word()!}`;
      this.i++;
    }
    const args: number[] = [];
    if (this.isPunct('(')) {
      this.i++;
      args.push(this.integer());
      while (this.eatPunct(',')) args.push(this.integer());
      this.expectPunct(')');
    }
    if (name === 'TIMESTAMP' && this.isWord('WITH')) throw unsupported('TIMESTAMP WITH … TIME ZONE (use TIMESTAMP_TZ or TIMESTAMP_LTZ)');
    return { name, args };
  }

  private columnDef(): ColumnDef {
    const name = this.ident();
    const type = this.dataType();
    const col: ColumnDef = { name, type, notNull: false, primaryKey: false, unique: false };
    for (;;) {
      if (this.eatWord('NOT', 'NULL')) col.notNull = true;
      else if (this.eatWord('NULL')) col.notNull = false;
      else if (this.eatWord('PRIMARY', 'KEY')) col.primaryKey = true;
      else if (this.eatWord('UNIQUE')) col.unique = true;
      else if (this.eatWord('DEFAULT')) col.default = this.expr();
      else if (this.eatWord('COMMENT')) col.comment = this.stringLiteral();
      else if (this.eatWord('COLLATE')) this.stringLiteral();
      else if (this.eatWord('CONSTRAINT')) this.ident();
      else if (this.isWord('AUTOINCREMENT') || this.isWord('IDENTITY')) throw unsupported(`${this.word()!} columns`);
      else if (this.isWord('REFERENCES')) {
        this.i++;
        this.name();
        if (this.isPunct('(')) this.identList();
      } else return col;
    }
  }

  private drop(): Statement {
    this.expectWord('DROP');
    const w = this.word();
    if (w !== 'TABLE' && w !== 'VIEW' && w !== 'SCHEMA') {
      if (w) throw unsupported(`DROP ${w}`);
      return this.fail();
    }
    this.i++;
    const ifExists = this.eatWord('IF', 'EXISTS');
    const name = this.name();
    const cascade = this.eatWord('CASCADE');
    if (!cascade) this.eatWord('RESTRICT');
    return { k: 'drop', what: w, ifExists, name, cascade };
  }

  private alter(): Statement {
    this.expectWord('ALTER');
    if (!this.eatWord('TABLE')) {
      const w = this.word();
      if (w) throw unsupported(`ALTER ${w}`);
      return this.fail();
    }
    const ifExists = this.eatWord('IF', 'EXISTS');
    const name = this.name();
    if (this.eatWord('ADD')) {
      this.eatWord('COLUMN');
      const ifNotExists = this.eatWord('IF', 'NOT', 'EXISTS');
      return { k: 'alterTable', ifExists, name, action: { k: 'addColumn', col: this.columnDef(), ifNotExists } };
    }
    if (this.eatWord('DROP')) {
      this.eatWord('COLUMN');
      const colIfExists = this.eatWord('IF', 'EXISTS');
      const names = [this.ident()];
      while (this.eatPunct(',')) names.push(this.ident());
      return { k: 'alterTable', ifExists, name, action: { k: 'dropColumn', names, ifExists: colIfExists } };
    }
    if (this.eatWord('RENAME', 'COLUMN')) {
      const from = this.ident();
      this.expectWord('TO');
      return { k: 'alterTable', ifExists, name, action: { k: 'renameColumn', from, to: this.ident() } };
    }
    if (this.eatWord('RENAME', 'TO')) return { k: 'alterTable', ifExists, name, action: { k: 'renameTo', to: this.name() } };
    if (this.eatWord('SET', 'CHANGE_TRACKING')) {
      this.expectPunct('=');
      const on = this.eatWord('TRUE') ? true : this.eatWord('FALSE') ? false : this.fail();
      return { k: 'alterTable', ifExists, name, action: { k: 'setChangeTracking', on } };
    }
    const w = this.word();
    if (w) throw unsupported(`ALTER TABLE … ${w}`);
    return this.fail();
  }

  // -------------------------------------------------------------------------------------
  // Queries
  // -------------------------------------------------------------------------------------

  query(): Query {
    let withClause: Query['with'];
    if (this.eatWord('WITH')) {
      const recursive = this.eatWord('RECURSIVE');
      const ctes: NonNullable<Query['with']>['ctes'] = [];
      do {
        const name = this.ident();
        const columns = this.isPunct('(') ? this.identList() : undefined;
        this.expectWord('AS');
        this.expectPunct('(');
        const q = this.query();
        this.expectPunct(')');
        ctes.push({ name, ...(columns ? { columns } : {}), q });
      } while (this.eatPunct(','));
      withClause = { recursive, ctes };
    }
    const body = this.setExpr();
    const q: Query = { ...(withClause ? { with: withClause } : {}), body };
    if (this.eatWord('ORDER', 'BY')) q.orderBy = this.orderList();
    if (this.eatWord('LIMIT')) {
      q.limit = this.expr();
      if (this.eatWord('OFFSET')) q.offset = this.expr();
    } else {
      if (this.eatWord('OFFSET')) {
        q.offset = this.expr();
        if (!this.eatWord('ROWS')) this.eatWord('ROW');
      }
      if (this.eatWord('FETCH')) {
        if (!this.eatWord('FIRST')) this.expectWord('NEXT');
        q.limit = this.expr();
        if (!this.eatWord('ROWS')) this.expectWord('ROW');
        this.expectWord('ONLY');
      }
    }
    return q;
  }

  private setExpr(): SetBody {
    let l = this.setTerm();
    for (;;) {
      if (this.eatWord('UNION')) {
        const all = this.eatWord('ALL');
        if (!all) this.eatWord('DISTINCT');
        if (this.isWord('BY', 'NAME')) throw unsupported('UNION BY NAME');
        l = { k: 'setop', op: all ? 'UNION ALL' : 'UNION', l, r: this.setTerm() };
      } else if (this.eatWord('EXCEPT') || this.eatWord('MINUS')) l = { k: 'setop', op: 'EXCEPT', l, r: this.setTerm() };
      else if (this.eatWord('INTERSECT')) l = { k: 'setop', op: 'INTERSECT', l, r: this.setTerm() };
      else return l;
    }
  }

  private setTerm(): SetBody {
    if (this.isPunct('(')) {
      this.i++;
      const q = this.query();
      this.expectPunct(')');
      return { k: 'nested', q };
    }
    if (this.eatWord('VALUES')) return { k: 'values', rows: this.valuesRows() };
    return this.select();
  }

  private valuesRows(): Expr[][] {
    const rows: Expr[][] = [];
    do {
      this.expectPunct('(');
      rows.push(this.exprList());
      this.expectPunct(')');
    } while (this.eatPunct(','));
    return rows;
  }

  private select(): Select {
    this.expectWord('SELECT');
    const distinct = this.eatWord('DISTINCT');
    if (!distinct) this.eatWord('ALL');
    let top: Expr | undefined;
    if (this.eatWord('TOP')) top = this.primary();
    const items: SelectItem[] = [];
    do items.push(this.selectItem());
    while (this.eatPunct(','));
    const s: Select = { k: 'select', distinct, ...(top ? { top } : {}), items, from: [] };
    if (this.eatWord('FROM')) s.from = this.fromList();
    if (this.eatWord('WHERE')) s.where = this.expr();
    if (this.isWord('START', 'WITH') || this.isWord('CONNECT', 'BY')) throw unsupported('CONNECT BY');
    if (this.eatWord('GROUP', 'BY')) {
      if (this.eatWord('ALL')) s.groupBy = 'ALL';
      else {
        for (const kind of ['ROLLUP', 'CUBE'] as const) {
          if (this.isWord(kind) && this.isPunct('(', 1)) {
            this.i += 2;
            s.groupKind = kind;
            s.groupBy = this.exprList();
            this.expectPunct(')');
          }
        }
        if (!s.groupBy && this.eatWord('GROUPING', 'SETS')) {
          s.groupKind = 'GROUPING SETS';
          this.expectPunct('(');
          s.groupBy = this.exprList();
          this.expectPunct(')');
        }
        s.groupBy ??= this.exprList();
      }
    }
    if (this.eatWord('HAVING')) s.having = this.expr();
    if (this.eatWord('QUALIFY')) s.qualify = this.expr();
    if (this.isWord('WINDOW')) throw unsupported('named WINDOW clauses');
    return s;
  }

  private selectItem(): SelectItem {
    const from = this.i;
    if (this.isPunct('*')) {
      this.i++;
      return { e: { k: 'star', qualifier: [], exclude: this.starExclude() }, text: '*' };
    }
    // t.* and db.s.t.*
    let k = 0;
    while (this.isIdentStartAt(k) && this.isPunct('.', k + 1)) {
      if (this.isPunct('*', k + 2)) {
        const qualifier: Ident[] = [];
        while (!this.isPunct('*')) {
          qualifier.push(this.ident());
          this.expectPunct('.');
        }
        this.i++;
        return { e: { k: 'star', qualifier, exclude: this.starExclude() }, text: this.textOf(from, this.i) };
      }
      k += 2;
    }
    const e = this.expr();
    const text = this.textOf(from, this.i);
    const alias = this.optionalAlias();
    return { e, ...(alias ? { alias } : {}), text };
  }

  private isIdentStartAt(k: number): boolean {
    return this.isIdentStart(k);
  }

  private starExclude(): Ident[] {
    if (this.eatWord('EXCLUDE')) {
      if (this.isPunct('(')) return this.identList();
      return [this.ident()];
    }
    if (this.isWord('RENAME') || this.isWord('REPLACE') || this.isWord('ILIKE')) throw unsupported(`SELECT * ${this.word()!}`);
    return [];
  }

  private fromList(): FromItem[] {
    const out = [this.fromJoin()];
    while (this.eatPunct(',')) out.push(this.fromJoin());
    return out;
  }

  private fromJoin(): FromItem {
    let l = this.fromPrimary();
    for (;;) {
      const natural = this.eatWord('NATURAL');
      let type: 'INNER' | 'LEFT' | 'RIGHT' | 'FULL' | 'CROSS' | undefined;
      if (this.eatWord('JOIN')) type = 'INNER';
      else if (this.eatWord('INNER', 'JOIN')) type = 'INNER';
      else if (this.eatWord('CROSS', 'JOIN')) type = 'CROSS';
      else {
        for (const side of ['LEFT', 'RIGHT', 'FULL'] as const) {
          if (this.isWord(side) && (this.isWord(side, 'JOIN') || this.isWord(side, 'OUTER', 'JOIN'))) {
            this.i++;
            this.eatWord('OUTER');
            this.expectWord('JOIN');
            type = side;
          }
        }
      }
      if (this.isWord('ASOF')) throw unsupported('ASOF JOIN');
      if (!type) {
        if (natural) this.fail();
        return l;
      }
      const r = this.fromPrimary();
      const join: FromItem = { k: 'join', type, natural, l, r };
      if (type !== 'CROSS' && !natural) {
        if (this.eatWord('ON')) join.on = this.expr();
        else if (this.eatWord('USING')) join.using = this.identList();
        else if (r.k !== 'tableFn' && !(r.k === 'derived' && r.lateral)) this.fail();
      }
      l = join;
    }
  }

  private aliasAndColumns(): { alias?: Ident; columns?: Ident[] } {
    const alias = this.optionalAlias();
    if (!alias) return {};
    if (this.isPunct('(')) return { alias, columns: this.identList() };
    return { alias };
  }

  fromPrimary(): FromItem {
    const lateral = this.eatWord('LATERAL');
    if (this.isPunct('(')) {
      this.i++;
      if (this.word() === 'SELECT' || this.word() === 'WITH' || this.word() === 'VALUES') {
        const q = this.query();
        this.expectPunct(')');
        return { k: 'derived', q, lateral, ...this.aliasAndColumns() };
      }
      if (lateral) this.fail();
      const inner = this.fromJoin();
      this.expectPunct(')');
      return inner;
    }
    if (!lateral && this.eatWord('VALUES')) {
      const rows = this.valuesRows();
      return { k: 'values', rows, ...this.aliasAndColumns() };
    }
    if (this.isWord('TABLE') && this.isPunct('(', 1)) {
      this.i += 2;
      const e = this.primary();
      if (e.k !== 'fn') this.fail();
      this.expectPunct(')');
      return { k: 'tableFn', fn: e, lateral, ...this.aliasAndColumns() };
    }
    if (this.peek()?.kind === 'punct' && this.peek()!.text === '@') throw unsupported('stages');
    const start = this.i;
    const name = this.name();
    if (this.isPunct('(')) {
      this.i = start;
      const e = this.primary();
      if (e.k !== 'fn') this.fail();
      return { k: 'tableFn', fn: e, lateral, ...this.aliasAndColumns() };
    }
    if (lateral) this.fail();
    const item: Extract<FromItem, { k: 'table' }> = { k: 'table', name };
    if (this.eatWord('CHANGES')) {
      this.expectPunct('(');
      this.expectWord('INFORMATION');
      this.expectPunct('=>');
      const info = this.eatWord('DEFAULT') ? 'DEFAULT' : this.eatWord('APPEND_ONLY') ? 'APPEND_ONLY' : this.fail();
      this.expectPunct(')');
      item.changes = { info };
    }
    const at = this.timeTravel();
    if (at) item.at = at;
    if (item.changes && this.isWord('END')) throw unsupported('CHANGES … END(…)');
    if (this.isWord('SAMPLE') || this.isWord('TABLESAMPLE')) throw unsupported(this.word()!);
    if (this.isWord('PIVOT') || this.isWord('UNPIVOT') || this.isWord('MATCH_RECOGNIZE')) throw unsupported(this.word()!);
    return { ...item, ...this.aliasAndColumns() };
  }

  /** A whole `AT(…)` / `BEFORE(…)` clause (of CREATE STREAM). */
  timeTravelClause(): TimeTravel {
    const t = this.timeTravel();
    if (!t || !this.done) this.fail();
    return t;
  }

  private timeTravel(): TimeTravel | undefined {
    const kind = this.isWord('AT') ? 'AT' : this.isWord('BEFORE') ? 'BEFORE' : undefined;
    if (!kind || !this.isPunct('(', 1)) return undefined;
    this.i += 2;
    const param = this.word();
    if (param !== 'TIMESTAMP' && param !== 'OFFSET' && param !== 'STATEMENT' && param !== 'STREAM') return this.fail();
    this.i++;
    this.expectPunct('=>');
    const e = this.expr();
    this.expectPunct(')');
    return { kind, param, e };
  }

  private orderList(): OrderItem[] {
    const out: OrderItem[] = [];
    do {
      const e = this.expr();
      const desc = this.eatWord('DESC');
      if (!desc) this.eatWord('ASC');
      let nulls: 'FIRST' | 'LAST' | undefined;
      if (this.eatWord('NULLS')) nulls = this.eatWord('FIRST') ? 'FIRST' : this.eatWord('LAST') ? 'LAST' : this.fail();
      out.push({ e, desc, ...(nulls ? { nulls } : {}) });
    } while (this.eatPunct(','));
    return out;
  }

  // -------------------------------------------------------------------------------------
  // Expressions
  // -------------------------------------------------------------------------------------

  exprList(): Expr[] {
    const out = [this.expr()];
    while (this.eatPunct(',')) out.push(this.expr());
    return out;
  }

  expr(): Expr {
    return this.or();
  }

  private or(): Expr {
    let l = this.and();
    while (this.eatWord('OR')) l = { k: 'bin', op: 'OR', l, r: this.and() };
    return l;
  }

  private and(): Expr {
    let l = this.not();
    while (this.eatWord('AND')) l = { k: 'bin', op: 'AND', l, r: this.not() };
    return l;
  }

  private not(): Expr {
    if (this.eatWord('NOT')) return { k: 'unary', op: 'NOT', e: this.not() };
    return this.predicate();
  }

  private predicate(): Expr {
    const l = this.additive();
    const t = this.peek();
    if (t?.kind === 'punct' && COMPARISON.has(t.text)) {
      this.i++;
      if (this.isWord('ANY') || this.isWord('ALL') || this.isWord('SOME')) throw unsupported(`${t.text} ${this.word()!} (subquery)`);
      return { k: 'bin', op: t.text === '!=' ? '<>' : t.text, l, r: this.additive() };
    }
    if (this.eatWord('IS')) {
      const not = this.eatWord('NOT');
      if (this.eatWord('NULL')) return { k: 'is', e: l, not, what: 'NULL' };
      if (this.eatWord('TRUE')) return { k: 'is', e: l, not, what: 'TRUE' };
      if (this.eatWord('FALSE')) return { k: 'is', e: l, not, what: 'FALSE' };
      if (this.eatWord('DISTINCT', 'FROM')) return { k: 'distinctFrom', l, r: this.additive(), not };
      return this.fail();
    }
    const not = this.isWord('NOT') && ['BETWEEN', 'IN', 'LIKE', 'ILIKE', 'RLIKE', 'REGEXP'].includes(this.word(1) ?? '') ? (this.i++, true) : false;
    if (this.eatWord('BETWEEN')) {
      const lo = this.additive();
      this.expectWord('AND');
      return { k: 'between', e: l, lo, hi: this.additive(), not };
    }
    if (this.eatWord('IN')) {
      this.expectPunct('(');
      if (this.word() === 'SELECT' || this.word() === 'WITH') {
        const query = this.query();
        this.expectPunct(')');
        return { k: 'in', e: l, query, not };
      }
      const list = this.exprList();
      this.expectPunct(')');
      return { k: 'in', e: l, list, not };
    }
    for (const op of ['LIKE', 'ILIKE', 'RLIKE', 'REGEXP'] as const) {
      if (this.eatWord(op)) {
        if (this.isWord('ANY') || this.isWord('ALL')) throw unsupported(`${op} ${this.word()!}`);
        const pattern = this.additive();
        const escape = this.eatWord('ESCAPE') ? this.additive() : undefined;
        return { k: 'like', op: op === 'REGEXP' ? 'RLIKE' : op, e: l, pattern, ...(escape ? { escape } : {}), not };
      }
    }
    if (not) this.fail();
    return l;
  }

  private additive(): Expr {
    let l = this.multiplicative();
    for (;;) {
      const t = this.peek();
      if (t?.kind === 'punct' && (t.text === '+' || t.text === '-' || t.text === '||')) {
        this.i++;
        l = { k: 'bin', op: t.text, l, r: this.multiplicative() };
      } else return l;
    }
  }

  private multiplicative(): Expr {
    let l = this.unary();
    for (;;) {
      const t = this.peek();
      if (t?.kind === 'punct' && (t.text === '*' || t.text === '/' || t.text === '%')) {
        this.i++;
        l = { k: 'bin', op: t.text, l, r: this.unary() };
      } else return l;
    }
  }

  private unary(): Expr {
    if (this.isPunct('-') || this.isPunct('+')) {
      const op = this.peek()!.text as '-' | '+';
      this.i++;
      const e = this.unary();
      if (op === '-' && e.k === 'num') return { k: 'num', v: e.v.startsWith('-') ? e.v.slice(1) : `-${e.v}` };
      return { k: 'unary', op, e };
    }
    return this.postfix(this.primary());
  }

  /** `::type`, `:path`, `[index]` and `.field` after a path. */
  private postfix(e: Expr): Expr {
    for (;;) {
      if (this.eatPunct('::')) {
        e = { k: 'cast', e, type: this.dataType(), try: false };
        continue;
      }
      if (this.isPunct(':')) {
        this.i++;
        const steps: PathStep[] = [{ key: this.pathKey() }];
        e = e.k === 'path' ? { ...e, steps: [...e.steps, ...steps] } : { k: 'path', e, steps };
        continue;
      }
      if (this.isPunct('[')) {
        this.i++;
        const index = this.expr();
        this.expectPunct(']');
        const step: PathStep = index.k === 'str' ? { key: index.v } : { index };
        e = e.k === 'path' ? { ...e, steps: [...e.steps, step] } : { k: 'path', e, steps: [step] };
        continue;
      }
      if (e.k === 'path' && this.isPunct('.')) {
        this.i++;
        e = { ...e, steps: [...e.steps, { key: this.pathKey() }] };
        continue;
      }
      return e;
    }
  }

  private pathKey(): string {
    const t = this.peek();
    if (t?.kind === 'qident') {
      this.i++;
      return t.text.slice(1, -1).replaceAll('""', '"');
    }
    if (t?.kind === 'word') {
      this.i++;
      // Path keys are case-sensitive and taken as written.
      return t.text;
    }
    return this.fail();
  }

  private primary(): Expr {
    const t = this.peek();
    if (!t) return this.fail();
    if (t.kind === 'number') {
      this.i++;
      return { k: 'num', v: t.text };
    }
    if (t.kind === 'string') {
      this.i++;
      return { k: 'str', v: unquoteString(t.text) };
    }
    if (t.kind === 'bind') {
      this.i++;
      return { k: 'bind', index: t.text === '?' ? this.bindCount++ : Number(t.text.slice(1)) - 1, marker: t.text };
    }
    if (t.kind === 'punct') {
      if (t.text === '(') {
        this.i++;
        if (this.word() === 'SELECT' || this.word() === 'WITH') {
          const q = this.query();
          this.expectPunct(')');
          return { k: 'subquery', q };
        }
        const items = this.exprList();
        this.expectPunct(')');
        return items.length === 1 ? items[0]! : { k: 'row', items };
      }
      if (t.text === '[') {
        this.i++;
        const items = this.isPunct(']') ? [] : this.exprList();
        this.expectPunct(']');
        return { k: 'fn', name: 'ARRAY_CONSTRUCT', args: items.map((e) => ({ e })), distinct: false, star: false };
      }
      if (t.text === '{') {
        this.i++;
        const args: FnArg[] = [];
        if (!this.isPunct('}')) {
          do {
            args.push({ e: { k: 'str', v: this.stringLiteral() } });
            this.expectPunct(':');
            args.push({ e: this.expr() });
          } while (this.eatPunct(','));
        }
        this.expectPunct('}');
        return { k: 'fn', name: 'OBJECT_CONSTRUCT_KEEP_NULL', args, distinct: false, star: false };
      }
      return this.fail();
    }
    if (t.kind === 'qident') return this.columnRef();
    const u = t.u;
    switch (u) {
      case 'NULL':
        this.i++;
        return { k: 'null' };
      case 'TRUE':
      case 'FALSE':
        this.i++;
        return { k: 'bool', v: u === 'TRUE' };
      case 'CASE':
        return this.caseExpr();
      case 'CAST':
      case 'TRY_CAST': {
        this.i++;
        this.expectPunct('(');
        const e = this.expr();
        this.expectWord('AS');
        const type = this.dataType();
        this.expectPunct(')');
        return { k: 'cast', e, type, try: u === 'TRY_CAST' };
      }
      case 'EXISTS': {
        this.i++;
        this.expectPunct('(');
        const q = this.query();
        this.expectPunct(')');
        return { k: 'exists', q };
      }
      case 'INTERVAL': {
        if (this.peek(1)?.kind !== 'string') break;
        this.i++;
        return { k: 'interval', v: this.stringLiteral() };
      }
      case 'DATE':
      case 'TIME':
      case 'TIMESTAMP':
      case 'TIMESTAMP_NTZ':
      case 'TIMESTAMP_LTZ':
      case 'TIMESTAMP_TZ':
        if (this.peek(1)?.kind === 'string') {
          this.i++;
          return { k: 'typed', type: u, v: this.stringLiteral() };
        }
        break;
      case 'CURRENT_DATE':
      case 'CURRENT_TIME':
      case 'CURRENT_TIMESTAMP':
      case 'LOCALTIME':
      case 'LOCALTIMESTAMP':
        if (!this.isPunct('(', 1)) {
          this.i++;
          return { k: 'fn', name: u, args: [], distinct: false, star: false };
        }
        break;
      case 'EXTRACT':
        if (this.isPunct('(', 1)) {
          this.i += 2;
          const part = this.peek();
          if (part?.kind !== 'word' && part?.kind !== 'string') this.fail();
          this.i++;
          this.expectWord('FROM');
          const e = this.expr();
          this.expectPunct(')');
          const partName = part!.kind === 'string' ? unquoteString(part!.text) : part!.text;
          return { k: 'fn', name: 'DATE_PART', args: [{ e: { k: 'col', parts: [{ name: partName.toUpperCase(), quoted: false }] } }, { e }], distinct: false, star: false, special: 'extract' };
        }
        break;
      case 'POSITION':
        if (this.isPunct('(', 1)) {
          const save = this.i;
          this.i += 2;
          const needle = this.additive();
          if (this.eatWord('IN')) {
            const hay = this.expr();
            this.expectPunct(')');
            return { k: 'fn', name: 'POSITION', args: [{ e: needle }, { e: hay }], distinct: false, star: false, special: 'position' };
          }
          this.i = save;
        }
        break;
    }
    if (t.kind === 'word' && this.isPunct('(', 1) && (!RESERVED.has(u) || ['LEFT', 'RIGHT', 'ANY'].includes(u))) return this.call();
    if (t.kind === 'word' && this.isPunct('.', 1) && this.peek(2)?.kind === 'word' && this.isPunct('(', 3)) return this.call();
    return this.columnRef();
  }

  private columnRef(): Expr {
    const parts = [this.ident()];
    while (this.isPunct('.') && (this.peek(1)?.kind === 'word' || this.peek(1)?.kind === 'qident')) {
      this.i++;
      parts.push(this.ident());
    }
    if (parts.length > 4) this.fail();
    return { k: 'col', parts };
  }

  private caseExpr(): Expr {
    this.expectWord('CASE');
    const operand = this.isWord('WHEN') ? undefined : this.expr();
    const whens: [Expr, Expr][] = [];
    while (this.eatWord('WHEN')) {
      const c = this.expr();
      this.expectWord('THEN');
      whens.push([c, this.expr()]);
    }
    if (whens.length === 0) this.fail();
    const otherwise = this.eatWord('ELSE') ? this.expr() : undefined;
    this.expectWord('END');
    return { k: 'case', ...(operand ? { operand } : {}), whens, ...(otherwise ? { else: otherwise } : {}) };
  }

  private call(): Expr {
    let name = this.peek()!.u;
    this.i++;
    if (this.eatPunct('.')) {
      // A qualified function name: only Snowflake's own system functions are known.
      name = `${name}.${this.peek()!.u}`;
      this.i++;
    }
    this.expectPunct('(');
    const fn: Extract<Expr, { k: 'fn' }> = { k: 'fn', name, args: [], distinct: false, star: false };
    if (this.eatPunct('*')) fn.star = true;
    else if (!this.isPunct(')')) {
      fn.distinct = this.eatWord('DISTINCT');
      if (!fn.distinct) this.eatWord('ALL');
      do {
        if ((this.peek()?.kind === 'word' || this.peek()?.kind === 'qident') && this.isPunct('=>', 1)) {
          const argName = this.peek()!.kind === 'word' ? this.peek()!.u : this.peek()!.text.slice(1, -1);
          this.i += 2;
          fn.args.push({ name: argName, e: this.expr() });
        } else fn.args.push({ e: this.expr() });
      } while (this.eatPunct(','));
      if (this.isWord('ORDER', 'BY')) this.fail();
      if (this.isWord('IGNORE', 'NULLS') || this.isWord('RESPECT', 'NULLS')) {
        fn.ignoreNulls = this.word() === 'IGNORE';
        this.i += 2;
      }
    }
    this.expectPunct(')');
    if (this.eatWord('WITHIN', 'GROUP')) {
      this.expectPunct('(');
      this.expectWord('ORDER', 'BY');
      fn.withinGroup = this.orderList();
      this.expectPunct(')');
    }
    if (this.isWord('IGNORE', 'NULLS') || this.isWord('RESPECT', 'NULLS')) {
      fn.ignoreNulls = this.word() === 'IGNORE';
      this.i += 2;
    }
    if (this.eatWord('OVER')) fn.over = this.windowSpec();
    return fn;
  }

  private windowSpec(): WindowSpec {
    this.expectPunct('(');
    const w: WindowSpec = { partitionBy: [], orderBy: [] };
    if (this.eatWord('PARTITION', 'BY')) w.partitionBy = this.exprList();
    if (this.eatWord('ORDER', 'BY')) w.orderBy = this.orderList();
    if (this.isWord('ROWS') || this.isWord('RANGE')) {
      const unit = this.word()!;
      this.i++;
      const bound = (): string => {
        if (this.eatWord('UNBOUNDED', 'PRECEDING')) return 'UNBOUNDED PRECEDING';
        if (this.eatWord('UNBOUNDED', 'FOLLOWING')) return 'UNBOUNDED FOLLOWING';
        if (this.eatWord('CURRENT', 'ROW')) return 'CURRENT ROW';
        const n = this.integer();
        if (this.eatWord('PRECEDING')) return `${n} PRECEDING`;
        this.expectWord('FOLLOWING');
        return `${n} FOLLOWING`;
      };
      if (this.eatWord('BETWEEN')) {
        const lo = bound();
        this.expectWord('AND');
        w.frame = `${unit} BETWEEN ${lo} AND ${bound()}`;
      } else w.frame = `${unit} ${bound()}`;
    }
    this.expectPunct(')');
    return w;
  }
}

/** Parses one statement of Snowflake SQL. */
export function parseStatement(source: string, tokens: Token[]): Statement {
  return new Parser(source, tokens).statement();
}

/** Parses a query (the body of a dynamic table, a view …). */
export function parseQuery(source: string, tokens: Token[]): Query {
  const p = new Parser(source, tokens);
  const q = p.query();
  if (!p.done) p.fail();
  return q;
}

export { SnowflakeError };
