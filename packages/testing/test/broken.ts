/**
 * Deliberately broken connectors, each made by wrapping one method of a correct reference
 * connector in memory.ts: connectors that leak their token, misdeclare their capabilities,
 * accept bad configs, or break a change stream's guarantees. The suite's tests show each one
 * is caught, by a failure naming the check.
 */
import {
  defineConnector,
  isOutflowError,
  OutflowError,
  type AnyConnector,
  type Capabilities,
  type ChangeBatch,
  type ChangeStream,
  type ConnectorContext,
  type Destination,
  type Source,
  type Stream,
} from '@outflow/core';
import { SECURED, TOKEN, type MemoryConfig } from './memory.js';

type Ctx = ConnectorContext<MemoryConfig>;

/** The contract methods a leaky connector can leak from. */
export type LeakMethod =
  | 'source.check'
  | 'source.discover'
  | 'source.read'
  | 'stream.open'
  | 'stream.next'
  | 'stream.commit'
  | 'stream.health'
  | 'stream.close'
  | 'destination.check'
  | 'destination.discover'
  | 'destination.capabilities'
  | 'destination.write'
  | 'destination.lookup';

/**
 * How the token gets out: a log line (at debug), a metric label, a ctx.kv entry, an error's
 * message, its cause, its details, a property of a plain error (as HTTP clients attach the
 * request), or a write result's reason.
 */
export type LeakHow = 'log' | 'metric' | 'kv' | 'message' | 'cause' | 'details' | 'error-property' | 'reason';

export interface Leak {
  method: LeakMethod;
  how: LeakHow;
  /**
   * `refused`: only when the token is wrong, as an error path would; `{ token }`: only with
   * that token; by default on every call.
   */
  when?: 'always' | 'refused' | { token: string };
}

function leak(ctx: Ctx, spec: Leak): void {
  const token = ctx.config.token;
  if (spec.when === 'refused' && token === TOKEN) return;
  if (typeof spec.when === 'object' && token !== spec.when.token) return;
  switch (spec.how) {
    case 'log':
      ctx.logger.debug({ auth: token }, 'calling the memory system');
      return;
    case 'metric':
      ctx.metrics.count('memory_calls', 1, { credential: token });
      return;
    case 'kv':
      void ctx.kv.set('memory-session', `session of ${token}`);
      return;
    case 'message':
      throw new OutflowError('OUTFLOW_CHECK_FAILED', `token ${token} was refused`);
    case 'cause':
      throw new OutflowError('OUTFLOW_CHECK_FAILED', 'the memory system refused the token', { cause: new Error(`401 for ${token}`) });
    case 'details':
      throw new OutflowError('OUTFLOW_CHECK_FAILED', 'the memory system refused the token', { details: { token } });
    case 'error-property':
      throw Object.assign(new Error('request failed with status 401'), { request: { headers: { authorization: `Bearer ${token}` } } });
    case 'reason':
      return;
  }
}

function leakyChangeStream(inner: ChangeStream, ctx: Ctx, spec: Leak): ChangeStream {
  const it = inner[Symbol.asyncIterator]();
  const at = (method: LeakMethod) => spec.method === method && leak(ctx, spec);
  return {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        const r = await it.next();
        if (!r.done) at('stream.next');
        return r;
      },
      return: async () => (it.return ? it.return() : { done: true as const, value: undefined }),
    }),
    commit: async (cp) => {
      at('stream.commit');
      return inner.commit(cp);
    },
    health: async () => {
      at('stream.health');
      return inner.health();
    },
    close: async () => {
      at('stream.close');
      return inner.close();
    },
  };
}

