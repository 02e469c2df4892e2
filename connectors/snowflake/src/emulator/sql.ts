/**
 * A small tokenizer for the Snowflake SQL subset the emulator accepts, and helpers to turn
 * it into DuckDB SQL. Not a parser: it knows strings, quoted identifiers, comments, words,
 * numbers, bind markers and punctuation, which is enough to upper-case identifiers, map
 * type names, substitute binds and replace stream references.
 */

export type TokenKind = 'ws' | 'comment' | 'string' | 'qident' | 'word' | 'number' | 'bind' | 'punct';

export interface Token {
  kind: TokenKind;
  text: string;
}

export class SqlSyntaxError extends Error {}

export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const start = i;
    if (/\s/.test(c)) {
      while (i < n && /\s/.test(sql[i]!)) i++;
      out.push({ kind: 'ws', text: sql.slice(start, i) });
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      out.push({ kind: 'comment', text: sql.slice(start, i) });
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw new SqlSyntaxError('unterminated comment');
      i = end + 2;
      out.push({ kind: 'comment', text: sql.slice(start, i) });
    } else if (c === "'") {
      i++;
      for (;;) {
        if (i >= n) throw new SqlSyntaxError('unterminated string literal');
        if (sql[i] === '\\') i += 2;
        else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
        else if (sql[i] === "'") {
          i++;
          break;
        } else i++;
      }
      out.push({ kind: 'string', text: sql.slice(start, i) });
    } else if (c === '$' && sql[i + 1] === '$') {
      const end = sql.indexOf('$$', i + 2);
      if (end < 0) throw new SqlSyntaxError('unterminated $$ string');
      i = end + 2;
      out.push({ kind: 'string', text: `'${sql.slice(start + 2, end).replaceAll("'", "''")}'` });
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new SqlSyntaxError('unterminated quoted identifier');
        if (sql[i] === '"' && sql[i + 1] === '"') i += 2;
        else if (sql[i] === '"') {
          i++;
          break;
        } else i++;
      }
      out.push({ kind: 'qident', text: sql.slice(start, i) });
    } else if (/[A-Za-z_]/.test(c)) {
      while (i < n && /[A-Za-z0-9_$]/.test(sql[i]!)) i++;
      out.push({ kind: 'word', text: sql.slice(start, i) });
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      while (i < n && /[0-9.eE]/.test(sql[i]!)) {
        if ((sql[i] === 'e' || sql[i] === 'E') && (sql[i + 1] === '-' || sql[i + 1] === '+')) i++;
        i++;
      }
      out.push({ kind: 'number', text: sql.slice(start, i) });
    } else if (c === '?') {
      i++;
      out.push({ kind: 'bind', text: '?' });
    } else if (c === ':' && /[0-9]/.test(sql[i + 1] ?? '') && sql[i - 1] !== ':') {
      i++;
      while (i < n && /[0-9]/.test(sql[i]!)) i++;
      out.push({ kind: 'bind', text: sql.slice(start, i) });
    } else {
      const two = sql.slice(i, i + 2);
      i += ['::', '<=', '>=', '<>', '!=', '||', '=>'].includes(two) ? 2 : 1;
      out.push({ kind: 'punct', text: sql.slice(start, i) });
    }
  }
  return out;
}

export function render(tokens: Token[]): string {
  return tokens.map((t) => t.text).join('');
}

/** Tokens without whitespace and comments. */
export function significant(tokens: Token[]): Token[] {
  return tokens.filter((t) => t.kind !== 'ws' && t.kind !== 'comment');
}

/** Splits on top-level semicolons; empty statements are dropped. */
export function splitStatements(tokens: Token[]): Token[][] {
  const out: Token[][] = [];
  let cur: Token[] = [];
  for (const t of tokens) {
    if (t.kind === 'punct' && t.text === ';') {
      out.push(cur);
      cur = [];
    } else cur.push(t);
  }
  out.push(cur);
  return out.filter((s) => significant(s).length > 0);
}

/** The name an identifier token stands for: quoted ones keep their case, others are upper-cased. */
export function identName(t: Token): string {
  if (t.kind === 'qident') return t.text.slice(1, -1).replaceAll('""', '"');
  return t.text.toUpperCase();
}

