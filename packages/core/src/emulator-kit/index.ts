/**
 * The emulator kit: what every vendor emulator needs, written once. A loopback server and
 * a clean stop, a router, bounded body reading, JSON replies, seeded fault injection,
 * rolling- and fixed-window rate limits and the JSON-lines state log. Imported as
 * `@outflow/core/emulator-kit`, so production code that never starts an emulator never
 * loads it.
 */
export { readBody, readJsonBody, parseJson, type BodyResult } from './body.js';
export { FaultInjector, loseAnswer, resetConnection, seededRandom, type Fault, type KitFaults, type LostAnswer, type VendorFaults } from './faults.js';
export { FixedWindow, retryAfterHeader, RollingWindow, type WindowRefusal } from './limits.js';
export { jsonLinesLog } from './log.js';
export { sendJson, sendText } from './reply.js';
export { Router, type HttpMethod, type RouteMatch, type RouteMiss, type RouterOptions } from './router.js';
export { closeServer, createEmulatorServer, listenOnLoopback } from './server.js';
