// A stream sync into a destination that addresses records only by the id it answered
// (HubSpot, an object with no unique property, no matchKey): stream capture sends every change
// without the destinationId the delivered state holds, so each update is a create (a second
// record) and each delete is refused ("needs the record's HubSpot id"). No crash needed.
//   node tests/chaos/repro/stream-no-destination-id.mjs
// Found by `npm run chaos -- --seed 2 --scenarios pg-stream→hubspot-items` on the tree of 07:50;
// gone since stream capture passes the delivered state's ids (kept as a regression check).
import { start as startSnowflake } from '@outflow/connector-snowflake/emulator';
import { start as startHubSpot } from '@outflow/connector-hubspot/emulator';
import { outflow, sleep, snowflakeToHubSpotItems, until, verdict, workspace } from './lib.mjs';

const sf = await startSnowflake();
const hubspot = await startHubSpot({ customObjects: [{ name: 'items', properties: [{ name: 'item_id', type: 'number' }, { name: 'item_name', type: 'string' }] }] });
const table = '"ANALYTICS"."PUBLIC"."ITEMS"';
await sf.sql(`CREATE TABLE ${table} (ID INTEGER PRIMARY KEY, NAME VARCHAR NOT NULL)`);
await sf.sql(`INSERT INTO ${table} SELECT i, 'item ' || i FROM (SELECT SEQ4() + 1 AS i FROM TABLE(GENERATOR(ROWCOUNT => 10)))`);
const dir = workspace(snowflakeToHubSpotItems(sf, hubspot));
const run = outflow(dir, ['run', '--json']);
// The first run reconciles by a diff (the rows already there), then streams.
await until(() => hubspot.records('items').length === 10);
await sleep(3000);
await sf.sql(`UPDATE ${table} SET NAME = 'renamed' WHERE ID <= 3`);
await sf.sql(`DELETE FROM ${table} WHERE ID = 10`);
await sleep(8000);
run.child.kill('SIGTERM');
await run.exited;
const creates = {};
for (const w of hubspot.stats().writes) if (w.op === 'create') creates[w.properties.item_id] = (creates[w.properties.item_id] ?? 0) + 1;
const twice = Object.entries(creates).filter(([, n]) => n > 1);
const held = hubspot.records('items').length;
console.log(`ids created more than once (HubSpot's write log): ${JSON.stringify(Object.fromEntries(twice))}; records held: ${held} (model: 9)`);
await sf.stop();
await hubspot.stop();
verdict(twice.length > 0 || held !== 9, 'streamed updates created second records, or the streamed delete was not applied');
