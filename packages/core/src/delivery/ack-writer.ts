import type { Ack, DiffStore } from '../state/store.js';

interface Slot {
  acks: Ack[] | undefined;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Writes acknowledgements to the delivered state in the order their places were taken, with
 * one `apply` at a time: acks that queue up behind an `apply` in progress go together in the
 * next one (group commit), so a destination answering many small batches costs a handful of
 * state writes, not one each.
 *
 * A place is taken synchronously ({@link reserve}) when the order is decided — a write about
 * to be sent, a batch just answered — and filled once its acks are known; the acks of later
 * places wait for it. So the acks of one key reach the store in the order they happened
 * (sent, then delivered, then the next sent), however long a caller takes to fill its place.
 */
export class AckWriter {
  private readonly queue: Slot[] = [];
  private writing = false;

  constructor(private readonly store: Pick<DiffStore, 'apply'>) {}

  /**
   * Takes the next place in the order. The returned function fills it (with no acks, when
   * there is nothing to record) and resolves once those acks are durable; it must be called
   * exactly once, or every later place waits forever.
   */
  reserve(): (acks: Ack[]) => Promise<void> {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const durable = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const slot: Slot = { acks: undefined, resolve, reject };
    this.queue.push(slot);
    return (acks) => {
      slot.acks = acks;
      this.kick();
      return durable;
    };
  }

  /** Records `acks` after every place taken before; resolves once they are durable. */
  write(acks: Ack[]): Promise<void> {
    return this.reserve()(acks);
  }

  /**
   * Applies the filled places at the head of the queue in one call, if none is running. A
   * place with a key an earlier place of the group has starts the next group: a store may
   * keep only the last ack per key of one call (see `latestAcks`), and a `sent` after a
   * `delivered` must not hide that delivery.
   */
  private kick(): void {
    if (this.writing) return;
    let n = 0;
    const keys = new Set<string>();
    while (n < this.queue.length && this.queue[n]!.acks !== undefined) {
      const acks = this.queue[n]!.acks!;
      if (n > 0 && acks.some((a) => keys.has(a.key))) break;
      for (const a of acks) keys.add(a.key);
      n++;
    }
    if (n === 0) return;
    const group = this.queue.splice(0, n);
    const acks = group.length === 1 ? group[0]!.acks! : group.flatMap((s) => s.acks!);
    this.writing = true;
    const done = acks.length === 0 ? Promise.resolve() : this.store.apply(acks);
    done.then(
      () => {
        this.writing = false;
        for (const s of group) s.resolve();
        this.kick();
      },
      (err: unknown) => {
        this.writing = false;
        for (const s of group) s.reject(err);
        this.kick();
      },
    );
  }
}
