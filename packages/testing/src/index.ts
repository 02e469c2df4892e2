export { checkConfig, configValidator, validateConfig, type ConfigProblem } from './config.js';
export {
  capturingLogger,
  createTestContext,
  MemoryKeyValueStore,
  RecordingMetrics,
  type MetricSample,
  type TestContext,
  type TestContextOptions,
} from './context.js';
export { AcceptanceFailure, type BadConfig, type Check, type ConnectionDriver } from './harness.js';
export { specAcceptance, specCheckList, specChecks, type SpecHarness, type SpecOptions } from './spec.js';
export {
  destinationAcceptance,
  destinationCheckList,
  destinationChecks,
  runDestinationChecks,
  startDestination,
  type CheckReport,
  type DestinationDriver,
  type DestinationHarness,
  type HeldRecord,
  type TestRecord,
} from './destination.js';
export { capabilityCheckList, capabilityChecks } from './capabilities.js';
export { sourceAcceptance, sourceCheckList, sourceChecks, startSource, type SourceDriver, type SourceHarness } from './source.js';
export { startStream, streamAcceptance, streamCheckList, streamChecks, type StreamDriver, type StreamHarness } from './stream.js';
export {
  stateModel,
  startStateStore,
  stateStoreCheckList,
  stateStoreChecks,
  stateStoreSuite,
  type StateColumnType,
  type StateStoreDriver,
  type StateStoreHarness,
} from './state-store.js';
export { ledgerAcceptance, ledgerCheckList, ledgerChecks, startLedger, type LedgerDriver, type LedgerHarness } from './ledger.js';
export { memorySource } from './fixtures.js';
export { createTestEngine, type TestEngine, type TestEngineOptions } from './engine.js';
export { startHostileServer, type HostileMode, type HostileRequest, type HostileServer } from './hostile-server.js';
export {
  eventAcceptance,
  eventCheckList,
  eventChecks,
  runEventChecks,
  startEventDestination,
  type DeliveredEvent,
  type EventDriver,
  type EventHarness,
} from './events.js';
