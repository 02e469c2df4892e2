/**
 * The HTTP transport under @salesforce/core's Connection (jsforce 3). jsforce's own
 * transport reads every answer body whole into memory, with no limit (a 1.5 GB answer ends
 * the process with `ERR_STRING_TOO_LONG`), and its timeout ends once the answer's headers
 * arrive, so a body that trickles forever is waited for forever. The SDK has no option for
 * either, so the connector replaces the Connection's transport with this one: the request
 * jsforce built (URL, session header, body) is sent with Node's fetch, and the answer is
 * read through core's `readAnswer` — at most `maxAnswerBytes`, whole within `timeoutMs`,
 * cancelled when the run stops. Everything above it stays jsforce's: the session header,
 * error bodies and codes, `Sforce-Limit-Info`, JSON and CSV parsing. jsforce keeps the
 * transport in the Connection's `_transport` field (3.10.16, pinned).
 */
import { PassThrough } from 'node:stream';
import { destinationError, readAnswer } from '@outflow/core';
import type { Connection } from '@salesforce/core';

/** A request as jsforce hands it to its transport. */
interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

/** An answer as jsforce reads it from its transport. */
interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface TransportOptions {
  /** The largest answer body read; a larger one fails the call, retryable ("answer too large"). */
  maxAnswerBytes: number;
  /** How long a whole answer, body included, may take. */
  timeoutMs: number;
  /** The connection's signal: aborting it cancels what is in flight. */
  signal: AbortSignal;
  /** Sees every answer's headers (lower-case names) as it arrives, before its body is read. */
  onAnswer(headers: Record<string, string>): void;
}

/** Replaces the transport of `conn` (see the module comment). */
export function boundTransport(conn: Connection, o: TransportOptions): void {
  const transport = {
    httpRequest(req: HttpRequest) {
      const answer = send(req, o);
      // jsforce pipes the request's stream through the transport's: the body is sent whole, so it carries nothing.
      const stream = new PassThrough();
      stream.end();
      return Object.assign(answer, { stream: () => stream });
    },
  };
  (conn as unknown as { _transport: typeof transport })._transport = transport;
}

async function send(req: HttpRequest, o: TransportOptions): Promise<HttpResponse> {
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const url = new URL(req.url);
  const where = `Salesforce (${req.method} ${url.pathname})`;
  try {
    const res = await fetch(url, {
      method: req.method,
      headers: req.headers ?? {},
      ...(req.body === undefined || req.method === 'GET' ? {} : { body: req.body }),
      redirect: 'manual',
      signal: AbortSignal.any([o.signal, timeout]),
    });
    const headers = Object.fromEntries(res.headers);
    o.onAnswer(headers);
    const body = await readAnswer(res.body, { limit: o.maxAnswerBytes, where, status: res.status, contentLength: res.headers.get('content-length') });
    return { statusCode: res.status, headers, body };
  } catch (err) {
    if (timeout.aborted && !o.signal.aborted) {
      throw destinationError(`${where} gave no complete answer within ${o.timeoutMs} ms (timeoutMs); the request was cancelled`, { retryable: true, cause: err });
    }
    throw err;
  }
}
