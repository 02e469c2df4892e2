import { describe, expect, it } from 'vitest';
import { MAX_PAUSE_MS, readRateLimitHeaders } from '../src/index.js';

const now = Date.UTC(2026, 0, 1, 12, 0, 0);
const read = (h: Record<string, string>) => readRateLimitHeaders(new Headers(h), now);

describe('readRateLimitHeaders', () => {
  it('reads limit, remaining and an epoch-seconds reset as milliseconds from now', () => {
    expect(read({ 'X-RateLimit-Limit': '167', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String(now / 1000 + 7) })).toEqual({ limit: 167, remaining: 0, resetMs: 7000 });
  });

  it('reads a small reset as seconds from now, and a reset already past as now', () => {
    expect(read({ 'x-ratelimit-reset': '2.5' })).toEqual({ resetMs: 2500 });
    expect(read({ 'x-ratelimit-reset': String(now / 1000 - 60) })).toEqual({ resetMs: 0 });
  });

  it('leaves out absent, negative and unreadable values, and caps the wait', () => {
    expect(read({ 'x-ratelimit-limit': 'lots', 'x-ratelimit-remaining': '-1' })).toEqual({});
    expect(read({ 'x-ratelimit-reset': String(now / 1000 + 10 ** 9) }).resetMs).toBe(MAX_PAUSE_MS);
  });
});
