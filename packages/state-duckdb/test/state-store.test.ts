import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stateStoreSuite } from '@outflow/testing';
import { duckdbStateStore } from '../src/index.js';

let dir = '';

stateStoreSuite({
  name: 'embedded DuckDB',
  async setup() {
    dir = mkdtempSync(join(tmpdir(), 'outflow-state-suite-'));
  },
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
  open: (options) => duckdbStateStore({ dir, threads: 1 }).open(options),
});
