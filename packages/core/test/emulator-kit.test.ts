import { once } from 'node:events';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { MAX_PAUSE_MS, parseRetryAfter } from '@outflow/core';
import {
  EmulatorApp,
  EmulatorRefusal,
  FixedWindow,
  fixedLimitWithHeaders,
  closeServer,
  FaultInjector,
  listenOnLoopback,
  readBody,
  readJsonBody,
  Router,
  seededRandom,
  sendJson,
  type Fault,
  type KitFaults,
} from '@outflow/core/emulator-kit';
import { afterEach, describe, expect, it } from 'vitest';

const LIMIT = 1024;
const servers: Server[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await closeServer(s);
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Promise<number> {
  const server = http.createServer((req, res) => void handler(req, res));
  servers.push(server);
  return listenOnLoopback(server, 0, 'test');
}

/** A server that answers with the size of the body it read, or the kit's refusal. */
function bodyServer(read: typeof readBody | typeof readJsonBody = readBody): Promise<number> {
  return serve(async (req, res) => {
    const body = await read(req, res, LIMIT);
    if (!body.ok) return sendJson(res, body.status, { error: body.message });
    sendJson(res, 200, { value: Buffer.isBuffer(body.value) ? body.value.length : body.value });
  });
}

/** POSTs through node:http and resolves on the answer, even while the body is still being sent. */
async function post(port: number, headers: http.OutgoingHttpHeaders, write: (req: http.ClientRequest) => void): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers });
  req.on('error', () => undefined); // the server closes the connection after refusing
  write(req);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let body = '';
  for await (const chunk of res) body += String(chunk);
  req.destroy();
  return { status: res.statusCode!, headers: res.headers, body };
}

describe('body reading', () => {
  it('reads a body within the limit', async () => {
    const port = await bodyServer();
    const res = await post(port, {}, (req) => req.end(Buffer.alloc(LIMIT, 1)));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ value: LIMIT });
  });

  it('answers 413 once the limit is passed, without reading the rest, and closes the connection', async () => {
    const port = await bodyServer();
    const total = 256 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 97);
    let pulled = 0;
    const source = new Readable({
      read() {
        if (pulled >= total) return void this.push(null);
        pulled += chunk.length;
        this.push(chunk);
      },
    });
    const res = await post(port, {}, (req) => source.pipe(req));
    source.destroy();
    expect(res.status).toBe(413);
    expect(res.headers['connection']).toBe('close');
    expect(JSON.parse(res.body).error).toContain(`larger than ${LIMIT} bytes`);
    // Only what the sockets buffered before the answer left the client, not the 256 MB.
    expect(pulled).toBeLessThan(total / 4);
  });

  it('refuses a body that claims 1 GB before any of it arrives', async () => {
    const port = await bodyServer();
    const res = await post(port, { 'content-length': String(1024 ** 3) }, (req) => req.write('{"a":'));
    expect(res.status).toBe(413);
    expect(res.headers['connection']).toBe('close');
  });

  it('parses JSON, and answers 400 for malformed JSON and 413 for a gzip body that inflates past the limit', async () => {
    const port = await bodyServer(readJsonBody);
    const ok = await post(port, {}, (req) => req.end('{"a":1}'));
    expect(JSON.parse(ok.body)).toEqual({ value: { a: 1 } });
    const zipped = await post(port, { 'content-encoding': 'gzip' }, (req) => req.end(gzipSync('{"b":2}')));
    expect(JSON.parse(zipped.body)).toEqual({ value: { b: 2 } });
    const bad = await post(port, {}, (req) => req.end('{"a":'));
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toMatch(/not valid JSON/);
    const bomb = gzipSync(JSON.stringify({ pad: 'x'.repeat(LIMIT * 64) }));
    expect(bomb.length).toBeLessThan(LIMIT);
    const inflated = await post(port, { 'content-encoding': 'gzip' }, (req) => req.end(bomb));
    expect(inflated.status).toBe(413);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it('reads delay-seconds and HTTP-dates', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 120 ', now)).toBe(120_000);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wednesday, 01-Jan-25 00:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
  });

  it('gives undefined for absent, negative and unreadable values', () => {
    for (const value of [undefined, null, '', '-5', 'soon', '12abc', '2025-01-01', 'Wed, 99 Foo 2025']) {
      expect(parseRetryAfter(value, now)).toBeUndefined();
    }
  });

  it('caps a wait at a day', () => {
    expect(parseRetryAfter('1000000000', now)).toBe(MAX_PAUSE_MS);
    expect(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', now)).toBe(MAX_PAUSE_MS);
    expect(MAX_PAUSE_MS).toBe(24 * 60 * 60 * 1000);
  });
});

