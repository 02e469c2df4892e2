import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isOutflowError, readAnswer } from '../src/index.js';

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((resolve) => (s.closeAllConnections(), s.close(() => resolve())));
});

/** A server that streams `bytes` of 'é' (2 bytes each in UTF-8) as fast as they are read; `closed` tells when the client hung up early. */
async function server(bytes: number, declare = false): Promise<{ url: string; closed: () => boolean }> {
  let closed = false;
  const s = http.createServer((_req, res) => {
    res.writeHead(200, declare ? { 'content-length': String(bytes) } : {});
    const chunk = Buffer.from('é'.repeat(8192));
    let left = bytes;
    res.on('close', () => (closed = !res.writableFinished));
    const pump = () => {
      while (left > 0 && !res.destroyed) {
        const part = chunk.subarray(0, Math.min(left, chunk.length));
        left -= part.length;
        if (!res.write(part)) return void res.once('drain', pump);
      }
      if (left === 0) res.end();
    };
    pump();
  });
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, closed: () => closed };
}

const get = (url: string) => new Promise<IncomingMessage>((resolve, reject) => http.get(url, resolve).on('error', reject));

describe('readAnswer', () => {
  it('reads a body within the limit as UTF-8 text, characters split across chunks included', async () => {
    const s = await server(200_000);
    const text = await readAnswer((await fetch(s.url)).body, { limit: 200_000, where: 'the test server' });
    expect(text).toBe('é'.repeat(100_000));
    const fromNode = await readAnswer(await get(s.url), { limit: 200_000, where: 'the test server' });
    expect(fromNode).toBe(text);
  });

  it('stops at the limit with a retryable "answer too large" and closes the connection, from fetch and from node:http', async () => {
    for (const source of ['fetch', 'node'] as const) {
      const s = await server(1024 ** 3);
      const body = source === 'fetch' ? (await fetch(s.url)).body : await get(s.url);
      const err = await readAnswer(body, { limit: 65_536, where: 'the test server', status: 500 }).catch((e: unknown) => e);
      expect(isOutflowError(err, 'OUTFLOW_DESTINATION'), String(err)).toBe(true);
      expect((err as { retryable: boolean }).retryable).toBe(true);
      expect((err as Error).message).toBe('answer too large: the test server answered HTTP 500 with a body of more than 65536 bytes; the rest was not read');
      await expect.poll(s.closed).toBe(true);
    }
  });

  it('refuses a declared Content-Length over the limit before reading', async () => {
    const s = await server(1024 ** 3, true);
    const r = await fetch(s.url);
    const err = await readAnswer(r.body, { limit: 1024, where: 'x', contentLength: r.headers.get('content-length') }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^answer too large: x answered with a body of more than 1024 bytes/);
    await expect.poll(s.closed).toBe(true);
  });
});
