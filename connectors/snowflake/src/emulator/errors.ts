/** A SQL failure shaped like Snowflake's: a numeric code, an SQL state and a message. */
export class SnowflakeError extends Error {
  constructor(
    readonly code: string,
    readonly sqlState: string,
    message: string,
  ) {
    super(message);
  }
}

/** An object that does not exist (002003 / 42S02). */
export const compilation = (message: string) => new SnowflakeError('002003', '42S02', `SQL compilation error:\n${message}`);

/** Snowflake syntax the emulator knows and does not implement: refused by name. */
export const unsupported = (what: string) =>
  new SnowflakeError('002003', '42000', `SQL compilation error:\n${what} is unsupported in the Outflow emulator`);

/** A syntax error at a position, as Snowflake words it (001003 / 42000). */
export const syntaxError = (line: number, position: number, near: string) =>
  new SnowflakeError('001003', '42000', `SQL compilation error:\nsyntax error line ${line} at position ${position} unexpected '${near}'.`);

/** A function outside Snowflake's reference (002140 / 42601). */
export const unknownFunction = (name: string) => new SnowflakeError('002140', '42601', `SQL compilation error:\nUnknown function ${name}`);

/** A type name outside Snowflake's reference (002040 / 42601). */
export const unsupportedType = (name: string) => new SnowflakeError('002040', '42601', `SQL compilation error:\nUnsupported data type '${name}'.`);

/** A call with the wrong number of arguments (000938 / 42601). */
export const wrongArgs = (name: string, count: number) =>
  new SnowflakeError('000938', '42601', `SQL compilation error: error line 1 at position 0\nnot enough arguments for function [${name}], expected a different number than ${count}`);

/** A value of the wrong type or shape for a function (100038 / 22018 is Snowflake's for numbers). */
export const invalidArgument = (message: string) => new SnowflakeError('001044', '42P13', `SQL compilation error:\n${message}`);