/** Quotes a name for DuckDB. */
export function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A SQL string literal. */
export function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** Unquoted type names of Snowflake and the DuckDB type each becomes. */
const TYPE_MAP: Record<string, string> = {
  VARIANT: 'JSON',
  OBJECT: 'JSON',
  ARRAY: 'JSON',
  TIMESTAMP_NTZ: 'TIMESTAMP',
  DATETIME: 'TIMESTAMP',
  TIMESTAMP_LTZ: 'TIMESTAMPTZ',
  TIMESTAMP_TZ: 'TIMESTAMPTZ',
  STRING: 'VARCHAR',
  TEXT: 'VARCHAR',
  FLOAT: 'DOUBLE',
  FLOAT4: 'DOUBLE',
  FLOAT8: 'DOUBLE',
  REAL: 'DOUBLE',
  BYTEINT: 'TINYINT',
  INT: 'BIGINT',
  INTEGER: 'BIGINT',
};

/** Snowflake functions and the DuckDB function each becomes. */
const FUNCTION_MAP: Record<string, string> = {
  OBJECT_CONSTRUCT_KEEP_NULL: 'json_object',
  OBJECT_CONSTRUCT: 'json_object',
  TO_VARCHAR: 'emu_to_varchar',
  TO_CHAR: 'emu_to_varchar',
  IFF: 'emu_iff',
  NVL: 'coalesce',
  CURRENT_VERSION: 'emu_current_version',
  SYSDATE: 'emu_sysdate',
  HASH: 'hash',
  PARSE_JSON: 'json',
  CURRENT_TIMESTAMP: 'now',
  LOCALTIMESTAMP: 'now',
  TRY_PARSE_JSON: 'json',
};

/** Constructs the emulator refuses with an "unsupported" error instead of guessing. */
export const UNSUPPORTED_WORDS = new Set(['CHANGES', 'AT', 'BEFORE', 'QUALIFY_ROW', 'FLATTEN', 'LATERAL', 'PIVOT', 'UNPIVOT', 'SAMPLE', 'TABLESAMPLE', 'CONNECT']);

export interface TranslateHooks {
  /** The literal SQL for a bind, by zero-based position. */
  bind(index: number, marker: string): string;
  /** Replaces a relation reference (after FROM/JOIN/INTO …) when it names a stream or a system view. */
  relation?(parts: string[]): string | undefined;
  /** Replaces a call of a Snowflake system function with literal SQL. */
  systemFunction?(name: string, args: string[]): string;
  /** SQL for session functions such as CURRENT_USER(). */
  sessionFunction?(name: string): string | undefined;
}

const RELATION_INTRO = new Set(['FROM', 'JOIN', 'INTO', 'UPDATE', 'USING', 'TABLE']);
const NOT_AN_ALIAS = new Set([
  'WHERE', 'GROUP', 'ORDER', 'LIMIT', 'JOIN', 'LEFT', 'RIGHT', 'INNER', 'OUTER', 'FULL', 'CROSS', 'UNION', 'EXCEPT',
  'INTERSECT', 'ON', 'USING', 'HAVING', 'QUALIFY', 'WINDOW', 'SET', 'VALUES', 'SELECT', 'MINUS', 'NATURAL', 'ANTI', 'SEMI',
]);

/**
 * Translates one statement's tokens to DuckDB SQL: unquoted identifiers upper-cased (as
 * Snowflake stores them), `$` names quoted, Snowflake type and function names mapped,
 * binds substituted, and relation references replaced through the hooks.
 */
