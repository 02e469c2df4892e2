import './home.js';
import salesforce, { type SalesforceConfig } from '@outflow/connector-salesforce';
import { start, type SalesforceEmulator } from '@outflow/connector-salesforce/emulator';
import { destinationAcceptance } from '@outflow/testing';
import { CUSTOMER } from './fixtures.js';

/** Short, so the timeout and lost-answer checks hold answers back beyond it quickly. */
const TIMEOUT_MS = 1_000;
const PLANS = ['free', 'pro', 'enterprise'];
const NO_RATE_LIMITS = "Salesforce has no per-second or per-minute request limit; its daily allocation is read from every answer's Sforce-Limit-Info";

let emulator: SalesforceEmulator;

const common = {
  connector: salesforce,
  teardown: () => emulator.stop(),
  faults: (faults: Parameters<SalesforceEmulator['setFaults']>[0]) => emulator.setFaults(faults),
  requestTimeoutMs: TIMEOUT_MS,
  noRateLimits: NO_RATE_LIMITS,
  noEnforcedLimits: NO_RATE_LIMITS,
  badConfigs: (config: SalesforceConfig) => [
    { name: 'an access token Salesforce does not know', config: { ...config, accessToken: '00D5g000004EMUL!AQnot.a.session' } },
    // Port 9 (discard) has no listener on loopback, so the connection is refused.
    { name: 'an instance URL with nothing listening', config: { ...config, instanceUrl: 'http://127.0.0.1:9' } },
  ],
  // Salesforce assigns an Id to every record, answered on each create and upsert.
  assignsIds: true,
};

async function setup(): Promise<SalesforceConfig> {
  emulator = await start({ customObjects: [CUSTOMER] });
  return { ...emulator.config, timeoutMs: TIMEOUT_MS };
}

// A custom object with a unique External ID: upserts by it, re-sends recognised (idempotency `match`).
destinationAcceptance<SalesforceConfig>({
  ...common,
  object: 'Customer__c',
  setup,
  // Listed by record, so two records for one key would both show.
  async readAll() {
    return emulator.records('Customer__c').map((r) => ({ key: String(r['External_Id__c'] ?? `id:${r.Id}`), id: r.Id, fields: r }));
  },
  record: (i) => ({
    key: `c-${i}`,
    match: { External_Id__c: `c-${i}` },
    fields: { Name: `Customer ${i}`, External_Id__c: `c-${i}`, Plan__c: PLANS[i % PLANS.length]!, Seats__c: i % 1000 },
  }),
  // Salesforce refuses the address itself (INVALID_EMAIL_ADDRESS), for this record alone.
  badRecord: () => ({ key: 'c-bad', match: { External_Id__c: 'c-bad' }, fields: { Name: 'Bad', External_Id__c: 'c-bad', Email__c: 'not an email' } }),
});

// A standard object matched by an idLookup field that is not unique (Contact.Email): a
// re-sent insert could make a second record (idempotency `none`), so writes in doubt are
// looked up by email.
destinationAcceptance<SalesforceConfig>({
  ...common,
  object: 'Contact',
  setup,
  async readAll() {
    return emulator.records('Contact').map((r) => {
      const i = /^contact(\d+)@example\.com$/.exec(String(r['Email'] ?? ''))?.[1];
      return { key: i === undefined ? `email:${String(r['Email'])}` : `contact-${i}`, id: r.Id, fields: r };
    });
  },
  record: (i) => ({
    key: `contact-${i}`,
    match: { Email: `contact${i}@example.com` },
    fields: { Email: `contact${i}@example.com`, FirstName: `First ${i}`, LastName: `Last ${i % 997}` },
  }),
  // LastName is required on create: Salesforce answers REQUIRED_FIELD_MISSING for this record.
  badRecord: () => ({ key: 'contact-bad', match: { Email: 'nobody@example.com' }, fields: { Email: 'nobody@example.com', FirstName: 'No last name' } }),
});
