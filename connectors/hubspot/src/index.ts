import {
  checkWith,
  defineConnector,
  fieldInfo,
  refusedWith,
  type Capabilities,
  type ConnectorContext,
  type DestinationCatalog,
  type FieldInfo,
  type ObjectInfo,
  type Operation,
  type RecordResult,
} from '@outflow/core';
import { configSchema, limitsOf, type HubSpotConfig } from './config.js';
import { closeSession, sessionOf } from './session.js';
import type { PropertyInfo } from './values.js';
import { isMatchKey, MAX_BATCH, uniqueProperties, writeBatch } from './write.js';

export { CAPACITY_PACK, configSchema, limitsOf, TIER_LIMITS, type HubSpotConfig } from './config.js';
export { coerce, type Coerced, type PropertyInfo } from './values.js';
export { msUntilMidnight } from './session.js';
export { MAX_BATCH } from './write.js';

/** The standard CRM objects `discover` lists, beside the account's custom objects. */
export const STANDARD_OBJECTS = ['contacts', 'companies', 'deals', 'tickets'] as const;

/** How many write calls may be in flight: enough to reach 19 requests per second at ~400 ms a call. */
const CONCURRENCY = 8;

/**
 * Reads contacts' property list: it needs a valid token and nothing else. A 403 (the app
 * lacks the contacts scope) still proves the token is good.
 */
function check(ctx: ConnectorContext<HubSpotConfig>): Promise<void> {
  const session = sessionOf(ctx);
  return checkWith(
    () => session.call(ctx, 'the check', () => session.client.crm.properties.coreApi.getAllWithHttpInfo('contacts')),
    (err) => refusedWith(err, 403),
  );
}

function fieldsOf(object: string, props: Iterable<PropertyInfo>): {
  fields: FieldInfo[];
  matchKeys: string[];
} {
  const fields: FieldInfo[] = [];
  const matchKeys: string[] = [];
  for (const p of props) {
    const unique = isMatchKey(object, p, p.name);
    fields.push(fieldInfo(p.name, p.type, { readOnly: p.readOnly, unique, options: p.type === 'enumeration' || p.type === 'bool' ? p.options : undefined }));
    if (unique) matchKeys.push(p.name);
  }
  return { fields, matchKeys };
}

/**
 * Lists the standard objects the token can read and every custom object, each with its
 * properties (type, options, read-only, unique) and the unique ones as match keys.
 */
async function discover(ctx: ConnectorContext<HubSpotConfig>): Promise<DestinationCatalog> {
  const session = sessionOf(ctx);
  const objects: ObjectInfo[] = [];
  const modes: ObjectInfo['modes'] = ['upsert', 'update', 'insert', 'mirror'];
  for (const name of STANDARD_OBJECTS) {
    try {
      const props = await session.properties(ctx, name);
      objects.push({ name, ...fieldsOf(name, props.values()), modes });
    } catch (err) {
      // An object the private app has no scope for is not one it can sync to.
      if (refusedWith(err, 403)) continue;
      throw err;
    }
  }
  let schemas: { objectTypeId?: string; fullyQualifiedName?: string; name: string }[] = [];
  try {
    const reply = await session.call(ctx, 'the custom object schemas', () => session.client.crm.schemas.coreApi.getAllWithHttpInfo());
    schemas = reply.data.results;
  } catch (err) {
    if (!refusedWith(err, 403)) throw err;
  }
  for (const schema of schemas) {
    const name = schema.fullyQualifiedName ?? schema.objectTypeId ?? schema.name;
    const props = await session.properties(ctx, name);
    objects.push({ name, ...fieldsOf(name, props.values()), modes });
  }
  return { objects };
}

/**
 * Every operation, batches of 100, and the tier's 10-second and daily limits. Re-sending is
 * harmless (`match`) on objects with a unique property — contacts by email, custom objects
 * with a unique property — where writes are upserts by it or by id, and HubSpot refuses a
 * second record with the same value. Objects with none (deals, tickets, companies) would get
 * a second record from a re-sent create, so there a write whose outcome is unknown is
 * parked for a person to check (`none`).
 */
async function capabilities(ctx: ConnectorContext<HubSpotConfig>, object: string): Promise<Capabilities> {
  const unique = uniqueProperties(object, await sessionOf(ctx).properties(ctx, object)).length > 0;
  return {
    operations: ['upsert', 'update', 'insert', 'delete'],
    maxBatchSize: MAX_BATCH,
    rateLimits: limitsOf(ctx.config),
    // Deletes and property reads are requests too: the connector draws each one itself.
    budget: 'connector',
    concurrency: CONCURRENCY,
    idempotency: unique ? 'match' : 'none',
  };
}

/**
 * Upserts by the match key (a unique property, `idProperty`), updates by HubSpot id or
 * unique value, creates, and archives, in batches of up to 100 through @hubspot/api-client.
 */
function write(ctx: ConnectorContext<HubSpotConfig>, object: string, ops: Operation[]): Promise<RecordResult[]> {
  return writeBatch(ctx, object, ops);
}

/**
 * The HubSpot destination: CRM v3 objects (contacts, companies, deals, tickets and custom
 * objects) through the official SDK, with its retries off so that Outflow's engine retries
 * and keeps to the account's rate limits.
 */
export default defineConnector({
  name: 'hubspot',
  version: '1.0.0',
  description: 'Writes records to HubSpot CRM objects (contacts, companies, deals, tickets, custom objects) with @hubspot/api-client.',
  config: configSchema,
  destination: { check, discover, capabilities, write },
  async open(ctx) {
    sessionOf(ctx);
  },
  async close(ctx) {
    closeSession(ctx);
  },
  emulator: () => import('./emulator/index.js'),
});
