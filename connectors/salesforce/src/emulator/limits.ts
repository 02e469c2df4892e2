/**
 * The org's daily API request allocation. Every authenticated REST and Bulk API request
 * counts one; each answer carries `Sforce-Limit-Info: api-usage=<used>/<allocation>`; once
 * the allocation is spent a request is refused with 403 REQUEST_LIMIT_EXCEEDED ("TotalRequests
 * Limit exceeded."). Salesforce's allocation is a rolling 24 hours; the emulator's resets
 * when a test says so.
 */
import { ApiError } from './errors.js';

/** A Developer Edition org's allocation. */
export const DEFAULT_DAILY_ALLOCATION = 15_000;

export class DailyAllocation {
  constructor(
    public allocation: number = DEFAULT_DAILY_ALLOCATION,
    public used = 0,
  ) {}

  /** Counts a request, or throws the refusal when the allocation is spent. */
  count(): void {
    if (this.used >= this.allocation) throw new ApiError(403, 'REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.', undefined, this.headers());
    this.used++;
  }

  headers(): Record<string, string> {
    return { 'sforce-limit-info': `api-usage=${this.used}/${this.allocation}` };
  }
}
