import { AsyncLocalStorage } from 'node:async_hooks';
import {
  createLogger,
  secretPaths,
  type ChangeBatch,
  type ChangeStream,
  type Destination,
  type Logger,
  type Source,
  type Stream,
  type TSchema,
} from '@outflow/core';
import type { TestContext } from './context.js';
import { AcceptanceFailure } from './harness.js';

const MASK = '[REDACTED]';
/** Shorter values are not searched for, as core's redact() does not mask them either. */
const MIN_SECRET = 4;

/** The value at a dot-less path of keys, or undefined when a step is missing. */
export function getAt(value: unknown, path: readonly string[]): unknown {
  let v = value;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/** Sets (or, with `to` undefined, removes) the value at `path`; its parent must exist. */
export function setAt(value: unknown, path: readonly string[], to: unknown): void {
  const parent = getAt(value, path.slice(0, -1)) as Record<string, unknown>;
  const last = path[path.length - 1]!;
  if (to === undefined) delete parent[last];
  else parent[last] = to;
}

/** The password of a `scheme://user:password@host` URL, if `value` is one. */
export function urlPassword(value: string): string | undefined {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(value)) return undefined;
  try {
    const password = decodeURIComponent(new URL(value).password);
    return password === '' ? undefined : password;
  } catch {
    return undefined;
  }
}

/** One secret value of a config and the property it came from. */
export interface SecretValue {
  /** The property path, e.g. `token` or `url (its password)`. */
  path: string;
  value: string;
}

/** Every secret string of `config` (the values at `secret: true` paths, and passwords inside them). */
export function secretValues(schema: TSchema | Record<string, unknown>, config: unknown): SecretValue[] {
  const out: SecretValue[] = [];
  for (const path of secretPaths(schema)) {
    const value = getAt(config, path.split('.'));
    if (typeof value !== 'string') continue;
    out.push({ path, value });
    const password = urlPassword(value);
    if (password !== undefined) out.push({ path: `${path} (its password)`, value: password });
  }
  return out;
}

/**
 * How a value may show up in emitted text: as given, escaped inside a JSON string (a log line;
 * a PEM key's newlines become `\n`), and percent-encoded (inside a URL).
 */
function formsOf(value: string): string[] {
  const forms = new Set([value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)]);
  return [...forms];
}

/** Every string a thrown value shows, each with where it shows it: messages, JSON forms, causes. */
export function errorTexts(err: unknown): { where: string; text: string }[] {
  const out: { where: string; text: string }[] = [];
  const seen = new Set<unknown>();
  const visit = (e: unknown, label: string, depth: number): void => {
    if (e === undefined || e === null || depth > 8 || seen.has(e)) return;
    seen.add(e);
    if (!(e instanceof Error)) {
      out.push({ where: label, text: typeof e === 'string' ? e : safeJson(e) });
      return;
    }
    out.push({ where: `${label}'s message`, text: e.message });
    out.push({ where: `${label}'s JSON form`, text: safeJson(e) });
    const toJSON = (e as { toJSON?: () => unknown }).toJSON;
    if (typeof toJSON === 'function') out.push({ where: `${label}'s toJSON()`, text: safeJson(toJSON.call(e)) });
    if (e instanceof AggregateError) e.errors.forEach((inner, i) => visit(inner, `${label}'s errors[${i}]`, depth + 1));
    visit(e.cause, depth === 0 ? 'its cause' : `${label}'s cause`, depth + 1);
  };
  visit(err, 'the error', 0);
  return out;
}

/** JSON of a value with every own property of errors included, cycles and buffers left out. */
function safeJson(value: unknown): string {
  const seen = new WeakSet<object>();
  try {
    return (
      JSON.stringify(value, function (this: unknown, _key, v: unknown) {
        if (typeof v === 'bigint') return `${v}n`;
        if (v instanceof Uint8Array) return `<${v.length} bytes>`;
        if (v !== null && typeof v === 'object') {
          if (seen.has(v)) return '<cycle>';
          seen.add(v);
          if (v instanceof Error) return { name: v.name, message: v.message, ...(v as unknown as Record<string, unknown>) };
        }
        return v;
      }) ?? String(value)
    );
  } catch {
    return String(value);
  }
}

