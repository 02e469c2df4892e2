import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, it } from 'vitest';
import { describeError } from '@outflow/core';
import type { AnyConnector, Capabilities, Destination, Row, TSchema } from '@outflow/core';
import { checkConfig } from './config.js';
import { createTestContext, type TestContext } from './context.js';
import { instrument, SecretWatch, withoutLeaks } from './secrets.js';

/** Thrown by the acceptance checks when a connector breaks the contract. */
export class AcceptanceFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AcceptanceFailure';
  }
}

export function fail(message: string): never {
  throw new AcceptanceFailure(message);
}

/** A short JSON rendering of a value for failure messages. */
export function show(value: unknown, max = 400): string {
  let text: string;
  try {
    text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/**
 * Resolves with `promise`, or fails naming `what` when it has not settled after `ms`. This
 * turns a hang into a readable failure; it is not a performance assertion.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AcceptanceFailure(`${what} did not finish within ${ms} ms (is it hanging?)`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The names of `expected`'s fields whose value differs in `actual`. */
export function differingFields(actual: Row, expected: Row): string[] {
  return Object.keys(expected).filter((k) => !isDeepStrictEqual(actual[k], expected[k]));
}

/** A config the connector must refuse in `check()`. */
export interface BadConfig {
  /** What is wrong with it, shown in the test name and in failures. */
  name: string;
  config: unknown;
}

// Declared through a method so its parameter is bivariant: a harness of any config type can
// then be passed where the checks expect a harness of `unknown` config.
type BadConfigFactory<C> = { build(config: C): BadConfig[] }['build'];

/** How the suite gets a working connection, shared by every driver. */
export interface ConnectionDriver<C> {
  /** A working config, when it is known up front. */
  config?: C;
  /** Starts what the connection needs (an emulator, a fixture) and returns a working config. */
  setup?(): Promise<C>;
  /** Stops what `setup` started. */
  teardown?(): Promise<void>;
  /**
   * Configs `check()` must refuse with an OutflowError (a wrong secret, an unreachable
   * host …), or a function building them from the working config.
   */
  badConfigs?: BadConfig[] | BadConfigFactory<C>;
  /**
   * Why no config can make the connection fail (e.g. a local file with no credentials), when
   * the driver gives no `badConfigs`; `bad-configs` is then skipped with it.
   */
  noBadConfigs?: string;
  /** Check ids (as shown in brackets in the test names) to leave out, each with a reason in your test. */
  skip?: string[];
  /** How long a single call may take before the suite calls it a hang; 15 000 ms by default. */
  timeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 15_000;

/** A started connection: the working config and a context built from it. */
export interface Connection<C> {
  config: C;
  ctx: TestContext<C>;
  badConfigs: BadConfig[];
  /** The driver's reason why there are no bad configs, if it gives one. */
  noBadConfigs?: string;
  timeoutMs: number;
  /** Searches everything the connector emits through this connection's contexts for secrets. */
  watch: SecretWatch;
  /** Disposes of every context made, then runs the driver's teardown. */
  close(): Promise<void>;
  /** A fresh context for `config` (schema defaults applied, validity not required). */
  context<X = C>(config: X): TestContext<X>;
}

export async function openConnection<C>(connector: AnyConnector, driver: ConnectionDriver<C>): Promise<Connection<C>> {
  const contexts: TestContext<unknown>[] = [];
  const watch = new SecretWatch(connector.config);
  const context = <X>(config: X): TestContext<X> => {
    const resolved = checkConfig<X>(connector.config as TSchema, config).config;
    watch.addConfig(resolved);
    const ctx = createTestContext(resolved, { connection: `${connector.name}-acceptance`, logger: watch.logger });
    watch.attach(ctx as TestContext<unknown>);
    contexts.push(ctx as TestContext<unknown>);
    return ctx;
  };
  let config: C;
  if (driver.setup !== undefined) config = await driver.setup();
  else if (driver.config !== undefined) config = driver.config;
  else fail(`the driver for connector "${connector.name}" gives neither config nor setup()`);
  const bad = typeof driver.badConfigs === 'function' ? driver.badConfigs(config) : (driver.badConfigs ?? []);
  for (const b of bad) watch.addConfig(b.config);
  return {
    config,
    ctx: context(config),
    badConfigs: bad,
    ...(driver.noBadConfigs === undefined ? {} : { noBadConfigs: driver.noBadConfigs }),
    timeoutMs: driver.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    watch,
    context,
    async close() {
      await Promise.all(contexts.map((c) => c.dispose()));
      await driver.teardown?.();
    },
  };
}

/**
 * Opens the driver's connection to the connector's destination and reads its capabilities
 * for `object`: the start of a destination harness. The context keeps to the declared rate
 * limits, as the engine's budget does. The connection is closed again when that fails.
 */
export async function openDestination<C>(
  connector: AnyConnector,
  driver: ConnectionDriver<C>,
  object: string,
): Promise<Connection<C> & { connector: AnyConnector; destination: Destination<C>; capabilities: Capabilities }> {
  const destination = connector.destination as Destination<C> | undefined;
  if (destination === undefined) fail(`connector "${connector.name}" provides no destination`);
  const connection = await openConnection<C>(connector, driver);
  try {
    const capabilities = await within(Promise.resolve(destination.capabilities(connection.ctx, object)), connection.timeoutMs, 'capabilities()');
    for (const limit of Array.isArray(capabilities?.rateLimits) ? capabilities.rateLimits : []) connection.ctx.rateBudget.addLimit(limit);
    return { ...connection, connector, destination, capabilities };
  } catch (err) {
    await connection.close();
    throw err;
  }
}

/** One check of a suite: a plain async function over a started harness. */
export interface Check<H> {
  id: string;
  title: string;
  /** Why this check does not apply to the harness (e.g. an undeclared operation), if it does not. */
  notApplicable?(h: H): string | undefined;
  /** Throws an {@link AcceptanceFailure} when the check fails; a returned string is a note on a pass. */
  run(h: H): Promise<void | string>;
}

/**
 * Registers `checks` as vitest tests inside the current describe block, around a harness
 * started in beforeAll and closed in afterAll. Checks named in `skip` are reported skipped;
 * a check's note is added to its test as an annotation. Every call a check makes through the
 * harness's `source`, `stream` or `destination` is watched, and a check during which the
 * connector emitted a secret fails (see {@link SecretWatch}).
 */
export function registerChecks<H extends { close(): Promise<void> }>(
  start: () => Promise<H>,
  checks: Check<H>[],
  skip: readonly string[] = [],
): () => H {
  let harness: H | undefined;
  beforeAll(async () => {
    harness = instrument(await start());
  });
  afterAll(async () => {
    await harness?.close();
  });
  const get = (): H => harness ?? fail('the acceptance harness did not start; see the beforeAll error');
  for (const check of checks) {
    const name = `[${check.id}] ${check.title}`;
    if (skip.includes(check.id)) {
      it.skip(name, () => {});
      continue;
    }
    it(name, async (t) => {
      const h = get();
      const why = check.notApplicable?.(h);
      if (why !== undefined) {
        t.skip(why);
        return;
      }
      const note = await withoutLeaks(h, () => check.run(h));
      if (typeof note === 'string') await t.annotate(note);
    });
  }
  return get;
}

/** The outcome of one check run by {@link runChecks}. */
export interface CheckReport {
  id: string;
  status: 'passed' | 'failed' | 'skipped';
  /** The failure (starting with the check's id in brackets), why the check was skipped, or a note on a pass. */
  message?: string;
}

/**
 * Runs checks without vitest, on one harness from `start`, and reports each instead of
 * throwing: all of `all` in order, or those named in `ids`; those in `skip` are reported
 * skipped. For trying a connector by hand, and for the suites' own tests of broken ones.
 */
export async function runChecks<H extends { close(): Promise<void> }>(
  start: () => Promise<H>,
  all: Check<H>[],
  ids: string[] | undefined,
  skip: readonly string[] = [],
): Promise<CheckReport[]> {
  const unknown = (ids ?? []).filter((id) => !all.some((c) => c.id === id));
  if (unknown.length > 0) throw new TypeError(`no check has the id ${unknown.join(', ')}`);
  const checks = ids === undefined ? all : all.filter((c) => ids.includes(c.id));
  const h = await start();
  const reports: CheckReport[] = [];
  try {
    for (const check of checks) {
      const why = skip.includes(check.id) ? 'skipped by the driver' : check.notApplicable?.(h);
      if (why !== undefined) {
        reports.push({ id: check.id, status: 'skipped', message: why });
        continue;
      }
      try {
        const note = await check.run(h);
        reports.push(typeof note === 'string' ? { id: check.id, status: 'passed', message: note } : { id: check.id, status: 'passed' });
      } catch (err) {
        reports.push({ id: check.id, status: 'failed', message: `[${check.id}] ${describeError(err)}` });
      }
    }
  } finally {
    await h.close();
  }
  return reports;
}
