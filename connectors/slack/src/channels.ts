import type { ConnectorContext } from '@outflow/core';
import { slackCall } from './client.js';
import type { SlackConfig } from './config.js';

/** A channel as conversations.list reports it. */
export interface ChannelInfo {
  id: string;
  name: string;
  is_private?: boolean;
  is_archived?: boolean;
  is_member?: boolean;
}

const ID = /^[CGD][A-Z0-9]{2,}$/;
/** Channel ids by the reference a sync used (`#alerts`, `alerts`), per connection. */
const known = new WeakMap<object, Map<string, string>>();

function cache(ctx: ConnectorContext<SlackConfig>): Map<string, string> {
  let ids = known.get(ctx);
  if (ids === undefined) known.set(ctx, (ids = new Map()));
  return ids;
}

/** Remembers the id Slack answered for a channel reference (chat.postMessage answers with it). */
export function rememberChannel(ctx: ConnectorContext<SlackConfig>, ref: string, id: string): void {
  cache(ctx).set(ref, id);
}

/** Every public channel, and every private one the app is in, through conversations.list page by page (Tier 2). */
export async function listChannels(ctx: ConnectorContext<SlackConfig>): Promise<ChannelInfo[]> {
  return slackCall(ctx, 'the channel list (conversations.list)', async (client) => {
    const all: ChannelInfo[] = [];
    for await (const page of client.paginate('conversations.list', { types: 'public_channel,private_channel', exclude_archived: true, limit: 200 })) {
      for (const c of (page as { channels?: ChannelInfo[] }).channels ?? []) all.push(c);
    }
    for (const c of all) {
      cache(ctx).set(`#${c.name}`, c.id);
      cache(ctx).set(c.name, c.id);
    }
    return all;
  });
}

/** The id of the channel `ref` names (an id is its own), listing the channels when it is not known yet; undefined when none has that name. */
export async function channelIdOf(ctx: ConnectorContext<SlackConfig>, ref: string): Promise<string | undefined> {
  if (ID.test(ref)) return ref;
  if (!cache(ctx).has(ref)) await listChannels(ctx);
  return cache(ctx).get(ref);
}
