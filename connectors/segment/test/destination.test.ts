import { eventAcceptance } from '@outflow/testing';
import segment, { type SegmentConfig } from '@outflow/connector-segment';
import { start, type SegmentEmulator } from '@outflow/connector-segment/emulator';

/** Short, so the lost-answer check's unanswered requests give up in a second. */
const TIMEOUT_MS = 1_000;
let emulator: SegmentEmulator;

const markerOf = (call: Record<string, unknown>) => String((call['properties'] as { marker?: unknown } | undefined)?.marker);

eventAcceptance<SegmentConfig>({
  connector: segment,
  object: 'track',
  async setup() {
    emulator = await start();
    return { ...emulator.config, timeoutMs: TIMEOUT_MS };
  },
  teardown: () => emulator.stop(),
  // Port 9 (discard) has no listener on loopback: the connection is refused. A wrong write
  // key is no bad config: Segment's Tracking API takes any key, and drops its calls later.
  badConfigs: (config) => [{ name: 'a Tracking API address with nothing listening', config: { ...config, host: 'http://127.0.0.1:9' } }],
  payload: (marker) => ({ userId: 'u1', event: 'Order Paid', properties: { marker, total: 42 } }),
  // The calls the emulated source accepted: each messageId once, as Segment dedupes, so an
  // event sent again under another messageId shows up twice.
  delivered: async () => emulator.calls().map((call) => ({ marker: markerOf(call), payload: call as never })),
  // Segment answers 200 for a track call with no event name and drops it: refused unsent.
  badPayload: (marker) => ({ payload: { userId: 'u1', properties: { marker } }, reason: /a track call needs event/ }),
  faults: (faults) => emulator.setFaults(faults),
  requestTimeoutMs: TIMEOUT_MS,
  noEnforcedLimits: 'Segment documents no request limit for its Tracking API, and the emulator enforces none unless given one',
});
