import { isDeepStrictEqual } from 'node:util';
import { describe } from 'vitest';
import { describeError, isOutflowError, keyOf, type AnyConnector, type Model, type Row, type RowBatch, type Source } from '@outflow/core';
import type { TestContext } from './context.js';
import { expectBadConfigsRefused } from './bad-configs.js';
import { AcceptanceFailure, fail, openConnection, registerChecks, show, within, type Check, type ConnectionDriver } from './harness.js';
import { instrument } from './secrets.js';
import { specCheckList, type SpecHarness } from './spec.js';

/** What {@link sourceAcceptance} needs to exercise a source. */
export interface SourceDriver<C = unknown> extends ConnectionDriver<C> {
  connector: AnyConnector;
  /** The model read; its primary key identifies rows. */
  model: Model;
  /** Every row the model holds, exactly as read() must yield them (in any order). */
  expectedRows?: Row[];
  /** How many rows the model holds, when listing them is impractical. */
  expectedCount?: number;
}

/** A started source under test. */
export interface SourceHarness<C = unknown> extends SpecHarness<C> {
  driver: SourceDriver<C>;
  source: Source<C>;
}

/** Starts the driver's connection for the source checks. */
export async function startSource<C>(driver: SourceDriver<C>): Promise<SourceHarness<C>> {
  const source = driver.connector.source as Source<C> | undefined;
  if (source === undefined) fail(`connector "${driver.connector.name}" provides no source`);
  if (driver.expectedRows === undefined && driver.expectedCount === undefined) fail('the source driver gives neither expectedRows nor expectedCount');
  const connection = await openConnection<C>(driver.connector, driver);
  return instrument({ ...connection, connector: driver.connector, driver, source });
}

function where(model: Model): string {
  return model.table ?? model.file ?? (model.sql === undefined ? 'the model' : `query ${show(model.sql, 80)}`);
}

/** Reads the whole model, checking each batch's shape; rows by key, failing on a duplicate or missing key. */
async function readAll(h: SourceHarness, ctx: TestContext<unknown> = h.ctx): Promise<Map<string, Row>> {
  const { model } = h.driver;
  const rows = new Map<string, Row>();
  const read = async () => {
    for await (const batch of h.source.read(ctx as never, model)) {
      if (!Array.isArray(batch?.rows)) fail(`read() of ${where(model)} yielded ${show(batch)}, not { rows: [] }`);
      for (const row of batch.rows) {
        const key = keyOf(row, model.primaryKey);
        if (key === undefined) fail(`read() of ${where(model)} yielded a row without its primary key ${show(model.primaryKey)}: ${show(row)}`);
        if (rows.has(key)) fail(`read() of ${where(model)} yielded key ${show(key)} twice`);
        rows.set(key, row);
      }
    }
  };
  await within(read(), h.timeoutMs * 4, `read() of ${where(model)}`);
  return rows;
}

function compare(h: SourceHarness, rows: Map<string, Row>, what: string): void {
  const { expectedRows, expectedCount, model } = h.driver;
  if (expectedRows === undefined) {
    if (rows.size !== expectedCount) fail(`${what} yielded ${rows.size} rows, expected ${expectedCount}`);
    return;
  }
  const expected = new Map(expectedRows.map((r) => [keyOf(r, model.primaryKey) ?? fail(`expected row without a key: ${show(r)}`), r]));
  const missing = [...expected.keys()].filter((k) => !rows.has(k));
  const extra = [...rows.keys()].filter((k) => !expected.has(k));
  if (missing.length > 0 || extra.length > 0) {
    fail(`${what}: ${missing.length} expected rows missing (${show(missing.slice(0, 5))}), ${extra.length} unexpected (${show(extra.slice(0, 5))})`);
  }
  for (const [key, want] of expected) {
    const got = rows.get(key)!;
    if (!isDeepStrictEqual(got, want)) fail(`${what}: row ${show(key)} is ${show(got)}, expected ${show(want)}`);
  }
}

/** Pulls the next batch, or reports how the iteration ended. */
async function step(it: AsyncIterator<RowBatch>, ms: number, what: string): Promise<{ batch?: RowBatch; error?: unknown }> {
  try {
    const r = await within(it.next(), ms, what);
    return r.done ? {} : { batch: r.value };
  } catch (err) {
    if (err instanceof AcceptanceFailure) throw err;
    return { error: err };
  }
}

function expectAbortEnding(error: unknown, what: string): void {
  if (error !== undefined && !isOutflowError(error)) fail(`${what} ended with a non-OutflowError: ${describeError(error)}`);
}

