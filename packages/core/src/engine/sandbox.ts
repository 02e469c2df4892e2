/**
 * Who owns a sandbox folder (`<stateDir>/sandbox/<connection>/`). An emulator keeps its
 * state there as a log that one process appends to, so one process at a time runs the
 * emulator of a folder. It says so in the folder's endpoint file, created exclusively:
 *
 * - `outflow sandbox` holds it as `sandbox` and publishes its emulator's URL and config, so
 *   the commands of other processes (`run`, `check`, `plan`) use that emulator instead of
 *   starting their own;
 * - a command that starts an emulator of its own holds it as `command` for its lifetime;
 *   nobody else may use the folder meanwhile (its emulator stops when the command ends).
 *
 * A file left by a process that is gone (killed, crashed) is stale and replaced.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { AnyConnector, RunningEmulator } from '../contracts.js';
import { OutflowError, describeError } from '../errors.js';
import { makePrivateDir } from '../private-files.js';
import { redact } from '../redact.js';
import { isAlive } from './alive.js';

/** The endpoint file in a sandbox folder. */
export const SANDBOX_ENDPOINT_FILE = 'endpoint.json';

/** What the endpoint file of a sandbox folder says. */
export interface SandboxEndpoint {
  /** `sandbox`: an `outflow sandbox` that shares its emulator; `command`: a command's own emulator. */
  holder: 'sandbox' | 'command';
  pid: number;
  hostname: string;
  connector: string;
  startedAt: string;
  /** The emulator's URL, once it listens (absent while the holder is starting it). */
  url?: string;
  /** The connection config the emulator hands out (sandbox credentials, never the user's). */
  config?: Record<string, unknown>;
}

/** An emulator started by `outflow sandbox`, published for other processes to use. */
export interface ServedSandbox {
  connection: string;
  connector: string;
  url: string;
  /** The connection config the emulator hands out: its address and sandbox credentials. */
  config: Record<string, unknown>;
  /** The folder holding the emulator's data and the endpoint file. */
  dataDir: string;
  /** Stops the emulator, then removes the endpoint file. */
  stop(): Promise<void>;
}

/** A sandbox a connection uses: an emulator of its own, or the one `outflow sandbox` runs. */
export interface OpenedSandbox {
  url: string;
  config: Record<string, unknown>;
  /** The pid of the `outflow sandbox` whose emulator is used; absent for an emulator of its own. */
  sharedBy?: number;
  /** Stops an emulator of its own and gives the folder up; leaves a shared one running. */
  stop(): Promise<void>;
}

/** A connection's name as a folder name (its sandbox folder, its `ctx.stateDir`). */
export const folderName = (connection: string): string => connection.replace(/[^A-Za-z0-9_.-]/g, '_');

/** The folder of a connection's sandbox data and endpoint file. */
export function sandboxDir(stateDir: string, connection: string): string {
  return join(stateDir, 'sandbox', folderName(connection));
}

/** How long a command waits for an `outflow sandbox` that is starting or stopping its emulator. */
const SETTLE_MS = 30_000;
const POLL_MS = 100;

/**
 * Starts the emulator of a connection for `outflow sandbox` and publishes it in the endpoint
 * file. Refuses (`OUTFLOW_EMULATOR`) while another live process holds the folder.
 */
export async function serveSandbox(o: { connection: string; connector: AnyConnector; stateDir: string }): Promise<ServedSandbox> {
  requireEmulator(o.connection, o.connector);
  const dataDir = sandboxDir(o.stateDir, o.connection);
  makePrivateDir(dataDir);
  const claim = claimFolder(dataDir, 'sandbox', o.connector.name);
  if ('heldBy' in claim) throw busy(o.connection, dataDir, claim.heldBy);
  const running = await startClaimed(claim, o.connection, o.connector, dataDir);
  try {
    claim.publish(running.url, running.config);
  } catch (err) {
    await running.stop();
    throw err;
  }
  return { connection: o.connection, connector: o.connector.name, dataDir, ...running };
}

