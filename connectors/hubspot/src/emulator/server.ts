/**
 * The request pipeline, in HubSpot's order: bearer auth, rate limits, faults, then the
 * body and the route; after a write was applied (and logged), a lost-answer fault may
 * drop its answer. Every API answer carries the X-HubSpot-RateLimit-* headers; the
 * inspection path needs no token and counts against nothing.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loseAnswer, readJsonBody, resetConnection, sendJson, type FaultInjector, type Router } from '@outflow/core/emulator-kit';
import type { BatchCounters } from './batch.js';
import { errorBody, HttpError } from './errors.js';
import { retryAfterSeconds, type RateLimits } from './limits.js';
import type { RouteHandler } from './routes.js';
import type { AppliedWrite, CrmStore, StoredRecord } from './store.js';

/** `GET` this path (with `?object=`) for the records of an object type as JSON; no auth. */
export const RECORDS_PATH = '/_emulator/records';

const MAX_BODY_BYTES = 20 * 1024 * 1024;
const SEARCH_PATH = /^\/crm\/v3\/objects\/[^/]+\/search\/?$/;
/** POSTs that only read. */
const READ_PATHS = [SEARCH_PATH, /^\/crm\/v3\/objects\/[^/]+\/batch\/read\/?$/];

/** Counters since start, for tests and benchmarks. */
export interface EmulatorStats {
  /** Every request received, inspection requests excluded. */
  requests: number;
  /** Responses by HTTP status. */
  byStatus: Record<string, number>;
  /** 429 responses by policyName. */
  rateLimited: Record<string, number>;
  /** Batch write requests (create, update, upsert, archive) accepted, and their inputs. */
  batches: BatchCounters;
  /** Writes applied whose answer was then lost (faults `loseAnswers`, `lostAnswerRate`). */
  lostAnswers: number;
  /** Every record created, changed or archived through the API, in order. */
  writes: AppliedWrite[];
}

/** What the pipeline works on; the emulator owns it. */
export interface ServerState {
  token: string;
  store: CrmStore;
  limits: RateLimits;
  faults: FaultInjector;
  routes: Router<RouteHandler>;
  stats: Omit<EmulatorStats, 'writes'>;
  stopped(): boolean;
  records(objectType: string): StoredRecord[];
}

/** Why HubSpot would refuse this Authorization header, or undefined when it carries the token. */
function authProblem(header: string | undefined, token: string): string | undefined {
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) {
    return 'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview';
  }
  if (header.slice('Bearer '.length) !== token) return 'The OAuth token used to make this call expired or is not valid.';
  return undefined;
}

function reply(state: ServerState, res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  state.stats.byStatus[status] = (state.stats.byStatus[status] ?? 0) + 1;
  sendJson(res, status, body, headers);
}

function rateLimited(state: ServerState, res: ServerResponse, policy: string, message: string, retryAfterMs: number, headers: Record<string, string>): void {
  state.stats.rateLimited[policy] = (state.stats.rateLimited[policy] ?? 0) + 1;
  reply(state, res, 429, errorBody('RATE_LIMITS', message, { errorType: 'RATE_LIMIT', policyName: policy, requestId: randomUUID() }), {
    ...headers,
    'retry-after': retryAfterSeconds(retryAfterMs),
  });
}

/** The 5xx a fault answers, in HubSpot's shape. */
function badGateway(state: ServerState, res: ServerResponse, headers: Record<string, string>): void {
  reply(state, res, 502, errorBody('INTERNAL_ERROR', 'Bad gateway (test fault).'), headers);
}

function isWrite(method: string | undefined, path: string): boolean {
  return method !== 'GET' && !(method === 'POST' && READ_PATHS.some((p) => p.test(path)));
}

/** Answers a failure of the pipeline itself: a 500 in HubSpot's shape. */
export function answerFailure(state: ServerState, res: ServerResponse, err: unknown): void {
  reply(state, res, 500, errorBody('INTERNAL_ERROR', `emulator failure: ${err instanceof Error ? err.message : String(err)}`));
}

export async function handle(state: ServerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  if (url.pathname === RECORDS_PATH) {
    const object = url.searchParams.get('object') ?? 'contacts';
    sendJson(res, 200, { object, records: state.records(object) });
    return;
  }
  // Read before anything is answered, as HubSpot does; a body over the limit stops being
  // read at once and is refused below, in its turn.
  const body = await readJsonBody(req, res, MAX_BODY_BYTES);
  state.stats.requests++;

  const denied = authProblem(req.headers['authorization'], state.token);
  if (denied !== undefined) return reply(state, res, 401, errorBody('INVALID_AUTHENTICATION', denied));

  const now = Date.now();
  const limited = state.limits.admit(now, req.method === 'POST' && SEARCH_PATH.test(url.pathname));
  const headers = state.limits.headers(now);
  if (limited !== null) return rateLimited(state, res, limited.policy, limited.message, limited.retryAfterMs, headers);

  await state.faults.delay();
  if (state.stopped()) return;
  switch (state.faults.decide()?.kind) {
    case 'reset':
      return resetConnection(req);
    case 'unavailable':
      return reply(state, res, 503, errorBody('SERVICE_UNAVAILABLE', 'The service is temporarily unavailable (test fault).'), headers);
    case 'throttled':
      return rateLimited(state, res, 'TEN_SECONDLY_ROLLING', 'You have reached your ten_secondly_rolling limit. (test fault)', 1000, headers);
    case 'error':
      return badGateway(state, res, headers);
  }
  if (!body.ok) {
    const message = body.status === 413 ? `The request body is larger than ${MAX_BODY_BYTES} bytes.` : `Invalid input JSON: ${body.message}.`;
    return reply(state, res, body.status, errorBody('VALIDATION_ERROR', message), headers);
  }

  const route = state.routes.match(req.method ?? 'GET', req.url ?? '/');
  if ('status' in route) return reply(state, res, route.status, route.body, { ...headers, ...route.headers });
  try {
    const answer = route.handler({ params: route.params, query: route.query, body: body.value });
    state.store.flush();
    // The write is applied and logged; only now may its answer be lost.
    const lost = answer.status < 300 && isWrite(req.method, url.pathname) ? state.faults.afterApply() : undefined;
    if (lost !== undefined) {
      state.stats.lostAnswers++;
      return loseAnswer(req, lost, () => badGateway(state, res, headers));
    }
    reply(state, res, answer.status, answer.body, headers);
  } catch (err) {
    state.store.flush();
    if (err instanceof HttpError) return reply(state, res, err.status, errorBody(err.category, err.message, err.extra), headers);
    throw err;
  }
}
