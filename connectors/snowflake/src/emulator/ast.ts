/**
 * The tree the Snowflake grammar (parser.ts) produces and the DuckDB printer (duckdb.ts)
 * consumes. Names are resolved as Snowflake resolves them when parsed: an unquoted
 * identifier is upper-cased, a quoted one kept as written.
 */

export interface Ident {
  name: string;
  quoted: boolean;
}

export interface TypeName {
  /** Upper-cased Snowflake type name, e.g. NUMBER, TIMESTAMP_NTZ, DOUBLE PRECISION. */
  name: string;
  args: number[];
}

export type PathStep = { key: string } | { index: Expr };

export interface WindowSpec {
  partitionBy: Expr[];
  orderBy: OrderItem[];
  frame?: string;
}

export interface FnArg {
  name?: string;
  e: Expr;
}

export type Expr =
  | { k: 'num'; v: string }
  | { k: 'str'; v: string }
  | { k: 'bool'; v: boolean }
  | { k: 'null' }
  | { k: 'typed'; type: 'DATE' | 'TIME' | 'TIMESTAMP' | 'TIMESTAMP_NTZ' | 'TIMESTAMP_LTZ' | 'TIMESTAMP_TZ'; v: string }
  | { k: 'interval'; v: string }
  | { k: 'bind'; index: number; marker: string }
  | { k: 'col'; parts: Ident[] }
  | { k: 'star'; qualifier: Ident[]; exclude: Ident[] }
  | { k: 'unary'; op: '-' | '+' | 'NOT'; e: Expr }
  | { k: 'bin'; op: string; l: Expr; r: Expr }
  | { k: 'is'; e: Expr; not: boolean; what: 'NULL' | 'TRUE' | 'FALSE' }
  | { k: 'distinctFrom'; l: Expr; r: Expr; not: boolean }
  | { k: 'between'; e: Expr; lo: Expr; hi: Expr; not: boolean }
  | { k: 'in'; e: Expr; list?: Expr[]; query?: Query; not: boolean }
  | { k: 'like'; op: 'LIKE' | 'ILIKE' | 'RLIKE'; e: Expr; pattern: Expr; escape?: Expr; not: boolean }
  | { k: 'exists'; q: Query }
  | { k: 'subquery'; q: Query }
  | { k: 'case'; operand?: Expr; whens: [Expr, Expr][]; else?: Expr }
  | { k: 'cast'; e: Expr; type: TypeName; try: boolean }
  | {
      k: 'fn';
      name: string;
      args: FnArg[];
      distinct: boolean;
      star: boolean;
      withinGroup?: OrderItem[];
      over?: WindowSpec;
      ignoreNulls?: boolean;
      /** Set for EXTRACT(part FROM x) and POSITION(a IN b): the parts as parsed. */
      special?: 'extract' | 'position';
    }
  | { k: 'path'; e: Expr; steps: PathStep[] }
  | { k: 'row'; items: Expr[] };

export interface OrderItem {
  e: Expr;
  desc: boolean;
  nulls?: 'FIRST' | 'LAST';
}

export interface SelectItem {
  e: Expr;
  alias?: Ident;
  /** The item as written, words upper-cased: Snowflake's name for an unaliased expression. */
  text: string;
}

export interface TimeTravel {
  kind: 'AT' | 'BEFORE';
  param: 'TIMESTAMP' | 'OFFSET' | 'STATEMENT' | 'STREAM';
  e: Expr;
}

export type FromItem =
  | { k: 'table'; name: Ident[]; alias?: Ident; columns?: Ident[]; at?: TimeTravel; changes?: { info: 'DEFAULT' | 'APPEND_ONLY' } }
  | { k: 'derived'; q: Query; lateral: boolean; alias?: Ident; columns?: Ident[] }
  | { k: 'tableFn'; fn: Extract<Expr, { k: 'fn' }>; lateral: boolean; alias?: Ident; columns?: Ident[] }
  | { k: 'values'; rows: Expr[][]; alias?: Ident; columns?: Ident[] }
  | { k: 'join'; type: 'INNER' | 'LEFT' | 'RIGHT' | 'FULL' | 'CROSS'; natural: boolean; l: FromItem; r: FromItem; on?: Expr; using?: Ident[] };

export interface Select {
  k: 'select';
  distinct: boolean;
  top?: Expr;
  items: SelectItem[];
  from: FromItem[];
  where?: Expr;
  groupBy?: Expr[] | 'ALL';
  groupKind?: 'ROLLUP' | 'CUBE' | 'GROUPING SETS';
  having?: Expr;
  qualify?: Expr;
}

export type SetBody =
  | Select
  | { k: 'setop'; op: 'UNION' | 'UNION ALL' | 'EXCEPT' | 'INTERSECT'; l: SetBody; r: SetBody }
  | { k: 'values'; rows: Expr[][] }
  | { k: 'nested'; q: Query };

export interface Query {
  with?: { recursive: boolean; ctes: { name: Ident; columns?: Ident[]; q: Query }[] };
  body: SetBody;
  orderBy?: OrderItem[];
  limit?: Expr;
  offset?: Expr;
}

export interface ColumnDef {
  name: Ident;
  type: TypeName;
  notNull: boolean;
  primaryKey: boolean;
  unique: boolean;
  default?: Expr;
  comment?: string;
}

export interface MergeClause {
  matched: boolean;
  cond?: Expr;
  action: { k: 'update'; sets: [Ident, Expr][] } | { k: 'delete' } | { k: 'insert'; columns?: Ident[]; values: Expr[] };
}

export type Statement =
  | { k: 'query'; q: Query }
  | { k: 'insert'; overwrite: boolean; table: Ident[]; columns?: Ident[]; source: Query }
  | { k: 'update'; table: Ident[]; alias?: Ident; sets: [Ident, Expr][]; from: FromItem[]; where?: Expr }
  | { k: 'delete'; table: Ident[]; alias?: Ident; using: FromItem[]; where?: Expr }
  | { k: 'merge'; table: Ident[]; alias?: Ident; source: FromItem; on: Expr; clauses: MergeClause[] }
  | {
      k: 'createTable';
      orReplace: boolean;
      ifNotExists: boolean;
      temporary: boolean;
      name: Ident[];
      columns?: ColumnDef[];
      primaryKey?: Ident[];
      as?: Query;
      like?: Ident[];
      comment?: string;
    }
  | { k: 'createView'; orReplace: boolean; ifNotExists: boolean; name: Ident[]; columns?: Ident[]; as: Query; text: string }
  | { k: 'createSchema'; orReplace: boolean; ifNotExists: boolean; name: Ident[] }
  | { k: 'drop'; what: 'TABLE' | 'VIEW' | 'SCHEMA'; ifExists: boolean; name: Ident[]; cascade: boolean }
  | { k: 'truncate'; ifExists: boolean; name: Ident[] }
  | {
      k: 'alterTable';
      ifExists: boolean;
      name: Ident[];
      action:
        | { k: 'addColumn'; col: ColumnDef; ifNotExists: boolean }
        | { k: 'dropColumn'; names: Ident[]; ifExists: boolean }
        | { k: 'renameColumn'; from: Ident; to: Ident }
        | { k: 'renameTo'; to: Ident[] }
        | { k: 'setChangeTracking'; on: boolean };
    };
