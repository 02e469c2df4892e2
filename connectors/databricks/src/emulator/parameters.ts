/**
 * Query parameters as the SDK binds them (TSparkParameter: a name or an ordinal position, a
 * Spark type name and the value as text), put in place of their markers — `:name` and `?` —
 * as SQL literals before a statement is read.
 */
import type { TSparkParameter } from '@databricks/sql/thrift/TCLIService_types.js';
import { DatabricksSqlError, unsupported } from './errors.js';
import { isName, isPunct, literal, type Token } from './sql.js';

const CASTS: Record<string, string> = {
  DATE: 'DATE',
  TIMESTAMP: 'TIMESTAMP',
  TIMESTAMP_NTZ: 'TIMESTAMP',
  FLOAT: 'FLOAT',
  DOUBLE: 'DOUBLE',
  SMALLINT: 'SMALLINT',
  TINYINT: 'TINYINT',
  BOOLEAN: 'BOOLEAN',
};

/** One parameter as a token: integers as numbers, strings as strings, others as a typed literal. */
function asToken(p: TSparkParameter): Token {
  const text = p.value?.stringValue;
  if (p.type === undefined || p.type === null || text === undefined || text === null) return { kind: 'punct', text: 'NULL', value: 'NULL' };
  const type = p.type.toUpperCase();
  if (type === 'STRING') return { kind: 'string', text: literal(text), value: text };
  if ((type === 'INTEGER' || type === 'BIGINT') && /^-?\d+$/.test(text)) return { kind: 'number', text, value: text };
  if (type === 'DECIMAL' && /^-?\d+(\.\d+)?$/.test(text)) {
    const scale = text.split('.')[1]?.length ?? 0;
    const sql = `CAST(${literal(text)} AS DECIMAL(38, ${scale}))`;
    return { kind: 'punct', text: sql, value: sql };
  }
  const cast = CASTS[type];
  if (cast === undefined) throw unsupported(`query parameters of type ${type}`);
  const sql = `CAST(${literal(text)} AS ${cast})`;
  return { kind: 'punct', text: sql, value: sql };
}

const unbound = (name: string) =>
  new DatabricksSqlError('UNBOUND_SQL_PARAMETER', '42P02', `Found the unbound parameter: ${name}. Please, fix \`args\` and provide a mapping of the parameter to a SQL literal.`);

/** The statement's tokens with every parameter marker replaced by its value. */
export function bindParameters(tokens: readonly Token[], parameters: readonly TSparkParameter[] | null | undefined): Token[] {
  const named = new Map<string, Token>();
  const ordinal: Token[] = [];
  for (const p of parameters ?? []) {
    if (p.name !== undefined && p.name !== null) named.set(p.name.toLowerCase(), asToken(p));
    else ordinal.push(asToken(p));
  }
  const out: Token[] = [];
  let position = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (isPunct(t, ':') && isName(tokens[i + 1])) {
      const name = tokens[++i]!.value;
      const value = named.get(name.toLowerCase());
      if (value === undefined) throw unbound(name);
      out.push(value);
    } else if (isPunct(t, '?')) {
      const value = ordinal[position++];
      if (value === undefined) throw unbound(`_${position}`);
      out.push(value);
    } else out.push(t);
  }
  return out;
}
