import {
  defineConnector,
  destinationError,
  isOutflowError,
  networkCode,
  OutflowError,
  parseRetryAfter,
  readAnswer,
  redact,
  registerSecret,
  Secret,
  Type,
  type Capabilities,
  type ConnectorContext,
  type DestinationCatalog,
  type EventInfo,
  type Operation,
  type RecordResult,
  type Static,
} from '@outflow/core';
import { SIGNATURE_HEADER, signBody, TIMESTAMP_HEADER } from './signature.js';

export { MAX_TIMESTAMP_SKEW_SECONDS, SIGNATURE_HEADER, signBody, TIMESTAMP_HEADER, verifySignature } from './signature.js';
export type { SignatureProblem } from './signature.js';
/** Retry-After parsing lives in core; re-exported for code that imported it from here. */
export { parseRetryAfter } from '@outflow/core';

/** The connection config of a webhook destination. */
export const configSchema = Type.Object(
  {
    url: Type.String({
      pattern: '^https?://',
      description: 'The receiver endpoint (http or https). Every batch, and the check ping, is POSTed here.',
    }),
    secret: Secret({
      minLength: 1,
      description:
        'The HMAC-SHA256 signing secret shared with the receiver; each request carries x-outflow-signature computed with it.',
    }),
    batchSize: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'The most records sent in one request.' }),
    ),
    requestsPerSecond: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        default: 20,
        description: 'The most requests per second Outflow sends to the receiver (its declared rate limit).',
      }),
    ),
    concurrency: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 64, default: 4, description: 'How many requests may be in flight at once.' }),
    ),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        // A timer cannot wait longer than about 24.8 days; a day is more than any answer needs.
        maximum: 86_400_000,
        default: 10_000,
        description: 'How long to wait for the receiver to answer one request before retrying it, in milliseconds.',
      }),
    ),
    maxResponseBytes: Type.Optional(
      Type.Integer({
        minimum: 1024,
        default: 4 * 1024 * 1024,
        description:
          "The largest answer body read from the receiver, in bytes. A larger answer is not read further: the batch fails as retryable (\"answer too large\") and is sent again.",
      }),
    ),
    headers: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description:
          'Extra HTTP headers sent with every request. They cannot replace the content-type or signature headers, and their values are not masked as secrets.',
      }),
    ),
  },
  { additionalProperties: false, description: 'Deliver records as signed JSON batches to an HTTP endpoint.' },
);

export type WebhookConfig = Static<typeof configSchema>;

const DEFAULTS = { batchSize: 100, requestsPerSecond: 20, concurrency: 4, timeoutMs: 10_000, maxResponseBytes: 4 * 1024 * 1024 } as const;
const MAX_MESSAGE_LENGTH = 300;

/** One record of a batch as it travels on the wire. */
export interface WireRecord {
  idempotencyKey: string;
  op: Operation['kind'];
  key: string;
  match?: Operation['match'];
  fields?: Operation['fields'];
  destinationId?: string;
  /** On `event` records: the trigger that fired and the change it fired on; `fields` is the payload. */
  event?: EventInfo;
}

/** The body of a write request. */
export interface WireBatch {
  object: string;
  records: WireRecord[];
}

/** One entry of the receiver's `results` array. */
export type WireResult =
  | { idempotencyKey: string; ok: true; id?: string }
  | { idempotencyKey: string; ok: false; error: string; retryable?: boolean };

interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

/** The receiver named without path, query or credentials, which may carry tokens. */
function receiverName(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'the configured url';
  }
}

function scrub(text: string, secret: string): string {
  // Registered (as the engine does when it opens the connection) so every form of it is masked.
  registerSecret(secret);
  const cleaned = redact(secret.length > 0 ? text.split(secret).join('[REDACTED]') : text).replace(/\s+/g, ' ').trim();
  return cleaned.length > MAX_MESSAGE_LENGTH ? `${cleaned.slice(0, MAX_MESSAGE_LENGTH)}…` : cleaned;
}

/** The receiver's own explanation from an error body: `{ error }`, `{ message }` or plain text. */
function receiverMessage(reply: Reply, secret: string): string {
  let message = reply.text;
  try {
    const body = JSON.parse(reply.text) as unknown;
    if (body !== null && typeof body === 'object') {
      const { error, message: msg } = body as { error?: unknown; message?: unknown };
      if (typeof error === 'string') message = error;
      else if (typeof msg === 'string') message = msg;
    }
  } catch {
    // Not JSON: the text itself is the message.
  }
  const cleaned = scrub(message, secret);
  return cleaned === '' ? 'no message' : cleaned;
}

