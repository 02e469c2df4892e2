/**
 * The condition language of event triggers (`when:`): comparisons of a row's fields with
 * literals or other fields, combined with `and`, `or`, `not` and parentheses.
 *
 *   amount > 1000
 *   status == 'paid' and not (refunded == true)
 *   score >= 80 or tier in ['gold', 'platinum']
 *
 * Field references are bare names (`amount`) or quoted in backticks (`` `Order Total` ``);
 * literals are numbers, 'single' or "double" quoted strings, true, false and null, and
 * lists of them after `in`. Nothing else exists: no calls, no property access, no
 * arithmetic, so a condition can only read the row it is given.
 *
 * Comparison semantics: `==` and `!=` compare JSON values exactly (1 == 1.0, '1' != 1); the
 * ordering operators compare two numbers or two strings and are false otherwise (a null or
 * missing field is never greater or smaller than anything).
 */
import { isDeepStrictEqual } from 'node:util';
import type { Row, Value } from '../envelope.js';

/** A condition that does not parse, with the 0-based offset in its text where it went wrong. */
export class ConditionError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'ConditionError';
  }
}

/** A parsed condition. */
export interface Condition {
  /** The text it was parsed from. */
  readonly text: string;
  /** Every field it reads. */
  readonly fields: readonly string[];
  /** Whether it holds for `row`; an absent row (no such version) holds nothing. */
  test(row: Row | undefined): boolean;
}

type Op = '==' | '!=' | '>' | '>=' | '<' | '<=' | 'in';
type Expr =
  | { t: 'and' | 'or'; a: Expr; b: Expr }
  | { t: 'not'; a: Expr }
  | { t: 'cmp'; op: Op; a: Operand; b: Operand }
  | { t: 'truthy'; a: Operand };
type Operand = { t: 'field'; name: string } | { t: 'lit'; value: Value };

type Token = { kind: 'name' | 'field' | 'num' | 'str' | 'op' | 'punct'; text: string; value?: Value; at: number };

const OPS = ['==', '!=', '>=', '<=', '>', '<'];
const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'true', 'false', 'null']);

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const at = i;
    const op = OPS.find((o) => text.startsWith(o, i));
    if (op !== undefined) {
      out.push({ kind: 'op', text: op, at });
      i += op.length;
    } else if ('()[],'.includes(c)) {
      out.push({ kind: 'punct', text: c, at });
      i++;
    } else if (c === "'" || c === '"' || c === '`') {
      let s = '';
      i++;
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        s += text[i];
        i++;
      }
      if (i >= text.length) throw new ConditionError(`unterminated ${c === '`' ? 'field name' : 'string'} starting here`, at);
      i++;
      out.push(c === '`' ? { kind: 'field', text: s, at } : { kind: 'str', text: s, value: s, at });
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(text[i + 1] ?? ''))) {
      const m = /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/.exec(text.slice(i))!;
      out.push({ kind: 'num', text: m[0], value: Number(m[0]), at });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))!;
      out.push({ kind: 'name', text: m[0], at });
      i += m[0].length;
    } else {
      throw new ConditionError(`unexpected character "${c}"`, at);
    }
  }
  return out;
}

class Parser {
  private i = 0;
  readonly fields = new Set<string>();

  constructor(
    private readonly tokens: Token[],
    private readonly end: number,
  ) {}

  parse(): Expr {
    if (this.tokens.length === 0) throw new ConditionError('the condition is empty', 0);
    const e = this.or();
    const extra = this.tokens[this.i];
    if (extra !== undefined) throw new ConditionError(`unexpected "${extra.text}"; expected and, or, or the end of the condition`, extra.at);
    return e;
  }

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  private isWord(word: string): boolean {
    const t = this.peek();
    return t?.kind === 'name' && t.text === word;
  }

  private expect(text: string): void {
    const t = this.peek();
    if (t?.text !== text || t.kind === 'str' || t.kind === 'field') throw new ConditionError(`expected "${text}"`, t?.at ?? this.end);
    this.i++;
  }