/** `connector` with `spec.method` leaking the token as `spec.how`. */
export function leaky(connector: AnyConnector, spec: Leak): AnyConnector {
  const at = (method: LeakMethod, ctx: Ctx) => spec.method === method && leak(ctx, spec);
  const source = connector.source as Source<MemoryConfig> | undefined;
  const stream = connector.stream as Stream<MemoryConfig> | undefined;
  const destination = connector.destination as Destination<MemoryConfig> | undefined;
  const leakySource: Source<MemoryConfig> | undefined = source && {
    ...source,
    check: async (ctx) => {
      at('source.check', ctx);
      return source.check(ctx);
    },
    discover: async (ctx) => {
      at('source.discover', ctx);
      return source.discover(ctx);
    },
    read: async function* (ctx, model) {
      at('source.read', ctx);
      yield* source.read(ctx, model);
    },
  };
  const leakyStream: Stream<MemoryConfig> | undefined = stream && {
    open: async (ctx, model, from, options) => {
      at('stream.open', ctx);
      return leakyChangeStream(await stream.open(ctx, model, from, options), ctx, spec);
    },
  };
  const leakyDestination: Destination<MemoryConfig> | undefined = destination && {
    ...destination,
    check: async (ctx) => {
      at('destination.check', ctx);
      return destination.check(ctx);
    },
    discover: async (ctx) => {
      at('destination.discover', ctx);
      return destination.discover(ctx);
    },
    capabilities: async (ctx, object) => {
      at('destination.capabilities', ctx);
      return destination.capabilities(ctx, object);
    },
    write: async (ctx, object, ops) => {
      at('destination.write', ctx);
      const results = await destination.write(ctx, object, ops);
      if (spec.method !== 'destination.write' || spec.how !== 'reason') return results;
      return results.map((r) => (r.ok ? r : { ...r, reason: `${r.reason} (sent with token ${ctx.config.token})` }));
    },
  };
  if (leakyDestination && destination?.lookup) {
    leakyDestination.lookup = async (ctx, object, ops) => {
      at('destination.lookup', ctx);
      return destination.lookup!(ctx, object, ops);
    };
  }
  return defineConnector({ ...connector, source: leakySource, stream: leakyStream, destination: leakyDestination } as AnyConnector);
}

export type Write = Destination<MemoryConfig>['write'];

/** What {@link misdeclared} changes: the declared capabilities, and write() around the correct one. */
export interface Misdeclaration {
  capabilities?: (declared: Capabilities) => Capabilities;
  write?: (inner: Write) => Write;
}

/** `connector` with its destination's capabilities() and write() replaced. */
export function misdeclared(connector: AnyConnector, patch: Misdeclaration): AnyConnector {
  const destination = connector.destination as Destination<MemoryConfig>;
  const capabilities = patch.capabilities;
  return defineConnector({
    ...connector,
    destination: {
      ...destination,
      ...(capabilities ? { capabilities: async (ctx: Ctx, object: string) => capabilities(await destination.capabilities(ctx, object)) } : {}),
      ...(patch.write ? { write: patch.write(destination.write.bind(destination)) } : {}),
    },
  } as AnyConnector);
}

/** `connector` with a source whose check() accepts any config. */
export function acceptingSource(connector: AnyConnector): AnyConnector {
  return defineConnector({ ...connector, source: { ...connector.source!, check: async () => {} } });
}

/** Ways to break the reference stream, each against one guarantee. */
export type StreamBreak =
  /** open() does not check the token. */
  | 'accepts-bad-config'
  /** Checkpoints one position past the batch's last change: resuming skips a change. */
  | 'checkpoint-ahead'
  /** Checkpoints one position before it: resuming replays a change. */
  | 'checkpoint-behind'
  /** health() never answers. */
  | 'health-hangs'
  /** health() waits for the next() in flight to finish. */
  | 'health-waits-for-next'
  /** health() answers a timestamp as the lag. */
  | 'lag-timestamp'
  /** health() answers a negative lag. */
  | 'lag-negative'
  /** close() leaves a waiting next() waiting. */
  | 'close-leaves-next'
  /** Never reports stale: next() goes quiet, health() says fresh, open() of a lost checkpoint starts afresh. */
  | 'never-stale'
  /** Reports stale with OUTFLOW_SOURCE instead of OUTFLOW_STREAM_STALE. */
  | 'wrong-error'
  /** health() reports stale at once, before securing a new position; next() goes quiet. */
  | 'stale-before-securing'
  /** open(null) forgets the position secured when the stream went stale and starts from now. */
  | 'forgets-secured'
  /** Leaves deletes out of its batches. */
  | 'drops-deletes'
  /** Gives an update as the row before it. */
  | 'stale-update';

