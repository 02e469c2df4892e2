import webhook, { type WebhookConfig } from '@outflow/connector-webhook';
import { start, type EmulatorSnapshot, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { destinationAcceptance } from '@outflow/testing';

const OBJECT = 'contacts';
const TIMEOUT_MS = 2_000;
let emulator: WebhookEmulator;

destinationAcceptance<WebhookConfig>({
  connector: webhook,
  object: OBJECT,
  async setup() {
    emulator = await start();
    // A short timeout, so the timeout and lost-answer checks wait seconds, not the default ten.
    return { ...emulator.config, timeoutMs: TIMEOUT_MS };
  },
  teardown: () => emulator.stop(),
  badConfigs: (config) => [
    { name: 'a signing secret the receiver does not share', config: { ...config, secret: 'not-the-receiver-secret' } },
    // Port 9 (discard) has no listener on loopback, so the connection is refused.
    { name: 'a receiver that is not listening', config: { ...config, url: 'http://127.0.0.1:9/hooks/outflow' } },
  ],
  // Read through the emulator's HTTP inspection API, as an operator would look at the receiver.
  // The receiver itself holds one record per (object, key): a second create of a key cannot
  // add a record, so there are no duplicates to hide.
  async readAll() {
    const response = await fetch(`${emulator.recordsUrl}?object=${OBJECT}`);
    const snapshot = (await response.json()) as EmulatorSnapshot;
    return snapshot.records.map((r) => ({ key: r.key, id: r.id, fields: r.fields }));
  },
  // The receiver answers each record it creates with its id (`rec_<n>`).
  assignsIds: true,
  record: (i) => ({
    key: `contact-${i}`,
    match: { email: `contact${i}@example.com` },
    fields: { email: `contact${i}@example.com`, name: `Contact ${i}`, score: i % 1000, vip: i % 2 === 0 },
  }),
  // The receiver validates `email` and rejects the record alone, answering for the rest of the batch.
  badRecord: () => ({ key: 'contact-bad', match: { email: 'not an email' }, fields: { email: 'not an email', name: 'Nobody' } }),
  faults: (f) => emulator.setFaults(f),
  requestTimeoutMs: TIMEOUT_MS,
  noEnforcedLimits: "the receiver's limit is the user's own `requestsPerSecond`, and the emulator enforces none",
});
