import { describe, expect, it } from 'vitest';
import type { Row } from '../src/index.js';
import { parseCondition, ConditionError } from '../src/events/condition.js';
import { compilePayload, TemplateError } from '../src/events/template.js';
import type { SyncConfig, TriggerConfig } from '../src/config/schema.js';
import { memoryEvents } from './event-helpers.js';
import { environment, memorySource, memoryStream, syncConfig, tempDir } from './helpers.js';

const fast = { backoff: { baseMs: 1, maxMs: 5 } };

function eventSync(triggers: TriggerConfig[], overrides: Partial<SyncConfig> = {}): SyncConfig {
  return syncConfig({ ...overrides, to: { object: 'alerts', mode: 'event', triggers } });
}

function setup(rows: () => Row[], dest = memoryEvents()) {
  const env = environment(tempDir(), { src: memorySource(rows), dst: dest.connector });
  return { env, dest };
}

describe('conditions', () => {
  it('compares fields with literals, combines with and / or / not, and reads lists', () => {
    const c = parseCondition("(amount > 1000 and status == 'paid') or not vip == false or tier in ['gold', \"platinum\"]");
    expect([...c.fields].sort()).toEqual(['amount', 'status', 'tier', 'vip']);
    expect(c.test({ amount: 1001, status: 'paid', vip: false })).toBe(true);
    expect(c.test({ amount: 1000, status: 'paid', vip: false })).toBe(false);
    expect(c.test({ amount: 1, vip: true })).toBe(true);
    expect(c.test({ amount: 1, vip: false, tier: 'gold' })).toBe(true);
    expect(c.test(undefined)).toBe(false);
  });

  it('never orders a null, a missing field or values of different types', () => {
    const c = parseCondition('score >= 80');
    expect(c.test({ score: null })).toBe(false);
    expect(c.test({})).toBe(false);
    expect(c.test({ score: '90' })).toBe(false);
    expect(parseCondition('`Order Total` < -1.5').test({ 'Order Total': -2 })).toBe(true);
  });

  it('refuses what is not in the language, saying where', () => {
    const at = (text: string) => {
      try {
        parseCondition(text);
      } catch (err) {
        expect(err).toBeInstanceOf(ConditionError);
        return [(err as ConditionError).offset, (err as Error).message];
      }
      throw new Error(`"${text}" parsed`);
    };
    expect(at('amount >')).toEqual([8, 'the condition ends where a field or a value was expected']);
    expect(at('amount > 10 10')).toEqual([12, 'unexpected "10"; expected and, or, or the end of the condition']);
    expect(at("status == 'paid")).toEqual([10, 'unterminated string starting here']);
    expect(at('process.exit()')).toEqual([7, 'unexpected character "."']);
    expect(at('(a == 1')).toEqual([7, 'expected ")"']);
  });
});

describe('payload templates', () => {
  it('renders string leaves, keeps the type of a single output, and leaves other values as written', () => {
    const p = compilePayload({
      text: 'Order {{ after.id }} by {{ after.name }}: {{ after.amount }}',
      total: '{{ after.amount }}',
      doubled: '{{ after.amount | times: 2 }}',
      tags: '{{ after.tags }}',
      was: '{{ before.amount }}',
      fixed: 42,
      nested: { trigger: '{{ trigger }}', change: '{{ change }}', key: '{{ key }}' },
    });
    const payload = p.render({ after: { id: 7, name: 'Ada "the" Count', amount: 12.5, tags: ['a'] }, key: '7', trigger: 'big', change: 'insert' });
    expect(payload).toEqual({
      text: 'Order 7 by Ada "the" Count: 12.5',
      total: 12.5,
      doubled: 25,
      tags: ['a'],
      was: null,
      fixed: 42,
      nested: { trigger: 'big', change: 'insert', key: '7' },
    });
    expect(p.beforeFields).toEqual(['amount']);
  });

  it('refuses a broken template, an unknown filter, a file include and a variable outside the change, naming the leaf', () => {
    const problem = (payload: Record<string, unknown>) => {
      try {
        compilePayload(payload);
      } catch (err) {
        expect(err).toBeInstanceOf(TemplateError);
        const e = err as TemplateError;
        return { path: e.path, line: e.line, column: e.column, message: e.message };
      }
      throw new Error('the payload compiled');
    };
    expect(problem({ a: { b: 'x\n {{ after.id | nope }}' } })).toEqual({ path: ['a', 'b'], line: 2, column: 2, message: 'undefined filter: nope' });
    expect(problem({ text: '{{ after.id ' })).toMatchObject({ path: ['text'], message: 'output "{{ after.id " not closed' });
    expect(problem({ text: '{% include "secrets.txt" %}' })).toMatchObject({ path: ['text'], message: expect.stringContaining('payload templates cannot read other files') });
    expect(problem({ text: '{{ process.env }}' })).toMatchObject({ path: ['text'], message: expect.stringContaining('"process.env" is not something a payload can read') });
  });
});

