import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * How the hostile server answers every request:
 * - `retry-after`: `status` (429) with a `Retry-After: value` header (e.g. `1000000000`).
 * - `huge-body`: `status` (500) with a body of `bytes` bytes, streamed as the client reads
 *   it (never held in memory), chunked unless `declareLength`.
 * - `hang`: reads the request and never answers.
 * - `invalid-json`: `status` (200) with a JSON content type and a body that is not JSON.
 * - `echo-headers`: `status` (400) with `{ "message": "<the request headers as JSON>" }`,
 *   as a vendor echoing what it was sent in an error.
 * - `forward`: passes the request to `to` and its answer back; with `answer: false` the
 *   request is applied there but its answer never comes back (a write in doubt).
 */
export type HostileMode =
  | { kind: 'retry-after'; value: string; status?: number }
  | { kind: 'huge-body'; bytes: number; status?: number; declareLength?: boolean }
  | { kind: 'hang' }
  | { kind: 'invalid-json'; status?: number }
  | { kind: 'echo-headers'; status?: number }
  | { kind: 'forward'; to: string; answer?: boolean };

/** One request the hostile server received. */
export interface HostileRequest {
  method: string;
  /** The path and query as sent. */
  path: string;
  headers: IncomingHttpHeaders;
  /** True once the client closed the connection before the answer was complete: it gave up and cancelled. */
  abandoned: boolean;
}

export interface HostileServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** How the next requests are answered, or a choice per request; may be changed at any time. */
  mode: HostileMode | ((request: HostileRequest) => HostileMode);
  /** Every request received, oldest first. */
  readonly requests: HostileRequest[];
  /** Body bytes written to clients so far (all requests). */
  readonly bytesSent: number;
  /** Closes the server and every connection it holds. */
  close(): Promise<void>;
}

const CHUNK = Buffer.alloc(64 * 1024, 'x');

/**
 * A real HTTP server on 127.0.0.1 that answers like a broken or hostile vendor, for
 * testing that a connector bounds what it waits for and reads: huge Retry-After values,
 * huge bodies, answers that never come, invalid JSON, and echoes of request headers (which
 * carry credentials). Every HTTP destination's tests run against it.
 */
export async function startHostileServer(mode: HostileServer['mode']): Promise<HostileServer> {
  const requests: HostileRequest[] = [];
  let bytesSent = 0;
  const held = new Set<ServerResponse>();

  const answer = (req: IncomingMessage, res: ServerResponse, record: HostileRequest, body: Buffer): void => {
    const m = typeof state.mode === 'function' ? state.mode(record) : state.mode;
    switch (m.kind) {
      case 'retry-after':
        send(res, m.status ?? 429, { 'retry-after': m.value }, JSON.stringify({ status: 'error', message: 'slow down' }));
        return;
      case 'invalid-json':
        send(res, m.status ?? 200, {}, '{"results": [{"idempotencyKey": "x", "ok": tru');
        return;
      case 'echo-headers':
        send(res, m.status ?? 400, {}, JSON.stringify({ status: 'error', message: JSON.stringify(req.headers) }));
        return;
      case 'hang':
        held.add(res);
        return;
      case 'huge-body':
        streamFiller(res, m);
        return;
      case 'forward':
        forward(req, res, body, m, record);
        return;
    }
  };

  const send = (res: ServerResponse, status: number, headers: Record<string, string>, text: string): void => {
    const body = Buffer.from(text);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(body.length), ...headers });
    res.end(body);
    bytesSent += body.length;
  };

  const streamFiller = (res: ServerResponse, m: Extract<HostileMode, { kind: 'huge-body' }>): void => {
    res.writeHead(m.status ?? 500, {
      'content-type': 'application/json',
      ...(m.declareLength ? { 'content-length': String(m.bytes) } : {}),
    });
    let left = m.bytes;
    const pump = (): void => {
      while (left > 0 && !res.destroyed) {
        const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
        left -= chunk.length;
        bytesSent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (left === 0) res.end();
    };
    pump();
  };

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, m: Extract<HostileMode, { kind: 'forward' }>, record: HostileRequest): void => {
    const target = new URL(req.url ?? '/', m.to);
    const headers = { ...req.headers, host: target.host };
    const out = http.request(target, { method: req.method, headers }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => {
        if (m.answer === false) {
          held.add(res);
          return;
        }
        const text = Buffer.concat(chunks);
        const copy = { ...answer.headers };
        delete copy['transfer-encoding'];
        delete copy['connection'];
        delete copy['keep-alive'];
        res.writeHead(answer.statusCode ?? 502, { ...copy, 'content-length': String(text.length) });
        res.end(text);
        bytesSent += text.length;
      });
    });
    out.on('error', (err) => {
      if (!res.headersSent) send(res, 502, {}, JSON.stringify({ message: `forwarding failed: ${err.message}` }));
      record.abandoned = record.abandoned || res.destroyed;
    });
    out.end(body);
  };

  const server = http.createServer((req, res) => {
    const record: HostileRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, abandoned: false };
    requests.push(record);
    res.on('close', () => {
      held.delete(res);
      if (!res.writableFinished) record.abandoned = true;
    });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(req, res, record, Buffer.concat(chunks)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const state: HostileServer = {
    url: `http://127.0.0.1:${port}`,
    mode,
    requests,
    get bytesSent() {
      return bytesSent;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of held) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return state;
}
