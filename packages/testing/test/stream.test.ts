import { describe, expect, it } from 'vitest';
import { startStream, streamAcceptance, streamChecks, type StreamDriver } from '../src/index.js';
import { memoryStream, TOKEN, type MemoryConfig } from './memory.js';

function driverFor(memory: ReturnType<typeof memoryStream>): StreamDriver<MemoryConfig> {
  return {
    connector: memory.connector,
    config: { token: TOKEN },
    model: { table: 'items', primaryKey: ['id'] },
    row: memory.row,
    mutate: memory.mutate,
    makeStale: memory.makeStale,
    badConfigs: [{ name: 'a wrong token', config: { token: 'not-the-memory-token' } }],
    timeoutMs: 5_000,
  };
}

const reference = memoryStream();
streamAcceptance(driverFor(reference));

describe('the reference stream', () => {
  it('was committed up to the checkpoint the resume check took', () => {
    // Runs after the suite above (tests of a file run in order).
    expect(reference.committed.length).toBeGreaterThan(0);
  });
});

describe('the stream suite catches a broken stream', () => {
  it('fails resume when reopening replays changes the checkpoint covers', async () => {
    const h = await startStream(driverFor(memoryStream({ ignoreCheckpoint: true })));
    try {
      await expect(streamChecks.resume(h)).rejects.toThrow(/replayed the insert of 11/);
    } finally {
      await h.close();
    }
  });

  it('fails follow when changes never arrive', async () => {
    const memory = memoryStream();
    const h = await startStream({ ...driverFor(memory), mutate: async () => {}, timeoutMs: 200 });
    try {
      await expect(streamChecks.follow(h)).rejects.toThrow(/waiting for the inserts of 1 and 2/);
    } finally {
      await h.close();
    }
  });
});
