import { readdirSync, readlinkSync } from 'node:fs';
import { it } from 'vitest';
import duckdb from '@outflow/connector-duckdb';
import { createFixtures } from './fixtures.js';
import { context, otherProcess, stop } from './helpers.js';
const fds = (p: string) => readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`).startsWith(p); } catch { return false; } });
it('debug', async () => {
  const f = await createFixtures();
  console.log('after fixtures', fds(f.db));
  const it = duckdb.source!.read(context({ path: f.db }), { table: 'numbers', primaryKey: [] })[Symbol.asyncIterator]();
  await it.next();
  console.log('reading', fds(f.db));
  const o = await otherProcess(f.db);
  console.log('child', o.error);
  await stop(o.child);
  await it.return!(undefined);
});
