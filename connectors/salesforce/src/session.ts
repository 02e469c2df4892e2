import { createSign } from 'node:crypto';
import { destinationError, isOutflowError, OutflowError, perConnection, readAnswer, redact, type ConnectorContext } from '@outflow/core';
import type { Connection } from '@salesforce/core';
import { DEFAULTS, type SalesforceConfig } from './config.js';
import { boundTransport } from './transport.js';
import { schemaOf, type ObjectSchema } from './values.js';

/** Describe results are read again after this long (new fields, new picklist values). */
const DESCRIBE_TTL_MS = 5 * 60_000;
/** After the daily share is spent, how long until a request is tried again to read the usage anew. */
export const SHARE_RECHECK_MS = 15 * 60_000;
/** The wait after a REQUEST_LIMIT_EXCEEDED that is not the daily allocation (too many concurrent long requests). */
const CONCURRENCY_BACKOFF_MS = 2_000;
const MAX_MESSAGE = 400;
const JWT_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** Codes of a whole-request failure Salesforce may clear up by itself. */
const RETRYABLE_CODES = new Set(['SERVER_UNAVAILABLE', 'UNKNOWN_EXCEPTION', 'UNABLE_TO_LOCK_ROW', 'REQUEST_RUNNING_TOO_LONG', 'QUERY_TIMEOUT']);
/** Node's and node-fetch's codes for a request that never got an answer. */
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_SOCKET']);

/** One HTTP request through the SDK's Connection. */
export interface SfRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** A path under `/services/data/vXX.X` (starting with `/`). */
  path: string;
  body?: unknown;
  /** `text/csv` sends `body` as is and reads the answer as text. */
  csv?: boolean;
  /** Read the answer as text (CSV results). */
  text?: boolean;
}

function clip(text: string): string {
  const flat = redact(text).replace(/\s+/g, ' ').trim();
  return flat.length > MAX_MESSAGE ? `${flat.slice(0, MAX_MESSAGE)}…` : flat;
}

/** What jsforce throws for a refused request: Salesforce's errorCode and message. */
function apiErrorOf(err: unknown): { errorCode: string; message: string } | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { errorCode?: unknown }).errorCode;
  return typeof code === 'string' ? { errorCode: code, message: err.message } : undefined;
}

/** The Salesforce error code behind a failed call (`NOT_FOUND`, `INVALID_FIELD` …), when Salesforce named one. */
export function salesforceCode(err: unknown): string | undefined {
  return apiErrorOf(err instanceof Error && !apiErrorOf(err) ? err.cause : err)?.errorCode;
}

function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    if (e.name === 'AbortError' || e.name === 'FetchError') return e.name;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

let sdk: Promise<typeof import('@salesforce/core')> | undefined;

/**
 * Loads @salesforce/core. Unless told otherwise it keeps a log file under ~/.sf written by a
 * worker thread; a sync has its own logs, so that file is off unless SF_DISABLE_LOG_FILE is
 * set either way.
 */
function loadSdk(): Promise<typeof import('@salesforce/core')> {
  process.env['SF_DISABLE_LOG_FILE'] ??= 'true';
  sdk ??= import('@salesforce/core');
  return sdk;
}

