/**
 * Errors in Databricks' shape: an error class in brackets opening the message and a
 * SQLSTATE, as a SQL warehouse reports a failed statement (`[TABLE_OR_VIEW_NOT_FOUND] …`,
 * `42P01`).
 */
export class DatabricksSqlError extends Error {
  constructor(
    /** The error class, e.g. `DELTA_MISSING_CHANGE_DATA`; empty for the few errors Databricks reports without one. */
    readonly errorClass: string,
    readonly sqlState: string,
    detail: string,
  ) {
    super(errorClass === '' ? detail : `[${errorClass}] ${detail}`);
    this.name = 'DatabricksSqlError';
  }
}

/** Quotes a name part as Databricks prints it in messages: `` `main`.`default`.`t` ``. */
export const backticked = (parts: readonly string[]): string => parts.map((p) => `\`${p}\``).join('.');

export const tableNotFound = (parts: readonly string[]): DatabricksSqlError =>
  new DatabricksSqlError(
    'TABLE_OR_VIEW_NOT_FOUND',
    '42P01',
    `The table or view ${backticked(parts)} cannot be found. Verify the spelling and correctness of the schema and catalog.`,
  );

export const schemaNotFound = (parts: readonly string[]): DatabricksSqlError =>
  new DatabricksSqlError('SCHEMA_NOT_FOUND', '42704', `The schema ${backticked(parts)} cannot be found. Verify the spelling and correctness of the schema and catalog.`);

/** A statement or clause the emulator does not implement, named in the message. */
export const unsupported = (what: string): DatabricksSqlError =>
  new DatabricksSqlError('UNSUPPORTED_FEATURE', '0A000', `The feature is not supported: ${what} (not implemented by the Outflow Databricks emulator).`);

export const syntaxError = (near: string): DatabricksSqlError =>
  new DatabricksSqlError('PARSE_SYNTAX_ERROR', '42601', `Syntax error at or near '${near}'.`);

/**
 * Rewrites an error DuckDB raised while running translated SQL into the Databricks error a
 * warehouse gives for the same mistake; the first line only, never DuckDB's internals.
 */
export function fromDuckDb(err: unknown): DatabricksSqlError {
  if (err instanceof DatabricksSqlError) return err;
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
  const body = message.replace(/^[A-Za-z ]+ Error: /, '');
  let m: RegExpExecArray | null;
  if ((m = /^syntax error at or near "(.*)"$/.exec(body)) !== null) return syntaxError(m[1]!);
  if (/^syntax error at end of input/.test(body)) return new DatabricksSqlError('PARSE_SYNTAX_ERROR', '42601', "Syntax error at or near end of input.");
  if ((m = /^Table with name (.+?) does not exist/.exec(body)) !== null) return tableNotFound([m[1]!]);
  if ((m = /^Referenced column "?(.+?)"? not found/.exec(body)) !== null) {
    return new DatabricksSqlError('UNRESOLVED_COLUMN.WITHOUT_SUGGESTION', '42703', `A column, variable, or function parameter with name \`${m[1]}\` cannot be resolved.`);
  }
  if ((m = /^Scalar Function with name (.+?) does not exist/.exec(body)) !== null || (m = /^Table Function with name (.+?) does not exist/.exec(body)) !== null) {
    return new DatabricksSqlError('UNRESOLVED_ROUTINE', '42883', `Cannot resolve routine \`${m[1]}\` on search path.`);
  }
  if (/^NOT NULL constraint failed/.test(body)) {
    return new DatabricksSqlError('DELTA_NOT_NULL_CONSTRAINT_VIOLATED', '23502', `NOT NULL constraint violated: ${body.replace(/^NOT NULL constraint failed: /, '')}.`);
  }
  if (message.startsWith('Conversion Error')) return new DatabricksSqlError('CAST_INVALID_INPUT', '22018', body);
  if (message.startsWith('Catalog Error')) return new DatabricksSqlError('', '42000', body);
  if (message.startsWith('Binder Error') || message.startsWith('Parser Error')) return new DatabricksSqlError('', '42000', body);
  return new DatabricksSqlError('', 'XX000', body);
}
