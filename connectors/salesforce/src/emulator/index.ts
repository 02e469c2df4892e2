/**
 * A Salesforce org on 127.0.0.1 that answers the way Salesforce's REST API v62.0 does:
 * describe, single records, sObject Collections (create, update, delete, upsert by an
 * external id; at most 200 records, allOrNone, results in order), a SOQL subset with
 * paging, Bulk API 2.0 ingest jobs with CSV results, sessions (401 INVALID_SESSION_ID), the
 * OAuth 2.0 JWT bearer flow, and a daily API allocation reported in `Sforce-Limit-Info` and
 * enforced with 403 REQUEST_LIMIT_EXCEEDED. Values are validated as Salesforce validates
 * them. It can misbehave on request (latency, 5xx, resets, answers lost after the write was
 * applied) and keeps its records and jobs in a JSON-lines log in `dataDir`.
 */
import type { EmulatorOptions, RunningEmulator } from '@outflow/core';
import { closeServer, createEmulatorServer, FaultInjector, jsonLinesLog, listenOnLoopback, type KitFaults } from '@outflow/core/emulator-kit';
import type { Server } from 'node:http';
import { Sessions, type JwtApp } from './auth.js';
import { BulkJobs } from './bulk.js';
import { DailyAllocation, DEFAULT_DAILY_ALLOCATION } from './limits.js';
import { createRoutes } from './routes.js';
import { answerFailure, handle, type RequestStats, type ServerState } from './server.js';
import { QueryRunner } from './soql.js';
import { OrgStore, type AppliedWrite, type StoredRecord } from './store.js';
import type { CustomObjectSpec } from './schema.js';

export { ORG_ID, type JwtApp } from './auth.js';
export { INTERNAL_BATCH } from './bulk.js';
export { parseCsv, writeCsv } from '../csv.js';
export { DEFAULT_DAILY_ALLOCATION } from './limits.js';
export { MAX_COLLECTION, VERSIONS } from './routes.js';
export { RECORDS_PATH, type RequestStats } from './server.js';
export { requiredOnCreate, type CustomObjectSpec, type FieldSpec, type FieldType } from './schema.js';
export { idSuffix, type AppliedWrite, type FieldValue, type StoredRecord, type Via } from './store.js';

/** The access token the emulator accepts unless told otherwise (shaped as Salesforce's are). */
export const SANDBOX_TOKEN = '00D5g000004EMUL!AQsandbox.outflow.emulator.token';
/** The JSON-lines log kept in `dataDir`. */
export const LOG_FILE = 'salesforce-emulator.jsonl';

/**
 * Ways to make the emulator misbehave, each after the session and allocation checks:
 * `failRequests` answers the next N requests 503 SERVER_UNAVAILABLE, `status429Every` answers
 * every Nth 403 REQUEST_LIMIT_EXCEEDED (Salesforce has no 429), `errorRate` answers 500
 * UNKNOWN_EXCEPTION, `resetRate` drops the connection. `loseAnswers` (the next N) and
 * `lostAnswerRate` apply a write (POST, PATCH, PUT, DELETE) and then lose its answer as
 * `lostAnswer` says. `bulkProcessingMs` is how long each step of a Bulk job takes.
 */
export interface SalesforceFaults extends KitFaults {
  bulkProcessingMs?: number;
}

export interface SalesforceEmulatorOptions extends EmulatorOptions {
  /** The access token to accept; {@link SANDBOX_TOKEN} by default. */
  accessToken?: string;
  /** The org's daily API request allocation; 15,000 (a Developer Edition org) by default. */
  dailyAllocation?: number;
  /** Custom objects (`__c`) to create beside Account, Contact and Lead. */
  customObjects?: CustomObjectSpec[];
  /** The connected app of the JWT bearer flow; without it the token endpoint refuses every client. */
  jwt?: JwtApp;
  /** How long a session issued by the token endpoint lives; two hours by default. */
  sessionTtlMs?: number;
  faults?: SalesforceFaults;
}

/** The config a salesforce connection needs to reach the emulator. */
export interface EmulatorConnection {
  instanceUrl: string;
  accessToken: string;
}

