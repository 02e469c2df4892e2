import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics from 'node:diagnostics_channel';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { Client } from '@hubspot/api-client';
import {
  answerTooLarge,
  destinationError,
  isOutflowError,
  OutflowError,
  parseRetryAfter,
  perConnection,
  redact,
  type ConnectorContext,
  type RateLimit,
} from '@outflow/core';
import type { HubSpotConfig } from './config.js';
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT_MS, limitsOf } from './config.js';
import type { PropertyInfo } from './values.js';

/** Property definitions are read again after this long (new properties, new options). */
const SCHEMA_TTL_MS = 5 * 60_000;
/** Wait after a ten-secondly 429 that carries no Retry-After. */
const DEFAULT_RETRY_AFTER_MS = 1_000;
const MAX_MESSAGE = 400;

/** The parts of an SDK `HttpInfo` the connector reads. */
export interface Reply<T> {
  httpStatusCode: number;
  headers: Record<string, string>;
  data: T;
}

/** An error HubSpot answered with, in its documented body shape. */
export interface HubSpotErrorBody {
  status?: string;
  message?: string;
  category?: string;
  correlationId?: string;
  policyName?: string;
  errors?: { message?: string; code?: string; context?: Record<string, string[]> }[];
  context?: Record<string, string[]>;
}

/**
 * The HTTP requests one {@link Session.call} made (see {@link watch}): the SDK takes no
 * abort signal and no size limit, so the call cancels its requests and meters their
 * answers itself.
 */
interface CallRequests {
  readonly requests: Set<ClientRequest>;
  /** The most answer bytes read. */
  readonly limit: number;
  /** Ends the call with `err` and cancels its requests; set when the call starts. */
  cancel?: (err: unknown) => void;
  /** The last request's method and path (without the query), and the status it was answered with. */
  endpoint?: string;
  status?: number;
}

const current = new AsyncLocalStorage<CallRequests>();

function isApiException(err: unknown): err is { code: number; body: unknown; headers: Record<string, string> } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'number' && 'headers' in err;
}

function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function clip(text: string): string {
  const flat = redact(text).replace(/\s+/g, ' ').trim();
  return flat.length > MAX_MESSAGE ? `${flat.slice(0, MAX_MESSAGE)}…` : flat;
}

/**
 * The status and body of a request HubSpot refused (a 4xx other than 401, 403 and 429), from
 * an error {@link Session.call} threw; undefined for any other error.
 */
export function refusalOf(err: unknown): { status: number; body: HubSpotErrorBody } | undefined {
  if (!isOutflowError(err) || err.retryable || !isApiException(err.cause)) return undefined;
  const { code, body } = err.cause;
  return { status: code, body: typeof body === 'object' && body !== null ? (body as HubSpotErrorBody) : { message: String(body ?? '') } };
}

/**
 * HubSpot's explanation of an error, readable: the per-property messages of a
 * "Property values were not valid" answer, else the detail messages, else the message.
 */
export function explain(body: HubSpotErrorBody | undefined): string {
  if (body === undefined) return 'no message';
  const message = typeof body.message === 'string' ? body.message : '';
  const invalid = /^Property values were not valid: (\[.*\])$/s.exec(message);
  if (invalid) {
    try {
      const items = JSON.parse(invalid[1]!) as { name?: string; message?: string }[];
      const parts = items.map((i) => (i.name ? `${i.name}: ${i.message ?? 'invalid'}` : (i.message ?? 'invalid')));
      if (parts.length > 0) return clip(parts.join('; '));
    } catch {
      // Not the JSON list HubSpot usually sends: fall through to the plain message.
    }
  }
  if (message !== '') return clip(message);
  const details = (body.errors ?? []).map((e) => e.message).filter((m): m is string => typeof m === 'string');
  return details.length > 0 ? clip(details.join('; ')) : 'no message';
}

/** Milliseconds from `now` to the next midnight in `timeZone` (an IANA name). */
export function msUntilMidnight(timeZone: string, now: number = Date.now()): number {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
      .formatToParts(new Date(now))
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>;
  const y = Number(parts['year']);
  const m = Number(parts['month']) - 1;
  const d = Number(parts['day']);
  const localAsUtc = Date.UTC(y, m, d, Number(parts['hour']), Number(parts['minute']), Number(parts['second']));
  const offset = localAsUtc - Math.floor(now / 1000) * 1000;
  return Math.max(1000, Date.UTC(y, m, d + 1) - offset - now);
}

