import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { describe } from 'vitest';
import {
  describeError,
  fingerprint,
  isOutflowError,
  keyOf,
  type Ack,
  type DiffRow,
  type DiffStore,
  type RecordAddress,
  type Row,
  type SettledChange,
  type StateStoreOpenOptions,
  type Value,
} from '@outflow/core';
import { DEFAULT_TIMEOUT_MS, fail, registerChecks, show, within, type Check } from './harness.js';

/** The type of a model column, for a driver that keeps the model in a table. */
export type StateColumnType = 'integer' | 'text' | 'double' | 'boolean' | 'json';

const PRIMARY_KEY = ['id'];

/**
 * The model the checks diff. A driver that keeps it in a table creates these columns with
 * its own types (`json` holds an object with arrays and objects inside, and must come back
 * as one) and no primary key constraint: one check writes a duplicate key.
 */
export const stateModel = {
  primaryKey: PRIMARY_KEY,
  columns: [
    { name: 'id', type: 'integer' },
    { name: 'name', type: 'text' },
    { name: 'score', type: 'double' },
    { name: 'active', type: 'boolean' },
    { name: 'note', type: 'text' },
    { name: 'data', type: 'json' },
  ] as readonly { name: string; type: StateColumnType }[],
  /** Row `id` of the model at `version`: every column but `note` changes with the version. */
  row(id: number, version = 0): Row {
    return {
      id,
      name: version === 0 ? `row ${id}` : `row ${id} v${version}`,
      score: id + 0.25 + version,
      active: (id + version) % 2 === 0,
      note: id % 3 === 0 ? null : `note ${id}`,
      data: { n: id, version, tags: ['a', `t${id}`], nested: { deep: `d${id}`, ok: true } },
    };
  },
};

/** What {@link stateStoreSuite} needs to exercise a delivered-state store. */
export interface StateStoreDriver {
  /** Shown in the test names. */
  name: string;
  /** Starts what the stores need (a database, an emulator). */
  setup?(): Promise<void>;
  /** Stops what `setup` started. */
  teardown?(): Promise<void>;
  /**
   * Opens the store of `options.sync`, as the engine does once per run: a `StateStore`'s
   * `open`, or a source's `PushdownDiff.open` with a model `{ table, primaryKey: ['id'] }`
   * whose table {@link writeModel} fills.
   */
  open(options: StateStoreOpenOptions): Promise<DiffStore>;
  /**
   * Makes `rows` the model of `sync` (columns as in {@link stateModel}), before a store of
   * that sync is opened: a pushdown store reads its model itself, so replace the rows of its
   * source table. Not needed for a store with `ingest`: the suite hands it the rows as the
   * engine does.
   */
  writeModel?(sync: string, rows: Row[]): Promise<void>;
  /** Check ids to leave out, each with a reason in your test. */
  skip?: string[];
  /** How long a single call may take before the suite calls it a hang; 15 000 ms by default. */
  timeoutMs?: number;
}

/** A started store under test. */
export interface StateStoreHarness {
  driver: StateStoreDriver;
  timeoutMs: number;
  /** Whether the driver's stores take the model through `ingest` (else they read it themselves). */
  ingest: boolean;
  /** Whether the driver's stores keep stream positions (`positions`, `forgetPositions`). */
  positions: boolean;
  /** Whether the driver's stores answer `addresses`. */
  addresses: boolean;
  /** A sync name that belongs to one check of this harness. */
  sync(name: string): string;
  close(): Promise<void>;
}

/** Starts the driver and learns, from one open, whether its stores take rows through `ingest`. */
export async function startStateStore(driver: StateStoreDriver): Promise<StateStoreHarness> {
  await driver.setup?.();
  const run = randomBytes(3).toString('hex');
  const timeoutMs = driver.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const harness: StateStoreHarness = {
    driver,
    timeoutMs,
    ingest: false,
    positions: false,
    addresses: false,
    sync: (name) => `${name}-${run}`,
    close: async () => {
      await driver.teardown?.();
    },
  };
  try {
    const probe = harness.sync('probe');
    if (driver.writeModel) await within(driver.writeModel(probe, []), timeoutMs, 'writeModel() of an empty model');
    const store = await within(driver.open({ sync: probe, columns: null, readOnly: false }), timeoutMs, 'open()');
    harness.ingest = store.ingest !== undefined;
    harness.positions = store.positions !== undefined;
    harness.addresses = store.addresses !== undefined;
    if (harness.positions && !store.forgetPositions) fail(`the stores of "${driver.name}" have positions() but no forgetPositions()`);
    await within(Promise.resolve(store.close()), timeoutMs, 'close()');
    if (!harness.ingest && !driver.writeModel) fail(`the stores of "${driver.name}" have no ingest and the driver gives no writeModel(): the suite cannot give them a model`);
  } catch (err) {
    await harness.close();
    throw err;
  }
  return harness;
}

type Counts = { insert: number; update: number; delete: number };

/** An open store after one diff: what the engine holds when it starts delivering. */
interface Session {
  store: DiffStore;
  changes: DiffRow[];
  /** The change of `key`, if one was yielded. */
  of(key: string): DiffRow | undefined;
}

interface SessionOptions {
  /** As `StateStoreOpenOptions.columns`; null (every column) by default. */
  columns?: string[] | null;
  readOnly?: boolean;
  /** Runs after open, before the model is ingested and diffed (where the engine unparks and marks stale). */
  before?(store: DiffStore): Promise<void>;
}

const key = (row: Row): string => keyOf(row, PRIMARY_KEY) ?? fail(`a model row without an id: ${show(row)}`);
const rowsOf = (list: number[], version: (id: number) => number = () => 0): Row[] => list.map((id) => stateModel.row(id, version(id)));
const ids = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function openStore(h: StateStoreHarness, sync: string, rows: Row[] | null, o: SessionOptions): Promise<DiffStore> {
  if (rows !== null && h.driver.writeModel) await within(h.driver.writeModel(sync, rows), h.timeoutMs * 4, `writeModel() of ${rows.length} rows`);
  const options = { sync, columns: o.columns ?? null, readOnly: o.readOnly ?? false };
  return within(h.driver.open(options), h.timeoutMs, `open(${show(options)})`).catch((err: unknown) =>
    fail(`open(${show(options)}) failed: ${describeError(err)}`),
  );
}

/** Core's fingerprint of a row as the engine computes it, for a mapping of `columns` onto fields of the same names. */
function engineFingerprint(row: Row, columns: string[] | null): string {
  return fingerprint(columns === null ? row : Object.fromEntries(columns.map((c) => [c, row[c] ?? null])), undefined);
}

