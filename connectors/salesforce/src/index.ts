import {
  checkWith,
  defineConnector,
  fieldInfo,
  isOutflowError,
  type Capabilities,
  type ConnectorContext,
  type DestinationCatalog,
  type FieldInfo,
  type LookupResult,
  type ObjectInfo,
  type Operation,
} from '@outflow/core';
import { configSchema, type SalesforceConfig } from './config.js';
import { closeSession, sessionOf } from './session.js';
import { isMatchField, requiredOnCreate, type ObjectSchema } from './values.js';
import { recoverJobs } from './bulk.js';
import { findBy, holdsExactly, prepare, uniqueKeys, writeBatch, type SfValue, type Write } from './write.js';
import { coerce, fieldIn } from './values.js';

export { configSchema, DEFAULTS, type SalesforceConfig } from './config.js';
export { coerce, requiredOnCreate, type ObjectSchema, type SfField } from './values.js';
export { jwtAssertion, SHARE_RECHECK_MS } from './session.js';
export { MAX_COLLECTION } from './write.js';

/** Standard objects `discover` describes when the org has them, beside every custom object. */
export const STANDARD_OBJECTS = ['Account', 'Contact', 'Lead', 'Opportunity', 'Case', 'Campaign'] as const;

/** The most operations one write takes: a Bulk API 2.0 job of this size is one internal batch. */
export const MAX_BATCH = 10_000;
/** Writes in flight per sync; Salesforce allows 25 concurrent long requests per org. */
const CONCURRENCY = 4;
const TEXT_TYPES = new Set(['string', 'textarea', 'email', 'phone', 'url', 'picklist', 'multipicklist', 'encryptedstring']);

/** Reads the org's limits: it needs a valid session and nothing else. */
function check(ctx: ConnectorContext<SalesforceConfig>): Promise<void> {
  return checkWith(() => sessionOf(ctx).call(ctx, 'the check', { method: 'GET', path: '/limits' }));
}

function objectInfo(schema: ObjectSchema): ObjectInfo {
  const fields: FieldInfo[] = [];
  const matchKeys: string[] = [];
  for (const f of schema.fields.values()) {
    const type = TEXT_TYPES.has(f.type) && f.length > 0 ? `${f.type}(${f.length})` : f.type;
    const options = f.type === 'picklist' || f.type === 'multipicklist' ? f.picklistValues : undefined;
    fields.push(fieldInfo(f.name, type, { required: requiredOnCreate(f), readOnly: !f.createable && !f.updateable, unique: f.unique || f.name === 'Id', options }));
    if (isMatchField(f)) matchKeys.push(f.name);
  }
  return { name: schema.name, fields, matchKeys, modes: ['upsert', 'update', 'insert', 'mirror'] };
}

/**
 * Describes the standard objects most syncs write (those the org has) and every custom
 * object: fields with types and lengths, picklist values, required on create, read-only,
 * and the fields usable as match keys (Id, External IDs, idLookup fields).
 */
async function discover(ctx: ConnectorContext<SalesforceConfig>): Promise<DestinationCatalog> {
  const session = sessionOf(ctx);
  const global = await session.call<{ sobjects: { name: string; custom: boolean; createable: boolean }[] }>(ctx, 'the list of sObjects', { method: 'GET', path: '/sobjects' });
  const names = global.sobjects
    .filter((o) => o.createable && (o.custom ? o.name.endsWith('__c') : (STANDARD_OBJECTS as readonly string[]).includes(o.name)))
    .map((o) => o.name);
  const objects: ObjectInfo[] = [];
  for (const name of names) objects.push(objectInfo(await session.describe(ctx, name)));
  return { objects };
}

/**
 * Every operation, up to 10,000 a write (sObject Collections of 200 a request below
 * `bulkThreshold`, one Bulk API 2.0 job from it). Re-sending is harmless (`match`) on
 * objects with a unique External ID — upserts by it are natural, and a re-sent insert that
 * carries it is refused as a duplicate and recognised. Elsewhere a re-sent insert would make
 * a second record (`none`): a write in doubt is looked up by its match key where it has one
 * (`lookup`), and parked as outcome unknown where it cannot be. Salesforce has no
 * short-window rate limit to declare: its daily allocation is read from every answer.
 */
