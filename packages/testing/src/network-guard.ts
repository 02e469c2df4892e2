/**
 * The network guard: any attempt to open a connection to, or resolve, a host other than the
 * loopback interface fails loudly. Tests install it through a vitest setup file; child
 * processes get it with `node --import @outflow/testing/network-guard`.
 */
import dns from 'node:dns';
import net from 'node:net';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']);

export const violations: string[] = [];

export function isLoopback(host: string | undefined | null): boolean {
  if (host === undefined || host === null || host === '') return true; // defaults to localhost
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return LOOPBACK_HOSTS.has(h) || /^127\.\d+\.\d+\.\d+$/.test(h) || h.endsWith('.localhost');
}

function refuse(what: string): Error {
  const message = `network guard: ${what} is not allowed (only loopback traffic is permitted in tests)`;
  violations.push(message);
  if (process.env['OUTFLOW_NETWORK_GUARD_EXIT'] === '1') {
    process.stderr.write(message + '\n');
    process.exit(86);
  }
  const err = new Error(message);
  (err as NodeJS.ErrnoException).code = 'ENETUNREACH';
  return err;
}

let installed = false;

export function installNetworkGuard(): void {
  if (installed) return;
  installed = true;

  const originalConnect = net.Socket.prototype.connect as (...args: unknown[]) => net.Socket;
  net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
    const first = args[0];
    let host: string | undefined;
    let path: string | undefined;
    if (Array.isArray(first)) {
      const opts = first[0] as { host?: string; path?: string };
      host = opts?.host;
      path = opts?.path;
    } else if (first !== null && typeof first === 'object') {
      host = (first as { host?: string }).host;
      path = (first as { path?: string }).path;
    } else if (typeof first === 'number') {
      host = typeof args[1] === 'string' ? (args[1] as string) : undefined;
    } else if (typeof first === 'string') {
      path = first;
    }
    if (path === undefined && !isLoopback(host)) {
      const err = refuse(`connection to ${host}`);
      process.nextTick(() => this.destroy(err));
      return this;
    }
    return originalConnect.apply(this, args);
  } as typeof net.Socket.prototype.connect;

  const originalLookup = dns.lookup as (...args: unknown[]) => void;
  const guardedLookup = function (hostname: string, ...rest: unknown[]) {
    if (!isLoopback(hostname)) {
      const cb = rest[rest.length - 1];
      const err = refuse(`DNS lookup of ${hostname}`);
      if (typeof cb === 'function') process.nextTick(() => (cb as (e: Error) => void)(err));
      return {};
    }
    return originalLookup.call(dns, hostname, ...rest);
  };
  (dns as { lookup: unknown }).lookup = guardedLookup;

  const originalPromiseLookup = dns.promises.lookup.bind(dns.promises);
  (dns.promises as { lookup: unknown }).lookup = async (hostname: string, ...rest: unknown[]) => {
    if (!isLoopback(hostname)) throw refuse(`DNS lookup of ${hostname}`);
    return (originalPromiseLookup as (...a: unknown[]) => unknown)(hostname, ...rest);
  };

  for (const name of ['resolve', 'resolve4', 'resolve6', 'resolveAny'] as const) {
    const original = (dns as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!;
    (dns as unknown as Record<string, unknown>)[name] = (hostname: string, ...rest: unknown[]) => {
      if (!isLoopback(hostname)) {
        const cb = rest[rest.length - 1];
        const err = refuse(`DNS ${name} of ${hostname}`);
        if (typeof cb === 'function') process.nextTick(() => (cb as (e: Error) => void)(err));
        return undefined;
      }
      return original.call(dns, hostname, ...rest);
    };
  }
}

installNetworkGuard();
