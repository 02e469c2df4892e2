/**
 * An Intercom REST API server on 127.0.0.1 for contacts: create, read, update, archive,
 * unarchive, delete and search, the workspace's contact data attributes, bearer auth, the
 * app's rate limit with Intercom's headers and 429, and refusals in `error.list` form. It
 * misbehaves on request through the kit's fault knobs and keeps its contacts in a
 * JSON-lines log in `dataDir`.
 */
import type { EmulatorOptions, RunningEmulator } from '@outflow/core';
import { closeServer, createEmulatorServer, FaultInjector, FixedWindow, jsonLinesLog, listenOnLoopback, type KitFaults } from '@outflow/core/emulator-kit';
import type { Server } from 'node:http';
import { ContactStore, type Attribute, type Contact, type Write } from './contacts.js';
import { errorList, handle, type Limits, type ServerState } from './server.js';

export type { Attribute, Contact, Write } from './contacts.js';
export type { Limits } from './server.js';

/** The access token the emulator accepts unless told otherwise. */
export const SANDBOX_TOKEN = 'dG9rOm91dGZsb3ctc2FuZGJveA==';
export const LOG_FILE = 'intercom-emulator.jsonl';
/** A private app's limit: 10,000 calls a minute, spread evenly over 10-second windows. */
export const DEFAULT_LIMITS: Limits = { perWindow: 1667, windowMs: 10_000 };
/** The custom contact attributes a new emulator's workspace has. */
export const DEFAULT_ATTRIBUTES: Attribute[] = [
  { name: 'plan', data_type: 'string', custom: true, api_writable: true, options: ['free', 'starter', 'pro', 'enterprise'] },
  { name: 'monthly_spend', data_type: 'float', custom: true, api_writable: true },
  { name: 'team_mates', data_type: 'integer', custom: true, api_writable: true },
  { name: 'paid_subscriber', data_type: 'boolean', custom: true, api_writable: true },
];

export interface IntercomEmulatorOptions extends EmulatorOptions {
  /** The access token to accept; {@link SANDBOX_TOKEN} by default. */
  token?: string;
  limits?: Partial<Limits>;
  /** The workspace's custom contact attributes; {@link DEFAULT_ATTRIBUTES} by default. */
  attributes?: Attribute[];
  faults?: KitFaults;
}

const windowLimit = (l: Limits) => ({ requests: l.perWindow, perMs: l.windowMs });

export class IntercomEmulator implements RunningEmulator<{ token: string; baseUrl: string }> {
  readonly url: string;
  readonly config: { token: string; baseUrl: string };
  private readonly state: ServerState;
  private stopped = false;

  private constructor(private readonly server: Server, port: number, options: IntercomEmulatorOptions, store: ContactStore) {
    this.url = `http://127.0.0.1:${port}`;
    this.config = { token: options.token ?? SANDBOX_TOKEN, baseUrl: this.url };
    this.state = {
      token: this.config.token,
      store,
      faults: new FaultInjector(options.faults),
      window: new FixedWindow(windowLimit({ ...DEFAULT_LIMITS, ...options.limits })),
      stats: { requests: 0, byStatus: {}, lostAnswers: 0 },
      stopped: () => this.stopped,
    };
  }

  static async start(options: IntercomEmulatorOptions = {}): Promise<IntercomEmulator> {
    const store = new ContactStore(jsonLinesLog.fileIn(options.dataDir, LOG_FILE), options.attributes ?? DEFAULT_ATTRIBUTES);
    const ref: { emu?: IntercomEmulator } = {};
    const server = createEmulatorServer(
      (req, res) => handle(ref.emu!.state, req, res),
      (err, _req, res) => res.headersSent || res.writeHead(500).end(JSON.stringify(errorList('server_error', String(err)))),
    );
    ref.emu = new IntercomEmulator(server, await listenOnLoopback(server, options.port, 'intercom'), options, store);
    return ref.emu;
  }

  /** Replaces the active faults (`{}` clears them). */
  setFaults(faults: KitFaults): void {
    this.state.faults.set(faults);
  }

  /** Changes the rate limit from the next request on. */
  setLimits(limits: Partial<Limits>): void {
    const { requests, perMs } = this.state.window.limit;
    this.state.window.limit = windowLimit({ perWindow: requests, windowMs: perMs, ...limits });
  }

  /** Every contact held, archived ones included (with `archived: true`), oldest first. */
  contacts(): (Contact & { archived: boolean })[] {
    return [...this.state.store.contacts.values()].map((c) => ({ ...structuredClone(c), archived: this.state.store.archived.has(c.id) }));
  }

  /** Every write applied through the API since the log began, in order. */
  writes(): Write[] {
    return structuredClone(this.state.store.writes);
  }

  /** Requests received, answers by status, and answers lost after a write was applied. */
  stats(): ServerState['stats'] {
    return structuredClone(this.state.stats);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await closeServer(this.server);
  }
}

/** Starts an Intercom emulator on 127.0.0.1; see {@link IntercomEmulator}. */
export function start(options: IntercomEmulatorOptions = {}): Promise<IntercomEmulator> {
  return IntercomEmulator.start(options);
}