/** Hands `rows` to the store's ingest as the engine's snapshot does: keys by keyOf, core's fingerprints. */
async function ingestRows(h: StateStoreHarness, store: DiffStore, rows: Row[], columns: string[] | null): Promise<void> {
  const ingest = store.ingest!;
  const batch = 1000;
  try {
    for (let i = 0; i < rows.length; i += batch) {
      const part = rows.slice(i, i + batch);
      if (i === 0) await within(ingest.begin(Object.keys(part[0]!), part), h.timeoutMs, 'ingest.begin()');
      const keys = part.map(key);
      const fps = part.map((row) => engineFingerprint(row, columns));
      await within(ingest.add(keys, part, fps), h.timeoutMs, `ingest.add() of ${part.length} rows`);
    }
  } catch (err) {
    await ingest.end().catch(() => undefined);
    throw err;
  }
  const n = await within(ingest.end(), h.timeoutMs, 'ingest.end()');
  if (n !== rows.length) fail(`ingest.end() counted ${show(n)} rows; ${rows.length} were added`);
}

function tally(changes: DiffRow[]): Counts {
  const out = { insert: 0, update: 0, delete: 0 };
  for (const c of changes) out[c.op]++;
  return out;
}

function checkShape(c: DiffRow): void {
  const where = `changes() yielded ${show(c, 300)}:`;
  if (c === null || typeof c !== 'object') fail(`${where} not a DiffRow`);
  if (!['insert', 'update', 'delete'].includes(c.op)) fail(`${where} op must be insert, update or delete`);
  if (typeof c.key !== 'string') fail(`${where} the key must be a string`);
  for (const f of ['oldFp', 'destId', 'sentFp'] as const) {
    if (c[f] !== null && typeof c[f] !== 'string') fail(`${where} ${f} must be a string or null`);
  }
  if (c.op === 'delete') {
    if (c.row !== null || c.fp !== null) fail(`${where} a delete has a null row and fp`);
    return;
  }
  if (c.row === null || typeof c.row !== 'object' || Array.isArray(c.row)) fail(`${where} an ${c.op} carries the model row as an object`);
  if (typeof c.fp !== 'string' || c.fp === '') fail(`${where} an ${c.op} carries the row's fingerprint as a string`);
  if (c.op === 'insert' && c.oldFp !== null) fail(`${where} an insert has no delivered fingerprint (oldFp null); a row delivered before is an update`);
  if (c.op === 'update' && c.oldFp === null) fail(`${where} an update carries the fingerprint last delivered (oldFp)`);
}

/** Every page of changes(), checking shapes, that each key comes once, and the counts computeChanges() gave. */
async function drain(h: StateStoreHarness, store: DiffStore, counts: Counts): Promise<DiffRow[]> {
  const out: DiffRow[] = [];
  const pageOf = new Map<string, number>();
  const pull = async () => {
    let page = 0;
    for await (const rows of store.changes()) {
      page++;
      if (!Array.isArray(rows)) fail(`changes() yielded ${show(rows)}, not a page (array) of DiffRows`);
      for (const c of rows) {
        checkShape(c);
        const earlier = pageOf.get(c.key);
        if (earlier !== undefined) fail(`changes() yielded key ${show(c.key)} twice (pages ${earlier} and ${page}); each change comes exactly once`);
        pageOf.set(c.key, page);
        out.push(c);
      }
    }
  };
  await within(pull(), h.timeoutMs * 4, 'changes()');
  const got = tally(out);
  if (counts === null || typeof counts !== 'object' || !isDeepStrictEqual(got, { insert: counts.insert, update: counts.update, delete: counts.delete })) {
    fail(`computeChanges() returned ${show(counts)}, but changes() yielded ${show(got)}`);
  }
  return out;
}

/** One run as the engine makes it (model in place, open, ingest, computeChanges, every page), then `body`, then close. */
async function session<T>(h: StateStoreHarness, sync: string, rows: Row[], o: SessionOptions, body: (s: Session) => Promise<T>): Promise<T> {
  const store = await openStore(h, sync, rows, o);
  let result: T;
  try {
    await o.before?.(store);
    if (store.ingest) await ingestRows(h, store, rows, o.columns ?? null);
    const counts = await within(store.computeChanges(), h.timeoutMs * 4, 'computeChanges()');
    const changes = await drain(h, store, counts);
    const byKey = new Map(changes.map((c) => [c.key, c]));
    result = await body({ store, changes, of: (k) => byKey.get(k) });
  } catch (err) {
    await Promise.resolve(store.close()).catch(() => undefined);
    throw err;
  }
  await within(Promise.resolve(store.close()), h.timeoutMs, 'close()');
  return result;
}

/** A run whose changes are returned and the store closed, for checks that only look. */
function look(h: StateStoreHarness, sync: string, rows: Row[], o: SessionOptions = {}): Promise<Session> {
  return session(h, sync, rows, o, async (s) => s);
}

/** How the destination answered one change, as the engine records it. */
type Outcome =
  /** Logged as sent, then acknowledged (deleted, for a delete). */
  | 'delivered'
  /** Logged as sent, then refused by the destination: parked. */
  | 'refused'
  /** Parked without being sent (refused before any write). */
  | 'rejected'
  /** Logged as sent, never answered: the process died. */
  | 'crash'
  /** Not handled at all. */
  | 'none';

const dest = (k: string) => `dest-${k}`;

/**
 * Records outcomes as the engine does: a `sent` ack for each write about to be made (never
 * for deletes), then one call with the answers. Delivered records get id `dest-<key>`
 * unless `destId` says otherwise.
 */
async function settle(
  h: StateStoreHarness,
  s: Session,
  outcome: (c: DiffRow) => Outcome,
  destId: (c: DiffRow) => string | null = (c) => dest(c.key),
): Promise<void> {
  const sent: Ack[] = [];
  const answers: Ack[] = [];
  for (const c of s.changes) {
    const o = outcome(c);
    if (o === 'none') continue;
    if (o !== 'rejected' && c.op !== 'delete') sent.push({ key: c.key, kind: 'sent', fp: c.fp! });
    if (o === 'delivered') answers.push(c.op === 'delete' ? { key: c.key, kind: 'deleted' } : { key: c.key, kind: 'delivered', fp: c.fp!, destId: destId(c) });
    if (o === 'refused' || o === 'rejected') answers.push({ key: c.key, kind: 'parked', fp: c.fp });
  }
  await apply(h, s.store, sent, 'sent acks');
  await apply(h, s.store, answers, 'acknowledgements');
}

const deliverAll = (h: StateStoreHarness, s: Session) => settle(h, s, () => 'delivered');

async function apply(h: StateStoreHarness, store: DiffStore, acks: Ack[], what: string): Promise<void> {
  for (let i = 0; i < acks.length; i += 2000) await within(store.apply(acks.slice(i, i + 2000)), h.timeoutMs * 2, `apply() of ${what}`);
}

function typed(v: Value | undefined): string {
  const type = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
  return `${show(v, 120)} (${type})`;
}

