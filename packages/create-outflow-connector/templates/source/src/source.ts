import { OutflowError, type ColumnInfo, type ConnectorContext, type Model, type RowBatch, type Source, type TableInfo } from '@outflow/core';
import { checkAccount, failure, send } from './client.js';
import type { __Name__Config } from './config.js';

const DEFAULT_PAGE_SIZE = 500;

/** The table a model names: this API serves tables, not SQL or files. */
export function tableOf(model: Model): string {
  if (model.table === undefined) throw new OutflowError('OUTFLOW_SOURCE', '__Name__ reads tables only: give the sync `from: { table: … }`');
  return model.table;
}

async function tables(ctx: ConnectorContext<__Name__Config>): Promise<TableInfo[]> {
  const answer = await send(ctx, { method: 'GET', path: '/v1/tables' }, 'OUTFLOW_SOURCE');
  if (answer.status !== 200) throw failure(ctx, answer, 'OUTFLOW_SOURCE', 'the table list');
  return (answer.body as { tables: TableInfo[] }).tables.map((t) => ({ name: t.name, primaryKey: t.primaryKey, columns: t.columns }));
}

/**
 * Reads the model page by page, one batch per page, so memory holds one page at a time.
 * Called once per run, never concurrently for one model; a throw fails the run and no
 * state advances. Stops at the next page once `ctx.signal` aborts. Pages are in primary
 * key order and not one snapshot: a row changed mid-read may be read as of either side,
 * which the next diff run sets right.
 */
async function* read(ctx: ConnectorContext<__Name__Config>, model: Model): AsyncGenerator<RowBatch> {
  const table = tableOf(model);
  let after: string | undefined;
  do {
    if (ctx.signal.aborted) throw new OutflowError('OUTFLOW_ABORTED', `the read of ${table} was stopped because the run is stopping`, { retryable: true });
    const query = { limit: ctx.config.pageSize ?? DEFAULT_PAGE_SIZE, after };
    const answer = await send(ctx, { method: 'GET', path: `/v1/tables/${encodeURIComponent(table)}/rows`, query }, 'OUTFLOW_SOURCE');
    if (answer.status !== 200) throw failure(ctx, answer, 'OUTFLOW_SOURCE', `a page of ${table}`);
    const page = answer.body as { rows: RowBatch['rows']; next: string | null };
    yield { rows: page.rows };
    after = page.next ?? undefined;
  } while (after !== undefined);
}

export const source: Source<__Name__Config> = {
  // Called by `outflow check` and before a run. Changes nothing.
  check: checkAccount,

  // Read-only: the tables and their columns, as `outflow discover` shows them.
  async discover(ctx) {
    return { tables: await tables(ctx) };
  },

  read,

  // The model's columns without reading rows, for checking a sync's mappings.
  async columns(ctx, model): Promise<ColumnInfo[]> {
    const table = tableOf(model);
    const found = (await tables(ctx)).find((t) => t.name === table);
    if (found === undefined) throw new OutflowError('OUTFLOW_SOURCE', `__Name__ has no table "${table}"`);
    return found.columns;
  },
};
