/**
 * A HubSpot CRM v3 server on 127.0.0.1 that answers the way HubSpot does: objects (batch
 * create / read / update / upsert / archive, get, list, search), properties and custom
 * object schemas, bearer-token auth, batch and rate limits with HubSpot's headers and 429
 * bodies, invalid values and unique-value conflicts refusing a batch as a whole, missing
 * records answered per input in a 207, and unique-property upserts. It can misbehave on
 * request (latency, 5xx, 429, connection resets, answers lost after the write was applied)
 * and keeps its records in a JSON-lines log in `dataDir`.
 */
import type { EmulatorOptions, RunningEmulator } from '@outflow/core';
import { closeServer, createEmulatorServer, FaultInjector, jsonLinesLog, listenOnLoopback, type KitFaults } from '@outflow/core/emulator-kit';
import type { Server } from 'node:http';
import { RateLimits, type HubSpotLimits } from './limits.js';
import type { PropertyDefinition } from './properties.js';
import { createRoutes } from './routes.js';
import { answerFailure, handle, type EmulatorStats, type ServerState } from './server.js';
import { CrmStore, type CustomObjectSpec, type StoredRecord } from './store.js';

export { MAX_BATCH_INPUTS } from './batch.js';
export type { HubSpotLimits } from './limits.js';
export { defineProperty, type PropertyDefinition, type PropertySpec, type PropertyType } from './properties.js';
export { RECORDS_PATH, type EmulatorStats } from './server.js';
export type { AppliedWrite, CustomObjectSpec, StoredRecord } from './store.js';

/** The private-app token the emulator accepts unless told otherwise. */
export const SANDBOX_TOKEN = 'pat-sandbox-outflow-0000';
/** The JSON-lines log kept in `dataDir`. */
export const LOG_FILE = 'hubspot-emulator.jsonl';

/**
 * Ways to make the emulator misbehave: `failRequests` answers the next N API requests 503,
 * `status429Every` answers every Nth one 429 TEN_SECONDLY_ROLLING whatever the counts say,
 * `errorRate` answers 502, `resetRate` drops the connection, each after auth and limits.
 * `loseAnswers` (the next N) and `lostAnswerRate` (a seeded fraction) apply a write that
 * succeeded and then lose its answer as `lostAnswer` says: `reset` drops the connection
 * (the default), `timeout` never answers (until the client gives up or the emulator stops),
 * `error` answers 502, `mixed` picks one each time. Only writes count: reads (GET, search,
 * batch read) and refused requests are answered.
 */
export type HubSpotFaults = KitFaults;

export interface HubSpotEmulatorOptions extends EmulatorOptions {
  /** The private-app access token to accept; {@link SANDBOX_TOKEN} by default. */
  accessToken?: string;
  limits?: HubSpotLimits;
  faults?: HubSpotFaults;
  customObjects?: CustomObjectSpec[];
}

/** A running HubSpot emulator and its inspection API. */
export class HubSpotEmulator implements RunningEmulator<{ accessToken: string; basePath: string }> {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Points a hubspot connection at this emulator. */
  readonly config: { accessToken: string; basePath: string };

  private readonly limits: RateLimits;
  private readonly faults: FaultInjector;
  private readonly counters: Omit<EmulatorStats, 'writes'>;
  private stopped = false;

  private constructor(
    private readonly server: Server,
    port: number,
    options: HubSpotEmulatorOptions,
    private readonly store: CrmStore,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.config = { accessToken: options.accessToken ?? SANDBOX_TOKEN, basePath: this.url };
    this.limits = new RateLimits(options.limits);
    this.faults = new FaultInjector(options.faults);
    this.counters = { requests: 0, byStatus: {}, rateLimited: {}, batches: { requests: 0, inputs: 0 }, lostAnswers: 0 };
  }

  /** Starts an emulator; with `dataDir`, replays the log kept there first. */
  static async start(options: HubSpotEmulatorOptions = {}): Promise<HubSpotEmulator> {
    const store = CrmStore.open(jsonLinesLog.fileIn(options.dataDir, LOG_FILE), options.customObjects ?? []);
    const ref: { state?: ServerState } = {};
    const server = createEmulatorServer(
      (req, res) => handle(ref.state!, req, res),
      (err, _req, res) => answerFailure(ref.state!, res, err),
    );
    // Longer than any client's idle keep-alive, so a reused socket is never closed under it.
    server.keepAliveTimeout = 65_000;
    const port = await listenOnLoopback(server, options.port, 'hubspot');
    const emulator = new HubSpotEmulator(server, port, options, store);
    ref.state = {
      token: emulator.config.accessToken,
      store,
      limits: emulator.limits,
      faults: emulator.faults,
      routes: createRoutes(store, emulator.counters.batches, emulator.url),
      stats: emulator.counters,
      stopped: () => emulator.stopped,
      records: (objectType) => emulator.records(objectType),
    };
    return emulator;
  }

  /** Replaces the active faults (pass `{}` to clear them); `failRequests` and `loseAnswers` restart their counts. */
  setFaults(faults: HubSpotFaults): void {
    this.faults.set(faults);
  }

  /** Changes rate limits from now on; counts so far are kept. */
  setLimits(limits: HubSpotLimits): void {
    this.limits.set(limits);
  }

  /** The current records of an object type, in id order. */
  records(objectType: string): StoredRecord[] {
    const object = this.store.object(objectType);
    return object === undefined ? [] : object.records.all().map((r) => structuredClone(r));
  }

  /** The record of `objectType` whose `property` equals `value` (emails compare case-insensitively). */
  find(objectType: string, property: string, value: string): StoredRecord | undefined {
    const object = this.store.object(objectType);
    if (object === undefined) return undefined;
    const hit = this.store.lookup(object, value, property);
    if (hit !== undefined) return structuredClone(hit);
    for (const r of object.records.all()) if (r.properties[property] === value) return structuredClone(r);
    return undefined;
  }

  /** The record with this id, if it exists. */
  get(objectType: string, id: string): StoredRecord | undefined {
    const r = this.store.object(objectType)?.records.get(id);
    return r === undefined ? undefined : structuredClone(r);
  }

  /** The property definitions of an object type. */
  properties(objectType: string): PropertyDefinition[] {
    return [...(this.store.object(objectType)?.props.values() ?? [])].map((d) => structuredClone(d));
  }

  /** Counters since start, and the log of every write applied through the API. */
  stats(): EmulatorStats {
    return { ...structuredClone(this.counters), writes: structuredClone(this.store.applied) };
  }

  /** Requests counted against the daily limit since its last reset. */
  get dailyUsage(): number {
    return this.limits.dailyUsage(Date.now());
  }

  /** Closes the server and every open connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await closeServer(this.server);
  }
}

/** Starts a HubSpot emulator on 127.0.0.1; see {@link HubSpotEmulator}. */
export function start(options: HubSpotEmulatorOptions = {}): Promise<HubSpotEmulator> {
  return HubSpotEmulator.start(options);
}
