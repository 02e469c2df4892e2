/**
 * Prints the Snowflake tree (ast.ts) as DuckDB SQL. Every identifier is printed quoted with
 * the name Snowflake resolved; functions and types go through the allowlists in
 * functions.ts; relations that are not plain tables (streams, INFORMATION_SCHEMA, time
 * travel) are handed to the engine through hooks.
 */
import type { ColumnDef, Expr, FromItem, Ident, OrderItem, PathStep, Query, Select, SetBody, Statement, WindowSpec } from './ast.js';
import { SnowflakeError, unknownFunction, unsupported } from './errors.js';
import { FUNCTIONS, duckType, isTextType, isVariantType, jsonPath, lookupFunction, unjson, type FnContext } from './functions.js';
import { literal, quote } from './sql.js';

type TableRef = Extract<FromItem, { k: 'table' }>;

export interface PrintHooks {
  /** The literal SQL for a bind, by zero-based position. */
  bind(index: number, marker: string): string;
  /** SQL replacing a table reference (a stream, an INFORMATION_SCHEMA view, time travel), or undefined for a plain table. */
  relation(ref: TableRef): string | undefined;
  /** A call of a SYSTEM$ function. */
  systemFunction(name: string, args: Expr[]): string;
  /** SQL for a session function such as CURRENT_USER(), or undefined. */
  sessionFunction(name: string): string | undefined;
}

export const ident = (i: Ident) => quote(i.name);
export const objectName = (parts: Ident[]) => parts.map(ident).join('.');

const SESSION_FUNCTIONS = new Set(['CURRENT_USER', 'CURRENT_ROLE', 'CURRENT_WAREHOUSE', 'CURRENT_DATABASE', 'CURRENT_SCHEMA', 'CURRENT_ACCOUNT', 'CURRENT_REGION', 'CURRENT_SESSION']);

export class DuckPrinter {
  constructor(private readonly hooks: PrintHooks) {}

  // -------------------------------------------------------------------------------------
  // Statements
  // -------------------------------------------------------------------------------------

