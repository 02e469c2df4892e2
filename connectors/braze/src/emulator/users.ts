/**
 * The emulated workspace's users and what `/users/track` does to them: at most 75 objects
 * in each of `attributes`, `events` and `purchases` (more is fatal: 400), each object naming
 * its user; an object Braze cannot take is listed in the answer's `errors` as
 * `{ type, input_array, index }` while the rest is processed. Attributes merge into the user
 * (created when new); every event and purchase is kept, a repeat as a new one, as Braze does.
 */
import { randomUUID } from 'node:crypto';
import { jsonLinesLog } from '@outflow/core/emulator-kit';

export const MAX_TRACK_OBJECTS = 75;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** A user profile: the identifiers it was created with and its attributes. */
export interface User {
  id: string;
  identifiers: JsonObject;
  attributes: JsonObject;
}

/** An event or a purchase as Braze kept it, with the user it was recorded on. */
export interface Recorded {
  id: string;
  user: string;
  object: JsonObject;
}

/** One non-fatal refusal of a /users/track answer. */
export interface MinorError {
  type: string;
  input_array: 'attributes' | 'events' | 'purchases';
  index: number;
}

/** A request refused as a whole, with its status and Braze's message. */
export class Fatal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

type LogEntry = { t: 'user'; user: User } | { t: 'event'; event: Recorded } | { t: 'purchase'; purchase: Recorded };

const IDENTIFIERS = ['external_id', 'braze_id', 'email', 'phone', 'user_alias'];
export const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);
const text = (v: unknown): v is string => typeof v === 'string' && v !== '';
const isTime = (v: unknown) => typeof v === 'string' && !Number.isNaN(Date.parse(v));

/** The key a user is found by: its first identifier. */
function identityOf(object: JsonObject): string | undefined {
  for (const name of IDENTIFIERS) {
    const v = object[name];
    if (name === 'user_alias') {
      if (isObject(v) && text(v['alias_name']) && text(v['alias_label'])) return `alias:${v['alias_label']}:${v['alias_name']}`;
    } else if (text(v)) return `${name}:${v}`;
  }
  return undefined;
}

function eventProblem(e: JsonObject): string | undefined {
  if (!text(e['name'])) return "'name' is required";
  if (!isTime(e['time'])) return "'time' must be a valid ISO 8601 date-time";
  if (e['properties'] !== undefined && !isObject(e['properties'])) return "'properties' must be an object";
  return undefined;
}

function purchaseProblem(p: JsonObject): string | undefined {
  if (!text(p['product_id'])) return "'product_id' is required";
  if (typeof p['currency'] !== 'string' || !/^[A-Z]{3}$/.test(p['currency'])) return "'currency' must be a valid ISO 4217 currency code";
  if (typeof p['price'] !== 'number') return "'price' must be a number";
  if (p['quantity'] !== undefined && !(Number.isInteger(p['quantity']) && (p['quantity'] as number) >= 1 && (p['quantity'] as number) <= 100)) {
    return "'quantity' must be an integer from 1 to 100";
  }
  if (!isTime(p['time'])) return "'time' must be a valid ISO 8601 date-time";
  if (p['properties'] !== undefined && !isObject(p['properties'])) return "'properties' must be an object";
  return undefined;
}

export class UserStore {
  readonly users = new Map<string, User>();
  readonly events: Recorded[] = [];
  readonly purchases: Recorded[] = [];

  /** `blocked`: external_ids Braze's spam blocking refuses (dummy users). */
  constructor(
    private readonly logFile: string | undefined,
    private readonly blocked: ReadonlySet<string> = new Set(),
  ) {
    if (logFile !== undefined) jsonLinesLog.replay<LogEntry>(logFile, 'braze', (entry) => this.commit(entry));
  }

