/**
 * The lexer of the emulator's Snowflake grammar: strings (with `$$` quoting), quoted
 * identifiers, comments, words, numbers, bind markers (`?`, `:1`) and punctuation. The
 * grammar itself is parser.ts; helpers here serve the few commands the engine reads token
 * by token (USE, SHOW, CREATE STREAM …).
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
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? '') && !endsOperand(out))) {
      while (i < n && /[0-9.eE]/.test(sql[i]!)) {
        if ((sql[i] === 'e' || sql[i] === 'E') && (sql[i + 1] === '-' || sql[i + 1] === '+')) i++;
        i++;
      }
      out.push({ kind: 'number', text: sql.slice(start, i) });
    } else if (c === '?') {
      i++;
      out.push({ kind: 'bind', text: '?' });
    } else if (c === ':' && /[0-9]/.test(sql[i + 1] ?? '') && sql[i - 1] !== ':' && !endsOperand(out)) {
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

/** Whether the last significant token ends an operand (so `:` after it is a path, `.` a qualifier). */
function endsOperand(out: Token[]): boolean {
  for (let j = out.length - 1; j >= 0; j--) {
    const t = out[j]!;
    if (t.kind === 'ws' || t.kind === 'comment') continue;
    return t.kind === 'word' || t.kind === 'qident' || (t.kind === 'punct' && (t.text === ')' || t.text === ']'));
  }
  return false;
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

/** The value of a string literal token, with Snowflake's backslash escapes. */
export function unquoteString(text: string): string {
  const body = text.slice(1, -1);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === "'" && body[i + 1] === "'") {
      out += "'";
      i++;
    } else if (c === '\\' && i + 1 < body.length) {
      const e = body[++i]!;
      out += ({ n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '0': '\0' } as Record<string, string>)[e] ?? e;
    } else out += c;
  }
  return out;
}
