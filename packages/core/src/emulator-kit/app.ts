import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { RunningEmulator } from '../contracts.js';
import { readJsonBody } from './body.js';
import { FaultInjector, loseAnswer, resetConnection, type KitFaults } from './faults.js';
import { retryAfterHeader, type FixedWindow, type RollingWindow } from './limits.js';
import { sendJson } from './reply.js';
import { Router, type HttpMethod } from './router.js';
import { closeServer, createEmulatorServer, listenOnLoopback } from './server.js';

/** A request as a route handler sees it: its path parameters, query and JSON body (undefined when empty). */
export interface AppRequest {
  req: IncomingMessage;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
}

/**
 * A route's answer: a status (200 by default), a JSON body (none when undefined) and
 * headers. `write: true` marks a request that changed state: the faults may then lose its
 * answer (`loseAnswers`, `lostAnswerRate`), the write staying applied.
 */
export interface AppAnswer {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  write?: boolean;
}

export type AppHandler = (r: AppRequest) => AppAnswer | Promise<AppAnswer>;

/** Thrown by a handler (or a store) for what the vendor refuses: answered `status` with the vendor's error body for `code`. */
export class EmulatorRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'EmulatorRefusal';
  }
}

/**
 * The check of a bearer token: `Authorization: Bearer <token>`, or a 401 `unauthorized`
 * saying `message` (the vendor's words).
 */
export function bearerAuth(token: string, message = 'the bearer token is missing or not valid'): (req: IncomingMessage) => EmulatorRefusal | undefined {
  return (req) => (req.headers.authorization === `Bearer ${token}` ? undefined : new EmulatorRefusal(401, 'unauthorized', message));
}

/** A request body that must be a JSON object, or a 400 `bad_request` saying so. */
export function jsonObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new EmulatorRefusal(400, 'bad_request', 'The request body must be a JSON object');
  return body as Record<string, unknown>;
}

/**
 * How an emulator counts its rate limit. `admit` counts one request: the headers every
 * answer to it carries (X-RateLimit-* …), and, when the limit refuses it, the message and
 * headers of its 429.
 */
export interface RateLimiter {
  admit(): { headers: Record<string, string>; refused?: { message: string; headers?: Record<string, string> } };
}

/** A rolling-window limit whose 429 carries `Retry-After`, and no other rate headers. */
export function rollingLimit(window: RollingWindow): RateLimiter {
  return {
    admit() {
      const refused = window.admit();
      if (refused === null) return { headers: {} };
      const { requests, perMs } = refused.limit;
      return { headers: {}, refused: { message: `more than ${requests} requests in ${perMs} ms`, headers: { 'retry-after': retryAfterHeader(refused.retryAfterMs) } } };
    },
  };
}

/**
 * A fixed-window limit with `X-RateLimit-Limit`, `-Remaining` and `-Reset` (the window's end,
 * in epoch seconds) on every answer, as Intercom sends them; `message` words its 429.
 */
export function fixedLimitWithHeaders(window: FixedWindow, message: (limit: number) => string): RateLimiter {
  return {
    admit() {
      const { spent, remaining, resetAt } = window.admit();
      const headers = { 'x-ratelimit-limit': String(window.limit.requests), 'x-ratelimit-remaining': String(remaining), 'x-ratelimit-reset': String(Math.ceil(resetAt / 1000)) };
      return spent ? { headers, refused: { message: message(window.limit.requests) } } : { headers };
    },
  };
}

/**
 * The error a request gets, in the vendor's shape. `code` is the vendor's own (from an
 * {@link EmulatorRefusal}) or one of the app's: `unauthorized` (401), `rate_limited` (429),
 * `unavailable` (503), `server_error` (500), `bad_request` (400), `too_large` (413),
 * `not_found` (404), `method_not_allowed` (405).
 */
export type ErrorBody = (status: number, code: string, message: string) => unknown;

export interface EmulatorAppOptions<F extends KitFaults> {
  /** The vendor, as a failure to listen names it: e.g. `intercom`. */
  name: string;
  errorBody: ErrorBody;
  /** The largest request body read, in bytes (413 beyond it). */
  maxBodyBytes: number;
  /** Checks before the rate limit, in order (the token, an API version header …): a refusal is answered at once. */
  checks?: ((req: IncomingMessage) => EmulatorRefusal | undefined)[];
  limit?: RateLimiter;
  faults?: F | undefined;
}

/** Requests received, answers by status, and answers lost after a write was applied. */
export interface AppStats {
  requests: number;
  byStatus: Record<string, number>;
  lostAnswers: number;
}

/**
 * An emulator's HTTP front, written once: a server on 127.0.0.1 and its request pipeline.
 * Each request is read (a JSON body up to `maxBodyBytes`), checked (`checks`: auth, version
 * headers), counted by the rate limit, delayed and perhaps failed by the kit's faults (a
 * reset, 503, 500, 429), routed, and answered by its handler; a write's answer may then be
 * lost. Every refusal is in the vendor's error body, and answers are counted by status. What
 * stays the vendor's: its routes and store, its error body, its checks and its limit.
 */
