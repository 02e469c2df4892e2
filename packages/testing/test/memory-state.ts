import { createHash } from 'node:crypto';
import {
  OutflowError,
  keyOf,
  latestAcks,
  type Ack,
  type DiffRow,
  type DiffStore,
  type RecordAddress,
  type Row,
  type SettledChange,
  type SnapshotIngest,
  type StateStore,
  type StateStoreOpenOptions,
} from '@outflow/core';

const PARKED_DELETE = '~delete';
const STALE = '~stale';

interface Entry {
  fp: string | null;
  destId: string | null;
  parkedFp: string | null;
  sentFp: string | null;
  /** The match key of the write in doubt. */
  sentMatch: Row | null;
}

/** The delivered state of one sync, as a store would keep it on disk. */
export interface SyncState {
  delivered: Map<string, Entry>;
  meta: Map<string, string>;
  /** Per key, its latest settled stream change. */
  positions: Map<string, SettledChange>;
}

export type OpenedStore = DiffStore & { readonly ingest: SnapshotIngest };

/**
 * A correct delivered-state store held in memory: the reference the state-store suite is
 * tested against. `disk` outlives each opened store, as a state file does. `open` gives
 * stores that take the model through `ingest`; `openPushdown` gives stores that read the
 * model `writeModel` left (keyed by `id`) and fingerprint it themselves, as a warehouse does.
 */
export class MemoryStateStore implements StateStore {
  readonly disk = new Map<string, SyncState>();
  private readonly models = new Map<string, Row[]>();

  constructor(private readonly pageSize = 1000) {}

  async open(o: StateStoreOpenOptions): Promise<OpenedStore> {
    return new MemoryDiffStore(this.stateOf(o), o.readOnly, this.pageSize, null) as OpenedStore;
  }

  async openPushdown(o: StateStoreOpenOptions): Promise<DiffStore> {
    const rows = this.models.get(o.sync) ?? [];
    return new MemoryDiffStore(this.stateOf(o), o.readOnly, this.pageSize, () => rows.map((row) => ownFingerprint(row, o.columns)));
  }

  async writeModel(sync: string, rows: Row[]): Promise<void> {
    this.models.set(sync, structuredClone(rows));
  }

  private stateOf(o: StateStoreOpenOptions): SyncState {
    let state = this.disk.get(o.sync);
    if (state === undefined) {
      state = { delivered: new Map(), meta: new Map(), positions: new Map() };
      if (!o.readOnly) this.disk.set(o.sync, state);
    }
    return state;
  }
}

function ownFingerprint(row: Row, columns: string[] | null): { key: string; row: Row; fp: string } {
  const covered = columns === null ? row : Object.fromEntries(columns.map((c) => [c, row[c] ?? null]));
  const fp = createHash('sha256').update(JSON.stringify(covered)).digest('hex').slice(0, 16);
  return { key: keyOf(row, ['id'])!, row, fp };
}

type Snapshot = { key: string; row: Row; fp: string }[];

class MemoryDiffStore implements DiffStore {
  private snapshot: Snapshot = [];
  private model: Map<string, string> | null = null;
  private computed: DiffRow[] = [];
  readonly ingest?: SnapshotIngest;

  constructor(
    private readonly state: SyncState,
    private readonly readOnly: boolean,
    private readonly pageSize: number,
    /** For a pushdown store: reads the model where it lives. */
    private readonly read: (() => Snapshot) | null,
  ) {
    if (read === null) {
      this.ingest = {
        begin: async () => {
          this.snapshot = [];
        },
        add: async (keys, rows, fps) => {
          for (let i = 0; i < rows.length; i++) this.snapshot.push({ key: keys[i]!, row: structuredClone(rows[i]!), fp: fps[i]! });
        },
        end: async () => this.snapshot.length,
      };
    }
  }

  private writable(): void {
    if (this.readOnly) throw new OutflowError('OUTFLOW_INTERNAL', 'the delivered state was opened read-only');
  }

  async getMeta(k: string) {
    return this.state.meta.get(k);
  }

  async setMeta(k: string, v: string) {
    this.writable();
    this.state.meta.set(k, v);
  }

  async markAllStale() {
    this.writable();
    let n = 0;
    for (const e of this.state.delivered.values()) {
      if (e.fp === null) continue;
      e.fp = STALE;
      e.parkedFp = null;
      n++;
    }
    return n;
  }

  async unpark(keys?: string[]) {
    this.writable();
    let n = 0;
    for (const [k, e] of this.state.delivered) {
      if (keys === undefined ? e.parkedFp !== null : keys.includes(k)) {
        e.parkedFp = null;
        n++;
      }
    }
    return n;
  }

