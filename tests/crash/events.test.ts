/**
 * Event mode killed at the crash points where the destination dedupes: the real `outflow`
 * CLI runs an event sync (diff capture from PostgreSQL into the webhook receiver), is
 * killed with SIGKILL after the receiver accepted a batch and before the acknowledgement
 * was logged (and between the acknowledgement log and its fold), and restarted after the
 * model changed. Every row of the model must have fired its `created` event exactly once,
 * and every row deleted whose creation was announced its `deleted` event exactly once —
 * counted in the receiver's own write log, where an event sent again under another
 * idempotency key shows twice. A deliberately broken connector shows the count catches it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FailpointName } from '@outflow/core';
import { start as startWebhook, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { assertBuilt, killAll, outflow, tempDir, within } from './cli.js';
import { source, type Source } from './systems.js';

const ROWS = 120;
const WAIT = 120_000;
const OBJECT = 'item-events';
/** The webhook connector sending every event under a fresh idempotency key. */
const UNKEYED = fileURLToPath(new URL('./fixtures/unkeyed-webhook.mjs', import.meta.url));

beforeAll(() => assertBuilt());
afterAll(() => killAll());

function eventYaml(src: Source, connector: string, receiverUrl: string): string {
  return `version: 1
connections:
  src: ${src.connection}
  dst: { connector: "${connector}", config: { url: "${receiverUrl}", secret: "\${env:HOOK_SECRET}" } }
syncs:
  - name: item-events
    from: ${src.from}
    capture: ${src.capture}
    to:
      connection: dst
      object: ${OBJECT}
      mode: event
      triggers:
        - { name: created, on: insert, payload: { id: "{{ after.id }}", name: "{{ after.name }}" } }
        - { name: deleted, on: delete, payload: { id: "{{ key }}" } }
    delivery: { batchSize: 20, concurrency: 2 }
`;
}

interface Counted {
  /** The model's ids after the restart. */
  model: string[];
  /** Ids deleted between the crash and the restart. */
  deleted: string[];
  /** Per id, the events of each trigger the receiver accepted. */
  created: Map<string, number>;
  gone: Map<string, number>;
  /** Events accepted before and after one more run. */
  idle: { before: number; after: number; code: number | null; output: string };
}

/** Per id, the events of each trigger the receiver accepted. */
function countEvents(receiver: WebhookEmulator): { created: Map<string, number>; gone: Map<string, number> } {
  const created = new Map<string, number>();
  const gone = new Map<string, number>();
  for (const w of receiver.writes(OBJECT)) {
    if (w.t !== 'event') continue;
    const counts = w.payload?.['name'] === undefined ? gone : created;
    counts.set(w.key, (counts.get(w.key) ?? 0) + 1);
  }
  return { created, gone };
}

/** Seeds the model, runs the CLI armed at `at` until it dies, changes the model, restarts it, and counts the receiver's events. */
async function crashAndRestart(at: `${FailpointName}:${number}`, connector: string): Promise<Counted> {
  const [point] = at.split(':') as [FailpointName];
  const src = await source('diff-embedded');
  const receiver = await startWebhook();
  try {
    const dir = tempDir('crash-events');
    writeFileSync(join(dir, 'outflow.yaml'), eventYaml(src, connector, receiver.url));
    const env = { HOOK_SECRET: receiver.config.secret };
    await src.seed(ROWS);

    const victim = await within(outflow(dir, ['run', '--json'], { env, failpoints: at }).exited, WAIT, `the runner to die at ${at}`);
    expect(victim.output).toContain(`failpoint ${point} reached`);
    expect(victim.signal).toBe('SIGKILL');

    // Updates, inserts and deletes while nothing runs: rows whose created event is in doubt change.
    const before = [...(await src.rows()).keys()];
    await src.change(1, 'all');
    const model = [...(await src.rows()).keys()];
    const deleted = before.filter((id) => !model.includes(id));
    const second = await within(outflow(dir, ['run', '--json'], { env }).exited, WAIT, 'the second run');
    expect(second.code, second.output).toBe(0);
    const counted = countEvents(receiver);
    const accepted = receiver.writes(OBJECT).length;
    const third = await within(outflow(dir, ['run', '--json'], { env }).exited, WAIT, 'the third run');
    return { model, deleted, ...counted, idle: { before: accepted, after: receiver.writes(OBJECT).length, code: third.code, output: third.output } };
  } finally {
    await src.close();
    await receiver.stop();
  }
}

const twice = (counts: Map<string, number>) => [...counts].filter(([, n]) => n > 1);

describe.concurrent('event mode killed at a crash point sends each event once after a restart', () => {
  for (const at of ['delivery.after-write:2', 'state.before-fold:1'] as const) {
    it(`diff-embedded → webhook events, killed at ${at}`, { timeout: 4 * WAIT }, async () => {
      const { model, deleted, created, gone, idle } = await crashAndRestart(at, 'webhook');
      expect(twice(created), 'created events accepted more than once').toEqual([]);
      expect(twice(gone), 'deleted events accepted more than once').toEqual([]);
      expect(model.filter((id) => created.get(id) !== 1), 'rows of the model without exactly one created event').toEqual([]);
      // A row deleted before its created event was ever delivered fires neither.
      expect(deleted.length).toBeGreaterThan(0);
      expect(deleted.filter((id) => (gone.get(id) ?? 0) !== (created.get(id) ?? 0)), 'deleted rows whose deleted event does not match their created one').toEqual([]);
      // Nothing is left to send: a further run accepts no event.
      expect(idle.code, idle.output).toBe(0);
      expect(idle.after).toBe(idle.before);
    });
  }
});

describe("the event cells' duplicate count", () => {
  it('catches a connector that sends events again under new idempotency keys', { timeout: 4 * WAIT }, async () => {
    const { created } = await crashAndRestart('delivery.after-write:2', UNKEYED);
    // The batch of 20 accepted before the crash is accepted again after it, but for the
    // few of its rows deleted meanwhile.
    expect(twice(created).length).toBeGreaterThanOrEqual(15);
  });
});