describe('event mode, diff capture', () => {
  it('fires on insert once per row, then nothing until the model changes', async () => {
    const rows = [
      { id: 1, amount: 500 },
      { id: 2, amount: 1500 },
    ];
    const { env, dest } = setup(() => rows);
    const sync = eventSync([{ name: 'big-order', on: 'insert', when: 'amount > 1000', payload: { text: 'Order {{ after.id }}: {{ after.amount }}' } }]);
    const first = await env.engine.run(sync, fast);
    expect(first).toMatchObject({ status: 'succeeded', inserted: 1, skipped: 1, rejected: 0 });
    expect(dest.log.map((e) => [e.object, e.key, e.trigger, e.change, e.payload])).toEqual([['alerts', '2', 'big-order', 'insert', { text: 'Order 2: 1500' }]]);
    expect(await env.engine.run(sync, fast)).toMatchObject({ inserted: 0, skipped: 0 });
    expect(dest.log).toHaveLength(1);
    await env.close();
  });

  it('fires an update condition once per crossing: 70 → 85 fires, 85 → 90 does not, 90 → 70 → 85 fires again', async () => {
    let score = 70;
    const { env, dest } = setup(() => [{ id: 1, score }]);
    const sync = eventSync([{ name: 'hot-lead', on: 'update', when: 'score > 80', payload: { from: '{{ before.score }}', to: '{{ after.score }}' } }]);
    const fired: Row[][] = [];
    for (const next of [70, 85, 90, 70, 85]) {
      score = next;
      await env.engine.run(sync, fast);
      fired.push(dest.log.map((e) => e.payload));
    }
    expect(fired.map((f) => f.length)).toEqual([0, 1, 1, 1, 2]);
    expect(dest.log.map((e) => e.payload)).toEqual([
      { from: 70, to: 85 },
      { from: 70, to: 85 },
    ]);
    expect(new Set(dest.log.map((e) => e.idempotencyKey)).size).toBe(2);
    await env.close();
  });

  it('fires an update of named fields only when one of them changed, and a delete with the values kept of the row', async () => {
    let rows: Row[] = [{ id: 1, status: 'open', note: 'a', email: 'x@example.com' }];
    const { env, dest } = setup(() => rows);
    const sync = eventSync([
      { name: 'status', on: 'update', fields: ['status'], object: 'track', payload: { event: 'Status {{ before.status }} → {{ after.status }}' } },
      { name: 'gone', on: 'delete', payload: { email: '{{ before.email }}', key: '{{ key }}' } },
    ]);
    await env.engine.run(sync, fast);
    rows = [{ ...rows[0]!, note: 'b' }];
    await env.engine.run(sync, fast);
    expect(dest.log).toEqual([]);
    rows = [{ ...rows[0]!, status: 'paid' }];
    await env.engine.run(sync, fast);
    rows = [];
    expect(await env.engine.run(sync, fast)).toMatchObject({ status: 'succeeded', inserted: 1 });
    expect(dest.log.map((e) => [e.object, e.trigger, e.payload])).toEqual([
      ['track', 'status', { event: 'Status open → paid' }],
      ['alerts', 'gone', { email: 'x@example.com', key: '1' }],
    ]);
    // The row is forgotten: a row with its key appearing again is new.
    expect(await env.engine.run(sync, fast)).toMatchObject({ inserted: 0, deleted: 0 });
    await env.close();
  });

  it('plans the events a run would send, and sends none', async () => {
    const rows = [{ id: 1, amount: 2000 }];
    const { env, dest } = setup(() => rows);
    const sync = eventSync([{ name: 'big', on: 'insert', payload: { amount: '{{ after.amount }}' } }]);
    const plan = await env.engine.plan(sync);
    expect(plan.plan!.counts.event).toBe(1);
    expect(plan.plan!.changes).toEqual([{ kind: 'event', key: '1', fields: { amount: 2000 }, event: { trigger: 'big', object: 'alerts' } }]);
    expect(plan.plan!.truncated).toBe(false);
    expect(dest.calls).toEqual([]);
    await env.close();
  });

  it('sends an event whose answer was lost again with the same idempotency key, which a `key` destination takes once', async () => {
    const rows = [{ id: 1 }, { id: 2 }];
    const dest = memoryEvents({ idempotency: 'key' });
    dest.faults.loseAnswerOnCall = 1;
    const { env } = setup(() => rows, dest);
    const sync = eventSync([{ name: 'new', on: 'insert', payload: { id: '{{ after.id }}' } }]);
    expect(await env.engine.run(sync, fast)).toMatchObject({ status: 'succeeded', inserted: 2 });
    const sent = dest.calls.flat().map((o) => `${o.key} ${o.idempotencyKey}`);
    expect(sent).toHaveLength(4);
    expect(new Set(sent).size).toBe(2);
    expect(dest.log.map((e) => e.key)).toEqual(['1', '2']);
    await env.close();
  });

  it('parks an event whose answer was lost at a `none` destination as outcome unknown, and never posts it again', async () => {
    const rows = [{ id: 1 }];
    const dest = memoryEvents({ idempotency: 'none' });
    dest.faults.loseAnswerOnCall = 1;
    const { env } = setup(() => rows, dest);
    const sync = eventSync([{ name: 'new', on: 'insert', payload: { id: '{{ after.id }}' } }]);
    expect(await env.engine.run(sync, fast)).toMatchObject({ rejected: 1, inserted: 0 });
    const [error] = await env.ledger.listRowErrors({ sync: 'people' });
    expect(error).toMatchObject({ key: '1', parked: true, reason: expect.stringContaining('outcome unknown') });
    expect(await env.engine.run(sync, fast)).toMatchObject({ inserted: 0, rejected: 0 });
    expect(dest.calls.flat()).toHaveLength(1);
    expect(dest.log).toHaveLength(1);
    await env.close();
  });

  it('records a payload that cannot be rendered within the sandbox limits as that row’s error', async () => {
    const { env, dest } = setup(() => [
      { id: 1, n: 3 },
      { id: 2, n: 100_000_000 },
    ]);
    const sync = eventSync([{ name: 'new', on: 'insert', payload: { text: '{% for i in (1..after.n) %}x{% endfor %}' } }]);
    expect(await env.engine.run(sync, fast)).toMatchObject({ status: 'partial', inserted: 1, rejected: 1 });
    expect(dest.log.map((e) => e.payload)).toEqual([{ text: 'xxx' }]);
    expect(await env.ledger.listRowErrors({ sync: 'people' })).toMatchObject([{ key: '2', parked: true, reason: expect.stringContaining('the event payload could not be rendered') }]);
    await env.close();
  });

  it('records an event the destination refuses as a row error with its reason, and its row as parked', async () => {
    const dest = memoryEvents();
    dest.faults.reject = new Map([['2', 'channel_not_found']]);
    const { env } = setup(() => [{ id: 1 }, { id: 2 }], dest);
    const sync = eventSync([{ name: 'new', on: 'insert', payload: { id: '{{ after.id }}' } }]);
    expect(await env.engine.run(sync, fast)).toMatchObject({ inserted: 1, rejected: 1 });
    expect(await env.ledger.listRowErrors({ sync: 'people' })).toMatchObject([{ key: '2', reason: 'channel_not_found', parked: true }]);
    expect(await env.engine.run(sync, fast)).toMatchObject({ inserted: 0, rejected: 0 });
    await env.close();
  });
});

