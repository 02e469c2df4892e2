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
  // Keys are `contact-<i>`; the record is found by the email that index was given.
  async readBack(key) {
    const i = key.startsWith('contact-') ? Number(key.slice('contact-'.length)) : NaN;
    if (!Number.isInteger(i)) return undefined;
    const record = emulator.find(OBJECT, 'email', email(i));
    return record?.properties;
  },
  // HubSpot answers every property as a string, so the records use string-valued properties.
  record: (i) => ({
    key: `contact-${i}`,
    match: { email: email(i) },
    fields: { email: email(i), firstname: `First ${i}`, lastname: `Last ${i % 997}`, lifecyclestage: STAGES[i % STAGES.length]! },
  }),
  // HubSpot refuses the address itself (INVALID_EMAIL) and answers for the rest of the batch (207).
  badRecord: () => ({ key: 'contact-bad', match: { email: 'not an email' }, fields: { email: 'not an email', firstname: 'Nobody' } }),
});