  /** DuckDB statements for one Snowflake statement (INSERT OVERWRITE is two). */
  statement(s: Statement): string[] {
    switch (s.k) {
      case 'query':
        return [this.query(s.q)];
      case 'insert': {
        const target = objectName(s.table);
        const cols = s.columns ? ` (${s.columns.map(ident).join(', ')})` : '';
        const insert = `INSERT INTO ${target}${cols} ${this.query(s.source)}`;
        return s.overwrite ? [`DELETE FROM ${target}`, insert] : [insert];
      }
      case 'update':
        return [
          `UPDATE ${objectName(s.table)}${s.alias ? ` AS ${ident(s.alias)}` : ''} SET ${s.sets.map(([c, e]) => `${ident(c)} = ${this.expr(e)}`).join(', ')}` +
            `${s.from.length ? ` FROM ${this.fromList(s.from)}` : ''}${s.where ? ` WHERE ${this.expr(s.where)}` : ''}`,
        ];
      case 'delete':
        return [
          `DELETE FROM ${objectName(s.table)}${s.alias ? ` AS ${ident(s.alias)}` : ''}${s.using.length ? ` USING ${this.fromList(s.using)}` : ''}` +
            `${s.where ? ` WHERE ${this.expr(s.where)}` : ''}`,
        ];
      case 'merge': {
        const clauses = s.clauses.map((c) => {
          const head = `WHEN ${c.matched ? 'MATCHED' : 'NOT MATCHED'}${c.cond ? ` AND ${this.expr(c.cond)}` : ''} THEN `;
          if (c.action.k === 'update') return `${head}UPDATE SET ${c.action.sets.map(([col, e]) => `${ident(col)} = ${this.expr(e)}`).join(', ')}`;
          if (c.action.k === 'delete') return `${head}DELETE`;
          const cols = c.action.columns ? ` (${c.action.columns.map(ident).join(', ')})` : '';
          return `${head}INSERT${cols} VALUES (${c.action.values.map((e) => this.expr(e)).join(', ')})`;
        });
        return [`MERGE INTO ${objectName(s.table)}${s.alias ? ` AS ${ident(s.alias)}` : ''} USING ${this.fromItem(s.source)} ON ${this.expr(s.on)} ${clauses.join(' ')}`];
      }
      case 'createTable': {
        const head = `CREATE ${s.orReplace ? 'OR REPLACE ' : ''}${s.temporary ? 'TEMPORARY ' : ''}TABLE ${s.ifNotExists ? 'IF NOT EXISTS ' : ''}${objectName(s.name)}`;
        if (s.like) return [`${head} AS SELECT * FROM ${objectName(s.like)} LIMIT 0`];
        if (s.as && !s.columns) return [`${head} AS ${this.query(s.as)}`];
        if (s.as) throw unsupported('CREATE TABLE with both a column list and AS');
        const cols = s.columns!.map((c) => this.columnDef(c));
        if (s.primaryKey) cols.push(`PRIMARY KEY (${s.primaryKey.map(ident).join(', ')})`);
        return [`${head} (${cols.join(', ')})`];
      }
      case 'createView': {
        const cols = s.columns ? ` (${s.columns.map(ident).join(', ')})` : '';
        return [`CREATE ${s.orReplace ? 'OR REPLACE ' : ''}VIEW ${s.ifNotExists ? 'IF NOT EXISTS ' : ''}${objectName(s.name)}${cols} AS ${this.query(s.as)}`];
      }
      case 'createSchema':
        return [
          ...(s.orReplace ? [`DROP SCHEMA IF EXISTS ${objectName(s.name)} CASCADE`] : []),
          `CREATE SCHEMA ${s.ifNotExists ? 'IF NOT EXISTS ' : ''}${objectName(s.name)}`,
        ];
      case 'drop':
        return [`DROP ${s.what} ${s.ifExists ? 'IF EXISTS ' : ''}${objectName(s.name)}${s.cascade || s.what === 'SCHEMA' ? ' CASCADE' : ''}`];
      case 'truncate':
        return [`DELETE FROM ${objectName(s.name)}`];
      case 'alterTable': {
        const t = `ALTER TABLE ${s.ifExists ? 'IF EXISTS ' : ''}${objectName(s.name)}`;
        const a = s.action;
        switch (a.k) {
          case 'addColumn':
            return [`${t} ADD COLUMN ${a.ifNotExists ? 'IF NOT EXISTS ' : ''}${this.columnDef(a.col)}`];
          case 'dropColumn':
            return a.names.map((n) => `${t} DROP COLUMN ${a.ifExists ? 'IF EXISTS ' : ''}${ident(n)}`);
          case 'renameColumn':
            return [`${t} RENAME COLUMN ${ident(a.from)} TO ${ident(a.to)}`];
          case 'renameTo':
            return [`${t} RENAME TO ${ident(a.to[a.to.length - 1]!)}`];
          case 'setChangeTracking':
            return [];
        }
      }
    }
  }

  private columnDef(c: ColumnDef): string {
    let out = `${ident(c.name)} ${duckType(c.type)}`;
    if (c.notNull) out += ' NOT NULL';
    if (c.primaryKey) out += ' PRIMARY KEY';
    if (c.unique) out += ' UNIQUE';
    if (c.default) out += ` DEFAULT ${this.expr(c.default)}`;
    return out;
  }

  // -------------------------------------------------------------------------------------
  // Queries
  // -------------------------------------------------------------------------------------

  query(q: Query): string {
    let out = '';
    if (q.with) {
      out += `WITH ${q.with.recursive ? 'RECURSIVE ' : ''}${q.with.ctes
        .map((c) => `${ident(c.name)}${c.columns ? `(${c.columns.map(ident).join(', ')})` : ''} AS (${this.query(c.q)})`)
        .join(', ')} `;
    }
    out += this.setBody(q.body);
    if (q.orderBy) out += ` ORDER BY ${this.orderList(q.orderBy)}`;
    const limit = q.limit ?? (q.body.k === 'select' ? q.body.top : undefined);
    if (limit) out += ` LIMIT ${this.expr(limit)}`;
    if (q.offset) out += ` OFFSET ${this.expr(q.offset)}`;
    return out;
  }

