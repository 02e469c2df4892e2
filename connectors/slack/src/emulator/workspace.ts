/**
 * The workspace the emulator holds: its channels (which the app's bot user is a member
 * of, which are private or archived) and every message the app posted, kept in a
 * JSON-lines log in `dataDir` so a sandbox survives restarts. The message log is the
 * emulator's write log: tests count what Slack accepted there.
 */
import { jsonLinesLog } from '@outflow/core/emulator-kit';

export interface Channel {
  id: string;
  name: string;
  is_private: boolean;
  is_archived: boolean;
  /** Whether the app's bot user is in the channel: it can post and read history only there. */
  is_member: boolean;
}

/** Metadata an app attaches to a message, hidden from people. */
export interface MessageMetadata {
  event_type: string;
  event_payload: Record<string, unknown>;
}

/** A message as Slack stores it. */
export interface Message {
  /** The channel's id. */
  channel: string;
  /** The message's timestamp, unique in the channel: its id. */
  ts: string;
  text: string;
  blocks?: unknown[];
  metadata?: MessageMetadata;
  thread_ts?: string;
}

/** The channels a new emulator's workspace has. */
export const DEFAULT_CHANNELS: Channel[] = [
  { id: 'C0GENERAL', name: 'general', is_private: false, is_archived: false, is_member: true },
  { id: 'C0ALERTS', name: 'alerts', is_private: false, is_archived: false, is_member: true },
  { id: 'C0SALES', name: 'sales', is_private: false, is_archived: false, is_member: true },
  { id: 'C0RANDOM', name: 'random', is_private: false, is_archived: false, is_member: false },
  { id: 'C0OLDNEWS', name: 'old-news', is_private: false, is_archived: true, is_member: true },
  { id: 'G0FINANCE', name: 'finance', is_private: true, is_archived: false, is_member: true },
  { id: 'G0BOARD', name: 'board', is_private: true, is_archived: false, is_member: false },
];

export const MESSAGES_FILE = 'slack-messages.jsonl';

/** A message timestamp, `seconds.micros`, from microseconds since the epoch. */
const tsOf = (micros: number): string => `${Math.floor(micros / 1e6)}.${String(micros % 1e6).padStart(6, '0')}`;
/** Microseconds since the epoch of a message timestamp; NaN when it is not one. */
export const microsOf = (ts: string): number => (/^\d+\.\d{6}$/.test(ts) ? Number(ts.replace('.', '')) : Number.NaN);

export class Workspace {
  readonly channels: Channel[];
  /** Every message posted, in the order Slack accepted them. */
  readonly messages: Message[] = [];
  private lastMicros = 0;

  constructor(
    channels: Channel[],
    private readonly logFile: string | undefined,
  ) {
    this.channels = structuredClone(channels);
    if (logFile !== undefined) jsonLinesLog.replay<Message>(logFile, 'slack', (m) => this.remember(m));
  }

  /** The channel `ref` names: its id, or its name with or without `#`. */
  find(ref: string): Channel | undefined {
    return this.channels.find((c) => c.id === ref) ?? this.channels.find((c) => `#${c.name}` === ref || c.name === ref);
  }

  /** Posts a message, on disk before it is answered; its `ts` is later than every earlier one. */
  post(message: Omit<Message, 'ts'>): Message {
    const posted = { ...message, ts: tsOf(Math.max(Date.now() * 1000, this.lastMicros + 1)) };
    if (this.logFile !== undefined) jsonLinesLog.append(this.logFile, [posted]);
    this.remember(posted);
    return posted;
  }

  /** The messages of channel `id`, newest first. */
  history(id: string): Message[] {
    return this.messages.filter((m) => m.channel === id).reverse();
  }

  private remember(message: Message): void {
    this.messages.push(message);
    this.lastMicros = Math.max(this.lastMicros, microsOf(message.ts));
  }
}
