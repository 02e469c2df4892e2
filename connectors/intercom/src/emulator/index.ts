/**
 * An Intercom REST API server on 127.0.0.1 for contacts: create, read, update, archive,
 * unarchive, delete and search, the workspace's contact data attributes, bearer auth, the
 * app's rate limit in fixed 10-second windows (X-RateLimit-Limit / -Remaining / -Reset on
 * every authenticated answer, 429 rate_limit_exceeded when spent), and refusals in
 * `error.list` form. It misbehaves on request through the kit's fault knobs and keeps its
 * contacts in a JSON-lines log in `dataDir`.
 */
import type { EmulatorOptions, RateLimit, RunningEmulator } from '@outflow/core';
import { AppEmulator, bearerAuth, EmulatorApp, FixedWindow, fixedLimitWithHeaders, jsonLinesLog, type Attribute, type KitFaults } from '@outflow/core/emulator-kit';
import type { IntercomConfig } from '../config.js';
import { errorBody, versionCheck } from './api.js';
import { Records } from './records.js';

export type { Contact, Write } from './records.js';
export type { Attribute } from '@outflow/core/emulator-kit';

/** The token the emulator accepts unless told otherwise. */
export const SANDBOX_TOKEN = 'dG9rOm91dGZsb3ctc2FuZGJveA==';
export const LOG_FILE = 'intercom-emulator.jsonl';
/** A private app's limit: 10,000 calls a minute, spread evenly over fixed 10-second windows. */
export const DEFAULT_LIMIT: RateLimit = { requests: 1667, perMs: 10_000 };
/** The largest request body the API takes (413 beyond it). */
const MAX_BODY_BYTES = 5 * 1024 * 1024;
/** The custom contact attributes a new emulator's workspace has. */
export const DEFAULT_ATTRIBUTES: Attribute[] = [
  { name: 'plan', type: 'string', custom: true, options: ['free', 'starter', 'pro', 'enterprise'] },
  { name: 'monthly_spend', type: 'float', custom: true },
  { name: 'team_mates', type: 'integer', custom: true },
  { name: 'paid_subscriber', type: 'boolean', custom: true },
];

export interface IntercomEmulatorOptions extends EmulatorOptions {
  /** The token to accept; {@link SANDBOX_TOKEN} by default. */
  token?: string;
  /** The app's rate limit, in fixed windows; {@link DEFAULT_LIMIT} by default. */
  limits?: Partial<RateLimit>;
  /** The workspace's custom contact attributes (the kit's {@link Attribute}: `readOnly` is Intercom's `api_writable: false`); {@link DEFAULT_ATTRIBUTES} by default. */
  attributes?: Attribute[];
  faults?: KitFaults;
}

/** A running emulator: its URL, the config pointing at it, and what tests inspect. */
export class IntercomEmulator extends AppEmulator<{ baseUrl: string; token: string }> implements RunningEmulator<IntercomConfig> {
  /** The records held; tests read them back from here, not through the rate-limited API. */
  readonly records: Records;

  private constructor(app: EmulatorApp, token: string, records: Records) {
    super(app, { baseUrl: app.url, token });
    this.records = records;
    this.records.route(app);
  }

  /** Starts the emulator; with `dataDir`, its state survives restarts. */
  static async start(options: IntercomEmulatorOptions = {}): Promise<IntercomEmulator> {
    const token = options.token ?? SANDBOX_TOKEN;
    const records = new Records(jsonLinesLog.fileIn(options.dataDir, LOG_FILE), options.attributes ?? DEFAULT_ATTRIBUTES);
    const app = new EmulatorApp({
      name: 'intercom',
      errorBody,
      maxBodyBytes: MAX_BODY_BYTES,
      // The token, then the API version; both before the rate limit, so a 401 carries no rate-limit headers.
      checks: [bearerAuth(token, 'Access Token Invalid'), versionCheck],
      limit: fixedLimitWithHeaders(new FixedWindow({ ...DEFAULT_LIMIT, ...options.limits }), (n) => `Exceeded rate limit of ${n} in 10_seconds`),
      faults: options.faults,
    });
    await app.listen(options.port);
    return new IntercomEmulator(app, token, records);
  }
}

/** Starts the Intercom emulator on 127.0.0.1; see {@link IntercomEmulator}. */
export function start(options: IntercomEmulatorOptions = {}): Promise<IntercomEmulator> {
  return IntercomEmulator.start(options);
}
