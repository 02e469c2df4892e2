/**
 * Where Braze events go, named as `to.object`: `users/track` (a user's attributes, a custom
 * event, a purchase), `users/attributes` (attributes only), `campaign:<campaign_id>` and
 * `canvas:<canvas_id>` (an API-triggered send to one recipient), with the endpoint, batch
 * size, rate limit and idempotency of each.
 */
import { OutflowError, type Idempotency, type RateLimit } from '@outflow/core';

/** Braze's documented default: 3,000 requests to /users/track in three seconds. */
export const USERS_TRACK_LIMIT: RateLimit = { requests: 3_000, perMs: 3_000 };
/** Braze's documented default: 250,000 requests an hour, shared by the send endpoints. */
export const MESSAGING_LIMIT: RateLimit = { requests: 250_000, perMs: 3_600_000 };
/** The most attribute, event and purchase objects (each) one /users/track request takes. */
export const MAX_TRACK_OBJECTS = 75;
/** The most recipients one triggered send takes. */
export const MAX_RECIPIENTS = 50;

interface Endpoint {
  path: string;
  limit: RateLimit;
  maxBatch: number;
  idempotency: Idempotency;
}

/** `users`: /users/track (`attributesOnly` for users/attributes); `send`: a triggered send of campaign or Canvas `id`. */
export type BrazeObject = Endpoint & ({ kind: 'users'; attributesOnly: boolean } | { kind: 'send'; send: 'campaign' | 'canvas'; id: string });

/**
 * The object `name` names, or OUTFLOW_MODE_UNSUPPORTED. Attributes set the same values
 * again when sent twice (`key`: a re-send is harmless); Braze keeps every event and purchase
 * it is sent and has no dedupe key for a triggered send, so those are `none`: never sent
 * again blindly.
 */
export function objectOf(name: string): BrazeObject {
  const users = { kind: 'users', path: '/users/track', limit: USERS_TRACK_LIMIT, maxBatch: MAX_TRACK_OBJECTS } as const;
  if (name === 'users/track') return { ...users, attributesOnly: false, idempotency: 'none' };
  if (name === 'users/attributes') return { ...users, attributesOnly: true, idempotency: 'key' };
  const match = /^(campaign|canvas):(.+)$/.exec(name);
  if (match !== null) {
    const send = match[1] as 'campaign' | 'canvas';
    return { kind: 'send', send, id: match[2]!, path: `/${send === 'campaign' ? 'campaigns' : 'canvas'}/trigger/send`, limit: MESSAGING_LIMIT, maxBatch: MAX_RECIPIENTS, idempotency: 'none' };
  }
  throw new OutflowError('OUTFLOW_MODE_UNSUPPORTED', `Braze has no object "${name}" here (it has: users/track, users/attributes, campaign:<campaign_id>, canvas:<canvas_id>)`);
}
