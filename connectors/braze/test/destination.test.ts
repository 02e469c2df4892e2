import { eventAcceptance } from '@outflow/testing';
import braze, { type BrazeConfig } from '@outflow/connector-braze';
import { DEFAULT_LIMITS, SANDBOX_CAMPAIGN, start, type BrazeEmulator } from '@outflow/connector-braze/emulator';

/** Short, so the lost-answer check's unanswered requests give up in a second. */
const TIMEOUT_MS = 1_000;
let emulator: BrazeEmulator;

const shared = {
  connector: braze,
  async setup(): Promise<BrazeConfig> {
    emulator = await start();
    return { ...emulator.config, timeoutMs: TIMEOUT_MS };
  },
  teardown: () => emulator.stop(),
  // Port 9 (discard) has no listener on loopback: the connection is refused.
  badConfigs: (config: BrazeConfig) => [
    { name: 'a REST API key Braze does not know', config: { ...config, restApiKey: 'not-the-sandbox-key' } },
    { name: 'an instance with nothing listening', config: { ...config, instanceUrl: 'http://127.0.0.1:9' } },
  ],
  faults: (faults: Parameters<BrazeEmulator['setFaults']>[0]) => emulator.setFaults(faults),
  requestTimeoutMs: TIMEOUT_MS,
};

// Custom events: Braze keeps every event it is sent (idempotency none), so the suite counts
// them in the emulator's event log, where a second send shows as a second event.
eventAcceptance<BrazeConfig>({
  ...shared,
  object: 'users/track',
  payload: (marker) => ({ external_id: 'u1', event: { name: 'order_paid', properties: { marker } } }),
  delivered: async () => emulator.events().map((e) => ({ marker: String((e.object['properties'] as { marker?: unknown }).marker), payload: e.object as never })),
  badPayload: (marker) => ({ payload: { external_id: 'u1', event: { properties: { marker } } }, reason: /event needs a name/ }),
  enforcedLimits: () => [DEFAULT_LIMITS.usersTrack],
});

// API-triggered campaign sends: one recipient per event, counted in the emulator's send log.
eventAcceptance<BrazeConfig>({
  ...shared,
  object: `campaign:${SANDBOX_CAMPAIGN}`,
  payload: (marker) => ({ external_user_id: 'u1', trigger_properties: { marker } }),
  delivered: async () => emulator.sends().map((s) => ({ marker: String((s.recipient['trigger_properties'] as { marker?: unknown }).marker), payload: s.recipient as never })),
  badPayload: (marker) => ({ payload: { trigger_properties: { marker } }, reason: /needs exactly one of external_user_id and user_alias/ }),
  enforcedLimits: () => [DEFAULT_LIMITS.messaging],
});
