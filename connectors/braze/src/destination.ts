import {
  checkWith,
  refusedWith,
  type Capabilities,
  type ConnectorContext,
  type Destination,
  type DestinationCatalog,
  type Operation,
  type RecordResult,
} from '@outflow/core';
import { sessionOf } from './client.js';
import type { BrazeConfig } from './config.js';
import { sendRequest } from './messaging.js';
import { objectOf, USERS_TRACK_LIMIT } from './objects.js';
import { trackRequest, trackResults } from './users.js';

const reject = (reason: string): RecordResult => ({ ok: false, reason, retryable: false });

/**
 * One request per write, answering one result per operation. A payload Braze cannot take is
 * a row error, unsent. At /users/track an object Braze refuses (listed in the 201's
 * `errors`) is its operation's row error; a triggered send is answered whole. A request
 * that failed throws for the whole write: a 429 (retryable, not applied), a 5xx, a timeout
 * (retryable: applied or not, nobody knows — parked where the object is `none`), a 400
 * (not retryable: the engine narrows it down to the operation at fault), a 401 or 403.
 */
async function write(ctx: ConnectorContext<BrazeConfig>, object: string, ops: Operation[]): Promise<RecordResult[]> {
  const target = objectOf(object);
  const session = sessionOf(ctx);
  if (target.kind === 'users') {
    const request = trackRequest(ops, target.attributesOnly);
    if (Object.keys(request.body).length === 0) return trackResults(request, undefined);
    const answer = await session.post(target.path, request.body, `a /users/track request of ${ops.length}`, target.limit);
    return trackResults(request, answer.body);
  }
  const request = sendRequest(target.send, target.id, ops);
  const recipients = request.parts.filter((p) => typeof p === 'number').length;
  if (recipients > 0) await session.post(target.path, request.body, `a triggered send of ${object} to ${recipients} recipients`, target.limit);
  return request.parts.map((p) => (typeof p === 'number' ? { ok: true } : reject(p.reason)));
}

/** What discover() reports: the user endpoint's two objects; campaigns and Canvases are named by id. */
const CATALOG: DestinationCatalog = {
  objects: [
    {
      name: 'users/track',
      fields: [
        { name: 'external_id', type: 'string' },
        { name: 'braze_id', type: 'string' },
        { name: 'email', type: 'string' },
        { name: 'phone', type: 'string' },
        { name: 'user_alias', type: 'object' },
        { name: 'attributes', type: 'object' },
        { name: 'event', type: 'object' },
        { name: 'purchase', type: 'object' },
      ],
      matchKeys: [],
      modes: ['event'],
    },
    {
      name: 'users/attributes',
      fields: ['external_id', 'braze_id', 'email', 'phone'].map((name) => ({ name, type: 'string' })).concat([{ name: 'user_alias', type: 'object' }, { name: 'attributes', type: 'object' }]),
      matchKeys: [],
      modes: ['event'],
    },
  ],
};

export const destination: Destination<BrazeConfig> = {
  // A /users/track request with nothing in it: an unreachable instance, a wrong key (401) or
  // one without users.track permission (403) fails it; it changes no user. A 400 for the
  // empty request passes: Braze took the key before refusing the body.
  check: (ctx) =>
    checkWith(
      () => sessionOf(ctx).post('/users/track', { attributes: [] }, 'the check', USERS_TRACK_LIMIT),
      (err) => refusedWith(err, 400),
    ),

  async discover() {
    return CATALOG;
  },

  // Events only; each endpoint's documented limit and batch size; `key` for attributes
  // (setting them again is harmless), `none` for events, purchases and triggered sends.
  capabilities(_ctx, object): Capabilities {
    const target = objectOf(object);
    return { operations: ['event'], maxBatchSize: target.maxBatch, rateLimits: [target.limit], budget: 'connector', concurrency: 4, idempotency: target.idempotency };
  },

  write,
};
