/**
 * Intercom's contacts as the REST API (2.x) describes them: users and leads, a unique
 * `external_id`, an email unique among users, custom attributes checked against the
 * workspace's data attributes, archiving (an archived contact answers 404 to reads and
 * updates and is left out of search, but still holds its email and external_id), and a log
 * of every write applied.
 */
import { ChangeLog, EmulatorRefusal } from '@outflow/core/emulator-kit';

export type DataType = 'string' | 'integer' | 'float' | 'boolean' | 'date';
/** A contact data attribute, standard or custom, as GET /data_attributes lists it. */
export interface Attribute {
  name: string;
  data_type: DataType;
  custom: boolean;
  api_writable: boolean;
  /** The allowed values of a list attribute. */
  options?: string[];
}
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


const std = (name: string, data_type: DataType, api_writable = true): Attribute => ({ name, data_type, custom: false, api_writable });
/** The standard contact attributes the API writes at the top level of a contact. */
export const STANDARD: Attribute[] = [
  std('role', 'string'),
  std('external_id', 'string'),
  std('email', 'string'),
  std('phone', 'string'),
  std('name', 'string'),
  std('avatar', 'string'),
  std('owner_id', 'integer'),
  std('signed_up_at', 'date'),
  std('last_seen_at', 'date'),
  std('unsubscribed_from_emails', 'boolean'),
  std('id', 'string', false),
  std('created_at', 'date', false),
  std('updated_at', 'date', false),
];

/** Whether `value` is of Intercom's `type` (dates are UNIX timestamps in seconds). */
export function isOfType(type: DataType, value: Json): boolean {
  if (type === 'string') return typeof value === 'string';
  if (type === 'boolean') return typeof value === 'boolean';
  if (type === 'float') return typeof value === 'number' && Number.isFinite(value);
  return Number.isSafeInteger(value);
}

export class ContactStore {
  readonly contacts = new Map<string, Contact>();
  readonly archived = new Set<string>();
  /** Every write applied, in order; replayed from `file` at start. */
  readonly log: ChangeLog<Write>;
  private seq = 0;

  constructor(
    file: string | undefined,
    readonly custom: Attribute[],
  ) {
    this.log = new ChangeLog<Write>(file, 'intercom', (w) => this.apply(w));
  }

  /** A live (not archived) contact, or 404 as Intercom answers it. */
  get(id: string): Contact {
    const c = this.contacts.get(id);
    if (c === undefined || this.archived.has(id)) throw new EmulatorRefusal(404, 'not_found', 'Contact Not Found');
    return c;
  }

  create(body: Record<string, Json>): Contact {
    const fields = this.validate(body);
    const role = (fields['role'] ?? 'user') as Contact['role'];
    if (role === 'user' && !fields['email'] && !fields['external_id']) {
      throw new EmulatorRefusal(400, 'parameter_not_found', 'A user requires an email or an external_id');
    }
    const now = Math.floor(Date.now() / 1000);
    const id = (now.toString(16) + (++this.seq + this.contacts.size).toString(16).padStart(16, '0')).slice(-24);
    const contact: Contact = { type: 'contact', id, role, external_id: null, email: null, phone: null, name: null, avatar: null, owner_id: null,
      signed_up_at: null, last_seen_at: null, unsubscribed_from_emails: false, ...fields, custom_attributes: {}, created_at: now, updated_at: now };
    this.setCustom(contact, body['custom_attributes']);
    this.checkUnique(contact);
    return this.record('create', contact);
  }

  update(id: string, body: Record<string, Json>): Contact {
    const contact = structuredClone(this.get(id));
    Object.assign(contact, this.validate(body), { updated_at: Math.floor(Date.now() / 1000) });
    this.setCustom(contact, body['custom_attributes']);
    this.checkUnique(contact);
    return this.record('update', contact);
  }

  /** Archives or unarchives a contact by id; archived contacts are addressable only here and by DELETE. */
  setArchived(id: string, archived: boolean): Contact {
    const contact = this.contacts.get(id);
    if (contact === undefined) throw new EmulatorRefusal(404, 'not_found', 'Contact Not Found');
    return this.record(archived ? 'archive' : 'unarchive', contact);
  }

  remove(id: string): Contact {
    const contact = this.contacts.get(id);
    if (contact === undefined) throw new EmulatorRefusal(404, 'not_found', 'Contact Not Found');
    this.log.add({ op: 'delete', id, at: Date.now() });
    return contact;
  }

  /** The live contacts, oldest first. */
  live(): Contact[] {
    return [...this.contacts.values()].filter((c) => !this.archived.has(c.id));
  }

  private record(op: Write['op'], contact: Contact): Contact {
    this.log.add({ op, id: contact.id, at: Date.now(), contact: structuredClone(contact) });
    return contact;
  }

  private apply(w: Write): void {
    if (w.contact === undefined) this.contacts.delete(w.id);
    else this.contacts.set(w.id, structuredClone(w.contact));
    if (w.op === 'archive') this.archived.add(w.id);
    if (w.op === 'unarchive' || w.op === 'delete') this.archived.delete(w.id);
  }

  /** The writable standard fields of a body, type-checked (null clears one). */
  private validate(body: Record<string, Json>): Record<string, Json> {
    const out: Record<string, Json> = {};
    for (const a of STANDARD.filter((s) => s.api_writable && s.name in body)) {
      const value = body[a.name]!;
      if (value !== null && !isOfType(a.data_type, value)) throw new EmulatorRefusal(400, 'type_mismatch', `${a.name} must be of type ${a.data_type}`);
      out[a.name] = value;
    }
    if ('role' in out && out['role'] !== 'user' && out['role'] !== 'lead') throw new EmulatorRefusal(400, 'parameter_invalid', 'role must be one of user, lead');
    return out;
  }

  private setCustom(contact: Contact, given: Json | undefined): void {
    if (given === undefined || given === null) return;
    if (typeof given !== 'object' || Array.isArray(given)) throw new EmulatorRefusal(400, 'type_mismatch', 'custom_attributes must be an object');
    for (const [name, value] of Object.entries(given)) {
      const attr = this.custom.find((a) => a.name === name);
      if (attr === undefined) throw new EmulatorRefusal(400, 'parameter_not_found', `Custom attribute '${name}' does not exist`);
      if (value !== null && !isOfType(attr.data_type, value)) {
        throw new EmulatorRefusal(400, 'parameter_invalid', `Custom attribute '${name}' must be of type ${attr.data_type}`);
      }
      if (value !== null && attr.options !== undefined && !attr.options.includes(value as string)) {
        throw new EmulatorRefusal(400, 'parameter_invalid', `'${String(value)}' is not an allowed value of the list attribute '${name}'`);
      }
      contact.custom_attributes[name] = value;
    }
  }

  /** external_id is unique among all contacts, email among users; archived ones hold theirs too. */
  private checkUnique(contact: Contact): void {
    for (const other of this.contacts.values()) {
      if (other.id === contact.id) continue;
      const sameId = contact['external_id'] !== null && other['external_id'] === contact['external_id'];
      const email = typeof contact['email'] === 'string' ? contact['email'].toLowerCase() : null;
      const sameEmail = email !== null && contact.role === 'user' && other.role === 'user' && String(other['email']).toLowerCase() === email;
      if (!sameId && !sameEmail) continue;
      const which = this.archived.has(other.id) ? 'An archived contact' : 'A contact';
      throw new EmulatorRefusal(409, 'conflict', `${which} matching those details already exists with id=${other.id}`);
    }
  }
}