  private or(): Expr {
    let a = this.and();
    while (this.isWord('or')) {
      this.i++;
      a = { t: 'or', a, b: this.and() };
    }
    return a;
  }

  private and(): Expr {
    let a = this.not();
    while (this.isWord('and')) {
      this.i++;
      a = { t: 'and', a, b: this.not() };
    }
    return a;
  }

  private not(): Expr {
    if (this.isWord('not')) {
      this.i++;
      return { t: 'not', a: this.not() };
    }
    if (this.peek()?.text === '(' && this.peek()?.kind === 'punct') {
      this.i++;
      const e = this.or();
      this.expect(')');
      return e;
    }
    return this.comparison();
  }

  private comparison(): Expr {
    const a = this.operand();
    const t = this.peek();
    if (t?.kind === 'op') {
      this.i++;
      return { t: 'cmp', op: t.text as Op, a, b: this.operand() };
    }
    if (this.isWord('in')) {
      this.i++;
      return { t: 'cmp', op: 'in', a, b: this.list() };
    }
    return { t: 'truthy', a };
  }

  private list(): Operand {
    this.expect('[');
    const values: Value[] = [];
    while (!(this.peek()?.kind === 'punct' && this.peek()?.text === ']')) {
      const o = this.operand();
      if (o.t !== 'lit') throw new ConditionError('a list after "in" holds literals only', this.tokens[this.i - 1]!.at);
      values.push(o.value);
      if (this.peek()?.text === ',' && this.peek()?.kind === 'punct') this.i++;
      else break;
    }
    this.expect(']');
    return { t: 'lit', value: values };
  }

  private operand(): Operand {
    const t = this.peek();
    if (t === undefined) throw new ConditionError('the condition ends where a field or a value was expected', this.end);
    this.i++;
    switch (t.kind) {
      case 'num':
      case 'str':
        return { t: 'lit', value: t.value! };
      case 'field':
        this.fields.add(t.text);
        return { t: 'field', name: t.text };
      case 'name':
        if (t.text === 'true' || t.text === 'false') return { t: 'lit', value: t.text === 'true' };
        if (t.text === 'null') return { t: 'lit', value: null };
        if (KEYWORDS.has(t.text)) throw new ConditionError(`"${t.text}" where a field or a value was expected`, t.at);
        this.fields.add(t.text);
        return { t: 'field', name: t.text };
      default:
        throw new ConditionError(`"${t.text}" where a field or a value was expected`, t.at);
    }
  }
}

function valueOf(o: Operand, row: Row): Value {
  return o.t === 'lit' ? o.value : (row[o.name] ?? null);
}

function compare(op: Op, a: Value, b: Value): boolean {
  switch (op) {
    case '==':
      return isDeepStrictEqual(a, b);
    case '!=':
      return !isDeepStrictEqual(a, b);
    case 'in':
      return Array.isArray(b) && b.some((v) => isDeepStrictEqual(a, v));
  }
  const ordered = (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string');
  if (!ordered) return false;
  switch (op) {
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
  }
}

function evaluate(e: Expr, row: Row): boolean {
  switch (e.t) {
    case 'and':
      return evaluate(e.a, row) && evaluate(e.b, row);
    case 'or':
      return evaluate(e.a, row) || evaluate(e.b, row);
    case 'not':
      return !evaluate(e.a, row);
    case 'cmp':
      return compare(e.op, valueOf(e.a, row), valueOf(e.b, row));
    case 'truthy': {
      const v = valueOf(e.a, row);
      return v !== null && v !== false && v !== 0 && v !== '';
    }
  }
}

/** Parses a condition; throws a {@link ConditionError} saying where it went wrong. */
export function parseCondition(text: string): Condition {
  const parser = new Parser(tokenize(text), text.length);
  const expr = parser.parse();
  return {
    text,
    fields: [...parser.fields],
    test: (row) => row !== undefined && evaluate(expr, row),
  };
}