/**
 * Sends one signed POST and reads the answer, at most `maxResponseBytes` of it. The
 * deadline (`timeoutMs`) and the run's stop cancel the request, the reading of the answer
 * included. Throws `OUTFLOW_ABORTED` when the run stops, and a retryable
 * `OUTFLOW_DESTINATION` error on a timeout, a connection failure or an answer too large.
 */
async function send(ctx: ConnectorContext<WebhookConfig>, body: unknown): Promise<Reply> {
  const { url, secret } = ctx.config;
  const timeoutMs = ctx.config.timeoutMs ?? DEFAULTS.timeoutMs;
  const raw = JSON.stringify(body);
  const timestamp = Math.floor(Date.now() / 1000);
  const timeout = AbortSignal.timeout(timeoutMs);
  const where = receiverName(url);
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        ...ctx.config.headers,
        'content-type': 'application/json',
        [TIMESTAMP_HEADER]: String(timestamp),
        [SIGNATURE_HEADER]: signBody(secret, timestamp, raw),
      },
      body: raw,
      redirect: 'manual',
      signal: AbortSignal.any([ctx.signal, timeout]),
    });
    const text = await readAnswer(response.body, {
      limit: ctx.config.maxResponseBytes ?? DEFAULTS.maxResponseBytes,
      where: `webhook receiver at ${where}`,
      status: response.status,
      contentLength: response.headers.get('content-length'),
    });
    return { status: response.status, headers: response.headers, text };
  } catch (err) {
    if (ctx.signal.aborted) {
      throw new OutflowError('OUTFLOW_ABORTED', `request to webhook receiver at ${where} was stopped because the run is stopping`, {
        retryable: true,
      });
    }
    if (timeout.aborted) {
      throw destinationError(`webhook receiver at ${where} did not answer within ${timeoutMs} ms`, { retryable: true });
    }
    if (isOutflowError(err)) throw err;
    // fetch rejects a request it cannot even build (e.g. a bad header value) with a bare
    // TypeError; sending it again would fail the same way.
    if (err instanceof TypeError && err.cause === undefined) {
      // fetch's message quotes the offending header value, which may be a credential.
      throw destinationError(`could not build a request to webhook receiver at ${where}: check \`url\` and the names and values in \`headers\``, {
        retryable: false,
        cause: err,
      });
    }
    throw destinationError(`could not reach webhook receiver at ${where}: ${scrub(networkCode(err), secret)}`, {
      retryable: true,
    });
  }
}

