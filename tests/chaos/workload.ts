/**
 * Random changes to a model, from a seeded PRNG: inserts of new ids, updates of a name, a
 * score or both, and deletes, about in the proportions 35 / 40 / 25 so the model keeps its
 * size. It keeps the ids the model holds, so a change list is the same for the same seed
 * whatever the timing; a list never touches one id twice.
 */
import type { Prng } from './prng.js';
import type { Change } from './models.js';

const WORDS = ['ada', 'grace', 'alan', 'edsger', 'barbara', 'ken', 'łukasz', 'zoë', 'josé', 'søren', 'mei', 'ngozi'];

export interface WorkloadCounts {
  inserts: number;
  updates: number;
  deletes: number;
}

export class Workload {
  readonly counts: WorkloadCounts = { inserts: 0, updates: 0, deletes: 0 };
  private readonly ids: number[] = [];
  private readonly at = new Map<number, number>();
  private nextId = 1;

  constructor(
    private readonly rng: Prng,
    /** Only inserts (an insert-only destination keeps the first version of each record). */
    private readonly insertsOnly: boolean,
  ) {}

  /** The model's first rows: ids 1..n. */
  seed(n: number): Extract<Change, { op: 'insert' }>[] {
    const rows = Array.from({ length: n }, () => this.insert());
    this.applied(rows);
    this.counts.inserts = 0;
    return rows;
  }

  /** One round of 1..`max` changes; call {@link applied} once the model holds them. */
  round(max = 12): Change[] {
    const n = this.rng.int(1, max);
    const touched = new Set<number>();
    const out: Change[] = [];
    for (let i = 0; i < n; i++) {
      const roll = this.rng.next();
      if (this.insertsOnly || roll < 0.35 || this.ids.length < 20) {
        out.push(this.insert());
        continue;
      }
      const id = this.rng.pick(this.ids);
      if (touched.has(id)) continue;
      touched.add(id);
      if (roll < 0.75) {
        const what = this.rng.int(0, 2);
        out.push({ op: 'update', id, ...(what !== 1 ? { name: this.name() } : {}), ...(what !== 0 ? { score: this.score() } : {}) });
      } else {
        out.push({ op: 'delete', id });
      }
    }
    return out;
  }

  /** Records that the model now holds `changes`. */
  applied(changes: Change[]): void {
    for (const c of changes) {
      if (c.op === 'insert') {
        this.at.set(c.id, this.ids.length);
        this.ids.push(c.id);
        this.counts.inserts++;
      } else if (c.op === 'delete') {
        const i = this.at.get(c.id)!;
        const last = this.ids.pop()!;
        if (last !== c.id) {
          this.ids[i] = last;
          this.at.set(last, i);
        }
        this.at.delete(c.id);
        this.counts.deletes++;
      } else {
        this.counts.updates++;
      }
    }
  }

  private insert(): Extract<Change, { op: 'insert' }> {
    return { op: 'insert', id: this.nextId++, name: this.name(), score: this.score() };
  }

  private name(): string {
    return `${this.rng.pick(WORDS)} ${this.rng.int(0, 99_999)}`;
  }

  private score(): number {
    return this.rng.int(-1000, 1_000_000);
  }
}
