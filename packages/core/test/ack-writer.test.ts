import { describe, expect, it } from 'vitest';
import type { Ack } from '../src/index.js';
import { AckWriter } from '../src/delivery/ack-writer.js';

/** A delivered state that records each apply call and takes `ms` to make one durable. */
function slowStore(ms = 5, failCall?: number) {
  const calls: Ack[][] = [];
  return {
    calls,
    async apply(acks: Ack[]): Promise<void> {
      const n = calls.push([...acks]) - 1;
      await new Promise((resolve) => setTimeout(resolve, ms));
      if (n === failCall) throw new Error('disk full');
    },
  };
}

const sent = (key: string, fp = '1'): Ack => ({ key, kind: 'sent', fp });
const delivered = (key: string, fp = '1'): Ack => ({ key, kind: 'delivered', fp });
const keysOf = (calls: Ack[][]) => calls.map((c) => c.map((a) => `${a.kind}:${a.key}`));

describe('AckWriter', () => {
  it('writes acks that queue up behind a write in progress together, in the order their places were taken', async () => {
    const store = slowStore();
    const writer = new AckWriter(store);
    const first = writer.write([sent('a')]);
    // Taken while the first write runs; filled out of order.
    const fillB = writer.reserve();
    const fillC = writer.reserve();
    const c = fillC([delivered('c')]);
    const b = fillB([delivered('b')]);
    const d = writer.write([sent('d')]);
    await Promise.all([first, b, c, d]);
    expect(keysOf(store.calls)).toEqual([['sent:a'], ['delivered:b', 'delivered:c', 'sent:d']]);
  });

  it('waits for a place taken earlier before writing what came after it', async () => {
    const store = slowStore(1);
    const writer = new AckWriter(store);
    const fillA = writer.reserve();
    let bDurable = false;
    const b = writer.write([sent('b')]).then(() => (bDurable = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(store.calls).toEqual([]);
    expect(bDurable).toBe(false);
    await fillA([delivered('a')]);
    await b;
    expect(keysOf(store.calls)).toEqual([['delivered:a', 'sent:b']]);
  });

  it('never puts two places with the same key in one write, where a store keeping the last ack per key would lose the first', async () => {
    const store = slowStore();
    const writer = new AckWriter(store);
    const first = writer.write([sent('x')]);
    const rest = [writer.write([delivered('a')]), writer.write([sent('a', '2')]), writer.write([delivered('b')])];
    await Promise.all([first, ...rest]);
    expect(keysOf(store.calls)).toEqual([['sent:x'], ['delivered:a'], ['sent:a', 'delivered:b']]);
  });

  it('fails the places of a write that failed, and goes on with the next', async () => {
    const store = slowStore(5, 1);
    const writer = new AckWriter(store);
    const first = writer.write([sent('a')]);
    const failed = writer.write([sent('b')]);
    const alsoFailed = writer.write([sent('c')]);
    await first;
    await expect(failed).rejects.toThrow('disk full');
    await expect(alsoFailed).rejects.toThrow('disk full');
    await writer.write([sent('d')]);
    expect(keysOf(store.calls)).toEqual([['sent:a'], ['sent:b', 'sent:c'], ['sent:d']]);
  });
});