/** Fails naming every column of `got` that is missing, extra, or not deeply equal (with JS types) to `want`. */
function expectRow(what: string, got: Row, want: Row): void {
  const problems: string[] = [];
  for (const c of new Set([...Object.keys(want), ...Object.keys(got)])) {
    if (!(c in want)) problems.push(`has an extra column ${c} = ${typed(got[c])}`);
    else if (!(c in got)) problems.push(`lacks column ${c}`);
    else if (!isDeepStrictEqual(got[c], want[c])) problems.push(`has ${c} = ${typed(got[c])}, expected ${typed(want[c])}`);
  }
  if (problems.length) fail(`${what} ${problems.join('; ')}`);
}

interface Want {
  op: DiffRow['op'];
  row?: Row;
  fp?: string;
  oldFp?: string | null;
  destId?: string | null;
  sentFp?: string | null;
}

const FIELDS: Record<'fp' | 'oldFp' | 'destId' | 'sentFp', string> = {
  fp: 'fingerprint (fp)',
  oldFp: 'delivered fingerprint (oldFp)',
  destId: 'destination id (destId)',
  sentFp: 'fingerprint of the write in doubt (sentFp)',
};

function brief(entries: [string, { op: string }][]): string {
  if (entries.length === 0) return 'nothing';
  const sorted = entries.map(([k, c]) => `${c.op} ${k}`).sort();
  return sorted.length > 12 ? `${sorted.slice(0, 12).join(', ')} … (${sorted.length} in all)` : sorted.join(', ');
}

/** Fails unless the run yielded exactly the changes in `want` (by key), with the fields given there. */
function expectChanges(s: Session, want: Record<string, Want>, what: string): void {
  const got = new Map(s.changes.map((c) => [c.key, c]));
  const wrong = Object.entries(want).filter(([k, w]) => got.get(k)?.op !== w.op);
  const extra = [...got.keys()].filter((k) => !(k in want));
  if (wrong.length || extra.length) {
    const gotOf = (k: string) => got.get(k)?.op ?? 'no change';
    const details = [
      ...wrong.map(([k, w]) => `key ${k}: expected ${w.op}, got ${gotOf(k)}`),
      ...extra.map((k) => `key ${k}: expected no change, got ${gotOf(k)}`),
    ];
    fail(`${what}: expected ${brief(Object.entries(want))}; changes() yielded ${brief([...got.entries()])} (${details.slice(0, 6).join('; ')})`);
  }
  for (const [k, w] of Object.entries(want)) {
    const c = got.get(k)!;
    for (const f of ['fp', 'oldFp', 'destId', 'sentFp'] as const) {
      if (w[f] !== undefined && c[f] !== w[f]) fail(`${what}: the ${c.op} of ${k} has ${FIELDS[f]} ${show(c[f])}, expected ${show(w[f])}`);
    }
    if (w.row !== undefined) expectRow(`${what}: the ${c.op} of ${k}`, c.row!, w.row);
  }
}

const fpOf = (s: Session, k: string): string => s.of(k)?.fp ?? fail(`expected a change of ${k} carrying its fingerprint`);

async function inDoubt(h: StateStoreHarness, store: DiffStore): Promise<Map<string, string>> {
  const list = await within(store.inDoubt(), h.timeoutMs, 'inDoubt()');
  if (!Array.isArray(list)) fail(`inDoubt() returned ${show(list)}, not an array`);
  return new Map(list.map((d) => [d.key, d.fp]));
}

function expectInDoubt(got: Map<string, string>, want: Record<string, string>, what: string): void {
  if (!isDeepStrictEqual(Object.fromEntries([...got].sort()), Object.fromEntries(Object.entries(want).sort()))) {
    fail(`${what}: inDoubt() listed ${show(Object.fromEntries(got))}, expected ${show(want)} (key → fingerprint sent)`);
  }
}

async function expectThrows(call: () => Promise<unknown>, what: string): Promise<void> {
  try {
    await call();
  } catch {
    return;
  }
  fail(what);
}

/** Applies single edits to rows: each changes one value the fingerprint must see. */
const EDITS: ((r: Row) => Row)[] = [
  (r) => ({ ...r, name: `${String(r['name'])}!` }),
  (r) => ({ ...r, score: (r['score'] as number) + 1 }),
  (r) => ({ ...r, active: !r['active'] }),
  (r) => ({ ...r, note: null }),
  (r) => ({ ...r, data: { ...(r['data'] as Record<string, Value>), tags: ['a', 'changed'] } }),
  (r) => ({ ...r, note: '' }),
];

const META_KEY = 'outflow-acceptance';
const PAGED_ROWS = 6000;

function needsIngest(h: StateStoreHarness): string | undefined {
  return h.ingest ? undefined : 'the store reads its model itself (pushdown); core fingerprints only rows handed to ingest';
}

function needsAddresses(h: StateStoreHarness): string | undefined {
  return h.addresses ? undefined : 'the store has no addresses() (optional: streams then address records by match key only)';
}

function needsPositions(h: StateStoreHarness): string | undefined {
  return h.positions ? undefined : 'the store keeps no stream positions (optional: a stream then applies replayed changes again)';
}

