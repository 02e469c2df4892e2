import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import hubspot from '@outflow/connector-hubspot';
import { start as startHubSpot, type HubSpotEmulator } from '@outflow/connector-hubspot/emulator';
import snowflake from '@outflow/connector-snowflake';
import { start, type SnowflakeEmulator } from '@outflow/connector-snowflake/emulator';
import { environment, streamSync, tempDir, until } from './helpers.js';
import { connect, destroy, exec, type Connection } from './sdk.js';

let sf: SnowflakeEmulator;
let crm: HubSpotEmulator;
let sql: Connection;
let dir: string;

beforeEach(async () => {
  dir = tempDir();
  sf = await start();
  crm = await startHubSpot({ dataDir: join(dir, 'hubspot') });
  sql = await connect(sf.config);
  await exec(sql, 'create table users (id int primary key, email varchar, name varchar)');
});

afterEach(async () => {
  await destroy(sql);
  await crm.stop();
  await sf.stop();
});

const contacts = () => new Map(crm.records('contacts').map((r) => [r.properties['email'], r.properties['firstname']]));

describe('streaming from Snowflake into HubSpot contacts, both through their real SDKs', () => {
  it('committed inserts, updates and deletes reach HubSpot, upserted by email, in order per key', async () => {
    const stop = new AbortController();
    const env = environment(
      dir,
      {
        warehouse: { connector: snowflake, config: sf.config },
        crm: { connector: hubspot, config: { ...crm.config, tier: 'professional' } },
      },
      stop.signal,
    );
    const sync = streamSync({
      to: { connection: 'crm', object: 'contacts', mode: 'upsert', deletes: 'delete', matchKey: { email: 'EMAIL' } },
      mappings: { email: 'EMAIL', firstname: 'NAME' },
    });
    const run = env.engine.run(sync);
    await until(async () => ((await env.ledger.getCheckpoint('users')) ?? 'outflow:').startsWith('outflow:') === false, 'the stream to follow the table (its first checkpoint)');

    await exec(sql, `insert into users values (1, 'a@x.io', 'Ada'), (2, 'b@x.io', 'Bea'), (3, 'c@x.io', 'Cy')`);
    await until(() => contacts().size === 3, 'the inserts');
    await exec(sql, 'begin');
    await exec(sql, `update users set name = 'Beatrice' where id = 2`);
    await exec(sql, `delete from users where id = 3`);
    await exec(sql, 'commit');
    await until(() => contacts().get('b@x.io') === 'Beatrice' && !contacts().has('c@x.io'), 'the update and the delete');
    await exec(sql, `update users set name = 'Ada L.' where id = 1`);
    await until(() => contacts().get('a@x.io') === 'Ada L.', 'the second update');
    stop.abort();
    const summary = await run;
    await env.close();

    expect(summary.status).toBe('succeeded');
    expect(Object.fromEntries(contacts())).toEqual({ 'a@x.io': 'Ada L.', 'b@x.io': 'Beatrice' });
  });
});
