/**
 * Databricks SQL text, read as tokens: enough to tell statements apart, read the names and
 * clauses the emulator handles itself, and print the rest as DuckDB SQL. Backticks quote
 * identifiers; single and double quotes delimit strings, with backslash escapes.
 */
import { syntaxError } from './errors.js';

export type TokenKind = 'word' | 'ident' | 'string' | 'number' | 'punct' | 'space';

export interface Token {
  kind: TokenKind;
  /** The source text. */
  text: string;
  /** A word's or identifier's name, a string's content; the text otherwise. */
  value: string;
}

const PUNCT2 = new Set(['<=', '>=', '<>', '!=', '||', '::', '=>', '==']);
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', b: '\b' };

/** Splits SQL into tokens; comments become space. An unterminated quote is a syntax error. */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    const start = i;
    if (/\s/.test(c)) {
      while (i < sql.length && /\s/.test(sql[i]!)) i++;
      out.push({ kind: 'space', text: ' ', value: ' ' });
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < sql.length && sql[i] !== '\n') i++;
      out.push({ kind: 'space', text: ' ', value: ' ' });
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw syntaxError('/*');
      i = end + 2;
      out.push({ kind: 'space', text: ' ', value: ' ' });
    } else if (c === "'" || c === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= sql.length) throw syntaxError(sql.slice(start, start + 20));
        const d = sql[i]!;
        if (d === '\\' && i + 1 < sql.length) {
          const e = sql[i + 1]!;
          value += ESCAPES[e] ?? e;
          i += 2;
        } else if (d === c) {
          i++;
          break;
        } else {
          value += d;
          i++;
        }
      }
      out.push({ kind: 'string', text: sql.slice(start, i), value });
    } else if (c === '`') {
      let value = '';
      i++;
      for (;;) {
        if (i >= sql.length) throw syntaxError(sql.slice(start, start + 20));
        if (sql[i] === '`' && sql[i + 1] === '`') {
          value += '`';
          i += 2;
        } else if (sql[i] === '`') {
          i++;
          break;
        } else value += sql[i++];
      }
      out.push({ kind: 'ident', text: sql.slice(start, i), value });
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      while (i < sql.length && /[0-9.eE]/.test(sql[i]!)) {
        if ((sql[i] === 'e' || sql[i] === 'E') && /[+-]/.test(sql[i + 1] ?? '')) i++;
        i++;
      }
      // Spark's typed numeric suffixes (10L, 1.5D, 2BD) are left for DuckDB to refuse.
      out.push({ kind: 'number', text: sql.slice(start, i), value: sql.slice(start, i) });
    } else if (/[A-Za-z_]/.test(c)) {
      while (i < sql.length && /[A-Za-z0-9_]/.test(sql[i]!)) i++;
      const text = sql.slice(start, i);
      out.push({ kind: 'word', text, value: text });
    } else {
      const two = sql.slice(i, i + 2);
      const text = PUNCT2.has(two) ? two : c;
      i += text.length;
      out.push({ kind: 'punct', text, value: text });
    }
  }
  return out;
}

/** A double-quoted DuckDB identifier. */
export const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;
/** A single-quoted SQL string literal. */
export const literal = (value: string): string => `'${value.replace(/'/g, "''")}'`;

export const isName = (t: Token | undefined): boolean => t !== undefined && (t.kind === 'word' || t.kind === 'ident');
export const isWord = (t: Token | undefined, ...words: string[]): boolean => t?.kind === 'word' && words.includes(t.value.toUpperCase());
export const isPunct = (t: Token | undefined, p: string): boolean => t?.kind === 'punct' && t.value === p;

/** Prints tokens as DuckDB SQL: identifiers double-quoted, strings with standard escaping. */
export function render(tokens: readonly Token[]): string {
  return tokens
    .map((t) => {
      if (t.kind === 'ident') return quote(t.value);
      if (t.kind === 'string') return literal(t.value);
      return t.text;
    })
    .join('')
    .trim();
}

/** A cursor over the tokens of one statement, spaces skipped. */
export class Cursor {
  private i = 0;
  readonly tokens: Token[];

  constructor(tokens: readonly Token[]) {
    this.tokens = tokens.filter((t) => t.kind !== 'space');
    while (isPunct(this.tokens[this.tokens.length - 1], ';')) this.tokens.pop();
  }

  peek(offset = 0): Token | undefined {
    return this.tokens[this.i + offset];
  }

  get done(): boolean {
    return this.i >= this.tokens.length;
  }

  next(): Token {
    const t = this.tokens[this.i];
    if (t === undefined) throw syntaxError('end of input');
    this.i++;
    return t;
  }

  /** Consumes the words given, in order, if they come next. */
  accept(...words: string[]): boolean {
    for (let k = 0; k < words.length; k++) if (!isWord(this.peek(k), words[k]!)) return false;
    this.i += words.length;
    return true;
  }

  expect(...words: string[]): void {
    if (!this.accept(...words)) throw syntaxError(this.peek()?.text ?? 'end of input');
  }

  acceptPunct(p: string): boolean {
    if (!isPunct(this.peek(), p)) return false;
    this.i++;
    return true;
  }

  expectPunct(p: string): void {
    if (!this.acceptPunct(p)) throw syntaxError(this.peek()?.text ?? 'end of input');
  }

  /** A dotted name, `a`, `a.b` or `a.b.c`, as its parts. */
  name(): string[] {
    const parts: string[] = [];
    do {
      const t = this.peek();
      if (t === undefined || !isName(t)) throw syntaxError(t?.text ?? 'end of input');
      parts.push(t.value);
      this.i++;
    } while (this.acceptPunct('.'));
    return parts;
  }

  /** A parenthesised list of `key = value` pairs (TBLPROPERTIES), keys dotted or quoted, as written. */
  properties(): Map<string, string> {
    const out = new Map<string, string>();
    this.expectPunct('(');
    if (this.acceptPunct(')')) return out;
    do {
      const k = this.peek();
      let key: string;
      if (k?.kind === 'string') {
        this.i++;
        key = k.value;
      } else key = this.name().join('.');
      this.acceptPunct('=');
      const v = this.next();
      out.set(key, v.kind === 'string' || v.kind === 'word' || v.kind === 'number' ? v.value : v.text);
    } while (this.acceptPunct(','));
    this.expectPunct(')');
    return out;
  }

  /** The tokens inside the parentheses that come next, the cursor left after the closing one. */
  parenthesised(): Token[] {
    this.expectPunct('(');
    const start = this.i;
    let depth = 1;
    for (; this.i < this.tokens.length; this.i++) {
      if (isPunct(this.tokens[this.i], '(')) depth++;
      else if (isPunct(this.tokens[this.i], ')') && --depth === 0) return this.tokens.slice(start, this.i++);
    }
    throw syntaxError('(');
  }

  /** The tokens from here to the end. */
  rest(): Token[] {
    const out = this.tokens.slice(this.i);
    this.i = this.tokens.length;
    return out;
  }
}
