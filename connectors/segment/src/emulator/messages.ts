/**
 * What the emulated source holds: every call Segment accepted, once per messageId (a call
 * sent again with the same messageId is deduped, as Segment does), the calls it answered
 * 200 for and then dropped (what Segment's debugger would show, with the reason), and a log
 * of every request, so a call sent twice shows there even though it is held once.
 */
import { randomUUID } from 'node:crypto';
import { jsonLinesLog } from '@outflow/core/emulator-kit';

/** Segment keeps messageIds shorter than this. */
export const MAX_MESSAGE_ID_LENGTH = 100;
/** The most calls one batch request carries; later ones are dropped. */
export const MAX_BATCH_CALLS = 2500;
const TYPES = new Set(['track', 'identify', 'page', 'screen', 'group', 'alias']);

/**
 * One call as Segment received it (`type`, `messageId`, `userId`, `event`, `properties` …),
 * with the `receivedAt` (ISO 8601) Segment sets when its API takes the call.
 */
export type Call = Record<string, unknown> & { type: string; messageId: string; receivedAt: string };

/** A call answered 200 and then dropped, and why. */
export interface Dropped {
  call: Record<string, unknown>;
  reason: string;
}

/** One request as received: its path, the answer's status, and the messageIds it carried, in order. */
export interface RequestEntry {
  path: string;
  status: number;
  messageIds: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const text = (v: unknown) => typeof v === 'string' && v !== '';

/** Why Segment would drop a call, or undefined when it takes it. */
function dropReason(call: Record<string, unknown>): string | undefined {
  if (!TYPES.has(call['type'] as string)) return `unknown call type ${JSON.stringify(call['type'])}`;
  if (call['type'] === 'alias') return text(call['userId']) && text(call['previousId']) ? undefined : 'an alias needs userId and previousId';
  if (!text(call['userId']) && !text(call['anonymousId'])) return 'no_user_anon_id: the call has neither userId nor anonymousId';
  if (call['type'] === 'track' && !text(call['event'])) return 'a track call needs an event name';
  if (call['type'] === 'group' && !text(call['groupId'])) return 'a group call needs a groupId';
  if (call['messageId'] !== undefined && (typeof call['messageId'] !== 'string' || call['messageId'].length >= MAX_MESSAGE_ID_LENGTH)) {
    return `messageId must be a string shorter than ${MAX_MESSAGE_ID_LENGTH} characters`;
  }
  return undefined;
}

export class MessageStore {
  private readonly accepted = new Map<string, Call>();
  readonly dropped: Dropped[] = [];
  readonly requests: RequestEntry[] = [];

  constructor(private readonly logFile: string | undefined) {
    if (logFile !== undefined) jsonLinesLog.replay<Call>(logFile, 'segment', (call) => this.accepted.set(call.messageId, call));
  }

  /**
   * Takes the calls of one request, in order: each is accepted, deduped (its messageId was
   * accepted before: nothing changes) or dropped with its reason. `knownKey` false drops
   * them all, as Segment does with a write key it does not know.
   */
  take(calls: Record<string, unknown>[], knownKey: boolean): void {
    const fresh: Call[] = [];
    // Segment stamps each call with when its API received it.
    const receivedAt = new Date().toISOString();
    calls.forEach((call, i) => {
      const reason = !knownKey ? 'unknown write key' : i >= MAX_BATCH_CALLS ? `more than ${MAX_BATCH_CALLS} calls in one batch` : dropReason(call);
      if (reason !== undefined) {
        this.dropped.push({ call: structuredClone(call), reason });
        return;
      }
      // Segment gives a call without a messageId one of its own.
      const messageId = typeof call['messageId'] === 'string' ? call['messageId'] : randomUUID();
      if (this.accepted.has(messageId)) return;
      const taken = { ...structuredClone(call), messageId, receivedAt } as Call;
      this.accepted.set(messageId, taken);
      fresh.push(taken);
    });
    // On disk before the answer, so an accepted call survives a restart.
    if (this.logFile !== undefined) jsonLinesLog.append(this.logFile, fresh);
  }

  /** Every call accepted, once per messageId, in the order they were first accepted. */
  calls(): Call[] {
    return [...this.accepted.values()].map((c) => structuredClone(c));
  }
}

/** The messageIds a request body carries, for the request log (whatever else is wrong with it). */
export function messageIdsOf(calls: unknown[]): string[] {
  return calls.flatMap((c) => (isObject(c) && typeof c['messageId'] === 'string' ? [c['messageId']] : []));
}