/** One place a secret value showed up. */
export interface Leak {
  /** The contract method running when it showed up, e.g. `destination.write()`. */
  method: string;
  /** What the connector did, e.g. `logged a warn line`, `threw an error`. */
  how: string;
  /** Where in it the value showed, e.g. `its cause's message`, when that says more. */
  where?: string;
  /** The property whose value it is. */
  secret: string;
  /** The text around it, with every known secret masked. */
  excerpt: string;
}

const LEAKS = Symbol('outflow.testing.leaks');

/** An {@link AcceptanceFailure} for secrets a connector emitted, naming each method and place. */
export function leakFailure(leaks: Leak[], context = ''): AcceptanceFailure {
  const shown = leaks.slice(0, 3).map((l) => describeLeak(l, context));
  const failure = new AcceptanceFailure(`a secret leaked: ${shown.join('; ')}${leaks.length > 3 ? `; and ${leaks.length - 3} more` : ''}`);
  return Object.assign(failure, { [LEAKS]: leaks });
}

/** The leaks an error from {@link leakFailure} reports, or undefined for any other error. */
export function leaksOf(err: unknown): Leak[] | undefined {
  return err instanceof AcceptanceFailure ? (err as AcceptanceFailure & { [LEAKS]?: Leak[] })[LEAKS] : undefined;
}

/** `destination.check() threw an error that shows a secret value: … (the value of "token", in the error's message)` */
export function describeLeak(leak: Leak, context = ''): string {
  const where = leak.where === undefined ? '' : `, in ${leak.where}`;
  return `${leak.method}${context ? ` ${context}` : ''} ${leak.how} that shows a secret value: ${leak.excerpt} (the value of "${leak.secret}"${where})`;
}

const WATCHED = new WeakSet<object>();

type Iter<T> = AsyncIterator<T>;

/**
 * Watches everything a connector emits through the contexts of one connection: every line
 * logged through `ctx.logger` (at every level), every metric's name and labels, every value
 * stored in `ctx.kv`, and, for the calls made through the role objects it wraps, every error
 * thrown (message, JSON form, cause chain), write results' reasons and checkpoints. Each is
 * searched for every secret value of every config a context was made for.
 *
 * A call through a wrapped role object that emitted a secret fails with a {@link leakFailure}
 * naming the method and where the secret showed up; what was emitted outside such a call is
 * reported by the next one. The logger is core's, which masks secrets registered with
 * `registerSecret()` before the watch sees the line; the suite registers none.
 */
export class SecretWatch {
  /** A logger at level `trace` whose lines are searched as they are written. */
  readonly logger: Logger;
  private readonly forms = new Map<string, string>();
  private readonly found: Leak[] = [];
  private reported = 0;
  private readonly running = new AsyncLocalStorage<string>();

  constructor(private readonly schema: TSchema | Record<string, unknown>) {
    // The sink is called synchronously by the logging call, so the running method is known.
    const sink = {
      write: (line: string | Uint8Array, cb?: () => void) => {
        const level = levelOf(String(line));
        this.search(String(line), level === undefined ? 'logged a line' : `logged a ${level} line`);
        cb?.();
        return true;
      },
    };
    this.logger = createLogger({ level: 'trace', destination: sink as unknown as NodeJS.WritableStream });
  }

  /** Adds the secret values of `config` to those searched for. */
  addConfig(config: unknown): void {
    for (const { path, value } of secretValues(this.schema, config)) {
      if (value.length < MIN_SECRET) continue;
      for (const form of formsOf(value)) if (!this.forms.has(form)) this.forms.set(form, path);
    }
  }

  /** Watches what is reported through `ctx.metrics` and stored in `ctx.kv`. */
  attach(ctx: TestContext<unknown>): void {
    const { metrics, kv } = ctx;
    const gauge = metrics.gauge.bind(metrics);
    const count = metrics.count.bind(metrics);
    const set = kv.set.bind(kv);
    metrics.gauge = (name, value, labels) => {
      this.search(JSON.stringify({ name, labels }), `reported the gauge ${JSON.stringify(name)}`, 'its name or labels');
      gauge(name, value, labels);
    };
    metrics.count = (name, delta, labels) => {
      this.search(JSON.stringify({ name, labels }), `reported the counter ${JSON.stringify(name)}`, 'its name or labels');
      count(name, delta, labels);
    };
    kv.set = (key, value) => {
      this.search(`${key} = ${value}`, `stored the ctx.kv entry ${JSON.stringify(key)}`);
      return set(key, value);
    };
  }

