import { describeError, isOutflowError } from '@outflow/core';
import type { TestContext } from './context.js';
import { AcceptanceFailure, fail, within, type Connection } from './harness.js';

/**
 * Calls `attempt` with each bad config's context and fails unless it is refused with an
 * OutflowError that has a message. `what` names the call, e.g. `check()`.
 */
export async function expectBadConfigsRefused(
  h: Connection<unknown>,
  what: string,
  attempt: (ctx: TestContext<never>, name: string) => Promise<void>,
): Promise<void> {
  if (h.badConfigs.length === 0) {
    fail('the driver gives no bad configs; give at least one config the connection must refuse (a wrong secret, an unreachable host), or `noBadConfigs` saying why none exists');
  }
  for (const bad of h.badConfigs) {
    let error: unknown;
    try {
      await within(attempt(h.context(bad.config) as TestContext<never>, bad.name), h.timeoutMs, `${what} with bad config "${bad.name}"`);
    } catch (err) {
      if (err instanceof AcceptanceFailure) throw err;
      error = err;
    }
    if (error === undefined) fail(`${what} accepted bad config "${bad.name}"`);
    if (!isOutflowError(error)) fail(`${what} with bad config "${bad.name}" threw a non-OutflowError: ${describeError(error)}`);
    if (error.message.trim() === '') fail(`${what} with bad config "${bad.name}" threw an error without a message`);
  }
}
