/**
 * An Intercom REST API server on 127.0.0.1 for contacts: create, read, update, archive,
 * unarchive, delete and search, the workspace's contact data attributes, bearer auth, the
 * app's rate limit with Intercom's headers and 429, and refusals in `error.list` form. It
 * misbehaves on request through the kit's fault knobs and keeps its contacts in a
 * JSON-lines log in `dataDir`.
 */
import type { EmulatorOptions, RateLimit } from '@outflow/core';
import { AppEmulator, EmulatorApp, FixedWindow, fixedLimitWithHeaders, jsonLinesLog, type Attribute, type KitFaults } from '@outflow/core/emulator-kit';
import { ContactStore, type Contact, type Write } from './contacts.js';
import { checks, errorList, MAX_BODY_BYTES, route } from './server.js';

export type { Contact, Write } from './contacts.js';
export type { Attribute } from '@outflow/core/emulator-kit';

/** The access token the emulator accepts unless told otherwise. */
export const SANDBOX_TOKEN = 'dG9rOm91dGZsb3ctc2FuZGJveA==';
export const LOG_FILE = 'intercom-emulator.jsonl';
/** A private app's limit: 10,000 calls a minute, spread evenly over fixed 10-second windows. */
export const DEFAULT_LIMIT: RateLimit = { requests: 1667, perMs: 10_000 };
/** The custom contact attributes a new emulator's workspace has. */
export const DEFAULT_ATTRIBUTES: Attribute[] = [
  { name: 'plan', type: 'string', custom: true, options: ['free', 'starter', 'pro', 'enterprise'] },
  { name: 'monthly_spend', type: 'float', custom: true },
  { name: 'team_mates', type: 'integer', custom: true },
  { name: 'paid_subscriber', type: 'boolean', custom: true },
];

export interface IntercomEmulatorOptions extends EmulatorOptions {
  /** The access token to accept; {@link SANDBOX_TOKEN} by default. */
  token?: string;
  /** The app's rate limit, in fixed windows; {@link DEFAULT_LIMIT} by default. */
  limits?: Partial<RateLimit>;
  /** The workspace's custom contact attributes (the kit's {@link Attribute}: `readOnly` is Intercom's `api_writable: false`); {@link DEFAULT_ATTRIBUTES} by default. */
  attributes?: Attribute[];
  faults?: KitFaults;
}

export class IntercomEmulator extends AppEmulator<{ token: string; baseUrl: string }> {
  private constructor(
    app: EmulatorApp,
    private readonly store: ContactStore,
    token: string,
  ) {
    super(app, { token, baseUrl: app.url });
  }

  static async start(options: IntercomEmulatorOptions = {}): Promise<IntercomEmulator> {
    const token = options.token ?? SANDBOX_TOKEN;
    const store = new ContactStore(jsonLinesLog.fileIn(options.dataDir, LOG_FILE), options.attributes ?? DEFAULT_ATTRIBUTES);
    const app = new EmulatorApp({
      name: 'intercom',
      errorBody: errorList,
      maxBodyBytes: MAX_BODY_BYTES,
      checks: checks(token),
      limit: fixedLimitWithHeaders(new FixedWindow({ ...DEFAULT_LIMIT, ...options.limits }), (n) => `Exceeded rate limit of ${n} in 10_seconds`),
      faults: options.faults,
    });
    route(app, store);
    await app.listen(options.port);
    return new IntercomEmulator(app, store, token);
  }

  /** Every contact held, archived ones included (with `archived: true`), oldest first. */
  contacts(): (Contact & { archived: boolean })[] {
    return this.store.table.all().map((c) => ({ ...structuredClone(c), archived: this.store.table.isArchived(c.id) }));
  }

  /** Every write applied through the API since the log began, in order. */
  writes(): Write[] {
    return structuredClone(this.store.log.entries);
  }
}

/** Starts an Intercom emulator on 127.0.0.1; see {@link IntercomEmulator}. */
export function start(options: IntercomEmulatorOptions = {}): Promise<IntercomEmulator> {
  return IntercomEmulator.start(options);
}