  private setBody(b: SetBody): string {
    switch (b.k) {
      case 'select':
        return this.select(b);
      case 'setop':
        return `${this.setBody(b.l)} ${b.op} ${this.setBody(b.r)}`;
      case 'values':
        return `SELECT * FROM ${this.values(b.rows)}`;
      case 'nested':
        return `(${this.query(b.q)})`;
    }
  }

  /** VALUES with Snowflake's column names, COLUMN1 … */
  private values(rows: Expr[][], alias?: Ident, columns?: Ident[]): string {
    const width = rows[0]?.length ?? 0;
    if (rows.some((r) => r.length !== width)) throw new SnowflakeError('002021', '42601', 'SQL compilation error:\nThe VALUES rows have different numbers of expressions');
    const names = columns ? columns.map(ident) : Array.from({ length: width }, (_, i) => quote(`COLUMN${i + 1}`));
    return `(VALUES ${rows.map((r) => `(${r.map((e) => this.expr(e)).join(', ')})`).join(', ')}) AS ${alias ? ident(alias) : '"VALUES"'}(${names.join(', ')})`;
  }

  private select(s: Select): string {
    let out = `SELECT ${s.distinct ? 'DISTINCT ' : ''}`;
    out += s.items
      .map((item) => {
        const e = this.expr(item.e);
        if (item.alias) return `${e} AS ${ident(item.alias)}`;
        if (item.e.k === 'col' || item.e.k === 'star') return e;
        return `${e} AS ${quote(item.text)}`;
      })
      .join(', ');
    if (s.from.length) out += ` FROM ${this.fromList(s.from)}`;
    if (s.where) out += ` WHERE ${this.expr(s.where)}`;
    if (s.groupBy === 'ALL') out += ' GROUP BY ALL';
    else if (s.groupBy) {
      const list = s.groupBy.map((e) => this.expr(e)).join(', ');
      out += s.groupKind ? ` GROUP BY ${s.groupKind} (${list})` : ` GROUP BY ${list}`;
    }
    if (s.having) out += ` HAVING ${this.expr(s.having)}`;
    if (s.qualify) out += ` QUALIFY ${this.expr(s.qualify)}`;
    return out;
  }

  fromList(items: FromItem[]): string {
    let out = '';
    items.forEach((item, i) => {
      if (i > 0 && item.k === 'tableFn' && flattenOuter(item)) out += ` LEFT JOIN ${this.fromItem(item)} ON TRUE`;
      else out += `${i > 0 ? ', ' : ''}${this.fromItem(item)}`;
    });
    return out;
  }

  private aliasSql(alias?: Ident, columns?: Ident[]): string {
    if (!alias) return '';
    return ` AS ${ident(alias)}${columns ? `(${columns.map(ident).join(', ')})` : ''}`;
  }

  fromItem(f: FromItem): string {
    switch (f.k) {
      case 'table': {
        const replaced = this.hooks.relation(f);
        if (replaced !== undefined) return `(${replaced})${this.aliasSql(f.alias ?? f.name[f.name.length - 1], f.columns)}`;
        if (f.at || f.changes) throw unsupported(f.changes ? 'CHANGES' : `${f.at!.kind}(…)`);
        return `${objectName(f.name)}${this.aliasSql(f.alias, f.columns)}`;
      }
      case 'derived':
        return `${f.lateral ? 'LATERAL ' : ''}(${this.query(f.q)})${this.aliasSql(f.alias, f.columns)}`;
      case 'values':
        return this.values(f.rows, f.alias, f.columns);
      case 'tableFn':
        return this.tableFunction(f);
      case 'join': {
        const kind = f.type === 'CROSS' ? 'CROSS JOIN' : `${f.natural ? 'NATURAL ' : ''}${f.type === 'INNER' ? '' : `${f.type} `}JOIN`;
        let cond = '';
        if (f.on) cond = ` ON ${this.expr(f.on)}`;
        else if (f.using) cond = ` USING (${f.using.map(ident).join(', ')})`;
        else if (f.type !== 'CROSS' && !f.natural) cond = ' ON TRUE';
        return `${this.fromItem(f.l)} ${kind} ${this.fromItem(f.r)}${cond}`;
      }
    }
  }

