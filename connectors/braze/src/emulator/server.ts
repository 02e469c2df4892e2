/**
 * The request pipeline, in Braze's order: bearer auth with the REST API key (401), the
 * endpoint's rate limit counted in fixed windows (X-RateLimit-Limit / -Remaining / -Reset,
 * the reset in UTC epoch seconds, on every authenticated answer; 429 when spent), the kit's
 * faults, then the endpoint. Every refusal is `{ "message": …, "errors": [] }`. A request
 * that was applied may then lose its answer (faults).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loseAnswer, readJsonBody, resetConnection, Router, sendJson, type FaultInjector, type FixedWindow, type KitFaults } from '@outflow/core/emulator-kit';
import type { Messaging } from './messaging.js';
import { Fatal, type Json, type UserStore } from './users.js';

const MAX_BODY_BYTES = 4 * 1024 * 1024;

type Endpoint = 'users/track' | 'campaign' | 'canvas';

export const routes = new Router<Endpoint>({
  notFound: () => ({ message: 'Not Found', errors: [] }),
  methodNotAllowed: (method) => ({ message: `${method} is not supported here`, errors: [] }),
})
  .on('POST', '/users/track', 'users/track')
  .on('POST', '/campaigns/trigger/send', 'campaign')
  .on('POST', '/canvas/trigger/send', 'canvas');

/** One request as received: its path and the answer's status (0: none). */
export interface RequestEntry {
  path: string;
  status: number;
}

/** What the pipeline works on; the emulator owns it. */
export interface ServerState {
  apiKey: string;
  users: UserStore;
  messaging: Messaging;
  faults: FaultInjector<KitFaults>;
  /** The rate limit of /users/track, and the one the send endpoints share. */
  windows: { usersTrack: FixedWindow; messaging: FixedWindow };
  requests: RequestEntry[];
  stopped(): boolean;
}

const failure = (message: string): Json => ({ message, errors: [] });

export async function handle(state: ServerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://emulator').pathname;
  const reply = (status: number, body: Json | undefined, headers: Record<string, string> = {}): void => {
    state.requests.push({ path, status });
    sendJson(res, status, body, headers);
  };
  const route = routes.match(req.method ?? 'GET', req.url ?? '/');
  if ('status' in route) return reply(route.status, route.body as Json, route.headers);
  const body = await readJsonBody(req, res, MAX_BODY_BYTES);
  if (req.headers['authorization'] !== `Bearer ${state.apiKey}`) return reply(401, failure('Invalid API key'));

  const window = route.handler === 'users/track' ? state.windows.usersTrack : state.windows.messaging;
  const { spent, remaining, resetAt } = window.admit();
  const headers = { 'x-ratelimit-limit': String(window.limit.requests), 'x-ratelimit-remaining': String(remaining), 'x-ratelimit-reset': String(Math.ceil(resetAt / 1000)) };
  if (spent) return reply(429, failure('Rate limit exceeded'), headers);

  await state.faults.delay();
  if (state.stopped()) return;
  switch (state.faults.decide()?.kind) {
    case 'reset':
      state.requests.push({ path, status: 0 });
      return resetConnection(req);
    case 'unavailable':
      return reply(503, failure('Service Unavailable (test fault)'), headers);
    case 'throttled':
      // A test fault, not a spent window: the wait it asks for is a second.
      return reply(429, failure('Rate limit exceeded (test fault)'), { ...headers, 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 1) });
    case 'error':
      return reply(500, failure('Internal Server Error (test fault)'), headers);
  }
  if (!body.ok) return reply(400, failure(`Bad Request: ${body.message}`), headers);
  let answer: Json;
  try {
    answer = route.handler === 'users/track' ? state.users.track(body.value) : state.messaging.trigger(route.handler, body.value);
  } catch (err) {
    if (!(err instanceof Fatal)) throw err;
    return reply(err.status, failure(err.message), headers);
  }
  const lost = state.faults.afterApply();
  if (lost !== undefined) {
    state.requests.push({ path, status: 0 });
    return loseAnswer(req, lost, () => sendJson(res, 500, failure('Internal Server Error (test fault: the request was applied)'), headers));
  }
  reply(201, answer, headers);
}
