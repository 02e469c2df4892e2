/**
 * The status page of `outflow serve`: server-rendered HTML over a {@link ServeView}, usable
 * without JavaScript. Actions are forms that POST and then redirect (303) back to a page,
 * which shows what the action did.
 *
 * Routes (everything else is left to the caller):
 * - `GET /` — every sync: state, last run, next run, lag, parked rows;
 * - `GET /syncs/<name>` — one sync: its parked rows with reasons, and its run history;
 * - `POST /syncs/<name>/retry` — sends parked rows again (form fields `key`, or all);
 * - `POST /syncs/<name>/trigger | pause | resume`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeError, isOutflowError } from '@outflow/core';
import { readBody } from '@outflow/core/emulator-kit';
import { html, overview, page, syncDetail, syncPath } from './status-html.js';
import type { ActionResult, ServeView } from './view.js';

/** Handles a request if it is one of the status page's routes; resolves false (untouched) otherwise. */
export type StatusHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** How many runs and parked rows a sync's page lists. */
const RUNS_SHOWN = 50;
const PARKED_SHOWN = 500;
/** Form bodies are a few keys; anything larger is refused before it is read. */
const MAX_FORM_BYTES = 64 * 1024;
/** Notices waiting to be shown after a redirect; the oldest are dropped beyond this. */
const MAX_NOTICES = 100;

const ACTIONS = ['retry', 'trigger', 'pause', 'resume'] as const;
type Action = (typeof ACTIONS)[number];

const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  // Nothing on the page runs script or loads anything; forms post only back here.
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  // Not no-referrer: with it, browsers post forms with `Origin: null`, which is refused below.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The status page's request handler over `view`. Mount it first in a plain node:http server:
 * `if (await statusRoutes(view)(req, res)) return;` then the server's own routes.
 */
export function statusRoutes(view: ServeView): StatusHandler {
  // An action's message is kept under a random id until the page it redirects to shows it,
  // so no text travels in the URL for anyone to craft.
  const notices = new Map<string, string>();
  const keepNotice = (message: string): string => {
    const id = randomUUID();
    notices.set(id, message);
    if (notices.size > MAX_NOTICES) notices.delete(notices.keys().next().value!);
    return id;
  };
  const takeNotice = (url: URL): string | undefined => {
    const id = url.searchParams.get('notice');
    if (id === null) return undefined;
    const message = notices.get(id);
    notices.delete(id);
    return message;
  };

  const render = async (res: ServerResponse, url: URL, sync: string | undefined): Promise<void> => {
    const now = Date.now();
    const syncs = await view.syncs();
    if (sync === undefined) return reply(res, 200, page('Syncs', overview(syncs, now), takeNotice(url)));
    const status = syncs.find((s) => s.name === sync);
    if (!status) throw new HttpProblem(404, `No sync named "${sync}".`);
    const [runs, parked] = await Promise.all([view.runs(sync, RUNS_SHOWN), view.parked(sync, PARKED_SHOWN)]);
    reply(res, 200, page(sync, syncDetail(status, runs, parked, now), takeNotice(url)));
  };

  const act = async (req: IncomingMessage, res: ServerResponse, sync: string, action: Action): Promise<void> => {
    const form = await readForm(req, res);
    let result: ActionResult;
    switch (action) {
      case 'retry': {
        const keys = form.getAll('key');
        result = await view.retry(sync, keys.length ? keys : undefined);
        break;
      }
      default:
        result = await view[action](sync);
    }
    const back = form.get('back') === '/' ? '/' : syncPath(sync);
    res.writeHead(303, { location: `${back}?notice=${keepNotice(result.message)}`, 'cache-control': 'no-store' }).end();
  };

  return async (req, res) => {
    // Read as a path on a fixed origin: `//host/…` stays a path instead of naming a host.
    const url = new URL(`http://status.invalid${req.url?.startsWith('/') ? req.url : '/'}`);
    const route = matchRoute(req.method ?? 'GET', url.pathname);
    if (route === undefined) return false;
    try {
      if (route.kind === 'method') {
        res.setHeader('allow', route.allowed);
        throw new HttpProblem(405, `Use ${route.allowed} on ${url.pathname}.`);
      }
      if (route.kind === 'page') await render(res, url, route.sync);
      else {
        refuseCrossSite(req);
        await act(req, res, route.sync, route.action);
      }
    } catch (e) {
      const status = e instanceof HttpProblem ? e.status : isOutflowError(e) && e.code === 'OUTFLOW_SYNC_NOT_FOUND' ? 404 : 500;
      const message = e instanceof HttpProblem ? e.message : describeError(e);
      if (!res.headersSent) reply(res, status, page('Error', html`<p><a href="/">← all syncs</a></p><h1>Error</h1><p><code>${message}</code></p>`));
    }
    return true;
  };
}

type Route = { kind: 'page'; sync?: string } | { kind: 'action'; sync: string; action: Action } | { kind: 'method'; allowed: string };

function matchRoute(method: string, path: string): Route | undefined {
  let sync: string | undefined;
  let action: string | undefined;
  if (path !== '/') {
    const m = /^\/syncs\/([^/]+)(?:\/([a-z]+))?\/?$/.exec(path);
    if (!m) return undefined;
    try {
      sync = decodeURIComponent(m[1]!);
    } catch {
      return undefined;
    }
    action = m[2];
  }
  if (action === undefined) return method === 'GET' || method === 'HEAD' ? { kind: 'page', ...(sync === undefined ? {} : { sync }) } : { kind: 'method', allowed: 'GET, HEAD' };
  if (!(ACTIONS as readonly string[]).includes(action)) return undefined;
  return method === 'POST' ? { kind: 'action', sync: sync!, action: action as Action } : { kind: 'method', allowed: 'POST' };
}

/**
 * Refuses a form posted from another site: a page elsewhere must not pause syncs or re-send
 * rows through a browser that can reach this one. Browsers send `Origin` (and
 * `Sec-Fetch-Site`) with every POST; a client sending neither is not a browser.
 */
function refuseCrossSite(req: IncomingMessage): void {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new HttpProblem(403, 'Actions are accepted only from this page.');
  const origin = req.headers.origin;
  if (origin !== undefined && hostOf(origin) !== req.headers.host) throw new HttpProblem(403, 'Actions are accepted only from this page.');
}

/** The host of an `Origin` header, or undefined for `null` and anything unparsable. */
function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

/** Reads an `application/x-www-form-urlencoded` body of at most {@link MAX_FORM_BYTES}. */
async function readForm(req: IncomingMessage, res: ServerResponse): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new HttpProblem(415, 'Send the form as application/x-www-form-urlencoded.');
  const body = await readBody(req, res, MAX_FORM_BYTES);
  if (!body.ok) throw new HttpProblem(body.status, `The form was refused: ${body.message}.`);
  return new URLSearchParams(body.value.toString('utf8'));
}

function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, HEADERS).end(body);
}
