import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { budgetedFetch, isOutflowError, unlimitedBudget, type ConnectorContext, type RateBudget } from '../src/index.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** A server answering each request with `answer`. */
async function serve(answer: (res: import('node:http').ServerResponse) => void): Promise<string> {
  server = createServer((_req, res) => answer(res));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/things`;
}

function context(budget: RateBudget = unlimitedBudget(), signal = new AbortController().signal): ConnectorContext {
  return { signal, rateBudget: budget } as unknown as ConnectorContext;
}

/** A budget that counts requests and records pauses, and otherwise lets everything through. */
function recordingBudget() {
  const seen = { requests: 0, pauses: [] as number[] };
  const budget: RateBudget = {
    acquire: async () => undefined,
    request: (send) => {
      seen.requests++;
      return send();
    },
    pause: (ms) => void seen.pauses.push(ms),
    addLimit: () => undefined,
  };
  return { budget, seen };
}

describe('budgetedFetch', () => {
  it('sends every request through the rate budget and hands the SDK the answer', async () => {
    const url = await serve((res) => res.writeHead(200, { 'content-type': 'application/json', 'x-ratelimit-limit': '100' }).end('{"ok":true}'));
    const { budget, seen } = recordingBudget();
    const limits: (string | null)[] = [];
    const send = budgetedFetch(context(budget), { service: 'Acme', timeoutMs: 2_000, onAnswer: ({ headers }) => limits.push(headers.get('x-ratelimit-limit')) });
    const res = await send(url, { method: 'POST', body: '{}' });
    expect(await res.json()).toEqual({ ok: true });
    await send(url);
    expect(seen.requests).toBe(2);
    expect(limits).toEqual(['100', '100']);
  });

  it('pauses the budget for as long as a 429 asks (Retry-After, else X-RateLimit-Reset) and keeps the wait', async () => {
    const reset = Math.floor(Date.now() / 1000) + 5;
    let retryAfter = true;
    const url = await serve((res) => res.writeHead(429, retryAfter ? { 'retry-after': '3' } : { 'x-ratelimit-reset': String(reset) }).end('{"error":"slow down"}'));
    const { budget, seen } = recordingBudget();
    const send = budgetedFetch(context(budget), { service: 'Acme', timeoutMs: 2_000 });
    expect((await send(url)).status).toBe(429);
    expect(seen.pauses).toEqual([3_000]);
    expect(send.retryAfterMs).toBe(3_000);
    retryAfter = false;
    await send(url);
    expect(seen.pauses[1]).toBeGreaterThan(3_000);
    expect(seen.pauses[1]).toBeLessThanOrEqual(5_000);
  });

  it('cancels a request the server does not answer in time, as a retryable destination error naming the service', async () => {
    const url = await serve(() => undefined); // never answers
    const send = budgetedFetch(context(), { service: 'Acme', timeoutMs: 200 });
    const err = await send(url, { method: 'PUT' }).catch((e: unknown) => e);
    expect(isOutflowError(err) && err.code).toBe('OUTFLOW_DESTINATION');
    expect((err as Error).message).toBe('Acme did not answer PUT /v1/things within 200 ms; the request was cancelled');
    expect(isOutflowError(err) && err.retryable).toBe(true);
    expect(send.failure).toBe(err);
  });

  it('stops at once when the run stops, as OUTFLOW_ABORTED', async () => {
    const url = await serve(() => undefined);
    const stop = new AbortController();
    const send = budgetedFetch(context(unlimitedBudget(), stop.signal), { service: 'Acme', timeoutMs: 10_000 });
    const pending = send(url).catch((e: unknown) => e);
    setTimeout(() => stop.abort(), 50);
    const err = await pending;
    expect(isOutflowError(err) && err.code).toBe('OUTFLOW_ABORTED');
  });

  it('refuses an answer larger than the limit without reading it all', async () => {
    const url = await serve((res) => res.writeHead(200).end('x'.repeat(10_000)));
    const send = budgetedFetch(context(), { service: 'Acme', timeoutMs: 2_000, maxAnswerBytes: 1_000 });
    const err = await send(url).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^answer too large: Acme \(GET \/v1\/things\) answered HTTP 200 with a body of more than 1000 bytes/);
  });
});
