import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import {
  MAX_CONFIG_BYTES,
  OutflowError,
  composeSchema,
  createLogger,
  describeError,
  isOutflowError,
  loadConnector,
  DEFAULT_LEASE_MS,
  MAX_INTERVAL_MS,
  parseInterval,
  redact,
  redactValue,
  type AnyConnector,
  type Ledger,
  type Logger,
  type RunSummary,
  type SyncConfig,
} from '@outflow/core';
import { ExitCode } from './exit-codes.js';
import { createProgress, printTable, summaryLine, TransportTally, type Out } from './output.js';
import { SANDBOX_HELP, sandboxCommand } from './sandbox.js';
import { SERVE_HELP, serveCommand } from './serve/command.js';
import { StreamStatus } from './stream-status.js';
import { scheduleOf } from './serve/schedule.js';
import { openWorkspace, type Workspace } from './workspace.js';

export interface MainIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Aborted on SIGINT/SIGTERM by the CLI entry point. */
  signal?: AbortSignal;
  /** Work in the config file's folder (the CLI does; see {@link openWorkspace}). */
  chdir?: boolean;
}

interface GlobalOptions {
  config: string;
}

const DEFAULT_GRACE = 30_000;
const GRACE_HELP =
  'on SIGINT/SIGTERM, how long calls in flight may take to finish before they are cancelled (their outcome is then in doubt), e.g. 10s';

function graceOption(value: string): number {
  let ms: number;
  try {
    ms = parseInterval(value);
  } catch {
    throw new InvalidArgumentError('expected an interval such as 10s, 500ms or 2m');
  }
  if (ms > MAX_INTERVAL_MS) throw new InvalidArgumentError('must be at most 24d');
  return ms;
}

function leaseOption(value: string): number {
  const ms = graceOption(value);
  if (ms < 1_000) throw new InvalidArgumentError('must be at least 1s');
  return ms;
}

function portOption(value: string): number {
  const port = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new InvalidArgumentError('expected a port number from 0 to 65535');
  return port;
}