/** A running Salesforce emulator and its inspection API. */
export class SalesforceEmulator implements RunningEmulator<EmulatorConnection> {
  readonly url: string;
  readonly config: EmulatorConnection;
  private readonly faults: FaultInjector<SalesforceFaults>;
  private readonly stats: RequestStats = { requests: 0, byStatus: {}, byKind: {}, lostAnswers: 0 };
  private stopped = false;

  private constructor(
    private readonly server: Server,
    port: number,
    options: SalesforceEmulatorOptions,
    private readonly store: OrgStore,
    private readonly sessions: Sessions,
    private readonly allocation: DailyAllocation,
    private readonly jobs: BulkJobs,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.config = { instanceUrl: this.url, accessToken: options.accessToken ?? SANDBOX_TOKEN };
    this.faults = new FaultInjector<SalesforceFaults>(options.faults);
  }

  /** Starts an emulator; with `dataDir`, replays the log kept there first. */
  static async start(options: SalesforceEmulatorOptions = {}): Promise<SalesforceEmulator> {
    const store = OrgStore.open(jsonLinesLog.fileIn(options.dataDir, LOG_FILE), options.customObjects ?? []);
    const sessions = new Sessions(options.accessToken ?? SANDBOX_TOKEN, options.jwt, options.sessionTtlMs ?? 2 * 3_600_000);
    const allocation = new DailyAllocation(options.dailyAllocation ?? DEFAULT_DAILY_ALLOCATION);
    const ref: { state?: ServerState; emulator?: SalesforceEmulator } = {};
    const jobs = new BulkJobs(store, () => ref.emulator?.faults.faults.bulkProcessingMs ?? 20);
    const server = createEmulatorServer(
      (req, res) => handle(ref.state!, req, res),
      (err, _req, res) => answerFailure(ref.state!, res, err),
    );
    server.keepAliveTimeout = 65_000;
    const port = await listenOnLoopback(server, options.port, 'salesforce');
    const emulator = new SalesforceEmulator(server, port, options, store, sessions, allocation, jobs);
    ref.emulator = emulator;
    ref.state = {
      url: emulator.url,
      store,
      sessions,
      allocation,
      faults: emulator.faults,
      routes: createRoutes({ store, queries: new QueryRunner(store), jobs, allocation, url: emulator.url }),
      stats: emulator.stats,
      stopped: () => emulator.stopped,
    };
    return emulator;
  }

  /** Replaces the active faults (`{}` clears them). */
  setFaults(faults: SalesforceFaults): void {
    this.faults.set(faults);
  }

  /** Sets the daily allocation and, when given, the requests already used of it. */
  setAllocation(allocation: number, used?: number): void {
    this.allocation.allocation = allocation;
    if (used !== undefined) this.allocation.used = used;
  }

  /** Requests counted against the daily allocation so far. */
  get apiUsage(): { used: number; allocation: number } {
    return { used: this.allocation.used, allocation: this.allocation.allocation };
  }

  /** Ends every session, the sandbox token's included: the next request with any of them is answered 401. */
  expireSessions(): void {
    this.sessions.expireAll();
  }

  /** The current records of an sObject, in creation order. */
  records(object: string): StoredRecord[] {
    return this.store.records(object).map((r) => ({ ...r }));
  }

  /** Every write applied through the API since start, in order (see {@link AppliedWrite}). */
  writes(): AppliedWrite[] {
    return this.store.applied.map((w) => ({ ...w }));
  }

  /** Request counters since start. */
  requestStats(): RequestStats {
    return structuredClone(this.stats);
  }

  /** Bulk API jobs processed since start. */
  get bulkJobsProcessed(): number {
    return this.jobs.processed;
  }

  /** Every Bulk API job since start (and those replayed from `dataDir`), in creation order. */
  bulkJobs(): ReturnType<BulkJobs['list']> {
    return this.jobs.list();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.jobs.stop();
    await closeServer(this.server);
  }
}

/** Starts a Salesforce emulator on 127.0.0.1; see {@link SalesforceEmulator}. */
export function start(options: SalesforceEmulatorOptions = {}): Promise<SalesforceEmulator> {
  return SalesforceEmulator.start(options);
}