/**
 * One connection's HubSpot client and what it has learned: property definitions, the rate
 * limits HubSpot reports, and whether the daily limit is spent. Shared by every call made
 * with the same config object.
 */
export class Session {
  readonly client: Client;
  private perWindow: RateLimit;
  private pausedUntil = 0;
  private warnedDaily = false;
  private warnedTier = false;
  private readonly schemas = new Map<string, { at: number; props: Promise<Map<string, PropertyInfo>> }>();
  readonly origin: string;
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;

  constructor(readonly config: Readonly<HubSpotConfig>) {
    const basePath = config.basePath ?? 'https://api.hubapi.com';
    this.origin = new URL(basePath).origin;
    this.timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxResponseBytes = config.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.agent = agentFor(basePath, this.timeoutMs);
    this.client = new Client({
      accessToken: config.accessToken,
      basePath,
      // Outflow retries, with Retry-After and backoff; the SDK's own retry waits blindly.
      numberOfApiCallRetries: 0,
      httpAgent: this.agent,
    });
    const limits = limitsOf(config);
    this.perWindow = limits[0]!;
  }

  /**
   * Runs one SDK call under the limiter and a timeout, reads the rate-limit headers, and
   * turns any failure into a coded error: retryable for 429, 5xx, timeouts and network
   * failures (with `retryAfterMs` when HubSpot says when), not retryable otherwise, and
   * `OUTFLOW_ABORTED` as soon as the connection's signal aborts.
   */
  async call<T>(ctx: ConnectorContext<HubSpotConfig>, what: string, fn: () => Promise<Reply<T>>): Promise<Reply<T>> {
    this.throwIfPaused();
    const made: CallRequests = { requests: new Set(), limit: this.maxResponseBytes };
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      // Every HTTP call (writes, property reads, delete look-ups) draws from the
      // connection's budget, which every sync writing to this portal shares.
      const reply = await ctx.rateBudget.request(() => {
        // The daily limit may have run out while this call waited its turn.
        this.throwIfPaused();
        const gaveUp = new Promise<never>((_, reject) => {
          made.cancel = (err) => {
            made.cancel = () => undefined;
            for (const req of made.requests) req.destroy();
            reject(err);
          };
          timer = setTimeout(
            () => made.cancel?.(destinationError(`HubSpot did not answer ${what} within ${this.timeoutMs} ms; the request was cancelled`, { retryable: true })),
            this.timeoutMs,
          );
          // The run is stopping for good: the request is cancelled (HubSpot may have applied it).
          onAbort = () =>
            made.cancel?.(new OutflowError('OUTFLOW_ABORTED', `the run is stopping; the request for ${what} was cancelled before HubSpot answered`, { retryable: true }));
          if (ctx.signal.aborted) onAbort();
          else ctx.signal.addEventListener('abort', onAbort, { once: true });
        });
        const sent = current.run(made, fn);
        // Settled after a cancel too: its rejection is expected and already answered.
        sent.catch(() => undefined);
        return Promise.race([sent, gaveUp]);
      });
      this.observe(ctx, reply.headers);
      return reply;
    } catch (err) {
      if (isApiException(err)) this.observe(ctx, err.headers);
      throw this.failure(ctx, err, what, made);
    } finally {
      clearTimeout(timer);
      if (onAbort !== undefined) ctx.signal.removeEventListener('abort', onAbort);
    }
  }

  close(): void {
    this.agent.destroy();
  }

  /** Property definitions of `object`, by name; read through the properties API and cached. */
  properties(ctx: ConnectorContext<HubSpotConfig>, object: string): Promise<Map<string, PropertyInfo>> {
    const cached = this.schemas.get(object);
    if (cached !== undefined && Date.now() - cached.at < SCHEMA_TTL_MS) return cached.props;
    const props = this.call(ctx, `the property list of ${object}`, () =>
      this.client.crm.properties.coreApi.getAllWithHttpInfo(object),
    ).then((reply) => {
      const map = new Map<string, PropertyInfo>();
      for (const p of reply.data.results) {
        map.set(p.name, {
          name: p.name,
          type: p.type,
          fieldType: p.fieldType,
          options: (p.options ?? []).map((o) => o.value),
          readOnly: p.modificationMetadata?.readOnlyValue === true || p.calculated === true,
          unique: p.hasUniqueValue === true,
        });
      }
      return map;
    });
    this.schemas.set(object, { at: Date.now(), props });
    props.catch(() => this.schemas.delete(object));
    return props;
  }

  private throwIfPaused(): void {
    const wait = this.pausedUntil - Date.now();
    if (wait <= 0) return;
    throw destinationError(
      `HubSpot's daily API limit for this account is spent; the sync waits until ${new Date(this.pausedUntil).toISOString()} and resumes where it stopped`,
      { retryable: true, retryAfterMs: wait, status: 429 },
    );
  }

  /** Reads the X-HubSpot-RateLimit-* headers into metrics, warnings and the limiter. */
  private observe(ctx: ConnectorContext<HubSpotConfig>, headers: Record<string, string> | undefined): void {
    if (headers === undefined) return;
    const num = (name: string) => {
      const v = headers[name];
      return v === undefined || v === '' || Number.isNaN(Number(v)) ? undefined : Number(v);
    };
    const daily = num('x-hubspot-ratelimit-daily');
    const dailyRemaining = num('x-hubspot-ratelimit-daily-remaining');
    const max = num('x-hubspot-ratelimit-max');
    const interval = num('x-hubspot-ratelimit-interval-milliseconds');
    const remaining = num('x-hubspot-ratelimit-remaining');
    const labels = { connection: ctx.connection };
    if (dailyRemaining !== undefined) ctx.metrics.gauge('hubspot_daily_remaining', dailyRemaining, labels);
    if (remaining !== undefined) ctx.metrics.gauge('hubspot_interval_remaining', remaining, labels);
    if (daily !== undefined && dailyRemaining !== undefined && dailyRemaining < daily * 0.05 && !this.warnedDaily) {
      this.warnedDaily = true;
      ctx.logger.warn({ daily, dailyRemaining }, `HubSpot daily API limit nearly spent: ${dailyRemaining} of ${daily} requests left today`);
    }
    if (max !== undefined && interval !== undefined && max > 0 && interval > 0) {
      // HubSpot's own figure wins over the configured tier when it is lower: keep to it.
      const declared = this.perWindow.requests / this.perWindow.perMs;
      if (max / interval < declared * 0.999) {
        if (!this.warnedTier) {
          this.warnedTier = true;
          ctx.logger.warn(
            { tier: this.config.tier, reportedMax: max, reportedIntervalMs: interval },
            `HubSpot reports a limit of ${max} requests per ${interval} ms, lower than tier "${this.config.tier ?? 'starter'}" allows; check \`tier\` and \`capacityPacks\``,
          );
        }
        this.perWindow = { requests: max, perMs: interval };
        ctx.rateBudget.addLimit(this.perWindow);
      }
    }
  }

  private failure(ctx: ConnectorContext<HubSpotConfig>, err: unknown, what: string, made?: CallRequests): unknown {
    if (err instanceof OutflowError) return err;
    if (isApiException(err)) {
      const status = err.code;
      const body = (typeof err.body === 'object' && err.body !== null ? err.body : { message: String(err.body ?? '') }) as HubSpotErrorBody;
      const reason = explain(body);
      const category = body.category ? ` ${body.category}` : '';
      const after = parseRetryAfter(err.headers?.['retry-after']);
      if (status === 429) {
        if (body.policyName === 'DAILY') {
          const wait = after ?? msUntilMidnight(this.config.timeZone ?? 'UTC');
          const until = Date.now() + wait;
          if (until > this.pausedUntil) {
            this.pausedUntil = until;
            ctx.logger.warn(
              { policyName: 'DAILY', resumesAt: new Date(until).toISOString() },
              `HubSpot's daily API limit is spent: the sync is paused until ${new Date(until).toISOString()} and resumes where it stopped`,
            );
          }
          return destinationError(`HubSpot's daily API limit is spent (429 DAILY): ${reason}; it resets at ${new Date(until).toISOString()}`, {
            retryable: true,
            retryAfterMs: wait,
            status,
          });
        }
        const wait = after ?? DEFAULT_RETRY_AFTER_MS;
        ctx.rateBudget.pause(wait);
        ctx.logger.debug({ policyName: body.policyName, retryAfterMs: wait }, 'HubSpot rate limit hit');
        return destinationError(`HubSpot rate limit hit (429 ${body.policyName ?? 'unknown policy'}) on ${what}: ${reason}`, {
          retryable: true,
          retryAfterMs: wait,
          status,
        });
      }
      if (status === 401) {
        return destinationError(`HubSpot refused the access token (HTTP 401${category}): ${reason}; check \`accessToken\``, { retryable: false, status });
      }
      if (status === 403) {
        return destinationError(
          `HubSpot denied ${what} (HTTP 403${category}): ${reason}; give the private app the scopes it needs`,
          { retryable: false, status },
        );
      }
      if (status >= 500 || status === 408 || status === 423) {
        return destinationError(`HubSpot failed ${what} (HTTP ${status}${category}): ${reason}`, {
          retryable: true,
          status,
          ...(after === undefined ? {} : { retryAfterMs: after }),
        });
      }
      return destinationError(`HubSpot refused ${what} (HTTP ${status}${category}): ${reason}`, { retryable: false, status, cause: err });
    }
    const code = networkCode(err);
    if (made?.status !== undefined && code === undefined && err instanceof Error && err.name !== 'FetchError') {
      // HubSpot answered, but the SDK could not read the answer (e.g. a 200 whose body is not
      // JSON). A write it answered may have been applied: retryable, so the engine re-sends
      // it where that is safe and looks it up or parks it where it is not.
      const problem = err instanceof SyntaxError ? 'the body is not valid JSON' : `the answer could not be read (${clip(err.message)})`;
      return destinationError(`HubSpot answered ${what} (${made.endpoint ?? 'unknown endpoint'}) with HTTP ${made.status}, but ${problem}`, {
        retryable: true,
        status: made.status,
        cause: err,
      });
    }
    if (code !== undefined || (err instanceof Error && err.name === 'FetchError')) {
      return destinationError(`could not reach HubSpot at ${this.origin} for ${what}: ${code ?? clip((err as Error).message)}`, {
        retryable: true,
        cause: err,
      });
    }
    return err;
  }
}