/** Runs the `outflow` CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: string[], io: MainIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const out: Out = { write: (s: string) => void io.stdout.write(redact(s)) };
  const err = (s: string) => void io.stderr.write(redact(s));
  const signal = io.signal ?? new AbortController().signal;
  const logger = createLogger({ destination: io.stderr });
  let code: number = ExitCode.Ok;

  const program = new Command('outflow')
    .description('Reverse ETL: keep operational tools in step with warehouse models.')
    .option('-c, --config <file>', 'the configuration file', 'outflow.yaml')
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => err(s) })
    .showHelpAfterError();

  const globals = () => program.opts<GlobalOptions>();
  // How destinations sent their records (`transport_records`), for the run summaries.
  const transports = new TransportTally();
  const withWorkspace = async (fn: (ws: Workspace) => Promise<number>, stop: { graceMs?: number } = {}): Promise<number> => {
    const ws = await openWorkspace({ configFile: globals().config, logger, chdir: io.chdir ?? false, engine: { metrics: transports } });
    // A stop signal drains: reading stops, batches in flight settle and are recorded; calls
    // still in flight after the grace period are cancelled.
    const onStop = () => ws.engine.stop(stop);
    if (signal.aborted) onStop();
    signal.addEventListener('abort', onStop, { once: true });
    try {
      return await fn(ws);
    } finally {
      signal.removeEventListener('abort', onStop);
      await ws.close();
    }
  };
  const action =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      code = await fn(...args);
    };

  program
    .command('validate')
    .description('Check the configuration file against the composed schema, without connecting.')
    .action(
      action(async () => {
        const ws = await openWorkspace({ configFile: globals().config, logger });
        const { config, file } = ws.loaded;
        out.write(`${file} is valid: ${Object.keys(config.connections).length} connections, ${config.syncs.length} syncs\n`);
        await ws.close();
        return ExitCode.Ok;
      }),
    );

  program
    .command('check')
    .description("Open each connection (or the named ones) and check that it can be reached with its credentials.")
    .argument('[connections...]', 'connection names (default: all)')
    .action(
      action((names: string[]) =>
        withWorkspace(async (ws) => {
          const list = names.length ? names : Object.keys(ws.loaded.config.connections);
          let failed = 0;
          for (const name of list) {
            try {
              const { connector } = await ws.engine.connection(name);
              await ws.engine.check(name);
              out.write(`✓ ${name} (${connector.name})\n`);
            } catch (e) {
              failed++;
              out.write(`✗ ${name}: ${describeError(e)}\n`);
            }
          }
          return failed ? ExitCode.Failed : ExitCode.Ok;
        }),
      ),
    );

  program
    .command('discover')
    .description('List the tables of a source connection, or the objects of a destination.')
    .argument('<connection>', 'a connection name')
    .option('--json', 'print JSON')
    .action(
      action((name: string, opts: { json?: boolean }) =>
        withWorkspace(async (ws) => {
          const result: Record<string, unknown> = { ...(await ws.engine.discover(name)) };
          if (opts.json) {
            out.write(JSON.stringify(result, null, 2) + '\n');
            return ExitCode.Ok;
          }
          for (const t of (result['tables'] as { schema?: string; name: string; columns: { name: string; type: string }[]; primaryKey?: string[] }[]) ?? []) {
            out.write(`table ${t.schema ? `${t.schema}.` : ''}${t.name}${t.primaryKey?.length ? ` (primary key ${t.primaryKey.join(', ')})` : ''}\n`);
            for (const c of t.columns) out.write(`  ${c.name}  ${c.type}\n`);
          }
          for (const o of (result['objects'] as { name: string; fields: { name: string; type: string }[]; matchKeys: string[]; modes: string[] }[]) ?? []) {
            out.write(`object ${o.name}  modes: ${o.modes.join(', ')}${o.matchKeys.length ? `  match keys: ${o.matchKeys.join(', ')}` : ''}\n`);
            for (const f of o.fields) out.write(`  ${f.name}  ${f.type}\n`);
          }
          return ExitCode.Ok;
        }),
      ),
    );

  program
    .command('plan')
    .description(
      'Show the row-level creates, updates and deletes a run of the diff syncs would send (for mode event: the events, with trigger, object and payload), and whether the deletes guard (maxDeletes) would stop it. Sends nothing and records no run, row error or state.',
    )
    .argument('[syncs...]', 'sync names (default: all diff syncs)')
    .option('--json', 'print JSON')
    .option('--limit <n>', 'most rows to list per sync', (v) => Number.parseInt(v, 10), 50)
    .action(
      action((names: string[], opts: { json?: boolean; limit: number }) =>
        withWorkspace(async (ws) => {
          const syncs = pickSyncs(ws, names).filter((s) => (s.capture ?? 'diff') === 'diff');
          let failed = false;
          for (const sync of syncs) {
            let summary: RunSummary;
            try {
              summary = await ws.engine.plan(sync, { planLimit: opts.json ? Number.MAX_SAFE_INTEGER : opts.limit });
            } catch (e) {
              failed = true;
              err(`${sync.name}: ${describeError(e)}\n`);
              continue;
            }
            const plan = summary.plan!;
            if (opts.json) {
              out.write(JSON.stringify(redactValue({ sync: sync.name, counts: plan.counts, deletes: plan.deletes, changes: plan.changes })) + '\n');
              continue;
            }
            if (sync.to.mode === 'event') {
              out.write(`${sync.name}: ${plan.counts.event} event${plan.counts.event === 1 ? '' : 's'} to send${summary.skipped ? `, ${summary.skipped} changes firing no trigger` : ''}\n`);
              if (plan.changes.length) {
                printTable(
                  out,
                  ['trigger', 'key', 'object', 'payload'],
                  plan.changes.map((c) => [c.event?.trigger ?? '', c.key, c.event?.object ?? '', JSON.stringify(c.fields ?? {})]),
                );
                if (plan.truncated) out.write(`… (showing ${plan.changes.length}; use --limit or --json for all)\n`);
              }
              continue;
            }
            out.write(
              `${sync.name}: ${summary.inserted} to create, ${summary.updated} to update, ${summary.deleted} to delete${summary.skipped ? `, ${summary.skipped} skipped` : ''}\n`,
            );
            const g = plan.deletes;
            if (g.deletes > 0) {
              out.write(
                `  deletes ${g.deletes} of the ${g.owned} records Outflow owns (${Number(g.pct.toFixed(2))}%); maxDeletes.pct ${g.maxPct}: ${
                  g.exceeded ? 'a run would stop before sending anything (run it with --allow-deletes to let it through)' : 'a run would go ahead'
                }\n`,
              );
            }
            if (plan.changes.length) {
              printTable(
                out,
                ['op', 'key', 'fields'],
                plan.changes.map((c) => [c.kind, c.key, c.fields ? JSON.stringify(c.fields) : '']),
              );
              if (plan.truncated) out.write(`… (showing ${plan.changes.length}; use --limit or --json for all)\n`);
            }
          }
          return failed ? ExitCode.Failed : ExitCode.Ok;
        }),
      ),
    );

  program
    .command('run')
    .description('Run diff syncs once (or on their schedules with --watch) and stream syncs until stopped.')
    .argument('[syncs...]', 'sync names (default: all)')
    .option('--json', 'print one JSON object per sync run on standard output')
    .option('--watch', 'keep running diff syncs on their schedules')
    .option('--allow-deletes', "let runs delete or clear more of the records Outflow owns than a sync's maxDeletes.pct (50% by default) allows")
    .option('--grace <interval>', GRACE_HELP, graceOption, DEFAULT_GRACE)
    .action(
      action((names: string[], opts: { json?: boolean; watch?: boolean; allowDeletes?: boolean; grace: number }) =>
        withWorkspace((ws) => runCommand(ws, names, { ...opts, unpark: false }, out, err, io, logger, transports), { graceMs: opts.grace }),
      ),
    );

  program
    .command('retry')
    .description(
      'Send the parked rows again (rejected, outcome unknown, or out of attempts), then run the syncs: a diff sync sends them with its run; a stream sync sends their current rows from the model, then follows its stream.',
    )
    .argument('[syncs...]', 'sync names (default: all)')
    .option('--json', 'print one JSON object per sync run on standard output')
    .option('--allow-deletes', "let runs delete or clear more of the records Outflow owns than a sync's maxDeletes.pct allows")
    .option('--grace <interval>', GRACE_HELP, graceOption, DEFAULT_GRACE)
    .action(
      action((names: string[], opts: { json?: boolean; allowDeletes?: boolean; grace: number }) =>
        withWorkspace((ws) => runCommand(ws, names, { ...opts, unpark: true }, out, err, io, logger, transports), { graceMs: opts.grace }),
      ),
    );

  program
    .command('status')
    .description('Show the run history, newest first, with counts and durations.')
    .argument('[sync]', 'only this sync')
    .option('--json', 'print JSON')
    .option('--limit <n>', 'most runs to show', (v) => Number.parseInt(v, 10), 20)
    .action(
      action((sync: string | undefined, opts: { json?: boolean; limit: number }) =>
        withLedger(globals().config, async (ledger) => {
          const runs = ledger ? await ledger.listRuns({ ...(sync ? { sync } : {}), limit: opts.limit }) : [];
          printList(
            out,
            runs,
            opts.json,
            'No runs yet. Start one with: outflow run',
            ['run', 'sync', 'status', 'started', 'duration', 'inserted', 'updated', 'deleted', 'rejected', 'error'],
            (r) => [
              String(r.id),
              r.sync,
              r.status,
              r.startedAt,
              r.durationMs === undefined ? '' : `${(r.durationMs / 1000).toFixed(1)}s`,
              String(r.inserted),
              String(r.updated),
              String(r.deleted),
              String(r.rejected),
              r.error ?? '',
            ],
          );
          if (ledger && !opts.json) {
            for (const name of [...new Set(runs.map((r) => r.sync))]) {
              const waiting = await ledger.countRowErrors(name, { parked: true });
              const again = await ledger.countRowErrors(name, { parked: false });
              if (waiting + again === 0) continue;
              const parts = [];
              if (waiting) parts.push(`${waiting} row${waiting === 1 ? '' : 's'} wait${waiting === 1 ? 's' : ''} for a change or \`outflow retry\``);
              if (again) parts.push(`${again} will be sent again by the next run`);
              out.write(`${name}: ${parts.join('; ')} (see \`outflow errors\`)\n`);
            }
          }
          return ExitCode.Ok;
        }),
      ),
    );

  program
    .command('errors')
    .description(
      'List row errors with reasons: records the destination rejected, writes whose outcome is unknown, and retryable failures; each waits for a change or `outflow retry`, or for the next run.',
    )
    .argument('[sync]', 'only this sync')
    .option('--json', 'print JSON')
    .option('--limit <n>', 'most rows to show', (v) => Number.parseInt(v, 10), 100)
    .action(
      action((sync: string | undefined, opts: { json?: boolean; limit: number }) =>
        withLedger(globals().config, async (ledger) => {
          const rows = ledger ? await ledger.listRowErrors({ ...(sync ? { sync } : {}), limit: opts.limit }) : [];
          const listed = printList(
            out,
            rows,
            opts.json,
            'No row errors.',
            ['sync', 'key', 'op', 'reason', 'attempts', 'waits for', 'first seen', 'last seen'],
            (r) => [r.sync, r.key, r.op, r.reason, String(r.attempts), r.parked ? 'a change or retry' : 'next run', r.firstSeen, r.lastSeen],
          );
          if (listed) {
            const waiting = rows.filter((r) => r.parked).length;
            const again = rows.length - waiting;
            if (waiting) {
              out.write(
                `${waiting} row${waiting === 1 ? '' : 's'} parked: each waits until its row changes, or until you send it again with: outflow retry\n`,
              );
            }
            if (again) out.write(`${again} row${again === 1 ? '' : 's'} failed with a retryable error and will be sent again by the next run\n`);
          }
          return ExitCode.Ok;
        }),
      ),
    );

  program
    .command('sandbox')
    .description(
      'Start the emulators of the sandbox connections (or of the named ones), print where each listens and a connection block pointing at it, and keep them running until Ctrl-C.',
    )
    .argument('[connections...]', 'connection names (default: every connection with sandbox: true)')
    .addHelpText('after', SANDBOX_HELP)
    .action(action((names: string[]) => withWorkspace((ws) => sandboxCommand(ws, names, { out, err, signal, logger }))));

  program
    .command('serve')
    .description('Run every sync on its schedule (stream syncs continuously) and answer an HTTP API: health, runs, pause and resume, metrics, a status page.')
    .argument('[syncs...]', 'sync names (default: all)')
    .option('--host <address>', 'the address the HTTP API listens on', '127.0.0.1')
    .option('--port <port>', 'the port the HTTP API listens on (0: a free one)', portOption, 8730)
    .addOption(
      new Option('--lease <interval>', 'how long a sync stays with this runner without a heartbeat before another runner sharing the ledger may take it over')
        .argParser(leaseOption)
        .default(DEFAULT_LEASE_MS, '60s'),
    )
    .addOption(new Option('--grace <interval>', GRACE_HELP).argParser(graceOption).default(DEFAULT_GRACE, '30s'))
    .addHelpText('after', SERVE_HELP)
    .action(
      action((names: string[], opts: { host: string; port: number; lease: number; grace: number }) =>
        serveCommand(
          { configFile: globals().config, names, host: opts.host, port: opts.port, leaseMs: opts.lease, graceMs: opts.grace, chdir: io.chdir ?? false },
          { out, err, signal, logger },
        ),
      ),
    );

  program
    .command('schema')
    .description("Print the JSON Schema of outflow.yaml, composed with the connectors the config uses (or the ones named).")
    .option('--connector <names...>', 'compose with these connectors instead of the config’s')
    .action(
      action(async (opts: { connector?: string[] }) => {
        const connectors = new Map<string, AnyConnector>();
        const configFile = resolve(globals().config);
        const specs = opts.connector ?? (existsSync(configFile) ? await connectorSpecs(configFile) : ['duckdb', 'webhook']);
        for (const spec of specs) connectors.set(spec, await loadConnector(spec, process.cwd()));
        out.write(JSON.stringify(composeSchema(connectors), null, 2) + '\n');
        return ExitCode.Ok;
      }),
    );

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? ExitCode.Ok : ExitCode.Config;
    }
    return reportFatal(e, err, logger);
  }
}

function reportFatal(e: unknown, err: (s: string) => void, logger: Logger): number {
  if (isOutflowError(e)) {
    const configish = ['OUTFLOW_CONFIG_INVALID', 'OUTFLOW_CONFIG_PARSE', 'OUTFLOW_CONFIG_NOT_FOUND', 'OUTFLOW_ENV_MISSING', 'OUTFLOW_CONNECTOR_NOT_FOUND', 'OUTFLOW_CONNECTOR_VERSION', 'OUTFLOW_CONNECTOR_INVALID', 'OUTFLOW_CONNECTOR_ROLE', 'OUTFLOW_SYNC_NOT_FOUND'];
    err(`error ${e.code}: ${e.message}\n`);
    return configish.includes(e.code) ? ExitCode.Config : ExitCode.Failed;
  }
  logger.error({ err: redact(describeError(e)) }, 'unexpected error');
  err(`error: ${describeError(e)}\n`);
  return ExitCode.Failed;
}

async function connectorSpecs(configFile: string): Promise<string[]> {
  try {
    // Only a regular file of a sane size: `-c /dev/zero schema` must not read forever.
    const info = statSync(configFile);
    if (!info.isFile() || info.size > MAX_CONFIG_BYTES) return [];
    const doc = parseYaml(readFileSync(configFile, 'utf8'), { logLevel: 'error' }) as { connections?: Record<string, { connector?: string }> };
    return [...new Set(Object.values(doc.connections ?? {}).map((c) => c.connector).filter((c): c is string => !!c))];
  } catch {
    return [];
  }
}

/** Runs `fn` with the ledger, or with none when nothing has run yet (none is created). */
async function withLedger(configFile: string, fn: (ledger: Ledger | undefined) => Promise<number>): Promise<number> {
  const ws = await openWorkspace({ configFile, logger: createLogger({ level: 'silent' }) });
  try {
    return await fn(ws.hasLedger() ? ws.ledger() : undefined);
  } finally {
    await ws.close();
  }
}

