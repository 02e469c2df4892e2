import { eventAcceptance } from '@outflow/testing';
import connector, { type SlackConfig } from '../src/index.js';
import { start, type SlackEmulator } from '../src/emulator/index.js';

const CHANNEL = '#alerts';
/** The id the emulator's workspace gives #alerts. */
const CHANNEL_ID = 'C0ALERTS';
/** Short, so the timeout and lost-answer checks wait seconds, not the default thirty. */
const TIMEOUT_MS = 1_500;
let emulator: SlackEmulator;

// The event-destination contract, checked against the emulator: each event posted once,
// 429s with Retry-After, 5xx and lost answers resolved by lookup (idempotency none), a
// refused message as a row error, and the declared limits against the enforced ones.
eventAcceptance<SlackConfig>({
  connector,
  object: CHANNEL,
  async setup() {
    emulator = await start();
    return { ...emulator.config, timeoutMs: TIMEOUT_MS };
  },
  teardown: () => emulator.stop(),
  badConfigs: (config) => [
    { name: 'a bot token Slack refuses', config: { ...config, token: 'xoxb-someone-elses-token' } },
    // Port 9 (discard) has no listener on loopback: the connection is refused.
    { name: 'an API that is not listening', config: { ...config, slackApiUrl: 'http://127.0.0.1:9/api/' } },
  ],
  payload: (marker) => ({ text: marker, unfurl_links: false }),
  // The emulator's own log of posted messages: one entry per message Slack accepted.
  delivered: async () => emulator.messages().filter((m) => m.channel === CHANNEL_ID).map((m) => ({ marker: m.text, payload: { channel: m.channel, ts: m.ts } })),
  badPayload: (marker) => ({ payload: { text: marker, channel: '#no-such-channel' }, reason: /channel_not_found/ }),
  faults: (f) => emulator.setFaults(f),
  requestTimeoutMs: TIMEOUT_MS,
  // What chat.postMessage, the only call write() makes, is held to on one channel and on the workspace.
  enforcedLimits: () => emulator.postLimits(),
});
