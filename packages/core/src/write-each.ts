import type { Operation, RecordResult } from './contracts.js';
import { isOutflowError } from './errors.js';
import { refusedWith } from './http-failure.js';

/** A failure about the connection rather than the record: retryable (a 429, a 5xx, a timeout), or a refused credential. */
const aboutConnection = (err: unknown) => (isOutflowError(err) && err.retryable) || refusedWith(err, 401, 403);

/**
 * A destination's `write` for an API with no batch write: `apply` makes each operation's own
 * requests, every operation side by side, and the answer is one result per operation. A stop
 * throws OUTFLOW_ABORTED; when every operation failed for a reason about the connection, the
 * first error is thrown for the whole batch (the engine backs off and retries it); else each
 * failed operation is answered on its own, with its error's message, retryable (and its wait)
 * when the error is. A failure that is not an Outflow error is a bug and is thrown.
 */
export async function writeEach(ops: readonly Operation[], apply: (op: Operation) => Promise<RecordResult>): Promise<RecordResult[]> {
  const settled = await Promise.allSettled(ops.map(apply));
  const errors = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  const aborted = errors.find((e) => isOutflowError(e, 'OUTFLOW_ABORTED'));
  if (aborted !== undefined || (errors.length === ops.length && errors.length > 0 && errors.every(aboutConnection))) throw aborted ?? errors[0];
  return settled.map((r) => {
    if (r.status === 'fulfilled') return r.value;
    const err = r.reason as unknown;
    if (!isOutflowError(err)) throw err;
    return { ok: false, reason: err.message, retryable: err.retryable, ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }) };
  });
}
