/**
 * A Braze REST API on 127.0.0.1, for tests and `sandbox: true` connections: `/users/track`
 * (attributes, events, purchases, with Braze's limits and non-fatal `errors`), and the
 * API-triggered sends of `/campaigns/trigger/send` and `/canvas/trigger/send`, behind bearer
 * auth and Braze's documented rate limits with its X-RateLimit headers. It misbehaves on
 * request through the kit's fault knobs and keeps its users, events, purchases and sends
 * in JSON-lines logs in `dataDir`.
 */
import type { Server } from 'node:http';
import type { EmulatorOptions, RateLimit, RunningEmulator } from '@outflow/core';
import { closeServer, createEmulatorServer, FaultInjector, FixedWindow, jsonLinesLog, listenOnLoopback, sendJson, type KitFaults } from '@outflow/core/emulator-kit';
import type { BrazeConfig } from '../config.js';
import { Messaging, type Send } from './messaging.js';
import { handle, type RequestEntry, type ServerState } from './server.js';
import { UserStore, type Recorded, type User } from './users.js';

export type { Send } from './messaging.js';
export type { RequestEntry } from './server.js';
export type { Recorded, User } from './users.js';

/** The REST API key the emulator accepts unless told otherwise. */
export const SANDBOX_API_KEY = 'sandbox-braze-rest-api-key';
/** The campaign and Canvas the sandbox workspace has, for API-triggered sends. */
export const SANDBOX_CAMPAIGN = 'sandbox-campaign';
export const SANDBOX_CANVAS = 'sandbox-canvas';
/** Braze's documented defaults: /users/track, and the send endpoints together. */
export const DEFAULT_LIMITS = { usersTrack: { requests: 3_000, perMs: 3_000 }, messaging: { requests: 250_000, perMs: 3_600_000 } } satisfies Record<string, RateLimit>;

export interface BrazeEmulatorOptions extends EmulatorOptions {
  /** The REST API key to accept; {@link SANDBOX_API_KEY} by default. */
  apiKey?: string;
  /** The API-triggered campaigns the workspace has; [{@link SANDBOX_CAMPAIGN}] by default. */
  campaigns?: string[];
  /** The API-triggered Canvases the workspace has; [{@link SANDBOX_CANVAS}] by default. */
  canvases?: string[];
  /** external_ids refused as dummy users by Braze's spam blocking; none by default. */
  blockedExternalIds?: string[];
  /** Rate limits other than Braze's defaults. */
  limits?: Partial<typeof DEFAULT_LIMITS>;
  faults?: KitFaults;
}

export class BrazeEmulator implements RunningEmulator<BrazeConfig> {
  readonly url: string;
  readonly config: { instanceUrl: string; restApiKey: string };
  private readonly state: ServerState;
  private stopped = false;

  private constructor(
    private readonly server: Server,
    port: number,
    options: BrazeEmulatorOptions,
    users: UserStore,
    messaging: Messaging,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.config = { instanceUrl: this.url, restApiKey: options.apiKey ?? SANDBOX_API_KEY };
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.state = {
      apiKey: this.config.restApiKey,
      users,
      messaging,
      faults: new FaultInjector(options.faults),
      windows: { usersTrack: new FixedWindow(limits.usersTrack), messaging: new FixedWindow(limits.messaging) },
      requests: [],
      stopped: () => this.stopped,
    };
  }

  static async start(options: BrazeEmulatorOptions = {}): Promise<BrazeEmulator> {
    const users = new UserStore(jsonLinesLog.fileIn(options.dataDir, 'braze-users.jsonl'), new Set(options.blockedExternalIds));
    const known = { campaign: new Set(options.campaigns ?? [SANDBOX_CAMPAIGN]), canvas: new Set(options.canvases ?? [SANDBOX_CANVAS]) };
    const messaging = new Messaging(users, known, jsonLinesLog.fileIn(options.dataDir, 'braze-sends.jsonl'));
    const ref: { emu?: BrazeEmulator } = {};
    const server = createEmulatorServer(
      (req, res) => handle(ref.emu!.state, req, res),
      (err, _req, res) => sendJson(res, 500, { message: `emulator failure: ${err instanceof Error ? err.message : String(err)}`, errors: [] }),
    );
    ref.emu = new BrazeEmulator(server, await listenOnLoopback(server, options.port, 'braze'), options, users, messaging);
    return ref.emu;
  }

  /** Replaces the active faults (`{}` clears them). */
  setFaults(faults: KitFaults): void {
    this.state.faults.set(faults);
  }

  /** Every user profile, with its identifiers and attributes. */
  users(): User[] {
    return [...this.state.users.users.values()].map((u) => structuredClone(u));
  }

  /** Every event recorded, in order: a repeat is a second event, as at Braze. */
  events(): Recorded[] {
    return structuredClone(this.state.users.events);
  }

  /** Every purchase recorded, in order. */
  purchases(): Recorded[] {
    return structuredClone(this.state.users.purchases);
  }

  /** Every recipient of an accepted triggered send, in order. */
  sends(): Send[] {
    return structuredClone(this.state.messaging.sends);
  }

  /** Every request received, in order, with its answer's status (0: none). */
  requests(): RequestEntry[] {
    return structuredClone(this.state.requests);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await closeServer(this.server);
  }
}

/** Starts a Braze emulator on 127.0.0.1; see {@link BrazeEmulator}. */
export function start(options: BrazeEmulatorOptions = {}): Promise<BrazeEmulator> {
  return BrazeEmulator.start(options);
}