export function translate(tokens: Token[], hooks: TranslateHooks): string {
  const out: string[] = [];
  let bindIndex = 0;
  const sig = tokens.map((t, i) => ({ t, i })).filter(({ t }) => t.kind !== 'ws' && t.kind !== 'comment');
  const posInSig = new Map<number, number>();
  sig.forEach(({ i }, k) => posInSig.set(i, k));
  const nextSig = (k: number) => sig[k + 1]?.t;
  const prevSig = (k: number) => sig[k - 1]?.t;

  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const k = posInSig.get(i);
    if (t.kind === 'bind') {
      out.push(hooks.bind(t.text === '?' ? bindIndex++ : Number(t.text.slice(1)) - 1, t.text));
      continue;
    }
    if ((t.kind === 'word' || t.kind === 'qident') && k !== undefined) {
      const upper = t.text.toUpperCase();
      const prev = prevSig(k);
      const next = nextSig(k);
      const afterDot = prev?.kind === 'punct' && prev.text === '.';
      // A relation name after FROM / JOIN …: possibly a stream or INFORMATION_SCHEMA view.
      if (hooks.relation && prev?.kind === 'word' && RELATION_INTRO.has(prev.text.toUpperCase())) {
        const parts: string[] = [identName(t)];
        let j = k;
        while (sig[j + 1]?.t.text === '.' && sig[j + 2] && (sig[j + 2]!.t.kind === 'word' || sig[j + 2]!.t.kind === 'qident')) {
          parts.push(identName(sig[j + 2]!.t));
          j += 2;
        }
        const replaced = hooks.relation(parts);
        if (replaced !== undefined) {
          const after = sig[j + 1]?.t;
          const hasAlias =
            after !== undefined &&
            ((after.kind === 'word' && (after.text.toUpperCase() === 'AS' || !NOT_AN_ALIAS.has(after.text.toUpperCase()))) || after.kind === 'qident');
          out.push(`(${replaced})${hasAlias ? '' : ` AS ${quote(parts[parts.length - 1]!)}`}`);
          i = sig[j]!.i;
          continue;
        }
      }
      if (t.kind === 'qident') {
        out.push(t.text);
        continue;
      }
      if (next?.kind === 'punct' && next.text === '(' && !afterDot) {
        if (upper.startsWith('SYSTEM$')) {
          const { args, end } = callArgs(sig.map((s) => s.t), k + 1);
          out.push(hooks.systemFunction ? hooks.systemFunction(upper, args) : 'NULL');
          i = sig[end]!.i;
          continue;
        }
        const session = hooks.sessionFunction?.(upper);
        if (session !== undefined) {
          const close = sig[k + 2];
          if (close?.t.text === ')') {
            out.push(session);
            i = close.i;
            continue;
          }
        }
        const fn = FUNCTION_MAP[upper];
        if (fn) {
          out.push(fn);
          continue;
        }
      }
      if (upper.includes('$')) {
        out.push(quote(upper));
        continue;
      }
      const type = TYPE_MAP[upper];
      if (type && !afterDot && !(next?.kind === 'punct' && next.text === '(')) {
        out.push(type);
        continue;
      }
      if ((upper === 'NUMBER' || upper === 'NUMERIC' || upper === 'DECIMAL') && !afterDot) {
        out.push(next?.kind === 'punct' && next.text === '(' ? 'DECIMAL' : 'DECIMAL(38,0)');
        continue;
      }
      out.push(upper);
      continue;
    }
    out.push(t.text);
  }
  return out.join('');
}

/** The arguments (as raw SQL) of a call whose `(` is at significant index `open`, and the index of its `)`. */
export function callArgs(sig: Token[], open: number): { args: string[]; end: number } {
  const args: string[] = [];
  let depth = 0;
  let cur = '';
  for (let j = open; j < sig.length; j++) {
    const t = sig[j]!;
    if (t.text === '(') {
      depth++;
      if (depth === 1) continue;
    } else if (t.text === ')') {
      depth--;
      if (depth === 0) {
        if (cur.trim() !== '') args.push(cur.trim());
        return { args, end: j };
      }
    } else if (t.text === ',' && depth === 1) {
      args.push(cur.trim());
      cur = '';
      continue;
    }
    cur += (cur && t.kind !== 'punct' ? ' ' : '') + t.text;
  }
  throw new SqlSyntaxError('unbalanced parentheses');
}

/** The value of a string literal token. */
export function unquoteString(text: string): string {
  return text.slice(1, -1).replaceAll("''", "'").replace(/\\(.)/g, '$1');
}
