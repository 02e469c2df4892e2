import hubspot, { type HubSpotConfig } from '@outflow/connector-hubspot';
import { start, type HubSpotEmulator } from '@outflow/connector-hubspot/emulator';
import { destinationAcceptance } from '@outflow/testing';

const OBJECT = 'contacts';
const STAGES = ['subscriber', 'lead', 'marketingqualifiedlead', 'customer'];
/** Short, so the timeout and lost-answer checks hold answers back beyond it quickly. */
const TIMEOUT_MS = 1_000;
/** The professional tier's limits, which the emulator enforces by default. */
const PROFESSIONAL = { perWindow: 190, windowMs: 10_000, daily: 625_000 };
let emulator: HubSpotEmulator;

const email = (i: number) => `contact${i}@example.com`;

destinationAcceptance<HubSpotConfig>({
  connector: hubspot,
  object: OBJECT,
  async setup() {
    emulator = await start({ limits: PROFESSIONAL });
    return { ...emulator.config, tier: 'professional', timeoutMs: TIMEOUT_MS };
  },
  teardown: () => emulator.stop(),
  faults: (faults) => emulator.setFaults(faults),
  requestTimeoutMs: TIMEOUT_MS,
  enforcedLimits: () => [
    { requests: PROFESSIONAL.perWindow, perMs: PROFESSIONAL.windowMs },
    { requests: PROFESSIONAL.daily, perMs: 86_400_000 },
  ],
  badConfigs: (config) => [
    { name: 'an access token HubSpot does not know', config: { ...config, accessToken: 'pat-na1-not-a-real-token' } },
    // Port 9 (discard) has no listener on loopback, so the connection is refused.
    { name: 'an API address with nothing listening', config: { ...config, basePath: 'http://127.0.0.1:9' } },
  ],
  // HubSpot keeps no model key: a contact's key is `contact-<i>`, worked out from the email index i was given.
  // Listed by id, one entry per contact, so two contacts for one key would both show.
  async readAll() {
    return emulator.records(OBJECT).map((r) => {
      const i = /^contact(\d+)@example\.com$/.exec(r.properties['email'] ?? '')?.[1];
      return { key: i === undefined ? `email:${r.properties['email']}` : `contact-${i}`, id: r.id, fields: r.properties };
    });
  },
  // Every contact has a HubSpot id (hs_object_id), answered on each create and upsert.
  assignsIds: true,
  // HubSpot answers every property as a string, so the records use string-valued properties.
  record: (i) => ({
    key: `contact-${i}`,
    match: { email: email(i) },
    fields: { email: email(i), firstname: `First ${i}`, lastname: `Last ${i % 997}`, lifecyclestage: STAGES[i % STAGES.length]! },
  }),
  // HubSpot refuses the address itself (INVALID_EMAIL), refusing the whole batch (400); the connector pins it on this record.
  badRecord: () => ({ key: 'contact-bad', match: { email: 'not an email' }, fields: { email: 'not an email', firstname: 'Nobody' } }),
});
