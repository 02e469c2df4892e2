/**
 * Intercom's contacts as the REST API (2.x) describes them: users and leads, a unique
 * `external_id`, an email unique among users, custom attributes checked against the
 * workspace's data attributes, archiving (an archived contact answers 404 to reads and
 * updates and is left out of search, but still holds its email and external_id), and a log
 * of every write applied.
 */
import { ChangeLog, checkValues, EmulatorRefusal, RecordTable, type Attribute, type AttributeIssue } from '@outflow/core/emulator-kit';

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
export interface Contact {
  type: 'contact';
  id: string;
  role: 'user' | 'lead';
  [field: string]: Json;
  custom_attributes: Record<string, Json>;
  created_at: number;
  updated_at: number;
}
/** One write applied through the API, in order; `contact` is the record after it (absent for a delete). */
export interface Write {
  op: 'create' | 'update' | 'archive' | 'unarchive' | 'delete';
  id: string;
  at: number;
  contact?: Contact;
}

const std = (name: string, type: Attribute['type'], readOnly = false): Attribute => ({ name, type, readOnly });
/** The standard contact attributes (dates are UNIX timestamps in seconds), at the top level of a contact. */
export const STANDARD: Attribute[] = [
  ...['role', 'external_id', 'email', 'phone', 'name', 'avatar'].map((n) => std(n, 'string')),
  std('owner_id', 'integer'),
  std('signed_up_at', 'date'),
  std('last_seen_at', 'date'),
  std('unsubscribed_from_emails', 'boolean'),
  std('id', 'string', true),
  std('created_at', 'date', true),
  std('updated_at', 'date', true),
];
const WRITABLE = STANDARD.filter((a) => !a.readOnly).map((a) => a.name);

const now = () => Math.floor(Date.now() / 1000);

/** Intercom's refusal of a custom attribute's value (a standard field of the wrong type is a `type_mismatch`). */
function refusal(custom: boolean, issue: AttributeIssue, name: string, value: unknown, attr: Attribute | undefined): EmulatorRefusal {
  if (!custom) return new EmulatorRefusal(400, 'type_mismatch', `${name} must be of type ${attr!.type}`);
  if (issue === 'unknown') return new EmulatorRefusal(400, 'parameter_not_found', `Custom attribute '${name}' does not exist`);
  if (issue === 'option') return new EmulatorRefusal(400, 'parameter_invalid', `'${String(value)}' is not an allowed value of the list attribute '${name}'`);
  return new EmulatorRefusal(400, 'parameter_invalid', `Custom attribute '${name}' ${issue === 'type' ? `must be of type ${attr!.type}` : 'is not writable'}`);
}

export class ContactStore {
  /** external_id is unique among all contacts, email among users; archived ones hold theirs too. */
  readonly table = new RecordTable<Contact>({
    external_id: (c) => (c['external_id'] === null ? undefined : String(c['external_id'])),
    email: (c) => (c.role === 'user' && typeof c['email'] === 'string' ? c['email'].toLowerCase() : undefined),
  });
  /** Every write applied, in order; replayed from `file` at start. */
  readonly log: ChangeLog<Write>;
  private seq = 0;

  constructor(
    file: string | undefined,
    readonly custom: Attribute[],
  ) {
    this.log = new ChangeLog<Write>(file, 'intercom', (w) => {
      if (w.contact === undefined) this.table.delete(w.id);
      else this.table.put(structuredClone(w.contact));
      this.table.setArchived(w.id, w.op === 'archive' || (w.op !== 'unarchive' && this.table.isArchived(w.id)));
    });
  }

  /** A contact (a live one unless `archived` is true), or 404 as Intercom answers it. */
  get(id: string, archived = false): Contact {
    const c = this.table.get(id);
    if (c === undefined || (!archived && this.table.isArchived(id))) throw new EmulatorRefusal(404, 'not_found', 'Contact Not Found');
    return c;
  }

  create(body: Record<string, Json>): Contact {
    const fields = this.validate(body);
    const role = (fields['role'] ?? 'user') as Contact['role'];
    if (role === 'user' && !fields['email'] && !fields['external_id']) {
      throw new EmulatorRefusal(400, 'parameter_not_found', 'A user requires an email or an external_id');
    }
    const at = now();
    const id = (at.toString(16) + (++this.seq + this.table.size).toString(16).padStart(16, '0')).slice(-24);
    const contact: Contact = { type: 'contact', id, role, external_id: null, email: null, phone: null, name: null, avatar: null, owner_id: null,
      signed_up_at: null, last_seen_at: null, unsubscribed_from_emails: false, ...fields, custom_attributes: {}, created_at: at, updated_at: at };
    return this.record('create', contact, body['custom_attributes']);
  }

  update(id: string, body: Record<string, Json>): Contact {
    return this.record('update', { ...structuredClone(this.get(id)), ...this.validate(body), updated_at: now() }, body['custom_attributes']);
  }

  /** Archives or unarchives a contact by id; archived contacts are addressable only here and by DELETE. */
  setArchived(id: string, archived: boolean): Contact {
    return this.record(archived ? 'archive' : 'unarchive', this.get(id, true));
  }

  remove(id: string): Contact {
    const contact = this.get(id, true);
    this.log.add({ op: 'delete', id, at: Date.now() });
    return contact;
  }

  private record(op: Write['op'], contact: Contact, custom?: Json): Contact {
    if (custom !== undefined && custom !== null) Object.assign(contact.custom_attributes, this.check(custom, true));
    const clash = this.table.clash(contact);
    if (clash !== undefined) {
      const which = this.table.isArchived(clash.id) ? 'An archived contact' : 'A contact';
      throw new EmulatorRefusal(409, 'conflict', `${which} matching those details already exists with id=${clash.id}`);
    }
    this.log.add({ op, id: contact.id, at: Date.now(), contact: structuredClone(contact) });
    return contact;
  }

  /** The writable standard fields of a body, type-checked (null clears one); other fields are ignored. */
  private validate(body: Record<string, Json>): Record<string, Json> {
    const out = this.check(Object.fromEntries(WRITABLE.filter((n) => n in body).map((n) => [n, body[n]!])), false);
    if ('role' in out && out['role'] !== 'user' && out['role'] !== 'lead') throw new EmulatorRefusal(400, 'parameter_invalid', 'role must be one of user, lead');
    return out;
  }

  /** Values checked against the standard or the workspace's custom attributes; the first refusal is thrown. */
  private check(values: Json, custom: boolean): Record<string, Json> {
    if (typeof values !== 'object' || values === null || Array.isArray(values)) throw new EmulatorRefusal(400, 'type_mismatch', 'custom_attributes must be an object');
    const attrs = custom ? this.custom : STANDARD;
    const checked = checkValues<Attribute, EmulatorRefusal>(values, { find: (n) => attrs.find((a) => a.name === n), problem: (...p) => refusal(custom, ...p) });
    if ('problems' in checked) throw checked.problems[0]!;
    return checked.values as Record<string, Json>;
  }
}
