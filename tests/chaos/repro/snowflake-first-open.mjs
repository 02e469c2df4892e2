// A Snowflake stream sync stopped (SIGTERM, or SIGKILL) right after its first run created the
// STREAM, before core marked the reconcile pending: every later run resumes the STREAM and the
// rows already in the table are never delivered.
//   node tests/chaos/repro/snowflake-first-open.mjs [SIGTERM|SIGKILL]
// Found by `npm run chaos -- --seed 2 --scenarios snowflake-stream→webhook` (cycle 1: a SIGTERM
// 3 s into the first run, 251 of 307 rows lost); whether that stop lands in the window depends
// on the machine, this script hits it every time.
import { start as startSnowflake } from '@outflow/connector-snowflake/emulator';
import { start as startWebhook } from '@outflow/connector-webhook/emulator';
import { outflow, sleep, verdict, workspace } from './lib.mjs';

const signal = process.argv[2] ?? 'SIGTERM';
const sf = await startSnowflake();
const receiver = await startWebhook();
const table = '"ANALYTICS"."PUBLIC"."ITEMS"';
await sf.sql(`CREATE TABLE ${table} (ID INTEGER PRIMARY KEY, NAME VARCHAR NOT NULL)`);
await sf.sql(`INSERT INTO ${table} SELECT i, 'item ' || i FROM (SELECT SEQ4() + 1 AS i FROM TABLE(GENERATOR(ROWCOUNT => 100)))`);
const dir = workspace(`version: 1
connections:
  src: { connector: snowflake, config: { account: ${sf.config.account}, username: ${sf.config.username}, password: "${sf.config.password}", database: ANALYTICS, warehouse: COMPUTE_WH, accessUrl: "${sf.url}" } }
  dst: { connector: webhook, config: { url: "${receiver.url}", secret: "${receiver.config.secret}" } }
syncs:
  - name: items
    from: { connection: src, table: ITEMS, primaryKey: ID }
    capture: stream
    to: { connection: dst, object: items, mode: upsert, deletes: delete }
`);

// The first run is stopped as soon as the connector says it created the stream.
// (On the output event itself, not by polling: the window is a few milliseconds wide.)
const first = outflow(dir, ['run', '--json'], { OUTFLOW_LOG_LEVEL: 'info' });
const onOutput = () => {
  if (!first.output().includes('created a Snowflake stream')) return;
  first.child.kill(signal);
  first.child.stdout.off('data', onOutput);
  first.child.stderr.off('data', onOutput);
};
first.child.stdout.on('data', onOutput);
first.child.stderr.on('data', onOutput);
const ended = await first.exited;
console.log(`first run: stopped with ${signal}, exit ${ended.code ?? ended.signal}`);

// A second, undisturbed run, for 10 s.
const second = outflow(dir, ['run', '--json'], { OUTFLOW_LOG_LEVEL: 'info' });
await sleep(10_000);
second.child.kill('SIGTERM');
const out = (await second.exited).output;
console.log(out.includes('resuming the Snowflake stream') ? 'second run: "resuming the Snowflake stream recreated after it went stale" (no reconcile)' : 'second run: reconciled');
const held = receiver.records('items').length;
await sf.stop();
await receiver.stop();
verdict(held < 100, `the table holds 100 rows, the receiver ${held}`);
