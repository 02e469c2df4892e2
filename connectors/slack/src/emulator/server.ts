/**
 * The request pipeline, in Slack's order: the method from the path (`/api/<method>`), its
 * arguments from the query and from a form-encoded or JSON body, the token (a bearer
 * header, or a `token` form field; a JSON body needs the header), the method's rate limit
 * (HTTP 429, `Retry-After` in seconds, `{ ok: false, error: 'ratelimited' }`), the kit's
 * faults, then the method. Every other answer is HTTP 200 with `ok`. A message that was
 * posted may then lose its answer (faults). Every request is logged with its outcome.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loseAnswer, parseJson, readBody, resetConnection, retryAfterHeader, sendJson, type FaultInjector, type KitFaults } from '@outflow/core/emulator-kit';
import type { RateTiers } from './limits.js';
import { METHODS, type Args } from './methods.js';
import type { Workspace } from './workspace.js';

const MAX_BODY_BYTES = 2 * 1024 * 1024;

/** One request as the emulator saw it, in arrival order. */
export interface LoggedRequest {
  /** The Web API method called, e.g. `chat.postMessage`. */
  method: string;
  /** The `channel` argument, as sent. */
  channel?: string;
  /** When it arrived, in milliseconds since the epoch. */
  at: number;
  /** The HTTP status answered (0 when the answer was dropped), and Slack's error code on a refusal. */
  status: number;
  error?: string;
}

/** What the pipeline works on; the emulator owns it. */
export interface ServerState {
  token: string;
  /** Set when the workspace or the app's bot user was deactivated: every call is refused. */
  inactive: boolean;
  workspace: Workspace;
  tiers: RateTiers;
  faults: FaultInjector<KitFaults>;
  requests: LoggedRequest[];
  stopped(): boolean;
}

/** The call's arguments: the query's, then the body's (form fields as text, JSON as values). */
async function readArgs(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<{ args: Args; json: boolean } | { status: 400 | 413; error: string }> {
  const args: Args = Object.fromEntries(query);
  const body = await readBody(req, res, MAX_BODY_BYTES);
  if (!body.ok) return { status: body.status, error: body.status === 413 ? 'request_too_large' : 'invalid_form_data' };
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (body.value.length === 0) return { args, json: false };
  if (type === 'application/json') {
    const parsed = parseJson(body.value);
    if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null || Array.isArray(parsed.value)) return { status: 400, error: 'invalid_json' };
    return { args: { ...args, ...(parsed.value as Args) }, json: true };
  }
  if (type === 'application/x-www-form-urlencoded' || type === '') return { args: { ...args, ...Object.fromEntries(new URLSearchParams(body.value.toString('utf8'))) }, json: false };
  return { status: 400, error: 'invalid_form_data' };
}

/** The token the call carries: the bearer header, else a form field (never in a JSON body). */
function tokenOf(req: IncomingMessage, args: Args, json: boolean): string | undefined {
  const header = /^Bearer (.+)$/.exec(String(req.headers['authorization'] ?? ''))?.[1];
  if (header !== undefined) return header;
  return !json && typeof args['token'] === 'string' ? args['token'] : undefined;
}

export async function handle(state: ServerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const name = /^\/api\/([A-Za-z0-9_.]+)$/.exec(url.pathname)?.[1] ?? '';
  const entry: LoggedRequest = { method: name, at: Date.now(), status: 0 };
  state.requests.push(entry);
  const reply = (status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void => {
    entry.status = status;
    if (body['ok'] === false) entry.error = String(body['error']);
    sendJson(res, status, body, headers);
  };

  const read = await readArgs(req, res, url.searchParams);
  if ('error' in read) return reply(read.status, { ok: false, error: read.error });
  const { args, json } = read;
  if (typeof args['channel'] === 'string') entry.channel = args['channel'];
  const method = METHODS[name];
  if (method === undefined) return reply(404, { ok: false, error: 'unknown_method', req_method: name });

  const token = tokenOf(req, args, json);
  if (token === undefined) return reply(200, { ok: false, error: 'not_authed' });
  if (token !== state.token) return reply(200, { ok: false, error: 'invalid_auth' });
  if (state.inactive) return reply(200, { ok: false, error: 'account_inactive' });

  const channel = entry.channel === undefined ? undefined : (state.workspace.find(entry.channel)?.id ?? entry.channel);
  const refused = state.tiers.admit(name, channel);
  const throttled = (seconds: string) => reply(429, { ok: false, error: 'ratelimited' }, { 'retry-after': seconds });
  if (refused !== null) return throttled(retryAfterHeader(refused.retryAfterMs));

  await state.faults.delay();
  if (state.stopped()) return;
  switch (state.faults.decide()?.kind) {
    case 'reset':
      return resetConnection(req);
    case 'unavailable':
      return reply(503, { ok: false, error: 'service_unavailable' });
    case 'throttled':
      return throttled('1');
    case 'error':
      return reply(500, { ok: false, error: 'internal_error' });
  }

  const answer = method(state.workspace, args);
  const lost = answer.posted ? state.faults.afterApply() : undefined;
  if (lost !== undefined) {
    entry.error = `answer lost (${lost})`;
    return loseAnswer(req, lost, () => reply(500, { ok: false, error: 'internal_error' }));
  }
  reply(200, answer.body);
}