const hang = () => new Promise<never>(() => {});

/**
 * The reference stream `memory` broken by `fault`; `makeStale` is the driver's (it tells the
 * variant that the stream went stale, where the variant needs to know).
 */
export function brokenStream(memory: { connector: AnyConnector; makeStale(): Promise<void> }, fault: StreamBreak): { connector: AnyConnector; makeStale(): Promise<void> } {
  const inner = memory.connector.stream as Stream<MemoryConfig>;
  let staleAt = 0;
  const shift = (b: ChangeBatch, by: number): ChangeBatch => ({ ...b, checkpoint: String(Math.max(0, Number(b.checkpoint) + by)) });
  const renamed = (err: unknown): unknown =>
    fault === 'wrong-error' && isOutflowError(err, 'OUTFLOW_STREAM_STALE') ? new OutflowError('OUTFLOW_SOURCE', `the memory log failed: ${err.message}`) : err;

  function wrap(opened: ChangeStream, openedAt: number): ChangeStream {
    const it = opened[Symbol.asyncIterator]();
    let inFlight: Promise<unknown> = Promise.resolve();
    let release: (() => void) | undefined;
    const closedSignal = new Promise<void>((resolve) => (release = resolve));
    const quiet = () => closedSignal.then(() => ({ done: true as const, value: undefined }));
    const goneStale = () => staleAt > openedAt;
    return {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          if (fault === 'stale-before-securing' && goneStale()) return quiet();
          const pending = it.next();
          inFlight = pending.catch(() => undefined);
          try {
            const r = await pending;
            if (r.done) return r;
            if (fault === 'checkpoint-ahead') return { done: false, value: shift(r.value, 1) };
            if (fault === 'checkpoint-behind') return { done: false, value: shift(r.value, -1) };
            if (fault === 'drops-deletes') return { done: false, value: { ...r.value, changes: r.value.changes.filter((c) => c.op !== 'delete') } };
            if (fault === 'stale-update') {
              const changes = r.value.changes.map((c) => (c.op === 'update' && c.before ? { ...c, after: c.before } : c));
              return { done: false, value: { ...r.value, changes } };
            }
            return r;
          } catch (err) {
            if (fault === 'never-stale' && isOutflowError(err, 'OUTFLOW_STREAM_STALE')) return quiet();
            throw renamed(err);
          }
        },
        return: async () => (it.return ? it.return() : { done: true as const, value: undefined }),
      }),
      commit: (cp) => opened.commit(cp),
      health: async () => {
        switch (fault) {
          case 'health-hangs':
            return hang();
          case 'health-waits-for-next':
            await inFlight;
            return opened.health();
          case 'lag-timestamp':
            return { stale: false, lagMs: Date.now() };
          case 'lag-negative':
            return { stale: false, lagMs: -5 };
          case 'stale-before-securing':
            return goneStale() ? { stale: true } : opened.health();
          case 'never-stale':
          case 'wrong-error':
            await opened.health();
            return { stale: false, lagMs: 0 };
          default:
            return opened.health();
        }
      },
      close: async () => {
        release?.();
        if (fault !== 'close-leaves-next') await opened.close();
      },
    };
  }

  let opens = 0;
  const stream: Stream<MemoryConfig> = {
    async open(ctx, model, from, options) {
      const openedAt = ++opens;
      if (fault === 'accepts-bad-config') return wrap(await inner.open({ ...ctx, config: { ...ctx.config, token: TOKEN } }, model, from, options), openedAt);
      if (fault === 'forgets-secured' && from === null) await ctx.kv.delete(SECURED);
      try {
        return wrap(await inner.open(ctx, model, from, options), openedAt);
      } catch (err) {
        if (fault === 'never-stale' && isOutflowError(err, 'OUTFLOW_STREAM_STALE')) return wrap(await inner.open(ctx, model, null, options), openedAt);
        throw renamed(err);
      }
    },
  };
  return {
    connector: defineConnector({ ...memory.connector, stream } as AnyConnector),
    makeStale: async () => {
      await memory.makeStale();
      staleAt = opens + 0.5;
    },
  };
}
