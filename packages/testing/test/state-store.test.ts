import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { OutflowError, fingerprint, latestAcks, type Ack, type DiffRow, type RecordAddress, type Row, type StateStoreOpenOptions, type Value } from '@outflow/core';
import { AcceptanceFailure, startStateStore, stateStoreChecks, stateStoreSuite, type StateStoreDriver } from '../src/index.js';
import { MemoryStateStore, type OpenedStore } from './memory-state.js';

const reference = new MemoryStateStore();
stateStoreSuite({ name: 'memory (reference, ingest)', open: (o) => reference.open(o) });

const pushdown = new MemoryStateStore();
stateStoreSuite({ name: 'memory (reference, pushdown)', open: (o) => pushdown.openPushdown(o), writeModel: (sync, rows) => pushdown.writeModel(sync, rows) });

function delegate(s: OpenedStore): OpenedStore {
  return {
    ingest: s.ingest,
    getMeta: (k) => s.getMeta(k),
    setMeta: (k, v) => s.setMeta(k, v),
    markAllStale: () => s.markAllStale(),
    unpark: (keys) => s.unpark(keys),
    computeChanges: () => s.computeChanges(),
    changes: () => s.changes(),
    apply: (acks) => s.apply(acks),
    inDoubt: () => s.inDoubt(),
    addresses: (keys) => s.addresses!(keys),
    positions: (keys) => s.positions!(keys),
    forgetPositions: (upTo) => s.forgetPositions!(upTo),
    deliveredCount: () => s.deliveredCount(),
    tidy: () => s.tidy(),
    close: () => s.close(),
  };
}

interface Ctx {
  inner: OpenedStore;
  options: StateStoreOpenOptions;
  base: MemoryStateStore;
}

/** A driver over the reference store with some methods replaced: a deliberately broken store. */
function broken(patch: (c: Ctx) => Partial<OpenedStore>, open?: (base: MemoryStateStore, o: StateStoreOpenOptions) => Promise<OpenedStore>): StateStoreDriver {
  const base = new MemoryStateStore();
  return {
    name: 'broken',
    open: async (options) => {
      const inner = await (open ? open(base, options) : base.open(options));
      return { ...delegate(inner), ...patch({ inner, options, base }) };
    },
  };
}

function pages(inner: OpenedStore, fn: (page: DiffRow[], index: number) => DiffRow[]): Pick<OpenedStore, 'changes'> {
  return {
    changes: async function* () {
      let i = 0;
      for await (const page of inner.changes()) yield fn(page, i++);
    },
  };
}

const rowsMapped = (inner: OpenedStore, fn: (row: Row) => Row) => pages(inner, (page) => page.map((c) => (c.row ? { ...c, row: fn(c.row) } : c)));

function fingerprints(inner: OpenedStore, fn: (rows: Row[], fps: string[]) => string[]): Pick<OpenedStore, 'ingest'> {
  return { ingest: { ...inner.ingest, add: (keys, rows, fps) => inner.ingest.add(keys, rows, fn(rows, fps)) } };
}

/** Drops the changes `drop` picks, from the counts and the pages alike. */
function without(inner: OpenedStore, drop: (c: DiffRow) => boolean): Partial<OpenedStore> {
  let dropped = { insert: 0, update: 0, delete: 0 };
  return {
    computeChanges: async () => {
      const counts = await inner.computeChanges();
      dropped = { insert: 0, update: 0, delete: 0 };
      for await (const page of inner.changes()) for (const c of page) if (drop(c)) dropped[c.op]++;
      return { insert: counts.insert - dropped.insert, update: counts.update - dropped.update, delete: counts.delete - dropped.delete };
    },
    ...pages(inner, (page) => page.filter((c) => !drop(c))),
  };
}

