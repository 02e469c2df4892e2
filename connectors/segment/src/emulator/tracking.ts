/**
 * The Tracking API's request pipeline, as Segment documents it: `POST /v1/batch` (at most
 * 500 KB, each call at most 32 KB) and the single-call endpoints (`/v1/track`,
 * `/v1/identify`, `/v1/page`, `/v1/screen`, `/v1/group`, `/v1/alias`, at most 32 KB). Only
 * a malformed request — invalid JSON, too large, no write key — is refused, with a 400;
 * every other request is answered 200 `{ "success": true }`, and a call Segment cannot use
 * is dropped afterwards, not refused. The write key is read from the body's `writeKey` or
 * from Basic auth (the key as user name). Then the optional rate limit (429 with
 * Retry-After) and the kit's faults; a request whose calls were taken may lose its answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loseAnswer, readJsonBody, resetConnection, retryAfterHeader, Router, sendJson, type FaultInjector, type KitFaults, type RollingWindow } from '@outflow/core/emulator-kit';
import { messageIdsOf, type MessageStore } from './messages.js';

export const MAX_BATCH_BYTES = 500 * 1024;
export const MAX_CALL_BYTES = 32 * 1024;

/** What the pipeline works on; the emulator owns it. */
export interface TrackingState {
  writeKey: string;
  store: MessageStore;
  faults: FaultInjector<KitFaults>;
  /** The request limit, when the emulator was given one. */
  window: RollingWindow | undefined;
  stopped(): boolean;
}

/** `batch` for /v1/batch, else the call type a single-call endpoint implies. */
const routes = new Router<string>({
  notFound: (method, path) => ({ success: false, message: `no route ${method} ${path}` }),
  methodNotAllowed: (method, path) => ({ success: false, message: `${method} ${path}: use POST` }),
});
routes.on('POST', '/v1/batch', 'batch');
for (const type of ['track', 'identify', 'page', 'screen', 'group', 'alias']) routes.on('POST', `/v1/${type}`, type);

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The write key of a request: the body's `writeKey`, else the user name of its Basic auth. */
function writeKeyOf(req: IncomingMessage, body: Record<string, unknown>): string | undefined {
  if (typeof body['writeKey'] === 'string' && body['writeKey'] !== '') return body['writeKey'];
  const [scheme, encoded] = (req.headers.authorization ?? '').split(' ');
  if (scheme?.toLowerCase() !== 'basic' || encoded === undefined) return undefined;
  const user = Buffer.from(encoded, 'base64').toString('utf8').split(':')[0];
  return user === '' ? undefined : user;
}

/** The calls of a request body, or what makes it malformed. */
function callsOf(route: string, body: unknown): Record<string, unknown>[] | string {
  if (!isObject(body)) return 'the body must be a JSON object';
  if (route !== 'batch') return [{ ...body, type: route }];
  const batch = body['batch'];
  if (!Array.isArray(batch)) return 'the body must carry a "batch" array';
  for (const [i, call] of batch.entries()) {
    if (!isObject(call)) return `batch[${i}] must be an object`;
    if (Buffer.byteLength(JSON.stringify(call)) > MAX_CALL_BYTES) return `batch[${i}] is larger than ${MAX_CALL_BYTES / 1024} KB`;
  }
  return batch as Record<string, unknown>[];
}

export async function handle(state: TrackingState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const route = routes.match(req.method ?? 'GET', req.url ?? '/');
  const path = new URL(req.url ?? '/', 'http://emulator').pathname;
  let messageIds: string[] = [];
  const reply = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
    state.store.requests.push({ path, status, messageIds });
    sendJson(res, status, body, headers);
  };
  if ('status' in route) return reply(route.status, route.body, route.headers);
  const limit = route.handler === 'batch' ? MAX_BATCH_BYTES : MAX_CALL_BYTES;
  const body = await readJsonBody(req, res, limit);
  if (!body.ok) return reply(400, { success: false, message: body.status === 413 ? `the request is larger than ${limit / 1024} KB` : body.message });
  const calls = callsOf(route.handler, body.value);
  messageIds = typeof calls === 'string' ? [] : messageIdsOf(calls);

  const refused = state.window?.admit() ?? null;
  if (refused !== null) return reply(429, { success: false, message: 'Too Many Requests' }, { 'retry-after': retryAfterHeader(refused.retryAfterMs) });
  await state.faults.delay();
  if (state.stopped()) return;
  switch (state.faults.decide()?.kind) {
    case 'reset':
      state.store.requests.push({ path, status: 0, messageIds });
      return resetConnection(req);
    case 'unavailable':
      return reply(503, { success: false, message: 'Service Unavailable (test fault)' });
    case 'throttled':
      return reply(429, { success: false, message: 'Too Many Requests (test fault)' }, { 'retry-after': '1' });
    case 'error':
      return reply(500, { success: false, message: 'Internal Server Error (test fault)' });
  }

  if (typeof calls === 'string') return reply(400, { success: false, message: calls });
  const writeKey = writeKeyOf(req, body.value as Record<string, unknown>);
  if (writeKey === undefined) return reply(400, { success: false, message: 'no write key: send it as the body\'s "writeKey" or as the Basic auth user name' });
  state.store.take(calls, writeKey === state.writeKey);
  const lost = state.faults.afterApply();
  if (lost !== undefined) {
    state.store.requests.push({ path, status: 0, messageIds });
    return loseAnswer(req, lost, () => sendJson(res, 502, { success: false, message: 'Bad Gateway (test fault: the calls were taken)' }));
  }
  reply(200, { success: true });
}