  private tableFunction(f: Extract<FromItem, { k: 'tableFn' }>): string {
    const fn = f.fn;
    const named = new Map(fn.args.filter((a) => a.name).map((a) => [a.name!, a.e]));
    const alias = f.alias ?? { name: fn.name, quoted: false };
    if (fn.name === 'GENERATOR') {
      const rows = named.get('ROWCOUNT');
      if (named.has('TIMELIMIT')) throw unsupported('GENERATOR(TIMELIMIT => …)');
      if (!rows || fn.args.length !== 1) throw new SnowflakeError('001003', '42000', 'SQL compilation error:\nGENERATOR takes ROWCOUNT => <constant>');
      if (rows.k !== 'num' && rows.k !== 'bind') throw new SnowflakeError('002141', '42601', 'SQL compilation error:\nargument ROWCOUNT to function GENERATOR needs to be constant');
      return `(SELECT NULL AS "__GENERATOR" FROM range(CAST(${this.expr(rows)} AS BIGINT)))${this.aliasSql(alias, f.columns)}`;
    }
    if (fn.name === 'FLATTEN') {
      const input = named.get('INPUT') ?? (fn.args[0] && !fn.args[0].name ? fn.args[0].e : undefined);
      if (!input) throw new SnowflakeError('001003', '42000', 'SQL compilation error:\nFLATTEN takes INPUT => <expression>');
      for (const k of named.keys()) if (!['INPUT', 'PATH', 'OUTER', 'RECURSIVE', 'MODE'].includes(k)) throw unsupported(`FLATTEN(${k} => …)`);
      const recursive = named.get('RECURSIVE');
      if (recursive && !(recursive.k === 'bool' && !recursive.v)) throw unsupported('FLATTEN(RECURSIVE => TRUE)');
      const mode = named.get('MODE');
      if (mode && !(mode.k === 'str' && mode.v.toUpperCase() === 'BOTH')) throw unsupported(`FLATTEN(MODE => …) other than 'BOTH'`);
      let src = `CAST(${this.expr(input)} AS JSON)`;
      const path = named.get('PATH');
      if (path) {
        if (path.k !== 'str') throw unsupported('FLATTEN(PATH => …) that is not a string literal');
        src = `json_extract(${src}, ${literal(path.v.startsWith('[') ? `$${path.v}` : `$.${path.v}`)})`;
      }
      const body =
        `SELECT CAST(1 AS BIGINT) AS "SEQ", CASE WHEN json_type(${src}) = 'OBJECT' THEN e."key" END AS "KEY", ` +
        `substring(e."fullkey", 3) AS "PATH", CASE WHEN json_type(${src}) = 'ARRAY' THEN CAST(e."key" AS BIGINT) END AS "INDEX", ` +
        `CAST(e."value" AS JSON) AS "VALUE", ${src} AS "THIS" FROM json_each(${src}) AS e ORDER BY e."id"`;
      return `LATERAL (${body})${this.aliasSql(alias, f.columns)}`;
    }
    if (Object.hasOwn(FUNCTIONS, fn.name)) throw new SnowflakeError('002141', '42601', `SQL compilation error:\n${fn.name} is not a table function`);
    throw unknownFunction(fn.name);
  }

  private orderList(items: OrderItem[]): string {
    // Snowflake sorts NULLs last ascending and first descending (NULLs are the largest).
    return items.map((o) => `${this.expr(o.e)} ${o.desc ? 'DESC' : 'ASC'} NULLS ${o.nulls ?? (o.desc ? 'FIRST' : 'LAST')}`).join(', ');
  }

  private window(w: WindowSpec): string {
    const parts: string[] = [];
    if (w.partitionBy.length) parts.push(`PARTITION BY ${w.partitionBy.map((e) => this.expr(e)).join(', ')}`);
    if (w.orderBy.length) parts.push(`ORDER BY ${this.orderList(w.orderBy)}`);
    if (w.frame) parts.push(w.frame);
    return ` OVER (${parts.join(' ')})`;
  }

  // -------------------------------------------------------------------------------------
  // Expressions
  // -------------------------------------------------------------------------------------

