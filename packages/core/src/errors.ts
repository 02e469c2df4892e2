/**
 * The one registry of Outflow error codes. Every error Outflow raises on purpose is an
 * {@link OutflowError} with one of these codes, so scripts and logs can match on the code
 * rather than on the wording.
 */
export const ErrorCodes = {
  OUTFLOW_CONFIG_PARSE: 'The configuration file is not valid YAML.',
  OUTFLOW_CONFIG_INVALID: 'The configuration file does not match the schema.',
  OUTFLOW_CONFIG_NOT_FOUND: 'The configuration file does not exist.',
  OUTFLOW_ENV_MISSING: 'A ${env:NAME} reference names an unset environment variable.',
  OUTFLOW_CONNECTOR_NOT_FOUND: 'A connector package could not be loaded.',
  OUTFLOW_CONNECTOR_INVALID: 'A connector package does not export a valid manifest.',
  OUTFLOW_CONNECTOR_VERSION: "A connector's coreVersion range does not include this core.",
  OUTFLOW_CONNECTOR_ROLE: 'A connection is used in a role its connector does not provide.',
  OUTFLOW_SYNC_NOT_FOUND: 'No sync of that name is configured.',
  OUTFLOW_MODE_UNSUPPORTED: 'The destination does not support the sync mode or operation.',
  OUTFLOW_CHECK_FAILED: 'A connection check failed.',
  OUTFLOW_SOURCE: 'The source failed while reading.',
  OUTFLOW_DESTINATION: 'The destination failed a whole batch.',
  OUTFLOW_MODEL_KEY: 'A model row has a missing or duplicate primary key.',
  OUTFLOW_MAPPING: 'A field mapping names a column the model does not have.',
  OUTFLOW_LEDGER: 'The state ledger could not be read or written.',
  OUTFLOW_LOCKED: 'Another process or runner holds this sync (or a file it needs).',
  OUTFLOW_LEASE_LOST: "Another runner took the sync over: this runner's lease on it expired or was released.",
  OUTFLOW_STREAM_STALE: 'The change stream fell behind its retention and must be reconciled.',
  OUTFLOW_ABORTED: 'The run was stopped before it finished.',
  OUTFLOW_TOO_MANY_REJECTED: "More records were rejected than the sync's failWhen allows.",
  OUTFLOW_DELETE_GUARD: "A run would delete or clear more of the records Outflow owns than the sync's maxDeletes allows.",
  OUTFLOW_EMULATOR: 'A sandbox emulator could not be started.',
  OUTFLOW_INTERNAL: 'An unexpected internal error.',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface OutflowErrorOptions {
  /** True when the same call may succeed if tried again later. */
  retryable?: boolean;
  /** When the caller should try again, if the failing system said so (e.g. Retry-After). */
  retryAfterMs?: number;
  /**
   * True when the failing system refused the request before acting on it (a 429, an
   * authentication failure, a connection that was never made): nothing was applied, so
   * sending it again is safe even where re-sending is otherwise unsafe (idempotency `none`).
   */
  notApplied?: boolean;
  /** Structured context (file, path, sync, key …). Never put a secret here. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * Marks Outflow errors across copies of this package: a connector installed with its own
 * copy of `@outflow/core` throws errors another copy must still recognise, so recognition
 * goes by this registry-wide symbol and the code, never by class identity.
 */
const BRAND = Symbol.for('@outflow/core/error');

/** An error with a registered code, whether it is worth retrying, and context. */
export class OutflowError extends Error {
  /** `err instanceof OutflowError` holds for errors made by any copy of `@outflow/core`. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isBranded(value);
  }

  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  readonly notApplied: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: OutflowErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OutflowError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
    this.notApplied = options.notApplied ?? false;
    this.details = options.details ?? {};
    Object.defineProperty(this, BRAND, { value: true });
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
      ...(Object.keys(this.details).length ? { details: this.details } : {}),
    };
  }
}

function isBranded(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true &&
    typeof (value as { code?: unknown }).code === 'string'
  );
}

/** True for an error from any copy of `@outflow/core` (optionally with this code). */
export function isOutflowError(err: unknown, code?: ErrorCode): err is OutflowError {
  return isBranded(err) && (code === undefined || (err as OutflowError).code === code);
}

/**
 * Raised by destinations for a failure of a whole batch (HTTP 5xx, 429, timeouts …). A 429
 * is taken as `notApplied` unless said otherwise: the vendor refused the request.
 */
export function destinationError(
  message: string,
  options: { retryable: boolean; retryAfterMs?: number; status?: number; notApplied?: boolean; cause?: unknown },
): OutflowError {
  return new OutflowError('OUTFLOW_DESTINATION', message, {
    retryable: options.retryable,
    notApplied: options.notApplied ?? options.status === 429,
    ...(options.retryAfterMs === undefined ? {} : { retryAfterMs: options.retryAfterMs }),
    details: options.status === undefined ? {} : { status: options.status },
    cause: options.cause,
  });
}

/** A short, single-line description of any thrown value. */
export function describeError(err: unknown): string {
  if (isOutflowError(err)) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