describe('event mode, stream capture', () => {
  it('fires per change within the stream, compares updates with the values kept, and skips replays after a restart', async () => {
    const dir = tempDir();
    const stream = memoryStream();
    const dest = memoryEvents();
    const connections = { src: stream.connector, dst: dest.connector };
    const sync = eventSync([{ name: 'paid', on: 'update', when: "status == 'paid'", payload: { order: '{{ key }}', was: '{{ before.status }}' } }], { capture: 'stream' });
    const streamUntil = async (until: string, from?: string) => {
      const env = environment(dir, connections);
      if (from !== undefined) await env.ledger.setCheckpoint('people', from);
      const running = env.engine.run(sync, fast);
      await expect.poll(() => env.ledger.getCheckpoint('people'), { timeout: 5000 }).toBe(until);
      env.engine.stop();
      await running;
      await env.close();
    };
    stream.emit({ checkpoint: '1', changes: [{ op: 'insert', key: 'a', after: { id: 'a', status: 'open' }, position: '01' }] });
    stream.emit({
      checkpoint: '2',
      changes: [
        { op: 'update', key: 'a', after: { id: 'a', status: 'paid' }, position: '02' },
        { op: 'update', key: 'a', after: { id: 'a', status: 'paid', note: 'x' }, position: '03' },
      ],
    });
    await streamUntil('2');
    expect(dest.log.map((e) => e.payload)).toEqual([{ order: 'a', was: 'open' }]);
    // Resumed from checkpoint 1, as after a crash before checkpoint 2 was saved: the replay sends nothing again.
    stream.emit({ checkpoint: '3', changes: [{ op: 'update', key: 'a', after: { id: 'a', status: 'refunded' }, position: '04' }] });
    stream.emit({ checkpoint: '4', changes: [{ op: 'update', key: 'a', after: { id: 'a', status: 'paid' }, position: '05' }] });
    await streamUntil('4', '1');
    expect(dest.log.map((e) => e.payload)).toEqual([
      { order: 'a', was: 'open' },
      { order: 'a', was: 'refunded' },
    ]);
    expect(dest.calls.flat()).toHaveLength(2);
  });

  it('keeps the values of a change that fires nothing after those of an earlier change of its key still being sent', async () => {
    const dir = tempDir();
    const stream = memoryStream();
    const dest = memoryEvents();
    const connections = { src: stream.connector, dst: dest.connector };
    const sync = eventSync(
      [
        { name: 'placed', on: 'insert', payload: { order: '{{ key }}' } },
        { name: 'paid', on: 'update', when: "status == 'paid'", payload: { order: '{{ key }}', paid: true } },
      ],
      { capture: 'stream' },
    );
    const streamUntil = async (until: string) => {
      const env = environment(dir, connections);
      const running = env.engine.run(sync, fast);
      await expect.poll(() => env.ledger.getCheckpoint('people'), { timeout: 5000 }).toBe(until);
      env.engine.stop();
      await running;
      await env.close();
    };
    // The insert's event is still being sent when the update, which fires nothing, is read.
    stream.emit({
      checkpoint: '1',
      changes: [
        { op: 'insert', key: 'a', after: { id: 'a', status: 'paid' }, position: '01' },
        { op: 'update', key: 'a', after: { id: 'a', status: 'open' }, position: '02' },
      ],
    });
    await streamUntil('1');
    // A later run compares with the values of the update (open), not of the insert (paid).
    stream.emit({ checkpoint: '2', changes: [{ op: 'update', key: 'a', after: { id: 'a', status: 'paid' }, position: '03' }] });
    await streamUntil('2');
    expect(dest.log.map((e) => e.trigger)).toEqual(['placed', 'paid']);
  });
});