/** The state-store checks, as plain async functions over a {@link StateStoreHarness}. */
export const stateStoreChecks = {
  /** The first run yields every row as an insert, with the model's values in their JS types. */
  async firstRun(h: StateStoreHarness): Promise<void> {
    const rows = rowsOf(ids(1, 6));
    await session(h, h.sync('first-run'), rows, {}, async (s) => {
      expectChanges(s, Object.fromEntries(rows.map((r) => [key(r), { op: 'insert', row: r, oldFp: null, destId: null, sentFp: null }])), 'the first run');
    });
  },

  /** A model that did not change since it was delivered yields no change. */
  async unchanged(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('unchanged');
    const rows = rowsOf(ids(1, 6));
    await session(h, sync, rows, {}, (s) => deliverAll(h, s));
    expectChanges(await look(h, sync, rows), {}, 'a run over the model just delivered');
  },

  /** A changed row is an update carrying the delivered fingerprint and destination id. */
  async update(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('update');
    const base = rowsOf(ids(1, 7));
    const edited = base.map((r, i) => (i < EDITS.length ? EDITS[i]!(r) : r));
    const first = new Map<string, string>();
    await session(h, sync, base, {}, async (s) => {
      for (const r of base) first.set(key(r), fpOf(s, key(r)));
      await deliverAll(h, s);
    });
    const updated = new Map<string, string>();
    await session(h, sync, edited, {}, async (s) => {
      const want = Object.fromEntries(edited.slice(0, EDITS.length).map((r) => [key(r), { op: 'update' as const, row: r, oldFp: first.get(key(r))!, destId: dest(key(r)), sentFp: null }]));
      expectChanges(s, want, 'a run after one value of each of rows 1–6 changed');
      for (const c of s.changes) {
        if (c.fp === c.oldFp) fail(`the update of ${c.key} has the same fingerprint as the version delivered (${show(c.fp)})`);
        updated.set(c.key, c.fp!);
      }
      // An update the destination answered without an id: the id from the insert stays.
      await settle(h, s, () => 'delivered', () => null);
    });
    expectChanges(await look(h, sync, edited), {}, 'a run after the updates were delivered');
    const again = edited.map((r, i) => (i === 0 ? { ...r, name: 'renamed again' } : r));
    const s = await look(h, sync, again);
    expectChanges(s, { '1': { op: 'update', row: again[0]!, oldFp: updated.get('1')!, destId: dest('1') } }, 'a run after row 1 changed again (its update was acknowledged without an id)');
  },

  /** A delivered row that left the model is a delete, once. */
  async delete(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('delete');
    let fp4 = '';
    await session(h, sync, rowsOf(ids(1, 4)), {}, async (s) => {
      fp4 = fpOf(s, '4');
      await deliverAll(h, s);
    });
    await session(h, sync, rowsOf(ids(1, 3)), {}, async (s) => {
      expectChanges(s, { '4': { op: 'delete', oldFp: fp4, destId: dest('4'), sentFp: null } }, 'a run after delivered row 4 left the model');
      await deliverAll(h, s);
    });
    expectChanges(await look(h, sync, rowsOf(ids(1, 3))), {}, 'a run after the delete was acknowledged');
  },

  /** A row that left the model before it was ever delivered yields nothing. */
  async undelivered(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('undelivered');
    await session(h, sync, rowsOf(ids(1, 4)), {}, (s) => settle(h, s, (c) => (c.key === '3' ? 'rejected' : c.key === '4' ? 'none' : 'delivered')));
    expectChanges(await look(h, sync, rowsOf([1, 2])), {}, 'a run after rows 3 (parked, never delivered) and 4 (never acknowledged) left the model');
  },

  /** A parked version is not yielded again until it changes, and a parked delete is not repeated. */
  async parked(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('parked');
    const first = new Map<string, string>();
    await session(h, sync, rowsOf(ids(1, 4)), {}, async (s) => {
      for (const k of ['2', '4']) first.set(k, fpOf(s, k));
      await settle(h, s, (c) => (c.key === '3' ? 'refused' : 'delivered'));
    });
    const changed = rowsOf(ids(1, 4), (id) => (id === 2 ? 1 : 0));
    await session(h, sync, changed, {}, async (s) => {
      expectChanges(s, { '2': { op: 'update', oldFp: first.get('2')! } }, 'a run after row 2 changed (row 3 is parked)');
      await settle(h, s, () => 'refused');
    });
    expectChanges(await look(h, sync, changed), {}, 'a run over the same model (rows 2 and 3 parked at these versions)');
    const later = rowsOf([1, 2, 3], (id) => (id === 2 ? 2 : id === 3 ? 1 : 0));
    await session(h, sync, later, {}, async (s) => {
      expectChanges(
        s,
        { '2': { op: 'update', row: later[1]!, oldFp: first.get('2')!, destId: dest('2') }, '3': { op: 'insert', row: later[2]! }, '4': { op: 'delete', oldFp: first.get('4')! } },
        'a run after parked rows 2 and 3 changed and delivered row 4 left the model',
      );
      await settle(h, s, (c) => (c.op === 'delete' ? 'refused' : 'delivered'));
    });
    expectChanges(await look(h, sync, later), {}, 'a run after the delete of 4 was refused (parked)');
  },

  /** A write logged as sent and never acknowledged is yielded again, or deleted if it left the model, and listed by inDoubt(). */
  async inDoubt(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('in-doubt');
    const v0 = new Map<string, string>();
    await session(h, sync, rowsOf(ids(1, 5)), {}, async (s) => {
      for (const k of ['1', '2', '4', '5']) v0.set(k, fpOf(s, k));
      await settle(h, s, (c) => (Number(c.key) <= 3 ? 'delivered' : 'crash'));
      expectInDoubt(await inDoubt(h, s.store), { '4': v0.get('4')!, '5': v0.get('5')! }, 'after rows 4 and 5 were sent and never acknowledged');
    });
    const v1 = new Map<string, string>();
    const second = rowsOf(ids(1, 5), (id) => (id <= 2 ? 1 : 0));
    await session(h, sync, second, {}, async (s) => {
      expectChanges(
        s,
        {
          '1': { op: 'update', oldFp: v0.get('1')!, sentFp: null },
          '2': { op: 'update', oldFp: v0.get('2')!, sentFp: null },
          '4': { op: 'insert', row: second[3]!, sentFp: v0.get('4')!, destId: null },
          '5': { op: 'insert', sentFp: v0.get('5')! },
        },
        'a run after rows 1 and 2 changed (rows 4 and 5 unchanged but in doubt)',
      );
      for (const k of ['1', '2']) v1.set(k, fpOf(s, k));
      await settle(h, s, () => 'crash');
    });
    const third = rowsOf([1, 3, 4], (id) => (id === 1 ? 1 : 0));
    await session(
      h,
      sync,
      third,
      {
        before: async (store) =>
          expectInDoubt(await inDoubt(h, store), { '1': v1.get('1')!, '2': v1.get('2')!, '4': v0.get('4')!, '5': v0.get('5')! }, 'after a second run crashed'),
      },
      async (s) => {
        expectChanges(
          s,
          {
            '1': { op: 'update', row: third[0]!, oldFp: v0.get('1')!, sentFp: v1.get('1')!, destId: dest('1') },
            '2': { op: 'delete', oldFp: v0.get('2')!, sentFp: v1.get('2')!, destId: dest('2') },
            '4': { op: 'insert', sentFp: v0.get('4')! },
            '5': { op: 'delete', oldFp: null, sentFp: v0.get('5')!, destId: null },
          },
          'a run after rows 2 and 5 (sent, never acknowledged) left the model',
        );
        await deliverAll(h, s);
      },
    );
    await session(h, sync, third, {}, async (s) => {
      expectChanges(s, {}, 'a run after every write in doubt was acknowledged');
      expectInDoubt(await inDoubt(h, s.store), {}, 'after every write in doubt was acknowledged');
    });
  },

  /** deliveredCount() counts keys delivered or sent and never acknowledged, not parked or deleted ones, read-only too. */
  async deliveredCount(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('delivered-count');
    const count = async (store: DiffStore, want: number, what: string) => {
      const n = await within(store.deliveredCount(), h.timeoutMs, 'deliveredCount()');
      if (n !== want) fail(`deliveredCount() ${what} returned ${show(n)}, expected ${want}`);
    };
    await session(h, sync, rowsOf(ids(1, 6)), {}, async (s) => {
      await count(s.store, 0, 'before anything was delivered');
      await settle(h, s, (c) => (c.key === '5' ? 'rejected' : c.key === '6' ? 'crash' : 'delivered'));
      await count(s.store, 5, 'after rows 1–4 were delivered, 5 parked and 6 sent and never acknowledged');
    });
    await session(h, sync, rowsOf([2, 3, 4, 5, 6]), {}, async (s) => {
      await deliverAll(h, s);
      await count(s.store, 4, 'after delivered row 1 was deleted and row 6 acknowledged (5 stays parked, never delivered)');
    });
    await session(h, sync, rowsOf([2, 3, 4, 5, 6]), { readOnly: true }, (s) => count(s.store, 4, 'of a read-only store'));
  },

  /** Every kind of acknowledgement, and metadata, survive closing and reopening the store. */
  async durable(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('durable');
    const rows = rowsOf(ids(1, 4));
    let fp3 = '';
    await session(h, sync, rows, {}, async (s) => {
      fp3 = fpOf(s, '3');
      await settle(h, s, (c) => (c.key === '1' ? 'delivered' : c.key === '2' ? 'rejected' : c.key === '3' ? 'crash' : 'none'));
      await within(s.store.setMeta(META_KEY, 'kept'), h.timeoutMs, 'setMeta()');
    });
    await session(
      h,
      sync,
      rows,
      {
        before: async (store) => {
          const meta = await within(store.getMeta(META_KEY), h.timeoutMs, 'getMeta()');
          if (meta !== 'kept') fail(`after a reopen, getMeta(${show(META_KEY)}) is ${show(meta)}, expected "kept"`);
          expectInDoubt(await inDoubt(h, store), { '3': fp3 }, 'after a reopen');
        },
      },
      async (s) => {
        expectChanges(s, { '3': { op: 'insert', sentFp: fp3 }, '4': { op: 'insert', sentFp: null } }, 'a reopened store (1 delivered, 2 parked, 3 sent, 4 never acknowledged)');
      },
    );
  },

  /** A read-only open reads the state (a missing one as empty), yields the diff, and writes nothing. */
  async readOnly(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('read-only');
    const rows = rowsOf(ids(1, 3));
    const inserts = Object.fromEntries(rows.map((r) => [key(r), { op: 'insert' as const, row: r }]));
    await session(h, sync, rows, { readOnly: true }, async (s) => {
      expectChanges(s, inserts, 'a read-only run over a sync with no state yet');
      const meta = await within(s.store.getMeta(META_KEY), h.timeoutMs, 'getMeta()');
      if (meta !== undefined) fail(`a read-only store with no state has meta ${show(meta)}, expected undefined`);
      expectInDoubt(await inDoubt(h, s.store), {}, 'a read-only store with no state');
      await expectThrows(() => s.store.apply(s.changes.map((c) => ({ key: c.key, kind: 'delivered', fp: c.fp! }))), 'apply() on a read-only store resolved; it must throw');
    });
    await session(h, sync, rows, {}, async (s) => {
      expectChanges(s, inserts, 'a writable run after a read-only run (which recorded nothing)');
      await deliverAll(h, s);
    });
    const next = rowsOf([1, 2], (id) => (id === 1 ? 1 : 0));
    const want = { '1': { op: 'update' as const, destId: dest('1') }, '3': { op: 'delete' as const, destId: dest('3') } };
    await session(h, sync, next, { readOnly: true }, async (s) => {
      expectChanges(s, want, 'a read-only run after row 1 changed and row 3 left the model');
      await expectThrows(
        () =>
          s.store.apply(s.changes.map((c): Ack => (c.op === 'delete' ? { key: c.key, kind: 'deleted' } : { key: c.key, kind: 'delivered', fp: c.fp! }))),
        'apply() on a read-only store resolved; it must throw',
      );
    });
    expectChanges(await look(h, sync, next), want, 'a writable run after the read-only run (which must have recorded nothing)');
  },

  /** After markAllStale() every delivered row is an update, with its destination id. */
  async markAllStale(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('mark-all-stale');
    const rows = rowsOf(ids(1, 4));
    await session(h, sync, rows, {}, (s) => settle(h, s, (c) => (c.key === '4' ? 'none' : 'delivered')));
    let marked: number | undefined;
    await session(h, sync, rows, { before: async (store) => void (marked = await within(store.markAllStale(), h.timeoutMs, 'markAllStale()')) }, async (s) => {
      const updates = Object.fromEntries(['1', '2', '3'].map((k) => [k, { op: 'update' as const, destId: dest(k), row: rows[Number(k) - 1]! }]));
      expectChanges(s, { ...updates, '4': { op: 'insert' } }, 'a run after markAllStale() (rows 1–3 delivered, 4 never)');
      for (const c of s.changes) if (c.op === 'update' && c.oldFp === c.fp) fail(`after markAllStale() the update of ${c.key} has oldFp equal to its fingerprint`);
      if (marked !== 3) fail(`markAllStale() returned ${show(marked)}, expected 3 (the rows delivered)`);
      await settle(h, s, () => 'delivered', () => null);
    });
    expectChanges(await look(h, sync, rows), {}, 'a run after the stale rows were delivered again');
  },

  /** unpark() of some keys, then of all, makes their parked rows (and parked deletes) changes again. */
  async unpark(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('unpark');
    let fp1 = '';
    await session(h, sync, rowsOf(ids(1, 5)), {}, async (s) => {
      fp1 = fpOf(s, '1');
      await settle(h, s, (c) => (c.key === '2' || c.key === '3' ? 'refused' : 'delivered'));
    });
    const rows = rowsOf(ids(1, 4), (id) => (id === 1 ? 1 : 0));
    await session(h, sync, rows, {}, async (s) => {
      expectChanges(s, { '1': { op: 'update' }, '5': { op: 'delete' } }, 'a run after row 1 changed and row 5 left the model');
      await settle(h, s, () => 'refused');
    });
    let n: number | undefined;
    const unpark = (keys?: string[]) => async (store: DiffStore) => void (n = await within(store.unpark(keys), h.timeoutMs, `unpark(${show(keys)})`));
    await session(h, sync, rows, { before: unpark(['2']) }, async (s) => {
      expectChanges(s, { '2': { op: 'insert', row: rows[1]! } }, 'a run after unpark(["2"]) (rows 1, 2, 3 and the delete of 5 parked)');
      if (n !== 1) fail(`unpark(["2"]) returned ${show(n)}, expected 1`);
    });
    await session(h, sync, rows, { before: unpark() }, async (s) => {
      expectChanges(
        s,
        { '1': { op: 'update', oldFp: fp1, destId: dest('1') }, '2': { op: 'insert' }, '3': { op: 'insert' }, '5': { op: 'delete', destId: dest('5') } },
        'a run after unpark() of all',
      );
      if (n !== 3) fail(`unpark() returned ${show(n)}, expected 3 (rows 1, 3 and 5 were parked)`);
    });
  },

  /** tidy() drops parked rows that left the model and un-parks rows back at their delivered version. */
  async tidy(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('tidy');
    let fp2 = '';
    // Parked without a write (refused before sending), so no write of them is in doubt.
    await session(h, sync, rowsOf(ids(1, 4)), {}, async (s) => {
      fp2 = fpOf(s, '2');
      await settle(h, s, (c) => (c.key === '3' ? 'rejected' : 'delivered'));
    });
    const tidy = async (store: DiffStore, want: string[], what: string) => {
      const got = await within(store.tidy(), h.timeoutMs, 'tidy()');
      if (!Array.isArray(got) || !isDeepStrictEqual([...got].sort(), want)) fail(`tidy() ${what} returned ${show(got)}, expected ${show(want)}`);
    };
    const changed = rowsOf(ids(1, 4), (id) => (id === 2 ? 1 : 0));
    await session(h, sync, changed, {}, async (s) => {
      expectChanges(s, { '2': { op: 'update' } }, 'a run after row 2 changed (row 3 parked)');
      await settle(h, s, () => 'rejected');
      await tidy(s.store, [], 'while parked rows 2 and 3 are still in the model at their parked versions');
    });
    await session(h, sync, rowsOf([1, 2, 4]), {}, async (s) => {
      expectChanges(s, {}, 'a run after row 2 went back to its delivered version and parked row 3 left the model');
      await tidy(s.store, ['2', '3'], 'after row 2 went back to its delivered version and parked row 3 left the model');
    });
    const s = await look(h, sync, changed);
    expectChanges(s, { '2': { op: 'update', oldFp: fp2 }, '3': { op: 'insert' } }, 'a run after tidy(), with rows 2 and 3 at their once parked versions');
  },

  /** A model with a duplicate key fails with OUTFLOW_MODEL_KEY, on a first run and on a later one. */
  async duplicateKey(h: StateStoreHarness): Promise<void> {
    const expectRefused = async (sync: string, rows: Row[], what: string) => {
      const store = await openStore(h, sync, rows, {});
      let error: unknown;
      const yielded: string[] = [];
      try {
        if (store.ingest) await ingestRows(h, store, rows, null);
        await within(store.computeChanges(), h.timeoutMs, 'computeChanges()');
        for await (const page of store.changes()) for (const c of page) yielded.push(`${c.op} ${c.key}`);
      } catch (err) {
        error = err;
      } finally {
        await Promise.resolve(store.close()).catch(() => undefined);
      }
      if (error === undefined) fail(`${what}: the model has key 2 twice, yet the diff went through (changes: ${show(yielded)})`);
      if (!isOutflowError(error, 'OUTFLOW_MODEL_KEY')) {
        fail(`${what}: a duplicate key must fail with an OutflowError coded OUTFLOW_MODEL_KEY; got ${describeError(error)} (code ${show((error as { code?: unknown }).code)})`);
      }
    };
    const dup = (rows: Row[]) => [...rows, { ...stateModel.row(2), name: 'another row 2' }];
    await expectRefused(h.sync('duplicate-key-a'), dup(rowsOf(ids(1, 3))), 'a first run');
    const sync = h.sync('duplicate-key-b');
    await session(h, sync, rowsOf(ids(1, 3)), {}, (s) => deliverAll(h, s));
    await expectRefused(sync, dup(rowsOf(ids(1, 3))), 'a run after the model was delivered');
  },

  /** With more changes than fit one page, each change comes exactly once, with its own row. */
  async paging(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('paging');
    const rows = rowsOf(ids(1, PAGED_ROWS));
    const fps = new Map<string, string>();
    await session(h, sync, rows, {}, async (s) => {
      expectChanges(s, Object.fromEntries(rows.map((r) => [key(r), { op: 'insert', row: r }])), `the first run over ${PAGED_ROWS} rows`);
      for (const c of s.changes) fps.set(c.key, c.fp!);
      await deliverAll(h, s);
    });
    const next = [...rowsOf(ids(1, PAGED_ROWS).filter((id) => id % 7 !== 0), (id) => (id % 2 === 0 ? 1 : 0)), ...rowsOf(ids(PAGED_ROWS + 1, PAGED_ROWS + 2500))];
    const want: Record<string, Want> = {};
    for (const r of next) {
      const id = r['id'] as number;
      if (id > PAGED_ROWS) want[key(r)] = { op: 'insert', row: r };
      else if (id % 2 === 0) want[key(r)] = { op: 'update', row: r, oldFp: fps.get(key(r))! };
    }
    for (let id = 7; id <= PAGED_ROWS; id += 7) want[String(id)] = { op: 'delete', oldFp: fps.get(String(id))! };
    expectChanges(await look(h, sync, next), want, `a run with ${Object.keys(want).length} changes (updates, deletes and inserts)`);
  },

  /** Of several acks of one key in one apply() call, only the last counts. */
  async latestAck(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('latest-ack');
    const rows = rowsOf(ids(1, 7));
    await session(h, sync, rows, {}, async (s) => {
      const fp = (k: string) => fpOf(s, k);
      const delivered = (k: string): Ack => ({ key: k, kind: 'delivered', fp: fp(k), destId: dest(k) });
      await apply(
        h,
        s.store,
        [
          { key: '1', kind: 'sent', fp: fp('1') },
          delivered('1'),
          { key: '2', kind: 'deleted' },
          delivered('2'),
          { key: '3', kind: 'forget' },
          delivered('3'),
          { key: '4', kind: 'parked', fp: fp('4') },
          delivered('4'),
          delivered('5'),
          { key: '5', kind: 'deleted' },
          delivered('6'),
          { key: '6', kind: 'forget' },
          { key: '7', kind: 'parked', fp: fp('7') },
        ],
        'mixed acks in one call',
      );
    });
    let parked: number | undefined;
    await session(
      h,
      sync,
      rows,
      {
        before: async (store) => {
          expectInDoubt(await inDoubt(h, store), {}, 'after [sent, delivered] of key 1 in one call');
          parked = await within(store.unpark(), h.timeoutMs, 'unpark()');
        },
      },
      async (s) => {
        expectChanges(
          s,
          { '5': { op: 'insert', destId: null }, '6': { op: 'insert', destId: null }, '7': { op: 'insert' } },
          'a run after one apply() with, per key, 1 [sent, delivered], 2 [deleted, delivered], 3 [forget, delivered], 4 [parked, delivered], 5 [delivered, deleted], 6 [delivered, forget], 7 [parked], then unpark()',
        );
        if (parked !== 1) fail(`unpark() after that apply() returned ${show(parked)}, expected 1 (only key 7 ended parked)`);
      },
    );
  },

  /** Acks of one key in successive apply() calls add up, as the engine and a stream record them. */
  async ackSequence(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('ack-sequence');
    const rows = rowsOf(ids(1, 3));
    // Fingerprints of versions the model never shows here: what a stream might have sent.
    const other = { '1': '1001', '2': '1002', '3': '1003' };
    const fp = new Map<string, string>();
    await session(h, sync, rows, {}, async (s) => {
      for (const k of ['1', '2', '3']) fp.set(k, fpOf(s, k));
      const one = (a: Ack) => apply(h, s.store, [a], `${a.kind} of ${a.key}`);
      for (const k of ['1', '2', '3']) await one({ key: k, kind: 'sent', fp: fp.get(k)! });
      for (const k of ['1', '2', '3']) await one({ key: k, kind: 'delivered', fp: fp.get(k)!, destId: dest(k) });
      await one({ key: '1', kind: 'sent', fp: other['1'] });
      await one({ key: '1', kind: 'delivered', fp: other['1'], destId: null });
      await one({ key: '2', kind: 'sent', fp: other['2'] });
      await one({ key: '3', kind: 'parked', fp: other['3'] });
    });
    expectChanges(
      await look(h, sync, rows),
      {
        '1': { op: 'update', oldFp: other['1'], destId: dest('1'), sentFp: null },
        '2': { op: 'update', oldFp: fp.get('2')!, destId: dest('2'), sentFp: other['2'] },
      },
      'a reopen after, in separate calls: 1 delivered then updated (answered without an id), 2 delivered then sent again, 3 delivered then a new version parked',
    );
  },

  /** Only the delivered columns count: a change elsewhere is not a change. */
  async columns(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('columns');
    const columns = ['id', 'name'];
    await session(h, sync, rowsOf(ids(1, 3)), { columns }, (s) => deliverAll(h, s));
    const rows = rowsOf(ids(1, 3));
    rows[0] = { ...rows[0]!, score: 99.5, active: !rows[0]!['active'], data: { ...(rows[0]!['data'] as Record<string, Value>), n: 99 } };
    rows[1] = { ...rows[1]!, name: 'renamed' };
    const s = await look(h, sync, rows, { columns });
    expectChanges(s, { '2': { op: 'update', destId: dest('2') } }, 'with columns ["id", "name"], a run after row 1 changed other columns and row 2 its name');
  },

  /** A store with ingest diffs by core's fingerprints: what a stream delivered is not a change. */
  async engineFingerprint(h: StateStoreHarness): Promise<void> {
    const rows = rowsOf(ids(1, 4));
    const fps = new Map(rows.map((r) => [key(r), engineFingerprint(r, null)]));
    await session(h, h.sync('engine-fingerprint-a'), rows, {}, async (s) => {
      expectChanges(s, Object.fromEntries([...fps].map(([k, fp]) => [k, { op: 'insert', fp }])), "the first run (each fingerprint is core's fingerprint() handed to ingest.add)");
    });
    const sync = h.sync('engine-fingerprint-b');
    const acks = (kind: 'sent' | 'delivered'): Ack[] => [...fps].map(([k, fp]) => (kind === 'sent' ? { key: k, kind, fp } : { key: k, kind, fp, destId: dest(k) }));
    const s = await look(h, sync, rows, {
      before: async (store) => {
        await apply(h, store, acks('sent'), 'sent acks of a stream');
        await apply(h, store, acks('delivered'), 'acks of a stream');
      },
    });
    expectChanges(s, {}, "a diff after a stream delivered every row (acked with core's fingerprint)");
  },

  /** Values of a type a column's first rows did not show come back as they were given. */
  async ingestTypes(h: StateStoreHarness): Promise<void> {
    const late: Value[] = ['12', true, { a: [1, 'x'], b: null }, [1, 'two', { three: 3 }], null, '', '\u0001marked', 1e21, -3, 0.1, 'text', false];
    const rows: Row[] = ids(1, 1500).map((id) => {
      const pick = (shift: number) => late[(id + shift) % late.length]!;
      const sampled = id <= 1000;
      return {
        id,
        num: sampled ? id + 0.5 : pick(0),
        str: sampled ? `s${id}` : pick(1),
        flag: sampled ? id % 2 === 0 : pick(2),
        empty: sampled ? null : pick(3),
      };
    });
    const sync = h.sync('ingest-types');
    await session(h, sync, rows, {}, async (s) => {
      expectChanges(s, Object.fromEntries(rows.map((r) => [key(r), { op: 'insert', row: r }])), 'the first run over columns whose types change after the first 1000 rows');
      await deliverAll(h, s);
    });
    expectChanges(await look(h, sync, rows), {}, 'a run over the same rows');
  },

  /**
   * `addresses` gives, per key delivered or sent, the destination id last delivered (kept by
   * an ack without one) and the match key of a write in doubt, either null when unknown; a
   * key deleted, only parked, or never acked is absent — as of every ack, before and after a
   * reopen.
   */
  async addresses(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('addresses');
    if (h.driver.writeModel) await within(h.driver.writeModel(sync, []), h.timeoutMs, 'writeModel()');
    const keys = ['1', '2', '3', '4', '5', '6'];
    const open = () => within(h.driver.open({ sync, columns: null, readOnly: false }), h.timeoutMs, 'open()');
    const read = async (store: DiffStore, when: string, want: Record<string, RecordAddress>) => {
      const got = Object.fromEntries([...(await within(store.addresses!(keys), h.timeoutMs, 'addresses()'))].sort(([a], [b]) => a.localeCompare(b)));
      if (!isDeepStrictEqual(got, want)) fail(`addresses() ${when}: expected ${show(want)}, got ${show(got)}`);
    };
    const fp = '12345';
    let store = await open();
    try {
      await store.apply([
        { key: '1', kind: 'delivered', fp, destId: 'd1' },
        { key: '3', kind: 'delivered', fp },
        { key: '4', kind: 'delivered', fp, destId: 'd4' },
        { key: '5', kind: 'delivered', fp, destId: 'd5' },
        { key: '6', kind: 'parked', fp },
      ]);
      await read(store, 'after the first acks', {
        '1': { destId: 'd1', match: null },
        '3': { destId: null, match: null },
        '4': { destId: 'd4', match: null },
        '5': { destId: 'd5', match: null },
      });
      await store.apply([
        { key: '2', kind: 'sent', fp, match: { email: 'two@example.com' } },
        { key: '4', kind: 'deleted' },
        { key: '5', kind: 'delivered', fp: '777' },
      ]);
      const want = {
        '1': { destId: 'd1', match: null },
        '2': { destId: null, match: { email: 'two@example.com' } },
        '3': { destId: null, match: null },
        '5': { destId: 'd5', match: null },
      };
      await read(store, 'after a write in doubt (2), a delete (4) and an update acked without an id (5)', want);
      await within(Promise.resolve(store.close()), h.timeoutMs, 'close()');
      store = await open();
      await read(store, 'after a reopen', want);
    } finally {
      await Promise.resolve(store.close()).catch(() => undefined);
    }
  },

  /**
   * Per key, `positions` gives its latest settled change that carried a position — delivered,
   * parked, deleted or a forgotten delete, the last two as gone; '' for one without (a
   * reconcile's) — across apply calls, folded or not, and nothing for a write only sent;
   * they survive a reopen; `forgetPositions(upTo)` drops the non-empty ones at or below
   * `upTo`, and `forgetPositions()` all.
   */
  async positions(h: StateStoreHarness): Promise<void> {
    const sync = h.sync('positions');
    if (h.driver.writeModel) await within(h.driver.writeModel(sync, []), h.timeoutMs, 'writeModel()');
    const keys = ['1', '2', '3', '4', '5', '6', '7'];
    const open = () => within(h.driver.open({ sync, columns: null, readOnly: false }), h.timeoutMs, 'open()');
    const read = async (store: DiffStore, when: string, want: Record<string, SettledChange>) => {
      const got = Object.fromEntries([...(await within(store.positions!(keys), h.timeoutMs, 'positions()'))].sort(([a], [b]) => a.localeCompare(b)));
      if (!isDeepStrictEqual(got, want)) fail(`positions() ${when}: expected ${show(want)}, got ${show(got)}`);
    };
    const fp = '12345';
    let store = await open();
    try {
      await store.apply([
        { key: '1', kind: 'delivered', fp, destId: 'd1', pos: '0000000001' },
        { key: '2', kind: 'delivered', fp, destId: 'd2', pos: '0000000002' },
        { key: '3', kind: 'parked', fp, pos: '0000000003' },
        { key: '4', kind: 'sent', fp },
        { key: '5', kind: 'forget', pos: '0000000004' },
        { key: '7', kind: 'delivered', fp, pos: '0000000005' },
      ]);
      await store.apply([
        { key: '2', kind: 'deleted', pos: '0000000009' },
        { key: '1', kind: 'delivered', fp: '777', pos: '0000000010' },
        { key: '6', kind: 'delivered', fp },
        { key: '7', kind: 'deleted', pos: '' },
      ]);
      const want = {
        '1': { pos: '0000000010', gone: false },
        '2': { pos: '0000000009', gone: true },
        '3': { pos: '0000000003', gone: false },
        '5': { pos: '0000000004', gone: true },
        '7': { pos: '', gone: true },
      };
      await read(store, 'after acks in two apply() calls (key 4 only sent, key 6 acked without a position, key 7 deleted by a reconcile)', want);
      await within(Promise.resolve(store.close()), h.timeoutMs, 'close()');
      store = await open();
      await read(store, 'after a reopen', want);
      await store.apply([{ key: '3', kind: 'delivered', fp, pos: '0000000011' }]);
      await within(store.forgetPositions!('0000000009'), h.timeoutMs, 'forgetPositions(upTo)');
      await read(store, 'after forgetPositions("0000000009")', { '1': { pos: '0000000010', gone: false }, '3': { pos: '0000000011', gone: false }, '7': { pos: '', gone: true } });
      await within(store.forgetPositions!(), h.timeoutMs, 'forgetPositions()');
      await read(store, 'after forgetPositions()', {});
      await within(Promise.resolve(store.close()), h.timeoutMs, 'close()');
      store = await open();
      await read(store, 'after forgetPositions() and a reopen', {});
    } finally {
      await Promise.resolve(store.close()).catch(() => undefined);
    }
  },
};

