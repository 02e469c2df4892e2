/**
 * The SOQL the emulator answers — enough to read records back:
 * `SELECT field, … FROM object [WHERE field = value | field IN (value, …)] [LIMIT n]`,
 * paged by `nextRecordsUrl` in batches of 2,000 (or the `batchSize` of a
 * `Sforce-Query-Options` header, 200 to 2,000). Any other query is refused with
 * MALFORMED_QUERY, as Salesforce refuses what it cannot parse; an unknown column with
 * INVALID_FIELD, an unknown object with INVALID_TYPE.
 */
import { randomBytes } from 'node:crypto';
import { ApiError } from './errors.js';
import { fieldOf, type FieldDef, type SObjectDef } from './schema.js';
import { to18, type FieldValue, type OrgStore, type StoredRecord } from './store.js';

type Literal = string | number | boolean | null;

interface Query {
  fields: FieldDef[];
  object: SObjectDef;
  where?: { field: FieldDef; values: Literal[] };
  limit?: number;
}

const malformed = (message: string) => new ApiError(400, 'MALFORMED_QUERY', message);

/** Splits SOQL into words, punctuation and quoted strings (kept with their quotes). */
function tokens(soql: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < soql.length) {
    const c = soql[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let j = i + 1;
      let text = '';
      while (j < soql.length && soql[j] !== "'") {
        if (soql[j] === '\\' && j + 1 < soql.length) {
          const next = soql[j + 1]!;
          text += next === 'n' ? '\n' : next === 't' ? '\t' : next;
          j += 2;
        } else text += soql[j++];
      }
      if (j >= soql.length) throw malformed(`unexpected end of query: unterminated string '${text}`);
      out.push(`'${text}`);
      i = j + 1;
    } else if (',()='.includes(c)) {
      out.push(c);
      i++;
    } else {
      let j = i;
      while (j < soql.length && !/[\s,()='"]/.test(soql[j]!)) j++;
      if (j === i) throw malformed(`unexpected token: '${c}'`);
      out.push(soql.slice(i, j));
      i = j;
    }
  }
  return out;
}

function literal(token: string | undefined): Literal {
  if (token === undefined) throw malformed('unexpected end of query');
  if (token.startsWith("'")) return token.slice(1);
  if (/^null$/i.test(token)) return null;
  if (/^(true|false)$/i.test(token)) return token.toLowerCase() === 'true';
  if (/^[+-]?\d+(\.\d+)?$/.test(token)) return Number(token);
  // Date and datetime literals are written bare in SOQL.
  if (/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2}))?$/.test(token)) return token;
  throw malformed(`unexpected token: '${token}'`);
}

function noSuchColumn(name: string, object: SObjectDef): ApiError {
  return new ApiError(
    400,
    'INVALID_FIELD',
    `No such column '${name}' on entity '${object.name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`,
  );
}

