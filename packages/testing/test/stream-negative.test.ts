import { describe, expect, it } from 'vitest';
import { startStream, streamCheckList, streamChecks, type StreamDriver, type StreamHarness } from '../src/index.js';
import { brokenStream, type StreamBreak } from './broken.js';
import { memoryStream, TOKEN, type MemoryConfig } from './memory.js';
import { failureOf } from './run-check.js';

type CheckFn = (h: StreamHarness) => Promise<void | string>;

function driverFor(memory: { connector: StreamDriver['connector']; makeStale(): Promise<void> }, overrides: Partial<StreamDriver<MemoryConfig>> = {}): StreamDriver<MemoryConfig> {
  const reference = memoryStream();
  return {
    connector: memory.connector,
    config: { token: TOKEN },
    model: { table: 'items', primaryKey: ['id'] },
    row: reference.row,
    mutate: async () => {},
    makeStale: memory.makeStale,
    badConfigs: [{ name: 'a wrong token', config: { token: 'not-the-memory-token' } }],
    // Short: a broken stream makes a check wait for what never comes.
    timeoutMs: 1_000,
    ...overrides,
  };
}

/** Runs `check` as the suite does, on the reference stream broken by `fault`, and returns its failure's message. */
async function failure(check: CheckFn, fault?: StreamBreak, overrides: Partial<StreamDriver<MemoryConfig>> = {}): Promise<string> {
  const memory = memoryStream();
  const variant = fault === undefined ? memory : brokenStream(memory, fault);
  return failureOf(await startStream({ ...driverFor(variant), mutate: memory.mutate, ...overrides }), check);
}

describe('the stream suite catches a broken stream', () => {
  it('bad-configs fails when open() accepts a wrong token', async () => {
    expect(await failure(streamChecks.badConfigs, 'accepts-bad-config')).toMatch(/open\(\) accepted bad config "a wrong token"/);
  });

  it('bad-configs fails when the driver gives none, and is skipped with the reason the driver gives', async () => {
    expect(await failure(streamChecks.badConfigs, undefined, { badConfigs: [] })).toMatch(/the driver gives no bad configs/);
    const memory = memoryStream();
    const h = await startStream({ ...driverFor(memory), badConfigs: [], noBadConfigs: 'the memory log takes any token' });
    try {
      expect(streamCheckList().find((c) => c.id === 'bad-configs')!.notApplicable?.(h)).toBe('the memory log takes any token');
    } finally {
      await h.close();
    }
  });

  it('stream-follow fails when deletes never come', async () => {
    expect(await failure(streamChecks.follow, 'drops-deletes')).toMatch(/the delete of/);
  });

  it('stream-follow fails when an update carries the row as it was before', async () => {
    expect(await failure(streamChecks.follow, 'stale-update')).toMatch(/after open\(null\)/);
  });

  it('stream-resume fails when a checkpoint is ahead of its batch, so resuming loses a change', async () => {
    expect(await failure(streamChecks.resume, 'checkpoint-ahead')).toMatch(/waiting for the uncommitted insert of 13 and the update of 11 made while closed/);
  });

  it('stream-resume fails when a checkpoint is behind its batch, so resuming replays a change it covers', async () => {
    expect(await failure(streamChecks.resume, 'checkpoint-behind')).toMatch(/replayed the insert of 12, which it covers/);
  });

  it('stream-health fails when health() hangs', async () => {
    expect(await failure(streamChecks.health, 'health-hangs')).toMatch(/health\(\) of a fresh stream did not finish within 1000 ms/);
  });

  it('stream-health fails when health() waits for the next() in flight', async () => {
    expect(await failure(streamChecks.health, 'health-waits-for-next')).toMatch(/health\(\) while next\(\) waits for changes did not finish within/);
  });

  it('stream-health fails when lagMs is a timestamp', async () => {
    expect(await failure(streamChecks.health, 'lag-timestamp')).toMatch(/lagMs \d{13}, longer than the \d+ ms the suite has been running/);
  });

  it('stream-health fails when lagMs is negative', async () => {
    expect(await failure(streamChecks.health, 'lag-negative')).toMatch(/lagMs -5; a lag is a finite number of milliseconds, 0 or more/);
  });

  it('stream-health fails when close() leaves a waiting next() waiting', async () => {
    expect(await failure(streamChecks.health, 'close-leaves-next')).toMatch(/the pending next\(\) after close\(\) \(close\(\) must end the iteration\) did not finish/);
  });

  it('stream-stale fails when the stream never reports stale', async () => {
    expect(await failure(streamChecks.staleWhileOpen, 'never-stale')).toMatch(
      /after makeStale\(\) while the stream was open: the stream never reported stale within 1000 ms: health\(\) answered \{"stale":false,"lagMs":0\} and next\(\) kept waiting/,
    );
  });

  it('stream-stale fails when the stream reports stale with another error code', async () => {
    expect(await failure(streamChecks.staleWhileOpen, 'wrong-error')).toMatch(/next\(\) failed with OUTFLOW_SOURCE: the memory log failed: .* instead of OUTFLOW_STREAM_STALE/);
  });

  it('stream-stale fails when health() reports stale before a new position is secured', async () => {
    expect(await failure(streamChecks.staleWhileOpen, 'stale-before-securing')).toMatch(
      /waiting for the delete of 21 and the insert of 23, made after the stream reported stale \(health\(\) answered stale: true\): open\(null\) must resume at the position the connector secured/,
    );
  });

  it('stream-stale fails when open(null) forgets the secured position after the handshake', async () => {
    expect(await failure(streamChecks.staleWhileOpen, 'forgets-secured')).toMatch(
      /waiting for the delete of 21 and the insert of 23, made after the stream reported stale \((health\(\) answered stale: true|next\(\) threw OUTFLOW_STREAM_STALE)\)/,
    );
  });

  it('stream-stale-open fails when reopening a lost checkpoint resumes as if nothing was lost', async () => {
    expect(await failure(streamChecks.staleWhileClosed, 'never-stale')).toMatch(/open\("\d+"\) after makeStale\(\) while the stream was closed: the stream never reported stale/);
  });

  it('stream-stale-open fails when reopening a lost checkpoint throws another error code', async () => {
    expect(await failure(streamChecks.staleWhileClosed, 'wrong-error')).toMatch(/open\("\d+"\) after makeStale\(\) while the stream was closed failed with OUTFLOW_SOURCE: .* instead of OUTFLOW_STREAM_STALE/);
  });

  it('stream-stale-open fails when open(null) forgets the secured position after the handshake', async () => {
    expect(await failure(streamChecks.staleWhileClosed, 'forgets-secured')).toMatch(
      /waiting for the delete of 31 and the insert of 33, made after the stream reported stale \(open\(\) threw OUTFLOW_STREAM_STALE\)/,
    );
  });

  it('the stale checks need makeStale(), or are skipped with the reason the driver gives', async () => {
    expect(await failure(streamChecks.staleWhileOpen, undefined, { makeStale: undefined })).toMatch(/the driver gives no makeStale\(\)/);
    const h = await startStream({ ...driverFor(memoryStream()), makeStale: undefined, noStale: 'the log keeps everything' });
    try {
      const ids = ['stream-stale', 'stream-stale-open'];
      expect(streamCheckList().filter((c) => ids.includes(c.id)).map((c) => c.notApplicable?.(h))).toEqual(['the log keeps everything', 'the log keeps everything']);
    } finally {
      await h.close();
    }
  });
});
