/**
 * Intercom's side of the request pipeline (the kit's EmulatorApp runs it): bearer auth
 * (401 carries no rate-limit headers), the Intercom-Version header, the app's rate limit in
 * fixed 10-second windows (X-RateLimit-Limit / -Remaining / -Reset on every authenticated
 * answer, 429 rate_limit_exceeded when spent), refusals as an `error.list`, and the routes.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { bearerAuth, EmulatorRefusal, jsonObject, type EmulatorApp } from '@outflow/core/emulator-kit';
import { STANDARD, type ContactStore, type Json } from './contacts.js';
import { search } from './search.js';

/** The versions intercom-client 7 can ask for in its Intercom-Version header. */
const VERSIONS = new Set(['1.0', '1.1', '1.2', '1.3', '1.4', '2.0', '2.1', '2.2', '2.3', '2.4', '2.5', '2.6', '2.7', '2.8', '2.9', '2.10', '2.11', '2.12', '2.13', '2.14', 'Unstable']);
export const MAX_BODY_BYTES = 5 * 1024 * 1024;

/** Intercom's codes for the kit's own refusals. */
const CODES: Record<string, string> = { rate_limited: 'rate_limit_exceeded', unavailable: 'service_unavailable', too_large: 'client_error', method_not_allowed: 'not_found' };

/** Intercom's error body: an `error.list`. */
export const errorList = (_status: number, code: string, message: string): Json => ({ type: 'error.list', request_id: randomUUID(), errors: [{ code: CODES[code] ?? code, message }] });

/** The checks before the rate limit: the token, then the API version asked for. */
export const checks = (token: string) => [
  bearerAuth(token, 'Access Token Invalid'),
  (req: IncomingMessage) => {
    const version = req.headers['intercom-version'];
    return version === undefined || VERSIONS.has(String(version)) ? undefined : new EmulatorRefusal(400, 'intercom_version_invalid', `The requested version ${String(version)} does not exist`);
  },
];

const object = (body: unknown) => jsonObject(body) as Record<string, Json>;
const ref = (c: { id: string; external_id?: Json }, extra: Record<string, Json>): Json => ({ type: 'contact', id: c.id, external_id: c.external_id ?? null, ...extra });

/** The contacts API and the workspace's data attributes. */
export function route(app: EmulatorApp, s: ContactStore): void {
  app
    .on('POST', '/contacts', ({ body }) => ({ body: s.create(object(body)), write: true }))
    .on('POST', '/contacts/search', ({ body }) => ({ body: search(body as Json, s.table.live(), s.custom) }))
    .on('GET', '/contacts/:id', ({ params }) => ({ body: s.get(params['id']!) }))
    .on('PUT', '/contacts/:id', ({ params, body }) => ({ body: s.update(params['id']!, object(body)), write: true }))
    .on('DELETE', '/contacts/:id', ({ params }) => ({ body: ref(s.remove(params['id']!), { deleted: true }), write: true }))
    .on('POST', '/contacts/:id/archive', ({ params }) => ({ body: ref(s.setArchived(params['id']!, true), { archived: true }), write: true }))
    .on('POST', '/contacts/:id/unarchive', ({ params }) => ({ body: ref(s.setArchived(params['id']!, false), { archived: false }), write: true }))
    .on('GET', '/data_attributes', ({ query }) => {
      const attrs = (query.get('model') ?? 'contact') === 'contact' ? [...STANDARD, ...s.custom] : [];
      const data = attrs.map((a) => ({
        type: 'data_attribute', model: 'contact', name: a.name, full_name: a.custom ? `custom_attributes.${a.name}` : a.name, label: a.name, description: '',
        data_type: a.type, ...(a.options ? { options: a.options } : {}), api_writable: !a.readOnly, ui_writable: !a.readOnly, messenger_writable: false, custom: a.custom === true, archived: false,
      }));
      return { body: { type: 'list', data } };
    });
}
