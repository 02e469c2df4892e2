import webhook, { type WebhookConfig } from '@outflow/connector-webhook';
import { start, WRITES_PATH, type AppliedWrite, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { eventAcceptance } from '@outflow/testing';

const OBJECT = 'order-events';
const TIMEOUT_MS = 2_000;
let emulator: WebhookEmulator;

eventAcceptance<WebhookConfig>({
  connector: webhook,
  object: OBJECT,
  async setup() {
    emulator = await start();
    // A short timeout, so the lost-answer check waits seconds, not the default ten.
    return { ...emulator.config, timeoutMs: TIMEOUT_MS };
  },
  teardown: () => emulator.stop(),
  badConfigs: (config) => [{ name: 'a signing secret the receiver does not share', config: { ...config, secret: 'not-the-receiver-secret' } }],
  payload: (marker) => ({ text: `Order ${marker} paid`, marker, total: 1200.5 }),
  // Read through the receiver's HTTP write log: one entry per event it accepted.
  async delivered() {
    const response = await fetch(`${new URL(emulator.url).origin}${WRITES_PATH}?object=${OBJECT}`);
    const { writes } = (await response.json()) as { writes: AppliedWrite[] };
    return writes.filter((w) => w.t === 'event').map((w) => ({ marker: String(w.payload?.['marker']), ...(w.payload ? { payload: w.payload } : {}) }));
  },
  // The receiver validates an `email` property and rejects that event alone.
  badPayload: (marker) => ({ payload: { marker, email: 'not an email' }, reason: /email "not an email" is not a valid email address/ }),
  faults: (f) => emulator.setFaults(f),
  requestTimeoutMs: TIMEOUT_MS,
  noEnforcedLimits: "the receiver's limit is the user's own `requestsPerSecond`, and the emulator enforces none",
});