async function capabilities(ctx: ConnectorContext<SalesforceConfig>, object: string): Promise<Capabilities> {
  const schema = await sessionOf(ctx).describe(ctx, object);
  return {
    operations: ['upsert', 'update', 'insert', 'delete'],
    maxBatchSize: MAX_BATCH,
    rateLimits: [],
    budget: 'connector',
    concurrency: CONCURRENCY,
    idempotency: uniqueKeys(schema).length > 0 ? 'match' : 'none',
  };
}

/**
 * For operations whose outcome is unknown: finds the record by the operation's id or match
 * key and compares it with the values the operation writes. Applied when a record holds
 * them (or, for a delete, when none is left); absent when no record holds the match value
 * (or, for an update, when the record does not hold the values yet: sending it again is
 * harmless); unknown otherwise — several records hold the value, or there is no key.
 */
async function lookup(ctx: ConnectorContext<SalesforceConfig>, object: string, ops: Operation[]): Promise<LookupResult[]> {
  const session = sessionOf(ctx);
  const schema = await session.describe(ctx, object);
  const w: Write = { ctx, session, object: schema.name, schema, resendSafe: uniqueKeys(schema).length > 0, sent: false };
  // An operation a Bulk job left unread holds is told by that job's results.
  const prepared = ops.flatMap((op, index) => {
    const p = prepare(schema, object, op, index);
    return 'item' in p ? [p.item] : [];
  });
  const fromJobs = await recoverJobs(w, prepared);
  return Promise.all(
    ops.map(async (op, index): Promise<LookupResult> => {
      const told = fromJobs.get(index);
      if (told !== undefined) return told.ok ? { state: 'applied', ...(told.destinationId === undefined ? {} : { destinationId: told.destinationId }) } : { state: 'absent' };
      const fields: Record<string, SfValue> = {};
      for (const [name, value] of Object.entries(op.fields ?? {})) {
        const f = fieldIn(schema, name);
        const c = f === undefined ? undefined : coerce(f, value, object);
        if (f === undefined || c === undefined || !c.ok) return { state: 'unknown' };
        fields[f.name] = c.value;
      }
      let by: { field: string; value: SfValue } | undefined;
      if (op.destinationId !== undefined) by = { field: 'Id', value: op.destinationId };
      else {
        const [name, raw] = Object.entries(op.match ?? {})[0] ?? [];
        const f = name === undefined ? undefined : fieldIn(schema, name);
        const c = f === undefined || raw === undefined ? undefined : coerce(f, raw, object);
        if (f !== undefined && isMatchField(f) && c?.ok) by = { field: f.name, value: c.value };
      }
      if (by === undefined) return { state: 'unknown' };
      const found = await readWithRetries(() => findBy(w, by.field, [by.value], Object.keys(fields), 'for a write in doubt'));
      if (op.kind === 'delete') return found.length === 0 ? { state: 'applied' } : { state: 'absent' };
      if (found.length > 1) return { state: 'unknown' };
      const record = found[0];
      if (record === undefined) return { state: 'absent' };
      if (holdsExactly(schema, record, fields)) return { state: 'applied', destinationId: String(record['Id']) };
      return op.kind === 'update' ? { state: 'absent' } : { state: 'unknown' };
    }),
  );
}

/** A read-only request, tried again on a retryable failure: a look-up that fails leaves its record parked. */
async function readWithRetries<T>(read: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (attempt >= attempts || !isOutflowError(err) || !err.retryable || err.code === 'OUTFLOW_ABORTED') throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

/**
 * The Salesforce destination: any sObject, standard or custom, through @salesforce/core's
 * Connection — sObject Collections for ordinary batches, Bulk API 2.0 jobs for large ones —
 * with the SDK's retries off so that Outflow's engine retries, keeps to the configured share
 * of the daily API allocation, and knows what is in doubt.
 */
export default defineConnector({
  name: 'salesforce',
  version: '0.1.0',
  description: 'Writes records to Salesforce sObjects (standard and custom) with @salesforce/core: sObject Collections and Bulk API 2.0.',
  config: configSchema,
  destination: { check, discover, capabilities, write: writeBatch, lookup },
  async open(ctx) {
    sessionOf(ctx);
  },
  async close(ctx) {
    closeSession(ctx);
  },
  emulator: () => import('./emulator/index.js'),
});
