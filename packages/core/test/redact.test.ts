import { afterEach, describe, expect, it } from 'vitest';
import { clearSecrets, redact, redactValue, registerSecret } from '../src/redact.js';

describe('redaction', () => {
  afterEach(() => clearSecrets());

  it('masks every registered secret in text and nested values', () => {
    registerSecret('s3cr3t-token');
    expect(redact('Bearer s3cr3t-token failed')).toBe('Bearer [REDACTED] failed');
    expect(redactValue({ a: ['x s3cr3t-token'], b: 1 })).toEqual({ a: ['x [REDACTED]'], b: 1 });
  });

  it('leaves text alone when nothing is registered', () => {
    expect(redact('plain')).toBe('plain');
  });
});
