// A stream sync into HubSpot items (no unique property, idempotency `none`) killed in the middle
// of a stream batch: part of the batch was acknowledged, the rest was in flight. After the
// restart the stream replays the whole batch (at-least-once), and the inserts that were already
// acknowledged are sent again without their HubSpot id — as creates — so HubSpot gets a second
// record of each; only the writes that were in flight are recognised as in doubt (and parked).
//   node tests/chaos/repro/stream-replay-creates.mjs
// Found by `npm run chaos -- --seed 797550008 --scenarios pg-stream→hubspot-items` (seed rows
// created three times: the stream's initial rows replayed after kills).
import { start as startSnowflake } from '@outflow/connector-snowflake/emulator';
import { start as startHubSpot } from '@outflow/connector-hubspot/emulator';
import { outflow, sleep, snowflakeToHubSpotItems, until, verdict, workspace } from './lib.mjs';

const sf = await startSnowflake();
const hubspot = await startHubSpot({ customObjects: [{ name: 'items', properties: [{ name: 'item_id', type: 'number' }, { name: 'item_name', type: 'string' }] }] });
const table = '"ANALYTICS"."PUBLIC"."ITEMS"';
await sf.sql(`CREATE TABLE ${table} (ID INTEGER PRIMARY KEY, NAME VARCHAR NOT NULL)`);
const dir = workspace(snowflakeToHubSpotItems(sf, hubspot, '{ batchSize: 5, concurrency: 1 }'));
// The first run reconciles the empty table, then streams; 20 rows arrive in one change batch,
// and the run dies after HubSpot applied the second write of 5, before it was recorded.
const first = outflow(dir, ['run', '--json'], { OUTFLOW_FAILPOINTS: 'delivery.after-write:2', OUTFLOW_LOG_LEVEL: 'info' });
await until(() => first.output().includes('"capture":"diff"'));
await sleep(1500);
await sf.sql(`INSERT INTO ${table} SELECT i, 'item ' || i FROM (SELECT SEQ4() + 1 AS i FROM TABLE(GENERATOR(ROWCOUNT => 20)))`);
const died = await first.exited;
console.log(`first run: ${died.signal ?? died.code}${died.output.includes('failpoint delivery.after-write reached') ? ' at delivery.after-write' : ''}; HubSpot holds ${hubspot.records('items').length} records`);
const second = outflow(dir, ['run', '--json']);
await sleep(12_000);
second.child.kill('SIGTERM');
await second.exited;
const creates = {};
for (const w of hubspot.stats().writes) if (w.op === 'create') creates[w.properties.item_id] = (creates[w.properties.item_id] ?? 0) + 1;
const twice = Object.entries(creates).filter(([, n]) => n > 1).map(([id]) => id);
const errors = (await outflow(dir, ['errors', '--json']).exited).output;
const parked = JSON.parse(errors.split('\n').find((l) => l.startsWith('[')) ?? '[]').filter((e) => /outcome unknown/.test(e.reason)).map((e) => e.key);
console.log(`after the restart: ids created twice (HubSpot's write log): ${JSON.stringify(twice)}; parked as outcome unknown: ${JSON.stringify(parked)}; records: ${hubspot.records('items').length} (model: 20)`);
await sf.stop();
await hubspot.stop();
verdict(twice.length > 0, 'acknowledged inserts replayed by the stream were created a second time');
