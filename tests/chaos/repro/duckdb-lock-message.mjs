// A DuckDB warehouse file held open for writing by another process (here: this script) while a
// diff sync runs: the connector's README promises a retryable OUTFLOW_SOURCE naming the
// warehouse file; the pushed-down diff fails instead with OUTFLOW_LOCKED saying that its own
// diff state "is in use by another outflow process" — the wrong file and the wrong cause.
//   node tests/chaos/repro/duckdb-lock-message.mjs
// Seen in `npm run chaos` (duckdb→… scenarios, e.g. seed 797550008) when a run starts while the
// harness writes the model.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { start as startWebhook } from '@outflow/connector-webhook/emulator';
import { outflow, verdict, workspace } from './lib.mjs';

const path = join(mkdtempSync(join(tmpdir(), 'outflow-repro-duckdb-')), 'warehouse.duckdb');
const db = await DuckDBInstance.create(path);
const writer = await db.connect();
await writer.run(`CREATE TABLE items AS SELECT i AS id, 'item ' || i AS name FROM range(1, 11) r(i)`);
const receiver = await startWebhook();
const dir = workspace(`version: 1
connections:
  src: { connector: duckdb, config: { path: "${path}" } }
  dst: { connector: webhook, config: { url: "${receiver.url}", secret: "${receiver.config.secret}" } }
syncs:
  - name: items
    from: { connection: src, table: items, primaryKey: id }
    to: { connection: dst, object: items, mode: upsert }
`);
// The warehouse stays open for writing in this process while the CLI runs.
const run = await outflow(dir, ['run', '--json']).exited;
const line = run.output.trim().split('\n').pop();
console.log(`run: exit ${run.code}: ${line}`);
writer.closeSync();
db.closeSync();
await receiver.stop();
verdict(/OUTFLOW_LOCKED/.test(line) && /diff state/.test(line), 'the run blames its own diff state (OUTFLOW_LOCKED) for a lock another process holds on the warehouse');