  /** Applies a /users/track body; the answer's counts and its non-fatal errors, or a {@link Fatal}. */
  track(body: unknown): JsonObject {
    if (!isObject(body)) throw new Fatal(400, 'Bad Request: the body must be a JSON object');
    const arrays = { attributes: body['attributes'], events: body['events'], purchases: body['purchases'] };
    for (const [name, list] of Object.entries(arrays)) {
      if (list === undefined) continue;
      if (!Array.isArray(list)) throw new Fatal(400, `Bad Request: '${name}' must be an array`);
      if (list.length > MAX_TRACK_OBJECTS) throw new Fatal(400, 'Max Input Length Exceeded');
    }
    const errors: MinorError[] = [];
    const entries: LogEntry[] = [];
    const take = (input_array: MinorError['input_array'], list: Json[] | undefined, problem: (o: JsonObject) => string | undefined, apply: (o: JsonObject, user: string) => void) => {
      (list ?? []).forEach((object, index) => {
        const user = isObject(object) ? identityOf(object) : undefined;
        const why = !isObject(object)
          ? 'must be an object'
          : user === undefined
            ? "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
            : this.blocked.has(String(object['external_id']))
              ? 'provided external_id is blacklisted and disallowed'
              : problem(object);
        if (why !== undefined) errors.push({ type: why, input_array, index });
        else apply(object as JsonObject, user!);
      });
    };
    take('attributes', arrays.attributes as Json[] | undefined, () => undefined, (o, key) => {
      const user = this.userFor(key, o, entries);
      for (const [name, value] of Object.entries(o)) if (!IDENTIFIERS.includes(name)) user.attributes[name] = value;
      this.log(entries, { t: 'user', user: structuredClone(user) });
    });
    take('events', arrays.events as Json[] | undefined, eventProblem, (o, key) => {
      this.log(entries, { t: 'event', event: { id: randomUUID(), user: this.userFor(key, o, entries).id, object: structuredClone(o) } });
    });
    take('purchases', arrays.purchases as Json[] | undefined, purchaseProblem, (o, key) => {
      this.log(entries, { t: 'purchase', purchase: { id: randomUUID(), user: this.userFor(key, o, entries).id, object: structuredClone(o) } });
    });
    // On disk before the answer, so what was processed survives a restart.
    if (this.logFile !== undefined) jsonLinesLog.append(this.logFile, entries);
    const count = (name: keyof typeof arrays, done: number) => (arrays[name] === undefined ? {} : { [`${name}_processed`]: done });
    const failed = (name: MinorError['input_array']) => errors.filter((e) => e.input_array === name).length;
    const listed = (name: keyof typeof arrays) => (arrays[name] as Json[] | undefined)?.length ?? 0;
    return {
      message: 'success',
      ...count('attributes', listed('attributes') - failed('attributes')),
      ...count('events', listed('events') - failed('events')),
      ...count('purchases', listed('purchases') - failed('purchases')),
      ...(errors.length === 0 ? {} : { errors: errors as unknown as Json }),
    };
  }

  /** The user with identity `key`, created (with `object`'s identifiers) when there is none. */
  private userFor(key: string, object: JsonObject, entries: LogEntry[]): User {
    const found = this.users.get(key);
    if (found !== undefined) return found;
    const identifiers = Object.fromEntries(IDENTIFIERS.filter((n) => object[n] !== undefined).map((n) => [n, object[n]!]));
    const user: User = { id: randomUUID().replaceAll('-', '').slice(0, 24), identifiers, attributes: {} };
    this.users.set(key, user);
    this.log(entries, { t: 'user', user: structuredClone(user) });
    return user;
  }

  /** The user a recipient's external_user_id or user_alias names, if there is one. */
  find(recipient: JsonObject): User | undefined {
    const key = text(recipient['external_user_id']) ? `external_id:${recipient['external_user_id']}` : identityOf(recipient);
    return key === undefined ? undefined : this.users.get(key);
  }

  private log(entries: LogEntry[], entry: LogEntry): void {
    entries.push(entry);
    this.commit(entry);
  }

  /** Applies one logged change to memory: live, and when replaying the log at start. */
  private commit(entry: LogEntry): void {
    if (entry.t === 'event') this.events.push(entry.event);
    else if (entry.t === 'purchase') this.purchases.push(entry.purchase);
    else {
      const key = identityOf(entry.user.identifiers)!;
      const live = this.users.get(key);
      if (live === undefined) this.users.set(key, structuredClone(entry.user));
      else Object.assign(live, structuredClone(entry.user));
    }
  }
}
