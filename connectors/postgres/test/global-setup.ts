import type { TestProject } from 'vitest/node';
import { startPostgres } from '../src/testing.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the throwaway cluster (or of OUTFLOW_TEST_PGURL). */
    pgUrl: string;
  }
}

/** One PostgreSQL cluster for the whole connector-postgres run, stopped at the end. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPostgres();
  project.provide('pgUrl', server.url);
  return () => server.stop();
}
