/**
 * API-triggered sends: each event operation is one recipient of `/campaigns/trigger/send`
 * or `/canvas/trigger/send`, and a write's recipients go in one request. Braze answers the
 * request as a whole (one `dispatch_id`, or a fatal error): no recipient is refused alone.
 */
import type { Operation, Row } from '@outflow/core';
import { aliasField, objectField, onlyKnown, PayloadError, textField } from './payload.js';

export interface SendRequest {
  /** The request body, without recipients when none could be made. */
  body: Row;
  /** Per operation: its index among the recipients, or why it was not sent. */
  parts: (number | { reason: string })[];
}

/** The payload fields of a recipient; the properties field is named per kind, as Braze names it. */
function fieldsOf(kind: 'campaign' | 'canvas'): string[] {
  return ['external_user_id', 'user_alias', kind === 'campaign' ? 'trigger_properties' : 'canvas_entry_properties', 'attributes', 'send_to_existing_only'];
}

function recipientOf(kind: 'campaign' | 'canvas', op: Operation): Row {
  const where = `a ${kind} recipient`;
  if (op.kind !== 'event') throw new PayloadError(`Braze takes events (to.mode: event), not a ${op.kind}`);
  const fields = op.fields ?? {};
  const allowed = fieldsOf(kind);
  onlyKnown(fields, allowed, where);
  const externalUserId = textField(fields, 'external_user_id', where);
  const alias = aliasField(fields, 'user_alias', where);
  if ((externalUserId === undefined) === (alias === undefined)) throw new PayloadError(`${where} needs exactly one of external_user_id and user_alias`);
  const recipient: Row = externalUserId === undefined ? { user_alias: alias! } : { external_user_id: externalUserId };
  const properties = objectField(fields, allowed[2]!, where);
  if (properties !== undefined) recipient[allowed[2]!] = properties;
  const attributes = objectField(fields, 'attributes', where);
  if (attributes !== undefined) recipient['attributes'] = attributes;
  const existingOnly = fields['send_to_existing_only'];
  if (existingOnly !== undefined && existingOnly !== null) {
    if (typeof existingOnly !== 'boolean') throw new PayloadError(`${where}: send_to_existing_only must be true or false, not ${JSON.stringify(existingOnly)}`);
    if (!existingOnly && attributes === undefined) throw new PayloadError(`${where}: send_to_existing_only false needs attributes for the user it creates`);
    if (!existingOnly && alias !== undefined) throw new PayloadError(`${where}: send_to_existing_only cannot be used with a user_alias`);
    recipient['send_to_existing_only'] = existingOnly;
  }
  return recipient;
}

/** The triggered send of `ops` to campaign or Canvas `id`. */
export function sendRequest(kind: 'campaign' | 'canvas', id: string, ops: Operation[]): SendRequest {
  const recipients: Row[] = [];
  const parts = ops.map((op): number | { reason: string } => {
    try {
      return recipients.push(recipientOf(kind, op)) - 1;
    } catch (err) {
      if (err instanceof PayloadError) return { reason: err.message };
      throw err;
    }
  });
  return { body: { [kind === 'campaign' ? 'campaign_id' : 'canvas_id']: id, broadcast: false, recipients }, parts };
}
