import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isOutflowError, type Ack, type DiffStore } from '@outflow/core';
import { duckdbStateStore, stateFileOf } from '../src/index.js';
import { journalFiles } from '../src/ack-journal.js';

const open = (dir: string, readOnly = false) => duckdbStateStore({ dir }).open({ sync: 's', columns: null, readOnly });
const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** A process that records `acks`, then is killed before it closes the store (no fold, no cleanup). */
function recordThenDie(dir: string, acks: Ack[], tail = ''): void {
  const script = `
    import { appendFileSync } from 'node:fs';
    const { duckdbStateStore, stateFileOf } = await import(${JSON.stringify(entry)});
    const store = await duckdbStateStore({ dir: ${JSON.stringify(dir)} }).open({ sync: 's', columns: null, readOnly: false });
    await store.apply(${JSON.stringify(acks)});
    // What a write cut short by the kill leaves: a line without its end.
    if (${JSON.stringify(tail)}) appendFileSync(stateFileOf(${JSON.stringify(dir)}, 's') + '.acks-0', ${JSON.stringify(tail)});
    process.kill(process.pid, 'SIGKILL');
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(r.signal, r.stderr).toBe('SIGKILL');
}

async function seen(store: DiffStore, keys: string[]) {
  const addresses = Object.fromEntries([...(await store.addresses!(keys))].map(([k, a]) => [k, a]));
  const positions = Object.fromEntries([...(await store.positions!(keys))].map(([k, p]) => [k, p]));
  const inDoubt = (await store.inDoubt()).map((d) => `${d.key}:${d.fp}`).sort();
  return { addresses, positions, inDoubt };
}

describe('the journal in front of the DuckDB state', () => {
  it('keeps every ack a killed process recorded, leaves out a line cut short, and is gone once the state is closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outflow-journal-'));
    recordThenDie(
      dir,
      [
        { key: '1', kind: 'delivered', fp: '11', destId: 'd1', pos: '0/10' },
        { key: '2', kind: 'sent', fp: '22', match: { email: 'b@x.io' } },
        { key: '3', kind: 'delivered', fp: '33', destId: 'd3', pos: '0/20' },
        { key: '3', kind: 'deleted', pos: '0/30' },
      ],
      '["999","9","delivered","9',
    );
    // Readable by its owner only: acks hold destination ids and match keys (an email here).
    expect(statSync(journalFiles(stateFileOf(dir, 's'))[0]).mode & 0o777).toBe(0o600);

    const want = {
      addresses: { '1': { destId: 'd1', match: null }, '2': { destId: null, match: { email: 'b@x.io' } } },
      positions: { '1': { pos: '0/10', gone: false }, '3': { pos: '0/30', gone: true } },
      inDoubt: ['2:22'],
    };
    // A plan reads it as it is, and writes nothing.
    const plan = await open(dir, true);
    const planned = await seen(plan, ['1', '2', '3', '9']);
    expect({ addresses: planned.addresses, inDoubt: planned.inDoubt }).toEqual({ addresses: want.addresses, inDoubt: want.inDoubt });
    await plan.close();
    expect(readFileSync(journalFiles(stateFileOf(dir, 's'))[0], 'utf8')).toContain('"0/30"');

    const store = await open(dir);
    expect(await seen(store, ['1', '2', '3', '9'])).toEqual(want);
    await store.close();
    for (const f of journalFiles(stateFileOf(dir, 's'))) expect(existsSync(f)).toBe(false);

    const again = await open(dir);
    expect(await seen(again, ['1', '2', '3', '9'])).toEqual(want);
    await again.close();
  });

  it('refuses a journal damaged before its last line, naming the file and the line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outflow-journal-'));
    recordThenDie(dir, [{ key: '1', kind: 'delivered', fp: '11', destId: 'd1' }]);
    const file = journalFiles(stateFileOf(dir, 's'))[0];
    writeFileSync(file, 'not json\n' + readFileSync(file, 'utf8'));
    const err = await open(dir).then(
      async (s) => {
        await s.close();
        return new Error('opened');
      },
      (e: unknown) => e,
    );
    expect(isOutflowError(err, 'OUTFLOW_LEDGER'), String(err)).toBe(true);
    expect((err as Error).message).toContain(`${file} is damaged at line 1`);
  });

  it('answers a stream from the keys it holds, and from DuckDB plus the journal for keys it does not, exactly as DuckDB answers once the journal is moved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outflow-journal-'));
    const store = await open(dir);
    const keys = ['5', '17', 'x', '0042', '-3'];
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      // The low bits of this generator repeat quickly: the high ones decide.
      return (seed >>> 16) % n;
    };
    let pos = 0;
    const position = () => `0/${(++pos).toString(16).toUpperCase().padStart(8, '0')}`;
    // Read once, so every key is held from here on.
    await store.positions!(keys);
    for (let step = 0; step < 150; step++) {
      const acks: Ack[] = [];
      for (let i = 1 + rnd(3); i > 0; i--) {
        const key = keys[rnd(keys.length)]!;
        const fp = String(100 + rnd(5));
        switch (rnd(7)) {
          case 0:
            acks.push({ key, kind: 'sent', fp, ...(rnd(2) ? { match: { id: key, step } } : {}) });
            break;
          case 1:
          case 2:
            acks.push({ key, kind: 'delivered', fp, ...(rnd(2) ? { destId: `d${step}` } : {}), ...(rnd(3) ? { pos: position() } : {}) });
            break;
          case 3:
            acks.push({ key, kind: 'parked', fp: rnd(4) ? fp : null, ...(rnd(2) ? { pos: position() } : {}) });
            break;
          case 4:
            acks.push({ key, kind: 'deleted', pos: position() });
            break;
          case 5:
            acks.push({ key, kind: 'forget', ...(rnd(2) ? { pos: '' } : {}) });
            break;
          default:
            acks.push({ key, kind: 'delivered', fp, pos: position() });
        }
      }
      // A key no read has held yet: its acks are still in the journal when it is first read.
      const cold = `cold-${step}`;
      for (const a of acks.slice(0, 1 + rnd(2))) acks.push({ ...a, key: cold });
      await store.apply(acks);
      const asked = [...keys, cold];
      const held = { addresses: await store.addresses!(asked), positions: await store.positions!(asked) };
      // unpark() of no key changes nothing, and drops what the store holds: DuckDB answers.
      await store.unpark([]);
      const read = { addresses: await store.addresses!(asked), positions: await store.positions!(asked) };
      expect(held, `after step ${step}: ${JSON.stringify(acks)}`).toEqual(read);
    }
    await store.close();
  });
});
