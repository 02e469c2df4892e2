import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The environment variable naming an existing server for tests (`postgres://…`). */
export const TEST_URL_ENV = 'OUTFLOW_TEST_PGURL';

/** Where Debian and Ubuntu put the PostgreSQL server binaries. */
const BIN_DIRS = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/14/bin'];

/** A PostgreSQL server for tests, and how to stop it. */
export interface TestPostgres {
  /** A connection string for the superuser `postgres` on 127.0.0.1. */
  url: string;
  /** Stops the server and removes its data (does nothing for a server given by URL). */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Folder holding `initdb` and `pg_ctl`; found among the usual Debian paths when absent. */
  binDir?: string;
}

function findBinDir(): string | undefined {
  const fromPath = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' }).stdout.trim();
  const candidates = [...BIN_DIRS, ...(fromPath ? [fromPath.replace(/\/pg_ctl$/, '')] : [])];
  return candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * The unprivileged OS user to run the server as, when running as root (postgres refuses
 * root): `postgres` where the package created it, else `nobody`, which every system has.
 */
function serverUser(): { name: string; uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      return { name, uid, gid };
    } catch {
      /* try the next */
    }
  }
  throw new Error('running as root, PostgreSQL needs an unprivileged OS user: create one with `useradd --system postgres`');
}

/**
 * Starts a throwaway PostgreSQL cluster for tests: `initdb` in a temporary folder, logical
 * WAL, trust authentication, listening on 127.0.0.1 on a free port, fsync off. As root it
 * runs as the `postgres` OS user. When {@link TEST_URL_ENV} is set, that server is used
 * instead and nothing is started.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<TestPostgres> {
  const given = process.env[TEST_URL_ENV];
  if (given) return { url: given, stop: async () => undefined };
  const bin = options.binDir ?? findBinDir();
  if (!bin) {
    throw new Error(
      `PostgreSQL server binaries (initdb, pg_ctl) were not found in ${BIN_DIRS.join(', ')} or on PATH: ` +
        `install them (\`apt-get install postgresql\`) or point ${TEST_URL_ENV} at a running server with wal_level=logical`,
    );
  }
  const user = serverUser();
  const base = mkdtempSync(join(tmpdir(), 'outflow-pg-'));
  if (user) chownSync(base, user.uid, user.gid);
  chmodSync(base, 0o700);
  const run = (cmd: string, args: string[]) => {
    const full = user ? ['runuser', ['-u', user.name, '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    const r = spawnSync(full[0] as string, full[1] as string[], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  const data = join(base, 'data');
  const log = join(base, 'log');
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const settings = [
      `-p ${port}`,
      '-c listen_addresses=127.0.0.1',
      `-c unix_socket_directories=${base}`,
      '-c wal_level=logical',
      '-c max_replication_slots=40',
      '-c max_wal_senders=40',
      '-c max_connections=200',
      '-c fsync=off',
      '-c full_page_writes=off',
      '-c wal_sender_timeout=60s',
    ].join(' ');
    try {
      run('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', settings, 'start']);
    } catch (err) {
      if (attempt < 3) continue; // another process took the port between the probe and the start
      rmSync(base, { recursive: true, force: true });
      throw err;
    }
    let stopped = false;
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      async stop() {
        if (stopped) return;
        stopped = true;
        try {
          run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
        } finally {
          rmSync(base, { recursive: true, force: true });
        }
      },
    };
  }
}
