import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import snowflake from '@outflow/connector-snowflake';
import { start, type SnowflakeEmulator } from '@outflow/connector-snowflake/emulator';
import webhook from '@outflow/connector-webhook';
import { LOG_FILE, start as startWebhook, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import type { RunSummary } from '@outflow/core';
import { appliedByKey, environment, streamSync, tempDir, until } from './helpers.js';
import { connect, destroy, exec, type Connection } from './sdk.js';

let sf: SnowflakeEmulator;
let hooks: WebhookEmulator;
let sql: Connection;
let dir: string;

beforeEach(async () => {
  dir = tempDir();
  sf = await start();
  hooks = await startWebhook({ dataDir: join(dir, 'receiver') });
  sql = await connect(sf.config);
  await exec(sql, 'create table users (id int primary key, email varchar, name varchar)');
});

afterEach(async () => {
  await destroy(sql);
  await hooks.stop();
  await sf.stop();
});

const names = () => new Map(hooks.records('users').map((r) => [r.key, String(r.fields['name'])]));

describe('streaming from Snowflake to a webhook through snowflake-sdk', () => {
  it('delivers committed inserts, updates and deletes in order per key', async () => {
    const stop = new AbortController();
    const env = environment(dir, { warehouse: { connector: snowflake, config: sf.config }, hooks: { connector: webhook, config: hooks.config } }, stop.signal);
    const run = env.engine.run(streamSync());
    await until(async () => ((await env.ledger.getCheckpoint('users')) ?? 'outflow:').startsWith('outflow:') === false, 'the stream to follow the table (its first checkpoint)');

    await exec(sql, `insert into users values (1, 'a@x.io', 'a0'), (2, 'b@x.io', 'b0'), (3, 'c@x.io', 'c0')`);
    await until(() => names().size === 3, 'the inserts');
    await exec(sql, 'begin');
    await exec(sql, `update users set name = 'b1' where id = 2`);
    await exec(sql, `delete from users where id = 3`);
    await exec(sql, 'commit');
    await until(() => names().get('2') === 'b1' && !names().has('3'), 'the update and the delete');
    await exec(sql, `update users set name = 'a1' where id = 1`);
    await exec(sql, `update users set name = 'a2' where id = 1`);
    await exec(sql, 'begin');
    await exec(sql, `insert into users values (4, 'd@x.io', 'never')`);
    await exec(sql, 'rollback');
    await exec(sql, `insert into users values (5, 'e@x.io', 'e0')`);
    await until(() => names().get('1') === 'a2' && names().has('5'), 'the last changes');
    stop.abort();
    const summary = await run;
    await env.close();

    expect(summary.status).toBe('succeeded');
    expect(Object.fromEntries(names())).toEqual({ '1': 'a2', '2': 'b1', '5': 'e0' });
    const applied = appliedByKey(join(dir, 'receiver', LOG_FILE));
    expect(applied.get('2')).toEqual(['put:b0', 'put:b1']);
    expect(applied.get('3')).toEqual(['put:c0', 'del']);
    // Two commits of updates may arrive as one net change: never out of order.
    expect(applied.get('1')![0]).toBe('put:a0');
    expect(applied.get('1')!.at(-1)).toBe('put:a2');
    expect(applied.has('4')).toBe(false);
  });

  it('a stale stream is reported, reconciled by a diff, recreated, and streaming goes on', async () => {
    const first = new AbortController();
    let env = environment(dir, { warehouse: { connector: snowflake, config: sf.config }, hooks: { connector: webhook, config: hooks.config } }, first.signal);
    const run = env.engine.run(streamSync());
    await until(async () => ((await env.ledger.getCheckpoint('users')) ?? 'outflow:').startsWith('outflow:') === false, 'the stream to follow the table (its first checkpoint)');
    await exec(sql, `insert into users values (1, 'a@x.io', 'a0'), (2, 'b@x.io', 'b0')`);
    await until(() => names().size === 2, 'the first inserts');
    first.abort();
    await run;
    await env.close();

    // While nothing reads the stream, changes land and the stream falls out of retention.
    await exec(sql, `update users set name = 'a1' where id = 1`);
    await exec(sql, `delete from users where id = 2`);
    await exec(sql, `insert into users values (3, 'c@x.io', 'c0')`);
    sf.setRetention(1);
    await new Promise((r) => setTimeout(r, 20));
    expect((await exec(sql, 'show streams in schema analytics.outflow'))[0]!['stale']).toBe('true');
    sf.setRetention(14 * 86_400_000);

    const second = new AbortController();
    env = environment(dir, { warehouse: { connector: snowflake, config: sf.config }, hooks: { connector: webhook, config: hooks.config } }, second.signal);
    const seen: RunSummary[] = [];
    const runs = env.engine.run(streamSync(), { onRun: (r) => void seen.push(r) }).then(() => seen);
    await until(() => names().get('1') === 'a1' && !names().has('2') && names().has('3'), 'the reconciling diff');
    await exec(sql, `insert into users values (4, 'd@x.io', 'd0')`);
    await until(() => names().has('4'), 'a change streamed after the reconciliation');
    second.abort();
    const summaries = await runs;
    await env.close();

    expect(summaries.map((s) => [s.capture, s.status, s.error?.code])).toEqual([
      ['stream', 'failed', 'OUTFLOW_STREAM_STALE'],
      ['diff', 'succeeded', undefined],
      ['stream', 'succeeded', undefined],
    ]);
    expect(summaries[0]!.error!.message).toMatch(/stale/);
    expect(summaries[1]).toMatchObject({ updated: 1, deleted: 1, inserted: 1 });
    expect(Object.fromEntries(names())).toEqual({ '1': 'a1', '3': 'c0', '4': 'd0' });
    expect((await exec(sql, 'show streams in schema analytics.outflow'))[0]!['stale']).toBe('false');
  });
});
