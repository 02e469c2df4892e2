/**
 * `/users/track` for a batch of event operations: each payload names one user (`external_id`,
 * `braze_id`, `email`, `phone` or `user_alias`) and carries `attributes`, an `event` and/or a
 * `purchase`, which become one attribute, event and purchase object of the request. Braze
 * answers 201 and lists the objects it refused in `errors` (`{ type, input_array, index }`),
 * having processed the rest: each refusal is its operation's row error.
 */
import type { Operation, RecordResult, Row } from '@outflow/core';
import { aliasField, isObject, objectField, onlyKnown, PayloadError, textField, timeField } from './payload.js';

type ArrayName = 'attributes' | 'events' | 'purchases';
/** Where an operation's objects went in the request. */
type Part = { array: ArrayName; index: number };

export interface TrackRequest {
  body: Partial<Record<ArrayName, Row[]>>;
  /** Per operation: its objects in the request, or why it was not sent. */
  parts: (Part[] | { reason: string })[];
}

/** The property each event and purchase carries Outflow's idempotency key in, so a person can tell whether a send in doubt arrived. */
export const KEY_PROPERTY = 'outflow_idempotency_key';

const IDENTIFIERS = ['external_id', 'braze_id', 'email', 'phone', 'user_alias'] as const;
const EVENT_FIELDS = ['name', 'time', 'properties', 'app_id'];
const PURCHASE_FIELDS = ['product_id', 'currency', 'price', 'quantity', 'time', 'properties', 'app_id'];

/** The user an operation names: exactly the identifier fields it gives. */
function userOf(fields: Row, where: string): Row {
  const user: Row = {};
  for (const name of IDENTIFIERS) {
    const v = name === 'user_alias' ? aliasField(fields, name, where) : textField(fields, name, where);
    if (v !== undefined) user[name] = v;
  }
  if (Object.keys(user).length === 0) throw new PayloadError(`${where} needs one of ${IDENTIFIERS.join(', ')} to name the user`);
  return user;
}

function eventOf(op: Operation, event: Row, user: Row): Row {
  const where = 'users/track: event';
  onlyKnown(event, EVENT_FIELDS, where);
  const name = textField(event, 'name', where);
  if (name === undefined) throw new PayloadError(`${where} needs a name`);
  const appId = textField(event, 'app_id', where);
  const properties = { ...objectField(event, 'properties', where), [KEY_PROPERTY]: op.idempotencyKey };
  return { ...user, name, time: timeField(event, op, where), properties, ...(appId === undefined ? {} : { app_id: appId }) };
}

function purchaseOf(op: Operation, purchase: Row, user: Row): Row {
  const where = 'users/track: purchase';
  onlyKnown(purchase, PURCHASE_FIELDS, where);
  const productId = textField(purchase, 'product_id', where);
  if (productId === undefined) throw new PayloadError(`${where} needs a product_id`);
  const currency = purchase['currency'];
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) throw new PayloadError(`${where}: currency must be an ISO 4217 code such as USD, not ${JSON.stringify(currency)}`);
  const price = purchase['price'];
  if (typeof price !== 'number' || !Number.isFinite(price)) throw new PayloadError(`${where}: price must be a number, not ${JSON.stringify(price)}`);
  const quantity = purchase['quantity'];
  if (quantity !== undefined && quantity !== null && !(Number.isInteger(quantity) && (quantity as number) >= 1 && (quantity as number) <= 100)) {
    throw new PayloadError(`${where}: quantity must be a whole number from 1 to 100, not ${JSON.stringify(quantity)}`);
  }
  const appId = textField(purchase, 'app_id', where);
  const properties = { ...objectField(purchase, 'properties', where), [KEY_PROPERTY]: op.idempotencyKey };
  return {
    ...user,
    product_id: productId,
    currency,
    price,
    ...(typeof quantity === 'number' ? { quantity } : {}),
    time: timeField(purchase, op, where),
    properties,
    ...(appId === undefined ? {} : { app_id: appId }),
  };
}

/**
 * The /users/track request for `ops`. `attributesOnly` (the `users/attributes` object)
 * refuses an event or a purchase, so everything it sends is idempotent.
 */
export function trackRequest(ops: Operation[], attributesOnly: boolean): TrackRequest {
  const body: Record<ArrayName, Row[]> = { attributes: [], events: [], purchases: [] };
  const where = attributesOnly ? 'users/attributes' : 'users/track';
  const allowed = [...IDENTIFIERS, 'attributes', ...(attributesOnly ? [] : ['event', 'purchase'])];
  const parts = ops.map((op): Part[] | { reason: string } => {
    try {
      if (op.kind !== 'event') throw new PayloadError(`Braze takes events (to.mode: event), not a ${op.kind}`);
      const fields = op.fields ?? {};
      onlyKnown(fields, allowed, where);
      const user = userOf(fields, where);
      const objects: [ArrayName, Row][] = [];
      const attributes = objectField(fields, 'attributes', where);
      if (attributes !== undefined) objects.push(['attributes', { ...attributes, ...user }]);
      const event = objectField(fields, 'event', where);
      if (event !== undefined) objects.push(['events', eventOf(op, event, user)]);
      const purchase = objectField(fields, 'purchase', where);
      if (purchase !== undefined) objects.push(['purchases', purchaseOf(op, purchase, user)]);
      if (objects.length === 0) throw new PayloadError(attributesOnly ? `${where} needs attributes` : `${where} needs attributes, an event or a purchase`);
      return objects.map(([array, object]) => ({ array, index: body[array].push(object) - 1 }));
    } catch (err) {
      if (err instanceof PayloadError) return { reason: err.message };
      throw err;
    }
  });
  const sent = Object.fromEntries(Object.entries(body).filter(([, list]) => list.length > 0)) as TrackRequest['body'];
  return { body: sent, parts };
}

/** One result per operation from a 201's `errors`: an operation any of whose objects Braze refused is a row error naming why. */
export function trackResults(request: TrackRequest, answer: unknown): RecordResult[] {
  const errors = (isObject(answer as Row) ? (answer as Row)['errors'] : undefined) ?? [];
  const refused = new Map<string, string>();
  for (const e of Array.isArray(errors) ? errors : []) {
    if (isObject(e) && typeof e['input_array'] === 'string' && typeof e['index'] === 'number') {
      refused.set(`${e['input_array']}:${e['index']}`, typeof e['type'] === 'string' ? e['type'] : JSON.stringify(e));
    }
  }
  return request.parts.map((parts): RecordResult => {
    if (!Array.isArray(parts)) return { ok: false, reason: parts.reason, retryable: false };
    const why = parts.flatMap((p) => {
      const type = refused.get(`${p.array}:${p.index}`);
      return type === undefined ? [] : [`its ${p.array.slice(0, -1)}: ${type}`];
    });
    return why.length === 0 ? { ok: true } : { ok: false, reason: `Braze refused ${why.join('; ')}`, retryable: false };
  });
}
