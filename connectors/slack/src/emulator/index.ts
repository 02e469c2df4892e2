/**
 * A Slack Web API server on 127.0.0.1, for tests and `sandbox: true` connections:
 * `auth.test`, `chat.postMessage` (text, blocks, metadata, threads), `conversations.list`
 * and `conversations.history` (with metadata), as `@slack/web-api` calls them. It enforces
 * Slack's rate limits (`limits.ts`), refuses what Slack refuses with Slack's error codes,
 * misbehaves on request through the kit's fault knobs, and keeps every posted message in
 * a JSON-lines log in `dataDir`.
 */
import type { Server } from 'node:http';
import type { EmulatorOptions, RateLimit, RunningEmulator } from '@outflow/core';
import { closeServer, createEmulatorServer, FaultInjector, jsonLinesLog, listenOnLoopback, sendJson, type KitFaults } from '@outflow/core/emulator-kit';
import type { SlackConfig } from '../config.js';
import { DEFAULT_LIMITS, RateTiers, type SlackLimits } from './limits.js';
import { handle, type LoggedRequest, type ServerState } from './server.js';
import { DEFAULT_CHANNELS, MESSAGES_FILE, Workspace, type Channel, type Message } from './workspace.js';

export { DEFAULT_LIMITS, type SlackLimits } from './limits.js';
export { DEFAULT_CHANNELS, type Channel, type Message, type MessageMetadata } from './workspace.js';
export { MAX_TEXT } from './messages.js';
export type { LoggedRequest } from './server.js';

/** The bot token the emulator accepts unless told otherwise. */
export const SANDBOX_TOKEN = 'xoxb-0000000000-outflow-sandbox';

export interface SlackEmulatorOptions extends EmulatorOptions {
  /** The bot token to accept; {@link SANDBOX_TOKEN} by default. */
  token?: string;
  /** The workspace's channels; {@link DEFAULT_CHANNELS} by default. */
  channels?: Channel[];
  /** Limits to change from {@link DEFAULT_LIMITS}. */
  limits?: Partial<SlackLimits>;
  faults?: KitFaults;
}

export class SlackEmulator implements RunningEmulator<SlackConfig> {
  readonly url: string;
  readonly config: { token: string; slackApiUrl: string };
  readonly limits: SlackLimits;
  private readonly state: ServerState;
  private stopped = false;

  private constructor(
    private readonly server: Server,
    port: number,
    state: ServerState,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.config = { token: state.token, slackApiUrl: `${this.url}/api/` };
    this.limits = state.tiers.limits;
    this.state = state;
  }

  static async start(options: SlackEmulatorOptions = {}): Promise<SlackEmulator> {
    const workspace = new Workspace(options.channels ?? DEFAULT_CHANNELS, jsonLinesLog.fileIn(options.dataDir, MESSAGES_FILE));
    const ref: { emu?: SlackEmulator } = {};
    const state: ServerState = {
      token: options.token ?? SANDBOX_TOKEN,
      inactive: false,
      workspace,
      tiers: new RateTiers({ ...DEFAULT_LIMITS, ...options.limits }),
      faults: new FaultInjector(options.faults),
      requests: [],
      stopped: () => ref.emu?.stopped ?? false,
    };
    const server = createEmulatorServer(
      (req, res) => handle(state, req, res),
      (_err, _req, res) => sendJson(res, 500, { ok: false, error: 'fatal_error' }),
    );
    ref.emu = new SlackEmulator(server, await listenOnLoopback(server, options.port, 'slack'), state);
    return ref.emu;
  }

  /** Replaces the active faults (`{}` clears them). */
  setFaults(faults: KitFaults): void {
    this.state.faults.set(faults);
  }

  /** Deactivates (or reactivates) the app's workspace: every call is then answered `account_inactive`. */
  setInactive(inactive: boolean): void {
    this.state.inactive = inactive;
  }

  /** Every message posted, in the order Slack accepted them: the emulator's write log. */
  messages(): Message[] {
    return structuredClone(this.state.workspace.messages);
  }

  /** Every request received, in arrival order, with what it was answered. */
  requests(): LoggedRequest[] {
    return structuredClone(this.state.requests);
  }

  /** The limits `chat.postMessage` is held to on one channel and on the workspace. */
  postLimits(): RateLimit[] {
    return [this.limits.postPerChannel, this.limits.postPerWorkspace];
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await closeServer(this.server);
  }
}

/** Starts a Slack emulator on 127.0.0.1; see {@link SlackEmulator}. */
export function start(options: SlackEmulatorOptions = {}): Promise<SlackEmulator> {
  return SlackEmulator.start(options);
}
