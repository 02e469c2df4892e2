/**
 * A Segment Tracking API on 127.0.0.1, for tests and `sandbox: true` connections: the batch
 * and single-call endpoints with Segment's size limits and 400s, its 200-then-drop handling
 * of calls it cannot use and of unknown write keys, dedupe by messageId, an optional request
 * limit answered 429 with Retry-After, and the kit's faults. The calls it accepted are kept
 * in a JSON-lines log in `dataDir`.
 */
import type { Server } from 'node:http';
import type { EmulatorOptions, RateLimit, RunningEmulator } from '@outflow/core';
import { closeServer, createEmulatorServer, FaultInjector, jsonLinesLog, listenOnLoopback, RollingWindow, sendJson, type KitFaults } from '@outflow/core/emulator-kit';
import type { SegmentConfig } from '../config.js';
import { MessageStore, type Call, type Dropped, type RequestEntry } from './messages.js';
import { handle, type TrackingState } from './tracking.js';

export type { Call, Dropped, RequestEntry } from './messages.js';
export { MAX_BATCH_BYTES, MAX_CALL_BYTES } from './tracking.js';

/** The write key of the emulated source unless told otherwise. */
export const SANDBOX_WRITE_KEY = 'sandbox-write-key-segment';
export const LOG_FILE = 'segment-emulator.jsonl';

export interface SegmentEmulatorOptions extends EmulatorOptions {
  /** The write key of the emulated source; {@link SANDBOX_WRITE_KEY} by default. */
  writeKey?: string;
  /**
   * A request limit to enforce with 429 and Retry-After. Segment documents none for its
   * Tracking API, so there is none by default.
   */
  limit?: RateLimit;
  faults?: KitFaults;
}

export class SegmentEmulator implements RunningEmulator<SegmentConfig> {
  readonly url: string;
  readonly config: { host: string; writeKey: string };
  private readonly state: TrackingState;
  private stopped = false;

  private constructor(
    private readonly server: Server,
    port: number,
    options: SegmentEmulatorOptions,
    store: MessageStore,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.config = { host: this.url, writeKey: options.writeKey ?? SANDBOX_WRITE_KEY };
    this.state = {
      writeKey: this.config.writeKey,
      store,
      faults: new FaultInjector(options.faults),
      window: options.limit === undefined ? undefined : new RollingWindow(options.limit),
      stopped: () => this.stopped,
    };
  }

  static async start(options: SegmentEmulatorOptions = {}): Promise<SegmentEmulator> {
    const store = new MessageStore(jsonLinesLog.fileIn(options.dataDir, LOG_FILE));
    const ref: { emu?: SegmentEmulator } = {};
    const server = createEmulatorServer(
      (req, res) => handle(ref.emu!.state, req, res),
      (err, _req, res) => sendJson(res, 500, { success: false, message: `emulator failure: ${err instanceof Error ? err.message : String(err)}` }),
    );
    ref.emu = new SegmentEmulator(server, await listenOnLoopback(server, options.port, 'segment'), options, store);
    return ref.emu;
  }

  /** Replaces the active faults (`{}` clears them). */
  setFaults(faults: KitFaults): void {
    this.state.faults.set(faults);
  }

  /** Every call accepted, once per messageId, in the order first accepted. */
  calls(): Call[] {
    return this.state.store.calls();
  }

  /** The calls answered 200 and then dropped, with Segment's reason (what its debugger shows). */
  dropped(): Dropped[] {
    return structuredClone(this.state.store.dropped);
  }

  /** Every request received, in order, with its answer's status (0: none) and the messageIds it carried. */
  requests(): RequestEntry[] {
    return structuredClone(this.state.store.requests);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await closeServer(this.server);
  }
}

/** Starts a Segment emulator on 127.0.0.1; see {@link SegmentEmulator}. */
export function start(options: SegmentEmulatorOptions = {}): Promise<SegmentEmulator> {
  return SegmentEmulator.start(options);
}
