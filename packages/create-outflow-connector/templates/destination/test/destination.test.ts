import { destinationAcceptance } from '@outflow/testing';
import connector, { type __Name__Config } from '../src/index.js';
import { start, type __Name__Emulator } from '../src/emulator/index.js';

const OBJECT = 'contacts';
/** Short, so the timeout and lost-answer checks wait seconds, not the default thirty. */
const TIMEOUT_MS = 2_000;
let emulator: __Name__Emulator;

// The contract's semantics, checked against the emulator: create, update, delete, missing
// records, ids, ordering, idempotency, faults (429, 5xx, timeouts, lost answers) and the
// rate limit. Leave a check out only with `skip: ['id']` and a comment saying why.
destinationAcceptance<__Name__Config>({
  connector,
  object: OBJECT,
  async setup() {
    emulator = await start();
    return { ...emulator.config, timeoutMs: TIMEOUT_MS };
  },
  teardown: () => emulator.stop(),
  badConfigs: (config) => [
    { name: 'a token the API refuses', config: { ...config, token: 'not-the-sandbox-token' } },
    // Port 9 (discard) has no listener on loopback: the connection is refused.
    { name: 'an API that is not listening', config: { ...config, baseUrl: 'http://127.0.0.1:9' } },
  ],
  // Every record the emulator holds, one entry per record, so a duplicate shows.
  // #if batch
  readAll: async () => emulator.records.list(OBJECT).map((r) => ({ key: r.externalId, id: r.id, fields: r.properties })),
  assignsIds: true,
  record: (i) => ({ key: `c${i}`, match: { email: `c${i}@example.com` }, fields: { email: `c${i}@example.com`, name: `Contact ${i}` } }),
  badRecord: () => ({ key: 'bad', match: { email: 'not an email' }, fields: { email: 'not an email', name: 'Nobody' } }),
  // #endif
  // #if each
  // A record is keyed by the external_id it was written with (the model key, mapped).
  readAll: async () => emulator.records.list(OBJECT).map((r) => ({ key: String(r.properties['external_id']), id: r.id, fields: r.properties })),
  assignsIds: true,
  record: (i) => ({ key: `c${i}`, match: { external_id: `c${i}` }, fields: { external_id: `c${i}`, email: `c${i}@example.com`, name: `Contact ${i}` } }),
  badRecord: () => ({ key: 'bad', match: { external_id: 'bad' }, fields: { external_id: 'bad', email: 'not an email', name: 'Nobody' } }),
  // #endif
  faults: (f) => emulator.setFaults(f),
  requestTimeoutMs: TIMEOUT_MS,
  enforcedLimits: () => [emulator.limit],
});
