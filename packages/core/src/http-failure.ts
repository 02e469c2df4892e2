import { destinationError, isOutflowError, type OutflowError } from './errors.js';
import { redact } from './redact.js';

/** Vendor reasons are shown to people; a long one is cut here. */
const MAX_REASON_LENGTH = 300;

/** Why a request failed below HTTP: the first code along its causes (ECONNREFUSED …), else its message. */
export function networkCode(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code;
    e = e.cause;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * The error for a request that got no answer (a refused connection, a reset, a name that
 * does not resolve): retryable, since it may or may not have been applied, naming the
 * network code and never the request's data.
 */
export function unreachable(where: string, what: string, err: unknown): OutflowError {
  return destinationError(`could not reach ${where} for ${what}: ${redact(networkCode(err))}`, { retryable: true, cause: err });
}

/** An HTTP answer that failed a request, as {@link httpRefusal} words it. */
export interface HttpRefusal {
  /** Who answered, as errors name it: `Intercom`, `Braze at https://rest.iad-01.braze.com`. */
  service: string;
  /** The request, as errors name it: `a create`, `the check`. */
  what: string;
  status: number;
  /** The vendor's reason from the answer's body, if any; redacted and cut here. */
  reason?: string;
  /** The wait a 429 asked for (Retry-After, X-RateLimit-Reset); 1 s when it said none. */
  retryAfterMs?: number | undefined;
  /** The config property holding the credential, which a 401 or 403 says to check. */
  credential: string;
}

/**
 * The error for an answer that is not a success, by its status: a 429 retryable and not
 * applied, with its wait; a 408 or a 5xx retryable (applied or not, nobody knows); a 401
 * or 403 not retryable, saying to check the credential; any other refusal (a 4xx: the
 * request's own fault) not retryable. `details.status` holds the status.
 */
export function httpRefusal(o: HttpRefusal): OutflowError {
  const { service, what, status } = o;
  const reason = o.reason === undefined || o.reason.trim() === '' ? '' : `: ${redact(o.reason.trim()).slice(0, MAX_REASON_LENGTH)}`;
  const said = `(HTTP ${status}${reason})`;
  if (status === 429) return destinationError(`${service} rate limited ${what} ${said}`, { retryable: true, status, retryAfterMs: o.retryAfterMs ?? 1_000 });
  if (status === 408 || status >= 500) return destinationError(`${service} failed ${what} ${said}`, { retryable: true, status });
  if (status === 401 || status === 403) return destinationError(`${service} refused the credentials for ${what} ${said}; check \`${o.credential}\``, { retryable: false, status });
  return destinationError(`${service} refused ${what} ${said}`, { retryable: false, status });
}

/** Whether `err` is the error of an answer with one of these HTTP statuses (an {@link httpRefusal}'s `details.status`). */
export function refusedWith(err: unknown, ...statuses: number[]): boolean {
  return isOutflowError(err) && statuses.includes(err.details['status'] as number);
}

/**
 * A request whose 404 means "there is none": resolves with its value, or with undefined
 * when it was refused with 404 ({@link refusedWith}); any other failure rejects as it was.
 */
export async function ifFound<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (err) {
    if (refusedWith(err, 404)) return undefined;
    throw err;
  }
}