/** The JWT bearer assertion, signed RS256 with the connected app's key. */
export function jwtAssertion(jwt: NonNullable<SalesforceConfig['jwt']>, now = Date.now()): string {
  const loginUrl = jwt.loginUrl ?? DEFAULTS.loginUrl;
  const audience = jwt.audience ?? (new URL(loginUrl).hostname === 'test.salesforce.com' ? 'https://test.salesforce.com' : 'https://login.salesforce.com');
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc({ iss: jwt.clientId, sub: jwt.username, aud: audience, exp: Math.floor(now / 1000) + 180 })}`;
  return `${body}.${createSign('RSA-SHA256').update(body).sign(jwt.privateKey).toString('base64url')}`;
}

/**
 * One connection's Salesforce session: the SDK's Connection, the describe results it read,
 * and the org's API usage as Salesforce last reported it. Every request goes through
 * {@link call}.
 */
export class Session {
  private conn: Promise<Connection> | undefined;
  private readonly schemas = new Map<string, { at: number; schema: Promise<ObjectSchema> }>();
  private pausedUntil = 0;
  /** The usage Salesforce reported when the daily-share pause began, for its message. */
  private pausedAt: { used: number; limit: number } | undefined;
  /** The org's API usage from the last `Sforce-Limit-Info`. */
  usage: { used: number; limit: number } | undefined;
  readonly version: string;
  private readonly timeoutMs: number;
  private readonly maxAnswerBytes: number;

  constructor(readonly config: Readonly<SalesforceConfig>) {
    this.version = config.apiVersion ?? DEFAULTS.apiVersion;
    this.timeoutMs = config.timeoutMs ?? DEFAULTS.timeoutMs;
    this.maxAnswerBytes = config.maxAnswerBytes ?? DEFAULTS.maxAnswerBytes;
  }

  /**
   * Sends one request within the connection's budget, once (Outflow retries), its whole
   * answer within `timeoutMs` and `maxAnswerBytes` (transport.ts), reads `Sforce-Limit-Info`, renews a JWT session once
   * when Salesforce says it expired, and turns failures into coded errors: retryable for
   * 5xx-class errors, REQUEST_LIMIT_EXCEEDED, timeouts and network failures; not retryable
   * for refusals; `OUTFLOW_ABORTED` when the connection's signal aborts.
   */
  async call<T>(ctx: ConnectorContext<SalesforceConfig>, what: string, req: SfRequest): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      this.throwIfPaused();
      const current = this.connection(ctx);
      const conn = await current;
      try {
        return await ctx.rateBudget.request(() => this.send<T>(ctx, conn, what, req));
      } catch (err) {
        const api = apiErrorOf(err);
        if (api?.errorCode === 'INVALID_SESSION_ID' && this.config.jwt !== undefined && attempt === 0) {
          // Calls failing together sign in once: the first replaces the session the others share.
          if (this.conn === current) {
            ctx.logger.info({ what }, 'Salesforce says the session expired or is invalid: signing in again by the JWT bearer flow');
            this.conn = this.signIn(ctx);
          }
          continue;
        }
        throw this.failure(ctx, err, what, attempt > 0);
      }
    }
  }

  /** The describe of `object`, read once and kept for five minutes. */
  describe(ctx: ConnectorContext<SalesforceConfig>, object: string): Promise<ObjectSchema> {
    const cached = this.schemas.get(object);
    if (cached !== undefined && Date.now() - cached.at < DESCRIBE_TTL_MS) return cached.schema;
    const schema = this.call<Record<string, unknown>>(ctx, `the describe of ${object}`, { method: 'GET', path: `/sobjects/${encodeURIComponent(object)}/describe` }).then(schemaOf);
    this.schemas.set(object, { at: Date.now(), schema });
    schema.catch(() => this.schemas.delete(object));
    return schema;
  }

  private send<T>(ctx: ConnectorContext<SalesforceConfig>, conn: Connection, what: string, req: SfRequest): Promise<T> {
    if (ctx.signal.aborted) return Promise.reject(this.aborted(what));
    const headers: Record<string, string> = {};
    let body: string | undefined;
    if (req.body !== undefined) {
      headers['content-type'] = req.csv ? 'text/csv' : 'application/json';
      body = req.csv ? String(req.body) : JSON.stringify(req.body);
    }
    const sent = conn.request<T>(
      { method: req.method, url: `/services/data/v${this.version}${req.path}`, headers, ...(body === undefined ? {} : { body }) },
      // No retries, no timeout here: the connector's transport (transport.ts) sends once, bounded.
      req.text || req.csv ? { responseType: 'text/plain' } : {},
    ) as unknown as Promise<T>;
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<never>((_, reject) => {
      onAbort = () => reject(this.aborted(what));
      ctx.signal.addEventListener('abort', onAbort, { once: true });
    });
    sent.catch(() => undefined);
    return Promise.race([sent, stopped]).finally(() => ctx.signal.removeEventListener('abort', onAbort!));
  }

  private aborted(what: string): OutflowError {
    return new OutflowError('OUTFLOW_ABORTED', `the run is stopping; ${what} was cancelled before Salesforce answered`, { retryable: true });
  }

  private connection(ctx: ConnectorContext<SalesforceConfig>): Promise<Connection> {
    this.conn ??= this.config.jwt !== undefined ? this.signIn(ctx) : this.open(ctx, this.config.accessToken, this.config.instanceUrl);
    const conn = this.conn;
    conn.catch(() => {
      if (this.conn === conn) this.conn = undefined;
    });
    return conn;
  }

  private async open(ctx: ConnectorContext<SalesforceConfig>, accessToken: string | undefined, instanceUrl: string): Promise<Connection> {
    if (accessToken === undefined) {
      throw new OutflowError('OUTFLOW_CHECK_FAILED', 'a salesforce connection needs accessToken or jwt (clientId, username, privateKey); it has neither');
    }
    const { AuthInfo, Connection } = await loadSdk();
    // A token shaped as Salesforce's (00D…!…) is used as is, with no call and nothing saved.
    const authInfo = await AuthInfo.create({ username: accessToken, accessTokenOptions: { accessToken, instanceUrl, loginUrl: instanceUrl } });
    const conn = await Connection.create({ authInfo, connectionOptions: { version: this.version } });
    boundTransport(conn, {
      maxAnswerBytes: this.maxAnswerBytes,
      timeoutMs: this.timeoutMs,
      signal: ctx.signal,
      onAnswer: (headers) => this.observe(ctx, headers['sforce-limit-info']),
    });
    return conn;
  }

  /**
   * The OAuth 2.0 JWT bearer flow: the assertion is signed here and posted to the
   * configured login URL only. (@salesforce/core's own JWT client, after a refusal, tries
   * the assertion at login.salesforce.com and test.salesforce.com as well.)
   */
  private async signIn(ctx: ConnectorContext<SalesforceConfig>): Promise<Connection> {
    const jwt = this.config.jwt!;
    const loginUrl = (jwt.loginUrl ?? DEFAULTS.loginUrl).replace(/\/+$/, '');
    let res: Response;
    try {
      res = await fetch(`${loginUrl}/services/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ grant_type: JWT_GRANT, assertion: jwtAssertion(jwt) }),
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(this.timeoutMs)]),
      });
    } catch (err) {
      throw destinationError(`could not reach ${loginUrl} to sign in by the JWT bearer flow: ${clip(err instanceof Error ? err.message : String(err))}`, {
        retryable: true,
        notApplied: true,
        cause: err,
      });
    }
    const text = await readAnswer(res.body, { limit: this.maxAnswerBytes, where: `the JWT bearer sign-in at ${loginUrl}`, status: res.status, contentLength: res.headers.get('content-length') });
    let answer: Record<string, unknown> = {};
    try {
      answer = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // Not JSON: reported below with the status.
    }
    if (!res.ok || typeof answer['access_token'] !== 'string' || typeof answer['instance_url'] !== 'string') {
      const why = typeof answer['error'] === 'string' ? `${answer['error']}: ${String(answer['error_description'] ?? '')}` : `HTTP ${res.status} ${clip(text)}`;
      throw destinationError(
        `Salesforce refused the JWT bearer sign-in of ${jwt.username} at ${loginUrl} (${clip(why)}); check jwt.clientId, jwt.username, the certificate uploaded to the connected app and that the user is pre-authorised for it`,
        { retryable: res.status >= 500, notApplied: true, status: res.status },
      );
    }
    // The org's address as configured: the token answer's instance_url is the same org.
    return this.open(ctx, answer['access_token'], this.config.instanceUrl);
  }

  private throwIfPaused(): void {
    const wait = this.pausedUntil - Date.now();
    if (wait <= 0) return;
    const share = this.config.dailyApiShare ?? DEFAULTS.dailyApiShare;
    const at = this.pausedAt ?? this.usage;
    const used = at === undefined ? '' : ` (${at.used} of ${at.limit} requests in the last 24 hours)`;
    throw destinationError(
      `Outflow has used its share of the org's daily API allocation${used}: dailyApiShare is ${share}%. The sync is paused and tries again after ${new Date(this.pausedUntil).toISOString()}`,
      { retryable: true, notApplied: true, retryAfterMs: wait },
    );
  }

  /** Reads an answer's `Sforce-Limit-Info` (`api-usage=N/M`), as it arrives, into metrics and the daily-share pause. */
  private observe(ctx: ConnectorContext<SalesforceConfig>, limitInfo: string | undefined): void {
    const m = /api-usage=(\d+)\/(\d+)/.exec(limitInfo ?? '');
    if (m === null) return;
    const usage = { used: Number(m[1]), limit: Number(m[2]) };
    this.usage = usage;
    ctx.metrics.gauge('salesforce_api_used', usage.used);
    ctx.metrics.gauge('salesforce_api_allocation', usage.limit);
    const share = this.config.dailyApiShare ?? DEFAULTS.dailyApiShare;
    if (usage.limit > 0 && usage.used >= (usage.limit * share) / 100 && this.pausedUntil <= Date.now()) {
      this.pausedUntil = Date.now() + SHARE_RECHECK_MS;
      this.pausedAt = usage;
      ctx.logger.warn(
        { used: usage.used, allocation: usage.limit, dailyApiShare: share },
        `Salesforce reports ${usage.used} of ${usage.limit} daily API requests used, at or past the ${share}% Outflow may use: the sync pauses until ${new Date(this.pausedUntil).toISOString()}`,
      );
    }
  }

  private failure(ctx: ConnectorContext<SalesforceConfig>, err: unknown, what: string, afterRefresh: boolean): unknown {
    if (isOutflowError(err)) return err;
    const api = apiErrorOf(err);
    if (api !== undefined) {
      const { errorCode, message } = api;
      // An answer whose body names no error code: only its status is known.
      const http = /^ERROR_HTTP_(\d+)$/.exec(errorCode);
      if (http !== null) {
        const status = Number(http[1]);
        return destinationError(`Salesforce answered ${what} with HTTP ${status}: ${clip(message)}`, { retryable: status >= 500 || status === 429 || status === 420, status, cause: err });
      }
      if (errorCode === 'INVALID_SESSION_ID') {
        const how =
          this.config.jwt === undefined
            ? 'an access token cannot be renewed: replace accessToken, or configure jwt for unattended syncs'
            : afterRefresh
              ? 'a new session from the JWT bearer flow was refused as well'
              : 'signing in again failed';
        return destinationError(`Salesforce refused the session for ${what} (INVALID_SESSION_ID: ${clip(message)}); ${how}`, { retryable: false, status: 401 });
      }
      if (errorCode === 'REQUEST_LIMIT_EXCEEDED') {
        const daily = /TotalRequests/i.test(message) || (this.usage !== undefined && this.usage.used >= this.usage.limit);
        if (daily) {
          this.pausedUntil = Math.max(this.pausedUntil, Date.now() + SHARE_RECHECK_MS);
          this.pausedAt = this.usage;
          ctx.logger.warn({ what }, `Salesforce's daily API allocation is spent (REQUEST_LIMIT_EXCEEDED): the sync pauses until ${new Date(this.pausedUntil).toISOString()}`);
          return destinationError(
            `Salesforce's daily API allocation is spent (REQUEST_LIMIT_EXCEEDED: ${clip(message)}); the sync pauses and tries again after ${new Date(this.pausedUntil).toISOString()}`,
            { retryable: true, notApplied: true, retryAfterMs: SHARE_RECHECK_MS, status: 403 },
          );
        }
        ctx.rateBudget.pause(CONCURRENCY_BACKOFF_MS);
        return destinationError(`Salesforce limited ${what} (REQUEST_LIMIT_EXCEEDED: ${clip(message)}); backing off`, {
          retryable: true,
          notApplied: true,
          retryAfterMs: CONCURRENCY_BACKOFF_MS,
          status: 403,
        });
      }
      if (RETRYABLE_CODES.has(errorCode)) return destinationError(`Salesforce failed ${what} (${errorCode}: ${clip(message)})`, { retryable: true, cause: err });
      return destinationError(`Salesforce refused ${what} (${errorCode}: ${clip(message)})`, { retryable: false, cause: err });
    }
    const code = networkCode(err);
    if (code !== undefined) {
      const why = code === 'AbortError' ? `no answer within ${this.timeoutMs} ms; the request was cancelled` : code;
      return destinationError(`could not complete ${what} with Salesforce at ${this.config.instanceUrl}: ${why}`, { retryable: true, cause: err });
    }
    return err;
  }
}

/** The session of a connection: one per connection context, dropped when it closes. */
export const { of: sessionOf, drop: closeSession } = perConnection((ctx: ConnectorContext<SalesforceConfig>) => new Session(ctx.config));