/** Applies acks as if one without a destination id cleared the id known before. */
const idsOverwritten = (inner: OpenedStore): Pick<OpenedStore, 'apply'> => ({
  apply: async (acks) => {
    const blank = acks.filter((a) => a.kind === 'delivered' && !a.destId).map((a): Ack => ({ key: a.key, kind: 'forget' }));
    if (blank.length) await inner.apply(blank);
    await inner.apply(acks);
  },
});

const filtered = (inner: OpenedStore, keep: (a: Ack) => boolean): Pick<OpenedStore, 'apply'> => ({ apply: (acks) => inner.apply(acks.filter(keep)) });

function typeOf(v: Value | undefined): string {
  return v === null || v === undefined ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

type CheckName = keyof typeof stateStoreChecks;

interface Variant {
  check: CheckName;
  what: string;
  driver: () => StateStoreDriver;
  message: RegExp;
}

const variants: Variant[] = [
  {
    check: 'addresses',
    what: 'reads addresses as of the last fold only, missing acks not folded yet',
    driver: () => {
      const folded = new Map<string, Map<string, RecordAddress>>();
      return broken(({ inner, options }) => ({
        addresses: async (keys) => new Map([...(folded.get(options.sync) ?? new Map<string, RecordAddress>())].filter(([k]) => keys.includes(k))),
        close: async () => {
          folded.set(options.sync, await inner.addresses!(['1', '2', '3', '4', '5', '6']));
          await inner.close();
        },
      }));
    },
    message: /addresses\(\) after the first acks: expected \{.*\}, got \{\}/,
  },
  {
    check: 'addresses',
    what: 'forgets the destination id when an update is acknowledged without one',
    driver: () => broken(({ inner }) => idsOverwritten(inner)),
    message: /addresses\(\) after a write in doubt \(2\), a delete \(4\) and an update acked without an id \(5\): expected .*"5":\{"destId":"d5","match":null\}.*, got \{.*"5":\{"destId":null,"match":null\}/,
  },
  {
    check: 'addresses',
    what: 'does not keep the match key of a write in doubt',
    driver: () => broken(({ inner }) => ({ apply: (acks) => inner.apply(acks.map((a) => (a.kind === 'sent' ? { key: a.key, kind: 'sent', fp: a.fp } : a))) })),
    message: /expected .*"2":\{"destId":null,"match":\{"email":"two@example.com"\}\}.*, got \{.*"2":\{"destId":null,"match":null\}/,
  },
  {
    check: 'positions',
    what: 'keeps no position for a change that deleted the record',
    driver: () => broken(({ inner }) => ({ apply: (acks) => inner.apply(acks.map((a) => (a.kind === 'deleted' ? { key: a.key, kind: 'deleted' } : a))) })),
    message: /positions\(\) after acks in two apply\(\) calls .*: expected \{.*"2":\{"pos":"0000000009","gone":true\}.*\}, got \{.*"2":\{"pos":"0000000002","gone":false\}/,
  },
  {
    check: 'positions',
    what: 'forgets every position when asked to forget up to a point',
    driver: () => broken(({ inner }) => ({ forgetPositions: () => inner.forgetPositions!() })),
    message: /positions\(\) after forgetPositions\("0000000009"\): expected \{"1":.*\}, got \{\}/,
  },
  {
    check: 'positions',
    what: 'forgets the deletes of a reconcile with the positions below a checkpoint',
    driver: () =>
      broken(({ inner, base, options }) => ({
        forgetPositions: async (upTo) => {
          await inner.forgetPositions!(upTo);
          const positions = base.disk.get(options.sync)!.positions;
          for (const [key, at] of positions) if (at.pos === '') positions.delete(key);
        },
      })),
    message: /positions\(\) after forgetPositions\("0000000009"\): expected \{.*"7":\{"pos":"","gone":true\}\}, got \{(?!.*"7")/,
  },
  {
    check: 'positions',
    what: 'keeps positions in memory only, lost at a reopen',
    driver: () => {
      const closed = new Set<string>();
      return broken(({ inner, options }) => ({
        positions: async (keys) => (closed.has(options.sync) ? new Map() : inner.positions!(keys)),
        close: async () => {
          closed.add(options.sync);
          await inner.close();
        },
      }));
    },
    message: /positions\(\) after a reopen: expected \{.*\}, got \{\}/,
  },
  {
    check: 'firstRun',
    what: 'hands nested objects out as JSON strings',
    driver: () => broken(({ inner }) => rowsMapped(inner, (row) => ({ ...row, data: JSON.stringify(row['data']) }))),
    message: /the insert of 1 has data = ".*\(string\), expected \{.*\(object\)/,
  },
  {
    check: 'firstRun',
    what: 'hands numbers out as strings',
    driver: () => broken(({ inner }) => rowsMapped(inner, (row) => ({ ...row, score: String(row['score']) }))),
    message: /has score = "1\.25" \(string\), expected 1\.25 \(number\)/,
  },
  {
    check: 'firstRun',
    what: 'leaks a helper column into the rows',
    driver: () => broken(({ inner }) => rowsMapped(inner, (row) => ({ ...row, __key: String(row['id']) }))),
    message: /has an extra column __key/,
  },
  {
    check: 'unchanged',
    what: 'fingerprints differently on every open',
    driver: () =>
      broken(({ inner }) => {
        const salt = randomBytes(4).toString('hex');
        return fingerprints(inner, (_rows, fps) => fps.map((fp) => `${fp}${salt}`));
      }),
    message: /a run over the model just delivered: expected nothing; changes\(\) yielded update 1/,
  },
  {
    check: 'update',
    what: 'loses the destination id of updates',
    driver: () => broken(({ inner }) => pages(inner, (page) => page.map((c) => (c.op === 'update' ? { ...c, destId: null } : c)))),
    message: /the update of 1 has destination id \(destId\) null, expected "dest-1"/,
  },
  {
    check: 'update',
    what: 'overwrites the destination id when an update is acknowledged without one',
    driver: () => broken(({ inner }) => idsOverwritten(inner)),
    message: /row 1 changed again .*: the update of 1 has destination id \(destId\) null, expected "dest-1"/,
  },
  {
    check: 'update',
    what: 'hands out the old row with an update',
    driver: () => {
      const firstSeen = new Map<string, Row>();
      return broken(({ inner }) => rowsMapped(inner, (row) => firstSeen.get(String(row['id'])) ?? (firstSeen.set(String(row['id']), row), row)));
    },
    message: /the update of 1 has name = "row 1"/,
  },
  {
    check: 'delete',
    what: 'never deletes',
    driver: () => broken(({ inner }) => without(inner, (c) => c.op === 'delete')),
    message: /expected delete 4; changes\(\) yielded nothing/,
  },
  {
    check: 'delete',
    what: 'deletes again after the delete was acknowledged',
    driver: () => broken(({ inner }) => filtered(inner, (a) => a.kind !== 'deleted')),
    message: /after the delete was acknowledged: expected nothing; changes\(\) yielded delete 4/,
  },
  {
    check: 'undelivered',
    what: 'deletes every key that left the model, delivered or not',
    driver: () => {
      const seen = new Map<string, Set<string>>();
      return broken(({ inner, options }) => {
        const now = new Set<string>();
        let extra: DiffRow[] = [];
        return {
          ingest: { ...inner.ingest, add: (keys, rows, fps) => (keys.forEach((k) => now.add(k)), inner.ingest.add(keys, rows, fps)) },
          computeChanges: async () => {
            const counts = await inner.computeChanges();
            const yielded = new Set<string>();
            for await (const page of inner.changes()) for (const c of page) yielded.add(c.key);
            const before = seen.get(options.sync) ?? new Set();
            extra = [...before].filter((k) => !now.has(k) && !yielded.has(k)).map((key) => ({ op: 'delete', key, fp: null, row: null, oldFp: null, destId: null, sentFp: null }));
            seen.set(options.sync, new Set([...before, ...now]));
            return { ...counts, delete: counts.delete + extra.length };
          },
          changes: async function* () {
            yield* inner.changes();
            if (extra.length) yield extra;
          },
        };
      });
    },
    message: /left the model: expected nothing; changes\(\) yielded delete 3, delete 4/,
  },
  {
    check: 'parked',
    what: 'forgets parked versions',
    driver: () => broken(({ inner }) => filtered(inner, (a) => a.kind !== 'parked')),
    message: /row 3 is parked\): expected update 2; changes\(\) yielded insert 3, update 2/,
  },
  {
    check: 'parked',
    what: 'repeats a refused delete',
    driver: () => broken(({ inner }) => filtered(inner, (a) => !(a.kind === 'parked' && a.fp === null))),
    message: /after the delete of 4 was refused \(parked\): expected nothing; changes\(\) yielded delete 4/,
  },
  {
    check: 'inDoubt',
    what: 'drops sent acks',
    driver: () => broken(({ inner }) => filtered(inner, (a) => a.kind !== 'sent')),
    message: /inDoubt\(\) listed \{\}, expected \{"4":/,
  },
  {
    check: 'inDoubt',
    what: 'leaves sentFp out of the changes',
    driver: () => broken(({ inner }) => pages(inner, (page) => page.map((c) => ({ ...c, sentFp: null })))),
    message: /the insert of 4 has fingerprint of the write in doubt \(sentFp\) null/,
  },
  {
    check: 'inDoubt',
    what: 'lists nothing in doubt',
    driver: () => broken(() => ({ inDoubt: async () => [] })),
    message: /inDoubt\(\) listed \{\}, expected \{"4":/,
  },
  {
    check: 'inDoubt',
    what: 'deletes only what was delivered, not what was sent',
    driver: () => broken(({ inner }) => without(inner, (c) => c.op === 'delete' && c.oldFp === null)),
    message: /key 5: expected delete, got no change/,
  },
  {
    check: 'deliveredCount',
    what: 'counts only acknowledged records, not writes in doubt',
    driver: () =>
      broken(({ inner }) => ({
        deliveredCount: async () => (await inner.deliveredCount()) - (await inner.inDoubt()).filter((d) => d.key === '6').length,
      })),
    message: /deliveredCount\(\) after rows 1–4 were delivered, 5 parked and 6 sent and never acknowledged returned 4, expected 5/,
  },
  {
    check: 'deliveredCount',
    what: 'counts parked rows as owned',
    driver: () => broken(({ inner }) => ({ deliveredCount: async () => (await inner.deliveredCount()) + 1 })),
    message: /deliveredCount\(\) before anything was delivered returned 1, expected 0/,
  },
  {
    check: 'durable',
    what: 'keeps its state in the open store only',
    driver: () => {
      let opens = 0;
      return broken(
        () => ({}),
        (base, o) => base.open({ ...o, sync: `${o.sync}#${++opens}` }),
      );
    },
    message: /after a reopen, getMeta\("outflow-acceptance"\) is undefined/,
  },
  {
    check: 'durable',
    what: 'keeps parked and sent acks in the open store only',
    driver: () => broken(({ inner }) => filtered(inner, (a) => a.kind !== 'parked' && a.kind !== 'sent')),
    message: /after a reopen: inDoubt\(\) listed \{\}, expected \{"3":/,
  },
  {
    check: 'readOnly',
    what: 'writes when opened read-only',
    driver: () => broken(() => ({}), (base, o) => base.open({ ...o, readOnly: false })),
    message: /apply\(\) on a read-only store resolved; it must throw/,
  },
  {
    check: 'readOnly',
    what: 'cannot open a missing state read-only',
    driver: () =>
      broken(
        () => ({}),
        (base, o) => {
          if (o.readOnly && !base.disk.has(o.sync)) throw new OutflowError('OUTFLOW_LEDGER', `no delivered state for ${o.sync}`);
          return base.open(o);
        },
      ),
    message: /open\(.*"readOnly":true\}\) failed: .*no delivered state/,
  },
  {
    check: 'readOnly',
    what: 'records the diff as delivered in a read-only run',
    driver: () =>
      broken(({ inner, options, base }) => ({
        computeChanges: async () => {
          const counts = await inner.computeChanges();
          if (options.readOnly) {
            const writable = await base.open({ ...options, readOnly: false });
            for await (const page of inner.changes()) await writable.apply(page.map((c): Ack => (c.op === 'delete' ? { key: c.key, kind: 'deleted' } : { key: c.key, kind: 'delivered', fp: c.fp! })));
          }
          return counts;
        },
      })),
    message: /a writable run after a read-only run \(which recorded nothing\): expected insert 1, insert 2, insert 3; changes\(\) yielded nothing/,
  },
  {
    check: 'markAllStale',
    what: 'counts the delivered rows but marks nothing',
    driver: () =>
      broken(({ options, base }) => ({
        markAllStale: async () => [...(base.disk.get(options.sync)?.delivered.values() ?? [])].filter((e) => e.fp !== null).length,
      })),
    message: /after markAllStale\(\) .*: expected insert 4, update 1, update 2, update 3; changes\(\) yielded insert 4 \(/,
  },
  {
    check: 'unpark',
    what: 'unparks every key when asked for some',
    driver: () => broken(({ inner }) => ({ unpark: () => inner.unpark() })),
    message: /after unpark\(\["2"\]\).*key 1: expected no change, got update/,
  },
  {
    check: 'unpark',
    what: 'does not unpark',
    driver: () => broken(() => ({ unpark: async () => 0 })),
    message: /after unpark\(\["2"\]\).*key 2: expected insert, got no change/,
  },
  {
    check: 'tidy',
    what: 'tidies nothing',
    driver: () => broken(() => ({ tidy: async () => [] })),
    message: /tidy\(\) after row 2 went back to its delivered version and parked row 3 left the model returned \[\], expected \["2","3"\]/,
  },
  {
    check: 'tidy',
    what: 'un-parks rows still at their parked version',
    driver: () =>
      broken(({ inner }) => ({
        tidy: async () => {
          await inner.unpark();
          return inner.tidy();
        },
      })),
    message: /returned \["3"\], expected \["2","3"\]/,
  },
  {
    check: 'duplicateKey',
    what: 'lets the last row of a key win',
    driver: () =>
      broken(({ inner }) => {
        let rows = new Map<string, [Row, string]>();
        let added = 0;
        return {
          ingest: {
            begin: async (columns, sample) => {
              rows = new Map();
              added = 0;
              await inner.ingest.begin(columns, sample);
            },
            add: async (keys, batch, fps) => {
              keys.forEach((k, i) => rows.set(k, [batch[i]!, fps[i]!]));
              added += keys.length;
            },
            end: async () => {
              await inner.ingest.add([...rows.keys()], [...rows.values()].map(([r]) => r), [...rows.values()].map(([, fp]) => fp));
              await inner.ingest.end();
              return added;
            },
          },
        };
      }),
    message: /a first run: the model has key 2 twice, yet the diff went through/,
  },
  {
    check: 'duplicateKey',
    what: 'fails with a plain Error',
    driver: () =>
      broken(({ inner }) => ({
        computeChanges: () =>
          inner.computeChanges().catch((err: Error) => {
            throw new Error(err.message);
          }),
      })),
    message: /must fail with an OutflowError coded OUTFLOW_MODEL_KEY; got .*not unique.*\(code undefined\)/,
  },
  {
    check: 'paging',
    what: 'repeats the last change of a page at the start of the next',
    driver: () => {
      let last: DiffRow | undefined;
      return broken(({ inner }) =>
        pages(inner, (page, i) => {
          const out = i > 0 && last ? [last, ...page.slice(1)] : page;
          last = page[page.length - 1];
          return out;
        }),
      );
    },
    message: /changes\(\) yielded key "1000" twice \(pages 1 and 2\)/,
  },
  {
    check: 'paging',
    what: 'drops a short last page',
    driver: () =>
      broken(({ inner }) => ({
        changes: async function* () {
          for await (const page of inner.changes()) if (page.length === 1000) yield page;
        },
      })),
    message: /computeChanges\(\) returned \{"insert":2500,.*\}, but changes\(\) yielded \{"insert":/,
  },
  {
    check: 'latestAck',
    what: 'applies the acks of a call grouped by kind',
    driver: () =>
      broken(({ inner }) => ({
        apply: async (acks) => {
          for (const kind of ['delivered', 'parked', 'sent', 'deleted', 'forget']) await inner.apply(acks.filter((a) => a.kind === kind));
        },
      })),
    message: /inDoubt\(\) listed \{"1":/,
  },
  {
    check: 'latestAck',
    what: 'keeps the first ack of a key in a call',
    driver: () =>
      broken(({ inner }) => ({
        apply: (acks) => inner.apply(latestAcks([...acks].reverse())),
      })),
    message: /inDoubt\(\) listed \{"1":/,
  },
  {
    check: 'ackSequence',
    what: 'folds acks of several calls to the last one per key',
    driver: () =>
      broken(({ inner }) => {
        let log: Ack[] = [];
        const fold = async () => {
          if (log.length) await inner.apply(latestAcks(log));
          log = [];
        };
        return {
          apply: async (acks) => void log.push(...acks),
          computeChanges: async () => (await fold(), inner.computeChanges()),
          inDoubt: async () => (await fold(), inner.inDoubt()),
          close: async () => fold(),
        };
      }),
    message: /key 2: expected update, got insert/,
  },
  {
    check: 'columns',
    what: 'fingerprints every column, not the delivered ones',
    driver: () => broken(({ inner }) => fingerprints(inner, (rows) => rows.map((r) => fingerprint(r, undefined)))),
    message: /with columns \["id", "name"\].*key 1: expected no change, got update/,
  },
  {
    check: 'engineFingerprint',
    what: 'fingerprints rows itself',
    driver: () =>
      broken(({ inner }) => fingerprints(inner, (rows) => rows.map((r) => createHash('sha256').update(JSON.stringify(r)).digest().readBigUInt64BE(0).toString()))),
    message: /the insert of 1 has fingerprint \(fp\) "\d+", expected "\d+"/,
  },
  {
    check: 'ingestTypes',
    what: 'turns values of a type the sample did not show into strings',
    driver: () =>
      broken(({ inner }) => {
        const types = new Map<string, string>();
        return {
          ingest: {
            ...inner.ingest,
            begin: async (columns, sample) => {
              for (const c of columns) for (const r of sample) if (r[c] !== null && !types.has(c)) types.set(c, typeOf(r[c]));
              await inner.ingest.begin(columns, sample);
            },
            add: (keys, rows, fps) =>
              inner.ingest.add(
                keys,
                rows.map((r) => Object.fromEntries(Object.entries(r).map(([c, v]) => [c, v === null || typeOf(v) === (types.get(c) ?? typeOf(v)) ? v : JSON.stringify(v)]))),
                fps,
              ),
          },
        };
      }),
    message: /the insert of 1001 has (num|str|flag) = /,
  },
];

describe('the state-store suite catches a broken store', () => {
  it('has a broken variant for every check', () => {
    const covered = new Set(variants.map((v) => v.check));
    expect(Object.keys(stateStoreChecks).filter((c) => !covered.has(c as CheckName))).toEqual([]);
  });

  for (const v of variants) {
    it(`${v.check} fails a store that ${v.what}`, async () => {
      const h = await startStateStore(v.driver());
      try {
        const failure = await stateStoreChecks[v.check](h).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(failure, 'the check passed').toBeInstanceOf(AcceptanceFailure);
        expect((failure as Error).message).toMatch(v.message);
      } finally {
        await h.close();
      }
    });
  }
});
