import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header carrying the request time, in Unix seconds. */
export const TIMESTAMP_HEADER = 'x-outflow-timestamp';
/** The header carrying `sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`. */
export const SIGNATURE_HEADER = 'x-outflow-signature';
/** How far a request's timestamp may be from the receiver's clock before it is refused. */
export const MAX_TIMESTAMP_SKEW_SECONDS = 300;

/** Returns the `x-outflow-signature` value for a raw body sent at `timestamp` (Unix seconds). */
export function signBody(secret: string, timestamp: number | string, rawBody: string | Buffer): string {
  const hmac = createHmac('sha256', secret);
  hmac.update(`${timestamp}.`);
  hmac.update(rawBody);
  return `sha256=${hmac.digest('hex')}`;
}

/** Why {@link verifySignature} refused a request, or `null` when the request is genuine. */
export type SignatureProblem = 'missing signature' | 'missing timestamp' | 'stale timestamp' | 'bad signature';

/**
 * Checks a received request the way a receiver should: the timestamp is within five minutes
 * of `nowSeconds` and the signature matches the raw body (compared in constant time).
 */
export function verifySignature(
  secret: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  rawBody: string | Buffer,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): SignatureProblem | null {
  if (headers.timestamp === undefined || !/^\d+$/.test(headers.timestamp)) return 'missing timestamp';
  if (headers.signature === undefined || headers.signature === '') return 'missing signature';
  if (Math.abs(nowSeconds - Number(headers.timestamp)) > MAX_TIMESTAMP_SKEW_SECONDS) return 'stale timestamp';
  const expected = Buffer.from(signBody(secret, headers.timestamp, rawBody));
  const given = Buffer.from(headers.signature);
  return given.length === expected.length && timingSafeEqual(given, expected) ? null : 'bad signature';
}
