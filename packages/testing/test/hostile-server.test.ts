import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startHostileServer, type HostileServer } from '../src/index.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function hostile(mode: HostileServer['mode']): Promise<HostileServer> {
  const s = await startHostileServer(mode);
  cleanups.push(() => s.close());
  return s;
}

describe('the hostile server', () => {
  it('answers 429 with the Retry-After it was given', async () => {
    const s = await hostile({ kind: 'retry-after', value: '1000000000' });
    const r = await fetch(`${s.url}/x`, { method: 'POST', body: '{}' });
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('1000000000');
    expect(s.requests.map((q) => [q.method, q.path])).toEqual([['POST', '/x']]);
  });

  it('streams a huge body only as fast as it is read, and notes a client that gave up', async () => {
    const s = await hostile({ kind: 'huge-body', bytes: 1024 ** 4 });
    const r = await fetch(s.url);
    const reader = r.body!.getReader();
    let read = 0;
    while (read < 1024 * 1024) read += (await reader.read()).value!.byteLength;
    await reader.cancel();
    await expect.poll(() => s.requests[0]!.abandoned).toBe(true);
    // A terabyte was promised; a few socket buffers' worth was sent.
    expect(s.bytesSent).toBeLessThan(64 * 1024 * 1024);
  });

  it('answers invalid JSON, and echoes the request headers as JSON text', async () => {
    const s = await hostile({ kind: 'invalid-json' });
    const bad = await fetch(s.url);
    expect(bad.status).toBe(200);
    await expect(bad.json()).rejects.toThrow();
    s.mode = { kind: 'echo-headers' };
    const echo = await fetch(s.url, { headers: { authorization: 'Bearer a"b' } });
    expect(echo.status).toBe(400);
    const body = (await echo.json()) as { message: string };
    expect((JSON.parse(body.message) as Record<string, string>)['authorization']).toBe('Bearer a"b');
  });

  it('never answers in hang mode, and forwards with or without the answer', async () => {
    const target = http.createServer((req, res) => {
      res.writeHead(201, { 'content-type': 'text/plain' });
      res.end(`got ${req.method} ${req.url}`);
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => target.close(() => resolve())));
    const to = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;

    const s = await hostile({ kind: 'hang' });
    const hung = await fetch(s.url, { signal: AbortSignal.timeout(200) }).catch((e: unknown) => e);
    expect((hung as Error).name).toBe('TimeoutError');

    s.mode = { kind: 'forward', to };
    const r = await fetch(`${s.url}/a?b=1`, { method: 'POST', body: 'x' });
    expect([r.status, await r.text()]).toEqual([201, 'got POST /a?b=1']);

    s.mode = (q) => ({ kind: 'forward', to, answer: q.method === 'GET' });
    expect((await fetch(s.url)).status).toBe(201);
    const held = await fetch(s.url, { method: 'POST', body: 'x', signal: AbortSignal.timeout(300) }).catch((e: unknown) => e);
    expect((held as Error).name).toBe('TimeoutError');
  });
});