/** Prints rows as JSON, as a table, or a message when there are none. */
function printList<T>(out: Out, rows: T[], json: boolean | undefined, empty: string, head: string[], cells: (row: T) => string[]): boolean {
  if (json) out.write(JSON.stringify(rows) + '\n');
  else if (!rows.length) out.write(empty + '\n');
  else printTable(out, head, rows.map(cells));
  return !json && rows.length > 0;
}

function pickSyncs(ws: Workspace, names: string[]): SyncConfig[] {
  const all = ws.loaded.config.syncs;
  if (!names.length) return [...all];
  return names.map((n) => {
    const s = all.find((x) => x.name === n);
    if (!s) {
      throw new OutflowError('OUTFLOW_SYNC_NOT_FOUND', `no sync named "${n}" in ${ws.loaded.file} (syncs: ${all.map((x) => x.name).join(', ')})`);
    }
    return s;
  });
}

async function runCommand(
  ws: Workspace,
  names: string[],
  opts: { json?: boolean; watch?: boolean; unpark: boolean; allowDeletes?: boolean },
  out: Out,
  err: (s: string) => void,
  io: MainIO,
  logger: Logger,
  transports: TransportTally,
): Promise<number> {
  const syncs = pickSyncs(ws, names);
  const signal = ws.engine.stopping;
  const tty = !opts.json && !!io.stderr.isTTY;
  const progress = tty ? createProgress(io.stderr) : null;
  // Without a progress bar, a stream (which may deliver nothing for a long while) says how it is doing.
  const status = progress ? null : new StreamStatus({ write: err, parked: (s) => ws.ledger().countRowErrors(s, { parked: true }), lagMs: (s) => transports.lagMs(s) });
  let worst: number = ExitCode.Ok;

  const streamOne = async (sync: SyncConfig): Promise<void> => {
    const unfollow = status?.follow(sync.name);
    // A stale stream is reconciled by a diff and streamed again; every run is reported.
    try {
      await ws.engine.run(sync, {
        unpark: opts.unpark,
        allowDeletes: opts.allowDeletes === true,
        onProgress: (p) => (progress ? progress.update(p) : status?.progress(p)),
        onRun: (s) => {
          status?.ended(s);
          report(s);
        },
      });
    } finally {
      unfollow?.();
    }
    progress?.finish(sync.name);
  };

  const runOne = async (sync: SyncConfig): Promise<void> => {
    const summary = await ws.engine.run(sync, {
      unpark: opts.unpark,
      allowDeletes: opts.allowDeletes === true,
      ...(progress ? { onProgress: (p) => progress.update(p) } : {}),
    });
    progress?.finish(sync.name);
    report(summary);
  };

  const report = (s: RunSummary) => {
    if (s.status === 'failed') worst = ExitCode.Failed;
    const sync = syncs.find((c) => c.name === s.sync);
    const transport = sync === undefined ? undefined : transports.take(sync.to.connection);
    const line = summaryLine(s, transport);
    if (opts.json) {
      out.write(JSON.stringify(line) + '\n');
      return;
    }
    logger.info(line, 'sync finished');
    const changes = s.inserted + s.updated + s.deleted;
    const parts = [`${s.inserted} created`, `${s.updated} updated`, `${s.deleted} deleted`];
    if (s.rejected) parts.push(`${s.rejected} rejected`);
    if (s.skipped) parts.push(`${s.skipped} skipped`);
    // A stream ends only when stopped: one that drained cleanly says so rather than how its run is recorded.
    const stopped = s.capture === 'stream' && signal.aborted && s.status !== 'failed' && s.status !== 'aborted';
    const head = s.status === 'failed' ? '✗' : s.status === 'aborted' || stopped ? '■' : '✓';
    out.write(
      `${head} ${s.sync}: ${changes === 0 && !s.rejected && s.status !== 'failed' ? '0 changes' : parts.join(', ')} in ${(s.durationMs / 1000).toFixed(1)}s (${stopped ? `stopped, ${s.status}` : s.status})\n`,
    );
    if (s.error) out.write(`  ${s.error.code}: ${s.error.message}\n`);
    if (transport) out.write(`  sent by ${Object.entries(transport).map(([how, n]) => `${how}: ${n} record${n === 1 ? '' : 's'}`).join(', ')}\n`);
    if (s.parked) out.write(`  ${s.parked} row${s.parked === 1 ? '' : 's'} parked with errors: see \`outflow errors\`\n`);
  };

  const streams = syncs.filter((s) => (s.capture ?? 'diff') === 'stream');
  const diffs = syncs.filter((s) => (s.capture ?? 'diff') === 'diff');
  const streaming = streams.map((s) => streamOne(s));
  if (!opts.watch) {
    for (const s of diffs) {
      if (signal.aborted) break;
      await runOne(s);
    }
  } else {
    await Promise.all(diffs.map((s) => watchLoop(s, ws.loaded.file, runOne, signal, err)));
  }
  await Promise.all(streaming);
  if (signal.aborted && worst === ExitCode.Ok) return ExitCode.Interrupted;
  return worst;
}

async function watchLoop(sync: SyncConfig, file: string, runOne: (s: SyncConfig) => Promise<void>, signal: AbortSignal, err: (s: string) => void) {
  const schedule = scheduleOf(sync, file) ?? scheduleOf({ ...sync, schedule: { every: '15m' } }, file)!;
  if (!sync.schedule) err(`${sync.name}: no schedule set; running every 15m\n`);
  while (!signal.aborted) {
    const started = Date.now();
    await runOne(sync);
    const next = schedule.next(started, Date.now());
    if (next === null) break;
    // A far cron time is waited for in steps no timer refuses.
    while (!signal.aborted && Date.now() < next) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(MAX_INTERVAL_MS, next - Date.now()));
        signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
      });
    }
  }
}

export { ExitCode };
