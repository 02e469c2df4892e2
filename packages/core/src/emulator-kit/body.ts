import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzip, inflate } from 'node:zlib';

/** A request body as read, or why it was refused and with which status. */
export type BodyResult<T> = { ok: true; value: T } | { ok: false; status: 400 | 413; message: string };

/**
 * Reads the request body, up to `limit` bytes. A body that says (Content-Length) or turns
 * out to be larger is refused with 413 as soon as that is known: reading stops at the limit
 * and `res` is marked `Connection: close`, so the rest is never read and the connection is
 * closed once the caller has answered.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, limit: number): Promise<BodyResult<Buffer>> {
  const tooLarge = (): BodyResult<Buffer> => {
    req.pause();
    if (!res.headersSent) res.setHeader('connection', 'close');
    return { ok: false, status: 413, message: `the request body is larger than ${limit} bytes` };
  };
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        settle();
        resolve(tooLarge());
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = (): void => {
      settle();
      resolve({ ok: true, value: Buffer.concat(chunks, size) });
    };
    const onError = (err: Error): void => {
      settle();
      reject(err);
    };
    const onClose = (): void => {
      settle();
      reject(new Error('the client closed the connection before sending the whole body'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** Parses JSON text; an empty body is `undefined`, a malformed one a 400 that says where. */
export function parseJson(raw: Buffer | string): BodyResult<unknown> {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  if (text.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, status: 400, message: `the request body is not valid JSON: ${(err as Error).message}` };
  }
}

/**
 * Reads and parses a JSON body of at most `limit` bytes, both as sent and once a gzip or
 * deflate Content-Encoding is undone (so a small compressed body cannot expand without
 * bound).
 */
export async function readJsonBody(req: IncomingMessage, res: ServerResponse, limit: number): Promise<BodyResult<unknown>> {
  const raw = await readBody(req, res, limit);
  if (!raw.ok) return raw;
  const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return parseJson(raw.value);
  const decode = encoding === 'gzip' ? gunzip : encoding === 'deflate' ? inflate : undefined;
  if (decode === undefined) return { ok: false, status: 400, message: `unsupported Content-Encoding "${encoding}"` };
  return new Promise((resolve) => {
    decode(raw.value, { maxOutputLength: limit }, (err, text) => {
      if (err === null) resolve(parseJson(text));
      else if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        resolve({ ok: false, status: 413, message: `the request body is larger than ${limit} bytes once decompressed` });
      } else resolve({ ok: false, status: 400, message: `the request body is not valid ${encoding}: ${err.message}` });
    });
  });
}
