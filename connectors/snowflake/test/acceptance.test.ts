import snowflake, { BATCH_SIZE, type SnowflakeConfig } from '@outflow/connector-snowflake';
import { start, type SnowflakeEmulator } from '@outflow/connector-snowflake/emulator';
import type { Row } from '@outflow/core';
import { sourceAcceptance, streamAcceptance } from '@outflow/testing';
import { connect, destroy, exec, type Connection } from './sdk.js';

// More rows than two batches, so aborting after the first batch leaves a read in progress.
const ROWS = BATCH_SIZE * 2 + 5_000;

const expectedRows: Row[] = Array.from({ length: ROWS }, (_, n) => {
  const id = n + 1;
  return { ID: id, EMAIL: id % 7 === 0 ? null : `customer${id}@example.com`, NAME: `Customer ${id}`, SCORE: id / 4, ACTIVE: id % 3 !== 0 };
});

let sourceEmu: SnowflakeEmulator;

sourceAcceptance<SnowflakeConfig>({
  connector: snowflake,
  model: { table: 'CUSTOMERS', primaryKey: ['ID'] },
  expectedRows,
  async setup() {
    sourceEmu = await start({ chunkRows: 4000 });
    const c = await connect(sourceEmu.config);
    await exec(c, `create table customers (id int primary key, email varchar, name varchar not null, score float, active boolean)`);
    await exec(
      c,
      `insert into customers select n, case when n % 7 = 0 then null else 'customer' || n || '@example.com' end,
         'Customer ' || n, n / 4, n % 3 <> 0 from (select seq4() + 1 as n from table(generator(rowcount => ${ROWS})))`,
    );
    await destroy(c);
    return sourceEmu.config;
  },
  teardown: () => sourceEmu.stop(),
  badConfigs: (config) => [
    { name: 'a wrong password', config: { ...config, password: 'not-the-password' } },
    { name: 'an unknown account', config: { ...config, account: 'nobody' } },
    { name: 'a database that does not exist', config: { ...config, database: 'NOPE' } },
  ],
});

let streamEmu: SnowflakeEmulator;
let writer: Connection;

streamAcceptance<SnowflakeConfig>({
  connector: snowflake,
  model: { table: 'ITEMS', primaryKey: ['ID'] },
  row: (i, version) => ({ ID: i, NAME: `item ${i} v${version}` }),
  async mutate(kind, row) {
    if (kind === 'insert') await exec(writer, 'insert into items values (?, ?)', [row['ID'], row['NAME']]);
    else if (kind === 'update') await exec(writer, 'update items set name = ? where id = ?', [row['NAME'], row['ID']]);
    else await exec(writer, 'delete from items where id = ?', [row['ID']]);
  },
  // The STREAM's offset falls out of the table's data retention, as after 14 idle days; SHOW
  // STREAMS looks at it while the retention is short, which marks it stale for good.
  async makeStale() {
    streamEmu.setRetention(1);
    await new Promise((r) => setTimeout(r, 20));
    await exec(writer, `show streams in database ${streamEmu.config.database}`);
    streamEmu.setRetention(14 * 86_400_000);
  },
  async setup() {
    streamEmu = await start();
    writer = await connect(streamEmu.config);
    await exec(writer, 'create table items (id int primary key, name varchar)');
    return streamEmu.config;
  },
  async teardown() {
    await destroy(writer);
    await streamEmu.stop();
  },
  badConfigs: (config) => [{ name: 'a wrong password', config: { ...config, password: 'not-the-password' } }],
});
