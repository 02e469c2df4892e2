/**
 * Slack's rate limits as the emulator enforces them. Web API methods are limited per
 * method, per app and workspace (one token here), in tiers counted per minute:
 * `auth.test` and Tier 4 methods 100+, Tier 3 50+, Tier 2 20+. `chat.postMessage` has its
 * own rule: about one message per second per channel, short bursts allowed, under a
 * workspace-wide limit. Slack gives no figure for the burst nor for the workspace; the
 * emulator's are below and can be changed per emulator. A refused request is not counted.
 */
import type { RateLimit } from '@outflow/core';
import { RollingWindow, type WindowRefusal } from '@outflow/core/emulator-kit';

export interface SlackLimits {
  /** Per-method limits by method name (`conversations.list`: Tier 2, …); a method absent here is not limited. */
  tiers: Record<string, RateLimit>;
  /** `chat.postMessage` to one channel: one a second on average, a burst of at most `requests`. */
  postPerChannel: RateLimit;
  /** `chat.postMessage` across the whole workspace. */
  postPerWorkspace: RateLimit;
}

const MINUTE = 60_000;

/** The emulator's limits unless told otherwise: a customer-built (internal) app's tiers. */
export const DEFAULT_LIMITS: SlackLimits = {
  tiers: {
    'auth.test': { requests: 100, perMs: MINUTE },
    'conversations.list': { requests: 20, perMs: MINUTE },
    // Tier 3 for internal and Marketplace apps; Slack limits other distributed apps to
    // 1 a minute (and 15 messages a page), which `limits` can reproduce.
    'conversations.history': { requests: 50, perMs: MINUTE },
  },
  postPerChannel: { requests: 5, perMs: 5_000 },
  postPerWorkspace: { requests: 300, perMs: MINUTE },
};

/** Every window the emulator keeps: one per limited method, and one per channel posted to. */
export class RateTiers {
  private readonly methods = new Map<string, RollingWindow>();
  private readonly channels = new Map<string, RollingWindow>();
  private readonly workspace: RollingWindow;

  constructor(readonly limits: SlackLimits) {
    for (const [method, limit] of Object.entries(limits.tiers)) this.methods.set(method, new RollingWindow(limit));
    this.workspace = new RollingWindow(limits.postPerWorkspace);
  }

  /**
   * Counts a call of `method` (for `chat.postMessage`, to `channel`: the id it names, or
   * the name as given), or says which limit refused it and for how long.
   */
  admit(method: string, channel: string | undefined, now = Date.now()): WindowRefusal | null {
    if (method !== 'chat.postMessage') return this.methods.get(method)?.admit(now) ?? null;
    const key = channel ?? '';
    let perChannel = this.channels.get(key);
    if (perChannel === undefined) this.channels.set(key, (perChannel = new RollingWindow(this.limits.postPerChannel)));
    // Both windows must have room before either counts the message.
    if (this.workspace.remaining(now) === 0) return this.workspace.admit(now);
    if (perChannel.remaining(now) === 0) return perChannel.admit(now);
    this.workspace.admit(now);
    return perChannel.admit(now);
  }
}