describe('fault injection', () => {
  const sequence = (injector: FaultInjector<KitFaults, 'slow'>, n: number): (string | undefined)[] =>
    Array.from({ length: n }, () => {
      const f: Fault<'slow'> | undefined = injector.decide();
      return f === undefined ? undefined : f.kind === 'vendor' ? f.fault : f.kind;
    });

  it('gives the same fault sequence for the same seed, and another for another seed', () => {
    const faults = { errorRate: 0.3, resetRate: 0.2, seed: 7 };
    const first = sequence(new FaultInjector(faults), 200);
    expect(sequence(new FaultInjector(faults), 200)).toEqual(first);
    expect(sequence(new FaultInjector({ ...faults, seed: 8 }), 200)).not.toEqual(first);
    expect(first.filter((f) => f === 'error').length).toBeGreaterThan(20);
    expect(first.filter((f) => f === 'reset').length).toBeGreaterThan(20);
    expect(first.filter((f) => f === undefined).length).toBeGreaterThan(60);

    const again = new FaultInjector(faults);
    sequence(again, 50);
    again.set(faults);
    expect(sequence(again, 200)).toEqual(first);
  });

  it('counts failRequests and status429Every, and asks the vendor hook in its turn', () => {
    const injector = new FaultInjector<KitFaults, 'slow'>({ failRequests: 2, status429Every: 4 }, (n) =>
      n % 5 === 0 ? 'slow' : undefined,
    );
    expect(sequence(injector, 10)).toEqual(['unavailable', 'unavailable', undefined, 'throttled', 'slow', undefined, undefined, 'throttled', undefined, 'slow']);
  });

  it('seeds a PRNG whose values stay in [0, 1)', () => {
    const random = seededRandom(42);
    const values = Array.from({ length: 1000 }, random);
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(new Set(values).size).toBe(1000);
    expect(Array.from({ length: 1000 }, seededRandom(42))).toEqual(values);
  });
});

describe('router', () => {
  const router = new Router<string>({
    notFound: (method, path) => ({ problem: `nothing at ${method} ${path}` }),
    methodNotAllowed: (method, _path, allowed) => ({ problem: `${method} not allowed`, allowed }),
  })
    .on('GET', '/things/:id', 'get')
    .on(['PATCH', 'DELETE'], '/things/:id', 'change')
    .on('POST', '/things/search', 'search');

  it('matches method and path, decoding parameters and keeping the query', () => {
    const match = router.match('GET', '/things/a%20b?properties=x&properties=y');
    expect(match).toMatchObject({ handler: 'get', params: { id: 'a b' }, path: '/things/a%20b' });
    expect('query' in match && match.query.getAll('properties')).toEqual(['x', 'y']);
    expect(router.match('POST', '/things/search')).toMatchObject({ handler: 'search' });
    expect(router.match('DELETE', '/things/7')).toMatchObject({ handler: 'change', params: { id: '7' } });
  });

  it('answers 404 for an unknown path and 405 with Allow for a known path, in the caller’s shape', () => {
    expect(router.match('GET', '/nothing/here')).toEqual({ status: 404, body: { problem: 'nothing at GET /nothing/here' }, headers: {} });
    expect(router.match('PUT', '/things/7')).toEqual({
      status: 405,
      body: { problem: 'PUT not allowed', allowed: ['GET', 'PATCH', 'DELETE'] },
      headers: { allow: 'GET, PATCH, DELETE' },
    });
  });
});

