import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OutflowError, describeError, isOutflowError, redact, redactValue, type Logger } from '@outflow/core';
import { Router, closeServer, sendJson, sendText } from '@outflow/core/emulator-kit';
import type { ServeMetrics } from './metrics.js';
import type { Scheduler } from './scheduler.js';
import { statusRoutes } from './status-page.js';

/** Whether the process can take work: the ledger answers and no stop has begun. */
export type Readiness = () => Promise<{ ready: true } | { ready: false; reason: string }>;

export interface ApiOptions {
  scheduler: Scheduler;
  metrics: ServeMetrics;
  readiness: Readiness;
  logger: Logger;
}

type Handler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>) => Promise<void>;

/** A route that changes something; see {@link isJsonPost}. */
const ACTION = Symbol('action');

/**
 * The HTTP API of `outflow serve`, with the status page mounted beside it:
 *
 * - `GET /healthz` — liveness: 200 while the process answers;
 * - `GET /readyz` — readiness: 200 when the ledger answers and no stop has begun, else 503 with why;
 * - `GET /metrics` — Prometheus metrics;
 * - `GET /syncs` — every sync's state as JSON;
 * - `POST /syncs/{name}/runs` — asks for a run of a diff sync: 202 with its id;
 * - `GET /syncs/{name}/runs/{id}` — that run: queued, running, or how it ended, with counts;
 * - `POST /syncs/{name}/pause`, `POST /syncs/{name}/resume`.
 *
 * Requests that change something take `content-type: application/json` (a browser cannot
 * send that to another site without asking first, so a page elsewhere cannot trigger runs);
 * a form posted to `/syncs/{name}/pause` goes to the status page instead.
 */
export function apiHandler(o: ApiOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { scheduler } = o;
  const status = statusRoutes(scheduler);
  const router = new Router<Handler & { [ACTION]?: true }>({
    notFound: (method, path) => ({ error: { code: 'NOT_FOUND', message: `no route for ${method} ${path}` } }),
    methodNotAllowed: (method, path, allowed) => ({ error: { code: 'METHOD_NOT_ALLOWED', message: `${method} ${path}: use ${allowed.join(' or ')}` } }),
  });
  const action = (h: Handler) => Object.assign(h, { [ACTION]: true as const });

  router
    .on('GET', '/healthz', async (_req, res) => sendJson(res, 200, { status: 'ok' }))
    .on('GET', '/readyz', async (_req, res) => {
      const r = await o.readiness();
      sendJson(res, r.ready ? 200 : 503, r.ready ? { status: 'ready' } : { status: 'not ready', reason: r.reason });
    })
    .on('GET', '/metrics', async (_req, res) => {
      const { body, contentType } = await o.metrics.text();
      sendText(res, 200, body, { 'content-type': contentType });
    })
    .on('GET', '/syncs', async (_req, res) => sendJson(res, 200, { syncs: redactValue(await scheduler.syncs()) }))
    .on(
      'POST',
      '/syncs/:name/runs',
      action(async (_req, res, p) => {
        const run = scheduler.requestRun(p['name']!);
        sendJson(res, 202, run, { location: `/syncs/${encodeURIComponent(run.sync)}/runs/${run.id}` });
      }),
    )
    .on('GET', '/syncs/:name/runs/:id', async (_req, res, p) => {
      scheduler.assertServed(p['name']!);
      const run = scheduler.book.get(p['name']!, p['id']!);
      if (!run) throw new HttpError(404, 'RUN_NOT_FOUND', `no run ${p['id']} of sync "${p['name']}" was asked of this runner`);
      sendJson(res, 200, redactValue(run));
    })
    .on(
      'POST',
      '/syncs/:name/pause',
      action(async (_req, res, p) => sendJson(res, 200, await scheduler.pause(p['name']!))),
    )
    .on(
      'POST',
      '/syncs/:name/resume',
      action(async (_req, res, p) => sendJson(res, 200, await scheduler.resume(p['name']!))),
    );

  return async (req, res) => {
    const method = req.method ?? 'GET';
    const found = router.match(method, req.url ?? '/');
    try {
      // A form posted to an action is the status page's (its buttons post forms).
      const route = 'handler' in found && !(found.handler[ACTION] && isForm(req)) ? found : undefined;
      if (!route && (await status(req, res))) return;
      if ('status' in found) return sendJson(res, found.status, found.body, found.headers);
      if (found.handler[ACTION] && !isJsonPost(req)) {
        throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `send ${method} ${found.path} with content-type: application/json (a body is optional)`);
      }
      await found.handler(req, res, found.params);
    } catch (err) {
      const { status: code, body } = problem(err);
      if (code >= 500) o.logger.error({ method, url: redact(req.url ?? ''), err: redact(describeError(err)) }, 'request failed');
      sendJson(res, code, body);
    }
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The answer to a failed request, in one shape: `{ error: { code, message } }`. */
function problem(err: unknown): { status: number; body: unknown } {
  if (err instanceof HttpError) return { status: err.status, body: { error: { code: err.code, message: err.message } } };
  if (isOutflowError(err)) {
    const status = err.code === 'OUTFLOW_SYNC_NOT_FOUND' ? 404 : err.code === 'OUTFLOW_MODE_UNSUPPORTED' ? 409 : 500;
    return { status, body: { error: { code: err.code, message: redact(err.message) } } };
  }
  return { status: 500, body: { error: { code: 'OUTFLOW_INTERNAL', message: redact(describeError(err)) } } };
}

function contentType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function isJsonPost(req: IncomingMessage): boolean {
  return contentType(req) === 'application/json';
}

function isForm(req: IncomingMessage): boolean {
  return contentType(req) === 'application/x-www-form-urlencoded';
}

/** Listens on `host:port` (port 0: a free one) and resolves with the address to print. */
export function listen(server: Server, host: string, port: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new OutflowError('OUTFLOW_CONFIG_INVALID', `outflow serve could not listen on ${host}:${port}: ${err.code ?? err.message}`, { cause: err })),
    );
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      resolve(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
    });
  });
}

/** The API's HTTP server; a handler that throws unexpectedly is answered with a 500. */
export function createApiServer(handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Server {
  return http.createServer((req, res) => {
    handle(req, res).catch(() => sendJson(res, 500, { error: { code: 'OUTFLOW_INTERNAL', message: 'the request failed' } }));
  });
}

export { closeServer };
