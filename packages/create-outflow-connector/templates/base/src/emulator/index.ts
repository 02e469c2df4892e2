/**
 * A local __Name__ API on 127.0.0.1, for tests and `sandbox: true` connections. It must
 * answer as the vendor's API reference says — the same paths, auth, limits, error bodies
 * and pagination — and refuse what the vendor refuses, or the tests prove nothing.
 * This skeleton speaks an example API; replace it with your vendor's, concept by concept.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { EmulatorOptions, RateLimit, RunningEmulator } from '@outflow/core';
import {
  closeServer,
  createEmulatorServer,
  FaultInjector,
  jsonLinesLog,
  listenOnLoopback,
  resetConnection,
  retryAfterHeader,
  RollingWindow,
  Router,
  sendJson,
  type KitFaults,
} from '@outflow/core/emulator-kit';
import type { __Name__Config } from '../config.js';
import { sendError, type Handler } from './api.js';
// #if destination
import { Records } from './records.js';
// #endif
// #if source
import { Tables } from './tables.js';
// #endif

/** The token the emulator accepts unless told otherwise. */
export const SANDBOX_TOKEN = 'sandbox-token-__name__';
/** The limit the API documents per token; the emulator enforces it with 429 and Retry-After. */
export const RATE_LIMIT: RateLimit = { requests: 100, perMs: 10_000 };

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
export class __Name__Emulator implements RunningEmulator<__Name__Config> {
  readonly url: string;
  readonly config: { baseUrl: string; token: string };
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
  private readonly faults: FaultInjector<__Name__Faults>;
  private readonly window = new RollingWindow(RATE_LIMIT);
  private readonly routes: Router<Handler>;
  private stopped = false;

  private constructor(
    private readonly server: Server,
    port: number,
    private readonly token: string,
    options: __Name__EmulatorOptions,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.config = { baseUrl: this.url, token };
    this.faults = new FaultInjector(options.faults);
    this.routes = new Router<Handler>({
      notFound: (method, path) => ({ error: { code: 'not_found', message: `no route ${method} ${path}` } }),
      methodNotAllowed: (method, path, allowed) => ({ error: { code: 'method_not_allowed', message: `${method} ${path}: use ${allowed.join(', ')}` } }),
    });
    this.routes.on('GET', '/v1/account', async (_req, res) => sendJson(res, 200, { id: 'acct_sandbox', name: '__Name__ sandbox' }));
    // #if destination
    this.records = new Records(jsonLinesLog.fileIn(options.dataDir, 'records.jsonl'), this.faults);
    this.records.route(this.routes);
    // #endif
    // #if source
    this.tables = new Tables(jsonLinesLog.fileIn(options.dataDir, 'tables.jsonl'));
    this.tables.route(this.routes);
    // #endif
  }

  /** Starts the emulator; with `dataDir`, its state survives restarts. */
  static async start(options: __Name__EmulatorOptions = {}): Promise<__Name__Emulator> {
    const ref: { emulator?: __Name__Emulator } = {};
    const server = createEmulatorServer(
      (req, res) => ref.emulator!.handle(req, res),
      (err, _req, res) => sendError(res, 500, 'internal', `emulator failure: ${err instanceof Error ? err.message : String(err)}`),
    );
    const port = await listenOnLoopback(server, options.port, '__name__');
    ref.emulator = new __Name__Emulator(server, port, options.token ?? SANDBOX_TOKEN, options);
    return ref.emulator;
  }

  /** Replaces the active faults; `{}` clears them. */
  setFaults(faults: __Name__Faults): void {
    this.faults.set(faults);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await closeServer(this.server);
  }

  /** Every request: route, auth, rate limit, faults, then the route's handler. */
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = this.routes.match(req.method ?? 'GET', req.url ?? '/');
    if ('status' in route) return sendJson(res, route.status, route.body, route.headers);
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return sendError(res, 401, 'unauthorized', 'the bearer token is missing or not valid');
    }
    const refused = this.window.admit();
    if (refused !== null) {
      const { requests, perMs } = refused.limit;
      return sendError(res, 429, 'rate_limited', `more than ${requests} requests in ${perMs} ms`, { 'retry-after': retryAfterHeader(refused.retryAfterMs) });
    }
    await this.faults.delay();
    if (this.stopped) return;
    switch (this.faults.decide()?.kind) {
      case 'reset':
        return resetConnection(req);
      case 'unavailable':
        return sendError(res, 503, 'unavailable', 'the service is unavailable (test fault)');
      case 'throttled':
        return sendError(res, 429, 'rate_limited', 'too many requests (test fault)', { 'retry-after': '1' });
      case 'error':
        return sendError(res, 500, 'internal', 'internal error (test fault)');
    }
    return route.handler(req, res, route.params, route.query);
  }
}

/** Starts a __Name__ emulator on 127.0.0.1; see {@link __Name__Emulator}. */
export function start(options: __Name__EmulatorOptions = {}): Promise<__Name__Emulator> {
  return __Name__Emulator.start(options);
}
