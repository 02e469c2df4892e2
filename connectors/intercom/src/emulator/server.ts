/**
 * The request pipeline, in Intercom's order: bearer auth (401 carries no rate-limit
 * headers), the Intercom-Version header, the app's rate limit in fixed 10-second windows
 * (X-RateLimit-Limit / -Remaining / -Reset on every authenticated answer, 429
 * rate_limit_exceeded when spent), the kit's faults, then the route. Every refusal is an
 * `error.list`. A write that was applied may then lose its answer (faults).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loseAnswer, readJsonBody, resetConnection, Router, sendJson, type FaultInjector, type FixedWindow } from '@outflow/core/emulator-kit';
import { Refusal, STANDARD, type ContactStore, type Json } from './contacts.js';
import { search } from './search.js';

/** The versions intercom-client 7 can ask for in its Intercom-Version header. */
const VERSIONS = new Set(['1.0', '1.1', '1.2', '1.3', '1.4', '2.0', '2.1', '2.2', '2.3', '2.4', '2.5', '2.6', '2.7', '2.8', '2.9', '2.10', '2.11', '2.12', '2.13', '2.14', 'Unstable']);
const MAX_BODY_BYTES = 5 * 1024 * 1024;

/** The app's rate limit: `perWindow` requests in each fixed window of `windowMs` (Intercom: 10 s). */
export interface Limits {
  perWindow: number;
  windowMs: number;
}

type Handler = (store: ContactStore, params: Record<string, string>, body: Json | undefined, query: URLSearchParams) => { status?: number; body: Json; write?: boolean };

export const errorList = (code: string, message: string): Json => ({ type: 'error.list', request_id: randomUUID(), errors: [{ code, message }] });
const object = (body: Json | undefined): Record<string, Json> => {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Refusal(400, 'bad_request', 'The request body must be a JSON object');
  return body;
};
const ref = (c: { id: string; external_id?: Json }, extra: Record<string, Json>): Json => ({ type: 'contact', id: c.id, external_id: c.external_id ?? null, ...extra });

export const routes = new Router<Handler>({
  notFound: () => errorList('not_found', 'Resource Not Found'),
  methodNotAllowed: (method) => errorList('not_found', `${method} is not supported here`),
})
  .on('POST', '/contacts', (s, _p, body) => ({ body: s.create(object(body)), write: true }))
  .on('POST', '/contacts/search', (s, _p, body) => ({ body: search(body, s.live(), s.custom) }))
  .on('GET', '/contacts/:id', (s, p) => ({ body: s.get(p['id']!) }))
  .on('PUT', '/contacts/:id', (s, p, body) => ({ body: s.update(p['id']!, object(body)), write: true }))
  .on('DELETE', '/contacts/:id', (s, p) => ({ body: ref(s.remove(p['id']!), { deleted: true }), write: true }))
  .on('POST', '/contacts/:id/archive', (s, p) => ({ body: ref(s.setArchived(p['id']!, true), { archived: true }), write: true }))
  .on('POST', '/contacts/:id/unarchive', (s, p) => ({ body: ref(s.setArchived(p['id']!, false), { archived: false }), write: true }))
  .on('GET', '/data_attributes', (s, _p, _b, query) => {
    const model = query.get('model') ?? 'contact';
    const attrs = model === 'contact' ? [...STANDARD, ...s.custom] : [];
    const data = attrs.map((a) => ({
      type: 'data_attribute', model: 'contact', name: a.name, full_name: a.custom ? `custom_attributes.${a.name}` : a.name, label: a.name, description: '',
      data_type: a.data_type, ...(a.options ? { options: a.options } : {}), api_writable: a.api_writable, ui_writable: a.api_writable, messenger_writable: false, custom: a.custom, archived: false,
    }));
    return { body: { type: 'list', data } };
  });

/** What the pipeline works on; the emulator owns it. */
export interface ServerState {
  token: string;
  store: ContactStore;
  faults: FaultInjector;
  /** The app's rate limit, counted in fixed windows. */
  window: FixedWindow;
  stats: { requests: number; byStatus: Record<string, number>; lostAnswers: number };
  stopped(): boolean;
}

function reply(state: ServerState, res: ServerResponse, status: number, body: Json | undefined, headers: Record<string, string> = {}): void {
  state.stats.byStatus[status] = (state.stats.byStatus[status] ?? 0) + 1;
  sendJson(res, status, body, headers);
}

/** Counts the request in its fixed window; the headers to send, and whether the window was already spent. */
function admit(state: ServerState): { headers: Record<string, string>; spent: boolean } {
  const { spent, remaining, resetAt } = state.window.admit();
  const headers = {
    'x-ratelimit-limit': String(state.window.limit.requests),
    'x-ratelimit-remaining': String(remaining),
    'x-ratelimit-reset': String(Math.ceil(resetAt / 1000)),
  };
  return { headers, spent };
}

export async function handle(state: ServerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readJsonBody(req, res, MAX_BODY_BYTES);
  state.stats.requests++;
  if (req.headers['authorization'] !== `Bearer ${state.token}`) return reply(state, res, 401, errorList('unauthorized', 'Access Token Invalid'));
  const version = req.headers['intercom-version'];
  if (version !== undefined && !VERSIONS.has(String(version))) {
    return reply(state, res, 400, errorList('intercom_version_invalid', `The requested version ${String(version)} does not exist`));
  }
  const { headers, spent } = admit(state);
  const throttled = () => reply(state, res, 429, errorList('rate_limit_exceeded', `Exceeded rate limit of ${state.window.limit.requests} in 10_seconds`), headers);
  if (spent) return throttled();

  await state.faults.delay();
  if (state.stopped()) return;
  switch (state.faults.decide()?.kind) {
    case 'reset': return resetConnection(req);
    case 'unavailable': return reply(state, res, 503, errorList('service_unavailable', 'Service Unavailable (test fault)'), headers);
    case 'throttled': return throttled();
    case 'error': return reply(state, res, 500, errorList('server_error', 'Server Error (test fault)'), headers);
  }
  if (!body.ok) return reply(state, res, body.status, errorList(body.status === 413 ? 'client_error' : 'bad_request', body.message), headers);
  const route = routes.match(req.method ?? 'GET', req.url ?? '/');
  if ('status' in route) return reply(state, res, route.status, route.body as Json, { ...headers, ...route.headers });
  try {
    const answer = route.handler(state.store, route.params, body.value as Json | undefined, route.query);
    const lost = answer.write ? state.faults.afterApply() : undefined;
    if (lost !== undefined) {
      state.stats.lostAnswers++;
      return loseAnswer(req, lost, () => reply(state, res, 500, errorList('server_error', 'Server Error (test fault)'), headers));
    }
    reply(state, res, answer.status ?? 200, answer.body, headers);
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    reply(state, res, err.status, errorList(err.code, err.message), headers);
  }
}