describe('FixedWindow', () => {
  it('takes the limit in each window that starts at a multiple of its length, and starts afresh at the next', () => {
    const w = new FixedWindow({ requests: 2, perMs: 10_000 });
    expect(w.admit(20_001)).toEqual({ spent: false, remaining: 1, resetAt: 30_000 });
    expect(w.admit(29_999)).toEqual({ spent: false, remaining: 0, resetAt: 30_000 });
    expect(w.admit(29_999).spent).toBe(true);
    expect(w.admit(30_000)).toEqual({ spent: false, remaining: 1, resetAt: 40_000 });
  });
});

describe('EmulatorApp', () => {
  const apps: EmulatorApp[] = [];
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.stop();
  });

  /** An app with a token check, 2 requests a minute, a 64-byte body limit and a store of things. */
  async function app(faults: KitFaults = {}) {
    const things: unknown[] = [];
    const a = new EmulatorApp({
      name: 'test',
      errorBody: (status, code, message) => ({ error: { status, code, message } }),
      maxBodyBytes: 64,
      checks: [(req) => (req.headers.authorization === 'Bearer t' ? undefined : new EmulatorRefusal(401, 'unauthorized', 'no token'))],
      limit: fixedLimitWithHeaders(new FixedWindow({ requests: 3, perMs: 60_000 }), (n) => `only ${n}`),
      faults,
    })
      .on('POST', '/things', ({ body }) => (things.push(body), { status: 201, body: { n: things.length }, write: true }))
      .on('GET', '/things/:id', ({ params }) => {
        throw new EmulatorRefusal(404, 'thing_not_found', `no thing ${params['id']}`);
      });
    apps.push(a);
    await a.listen();
    const call = async (method: string, path: string, body?: string, token = 't') => {
      const res = await fetch(`${a.url}${path}`, { method, headers: { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { body }) });
      return { status: res.status, headers: res.headers, body: (await res.json()) as { error?: { code: string; message: string }; n?: number } };
    };
    return { a, things, call };
  }

  it('checks, counts the limit with its headers, routes, and answers refusals in the vendor shape', async () => {
    const { a, things, call } = await app();
    const refused = await call('POST', '/things', '{}', 'wrong');
    expect(refused).toMatchObject({ status: 401, body: { error: { code: 'unauthorized', message: 'no token' } } });
    expect(refused.headers.get('x-ratelimit-limit')).toBeNull();

    const created = await call('POST', '/things', '{"a":1}');
    expect(created).toMatchObject({ status: 201, body: { n: 1 } });
    expect(created.headers.get('x-ratelimit-remaining')).toBe('2');
    expect(await call('GET', '/things/7')).toMatchObject({ status: 404, body: { error: { code: 'thing_not_found', message: 'no thing 7' } } });
    expect(await call('POST', '/things', 'x'.repeat(65))).toMatchObject({ status: 413, body: { error: { code: 'too_large' } } });
    const throttled = await call('GET', '/nowhere');
    expect(throttled).toMatchObject({ status: 429, body: { error: { code: 'rate_limited', message: 'only 3' } } });
    expect(throttled.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(things).toEqual([{ a: 1 }]);
    expect(a.stats).toMatchObject({ requests: 5, byStatus: { 401: 1, 201: 1, 404: 1, 413: 1, 429: 1 } });
  });

  it('loses the answer of a write the faults pick, the write staying applied; answers the router misses in the vendor shape', async () => {
    const { a, things, call } = await app({ loseAnswers: 1, lostAnswer: 'error' });
    expect(await call('POST', '/things', '{"a":1}')).toMatchObject({ status: 500, body: { error: { code: 'server_error' } } });
    expect(things).toHaveLength(1);
    expect(a.stats.lostAnswers).toBe(1);
    expect(await call('DELETE', '/things')).toMatchObject({ status: 405, body: { error: { code: 'method_not_allowed' } } });
    a.faults.set({ failRequests: 1 });
    expect(await call('POST', '/things', '{}')).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
  });
});