/** Parses the subset, or throws the error Salesforce would answer. */
export function parseSoql(soql: string, store: OrgStore): Query {
  const t = tokens(soql);
  let i = 0;
  const kw = (word: string) => t[i]?.toUpperCase() === word;
  if (!kw('SELECT')) throw malformed(`unexpected token: '${t[0] ?? ''}'`);
  i++;
  const names: string[] = [];
  for (;;) {
    const name = t[i++];
    if (name === undefined || name.startsWith("'") || ',()='.includes(name)) throw malformed(`unexpected token: '${name ?? ''}'`);
    if (/[.(]/.test(name) || /^(COUNT|FIELDS)$/i.test(name)) throw malformed(`unexpected token: '${name}' (the emulator reads plain fields only)`);
    names.push(name);
    if (t[i] !== ',') break;
    i++;
  }
  if (!kw('FROM')) throw malformed(`unexpected token: '${t[i] ?? ''}'`);
  i++;
  const objectName = t[i++];
  if (objectName === undefined) throw malformed('unexpected end of query');
  const object = store.object(objectName);
  if (object === undefined) throw new ApiError(400, 'INVALID_TYPE', `sObject type '${objectName}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name.`);
  const fields = names.map((n) => fieldOf(object, n) ?? (() => { throw noSuchColumn(n, object); })());
  const query: Query = { fields, object };
  if (kw('WHERE')) {
    i++;
    const name = t[i++] ?? '';
    const field = fieldOf(object, name);
    if (field === undefined) throw noSuchColumn(name, object);
    if (t[i] === '=') {
      i++;
      query.where = { field, values: [literal(t[i++])] };
    } else if (kw('IN')) {
      i++;
      if (t[i++] !== '(') throw malformed(`unexpected token: '${t[i - 1] ?? ''}'`);
      const values: Literal[] = [];
      for (;;) {
        values.push(literal(t[i++]));
        if (t[i] === ',') i++;
        else break;
      }
      if (t[i++] !== ')') throw malformed(`unexpected token: '${t[i - 1] ?? ''}'`);
      query.where = { field, values };
    } else throw malformed(`unexpected token: '${t[i] ?? ''}'`);
  }
  if (kw('LIMIT')) {
    i++;
    const n = Number(t[i++]);
    if (!Number.isInteger(n) || n < 0) throw malformed(`unexpected token: '${t[i - 1] ?? ''}'`);
    query.limit = n;
  }
  if (i < t.length) throw malformed(`unexpected token: '${t[i]!.replace(/^'/, '')}'`);
  return query;
}

function matches(field: FieldDef, have: FieldValue | undefined, want: Literal): boolean {
  const v = have ?? null;
  if (want === null || v === null) return want === v;
  if (field.type === 'id' || field.type === 'reference') return typeof want === 'string' && want.length >= 15 && to18(want) === to18(String(v));
  if (typeof v === 'number') return Number(want) === v;
  if (typeof v === 'boolean') return want === v;
  return String(v).toLowerCase() === String(want).toLowerCase();
}

function select(q: Query, store: OrgStore): StoredRecord[] {
  let rows: StoredRecord[];
  const where = q.where;
  if (where !== undefined && where.field.idLookup && where.values.every((v) => v !== null)) {
    const seen = new Set<string>();
    rows = where.values.flatMap((v) => store.find(q.object.name, where.field, v)).filter((r) => !seen.has(r.Id) && seen.add(r.Id) !== undefined);
  } else {
    rows = store.records(q.object.name);
    if (where !== undefined) rows = rows.filter((r) => where.values.some((v) => matches(where.field, r[where.field.name], v)));
  }
  return q.limit === undefined ? rows : rows.slice(0, q.limit);
}

interface Cursor {
  rows: Record<string, unknown>[];
  at: number;
  batch: number;
}

/** Runs queries and keeps their cursors for `nextRecordsUrl`. */
export class QueryRunner {
  private readonly cursors = new Map<string, Cursor>();

  constructor(private readonly store: OrgStore) {}

  run(soql: string, version: string, batchHeader: string | undefined): Record<string, unknown> {
    const q = parseSoql(soql, this.store);
    const rows = select(q, this.store).map((r) => {
      const out: Record<string, unknown> = { attributes: { type: q.object.name, url: `/services/data/v${version}/sobjects/${q.object.name}/${r.Id}` } };
      for (const f of q.fields) out[f.name] = r[f.name] ?? null;
      return out;
    });
    const requested = Number(/batchSize=(\d+)/i.exec(batchHeader ?? '')?.[1] ?? 2000);
    const batch = Math.min(2000, Math.max(200, requested));
    return this.page({ rows, at: 0, batch }, version);
  }

  more(locator: string, version: string): Record<string, unknown> {
    const cursor = this.cursors.get(locator.split('-')[0]!);
    if (cursor === undefined) throw new ApiError(400, 'INVALID_QUERY_LOCATOR', 'invalid query locator');
    cursor.at = Number(locator.split('-')[1] ?? cursor.at);
    return this.page(cursor, version);
  }

  private page(cursor: Cursor, version: string): Record<string, unknown> {
    const records = cursor.rows.slice(cursor.at, cursor.at + cursor.batch);
    const next = cursor.at + records.length;
    const done = next >= cursor.rows.length;
    const out: Record<string, unknown> = { totalSize: cursor.rows.length, done, records };
    if (!done) {
      const id = `01g5g${randomBytes(5).toString('hex').toUpperCase()}`;
      this.cursors.set(id, { ...cursor, at: next });
      out['nextRecordsUrl'] = `/services/data/v${version}/query/${id}-${next}`;
    }
    return out;
  }
}
