import intercom, { type IntercomConfig } from '@outflow/connector-intercom';
import { DEFAULT_ATTRIBUTES, start, type IntercomEmulator } from '@outflow/connector-intercom/emulator';
import { destinationAcceptance } from '@outflow/testing';

const OBJECT = 'contacts';
/** Short, so the timeout and lost-answer checks hold answers back beyond it quickly. */
const TIMEOUT_MS = 1_000;
/** An app limited to 1,000 calls a minute: 167 per 10-second window, small enough to probe. */
const PER_MINUTE = 1_000;
const PLANS = DEFAULT_ATTRIBUTES.find((a) => a.name === 'plan')!.options!;
let emulator: IntercomEmulator;

destinationAcceptance<IntercomConfig>({
  connector: intercom,
  object: OBJECT,
  async setup() {
    emulator = await start({ limits: { requests: Math.ceil(PER_MINUTE / 6) } });
    return { ...emulator.config, rateLimitPerMinute: PER_MINUTE, timeoutMs: TIMEOUT_MS };
  },
  teardown: () => emulator.stop(),
  faults: (faults) => emulator.setFaults(faults),
  requestTimeoutMs: TIMEOUT_MS,
  // Intercom counts requests in fixed 10-second windows (X-RateLimit-Reset steps by 10 s).
  fixedWindows: true,
  enforcedLimits: () => [{ requests: Math.ceil(PER_MINUTE / 6), perMs: 10_000 }],
  badConfigs: (config) => [
    { name: 'a token Intercom does not know', config: { ...config, token: 'not-the-sandbox-token' } },
    // Port 9 (discard) has no listener on loopback: the connection is refused.
    { name: 'an API address with nothing listening', config: { ...config, baseUrl: 'http://127.0.0.1:9' } },
  ],
  // The live contacts (an archived one is deleted as far as a sync is concerned), one entry
  // per contact, keyed by the external_id each was written with.
  async readAll() {
    return emulator.records
      .contacts()
      .filter((c) => !c.archived)
      .map((c) => ({ key: String(c['external_id']), id: c.id, fields: { external_id: c['external_id'], email: c['email'], name: c['name'], ...c.custom_attributes } }));
  },
  assignsIds: true,
  record: (i) => ({ key: `u${i}`, match: { external_id: `u${i}` }, fields: { external_id: `u${i}`, email: `user${i}@example.com`, name: `User ${i}`, plan: PLANS[i % PLANS.length]! } }),
  // Intercom refuses a value a list attribute does not allow (400 parameter_invalid).
  badRecord: () => ({ key: 'bad', match: { external_id: 'bad' }, fields: { external_id: 'bad', email: 'bad@example.com', name: 'Bad', plan: 'platinum' } }),
});
