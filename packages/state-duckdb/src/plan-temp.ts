import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<string>();
let hooked = false;

/**
 * Opens a store that spills to a fresh temp folder of its own (a dry run writes nothing
 * under the state folder): made with `mkdtemp`, so it is new, private (0700) and never a
 * folder someone else prepared, and removed when the store closes or, at the latest, when
 * the process exits.
 */
export async function withPlanTempDir<S extends { close(): Promise<void> }>(open: (tempDir: string) => Promise<S>): Promise<S> {
  const dir = mkdtempSync(join(tmpdir(), 'outflow-plan-'));
  live.add(dir);
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const d of live) rmSync(d, { recursive: true, force: true });
    });
  }
  const remove = () => {
    live.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };
  let store: S;
  try {
    store = await open(dir);
  } catch (err) {
    remove();
    throw err;
  }
  const close = store.close.bind(store);
  store.close = async () => {
    try {
      await close();
    } finally {
      remove();
    }
  };
  return store;
}