  expr(e: Expr): string {
    switch (e.k) {
      case 'num':
        return /[eE]/.test(e.v) ? `CAST(${e.v} AS DOUBLE)` : e.v;
      case 'str':
        return literal(e.v);
      case 'bool':
        return e.v ? 'TRUE' : 'FALSE';
      case 'null':
        return 'NULL';
      case 'typed':
        return `CAST(${literal(e.v)} AS ${duckType({ name: e.type, args: [] })})`;
      case 'interval':
        return `INTERVAL ${literal(e.v)}`;
      case 'bind':
        return this.hooks.bind(e.index, e.marker);
      case 'col':
        return e.parts.map(ident).join('.');
      case 'star': {
        const q = e.qualifier.length ? `${objectName(e.qualifier)}.*` : '*';
        return e.exclude.length ? `${q} EXCLUDE (${e.exclude.map(ident).join(', ')})` : q;
      }
      case 'unary':
        return e.op === 'NOT' ? `(NOT ${this.expr(e.e)})` : `(${e.op}${this.expr(e.e)})`;
      case 'bin':
        return this.binary(e.op, e.l, e.r);
      case 'is':
        return `(${this.expr(e.e)} IS ${e.not ? 'NOT ' : ''}${e.what})`;
      case 'distinctFrom':
        return `(${this.expr(e.l)} IS ${e.not ? 'NOT ' : ''}DISTINCT FROM ${this.expr(e.r)})`;
      case 'between':
        return `(${this.expr(e.e)} ${e.not ? 'NOT ' : ''}BETWEEN ${this.expr(e.lo)} AND ${this.expr(e.hi)})`;
      case 'in': {
        const inner = e.query ? this.query(e.query) : e.list!.map((x) => this.expr(x)).join(', ');
        return `(${this.expr(e.e)} ${e.not ? 'NOT ' : ''}IN (${inner}))`;
      }
      case 'like': {
        if (e.op === 'RLIKE') return `(${e.not ? 'NOT ' : ''}regexp_full_match(${this.expr(e.e)}, ${this.expr(e.pattern)}))`;
        return `(${this.expr(e.e)} ${e.not ? 'NOT ' : ''}${e.op} ${this.expr(e.pattern)}${e.escape ? ` ESCAPE ${this.expr(e.escape)}` : ''})`;
      }
      case 'exists':
        return `(EXISTS (${this.query(e.q)}))`;
      case 'subquery':
        return `(${this.query(e.q)})`;
      case 'case': {
        let out = 'CASE';
        if (e.operand) out += ` ${this.expr(e.operand)}`;
        for (const [w, t] of e.whens) out += ` WHEN ${this.expr(w)} THEN ${this.expr(t)}`;
        if (e.else) out += ` ELSE ${this.expr(e.else)}`;
        return `${out} END`;
      }
      case 'cast':
        return this.cast(e);
      case 'fn':
        return this.call(e);
      case 'path':
        return this.path(e.e, e.steps);
      case 'row':
        return `(${e.items.map((x) => this.expr(x)).join(', ')})`;
    }
  }

  private binary(op: string, l: Expr, r: Expr): string {
    if (op === 'AND' || op === 'OR') return `(${this.expr(l)} ${op} ${this.expr(r)})`;
    // A VARIANT compared with a plain value compares as that value's type, as in Snowflake.
    if (['=', '<>', '<', '<=', '>', '>='].includes(op)) {
      const lv = this.isVariant(l);
      const rv = this.isVariant(r);
      if (lv !== rv) {
        const [v, other] = lv ? [l, r] : [r, l];
        const vs = this.unwrapVariant(v, other);
        const os = this.expr(other);
        return lv ? `(${vs} ${op} ${os})` : `(${os} ${op} ${vs})`;
      }
    }
    if (op === '||') return `(sf_str(${this.expr(l)}) || sf_str(${this.expr(r)}))`;
    return `(${this.expr(l)} ${op} ${this.expr(r)})`;
  }

