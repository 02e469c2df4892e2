import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import webhook from '@outflow/connector-webhook';
import { start as startWebhook, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import type { RunSummary } from '@outflow/core';
import databricks from '../src/index.js';
import { startDatabricksEmulator } from '../src/emulator/index.js';
import { configOf, environment, streamSync, tempDir, until, type Emulator } from './helpers.js';

let dbx: Emulator;
let hooks: WebhookEmulator;
let dir: string;

beforeEach(async () => {
  dir = tempDir();
  dbx = await startDatabricksEmulator();
  hooks = await startWebhook({ dataDir: join(dir, 'receiver') });
  await dbx.sql('CREATE TABLE users (id BIGINT, email STRING, name STRING) TBLPROPERTIES (delta.enableChangeDataFeed = true)');
});

afterEach(async () => {
  await hooks.stop();
  await dbx.stop();
});

const names = () => new Map(hooks.records('users').map((r) => [r.key, String(r.fields['name'])]));
/** What the receiver applied per key, in order, from its own write log. */
const applied = () => {
  const out = new Map<string, string[]>();
  for (const w of hooks.writes('users')) out.set(w.key, [...(out.get(w.key) ?? []), w.t === 'put' ? (w.created ? 'create' : 'put') : 'del']);
  return out;
};
const connections = () => ({ warehouse: { connector: databricks, config: configOf(dbx) }, hooks: { connector: webhook, config: hooks.config } });
const streaming = async (env: ReturnType<typeof environment>) =>
  until(async () => /^\d+$/.test((await env.ledger.getCheckpoint('users')) ?? ''), 'the stream to follow the table (its first checkpoint)');

describe('streaming a Databricks change data feed to a webhook through @databricks/sql', () => {
  it('delivers the rows already there by a diff, then every committed change in order per key', async () => {
    await dbx.sql(`INSERT INTO users VALUES (1, 'a@x.io', 'a0'), (2, 'b@x.io', 'b0')`);
    const stop = new AbortController();
    const env = environment(dir, connections(), stop.signal);
    const seen: RunSummary[] = [];
    const run = env.engine.run(streamSync(), { onRun: (r) => void seen.push(r) });
    await streaming(env);
    expect(Object.fromEntries(names())).toEqual({ '1': 'a0', '2': 'b0' });

    await dbx.sql(`INSERT INTO users VALUES (3, 'c@x.io', 'c0')`);
    await dbx.sql(`UPDATE users SET name = 'b1' WHERE id = 2`);
    await dbx.sql('DELETE FROM users WHERE id = 3');
    await dbx.sql(`UPDATE users SET name = 'a1' WHERE id = 1`);
    await dbx.sql(`UPDATE users SET name = 'a2' WHERE id = 1`);
    await dbx.sql(`INSERT INTO users VALUES (4, 'd@x.io', 'd0')`);
    await until(() => names().get('1') === 'a2' && names().has('4') && !names().has('3'), 'the changes');
    stop.abort();
    await run;
    await env.close();

    expect(seen.map((s) => [s.capture, s.status])).toEqual([
      ['stream', 'failed'],
      ['diff', 'succeeded'],
      ['stream', 'succeeded'],
    ]);
    expect(Object.fromEntries(names())).toEqual({ '1': 'a2', '2': 'b1', '4': 'd0' });
    expect(Object.fromEntries(applied())).toEqual({
      '1': ['create', 'put', 'put'],
      '2': ['create', 'put'],
      '3': ['create', 'del'],
      '4': ['create'],
    });
  });

  it('a feed past its retention is reported stale, reconciled by a diff sending only the rows that differ, then streams again', async () => {
    await dbx.sql(`INSERT INTO users VALUES (1, 'a@x.io', 'a0'), (2, 'b@x.io', 'b0'), (3, 'c@x.io', 'c0')`);
    const first = new AbortController();
    let env = environment(dir, connections(), first.signal);
    const run = env.engine.run(streamSync());
    await streaming(env);
    first.abort();
    await run;
    await env.close();
    const writesBefore = hooks.writes('users').length;

    // While nothing follows the feed, changes land and retention removes them.
    await dbx.sql(`UPDATE users SET name = 'a1' WHERE id = 1`);
    await dbx.sql('DELETE FROM users WHERE id = 2');
    await dbx.sql(`INSERT INTO users VALUES (5, 'e@x.io', 'e0')`);
    await dbx.setRetention({ versions: 1 });
    await dbx.setRetention({});

    const second = new AbortController();
    env = environment(dir, connections(), second.signal);
    const seen: RunSummary[] = [];
    const runs = env.engine.run(streamSync(), { onRun: (r) => void seen.push(r) }).then(() => seen);
    await until(() => names().get('1') === 'a1' && !names().has('2') && names().has('5'), 'the reconciling diff');
    await dbx.sql(`INSERT INTO users VALUES (6, 'f@x.io', 'f0')`);
    await until(() => names().has('6'), 'a change streamed after the reconcile');
    second.abort();
    const summaries = await runs;
    await env.close();

    expect(summaries.map((s) => [s.capture, s.status, s.error?.code])).toEqual([
      ['stream', 'failed', 'OUTFLOW_STREAM_STALE'],
      ['diff', 'succeeded', undefined],
      ['stream', 'succeeded', undefined],
    ]);
    expect(summaries[0]!.error!.message).toMatch(/no longer holds the versions/);
    // Only the rows that differ were sent: key 3 did not change and was not sent again.
    const after = hooks.writes('users').slice(writesBefore).map((w) => `${w.t} ${w.key}`);
    expect(after.slice(0, 3).sort()).toEqual(['del 2', 'put 1', 'put 5']);
    expect(after.slice(3)).toEqual(['put 6']);
    expect(Object.fromEntries(names())).toEqual({ '1': 'a1', '3': 'c0', '5': 'e0', '6': 'f0' });
  });
});
