import { isOutflowError, OutflowError } from './errors.js';

/**
 * A destination's or source's `check` made from a probe — a cheap read that needs the
 * connection's credentials and reach: whatever the probe throws becomes
 * `OUTFLOW_CHECK_FAILED` with its message, except a stop, which stays `OUTFLOW_ABORTED`,
 * and a failure `proves` says still shows the credentials good (a 403 for a missing scope,
 * a 400 for an empty request the vendor authenticated before refusing it), which passes.
 */
export async function checkWith(probe: () => Promise<unknown>, proves?: (err: unknown) => boolean): Promise<void> {
  try {
    await probe();
  } catch (err) {
    if (isOutflowError(err, 'OUTFLOW_ABORTED')) throw err;
    if (proves?.(err) === true) return;
    throw new OutflowError('OUTFLOW_CHECK_FAILED', err instanceof Error ? err.message : String(err), { cause: err });
  }
}