  private unwrapVariant(v: Expr, other: Expr): string {
    const s = `CAST(${this.expr(v)} AS JSON)`;
    if (other.k === 'num') return `TRY_CAST(json_extract_string(${s}, '$') AS DOUBLE)`;
    if (other.k === 'bool') return `TRY_CAST(json_extract_string(${s}, '$') AS BOOLEAN)`;
    if (other.k === 'typed') return `TRY_CAST(json_extract_string(${s}, '$') AS ${duckType({ name: other.type, args: [] })})`;
    return `json_extract_string(${s}, '$')`;
  }

  /** Whether an expression is semi-structured (VARIANT / OBJECT / ARRAY) by its form. */
  isVariant(e: Expr): boolean {
    if (e.k === 'path') return true;
    if (e.k === 'cast') return isVariantType(e.type);
    if (e.k === 'fn') return Object.hasOwn(FUNCTIONS, e.name) && FUNCTIONS[e.name]!.variant === true;
    return false;
  }

  private cast(e: Extract<Expr, { k: 'cast' }>): string {
    const target = duckType(e.type);
    const inner = this.expr(e.e);
    const op = e.try ? 'TRY_CAST' : 'CAST';
    if (isVariantType(e.type)) return this.isVariant(e.e) ? inner : `to_json(${inner})`;
    if (isTextType(e.type)) return `sf_str(${inner})`;
    if (this.isVariant(e.e)) return `${op}(json_extract_string(CAST(${inner} AS JSON), '$') AS ${target})`;
    const lit = e.e.k === 'num' || e.e.k === 'str' || e.e.k === 'null' || e.e.k === 'bool' || e.e.k === 'bind' || e.e.k === 'typed';
    return unjson(inner, lit, (x) => `${op}(${x} AS ${target})`);
  }

  private path(base: Expr, steps: PathStep[]): string {
    const src = `CAST(${this.expr(base)} AS JSON)`;
    const literalSteps: ({ key: string } | { index: number })[] = [];
    let dynamic: string | undefined;
    for (const s of steps) {
      if ('key' in s) literalSteps.push({ key: s.key });
      else if (s.index.k === 'num' && /^\d+$/.test(s.index.v)) literalSteps.push({ index: Number(s.index.v) });
      else {
        dynamic = `'${jsonPath(literalSteps).replaceAll("'", "''")}[' || CAST(${this.expr(s.index)} AS VARCHAR) || ']'`;
        if (steps.indexOf(s) !== steps.length - 1) throw unsupported('a computed array index followed by more path steps');
      }
    }
    return `json_extract(${src}, ${dynamic ?? literal(jsonPath(literalSteps))})`;
  }

  private call(e: Extract<Expr, { k: 'fn' }>): string {
    if (e.name.startsWith('SYSTEM$')) return this.hooks.systemFunction(e.name, e.args.map((a) => a.e));
    if (SESSION_FUNCTIONS.has(e.name)) {
      if (e.args.length) throw unknownFunction(e.name);
      const s = this.hooks.sessionFunction(e.name);
      if (s === undefined) throw unsupported(`${e.name}()`);
      return s;
    }
    if (e.name === 'GENERATOR' || e.name === 'FLATTEN') {
      throw new SnowflakeError('002141', '42601', `SQL compilation error:\n${e.name} is a table function: use it in FROM TABLE(${e.name}(…))`);
    }
    const def = lookupFunction(e);
    const args = e.args.map((a) => a.e);
    let overPrinted = false;
    const ctx: FnContext = {
      call: e,
      args,
      a: (i) => this.expr(args[i]!),
      print: (x) => this.expr(x),
      over: () => {
        if (!e.over || overPrinted) return '';
        overPrinted = true;
        return this.window(e.over);
      },
      withinGroup: () => (e.withinGroup ? this.orderList(e.withinGroup) : ''),
    };
    const out = def.print(ctx);
    if (e.over && !overPrinted) throw new SnowflakeError('002062', '42601', `SQL compilation error:\n${e.name} is not a window function`);
    return out;
  }
}

function flattenOuter(f: Extract<FromItem, { k: 'tableFn' }>): boolean {
  const outer = f.fn.args.find((a) => a.name === 'OUTER')?.e;
  return f.fn.name === 'FLATTEN' && outer?.k === 'bool' && outer.v;
}
