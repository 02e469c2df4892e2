import { relative } from 'node:path';
import { stringify } from 'yaml';
import { describeError, isOutflowError, serveSandbox, type Logger, type ServedSandbox } from '@outflow/core';
import { ExitCode } from './exit-codes.js';
import type { Out } from './output.js';
import type { Workspace } from './workspace.js';

export const SANDBOX_HELP = `
Each emulator keeps its data in .outflow/sandbox/<connection>/, the folder a sandbox: true
connection of \`outflow run\` uses, so records persist from one to the other. While this
runs, \`outflow run\`, \`check\` and \`plan\` with the same config use these emulators
instead of starting their own. The printed connection block holds the emulator's own
sandbox credentials, never the ones in your config.

Stops on Ctrl-C (SIGINT) or SIGTERM, exit code 130.
`;

/**
 * `outflow sandbox`: starts the emulators of the named connections (every `sandbox: true`
 * one by default), prints where each listens and a connection block pointing at it, and
 * keeps them until `signal` aborts.
 */
export async function sandboxCommand(
  ws: Workspace,
  names: string[],
  io: { out: Out; err: (s: string) => void; signal: AbortSignal; logger: Logger },
): Promise<number> {
  const { out, err, signal, logger } = io;
  const { config, connectors, file } = ws.loaded;
  const all = Object.keys(config.connections);
  const list = names.length ? [...new Set(names)] : all.filter((n) => config.connections[n]?.sandbox === true);
  if (!list.length) {
    err(`no connection in ${file} sets sandbox: true; name the connections whose emulators to start: outflow sandbox <connection>…\n`);
    return ExitCode.Config;
  }
  for (const name of list) {
    const connector = connectors.get(name);
    if (!connector) {
      err(`no connection named "${name}" in ${file} (connections: ${all.join(', ') || 'none'})\n`);
      return ExitCode.Config;
    }
    if (!connector.emulator) {
      const withEmulator = all.filter((n) => connectors.get(n)?.emulator);
      err(
        `connection "${name}" uses connector "${connector.name}", which has no emulator${withEmulator.length ? ` (connections with one: ${withEmulator.join(', ')})` : ''}\n`,
      );
      return ExitCode.Config;
    }
  }

  const served: ServedSandbox[] = [];
  const stopAll = async () => {
    for (const s of served.splice(0).reverse()) await s.stop();
  };
  try {
    for (const name of list) {
      if (signal.aborted) break;
      const s = await serveSandbox({ connection: name, connector: connectors.get(name)!, stateDir: ws.stateDir });
      served.push(s);
      logger.info({ connection: name, url: s.url }, `sandbox: ${s.connector} emulator started`);
    }
  } catch (e) {
    await stopAll();
    err(isOutflowError(e) ? `error ${e.code}: ${e.message}\n` : `error: ${describeError(e)}\n`);
    return ExitCode.Failed;
  }

  if (!signal.aborted) {
    const width = Math.max(...served.map((s) => `${s.connection} (${s.connector})`.length));
    for (const s of served) out.write(`${`${s.connection} (${s.connector})`.padEnd(width)}  ${s.url}\n`);
    const block = Object.fromEntries(served.map((s) => [s.connection, { connector: s.connector, config: s.config }]));
    out.write(`\nTo point a client at them, use these connections (sandbox credentials, not yours):\n\n`);
    out.write(stringify({ connections: block }));
    const dataDir = relative(ws.loaded.dir, ws.stateDir) || '.';
    out.write(
      `\nData in ${dataDir}/sandbox/. \`outflow run\`, \`check\` and \`plan\` with ${relative(process.cwd(), file) || file} use these emulators while this runs. Ctrl-C to stop.\n`,
    );
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }
  await stopAll();
  out.write('Sandbox stopped.\n');
  return ExitCode.Interrupted;
}
