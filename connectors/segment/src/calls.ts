/**
 * The Segment calls Outflow sends, one object each (`to.object: track` …), and how an event
 * operation's payload becomes one. Segment's Tracking API answers 200 for a call it then
 * drops (no userId or anonymousId, a track without an event name), so such a call is refused
 * here, record by record, with the reason, instead of being reported as delivered.
 */
import type { FieldInfo, Operation, Row, Value } from '@outflow/core';
import type { GroupParams, IdentifyParams, PageParams, TrackParams } from '@segment/analytics-node';

export type CallName = 'track' | 'identify' | 'page' | 'group';
/** What analytics-node takes for one call, with Outflow's idempotency key as its messageId. */
export type Message = TrackParams | IdentifyParams | PageParams | GroupParams;

type Kind = 'id' | 'text' | 'object' | 'timestamp';
interface Field {
  kind: Kind;
  required?: boolean;
}

const IDENTITY: Record<string, Field> = { userId: { kind: 'id' }, anonymousId: { kind: 'id' } };
const COMMON: Record<string, Field> = { timestamp: { kind: 'timestamp' }, context: { kind: 'object' }, integrations: { kind: 'object' } };

/** The payload fields of each call, as Segment's spec names them. */
const CALLS: Record<CallName, Record<string, Field>> = {
  track: { ...IDENTITY, event: { kind: 'text', required: true }, properties: { kind: 'object' }, ...COMMON },
  identify: { ...IDENTITY, traits: { kind: 'object' }, ...COMMON },
  page: { ...IDENTITY, name: { kind: 'text' }, category: { kind: 'text' }, properties: { kind: 'object' }, ...COMMON },
  group: { ...IDENTITY, groupId: { kind: 'id', required: true }, traits: { kind: 'object' }, ...COMMON },
};

/**
 * Segment refuses a call larger than 32 KB (its whole batch, with a 400). analytics-node adds
 * its library, runtime, type and timestamps to each call, so a payload is held to less.
 */
export const MAX_PAYLOAD_BYTES = 31 * 1024;

const TYPES: Record<Kind, string> = { id: 'string', text: 'string', object: 'object', timestamp: 'datetime' };

export const CALL_NAMES = Object.keys(CALLS) as CallName[];

export function isCall(object: string): object is CallName {
  return Object.hasOwn(CALLS, object);
}

/** The fields of a call, as discover() reports them. */
export function fieldsOf(call: CallName): FieldInfo[] {
  return Object.entries(CALLS[call]).map(([name, f]) => ({ name, type: TYPES[f.kind], ...(f.required ? { required: true } : {}) }));
}

const isObject = (v: Value): v is Row => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A field's value as Segment takes it, or what is wrong with it. */
function valueOf(name: string, field: Field, value: Value): unknown {
  switch (field.kind) {
    case 'id':
      // A model's integer key is sent as its digits: Segment's ids are strings.
      if (typeof value === 'number' && Number.isFinite(value)) return String(value);
      if (typeof value === 'string' && value !== '') return value;
      return new Error(`${name} must be a non-empty string or a number, not ${JSON.stringify(value)}`);
    case 'text':
      return typeof value === 'string' && value !== '' ? value : new Error(`${name} must be a non-empty string, not ${JSON.stringify(value)}`);
    case 'object':
      return isObject(value) ? value : new Error(`${name} must be an object, not ${JSON.stringify(value)}`);
    case 'timestamp':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? value : new Error(`timestamp must be an ISO 8601 date-time, not ${JSON.stringify(value)}`);
  }
}

/**
 * The call an event operation makes, or why it cannot be made. A null field is left out. The
 * call's `timestamp` is the payload's, else when the source committed the change. Its
 * `messageId` is the operation's idempotency key: Segment dedupes by it.
 */
export function messageOf(call: CallName, op: Operation): Message | { reason: string } {
  if (op.kind !== 'event') return { reason: `Segment takes events (to.mode: event), not a ${op.kind}` };
  const spec = CALLS[call];
  const message: Record<string, unknown> = { messageId: op.idempotencyKey };
  for (const [name, value] of Object.entries(op.fields ?? {})) {
    const field = spec[name];
    if (field === undefined) return { reason: `a ${call} call has no field "${name}" (it takes: ${Object.keys(spec).join(', ')})` };
    if (value === null) continue;
    const v = valueOf(name, field, value);
    if (v instanceof Error) return { reason: `${call}: ${v.message}` };
    message[name] = v;
  }
  if (message['userId'] === undefined && message['anonymousId'] === undefined) {
    return { reason: `a ${call} call needs userId or anonymousId (Segment drops a call with neither)` };
  }
  for (const [name, field] of Object.entries(spec)) {
    if (field.required && message[name] === undefined) return { reason: `a ${call} call needs ${name}` };
  }
  if (message['timestamp'] === undefined && op.event?.committedAt !== undefined) message['timestamp'] = op.event.committedAt;
  const bytes = Buffer.byteLength(JSON.stringify(message));
  if (bytes > MAX_PAYLOAD_BYTES) return { reason: `a ${call} call of ${bytes} bytes is over the ${MAX_PAYLOAD_BYTES} Outflow sends (Segment refuses a call over 32 KB)` };
  return message as unknown as Message;
}
