/**
 * A local __Name__ API on 127.0.0.1, for tests and `sandbox: true` connections. It must
 * answer as the vendor's API reference says — the same paths, auth, limits, error bodies
 * and pagination — and refuse what the vendor refuses, or the tests prove nothing.
 * This skeleton speaks an example API; replace it with your vendor's, concept by concept.
 * The kit's EmulatorApp runs every request: the body, the token check, the rate limit (429
 * with Retry-After), the fault knobs, the routes and lost answers, in the API's error shape;
 * its AppEmulator gives the URL, the config, the fault knobs, the counts and the stop.
 */
import type { EmulatorOptions, RateLimit, RunningEmulator } from '@outflow/core';
import { AppEmulator, bearerAuth, EmulatorApp, jsonLinesLog, rollingLimit, RollingWindow, type KitFaults } from '@outflow/core/emulator-kit';
import type { __Name__Config } from '../config.js';
import { errorBody } from './api.js';
// #if destination
import { Records } from './records.js';
// #endif
// #if source
import { Tables } from './tables.js';
// #endif

/** The token the emulator accepts unless told otherwise. */
export const SANDBOX_TOKEN = 'sandbox-token-__name__';
/** The limit the API documents per token; the emulator enforces it with 429 and Retry-After. */
// #if !each
export const RATE_LIMIT: RateLimit = { requests: 100, perMs: 10_000 };
// #endif
// #if each
// One request per record: an API without batch writes allows more requests than one with them.
export const RATE_LIMIT: RateLimit = { requests: 1000, perMs: 10_000 };
// #endif
/** The largest request body the API takes (413 beyond it). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * The faults tests can switch on: the kit's (`status429Every`, `failRequests`, `errorRate`,
 * `latencyMs`, `resetRate`, lost answers …). Add the vendor's own knobs here.
 */
export type __Name__Faults = KitFaults;

export interface __Name__EmulatorOptions extends EmulatorOptions {
  /** The token to accept; {@link SANDBOX_TOKEN} by default. */
  token?: string;
  faults?: __Name__Faults;
}

/** A running emulator: its URL, the config pointing at it, and what tests inspect. */
export class __Name__Emulator extends AppEmulator<{ baseUrl: string; token: string }, __Name__Faults> implements RunningEmulator<__Name__Config> {
  /** The rate limit enforced, for the acceptance test's `enforcedLimits()`. */
  readonly limit = RATE_LIMIT;
  // #if destination
  /** The records held; tests read them back from here, not through the rate-limited API. */
  readonly records: Records;
  // #endif
  // #if source
  /** The tables; tests change them here, as the vendor's users would. */
  readonly tables: Tables;
  // #endif

  private constructor(app: EmulatorApp<__Name__Faults>, token: string, options: __Name__EmulatorOptions) {
    super(app, { baseUrl: app.url, token });
    app.on('GET', '/v1/account', () => ({ body: { id: 'acct_sandbox', name: '__Name__ sandbox' } }));
    // #if destination
    this.records = new Records(jsonLinesLog.fileIn(options.dataDir, 'records.jsonl'));
    this.records.route(app);
    // #endif
    // #if source
    this.tables = new Tables(jsonLinesLog.fileIn(options.dataDir, 'tables.jsonl'));
    this.tables.route(app);
    // #endif
  }

  /** Starts the emulator; with `dataDir`, its state survives restarts. */
  static async start(options: __Name__EmulatorOptions = {}): Promise<__Name__Emulator> {
    const token = options.token ?? SANDBOX_TOKEN;
    const app = new EmulatorApp<__Name__Faults>({
      name: '__name__',
      errorBody,
      maxBodyBytes: MAX_BODY_BYTES,
      checks: [bearerAuth(token)],
      limit: rollingLimit(new RollingWindow(RATE_LIMIT)),
      faults: options.faults,
    });
    await app.listen(options.port);
    try {
      return new __Name__Emulator(app, token, options);
    } catch (err) {
      await app.stop(); // e.g. a log under dataDir it cannot read: no server is left behind
      throw err;
    }
  }
}

/** Starts the __Name__ emulator on 127.0.0.1; see {@link __Name__Emulator}. */
export function start(options: __Name__EmulatorOptions = {}): Promise<__Name__Emulator> {
  return __Name__Emulator.start(options);
}
