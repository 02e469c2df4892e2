import { OutflowError } from '../errors.js';

/**
 * The error a ledger refuses a deposed holder's write or renewal with: the sync's lease is
 * no longer the one with `token`, because `holder` took it over, or because it was released.
 */
export function leaseLostError(sync: string, token: number, holder?: { owner: string; token: number }): OutflowError {
  return new OutflowError(
    'OUTFLOW_LEASE_LOST',
    `sync "${sync}": another runner took the sync over (this runner's lease, token ${token}, ${
      holder ? `was taken over by ${holder.owner}, token ${holder.token}` : 'was released'
    }); this runner stops delivering it`,
    { details: { sync, token, ...(holder ? { holder: holder.owner, holderToken: holder.token } : {}) } },
  );
}
