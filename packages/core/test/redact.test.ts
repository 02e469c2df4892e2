import { afterEach, describe, expect, it } from 'vitest';
import { clearSecrets, redact, redactValue, registerSecret } from '../src/redact.js';

describe('redaction', () => {
  afterEach(() => clearSecrets());

  it('masks every registered secret in text and nested values', () => {
    registerSecret('s3cr3t-token');
    expect(redact('Bearer s3cr3t-token failed')).toBe('Bearer [REDACTED] failed');
    expect(redactValue({ a: ['x s3cr3t-token'], b: 1 })).toEqual({ a: ['x [REDACTED]'], b: 1 });
  });

  it('masks a secret escaped in JSON text and URL-encoded, in either hex case', () => {
    const secret = 'p"ss\\w/rd ünï\n';
    registerSecret(secret);
    const echoed = JSON.stringify({ headers: { authorization: `Bearer ${secret}` } });
    expect(echoed).not.toContain(secret);
    expect(redact(echoed)).toBe('{"headers":{"authorization":"Bearer [REDACTED]"}}');
    const escapedAll = echoed.replace(/\//g, '\\/').replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    expect(redact(escapedAll)).toBe('{"headers":{"authorization":"Bearer [REDACTED]"}}');
    const query = `https://x.test/?token=${encodeURIComponent(secret)}`;
    expect(redact(query)).toBe('https://x.test/?token=[REDACTED]');
    // The secret has no capitals: only its percent escapes change case.
    expect(redact(query.toLowerCase())).toBe('https://x.test/?token=[REDACTED]');
    expect(redact(`token=${encodeURIComponent(secret).replace(/%20/g, '+')}`)).toBe('token=[REDACTED]');
  });

  it('leaves text alone when nothing is registered', () => {
    expect(redact('plain')).toBe('plain');
  });
});
