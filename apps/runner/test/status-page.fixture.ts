/**
 * What the status page tests share: a project syncing a CSV into a webhook receiver that
 * rejects some rows, and the page served on 127.0.0.1 over a {@link ServeView} of that
 * project's real engine and ledger (whose actions can be awaited, to check exactly what
 * they started).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, type WebhookEmulator } from '@outflow/connector-webhook/emulator';
import { createLogger } from '@outflow/core';
import { statusRoutes } from '../src/serve/status-page.js';
import type { ServeView, SyncStatus } from '../src/serve/view.js';
import { openWorkspace, type Workspace } from '../src/workspace.js';

export const SECRET = 'status-page-signing-secret';
/** An email the receiver rejects, and whose reason then holds markup. */
export const SCRIPT_EMAIL = '<script>document.title="pwned"</script>';

export interface Fixture {
  ws: Workspace;
  emulator: WebhookEmulator;
  view: TestView;
  /** The page's address, `http://127.0.0.1:<port>`. */
  base: string;
  close(): Promise<void>;
}

/** A {@link ServeView} whose runs can be awaited. */
export interface TestView extends ServeView {
  /** Resolves once the runs started through the view have finished. */
  settled(): Promise<void>;
}

export interface Project {
  configFile: string;
  /** The receiver the sync writes to; it rejects key 3 until its faults are cleared. */
  emulator: WebhookEmulator;
}

/**
 * Six customers synced into a webhook receiver that rejects key 3 (a test fault) and key 5
 * (its email is markup); `top` is YAML added at the top of outflow.yaml (e.g. `alerts:`).
 */
export async function writeProject(top = ''): Promise<Project> {
  const dir = mkdtempSync(join(tmpdir(), 'outflow-status-'));
  mkdirSync(join(dir, 'data'));
  const rows = ['id,email,name'];
  for (let id = 1; id <= 6; id++) rows.push(`${id},${id === 5 ? SCRIPT_EMAIL : `user${id}@example.com`},User ${id}`);
  writeFileSync(join(dir, 'data', 'customers.csv'), rows.join('\n') + '\n');

  const emulator = await start({ secret: SECRET, dataDir: join(dir, 'receiver'), faults: { rejectKeys: ['3'] } });
  const configFile = join(dir, 'outflow.yaml');
  writeFileSync(
    configFile,
    `version: 1
${top}connections:
  warehouse: { connector: duckdb }
  hooks: { connector: webhook, config: { url: "${emulator.url}", secret: ${SECRET} } }
syncs:
  - name: customers
    from: { connection: warehouse, file: ${JSON.stringify(join(dir, 'data', 'customers.csv'))}, primaryKey: id }
    to: { connection: hooks, object: customers, mode: upsert }
`,
  );
  return { configFile, emulator };
}

/**
 * The page over a {@link ServeView} of a workspace on {@link writeProject}'s project, whose
 * first run has delivered four customers and parked keys 3 and 5.
 */
export async function openFixture(): Promise<Fixture> {
  const { configFile, emulator } = await writeProject();
  const ws = await openWorkspace({ configFile, logger: createLogger({ level: 'silent' }) });
  await ws.engine.run('customers');

  const view = workspaceView(ws);
  const handle = statusRoutes(view);
  const server = createServer((req, res) => {
    void handle(req, res).then((handled) => {
      if (!handled) res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    });
  });
  const base = await listen(server);
  return {
    ws,
    emulator,
    view,
    base,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await view.settled();
      await ws.close();
      await emulator.stop();
    },
  };
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
    });
  });
}

/**
 * The view `outflow serve` gives the page, over a workspace: runs one at a time in this
 * process, read back from its ledger. (No schedule: nothing runs but what is asked.)
 */
function workspaceView(ws: Workspace): TestView {
  const ledger = ws.ledger();
  const paused = new Set<string>();
  let running: string | undefined;
  let queue = Promise.resolve();
  const enqueue = (sync: string, unpark?: true | string[]) => {
    queue = queue.then(async () => {
      running = sync;
      try {
        await ws.engine.run(sync, unpark ? { unpark } : {});
      } finally {
        running = undefined;
      }
    });
  };
  const status = async (name: string): Promise<SyncStatus> => {
    const sync = ws.engine.sync(name);
    const [lastRun] = await ledger.listRuns({ sync: name, limit: 1 });
    return {
      name,
      capture: sync.capture ?? 'diff',
      state: running === name ? 'running' : paused.has(name) ? 'paused' : lastRun?.status === 'failed' ? 'failed' : 'idle',
      ...(lastRun ? { lastRun } : {}),
      parked: await ledger.countRowErrors(name, { parked: true }),
      retrying: await ledger.countRowErrors(name, { parked: false }),
    };
  };
  return {
    syncs: () => Promise.all(ws.loaded.config.syncs.map((s) => status(s.name))),
    runs: async (sync, limit) => (ws.engine.sync(sync), ledger.listRuns({ sync, limit })),
    parked: async (sync, limit) => (ws.engine.sync(sync), (await ledger.listRowErrors({ sync, limit })).filter((e) => e.parked)),
    async retry(sync, keys) {
      ws.engine.sync(sync);
      enqueue(sync, keys ?? true);
      return { message: `Sending ${keys ? keys.join(', ') : 'every parked row'} of ${sync} again.` };
    },
    async trigger(sync) {
      ws.engine.sync(sync);
      enqueue(sync);
      return { message: `A run of ${sync} started.` };
    },
    async pause(sync) {
      ws.engine.sync(sync);
      paused.add(sync);
      return { message: `${sync} is paused.` };
    },
    async resume(sync) {
      ws.engine.sync(sync);
      paused.delete(sync);
      return { message: `${sync} is scheduled again.` };
    },
    settled: () => queue,
  };
}
