import { randomUUID } from 'node:crypto';

/** One detail of an error: what is wrong, HubSpot's code for it, and where (e.g. `propertyName`). */
export interface ErrorDetail {
  message: string;
  code?: string;
  context?: Record<string, string[]>;
}

/**
 * One error of a 207 multi-status answer, in HubSpot's StandardError shape. HubSpot's
 * OpenAPI spec for CRM objects v3 requires `status`, `category`, `message`, `context`,
 * `errors` and `links` in each; `subCategory` and `id` are optional.
 */
export interface StandardError {
  status: 'error';
  category: string;
  subCategory?: string;
  message: string;
  context: Record<string, string[]>;
  errors: ErrorDetail[];
  links: Record<string, string>;
}

/** A refusal of the whole request; the server answers it in HubSpot's error shape. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly category: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** HubSpot's error body for a refused request, with a fresh correlation id. */
export function errorBody(category: string, message: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { status: 'error', message, correlationId: randomUUID(), category, ...extra };
}

/** A batch error for one input; `code` also goes in its `errors` list. */
export function batchError(category: string, message: string, context: Record<string, string[]>, code?: string): StandardError {
  return { status: 'error', category, message, context, errors: code === undefined ? [] : [{ message, code }], links: {} };
}