  /** Every leak found so far. */
  get leaks(): readonly Leak[] {
    return this.found;
  }

  /** Marks every leak found so far as reported, and returns those not reported before. */
  takeUnreported(): Leak[] {
    const fresh = this.found.slice(this.reported);
    this.reported = this.found.length;
    return fresh;
  }

  /** Text masked: every known secret value replaced by `[REDACTED]`. */
  mask(text: string): string {
    let out = text;
    for (const form of [...this.forms.keys()].sort((a, b) => b.length - a.length)) out = out.split(form).join(MASK);
    return out;
  }

  /** Searches `text` for every secret value and records each found. */
  private search(text: string, how: string, where?: string): void {
    for (const [form, path] of this.forms) {
      if (!text.includes(form)) continue;
      // Masked before it is cut, so no part of any secret is left in the excerpt.
      const masked = this.mask(text).replace(/\s+/g, ' ').trim();
      const at = Math.max(0, masked.indexOf(MASK));
      const [start, end] = [Math.max(0, at - 120), at + MASK.length + 120];
      const excerpt = `${start > 0 ? '…' : ''}${masked.slice(start, end)}${end < masked.length ? '…' : ''}`;
      const method = this.running.getStore() ?? 'outside any call the suite watched (while the harness started, or in a timer or event handler)';
      this.found.push({ method, how, ...(where === undefined ? {} : { where }), secret: path, excerpt });
      return;
    }
  }

  private searchError(err: unknown): void {
    for (const { where, text } of errorTexts(err)) {
      const before = this.found.length;
      this.search(text, 'threw an error', where);
      if (this.found.length > before) return;
    }
  }

  /** Throws a {@link leakFailure} for the leaks not reported yet. */
  private raise(): void {
    const fresh = this.takeUnreported();
    if (fresh.length > 0) throw leakFailure(fresh);
  }

  /**
   * Runs one contract call as `method`: what it logs, reports and throws is searched, and a
   * leak (from it, or not reported before) fails it with a {@link leakFailure}.
   */
  call<T>(method: string, fn: () => Promise<T> | T, inspect?: (result: T) => void): Promise<T> {
    return this.running.run(method, async () => {
      let result: T;
      try {
        result = await fn();
      } catch (err) {
        if (err instanceof AcceptanceFailure) throw err;
        this.searchError(err);
        this.raise();
        throw err;
      }
      inspect?.(result);
      this.raise();
      return result;
    });
  }

  /** Searches a value a connector returned (a result's reason, a checkpoint) as `how`. */
  private returned(text: string | undefined, how: string): void {
    if (text !== undefined) this.search(text, how);
  }

  private iterator<T>(inner: Iter<T>, method: string, inspect?: (value: T) => void): Iter<T> {
    return {
      next: () => this.call(method, () => inner.next(), (r) => !r.done && inspect?.(r.value)),
      return: async (value?: unknown) => (inner.return ? this.call(method, () => inner.return!(value)) : { done: true, value: undefined as T }),
    };
  }

  /** The source with every method call watched. */
  source<C>(source: Source<C>): Source<C> {
    if (WATCHED.has(source)) return source;
    const watched: Source<C> = {
      check: (ctx) => this.call('source.check()', () => source.check(ctx)),
      discover: (ctx) => this.call('source.discover()', () => source.discover(ctx), (c) => this.returned(safeJson(c), 'returned a catalog')),
      read: (ctx, model) => {
        const iterable = this.running.run('source.read()', () => source.read(ctx, model));
        return { [Symbol.asyncIterator]: () => this.iterator(iterable[Symbol.asyncIterator](), 'source.read()') };
      },
    };
    if (source.columns) watched.columns = (ctx, model) => this.call('source.columns()', () => source.columns!(ctx, model));
    if (source.diff) watched.diff = source.diff;
    WATCHED.add(watched);
    return watched;
  }

