/**
 * The emulator kit: what every vendor emulator needs, written once. `EmulatorApp` is the
 * whole HTTP front — a loopback server and its request pipeline (body, checks such as
 * `bearerAuth`, rate limit, faults, routes, lost answers, error bodies, counts) — and
 * `AppEmulator` the running emulator tests hold; both are built from the parts below, which
 * stay usable alone: a loopback server and a clean stop, a router, bounded body reading,
 * JSON replies, seeded fault injection, rolling- and fixed-window rate limits and the
 * JSON-lines state log. For the store behind the routes: typed attributes and the check of
 * values against them, a record table with unique indexes and archiving, filter operators
 * and cursor paging. Imported as `@outflow/core/emulator-kit`, so production code that never starts an emulator never
 * loads it.
 */
export {
  AppEmulator,
  bearerAuth,
  EmulatorApp,
  EmulatorRefusal,
  fixedLimitWithHeaders,
  jsonObject,
  rollingLimit,
  type AppAnswer,
  type AppHandler,
  type AppRequest,
  type AppStats,
  type EmulatorAppOptions,
  type ErrorBody,
  type RateLimiter,
} from './app.js';
export { readBody, readJsonBody, parseJson, type BodyResult } from './body.js';
export { FaultInjector, loseAnswer, resetConnection, seededRandom, type Fault, type KitFaults, type LostAnswer, type VendorFaults } from './faults.js';
export { FixedWindow, retryAfterHeader, RollingWindow, type WindowRefusal } from './limits.js';
export { ChangeLog, jsonLinesLog } from './log.js';
export { sendJson, sendText } from './reply.js';
export { Router, type HttpMethod, type RouteMatch, type RouteMiss, type RouterOptions } from './router.js';
export { closeServer, createEmulatorServer, listenOnLoopback } from './server.js';
export { checkValues, fitsType, readValue, type Attribute, type AttributeIssue, type AttributeType, type CheckedValues, type ReadValue, type ValueRules } from './attributes.js';
export { cursorPage, matchesFilter, offsetCursor, opaqueCursor, type CursorCodec, type CursorPage, type FilterOperator } from './query.js';
export { RecordTable, type Clash, type UniqueKey } from './table.js';
