/**
 * API-triggered sends: `/campaigns/trigger/send` and `/canvas/trigger/send` for the
 * campaigns and Canvases the workspace has. A request is answered whole — 201 with one
 * `dispatch_id`, or a fatal 400 (an unknown id, no recipients, more than 50, a recipient
 * without exactly one of external_user_id and user_alias, properties that are not an
 * object). A recipient's `attributes` are applied first; a recipient with no profile gets
 * nothing unless `send_to_existing_only` is false (then the profile is created). Every
 * recipient Braze accepted is logged, with whether a message went out; Braze has no dedupe
 * key for sends, so a repeat is a second send.
 */
import { randomUUID } from 'node:crypto';
import { jsonLinesLog } from '@outflow/core/emulator-kit';
import { Fatal, isObject, type Json, type UserStore } from './users.js';

export const MAX_RECIPIENTS = 50;

/** One recipient of an accepted triggered send. */
export interface Send {
  kind: 'campaign' | 'canvas';
  /** The campaign or Canvas id. */
  id: string;
  dispatchId: string;
  recipient: { [key: string]: Json };
  /** Whether a message went out: false for a recipient with no profile (send_to_existing_only). */
  sent: boolean;
  /** When Braze accepted the send, in milliseconds since the epoch. */
  at: number;
}

export class Messaging {
  readonly sends: Send[] = [];

  constructor(
    private readonly users: UserStore,
    private readonly known: { campaign: Set<string>; canvas: Set<string> },
    private readonly logFile: string | undefined,
  ) {
    if (logFile !== undefined) jsonLinesLog.replay<Send>(logFile, 'braze', (send) => this.sends.push(send));
  }

  /** Applies a triggered send; the answer, or a {@link Fatal}. */
  trigger(kind: 'campaign' | 'canvas', body: unknown): { [key: string]: Json } {
    const idField = kind === 'campaign' ? 'campaign_id' : 'canvas_id';
    const propertiesField = kind === 'campaign' ? 'trigger_properties' : 'canvas_entry_properties';
    if (!isObject(body)) throw new Fatal(400, 'Bad Request: the body must be a JSON object');
    const id = body[idField];
    if (typeof id !== 'string' || !this.known[kind].has(id)) throw new Fatal(400, kind === 'campaign' ? 'Invalid Campaign ID' : 'Invalid Canvas ID');
    if (body[propertiesField] !== undefined && !isObject(body[propertiesField])) throw new Fatal(400, `Bad Request: '${propertiesField}' must be an object`);
    const recipients = body['recipients'];
    if (body['broadcast'] === true) throw new Fatal(400, 'Bad Request: this workspace sends to recipients only, not broadcasts');
    if (!Array.isArray(recipients) || recipients.length === 0) throw new Fatal(400, 'No Recipients');
    if (recipients.length > MAX_RECIPIENTS) throw new Fatal(400, 'The max number of external_ids and aliases per request was exceeded');
    recipients.forEach((r, i) => {
      if (!isObject(r)) throw new Fatal(400, `Bad Request: recipients[${i}] must be an object`);
      if ((r['external_user_id'] === undefined) === (r['user_alias'] === undefined)) throw new Fatal(400, `Bad Request: recipients[${i}] needs exactly one of external_user_id and user_alias`);
      if (r[propertiesField] !== undefined && !isObject(r[propertiesField])) throw new Fatal(400, `Bad Request: recipients[${i}].${propertiesField} must be an object`);
      if (r['attributes'] !== undefined && !isObject(r['attributes'])) throw new Fatal(400, `Bad Request: recipients[${i}].attributes must be an object`);
      if (r['send_to_existing_only'] === false && (r['attributes'] === undefined || r['user_alias'] !== undefined)) {
        throw new Fatal(400, `Bad Request: recipients[${i}]: send_to_existing_only false needs attributes and an external_user_id`);
      }
    });
    const dispatchId = randomUUID().replaceAll('-', '');
    const at = Date.now();
    const sends = (recipients as { [key: string]: Json }[]).map((r): Send => {
      const existing = this.users.find(r) !== undefined;
      if (isObject(r['attributes']) && (existing || r['send_to_existing_only'] === false)) {
        const who = r['external_user_id'] === undefined ? { user_alias: r['user_alias']! } : { external_id: r['external_user_id']! };
        this.users.track({ attributes: [{ ...r['attributes'], ...who }] });
      }
      return { kind, id, dispatchId, recipient: structuredClone(r), sent: this.users.find(r) !== undefined, at };
    });
    this.sends.push(...sends);
    // On disk before the answer, so an accepted send survives a restart.
    if (this.logFile !== undefined) jsonLinesLog.append(this.logFile, sends);
    return { dispatch_id: dispatchId, message: 'success' };
  }
}