/** The source checks, as plain async functions over a {@link SourceHarness}. */
export const sourceChecks = {
  /** check() passes with the working config. */
  async check(h: SourceHarness): Promise<void> {
    await within(h.source.check(h.ctx), h.timeoutMs, 'check()');
  },

  /** check() refuses every bad config with an OutflowError; the driver must give at least one. */
  async badConfigs(h: SourceHarness): Promise<void> {
    await expectBadConfigsRefused(h, 'check()', (ctx) => h.source.check(ctx));
  },

  /** discover() lists the model's table with columns. */
  async discover(h: SourceHarness): Promise<void> {
    const table = h.driver.model.table ?? fail('the model is not a table');
    const catalog = await within(h.source.discover(h.ctx), h.timeoutMs, 'discover()');
    if (!Array.isArray(catalog?.tables)) fail(`discover() returned ${show(catalog)}, not { tables: [] }`);
    const wanted = table.toLowerCase();
    const found = catalog.tables.find((t) => [t.name, t.schema === undefined ? t.name : `${t.schema}.${t.name}`].some((n) => n.toLowerCase() === wanted));
    if (found === undefined) fail(`discover() does not list table ${show(table)}; it lists ${show(catalog.tables.map((t) => t.name), 200)}`);
    if (!Array.isArray(found.columns) || found.columns.length === 0) fail(`discover() lists table ${show(table)} without columns`);
  },

  /** read() yields every expected row exactly once, equal to the expected values. */
  async read(h: SourceHarness): Promise<void> {
    compare(h, await readAll(h), `read() of ${where(h.driver.model)}`);
  },

  /** Reading twice gives the same rows. */
  async repeatable(h: SourceHarness): Promise<void> {
    const first = await readAll(h);
    const second = await readAll(h);
    compare(h, second, `a second read() of ${where(h.driver.model)}`);
    if (!isDeepStrictEqual(first, second)) fail('two reads of the same model gave different rows');
  },

  /**
   * Aborting the signal ends the read promptly: before reading, no rows come; after the first
   * batch, at most one more batch comes before the iteration ends.
   */
  async abort(h: SourceHarness): Promise<void> {
    const { model } = h.driver;
    const early = h.context(h.config);
    early.controller.abort();
    const it0 = h.source.read(early as never, model)[Symbol.asyncIterator]();
    const r0 = await step(it0, h.timeoutMs, 'read() with an aborted signal');
    if (r0.batch !== undefined && r0.batch.rows.length > 0) fail(`read() with an already aborted signal yielded ${r0.batch.rows.length} rows`);
    expectAbortEnding(r0.error, 'read() with an aborted signal');
    await it0.return?.();

    const ctx = h.context(h.config);
    const it = h.source.read(ctx as never, model)[Symbol.asyncIterator]();
    const first = await step(it, h.timeoutMs, 'the first batch of read()');
    if (first.error !== undefined) throw first.error;
    if (first.batch === undefined) return;
    ctx.controller.abort();
    let after = 0;
    for (;;) {
      const r = await step(it, h.timeoutMs, 'read() after its signal was aborted');
      if (r.batch === undefined) {
        expectAbortEnding(r.error, 'read() after abort');
        break;
      }
      if (++after > 1) {
        await it.return?.();
        fail('read() kept yielding batches after its signal was aborted');
      }
    }
  },

  /** columns() lists the model's columns. */
  async columns(h: SourceHarness): Promise<void> {
    const columns = h.source.columns ?? fail('the source has no columns()');
    const list = await within(columns.call(h.source, h.ctx, h.driver.model), h.timeoutMs, 'columns()');
    if (!Array.isArray(list) || list.some((c) => typeof c?.name !== 'string' || typeof c.type !== 'string')) {
      fail(`columns() returned ${show(list)}, not a list of { name, type }`);
    }
    const names = list.map((c) => c.name);
    const want = h.driver.expectedRows?.[0] === undefined ? h.driver.model.primaryKey : Object.keys(h.driver.expectedRows[0]);
    const missing = want.filter((n) => !names.includes(n));
    if (missing.length > 0) fail(`columns() does not list ${show(missing)}; it lists ${show(names)}`);
    if (h.driver.expectedRows?.[0] !== undefined && names.length !== want.length) {
      fail(`columns() lists ${show(names)}, but rows have the columns ${show(want)}`);
    }
  },
};

/** The source checks that apply to `driver`, in the order they run. */
export function sourceCheckList<C>(driver: SourceDriver<C>): Check<SourceHarness<C>>[] {
  const list: (Check<SourceHarness> | false)[] = [
    { id: 'check', title: 'check() passes with the working config', run: sourceChecks.check },
    {
      id: 'bad-configs',
      title: 'check() refuses each bad config with an OutflowError',
      notApplicable: (h) => (h.badConfigs.length === 0 ? h.noBadConfigs : undefined),
      run: sourceChecks.badConfigs,
    },
    driver.model.table !== undefined && { id: 'discover', title: "discover() lists the model's table", run: sourceChecks.discover },
    { id: 'read', title: 'read() yields every row exactly once with the expected values', run: sourceChecks.read },
    { id: 'read-repeatable', title: 'reading twice gives the same rows', run: sourceChecks.repeatable },
    { id: 'abort', title: 'aborting the signal ends read() promptly', run: sourceChecks.abort },
    driver.connector.source?.columns !== undefined && { id: 'columns', title: "columns() lists the model's columns", run: sourceChecks.columns },
  ];
  return list.filter((c): c is Check<SourceHarness> => c !== false) as Check<SourceHarness<C>>[];
}

/**
 * Registers the source acceptance suite for a connector as vitest tests: the spec checks,
 * check(), discover(), and read() of the driver's model compared with the expected rows.
 */
export function sourceAcceptance<C>(driver: SourceDriver<C>): void {
  describe(`source acceptance: ${driver.connector.name}`, () => {
    registerChecks<SourceHarness<C>>(
      () => startSource(driver),
      [...(specCheckList(driver.connector, 'source') as Check<SourceHarness<C>>[]), ...sourceCheckList(driver)],
      driver.skip,
    );
  });
}