/**
 * A keep-alive agent, handed to the SDK as `httpAgent`, whose sockets are destroyed after
 * `timeoutMs` without a byte. Whether a request goes through it depends on the SDK applying
 * its configured middleware, so cancelling a call does not rely on it: every request a call
 * makes is tracked through the request channel below and destroyed when the call gives up.
 */
function agentFor(basePath: string, timeoutMs: number): http.Agent {
  const options = { keepAlive: true, maxSockets: 32, timeout: timeoutMs };
  const agent = basePath.startsWith('https:') ? new https.Agent(options) : new http.Agent(options);
  const create = agent.createConnection.bind(agent) as (...args: unknown[]) => Socket | undefined;
  agent.createConnection = ((...args: unknown[]) => {
    const socket = create(...args);
    socket?.setTimeout(timeoutMs);
    socket?.on('timeout', () => socket.destroy());
    return socket;
  }) as typeof agent.createConnection;
  return agent;
}

// Every request made inside a Session.call is known to that call, which can cancel it. The
// channel is used rather than the agent: the SDK's generated APIs do not pass `httpAgent` on.
diagnostics.subscribe('http.client.request.start', (message) => {
  const made = current.getStore();
  if (made !== undefined) watch((message as { request: ClientRequest }).request, made);
});

/**
 * Keeps `req` cancellable by its call and meters its answer: past the call's limit (by
 * Content-Length, or by the bytes received) the call fails with "answer too large" and the
 * request is destroyed, so the rest of the body is never read.
 */
function watch(req: ClientRequest, made: CallRequests): void {
  made.requests.add(req);
  const endpoint = `${req.method} ${req.path.split('?')[0]}`;
  made.endpoint = endpoint;
  req.once('response', (res: IncomingMessage) => {
    made.status = res.statusCode;
    const tooLarge = () => made.cancel?.(answerTooLarge(`HubSpot (${endpoint})`, made.limit, res.statusCode));
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > made.limit) return tooLarge();
    let size = 0;
    const meter = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= made.limit) return;
      res.off('data', meter);
      tooLarge();
    };
    res.on('data', meter);
  });
}

const sessions = perConnection((ctx: ConnectorContext<HubSpotConfig>) => new Session(ctx.config));

/**
 * The session of a connection: made when the engine opens the connection (or on first use
 * by a caller that does not open it), one per connection context.
 */
export const sessionOf = sessions.of;

/** Closes the connection's session: its keep-alive sockets are released. */
export function closeSession(ctx: ConnectorContext<HubSpotConfig>): void {
  sessions.drop(ctx)?.close();
}