  /** The stream with `open()` and every method of the streams it opens watched. */
  stream<C>(stream: Stream<C>): Stream<C> {
    if (WATCHED.has(stream)) return stream;
    const watched: Stream<C> = {
      open: async (ctx, model, from, options) => this.changeStream(await this.call('stream.open()', () => stream.open(ctx, model, from, options))),
    };
    WATCHED.add(watched);
    return watched;
  }

  private changeStream(inner: ChangeStream): ChangeStream {
    let iterator: Iter<ChangeBatch> | undefined;
    const checkpoint = (b: ChangeBatch) => this.returned(typeof b?.checkpoint === 'string' ? b.checkpoint : undefined, 'yielded a checkpoint');
    return {
      [Symbol.asyncIterator]: () => (iterator ??= this.iterator(inner[Symbol.asyncIterator](), 'stream next()', checkpoint)),
      commit: (cp) => this.call('stream.commit()', () => inner.commit(cp)),
      health: () => this.call('stream.health()', () => inner.health()),
      close: () => this.call('stream.close()', () => inner.close()),
    };
  }

  /** The destination with every method call watched; write results' reasons are searched too. */
  destination<C>(destination: Destination<C>): Destination<C> {
    if (WATCHED.has(destination)) return destination;
    const watched: Destination<C> = {
      check: (ctx) => this.call('destination.check()', () => destination.check(ctx)),
      discover: (ctx) => this.call('destination.discover()', () => destination.discover(ctx), (c) => this.returned(safeJson(c), 'returned a catalog')),
      capabilities: (ctx, object) =>
        this.call('destination.capabilities()', () => destination.capabilities(ctx, object), (c) => this.returned(safeJson(c), 'returned capabilities')),
      write: (ctx, object, ops) =>
        this.call(
          'destination.write()',
          () => destination.write(ctx, object, ops),
          (results) => {
            if (Array.isArray(results)) for (const r of results) this.returned(r && !r.ok ? r.reason : undefined, 'returned a rejection reason');
          },
        ),
    };
    if (destination.lookup) watched.lookup = (ctx, object, ops) => this.call('destination.lookup()', () => destination.lookup!(ctx, object, ops));
    WATCHED.add(watched);
    return watched;
  }
}

function levelOf(line: string): string | undefined {
  const m = /"level":(\d+)/.exec(line);
  const names: Record<string, string> = { '10': 'trace', '20': 'debug', '30': 'info', '40': 'warn', '50': 'error', '60': 'fatal' };
  return m ? names[m[1]!] : undefined;
}

type Watched = { watch?: unknown; source?: Source<never>; stream?: Stream<never>; destination?: Destination<never> };

/**
 * Replaces the harness's `source`, `stream` and `destination` with watched ones, so every
 * call a check makes through them is searched for secrets. Harnesses without a watch are
 * returned as they are.
 */
export function instrument<H>(harness: H): H {
  const h = harness as Watched;
  if (!(h.watch instanceof SecretWatch)) return harness;
  if (h.source) h.source = h.watch.source(h.source);
  if (h.stream) h.stream = h.watch.stream(h.stream);
  if (h.destination) h.destination = h.watch.destination(h.destination);
  return harness;
}

/**
 * Runs one check and fails it when a secret leaked while it ran (also where the check caught
 * the failing call) or earlier without any call reporting it: a leak failure then replaces
 * the check's own outcome.
 */
export async function withoutLeaks<T>(harness: unknown, run: () => Promise<T>): Promise<T> {
  const watch = (harness as Watched).watch;
  if (!(watch instanceof SecretWatch)) return run();
  const before = watch.leaks.length;
  let outcome: { value: T } | { error: unknown };
  try {
    outcome = { value: await run() };
  } catch (error) {
    outcome = { error };
  }
  // Leaks no call reported (also ones from before the check, e.g. while the harness started)
  // and those a call reported but the check caught.
  const leaks = [...new Set([...watch.takeUnreported(), ...watch.leaks.slice(before)])];
  if (leaks.length > 0 && !('error' in outcome && leaksOf(outcome.error))) throw leakFailure(leaks);
  if ('error' in outcome) throw outcome.error;
  return outcome.value;
}