/**
 * The sandbox of a `sandbox: true` connection: the emulator a live `outflow sandbox`
 * publishes for the folder, or else an emulator of its own (the folder held meanwhile).
 * Waits for an `outflow sandbox` that is starting; refuses (`OUTFLOW_EMULATOR`) a folder
 * another command holds.
 */
export async function openSandbox(o: { connection: string; connector: AnyConnector; stateDir: string }): Promise<OpenedSandbox> {
  const { connection, connector } = o;
  requireEmulator(connection, connector);
  const dataDir = sandboxDir(o.stateDir, connection);
  // Sandbox logs hold row data (emails, names): readable by the owner only.
  makePrivateDir(dataDir);
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    const claim = claimFolder(dataDir, 'command', connector.name);
    if (!('heldBy' in claim)) return startClaimed(claim, connection, connector, dataDir);
    const held = claim.heldBy;
    if (held.holder !== 'sandbox' || held.hostname !== hostname()) throw busy(connection, dataDir, held);
    if (held.connector !== connector.name) {
      throw new OutflowError(
        'OUTFLOW_EMULATOR',
        `the \`outflow sandbox\` running as pid ${held.pid} serves connection "${connection}" with connector "${held.connector}", not "${connector.name}": restart it with this config`,
      );
    }
    if (held.url && !isLoopback(held.url)) {
      throw new OutflowError('OUTFLOW_EMULATOR', `${join(dataDir, SANDBOX_ENDPOINT_FILE)} points connection "${connection}" away from loopback: remove the file`);
    }
    if (held.url && held.config && (await answers(held.url))) {
      return { url: held.url, config: { ...held.config }, sharedBy: held.pid, stop: async () => undefined };
    }
    // Starting (no URL yet) or stopping (its emulator closed, the file not yet removed).
    if (Date.now() > deadline) {
      throw new OutflowError(
        'OUTFLOW_EMULATOR',
        `the \`outflow sandbox\` running as pid ${held.pid} holds the sandbox of connection "${connection}" (${join(dataDir, SANDBOX_ENDPOINT_FILE)}) but its emulator does not answer${held.url ? ` at ${held.url}` : ''}: stop it, or wait until it has started`,
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

interface HeldFolder {
  /** Publishes the emulator's address in the endpoint file. */
  publish(url: string, config: Record<string, unknown>): void;
  /** Removes the endpoint file if it is still this claim's. */
  release(): void;
}

type Claim = { heldBy: SandboxEndpoint } | HeldFolder;

/**
 * Creates the endpoint file exclusively, or says who holds it. The file appears whole or
 * not at all (written aside, then hard-linked into place, which fails if it exists). A file
 * of a process that is gone is removed and the claim tried again.
 */
function claimFolder(dir: string, holder: SandboxEndpoint['holder'], connector: string): Claim {
  const file = join(dir, SANDBOX_ENDPOINT_FILE);
  const mine: SandboxEndpoint = { holder, pid: process.pid, hostname: hostname(), connector, startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 5; attempt++) {
    const tmp = writeAside(dir, mine);
    try {
      linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const text = readOrEmpty(file);
      const held = parseEndpoint(text);
      if (held && !isStale(held)) return { heldBy: held };
      // Gone, unreadable or stale: remove it, unless it changed since it was read (another
      // process recovered it first and holds it now).
      if (readOrEmpty(file) === text) unlinkQuietly(file);
      continue;
    } finally {
      unlinkQuietly(tmp);
    }
    const ours = () => {
      const now = parseEndpoint(readOrEmpty(file));
      return now?.pid === mine.pid && now.startedAt === mine.startedAt;
    };
    return {
      publish(url, config) {
        if (!ours()) throw new OutflowError('OUTFLOW_EMULATOR', `${file} was replaced by another process while the emulator started`);
        const next = writeAside(dir, { ...mine, url, config });
        renameSync(next, file);
      },
      release() {
        if (ours()) unlinkQuietly(file);
      },
    };
  }
  throw new OutflowError('OUTFLOW_EMULATOR', `cannot take ${file}: other processes keep replacing it`);
}

function writeAside(dir: string, endpoint: SandboxEndpoint): string {
  const tmp = join(dir, `.${SANDBOX_ENDPOINT_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
  // The sandbox credentials are no user's secrets, but the file is the owner's alone all the same.
  writeFileSync(tmp, JSON.stringify(endpoint, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  return tmp;
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

function parseEndpoint(text: string): SandboxEndpoint | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const e = v as Record<string, unknown>;
  if ((e['holder'] !== 'sandbox' && e['holder'] !== 'command') || !Number.isSafeInteger(e['pid']) || typeof e['hostname'] !== 'string') return undefined;
  if (typeof e['connector'] !== 'string' || typeof e['startedAt'] !== 'string') return undefined;
  const url = typeof e['url'] === 'string' ? e['url'] : undefined;
  const config = e['config'] !== null && typeof e['config'] === 'object' && !Array.isArray(e['config']) ? (e['config'] as Record<string, unknown>) : undefined;
  return {
    holder: e['holder'],
    pid: e['pid'] as number,
    hostname: e['hostname'],
    connector: e['connector'],
    startedAt: e['startedAt'],
    ...(url && config ? { url, config } : {}),
  };
}

/** A file of this machine whose process is gone. A file of another machine is never judged stale. */
function isStale(e: SandboxEndpoint): boolean {
  return e.hostname === hostname() && !isAlive(e.pid);
}

/** Emulators listen on loopback only; an endpoint file pointing elsewhere is not followed. */
function isLoopback(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
  } catch {
    return false;
  }
}

/** True when something accepts connections at the URL's port. */
function answers(url: string): Promise<boolean> {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function busy(connection: string, dataDir: string, held: SandboxEndpoint): OutflowError {
  const file = join(dataDir, SANDBOX_ENDPOINT_FILE);
  const who =
    held.hostname !== hostname()
      ? `a process on ${held.hostname} (pid ${held.pid})`
      : held.holder === 'sandbox'
        ? `\`outflow sandbox\` (pid ${held.pid}${held.url ? `, at ${held.url}` : ''})`
        : `another outflow command (pid ${held.pid}) running its own emulator`;
  const hint =
    held.holder === 'sandbox'
      ? 'use that one, or stop it first'
      : 'wait for it to end; to share one emulator between commands, keep `outflow sandbox` running instead';
  return new OutflowError('OUTFLOW_EMULATOR', `the sandbox of connection "${connection}" is in use by ${who} since ${held.startedAt} (${file}): ${hint}`);
}

function requireEmulator(connection: string, connector: AnyConnector): void {
  if (!connector.emulator) {
    throw new OutflowError('OUTFLOW_EMULATOR', `connection "${connection}" is a sandbox, but connector "${connector.name}" has no emulator`);
  }
}

/** Starts the folder's emulator; its `stop` gives the folder up only once the emulator has stopped. */
async function startClaimed(
  claim: HeldFolder,
  connection: string,
  connector: AnyConnector,
  dataDir: string,
): Promise<{ url: string; config: Record<string, unknown>; stop(): Promise<void> }> {
  let emulator: RunningEmulator;
  try {
    emulator = await (await connector.emulator!()).start({ dataDir });
  } catch (err) {
    claim.release();
    throw new OutflowError('OUTFLOW_EMULATOR', `cannot start the sandbox for connection "${connection}": ${redact(describeError(err))}`, {
      cause: err,
    });
  }
  return {
    url: emulator.url,
    config: { ...(emulator.config as Record<string, unknown>) },
    async stop() {
      await emulator.stop().catch(() => undefined);
      claim.release();
    },
  };
}