function failureOf(reply: Reply, ctx: ConnectorContext<WebhookConfig>, what: 'batch' | 'check ping'): OutflowError {
  const { status } = reply;
  const where = receiverName(ctx.config.url);
  const message = receiverMessage(reply, ctx.config.secret);
  const retryAfterMs = parseRetryAfter(reply.headers.get('retry-after'));
  if (status === 429 || status === 503 || status === 408 || status >= 500) {
    return destinationError(`webhook receiver at ${where} answered HTTP ${status}: ${message}`, {
      retryable: true,
      status,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
  if (status === 401 || status === 403) {
    return destinationError(
      `webhook receiver at ${where} refused the request signature (HTTP ${status}: ${message}); check that \`secret\` matches the receiver's`,
      { retryable: false, status },
    );
  }
  if (status >= 300 && status < 400) {
    return destinationError(
      `webhook receiver at ${where} answered with a redirect (HTTP ${status}); set \`url\` to the final address`,
      { retryable: false, status },
    );
  }
  return destinationError(`webhook receiver at ${where} refused the ${what} with HTTP ${status}: ${message}`, {
    retryable: false,
    status,
  });
}

function malformed(ctx: ConnectorContext<WebhookConfig>, status: number, what: string): OutflowError {
  return destinationError(
    `webhook receiver at ${receiverName(ctx.config.url)} answered HTTP ${status} but ${what}; expected { "results": [{ "idempotencyKey", "ok", … }] }`,
    { retryable: false, status },
  );
}

/** Reads the receiver's `results` into a map by idempotency key, or throws naming what was wrong. */
function parseResults(reply: Reply, ctx: ConnectorContext<WebhookConfig>): Map<string, RecordResult> {
  let body: unknown;
  try {
    body = JSON.parse(reply.text);
  } catch {
    throw malformed(ctx, reply.status, 'the body is not JSON');
  }
  const results = (body as { results?: unknown } | null)?.results;
  if (!Array.isArray(results)) throw malformed(ctx, reply.status, 'the body has no "results" array');
  const byKey = new Map<string, RecordResult>();
  results.forEach((entry: unknown, i) => {
    if (entry === null || typeof entry !== 'object') throw malformed(ctx, reply.status, `results[${i}] is not an object`);
    const r = entry as Record<string, unknown>;
    if (typeof r['idempotencyKey'] !== 'string') {
      throw malformed(ctx, reply.status, `results[${i}] has no string "idempotencyKey"`);
    }
    if (r['ok'] === true) {
      const id = r['id'];
      byKey.set(
        r['idempotencyKey'],
        typeof id === 'string' || typeof id === 'number' ? { ok: true, destinationId: String(id) } : { ok: true },
      );
    } else if (r['ok'] === false) {
      const reason = typeof r['error'] === 'string' && r['error'] !== '' ? scrub(r['error'], ctx.config.secret) : 'rejected by receiver';
      byKey.set(r['idempotencyKey'], { ok: false, reason, retryable: r['retryable'] === true });
    } else {
      throw malformed(ctx, reply.status, `results[${i}] has no boolean "ok"`);
    }
  });
  return byKey;
}

function toWire(op: Operation): WireRecord {
  const record: WireRecord = { idempotencyKey: op.idempotencyKey, op: op.kind, key: op.key };
  if (op.match !== undefined) record.match = op.match;
  if (op.fields !== undefined) record.fields = op.fields;
  if (op.destinationId !== undefined) record.destinationId = op.destinationId;
  if (op.event !== undefined) record.event = op.event;
  return record;
}

/**
 * Posts one batch and returns one result per operation, in order. A record the receiver
 * did not answer for is a retryable failure, so the engine sends it again.
 */
async function write(ctx: ConnectorContext<WebhookConfig>, object: string, ops: Operation[]): Promise<RecordResult[]> {
  if (ops.length === 0) return [];
  const batch: WireBatch = { object, records: ops.map(toWire) };
  const reply = await send(ctx, batch);
  ctx.logger.debug({ object, records: ops.length, status: reply.status }, 'webhook batch sent');
  if (reply.status < 200 || reply.status >= 300) throw failureOf(reply, ctx, 'batch');
  const byKey = parseResults(reply, ctx);
  return ops.map(
    (op) =>
      byKey.get(op.idempotencyKey) ?? { ok: false, reason: 'receiver returned no result for this record', retryable: true },
  );
}

/** Posts a signed `{ "type": "check" }` ping; any 2xx answer means the receiver accepts our signature. */
async function check(ctx: ConnectorContext<WebhookConfig>): Promise<void> {
  const where = receiverName(ctx.config.url);
  let reply: Reply;
  try {
    reply = await send(ctx, { type: 'check' });
  } catch (err) {
    if (err instanceof OutflowError && err.code === 'OUTFLOW_ABORTED') throw err;
    throw new OutflowError('OUTFLOW_CHECK_FAILED', err instanceof Error ? err.message : String(err), { cause: err });
  }
  if (reply.status >= 200 && reply.status < 300) return;
  throw new OutflowError('OUTFLOW_CHECK_FAILED', failureOf(reply, ctx, 'check ping').message, {
    details: { status: reply.status, receiver: where },
  });
}

function capabilities(ctx: ConnectorContext<WebhookConfig>): Capabilities {
  const perSecond = ctx.config.requestsPerSecond ?? DEFAULTS.requestsPerSecond;
  // Below one request per second, a whole request per longer window keeps the limit exact.
  const rateLimit = perSecond >= 1 ? { requests: perSecond, perMs: 1000 } : { requests: 1, perMs: Math.round(1000 / perSecond) };
  return {
    operations: ['upsert', 'update', 'insert', 'delete', 'event'],
    maxBatchSize: ctx.config.batchSize ?? DEFAULTS.batchSize,
    rateLimits: [rateLimit],
    concurrency: ctx.config.concurrency ?? DEFAULTS.concurrency,
    // The receiver contract: each idempotency key is applied at most once (an event's, ever).
    idempotency: 'key',
  };
}

async function discover(): Promise<DestinationCatalog> {
  return { objects: [{ name: '*', fields: [], matchKeys: [], modes: ['upsert', 'update', 'insert', 'mirror', 'event'] }] };
}

/**
 * The webhook destination: each batch is one signed JSON POST, and the receiver answers
 * with one result per record. Any object name is accepted and passed through as `object`.
 */
export default defineConnector({
  name: 'webhook',
  version: '1.0.0',
  description: 'Delivers records as HMAC-signed JSON batches to an HTTP endpoint, with per-record idempotency keys.',
  config: configSchema,
  destination: { check, discover, capabilities, write },
  emulator: () => import('./emulator.js'),
});
