import type { ServerResponse } from 'node:http';

/**
 * Answers with a JSON body, or with no body when `body` is undefined. A response already
 * started or a connection already gone is left alone, so a late answer after a fault or a
 * stop is harmless.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.headersSent) return;
  if (body === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

/** Answers with a plain-text body (or bytes, with the content type given in `headers`). */
export function sendText(res: ServerResponse, status: number, text: string | Buffer, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(text);
}