  async computeChanges() {
    if (this.read) this.snapshot = this.read();
    const model = new Map<string, { row: Row; fp: string }>();
    const dups = new Set<string>();
    for (const m of this.snapshot) {
      if (model.has(m.key)) dups.add(m.key);
      model.set(m.key, m);
    }
    if (dups.size) {
      throw new OutflowError('OUTFLOW_MODEL_KEY', `the model's primary key is not unique; duplicated: ${[...dups].slice(0, 5).join(', ')}`);
    }
    const out: DiffRow[] = [];
    for (const [key, m] of model) {
      const e = this.state.delivered.get(key);
      const changed = e === undefined || (e.sentFp !== null && m.fp !== e.parkedFp) || (m.fp !== e.fp && m.fp !== e.parkedFp);
      if (!changed) continue;
      out.push({ op: e?.fp != null ? 'update' : 'insert', key, fp: m.fp, row: structuredClone(m.row), oldFp: e?.fp ?? null, destId: e?.destId ?? null, sentFp: e?.sentFp ?? null });
    }
    for (const [key, e] of this.state.delivered) {
      if (model.has(key) || (e.fp === null && e.sentFp === null) || e.parkedFp === PARKED_DELETE) continue;
      out.push({ op: 'delete', key, fp: null, row: null, oldFp: e.fp, destId: e.destId, sentFp: e.sentFp });
    }
    this.model = new Map([...model].map(([k, m]) => [k, m.fp]));
    this.computed = out;
    const counts = { insert: 0, update: 0, delete: 0 };
    for (const c of out) counts[c.op]++;
    return counts;
  }

  async *changes() {
    for (let i = 0; i < this.computed.length; i += this.pageSize) yield this.computed.slice(i, i + this.pageSize);
  }

  async apply(acks: Ack[]) {
    this.writable();
    const delivered = this.state.delivered;
    for (const a of latestAcks(acks)) {
      const e = delivered.get(a.key) ?? { fp: null, destId: null, parkedFp: null, sentFp: null, sentMatch: null };
      if (a.kind === 'delivered') delivered.set(a.key, { fp: a.fp, destId: a.destId ?? e.destId, parkedFp: null, sentFp: null, sentMatch: null });
      // A refusal writes nothing, so a write in doubt stays in doubt.
      else if (a.kind === 'parked') delivered.set(a.key, { ...e, parkedFp: a.fp ?? PARKED_DELETE });
      else if (a.kind === 'sent') delivered.set(a.key, { ...e, sentFp: a.fp, sentMatch: a.match ?? null });
      else delivered.delete(a.key);
    }
    for (const a of acks) {
      if (a.kind === 'sent' || a.pos === undefined) continue;
      this.state.positions.set(a.key, { pos: a.pos, gone: a.kind === 'deleted' || a.kind === 'forget' });
    }
  }

  async addresses(keys: string[]) {
    const out = new Map<string, RecordAddress>();
    for (const k of keys) {
      const e = this.state.delivered.get(k);
      if (e && (e.fp !== null || e.sentFp !== null || e.destId !== null)) out.set(k, { destId: e.destId, match: e.sentMatch });
    }
    return out;
  }

  async positions(keys: string[]) {
    const out = new Map<string, SettledChange>();
    for (const k of keys) {
      const at = this.state.positions.get(k);
      if (at !== undefined) out.set(k, at);
    }
    return out;
  }

  async forgetPositions(upTo?: string) {
    this.writable();
    for (const [k, at] of this.state.positions) if (upTo === undefined || (at.pos !== '' && at.pos <= upTo)) this.state.positions.delete(k);
  }

  async inDoubt() {
    return [...this.state.delivered].filter(([, e]) => e.sentFp !== null).map(([key, e]) => ({ key, fp: e.sentFp! }));
  }

  async deliveredCount() {
    return [...this.state.delivered.values()].filter((e) => e.fp !== null || e.sentFp !== null).length;
  }

  async tidy() {
    this.writable();
    if (this.model === null) return [];
    const out: string[] = [];
    for (const [k, e] of this.state.delivered) {
      if (e.fp === null && e.sentFp === null && !this.model.has(k)) {
        this.state.delivered.delete(k);
        out.push(k);
      } else if (e.parkedFp !== null && this.model.get(k) === e.fp) {
        e.parkedFp = null;
        out.push(k);
      }
    }
    return out;
  }

  close() {}
}