/** The state-store checks, in the order they run. */
export function stateStoreCheckList(): Check<StateStoreHarness>[] {
  const c = stateStoreChecks;
  return [
    { id: 'first-run', title: 'the first run yields every row as an insert, values in their JS types', run: c.firstRun },
    { id: 'unchanged', title: 'an unchanged model yields no change', run: c.unchanged },
    { id: 'update', title: 'a changed row is an update with the delivered fingerprint and destination id', run: c.update },
    { id: 'delete', title: 'a delivered row that left the model is a delete, once', run: c.delete },
    { id: 'undelivered', title: 'a row never delivered that left the model yields nothing', run: c.undelivered },
    { id: 'parked', title: 'a parked version is not yielded again until it changes; a parked delete is not repeated', run: c.parked },
    { id: 'in-doubt', title: 'a write sent and never acknowledged is yielded again (or deleted) and listed by inDoubt()', run: c.inDoubt },
    { id: 'delivered-count', title: 'deliveredCount() counts the records a run could delete', run: c.deliveredCount },
    { id: 'durable', title: 'acknowledgements and metadata survive a reopen', run: c.durable },
    { id: 'read-only', title: 'a read-only open reads the state (a missing one as empty) and writes nothing', run: c.readOnly },
    { id: 'mark-all-stale', title: 'after markAllStale() every delivered row is an update', run: c.markAllStale },
    { id: 'unpark', title: 'unpark() of some keys, then of all, makes parked rows changes again', run: c.unpark },
    { id: 'tidy', title: 'tidy() drops parked rows that left the model and un-parks rows back at their delivered version', run: c.tidy },
    { id: 'duplicate-key', title: 'a duplicate model key fails with OUTFLOW_MODEL_KEY', run: c.duplicateKey },
    { id: 'paging', title: `each change comes exactly once across pages (${PAGED_ROWS} rows)`, run: c.paging },
    { id: 'latest-ack', title: 'of several acks of one key in one apply() call, the last counts', run: c.latestAck },
    { id: 'ack-sequence', title: 'acks of one key in successive apply() calls add up', run: c.ackSequence },
    { id: 'columns', title: 'only the delivered columns count', run: c.columns },
    { id: 'engine-fingerprint', title: "a store with ingest diffs by core's fingerprints", notApplicable: needsIngest, run: c.engineFingerprint },
    { id: 'ingest-types', title: 'ingested values keep their JS types when a column changes type', notApplicable: needsIngest, run: c.ingestTypes },
    { id: 'addresses', title: 'addresses(): the destination id delivered or the match of a write in doubt, as of every ack', notApplicable: needsAddresses, run: c.addresses },
    { id: 'positions', title: 'stream positions: the latest settled change per key, deletes as gone, durable, forgotten up to a point', notApplicable: needsPositions, run: c.positions },
  ];
}

/**
 * Registers the state-store acceptance suite as vitest tests: the behaviours of a
 * `DiffStore` the engine relies on (see packages/core/src/state/store.ts), each check on its
 * own syncs. Call it at the top level of a test file.
 */
export function stateStoreSuite(driver: StateStoreDriver): void {
  describe(`state store acceptance: ${driver.name}`, () => {
    registerChecks(() => startStateStore(driver), stateStoreCheckList(), driver.skip);
  });
}