export class EmulatorApp<F extends KitFaults = KitFaults> {
  readonly faults: FaultInjector<F>;
  readonly stats: AppStats = { requests: 0, byStatus: {}, lostAnswers: 0 };
  private readonly router: Router<AppHandler>;
  private server: Server | undefined;
  private stopped = false;
  /** `http://127.0.0.1:<port>` once listening. */
  url = '';

  constructor(private readonly o: EmulatorAppOptions<F>) {
    this.faults = new FaultInjector<F>(o.faults);
    this.router = new Router<AppHandler>({
      notFound: (method, path) => o.errorBody(404, 'not_found', `no route ${method} ${path}`),
      methodNotAllowed: (method, path, allowed) => o.errorBody(405, 'method_not_allowed', `${method} ${path}: use ${allowed.join(', ')}`),
    });
  }

  /** Adds a route (`/contacts/:id`); static segments win over parameters. */
  on(method: HttpMethod | readonly HttpMethod[], path: string, handler: AppHandler): this {
    this.router.on(method, path, handler);
    return this;
  }

  /** Starts listening on 127.0.0.1 (`port` 0 or absent: a free one); resolves with the URL. */
  async listen(port?: number): Promise<string> {
    this.server = createEmulatorServer(
      (req, res) => this.handle(req, res),
      (err, _req, res) => this.reply(res, 500, this.o.errorBody(500, 'server_error', `emulator failure: ${err instanceof Error ? err.message : String(err)}`)),
    );
    this.url = `http://127.0.0.1:${await listenOnLoopback(this.server, port, this.o.name)}`;
    return this.url;
  }

  /** Closes the server and every connection; requests still waiting on a fault's delay get no answer. */
  async stop(): Promise<void> {
    if (this.stopped || this.server === undefined) return;
    this.stopped = true;
    await closeServer(this.server);
  }

  private reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    this.stats.byStatus[status] = (this.stats.byStatus[status] ?? 0) + 1;
    sendJson(res, status, body, headers);
  }

  private refuse(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
    this.reply(res, status, this.o.errorBody(status, code, message), headers);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonBody(req, res, this.o.maxBodyBytes);
    this.stats.requests++;
    for (const check of this.o.checks ?? []) {
      const refusal = check(req);
      if (refusal !== undefined) return this.refuse(res, refusal.status, refusal.code, refusal.message);
    }
    const admitted = this.o.limit?.admit() ?? { headers: {} };
    const { headers } = admitted;
    if (admitted.refused) return this.refuse(res, 429, 'rate_limited', admitted.refused.message, { ...headers, ...admitted.refused.headers });

    await this.faults.delay();
    if (this.stopped) return;
    switch (this.faults.decide()?.kind) {
      case 'reset':
        return resetConnection(req);
      case 'unavailable':
        return this.refuse(res, 503, 'unavailable', 'the service is unavailable (test fault)', headers);
      case 'throttled':
        // A 429 carries the limit's own headers, or a Retry-After when the limit sends none.
        return this.refuse(res, 429, 'rate_limited', 'too many requests (test fault)', Object.keys(headers).length > 0 ? headers : { 'retry-after': '1' });
      case 'error':
        return this.refuse(res, 500, 'server_error', 'internal error (test fault)', headers);
    }
    if (!body.ok) return this.refuse(res, body.status, body.status === 413 ? 'too_large' : 'bad_request', body.message, headers);
    const route = this.router.match(req.method ?? 'GET', req.url ?? '/');
    if ('status' in route) return this.reply(res, route.status, route.body, { ...headers, ...route.headers });
    let answer: AppAnswer;
    try {
      answer = await route.handler({ req, params: route.params, query: route.query, body: body.value });
    } catch (err) {
      if (!(err instanceof EmulatorRefusal)) throw err;
      return this.refuse(res, err.status, err.code, err.message, headers);
    }
    const lost = answer.write ? this.faults.afterApply() : undefined;
    if (lost !== undefined) {
      this.stats.lostAnswers++;
      return loseAnswer(req, lost, () => this.refuse(res, 500, 'server_error', 'internal error (test fault)', headers));
    }
    this.reply(res, answer.status ?? 200, answer.body, { ...headers, ...answer.headers });
  }
}

/**
 * A running emulator on an {@link EmulatorApp}, as tests and `outflow sandbox` hold it: its
 * URL, the config that points a client at it, its fault knobs, its counts and its stop. A
 * vendor's emulator extends it with what tests read back from its store.
 */
export class AppEmulator<C, F extends KitFaults = KitFaults> implements RunningEmulator<C> {
  readonly url: string;

  constructor(
    protected readonly app: EmulatorApp<F>,
    readonly config: C,
  ) {
    this.url = app.url;
  }

  /** Replaces the active faults (`{}` clears them). */
  setFaults(faults: F): void {
    this.app.faults.set(faults);
  }

  /** Requests received, answers by status, and answers lost after a write was applied. */
  stats(): AppStats {
    return structuredClone(this.app.stats);
  }

  stop(): Promise<void> {
    return this.app.stop();
  }
}
