// No crash needed. A PostgreSQL stream sync into HubSpot: rows inserted, then changed soon after,
// while the write of their insert is still in flight. Stream capture takes the HubSpot id of each
// key from the delivered state when it reads a change batch, before the insert's answer is
// recorded, so the later change goes out without it:
// - `contacts` (upsert by email): the delete carries no email either (PostgreSQL sends only the
//   key of a deleted row) and is refused ("needs the record's HubSpot id or a unique match
//   key"); the contact stays.
// - `items` (no unique property): the update becomes a create (a second record), the delete is
//   refused.
//   node tests/chaos/repro/stream-race.mjs [contacts|items]
// Found by `npm run chaos -- --seed 797550008 --scenarios pg-stream→hubspot` (both objects).
import pg from 'pg';
import { startPostgres } from '@outflow/connector-postgres/testing';
import { start as startHubSpot } from '@outflow/connector-hubspot/emulator';
import { outflow, sleep, until, verdict, workspace } from './lib.mjs';

const object = process.argv[2] ?? 'contacts';
const server = await startPostgres();
const db = new pg.Client({ connectionString: server.url });
await db.connect();
await db.query(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL)`);
await db.query(`INSERT INTO items SELECT i, 'item ' || i, 'item' || i || '@example.com' FROM generate_series(1, 10) i`);
const hubspot = await startHubSpot(
  object === 'items' ? { customObjects: [{ name: 'items', properties: [{ name: 'item_id', type: 'number' }, { name: 'item_name', type: 'string' }] }] } : {},
);
const idOf = (r) => Number(object === 'items' ? r.properties.item_id : /^item(\d+)@/.exec(r.properties.email)[1]);
const dir = workspace(`version: 1
connections:
  src: { connector: postgres, config: { url: "${server.url}" } }
  dst: { connector: hubspot, config: { accessToken: "${hubspot.config.accessToken}", basePath: "${hubspot.url}" } }
syncs:
  - name: items
    from: { connection: src, table: items, primaryKey: id }
    capture: stream
    to: ${object === 'items' ? '{ connection: dst, object: items, mode: upsert, deletes: delete }' : '{ connection: dst, object: contacts, mode: upsert, deletes: delete, matchKey: { email: email } }'}
    mappings: ${object === 'items' ? '{ item_id: id, item_name: name }' : '{ firstname: name }'}
    delivery: { batchSize: 50, concurrency: 4 }
`);
const run = outflow(dir, ['run', '--json']);
await until(() => hubspot.records(object).length === 10);
// Rounds of 10 inserts, each followed soon after by an update of 3 of them and a delete of 3.
for (let round = 0; round < 10; round++) {
  const base = 100 + round * 10;
  await db.query(`INSERT INTO items SELECT i, 'item ' || i, 'item' || i || '@example.com' FROM generate_series(${base}, ${base + 9}) i`);
  await sleep(round * 20);
  await db.query(`UPDATE items SET name = name || ' renamed' WHERE id BETWEEN ${base} AND ${base + 2}`);
  await db.query(`DELETE FROM items WHERE id BETWEEN ${base + 3} AND ${base + 5}`);
}
await sleep(10_000);
run.child.kill('SIGTERM');
await run.exited;
const held = hubspot.records(object).map(idOf);
const model = (await db.query('SELECT id FROM items')).rows.map((r) => r.id);
const extra = [...new Set(held.filter((id) => !model.includes(id)))].sort((a, b) => a - b);
const creates = {};
for (const w of hubspot.stats().writes) if (w.op === 'create') creates[idOf(w)] = (creates[idOf(w)] ?? 0) + 1;
const twice = Object.keys(creates).filter((id) => creates[id] > 1);
const errors = (await outflow(dir, ['errors', '--json']).exited).output;
const reasons = [...new Set(JSON.parse(errors.split('\n').find((l) => l.startsWith('[')) ?? '[]').map((e) => `${e.op}: ${e.reason}`))];
console.log(`model ${model.length} rows, HubSpot ${held.length} ${object}; records of deleted rows still there: ${JSON.stringify(extra)}; ids created twice: ${JSON.stringify(twice)}`);
console.log(`row errors: ${reasons.join(' | ')}`);
await db.end();
await hubspot.stop();
await server.stop();
verdict(extra.length > 0 || twice.length > 0, 'changes streamed soon after their insert went out without the HubSpot id');
