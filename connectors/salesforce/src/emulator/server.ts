/**
 * The request pipeline, in Salesforce's order: the OAuth endpoints (no session, not counted),
 * then for the REST and Bulk APIs the session (401 INVALID_SESSION_ID), the daily allocation
 * (403 REQUEST_LIMIT_EXCEEDED), faults, the body and the route. After a write was applied
 * and logged, a lost-answer fault may drop its answer. Every API answer carries
 * `Sforce-Limit-Info`. The inspection paths need no token and count against nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loseAnswer, readBody, resetConnection, sendJson, sendText, type FaultInjector, type Router } from '@outflow/core/emulator-kit';
import { OAuthError, type Sessions } from './auth.js';
import { ApiError } from './errors.js';
import type { DailyAllocation } from './limits.js';
import { VERSIONS, type RouteHandler } from './routes.js';
import type { OrgStore } from './store.js';

/** `GET` this path with `?object=` for an object's records as JSON; no auth. */
export const RECORDS_PATH = '/_emulator/records';

/** Bulk API 2.0 takes uploads of up to 150 MB (of base64-encoded data); JSON bodies far less. */
const MAX_BODY_BYTES = 150 * 1024 * 1024;
const API_PATH = /^\/services\/data\/(v\d+\.\d)(\/|$)/;

/** Counters since start, for tests and benchmarks. */
export interface RequestStats {
  /** API requests received (REST and Bulk, counted or refused), OAuth and inspection excluded. */
  requests: number;
  /** Answers by HTTP status. */
  byStatus: Record<string, number>;
  /** Requests by kind: `collections`, `bulk`, `query`, `describe`, `rest`, `oauth`. */
  byKind: Record<string, number>;
  /** Writes applied whose answer was then lost. */
  lostAnswers: number;
}

export interface ServerState {
  url: string;
  store: OrgStore;
  sessions: Sessions;
  allocation: DailyAllocation;
  faults: FaultInjector;
  routes: Router<RouteHandler>;
  stats: RequestStats;
  stopped(): boolean;
}

function reply(state: ServerState, res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  state.stats.byStatus[status] = (state.stats.byStatus[status] ?? 0) + 1;
  sendJson(res, status, body, headers);
}

function kindOf(path: string): string {
  if (/\/composite\/sobjects/.test(path)) return 'collections';
  if (/\/jobs\/ingest/.test(path)) return 'bulk';
  if (/\/query(\/|$)/.test(path)) return 'query';
  if (/\/sobjects(\/[^/]+\/describe)?\/?$/.test(path)) return 'describe';
  return 'rest';
}

function isWrite(method: string | undefined): boolean {
  return method === 'POST' || method === 'PATCH' || method === 'PUT' || method === 'DELETE';
}

/** Answers a failure of the pipeline itself, in Salesforce's shape. */
export function answerFailure(state: ServerState, res: ServerResponse, err: unknown): void {
  reply(state, res, 500, [{ errorCode: 'UNKNOWN_EXCEPTION', message: `emulator failure: ${err instanceof Error ? err.message : String(err)}` }]);
}

async function oauth(state: ServerState, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  state.stats.byKind['oauth'] = (state.stats.byKind['oauth'] ?? 0) + 1;
  if (path === '/services/oauth2/userinfo') {
    try {
      const username = state.sessions.check(req.headers['authorization']);
      return reply(state, res, 200, { preferred_username: username, organization_id: '00D5g000004EMULAAA', user_id: '0055g00000EMULAAA' });
    } catch {
      return reply(state, res, 403, 'Bad_OAuth_Token');
    }
  }
  if (req.method !== 'POST') return reply(state, res, 405, { error: 'invalid_request', error_description: 'must use HTTP POST' });
  const body = await readBody(req, res, 1024 * 1024);
  if (!body.ok) return reply(state, res, body.status, { error: 'invalid_request', error_description: body.message });
  try {
    reply(state, res, 200, state.sessions.token(new URLSearchParams(body.value.toString('utf8')), state.url));
  } catch (err) {
    if (err instanceof OAuthError) return reply(state, res, err.status, { error: err.error, error_description: err.description });
    throw err;
  }
}

export async function handle(state: ServerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const path = url.pathname;
  if (path === RECORDS_PATH) {
    const object = url.searchParams.get('object') ?? 'Account';
    return sendJson(res, 200, { object, records: state.store.records(object) });
  }
  if (path.startsWith('/services/oauth2/')) return oauth(state, req, res, path);

  // Read before anything is answered; a body over the limit is refused below, in its turn.
  const body = await readBody(req, res, MAX_BODY_BYTES);
  state.stats.requests++;
  if (path === '/services/data' || path === '/services/data/') {
    return reply(state, res, 200, VERSIONS.map((v) => ({ label: `v${v}`, url: `/services/data/v${v}`, version: v })));
  }
  let headers: Record<string, string> = {};
  try {
    const version = API_PATH.exec(path)?.[1]?.slice(1);
    if (version === undefined || !VERSIONS.includes(version)) throw new ApiError(404, 'NOT_FOUND', 'The requested resource does not exist');
    state.sessions.check(req.headers['authorization']);
    state.allocation.count();
    headers = state.allocation.headers();
    const kind = kindOf(path);
    state.stats.byKind[kind] = (state.stats.byKind[kind] ?? 0) + 1;

    await state.faults.delay();
    if (state.stopped()) return;
    switch (state.faults.decide()?.kind) {
      case 'reset':
        return resetConnection(req);
      case 'unavailable':
        return reply(state, res, 503, [{ errorCode: 'SERVER_UNAVAILABLE', message: 'Server temporarily unavailable (test fault).' }], headers);
      case 'throttled':
        // Salesforce has no 429: too many concurrent long requests is a 403 too.
        return reply(state, res, 403, [{ errorCode: 'REQUEST_LIMIT_EXCEEDED', message: 'ConcurrentPerOrgLongTxn Limit exceeded. (test fault)' }], headers);
      case 'error':
        return reply(state, res, 500, [{ errorCode: 'UNKNOWN_EXCEPTION', message: 'An unexpected error occurred. (test fault)' }], headers);
    }
    if (!body.ok) throw new ApiError(body.status, body.status === 413 ? 'REQUEST_ENTITY_TOO_LARGE' : 'JSON_PARSER_ERROR', body.message);

    const route = state.routes.match(req.method ?? 'GET', req.url ?? '/');
    if ('status' in route) return reply(state, res, route.status, route.body, { ...headers, ...route.headers });
    let answer;
    try {
      answer = route.handler({ params: route.params, query: route.query, body: body.value, headers: req.headers, version });
    } finally {
      state.store.flush();
    }
    // The write is applied and logged; only now may its answer be lost.
    const lost = answer.status < 300 && isWrite(req.method) ? state.faults.afterApply() : undefined;
    if (lost !== undefined) {
      state.stats.lostAnswers++;
      return loseAnswer(req, lost, () => reply(state, res, 500, [{ errorCode: 'UNKNOWN_EXCEPTION', message: 'An unexpected error occurred. (lost answer)' }], headers));
    }
    if (answer.text !== undefined) {
      state.stats.byStatus[answer.status] = (state.stats.byStatus[answer.status] ?? 0) + 1;
      return sendText(res, answer.status, answer.text, { ...headers, 'content-type': answer.contentType ?? 'text/plain' });
    }
    reply(state, res, answer.status, answer.body, headers);
  } catch (err) {
    if (err instanceof ApiError) return reply(state, res, err.status, err.body(), { ...headers, ...err.headers });
    throw err;
  }
}
