import hubspot, { type HubSpotConfig } from '@outflow/connector-hubspot';
import { start, type HubSpotEmulator } from '@outflow/connector-hubspot/emulator';
import { destinationAcceptance } from '@outflow/testing';

const OBJECT = 'contacts';
const STAGES = ['subscriber', 'lead', 'marketingqualifiedlead', 'customer'];
let emulator: HubSpotEmulator;

const email = (i: number) => `contact${i}@example.com`;

destinationAcceptance<HubSpotConfig>({
  connector: hubspot,
  object: OBJECT,
  async setup() {
    emulator = await start();
    return { ...emulator.config, tier: 'professional' };
  },
  teardown: () => emulator.stop(),
  badConfigs: (config) => [
    { name: 'an access token HubSpot does not know', config: { ...config, accessToken: 'pat-na1-not-a-real-token' } },
    // Port 9 (discard) has no listener on loopback, so the connection is refused.
    { name: 'an API address with nothing listening', config: { ...config, basePath: 'http://127.0.0.1:9' } },
  ],
  // HubSpot keeps no model key: a contact's key is `contact-<i>`, worked out from the email index i was given.
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
  // HubSpot refuses the address itself (INVALID_EMAIL) and answers for the rest of the batch (207).
  badRecord: () => ({ key: 'contact-bad', match: { email: 'not an email' }, fields: { email: 'not an email', firstname: 'Nobody' } }),
});
