/**
 * Salesforce's error shapes. A refused request answers a JSON array of
 * `{ message, errorCode, fields? }`; a record refused inside a request that succeeded as a
 * whole carries `{ statusCode, message, fields }` in its result.
 */

/** One record's error, as sObject Collections and Bulk API 2.0 results report it. */
export interface RecordError {
  statusCode: string;
  message: string;
  fields: string[];
}

/** A request Salesforce refuses as a whole. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly fields?: string[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): unknown {
    return [{ message: this.message, errorCode: this.errorCode, ...(this.fields === undefined ? {} : { fields: this.fields }) }];
  }
}

export const recordError = (statusCode: string, message: string, fields: string[] = []): RecordError => ({ statusCode, message, fields });

/** The REST API's answer to a request whose resource does not exist. */
export function notFound(path: string): ApiError {
  return new ApiError(404, 'NOT_FOUND', `The requested resource does not exist: ${path}`);
}

/** A request body that is not what the resource takes. */
export function jsonParserError(message: string): ApiError {
  return new ApiError(400, 'JSON_PARSER_ERROR', message);
}
